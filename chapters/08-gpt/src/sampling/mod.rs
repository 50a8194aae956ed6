//! Sampling: turning a model's next-token scores into text.
//!
//! Everything here talks to a model only through
//! [`LanguageModel`](crate::LanguageModel), so the same code drives a GPT
//! with a KV cache and the [`BigramModel`] the tests enumerate:
//!
//! - [`processors`]: the logits transforms (repetition penalty,
//!   temperature, top-k, top-p, min-p) and softmax, and
//!   [`SamplingConfig`], which chains them in a fixed, documented order;
//! - [`Sampler`]: a config plus a seeded Philox stream, one token at a time;
//! - [`StopConditions`] and [`generate`]: the streaming generation loop,
//!   with end tokens and stop strings checked on decoded text;
//! - [`beam_search`]: the most likely sequences rather than a sample, with
//!   a length penalty;
//! - [`speculative_generate`]: a small draft model proposes, the target
//!   model verifies several tokens in one call, and the output has exactly
//!   the target's distribution;
//! - [`chi_square`]: the goodness-of-fit test that checks those
//!   distributions.

mod beam;
mod bigram;
pub mod chi_square;
mod config;
mod generate;
pub mod processors;
mod sampler;
mod speculative;
mod stop;

pub use beam::{beam_search, BeamHypothesis, BeamSearchConfig, BeamSearchOutput};
pub use bigram::BigramModel;
pub use config::SamplingConfig;
pub use generate::{generate, ContextPolicy};
pub use sampler::Sampler;
pub use speculative::{
    residual_distribution, speculative_generate, DraftAcceptance, SpeculativeConfig,
    SpeculativeGeneration, SpeculativeStats,
};
pub use stop::{
    Generation, Pushed, StopChecker, StopConditions, StopReason, TokenDecoder, TokenEvent,
};
