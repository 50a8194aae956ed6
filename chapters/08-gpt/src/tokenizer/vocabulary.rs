//! A BPE vocabulary: every token's bytes by id, and the merges by rank.
//!
//! GPT-2 keeps it in two files:
//!
//! - `encoder.json`: `{"token": id, ...}`, each token written in the
//!   [byte alphabet](super::byte_alphabet) (`"Ġthe": 262`), plus the
//!   special token `"<|endoftext|>": 50256` written as itself;
//! - `vocab.bpe`: a `#version: 0.2` line, then one merge per line, two
//!   tokens separated by a space (`Ġ t`, then `Ġ a`, then `h e`, …). The
//!   line order is the rank: the first merge was learned first, from the
//!   most frequent pair, and is applied first.
//!
//! A [`Vocabulary`] is only made by reading those files
//! ([`read_vocabulary`](super::vocab_files::read_vocabulary)) or by the
//! [trainer](super::trainer), both of which check it, so the tokenizer can
//! build its tables from it without checking again.

use super::byte_alphabet::bytes_to_text;
use super::error::TokenizerError;
use std::path::Path;

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// One of the 256 byte tokens.
    Byte,
    /// Made by the merge of rank `rank` (its line in `vocab.bpe`, from 0).
    Merged { rank: u32 },
    /// A special token such as `<|endoftext|>`: never produced by BPE,
    /// only by [`encode_with_special`](super::Gpt2Tokenizer::encode_with_special).
    Special,
}

/// One line of `vocab.bpe`: `left right` makes `result` (token ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MergeRule {
    pub left: u32,
    pub right: u32,
    pub result: u32,
}

/// Tokens by id and merges by rank (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vocabulary {
    tokens: Vec<Vec<u8>>,
    kinds: Vec<TokenKind>,
    merges: Vec<MergeRule>,
    byte_ids: [u32; 256],
}

/// The special token GPT-2 puts between documents.
pub const END_OF_TEXT: &str = "<|endoftext|>";

/// The first line GPT-2's `vocab.bpe` starts with.
pub const VOCAB_BPE_HEADER: &str = "#version: 0.2";

impl Vocabulary {
    /// Assembles a vocabulary the caller has checked: ids are dense, every
    /// byte has a token, `merges[r].result` has kind `Merged { rank: r }`.
    pub(crate) fn from_checked_parts(
        tokens: Vec<Vec<u8>>,
        kinds: Vec<TokenKind>,
        merges: Vec<MergeRule>,
        byte_ids: [u32; 256],
    ) -> Vocabulary {
        debug_assert_eq!(tokens.len(), kinds.len());
        Vocabulary {
            tokens,
            kinds,
            merges,
            byte_ids,
        }
    }

    /// Number of tokens (ids are `0..len()`).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether there are no tokens (never true for a checked vocabulary).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The bytes of token `id` (a special token's are its text).
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.tokens.get(id as usize).map(Vec::as_slice)
    }

    /// What token `id` is.
    pub fn kind(&self, id: u32) -> Option<TokenKind> {
        self.kinds.get(id as usize).copied()
    }

    /// The merges, by rank.
    pub fn merges(&self) -> &[MergeRule] {
        &self.merges
    }

    /// The id of the token made of byte `b`.
    pub fn byte_id(&self, b: u8) -> u32 {
        self.byte_ids[b as usize]
    }

    /// The ids of the 256 byte tokens, indexed by byte.
    pub fn byte_ids(&self) -> [u32; 256] {
        self.byte_ids
    }

    /// The special tokens: `(text, id)`.
    pub fn special_tokens(&self) -> impl Iterator<Item = (&str, u32)> + '_ {
        self.kinds
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == TokenKind::Special)
            .map(|(id, _)| {
                let text = std::str::from_utf8(&self.tokens[id]).expect("special tokens are text");
                (text, id as u32)
            })
    }

    /// The key of token `id` in `encoder.json`.
    fn key(&self, id: usize) -> String {
        match self.kinds[id] {
            TokenKind::Special => String::from_utf8_lossy(&self.tokens[id]).into_owned(),
            _ => bytes_to_text(&self.tokens[id]),
        }
    }

    /// The contents of `encoder.json`: one JSON object, ids in order.
    pub fn encoder_json(&self) -> String {
        let entries: Vec<String> = (0..self.len())
            .map(|id| {
                let key = serde_json::to_string(&self.key(id)).expect("a string serialises");
                format!("{key}: {id}")
            })
            .collect();
        format!("{{{}}}", entries.join(", "))
    }

    /// The contents of `vocab.bpe`: the header, then a merge per line.
    pub fn vocab_bpe(&self) -> String {
        let mut out = String::from(VOCAB_BPE_HEADER);
        out.push('\n');
        for m in &self.merges {
            out.push_str(&self.key(m.left as usize));
            out.push(' ');
            out.push_str(&self.key(m.right as usize));
            out.push('\n');
        }
        out
    }

    /// Writes `encoder.json` and `vocab.bpe` into `dir` (created if missing).
    pub fn save(&self, dir: &Path) -> Result<(), TokenizerError> {
        std::fs::create_dir_all(dir).map_err(|source| TokenizerError::Io {
            path: dir.to_path_buf(),
            action: "create the folder",
            source,
        })?;
        for (name, contents) in [
            ("encoder.json", self.encoder_json()),
            ("vocab.bpe", self.vocab_bpe()),
        ] {
            let path = dir.join(name);
            std::fs::write(&path, contents).map_err(|source| TokenizerError::Io {
                path,
                action: "write",
                source,
            })?;
        }
        Ok(())
    }
}
