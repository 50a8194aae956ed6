//! The generation loop, streaming each token as it is made.

use crate::language_model::LanguageModel;
use crate::sampling::stop::{StopChecker, TokenDecoder};
use crate::sampling::{Generation, Sampler, StopConditions, TokenEvent};
use chapter_02::{Error, Result};

/// What to do when a generation could outgrow the model's context.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ContextPolicy {
    /// Refuse before doing any work when the prompt plus `max_new_tokens`
    /// might not fit: nothing is streamed and then cut short.
    #[default]
    Error,
    /// Generate until the context is full, then stop with
    /// [`StopReason::ContextFull`](crate::sampling::StopReason::ContextFull).
    Stop,
}

/// Checks that `prompt` is not empty and that generation fits in the
/// context: the model holds `held` tokens, and `new_tokens` generated tokens
/// need all but the last fed (the last is sampled, never fed).
pub(crate) fn check_fits(
    op: &'static str,
    context: usize,
    held: usize,
    prompt: usize,
    new_tokens: Option<usize>,
) -> Result<()> {
    if prompt == 0 {
        return Err(Error::Invalid {
            op,
            msg: "the prompt is empty: the first token needs logits to be sampled from".into(),
        });
    }
    let need = held + prompt + new_tokens.map_or(0, |n| n - 1);
    if need > context {
        let what = match new_tokens {
            Some(n) => format!(" and {n} new tokens (all but the last fed back)"),
            None => String::new(),
        };
        return Err(Error::Invalid {
            op,
            msg: format!(
                "{held} tokens held, a prompt of {prompt}{what} need {need} positions, \
                 more than the context length {context}"
            ),
        });
    }
    Ok(())
}

// ANCHOR: generate
/// Generates text after `prompt`, calling `on_token` as each token is made.
///
/// The prompt is appended to what the model already holds and fed in one
/// [`extend`](LanguageModel::extend); after that each sampled token is fed
/// alone, so a model with a KV cache does one token's work per step. The
/// last sampled token is not fed (nothing needs its logits): afterwards the
/// model holds its earlier tokens, the prompt and all generated tokens but
/// the last. `history` for the repetition penalty is the prompt plus the
/// generated tokens.
pub fn generate<M: LanguageModel + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    sampler: &mut Sampler,
    stop: &StopConditions,
    decoder: Option<&dyn TokenDecoder>,
    policy: ContextPolicy,
    mut on_token: impl FnMut(TokenEvent<'_>),
) -> Result<Generation> {
    let mut checker = StopChecker::new(stop, decoder)?;
    let context = model.context_length();
    let budget = (policy == ContextPolicy::Error).then_some(stop.max_new_tokens);
    check_fits(
        "generate",
        context,
        model.cached_len(),
        prompt.len(),
        budget,
    )?;

    let mut history = prompt.to_vec();
    // Only the last row is sampled from: the prompt's other rows are
    // never computed (see `LanguageModel::extend_last`).
    let mut logits = model.extend_last(prompt)?;
    loop {
        let token = sampler.sample(logits.last(), &history)?;
        history.push(token);
        let no_room = model.cached_len() >= context;
        let pushed = checker.push(token, no_room)?;
        on_token(TokenEvent {
            index: checker.len() - 1,
            token,
            text: &pushed.text,
        });
        if let Some(reason) = pushed.stop {
            return Ok(checker.into_generation(reason));
        }
        logits = model.extend_last(&[token])?;
    }
}
// ANCHOR_END: generate
