//! What a sampler needs from a model, and nothing more.
//!
//! Generation is a loop: the model scores every possible next token, a
//! sampler picks one, and the pick is fed back. The samplers of this chapter
//! (greedy, temperature, top-k, top-p, min-p, beam search, speculative
//! sampling) only ever ask a model two things: "here are more tokens, what
//! comes after each of them?" and "forget everything after position `len`".
//! [`LanguageModel`] is those two questions. A GPT answers them with its KV
//! cache (feeding one token costs one token's work), a toy bigram table
//! answers them by lookup, and the samplers cannot tell the difference —
//! which is what lets the tests check a sampler's *distribution* on a model
//! small enough to enumerate.

use chapter_02::Result;

/// Next-token scores for a run of positions: row `i` holds the logits
/// (unnormalised log-probabilities, one per vocabulary entry) of the token
/// that follows the `i`-th fed token.
///
/// Shape `[positions, vocab]`, row-major, on the host: sampling reads one
/// row per generated token, an explicit read back from the device.
#[derive(Clone, Debug, PartialEq)]
pub struct Logits {
    vocab: usize,
    data: Vec<f32>,
}

impl Logits {
    /// Wraps `data` (`positions × vocab` values, row-major).
    ///
    /// # Panics
    /// When `vocab` is zero or does not divide `data.len()`: that is a bug
    /// in the model, not bad input.
    pub fn new(vocab: usize, data: Vec<f32>) -> Self {
        assert!(
            vocab > 0 && data.len().is_multiple_of(vocab),
            "Logits::new: {} values do not make rows of {vocab}",
            data.len()
        );
        Logits { vocab, data }
    }

    /// Vocabulary size (the length of every row).
    pub fn vocab(&self) -> usize {
        self.vocab
    }

    /// Number of positions (rows).
    pub fn len(&self) -> usize {
        self.data.len() / self.vocab
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The logits after the `i`-th fed token.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.vocab..(i + 1) * self.vocab]
    }

    /// The logits after the last fed token: what generation samples from.
    ///
    /// # Panics
    /// When there are no rows.
    pub fn last(&self) -> &[f32] {
        self.row(self.len() - 1)
    }

    /// Every row, in order.
    pub fn rows(&self) -> impl Iterator<Item = &[f32]> {
        self.data.chunks_exact(self.vocab)
    }

    /// The values, row-major.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// The values, row-major, by value.
    pub fn into_vec(self) -> Vec<f32> {
        self.data
    }
}

// ANCHOR: language_model
/// An autoregressive model with a cache of the tokens it has seen.
///
/// The model holds one sequence. [`extend`](LanguageModel::extend) appends
/// tokens to it and returns the next-token logits after each appended token;
/// [`truncate`](LanguageModel::truncate) forgets the tail, which is how
/// speculative sampling rolls back rejected draft tokens and how chat drops
/// old turns. Both keep earlier work: a GPT's KV cache is never recomputed
/// for positions it already holds.
pub trait LanguageModel {
    /// Number of distinct tokens; every row of [`Logits`] has this length.
    fn vocab_size(&self) -> usize;

    /// The longest sequence the model can hold; `extend` past it is an error.
    fn context_length(&self) -> usize;

    /// How many tokens the model currently holds.
    fn cached_len(&self) -> usize;

    /// Appends `tokens` and returns the logits after each of them
    /// (`tokens.len()` rows). An empty `tokens`, a token outside the
    /// vocabulary or a sequence longer than the context is an error.
    fn extend(&mut self, tokens: &[u32]) -> Result<Logits>;

    /// Appends `tokens` like [`extend`](LanguageModel::extend), but returns
    /// only the logits after the last of them (one row): all that sampling
    /// reads after a prompt. A model that can skip the other rows' work
    /// (a GPT skips their final norm and LM head) overrides it; the rows it
    /// gives must equal `extend`'s last row.
    fn extend_last(&mut self, tokens: &[u32]) -> Result<Logits> {
        let logits = self.extend(tokens)?;
        if logits.len() <= 1 {
            return Ok(logits);
        }
        Ok(Logits::new(logits.vocab(), logits.last().to_vec()))
    }

    /// Forgets every token after the first `len`. `len` greater than
    /// [`cached_len`](LanguageModel::cached_len) is an error.
    fn truncate(&mut self, len: usize) -> Result<()>;

    /// Forgets every token: a fresh sequence.
    fn reset(&mut self) -> Result<()> {
        self.truncate(0)
    }
}
// ANCHOR_END: language_model
