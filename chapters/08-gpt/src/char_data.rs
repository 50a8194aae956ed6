//! Text as training data for a character-level GPT.
//!
//! The smallest tokenizer there is: every distinct character of the corpus
//! is one token, numbered in sorted order ([`CharVocab`]). The corpus, so
//! encoded, is cut once into a training part (the first 90%) and a
//! validation part (the rest), and a batch is a handful of windows taken at
//! random offsets of one part ([`TextSplits::batch`]): the inputs are
//! `context` tokens, the targets the same window shifted by one, so every
//! position of every window is a next-token prediction to learn from.

use chapter_02::{Device, Generator, Result};
use chapter_03::Tensor;
use std::collections::BTreeMap;
use std::path::Path;

/// A vocabulary of characters: token `i` is the `i`-th distinct character
/// of the corpus in Unicode order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CharVocab {
    chars: Vec<char>,
    ids: BTreeMap<char, u32>,
}

fn invalid(op: &'static str, msg: impl Into<String>) -> chapter_02::Error {
    chapter_02::Error::invalid(op, msg.into())
}

impl CharVocab {
    /// The vocabulary of `text`: its distinct characters, sorted.
    pub fn from_text(text: &str) -> Self {
        let mut chars: Vec<char> = text.chars().collect();
        chars.sort_unstable();
        chars.dedup();
        Self::from_chars(chars).expect("distinct sorted characters")
    }

    /// A vocabulary of the given characters, in the given order (as saved
    /// by [`chars`](Self::chars)). Repeated characters are an error.
    pub fn from_chars(chars: Vec<char>) -> Result<Self> {
        let mut ids = BTreeMap::new();
        for (i, &c) in chars.iter().enumerate() {
            if ids.insert(c, i as u32).is_some() {
                return Err(invalid(
                    "CharVocab",
                    format!("the character {c:?} appears twice in the vocabulary"),
                ));
            }
        }
        if chars.is_empty() {
            return Err(invalid("CharVocab", "the vocabulary is empty"));
        }
        Ok(CharVocab { chars, ids })
    }

    /// The characters, token 0 first.
    pub fn chars(&self) -> &[char] {
        &self.chars
    }

    /// Number of tokens.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    /// Whether the vocabulary is empty (never, once built).
    pub fn is_empty(&self) -> bool {
        self.chars.is_empty()
    }

    /// The token ids of `text`; a character outside the vocabulary is an
    /// error naming it and its position.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        text.chars()
            .enumerate()
            .map(|(i, c)| {
                self.ids.get(&c).copied().ok_or_else(|| {
                    invalid(
                        "CharVocab::encode",
                        format!(
                            "character {c:?} (at character {i}) is not in the vocabulary of {} characters",
                            self.len()
                        ),
                    )
                })
            })
            .collect()
    }

    /// The text of `ids`; an id outside the vocabulary is an error.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        ids.iter()
            .map(|&id| {
                self.chars.get(id as usize).copied().ok_or_else(|| {
                    invalid(
                        "CharVocab::decode",
                        format!("token {id} is not below the vocabulary size {}", self.len()),
                    )
                })
            })
            .collect()
    }
}

/// Which part of the corpus a batch comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Split {
    Train,
    Val,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

// ANCHOR: text_splits
/// An encoded corpus cut into a training and a validation part.
#[derive(Debug, Clone)]
pub struct TextSplits {
    pub train: Vec<u32>,
    pub val: Vec<u32>,
    /// Tokens per window.
    pub context: usize,
}

impl TextSplits {
    /// Splits `tokens` at `train_fraction` (the first part trains). Each
    /// part must hold at least one window of `context + 1` tokens (inputs
    /// and their shifted targets).
    pub fn new(tokens: Vec<u32>, train_fraction: f64, context: usize) -> Result<Self> {
        if !(train_fraction > 0.0 && train_fraction < 1.0) {
            return Err(invalid(
                "TextSplits",
                format!("train fraction {train_fraction} must be in (0, 1)"),
            ));
        }
        if context == 0 {
            return Err(invalid(
                "TextSplits",
                "the context must be at least 1 token",
            ));
        }
        let cut = (tokens.len() as f64 * train_fraction) as usize;
        let (train, val) = (tokens[..cut].to_vec(), tokens[cut..].to_vec());
        for (name, part) in [("training", &train), ("validation", &val)] {
            if part.len() <= context {
                return Err(invalid(
                    "TextSplits",
                    format!(
                        "the {name} part has {} tokens, too few for one window of {} (context {context} + 1)",
                        part.len(),
                        context + 1
                    ),
                ));
            }
        }
        Ok(TextSplits {
            train,
            val,
            context,
        })
    }

    /// The tokens of `split`.
    pub fn part(&self, split: Split) -> &[u32] {
        match split {
            Split::Train => &self.train,
            Split::Val => &self.val,
        }
    }

    /// `batch` windows of `split` at offsets drawn from `rng`: inputs and
    /// targets, both `[batch, context]` i64 tensors on `device`. The
    /// targets are the inputs shifted by one token.
    pub fn batch(
        &self,
        split: Split,
        batch: usize,
        rng: &mut Generator,
        device: &Device,
    ) -> Result<(Tensor, Tensor)> {
        let data = self.part(split);
        let t = self.context;
        let (mut x, mut y) = (Vec::with_capacity(batch * t), Vec::with_capacity(batch * t));
        for _ in 0..batch {
            // Any start that leaves room for the shifted target window.
            let start = rng.below(data.len() - t);
            x.extend(data[start..start + t].iter().map(|&v| v as i64));
            y.extend(data[start + 1..start + t + 1].iter().map(|&v| v as i64));
        }
        Ok((
            Tensor::from_vec(x, vec![batch, t], device)?,
            Tensor::from_vec(y, vec![batch, t], device)?,
        ))
    }
}
// ANCHOR_END: text_splits

/// Reads a UTF-8 text file, naming the file in any error.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| invalid("read_text", format!("{}: cannot read: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        invalid(
            "read_text",
            format!(
                "{}: not UTF-8 text (invalid byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn char_vocab_round_trips_and_sorts() {
        let v = CharVocab::from_text("hello, world");
        assert_eq!(v.chars(), &[' ', ',', 'd', 'e', 'h', 'l', 'o', 'r', 'w']);
        let ids = v.encode("world").unwrap();
        assert_eq!(ids, vec![8, 6, 7, 5, 2]);
        assert_eq!(v.decode(&ids).unwrap(), "world");
        let err = v.encode("hex").unwrap_err().to_string();
        assert!(err.contains("'x'") && err.contains("character 2"), "{err}");
        assert!(v.decode(&[9]).is_err());
        assert!(CharVocab::from_chars(vec!['a', 'a']).is_err());
    }

    #[test]
    fn batches_are_windows_with_targets_shifted_by_one() {
        let tokens: Vec<u32> = (0..100).collect();
        let s = TextSplits::new(tokens, 0.9, 8).unwrap();
        assert_eq!((s.train.len(), s.val.len()), (90, 10));
        let mut rng = Generator::new(3);
        let (x, y) = s.batch(Split::Val, 4, &mut rng, &Device::cpu()).unwrap();
        assert_eq!(x.dims(), &[4, 8]);
        let (x, y) = (x.to_vec_f64().unwrap(), y.to_vec_f64().unwrap());
        for w in 0..4 {
            let row = &x[w * 8..w * 8 + 8];
            assert!(row[0] >= 90.0 && row[7] <= 98.0, "{row:?}");
            for j in 0..8 {
                assert_eq!(y[w * 8 + j], x[w * 8 + j] + 1.0);
            }
        }
    }

    #[test]
    fn splits_too_small_for_a_window_are_refused() {
        let err = TextSplits::new((0..20).collect(), 0.9, 8).unwrap_err();
        assert!(
            err.to_string().contains("validation part has 2 tokens"),
            "{err}"
        );
        assert!(TextSplits::new((0..20).collect(), 1.0, 2).is_err());
        assert!(TextSplits::new((0..20).collect(), f64::NAN, 2).is_err());
    }
}
