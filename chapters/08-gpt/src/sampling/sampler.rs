//! Drawing a token from a distribution, reproducibly.

use crate::sampling::processors::argmax;
use crate::sampling::SamplingConfig;
use chapter_02::{Generator, Result};

// ANCHOR: sampler
/// A [`SamplingConfig`] with its own seeded random stream.
///
/// The randomness is chapter 02's Philox [`Generator`], drawn on the host
/// (a sampler works on one row of host logits at a time): one `f64`
/// uniform per sampled token, so the same seed and the same logits give the
/// same tokens on every machine, and [`generator`](Self::generator) is the
/// whole state a program must save to resume a generation exactly.
#[derive(Clone, Debug)]
pub struct Sampler {
    config: SamplingConfig,
    rng: Generator,
}
// ANCHOR_END: sampler

impl Sampler {
    /// A sampler drawing with `config` from the Philox stream of `seed`; an
    /// invalid config is an error naming the option.
    pub fn new(config: SamplingConfig, seed: u64) -> Result<Self> {
        config.validate()?;
        Ok(Sampler {
            config,
            rng: Generator::new(seed),
        })
    }

    /// A greedy sampler (it never draws a random number).
    pub fn greedy() -> Self {
        Sampler {
            config: SamplingConfig::greedy(),
            rng: Generator::new(0),
        }
    }

    pub fn config(&self) -> &SamplingConfig {
        &self.config
    }

    /// The random stream's position: clone it to replay a generation.
    pub fn generator(&self) -> &Generator {
        &self.rng
    }

    /// The transformed distribution of the next token (see
    /// [`SamplingConfig::probabilities`]).
    pub fn probabilities(&self, logits: &[f32], history: &[u32]) -> Result<Vec<f64>> {
        self.config.probabilities(logits, history)
    }

    // ANCHOR: sample
    /// The next token after a row of logits, `history` being the sequence so
    /// far. Greedy decoding takes the arg-max of the penalised logits (the
    /// lowest id on ties) and uses no randomness.
    pub fn sample(&mut self, logits: &[f32], history: &[u32]) -> Result<u32> {
        let probs = self.probabilities(logits, history)?;
        if self.config.is_greedy() {
            return Ok(argmax(&probs) as u32);
        }
        Ok(self.draw(&probs))
    }

    /// Inverse-CDF sampling: one uniform `u ∈ [0, 1)`, then the first token
    /// whose cumulative probability exceeds `u · Σp`. Tokens of probability
    /// zero are never returned, whatever the rounding.
    pub fn draw(&mut self, probs: &[f64]) -> u32 {
        let total: f64 = probs.iter().sum();
        let target = self.uniform() * total;
        let mut cumulative = 0.0;
        let mut last_possible = 0;
        for (i, &p) in probs.iter().enumerate() {
            if p > 0.0 {
                cumulative += p;
                last_possible = i;
                if cumulative > target {
                    return i as u32;
                }
            }
        }
        last_possible as u32
    }
    // ANCHOR_END: sample

    /// One uniform number in `[0, 1)` from the sampler's stream (speculative
    /// sampling's accept/reject coin).
    pub fn uniform(&mut self) -> f64 {
        self.rng.uniform(0.0, 1.0)
    }
}
