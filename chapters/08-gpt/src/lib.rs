//! # Chapter 08: GPT
//!
//! The chapter most readers come for. It builds, on the engine of chapters
//! 02–06 and with no device code of its own (so it runs on CUDA wherever
//! chapter 07 is present):
//!
//! - [`tokenizer`]: GPT-2's byte-level BPE, byte for byte, and a BPE trainer;
//! - [`attention`]: scaled dot-product attention with a causal mask,
//!   multi-head attention with a fused QKV projection, and a [`kv_cache`]
//!   written in place;
//! - [`gpt`]: the GPT itself (pre-LayerNorm blocks, learned positions, tied
//!   embeddings), and [`gpt2`]: OpenAI's GPT-2 loaded from Hugging Face's
//!   `config.json` and `model.safetensors`;
//! - [`language_model`] and [`sampling`]: greedy, temperature, top-k,
//!   top-p, min-p, repetition penalty, stop strings, beam search and
//!   speculative sampling;
//! - [`hub`]: fetching a model from the Hugging Face Hub into its cache;
//! - [`chat`]: a conversation as a transcript, kept within the context and
//!   reusing the KV cache from turn to turn ([`text_codec`] lets it use
//!   either tokenizer).

pub mod attention;
pub mod char_data;
pub mod chat;
pub mod gpt;
pub mod gpt2;
pub mod hub;
pub mod kv_cache;
pub mod language_model;
pub mod sampling;
pub mod text_codec;
pub mod tokenizer;
pub mod training;

pub use attention::{
    scaled_dot_product_attention, AttentionOptions, CausalSelfAttention, LinearInOut,
    MultiheadAttention,
};
pub use chat::{ChatOptions, ChatSession, ChatTemplate, Reply, Turn};
pub use gpt::{
    language_model_loss, next_token_loss, Gpt, GptConfig, GptGenerator, GptOutput,
    RecomputingGenerator,
};
pub use gpt2::{load_gpt2, load_gpt2_files, Gpt2Config};
pub use kv_cache::KvCache;
pub use language_model::{LanguageModel, Logits};
pub use sampling::{
    beam_search, generate, speculative_generate, BeamSearchConfig, BigramModel, ContextPolicy,
    Generation, Sampler, SamplingConfig, SpeculativeConfig, StopConditions, StopReason,
    TokenDecoder, TokenEvent,
};
pub use text_codec::TextCodec;
pub use tokenizer::{BpeTrainer, Gpt2Tokenizer, TokenizerError};
