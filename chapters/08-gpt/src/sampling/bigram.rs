//! A language model small enough to enumerate: the next token depends only
//! on the last one. The samplers' tests and the book's examples run on it,
//! because every probability it assigns to a sequence can be computed by
//! hand (or by a loop), so a sampler's output distribution can be checked
//! exactly rather than eyeballed.

use crate::language_model::{LanguageModel, Logits};
use chapter_02::{Error, Result};

// ANCHOR: bigram
/// A bigram model: a `[vocab, vocab]` table whose row `t` holds the logits
/// of the token after `t`. It keeps the tokens it was fed (its "cache") and
/// counts its calls, so tests can check how often a sampler asked.
#[derive(Clone, Debug)]
pub struct BigramModel {
    vocab: usize,
    table: Vec<f32>,
    context_length: usize,
    tokens: Vec<u32>,
    extend_calls: usize,
    tokens_fed: usize,
}
// ANCHOR_END: bigram

impl BigramModel {
    /// A model from its logits table (`vocab × vocab`, row-major).
    pub fn new(vocab: usize, table: Vec<f32>, context_length: usize) -> Result<Self> {
        if vocab == 0 || table.len() != vocab * vocab {
            return Err(Error::Invalid {
                op: "BigramModel::new",
                msg: format!("a table of {} logits is not {vocab} × {vocab}", table.len()),
            });
        }
        if context_length == 0 {
            return Err(Error::Invalid {
                op: "BigramModel::new",
                msg: "context length 0 cannot hold a prompt".into(),
            });
        }
        Ok(BigramModel {
            vocab,
            table,
            context_length,
            tokens: Vec::new(),
            extend_calls: 0,
            tokens_fed: 0,
        })
    }

    /// A model whose row `t` is the distribution `rows[t]` (logits
    /// `ln p`; a zero probability is a `-∞` logit).
    pub fn from_probabilities(rows: &[Vec<f64>], context_length: usize) -> Result<Self> {
        let vocab = rows.len();
        if let Some((t, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != vocab) {
            return Err(Error::Invalid {
                op: "BigramModel::from_probabilities",
                msg: format!("row {t} has {} entries, expected {vocab}", r.len()),
            });
        }
        let table = rows.iter().flatten().map(|p| p.ln() as f32).collect();
        Self::new(vocab, table, context_length)
    }

    /// The tokens the model holds.
    pub fn tokens(&self) -> &[u32] {
        &self.tokens
    }

    /// How many times [`extend`](LanguageModel::extend) was called.
    pub fn extend_calls(&self) -> usize {
        self.extend_calls
    }

    /// How many tokens all the `extend` calls fed, in total.
    pub fn tokens_fed(&self) -> usize {
        self.tokens_fed
    }

    /// The logits after token `t`.
    pub fn row(&self, t: u32) -> &[f32] {
        let t = t as usize;
        &self.table[t * self.vocab..(t + 1) * self.vocab]
    }
}

impl LanguageModel for BigramModel {
    fn vocab_size(&self) -> usize {
        self.vocab
    }

    fn context_length(&self) -> usize {
        self.context_length
    }

    fn cached_len(&self) -> usize {
        self.tokens.len()
    }

    fn extend(&mut self, tokens: &[u32]) -> Result<Logits> {
        if tokens.is_empty() {
            return Err(Error::Invalid {
                op: "BigramModel::extend",
                msg: "no tokens to feed".into(),
            });
        }
        if let Some(t) = tokens.iter().find(|t| **t as usize >= self.vocab) {
            return Err(Error::Invalid {
                op: "BigramModel::extend",
                msg: format!("token {t} is outside a vocabulary of {}", self.vocab),
            });
        }
        if self.tokens.len() + tokens.len() > self.context_length {
            return Err(Error::Invalid {
                op: "BigramModel::extend",
                msg: format!(
                    "{} held + {} new tokens exceed the context length {}",
                    self.tokens.len(),
                    tokens.len(),
                    self.context_length
                ),
            });
        }
        self.extend_calls += 1;
        self.tokens_fed += tokens.len();
        self.tokens.extend_from_slice(tokens);
        let data = tokens.iter().flat_map(|&t| self.row(t).to_vec()).collect();
        Ok(Logits::new(self.vocab, data))
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        if len > self.tokens.len() {
            return Err(Error::Invalid {
                op: "BigramModel::truncate",
                msg: format!("cannot keep {len} tokens of {}", self.tokens.len()),
            });
        }
        self.tokens.truncate(len);
        Ok(())
    }
}
