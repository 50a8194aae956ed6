//! Beam search: the most likely continuations instead of a random one.
//!
//! Greedy decoding commits to the best next token and can walk into a
//! sequence whose later tokens are all unlikely. Beam search keeps the
//! `num_beams` best partial sequences at every step, so a token that looks
//! worse now can win later. It suits tasks with one right answer
//! (translation, summaries); for open-ended text its output is famously
//! bland and repetitive (Holtzman et al. 2020), which is why chat uses
//! sampling.

use crate::language_model::LanguageModel;
use crate::sampling::generate::check_fits;
use crate::sampling::processors::{checked_logits, log_softmax};
use chapter_02::{Error, Result};

// ANCHOR: beam_config
/// The options of [`beam_search`].
#[derive(Clone, Debug, PartialEq)]
pub struct BeamSearchConfig {
    /// How many partial sequences to keep at each step (1 is greedy).
    pub num_beams: usize,
    /// The longest continuation, in tokens.
    pub max_new_tokens: usize,
    /// `α` in `score = Σ log p / length^α` (Hugging Face's convention; the
    /// length counts the generated tokens, an end token included). `α > 0`
    /// favours longer sequences, `α < 0` shorter ones, `0` compares raw
    /// log-probabilities.
    pub length_penalty: f64,
    /// Tokens that finish a hypothesis.
    pub eos_tokens: Vec<u32>,
    /// Stop as soon as `num_beams` hypotheses have finished, instead of
    /// going on while a running beam could still beat one of them.
    pub early_stopping: bool,
    /// How many hypotheses to return, best first (`1..=num_beams`).
    pub num_return_sequences: usize,
}
// ANCHOR_END: beam_config

impl BeamSearchConfig {
    /// `num_beams` beams for up to `max_new_tokens` tokens, `α = 1`, no end
    /// token, the best hypothesis only.
    pub fn new(num_beams: usize, max_new_tokens: usize) -> Self {
        BeamSearchConfig {
            num_beams,
            max_new_tokens,
            length_penalty: 1.0,
            eos_tokens: Vec::new(),
            early_stopping: false,
            num_return_sequences: 1,
        }
    }

    /// Checks the options; the error names the option, value and range.
    pub fn validate(&self) -> Result<()> {
        let bad = |option: &str, value: String, range: &str| Error::Invalid {
            op: "BeamSearchConfig",
            msg: format!("{option} = {value} is out of range: it must lie in {range}"),
        };
        if self.num_beams == 0 {
            return Err(bad("num_beams", "0".into(), "[1, ∞)"));
        }
        if self.max_new_tokens == 0 {
            return Err(bad("max_new_tokens", "0".into(), "[1, ∞)"));
        }
        if !self.length_penalty.is_finite() {
            return Err(bad(
                "length_penalty",
                self.length_penalty.to_string(),
                "(-∞, ∞)",
            ));
        }
        if !(1..=self.num_beams).contains(&self.num_return_sequences) {
            return Err(bad(
                "num_return_sequences",
                self.num_return_sequences.to_string(),
                &format!("[1, num_beams = {}]", self.num_beams),
            ));
        }
        Ok(())
    }
}

/// A finished (or, at the length limit, unfinished) candidate.
#[derive(Clone, Debug, PartialEq)]
pub struct BeamHypothesis {
    /// The generated tokens, an end token included.
    pub tokens: Vec<u32>,
    /// `Σ log p` of the generated tokens under the model.
    pub sum_logprob: f64,
    /// `sum_logprob / tokens.len()^length_penalty`: what hypotheses are
    /// ranked by.
    pub score: f64,
    /// Whether it ended with an end token (rather than at the length limit).
    pub finished: bool,
}

/// What [`beam_search`] returns.
#[derive(Clone, Debug, PartialEq)]
pub struct BeamSearchOutput {
    /// The best hypotheses, best first, `num_return_sequences` of them (or
    /// fewer when the vocabulary is too small to make that many).
    pub hypotheses: Vec<BeamHypothesis>,
    /// Tokens fed to the model after the prompt, to switch between beams.
    pub tokens_fed: usize,
}

#[derive(Clone, Debug)]
struct Beam {
    tokens: Vec<u32>,
    sum_logprob: f64,
}

fn length_normalised(sum_logprob: f64, len: usize, alpha: f64) -> f64 {
    sum_logprob / (len as f64).powf(alpha)
}

/// Keeps the `n` best hypotheses, best first (earlier ones win ties).
fn keep_best(kept: &mut Vec<BeamHypothesis>, h: BeamHypothesis, n: usize) {
    let at = kept.partition_point(|k| k.score >= h.score);
    if at < n {
        kept.insert(at, h);
        kept.truncate(n);
    }
}

// ANCHOR: beam_search
/// The `num_return_sequences` most likely continuations of `prompt`.
///
/// Each step scores every running beam (`log_softmax` of its next-token
/// logits added to its running sum), ranks all `(beam, token)` candidates,
/// and walks down the ranking: a candidate ending in an end token becomes a
/// finished hypothesis if it ranks in the top `num_beams`; the others
/// become the next beams until there are `num_beams`. Equal scores are
/// ranked by the token sequences, in lexicographic order.
///
/// The model holds one sequence, so switching to a beam truncates the model
/// to the longest prefix it shares with that beam and feeds the rest; beams
/// are visited in lexicographic order so that neighbours share prefixes.
/// Afterwards the model holds the prompt and some beam's tokens.
pub fn beam_search<M: LanguageModel + ?Sized>(
    model: &mut M,
    prompt: &[u32],
    config: &BeamSearchConfig,
) -> Result<BeamSearchOutput> {
    config.validate()?;
    let base = model.cached_len();
    let max_new = config.max_new_tokens;
    check_fits(
        "beam_search",
        model.context_length(),
        base,
        prompt.len(),
        Some(max_new),
    )?;
    let alpha = config.length_penalty;
    let after_prompt = model.extend_last(prompt)?.last().to_vec();
    let prefix = base + prompt.len();

    let mut held: Vec<u32> = Vec::new();
    let mut tokens_fed = 0;
    let mut beams = vec![Beam {
        tokens: Vec::new(),
        sum_logprob: 0.0,
    }];
    let mut hypotheses: Vec<BeamHypothesis> = Vec::new();
    let mut done = false;

    for step in 0..max_new {
        // Score every (beam, token) pair.
        let mut candidates: Vec<(f64, usize, u32)> = Vec::new();
        for (b, beam) in beams.iter().enumerate() {
            let row = if beam.tokens.is_empty() {
                after_prompt.clone()
            } else {
                let shared = held
                    .iter()
                    .zip(&beam.tokens)
                    .take_while(|(a, b)| a == b)
                    .count();
                let keep = shared.min(beam.tokens.len() - 1);
                model.truncate(prefix + keep)?;
                let logits = model.extend_last(&beam.tokens[keep..])?;
                tokens_fed += beam.tokens.len() - keep;
                held.clone_from(&beam.tokens);
                logits.last().to_vec()
            };
            let logprobs = log_softmax(&checked_logits("beam_search", &row)?);
            for (t, lp) in logprobs.into_iter().enumerate() {
                if lp.is_finite() {
                    candidates.push((beam.sum_logprob + lp, b, t as u32));
                }
            }
        }
        // Best first; beams are in lexicographic order, so (beam, token)
        // order is the lexicographic order of the extended sequences.
        candidates.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));

        let len = step + 1;
        let mut next = Vec::with_capacity(config.num_beams);
        for (rank, &(sum_logprob, b, t)) in candidates.iter().enumerate() {
            if next.len() == config.num_beams {
                break;
            }
            let mut tokens = beams[b].tokens.clone();
            tokens.push(t);
            if config.eos_tokens.contains(&t) {
                if rank < config.num_beams {
                    let score = length_normalised(sum_logprob, len, alpha);
                    let h = BeamHypothesis {
                        tokens,
                        sum_logprob,
                        score,
                        finished: true,
                    };
                    keep_best(&mut hypotheses, h, config.num_beams);
                }
            } else {
                next.push(Beam {
                    tokens,
                    sum_logprob,
                });
            }
        }
        next.sort_by(|a, b| a.tokens.cmp(&b.tokens));
        beams = next;

        // Done when nothing runs, or when enough hypotheses finished and
        // (without early stopping) no running beam can beat the worst of
        // them. A sum of log-probabilities only falls as a beam grows, so
        // the best a beam can reach is its sum now over the length that
        // makes the quotient largest: the longest for α > 0, the shortest
        // (one more token) otherwise.
        if beams.is_empty() {
            done = true;
            break;
        }
        if hypotheses.len() == config.num_beams {
            if config.early_stopping {
                done = true;
                break;
            }
            let best_sum = beams.iter().map(|b| b.sum_logprob).fold(f64::MIN, f64::max);
            let best_len = if alpha > 0.0 { max_new } else { len + 1 };
            let reachable = length_normalised(best_sum, best_len, alpha);
            if hypotheses[hypotheses.len() - 1].score >= reachable && len < max_new {
                done = true;
                break;
            }
        }
    }
    if !done {
        // The length limit: running beams compete as unfinished hypotheses.
        for beam in beams {
            let score = length_normalised(beam.sum_logprob, beam.tokens.len(), alpha);
            let h = BeamHypothesis {
                tokens: beam.tokens,
                sum_logprob: beam.sum_logprob,
                score,
                finished: false,
            };
            keep_best(&mut hypotheses, h, config.num_beams);
        }
    }
    hypotheses.truncate(config.num_return_sequences);
    Ok(BeamSearchOutput {
        hypotheses,
        tokens_fed,
    })
}
// ANCHOR_END: beam_search
