//! Speculative sampling (Leviathan, Kalman & Matias 2023; Chen et al. 2023).
//!
//! A large model spends most of a generation step reading its weights, and
//! reading them once serves one token as well as five: feeding `k + 1`
//! tokens in one [`extend`](LanguageModel::extend) costs about as much as
//! feeding one. Speculative sampling puts that to use. A small *draft*
//! model proposes `k` tokens, one at a time (cheap); the *target* model
//! scores all of them in one call; an accept/reject rule keeps a prefix of
//! the proposal and draws one more token, so every target call yields
//! between 1 and `k + 1` tokens.
//!
//! The rule makes the output distribution *exactly* the target's. Write
//! `p` for the target's distribution of the next token and `q` for the
//! draft's (both after the same [`SamplingConfig`](crate::sampling::SamplingConfig)
//! transforms). The draft proposes `x ~ q`; it is accepted with probability
//! `min(1, p(x)/q(x))`; on rejection the token is drawn from
//! `r(x) = max(0, p(x) − q(x)) / Σ_y max(0, p(y) − q(y))`. Then
//!
//! ```text
//! P(out = x) = q(x)·min(1, p(x)/q(x)) + P(reject)·r(x)
//!            = min(q(x), p(x))        + (1 − Σ_y min(q(y), p(y)))·r(x)
//! ```
//!
//! and since `1 − Σ min(p, q) = Σ max(0, p − q)`, the second term is
//! `max(0, p(x) − q(x))`, so `P(out = x) = min(p, q) + max(0, p − q) = p(x)`.
//! Each accepted token is the first token of the rest of the sequence, so
//! the argument applies position after position.

use crate::language_model::LanguageModel;
use crate::sampling::generate::check_fits;
use crate::sampling::stop::{StopChecker, TokenDecoder};
use crate::sampling::{Generation, Sampler, StopConditions, StopReason, TokenEvent};
use chapter_02::{Error, Result};

/// How drafted tokens are verified.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DraftAcceptance {
    /// The accept/reject rule above: the output has the target's
    /// distribution exactly.
    #[default]
    Rejection,
    /// Keep every drafted token. The output then has the *draft's*
    /// distribution: this is the speed ceiling of speculation, and the
    /// negative control that shows the distribution test can fail.
    AlwaysAccept,
}

/// The options of [`speculative_generate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpeculativeConfig {
    /// `k`: tokens the draft proposes per target call (at least 1).
    pub draft_tokens: usize,
    pub acceptance: DraftAcceptance,
}

impl SpeculativeConfig {
    /// `k` drafted tokens per round, verified by rejection sampling.
    pub fn new(draft_tokens: usize) -> Self {
        SpeculativeConfig {
            draft_tokens,
            acceptance: DraftAcceptance::Rejection,
        }
    }
}

// ANCHOR: stats
/// Counters for judging a draft model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpeculativeStats {
    /// Calls to the target's `extend` (one per round).
    pub target_calls: usize,
    /// Calls to the draft's `extend`.
    pub draft_calls: usize,
    /// Drafted tokens that were checked.
    pub proposed: usize,
    /// Drafted tokens that were accepted.
    pub accepted: usize,
    /// Tokens generated.
    pub generated: usize,
}

impl SpeculativeStats {
    /// `accepted / proposed`: for one token, `Σ_x min(p(x), q(x))`, one
    /// minus the total variation distance between target and draft.
    pub fn acceptance_rate(&self) -> f64 {
        self.accepted as f64 / self.proposed.max(1) as f64
    }

    /// Generated tokens per target call: 1 means speculation saved nothing,
    /// `k + 1` is the most a round can give.
    pub fn tokens_per_target_call(&self) -> f64 {
        self.generated as f64 / self.target_calls.max(1) as f64
    }
}
// ANCHOR_END: stats

/// A generation and the counters of how it was made.
#[derive(Clone, Debug, PartialEq)]
pub struct SpeculativeGeneration {
    pub generation: Generation,
    pub stats: SpeculativeStats,
}

// ANCHOR: residual
/// `normalize(max(0, p − q))`: where to draw from after a rejection. A
/// rejection means `p(x) < q(x)` for the drafted `x`, so some `p(y) > q(y)`
/// and the sum is positive; if rounding made it zero, `p` itself is used.
pub fn residual_distribution(p: &[f64], q: &[f64]) -> Vec<f64> {
    let r: Vec<f64> = p.iter().zip(q).map(|(p, q)| (p - q).max(0.0)).collect();
    let total: f64 = r.iter().sum();
    if total > 0.0 {
        r.into_iter().map(|x| x / total).collect()
    } else {
        p.to_vec()
    }
}
// ANCHOR_END: residual

/// The committed sequence and the positions each model holds, relative to
/// where each model started.
struct Positions {
    target_base: usize,
    draft_base: usize,
    target_held: usize,
    draft_held: usize,
}

// ANCHOR: speculative
/// Generates after `prompt` from `target`'s distribution (with `sampler`'s
/// transforms), using `draft` to propose `spec.draft_tokens` tokens per
/// target call. Both models append the prompt to what they hold; both must
/// share the vocabulary. Tokens are streamed to `on_token` as they are
/// committed; stop conditions and context checks are those of
/// [`generate`](crate::sampling::generate) with
/// [`ContextPolicy::Error`](crate::sampling::ContextPolicy::Error).
#[allow(clippy::too_many_arguments)]
pub fn speculative_generate<T, D>(
    target: &mut T,
    draft: &mut D,
    prompt: &[u32],
    sampler: &mut Sampler,
    spec: &SpeculativeConfig,
    stop: &StopConditions,
    decoder: Option<&dyn TokenDecoder>,
    mut on_token: impl FnMut(TokenEvent<'_>),
) -> Result<SpeculativeGeneration>
where
    T: LanguageModel + ?Sized,
    D: LanguageModel + ?Sized,
{
    let op = "speculative_generate";
    if spec.draft_tokens == 0 {
        return Err(Error::Invalid {
            op,
            msg: "draft_tokens = 0 is out of range: it must lie in [1, ∞)".into(),
        });
    }
    if target.vocab_size() != draft.vocab_size() {
        return Err(Error::Invalid {
            op,
            msg: format!(
                "the target's vocabulary has {} tokens, the draft's {}",
                target.vocab_size(),
                draft.vocab_size()
            ),
        });
    }
    let mut checker = StopChecker::new(stop, decoder)?;
    let new = Some(stop.max_new_tokens);
    check_fits(
        op,
        target.context_length(),
        target.cached_len(),
        prompt.len(),
        new,
    )?;
    check_fits(
        op,
        draft.context_length(),
        draft.cached_len(),
        prompt.len(),
        new,
    )?;

    let mut pos = Positions {
        target_base: target.cached_len(),
        draft_base: draft.cached_len(),
        target_held: 0,
        draft_held: 0,
    };
    let mut stats = SpeculativeStats::default();
    // Prompt and committed tokens. Each model holds a prefix of it, always
    // missing at least the last token (the "pending" one, not yet fed).
    let mut seq = prompt.to_vec();
    let mut stopped: Option<StopReason> = None;

    while stopped.is_none() {
        let n = seq.len();
        let remaining = stop.max_new_tokens - checker.len();
        let k = spec.draft_tokens.min(remaining - 1);

        // 1. The draft proposes x_1..x_k, one token per call, keeping q_i.
        let mut drafted: Vec<u32> = Vec::with_capacity(k);
        let mut q_rows: Vec<Vec<f64>> = Vec::with_capacity(k);
        if k > 0 {
            let mut logits = draft.extend_last(&seq[pos.draft_held..])?;
            stats.draft_calls += 1;
            pos.draft_held = n;
            for i in 0..k {
                // `seq` is the history: committed tokens, then drafts so far.
                let q = sampler.probabilities(logits.last(), &seq)?;
                let x = sampler.draw(&q);
                drafted.push(x);
                q_rows.push(q);
                seq.push(x);
                if i + 1 < k {
                    logits = draft.extend_last(&[x])?;
                    stats.draft_calls += 1;
                    pos.draft_held += 1;
                }
            }
            seq.truncate(n);
        }

        // 2. The target scores the pending token(s) and all drafts at once:
        //    row `first + i` is p_{i+1}, the distribution after x_1..x_i.
        //    Every one of those k + 1 rows is read, so this is `extend`,
        //    not `extend_last`.
        let feed = [&seq[pos.target_held..], &drafted[..]].concat();
        let first = n - pos.target_held - 1;
        let p_logits = target.extend(&feed)?;
        stats.target_calls += 1;
        pos.target_held = n + k;

        // 3. Accept a prefix of the drafts, then draw one more token: from
        //    the residual after a rejection, from p_{k+1} if all passed.
        let mut accepted = 0;
        let mut extra = None;
        for i in 0..k {
            // `seq` is the history: committed tokens, then accepted drafts.
            let p = sampler.probabilities(p_logits.row(first + i), &seq)?;
            let x = drafted[i] as usize;
            stats.proposed += 1;
            let keep = match spec.acceptance {
                DraftAcceptance::AlwaysAccept => true,
                // u < p/q without dividing; q(x) > 0 since x was drawn from q.
                DraftAcceptance::Rejection => sampler.uniform() * q_rows[i][x] < p[x],
            };
            if !keep {
                extra = Some(sampler.draw(&residual_distribution(&p, &q_rows[i])));
                break;
            }
            stats.accepted += 1;
            accepted += 1;
            seq.push(drafted[i]);
        }
        let bonus = match extra {
            Some(y) => y,
            None => {
                let p = sampler.probabilities(p_logits.row(first + k), &seq)?;
                sampler.draw(&p)
            }
        };
        seq.truncate(n);

        // 4. Commit, one token at a time through the stop conditions.
        for &token in drafted[..accepted].iter().chain([&bonus]) {
            seq.push(token);
            stats.generated += 1;
            let pushed = checker.push(token, false)?;
            on_token(TokenEvent {
                index: checker.len() - 1,
                token,
                text: &pushed.text,
            });
            if pushed.stop.is_some() {
                stopped = pushed.stop;
                break;
            }
        }

        // 5. Roll both models back to the committed tokens but the last.
        let keep = seq.len() - 1;
        if pos.target_held > keep {
            target.truncate(pos.target_base + keep)?;
            pos.target_held = keep;
        }
        if pos.draft_held > keep {
            draft.truncate(pos.draft_base + keep)?;
            pos.draft_held = keep;
        }
    }
    Ok(SpeculativeGeneration {
        generation: checker.into_generation(stopped.unwrap_or(StopReason::MaxNewTokens)),
        stats,
    })
}
// ANCHOR_END: speculative
