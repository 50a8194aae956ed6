//! Learning BPE merges from text, the way GPT-2's were learned.
//!
//! 1. Cut the text into pieces with GPT-2's [pre-tokenizer](super::pretokenize)
//!    and count each distinct piece: a word is then its bytes and a count.
//! 2. Count every adjacent pair of tokens over all words, each word
//!    weighing its count.
//! 3. Merge the most frequent pair into a new token everywhere it occurs,
//!    update the counts of the pairs around it, and repeat until the
//!    vocabulary has the size asked for, or no pair occurs often enough.
//!
//! Ties go to the pair of smallest ids (left, then right), so the same text
//! always gives the same merges. The byte tokens take GPT-2's ids (the
//! [byte alphabet](super::byte_alphabet)'s order), the merges 256, 257, …
//! in the order they were learned, and `<|endoftext|>` the last id, so the
//! result saves as `encoder.json` + `vocab.bpe` that
//! [`Gpt2Tokenizer`](super::Gpt2Tokenizer) reads like GPT-2's own.
//!
//! One subtlety: the most frequent pair can make a token that already
//! exists (`a`+`bc` when `ab`+`c` made `abc` earlier). It then becomes
//! that token, and no line is written: the tokenizer ranks a pair by the
//! token it makes, so it merges `a`+`bc` at the rank of `abc` anyway.

use super::byte_alphabet::BYTE_ORDER;
use super::error::TokenizerError;
use super::fast_hash::FastHashMap;
use super::pretokenize::pieces;
use super::vocabulary::{MergeRule, TokenKind, Vocabulary, END_OF_TEXT};

/// Settings of [`BpeTrainer::train`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BpeTrainer {
    /// Tokens wanted, counting the 256 bytes and `<|endoftext|>` (so at
    /// least 257; GPT-2 has 50 257).
    pub vocab_size: usize,
    /// A pair seen fewer times than this is not merged (at least 1).
    pub min_frequency: u64,
}

/// The fewest tokens a vocabulary can have: the bytes and `<|endoftext|>`.
pub const MIN_VOCAB_SIZE: usize = 257;

type Pair = (u32, u32);

/// One distinct piece of the text: its tokens, and how often it occurs.
struct Word {
    tokens: Vec<u32>,
    count: u64,
}

impl Word {
    fn pairs(&self) -> impl Iterator<Item = Pair> + '_ {
        self.tokens.windows(2).map(|w| (w[0], w[1]))
    }
}

impl BpeTrainer {
    /// A trainer for `vocab_size` tokens, merging pairs seen at least twice.
    pub fn new(vocab_size: usize) -> BpeTrainer {
        BpeTrainer {
            vocab_size,
            min_frequency: 2,
        }
    }

    // ANCHOR: train
    /// Learns a vocabulary from `text` (see the module docs).
    pub fn train(&self, text: &str) -> Result<Vocabulary, TokenizerError> {
        if self.vocab_size < MIN_VOCAB_SIZE || self.vocab_size > u32::MAX as usize {
            return Err(TokenizerError::Trainer(format!(
                "vocab_size {} must be at least {MIN_VOCAB_SIZE} (256 bytes and \
                 {END_OF_TEXT}) and fit in 32 bits",
                self.vocab_size
            )));
        }
        if self.min_frequency == 0 {
            return Err(TokenizerError::Trainer(
                "min_frequency must be at least 1".into(),
            ));
        }
        // Tokens: the bytes in GPT-2's order.
        let mut byte_ids = [0u32; 256];
        let mut tokens: Vec<Vec<u8>> = Vec::with_capacity(self.vocab_size);
        for (id, &b) in BYTE_ORDER.iter().enumerate() {
            byte_ids[b as usize] = id as u32;
            tokens.push(vec![b]);
        }
        let mut kinds = vec![TokenKind::Byte; 256];
        let mut by_bytes: FastHashMap<Vec<u8>, u32> = tokens
            .iter()
            .enumerate()
            .map(|(id, t)| (t.clone(), id as u32))
            .collect();

        // 1. Distinct pieces and their counts, in a fixed order.
        let mut counts: FastHashMap<&str, u64> = FastHashMap::default();
        for piece in pieces(text) {
            *counts.entry(piece).or_default() += 1;
        }
        let mut distinct: Vec<(&str, u64)> = counts.into_iter().collect();
        distinct.sort_unstable();
        let mut words: Vec<Word> = distinct
            .into_iter()
            .map(|(piece, count)| Word {
                tokens: piece.bytes().map(|b| byte_ids[b as usize]).collect(),
                count,
            })
            .collect();

        // 2. Pair counts, and the words each pair occurs in.
        let mut pair_counts: FastHashMap<Pair, u64> = FastHashMap::default();
        let mut pair_words: FastHashMap<Pair, Vec<usize>> = FastHashMap::default();
        for (w, word) in words.iter().enumerate() {
            for pair in word.pairs() {
                *pair_counts.entry(pair).or_default() += word.count;
                pair_words.entry(pair).or_default().push(w);
            }
        }

        // 3. Merge the most frequent pair until the vocabulary is full.
        let mut merges = Vec::new();
        while tokens.len() + 1 < self.vocab_size {
            let best = pair_counts
                .iter()
                .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
                .map(|(&pair, &count)| (pair, count));
            let Some((pair, count)) = best.filter(|&(_, c)| c >= self.min_frequency) else {
                break;
            };
            debug_assert!(count > 0);
            let mut made = tokens[pair.0 as usize].clone();
            made.extend_from_slice(&tokens[pair.1 as usize]);
            let id = match by_bytes.get(&made) {
                Some(&existing) => existing,
                None => {
                    let id = tokens.len() as u32;
                    merges.push(MergeRule {
                        left: pair.0,
                        right: pair.1,
                        result: id,
                    });
                    kinds.push(TokenKind::Merged {
                        rank: merges.len() as u32 - 1,
                    });
                    by_bytes.insert(made.clone(), id);
                    tokens.push(made);
                    id
                }
            };
            let mut affected = pair_words.remove(&pair).unwrap_or_default();
            affected.sort_unstable();
            affected.dedup();
            for w in affected {
                merge_in_word(
                    &mut words[w],
                    w,
                    pair,
                    id,
                    &mut pair_counts,
                    &mut pair_words,
                );
            }
            pair_counts.remove(&pair);
        }
        // ANCHOR_END: train

        tokens.push(END_OF_TEXT.as_bytes().to_vec());
        kinds.push(TokenKind::Special);
        Ok(Vocabulary::from_checked_parts(
            tokens, kinds, merges, byte_ids,
        ))
    }
}

/// Replaces each occurrence of `pair` in `word` (left to right, not
/// overlapping) by `id`, moving the word's weight from the pairs it breaks
/// to the pairs it makes.
fn merge_in_word(
    word: &mut Word,
    w: usize,
    pair: Pair,
    id: u32,
    pair_counts: &mut FastHashMap<Pair, u64>,
    pair_words: &mut FastHashMap<Pair, Vec<usize>>,
) {
    if !word.pairs().any(|p| p == pair) {
        return; // an earlier merge already broke the pair here
    }
    for p in word.pairs() {
        if let Some(c) = pair_counts.get_mut(&p) {
            *c -= word.count;
            if *c == 0 && p != pair {
                pair_counts.remove(&p);
            }
        }
    }
    let mut merged = Vec::with_capacity(word.tokens.len());
    let mut i = 0;
    while i < word.tokens.len() {
        if i + 1 < word.tokens.len() && (word.tokens[i], word.tokens[i + 1]) == pair {
            merged.push(id);
            i += 2;
        } else {
            merged.push(word.tokens[i]);
            i += 1;
        }
    }
    word.tokens = merged;
    for p in word.pairs() {
        *pair_counts.entry(p).or_default() += word.count;
        let list = pair_words.entry(p).or_default();
        if list.last() != Some(&w) {
            list.push(w);
        }
    }
}
