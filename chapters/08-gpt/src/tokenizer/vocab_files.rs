//! Reading GPT-2's `encoder.json` and `vocab.bpe`, and checking that they
//! agree.
//!
//! A file may be missing, cut short, or written by some other program;
//! every problem ends as a [`TokenizerError`] that names the file (and the
//! line of `vocab.bpe`), never as a panic. The checks:
//!
//! - `encoder.json` is one JSON object from token to a whole number; no key
//!   twice, no id twice, ids `0..n` with no gaps; every key is written in
//!   the byte alphabet, or is a special token `<|…|>`; every byte has a
//!   token;
//! - each `vocab.bpe` line (after an optional `#version` line) is two
//!   tokens separated by one space; both are bytes or made by an earlier
//!   line (the lines are ranks, so a merge cannot use a later one); what
//!   they make is a token of `encoder.json`, made by no other line;
//! - every token of `encoder.json` is a byte, a merge, or special.

use super::byte_alphabet::{text_to_bytes, BYTE_TO_CHAR};
use super::error::TokenizerError;
use super::fast_hash::FastHashMap;
use super::vocabulary::{MergeRule, TokenKind, Vocabulary};
use serde::de::{Deserializer, MapAccess, Visitor};
use serde_json::Value;
use std::fmt;
use std::path::Path;

/// Reads `encoder.json` and `vocab.bpe` from disk.
pub fn read_vocabulary_files(
    encoder_json: &Path,
    vocab_bpe: &Path,
) -> Result<Vocabulary, TokenizerError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| TokenizerError::Io {
            path: path.to_path_buf(),
            action: "read",
            source,
        })
    };
    read_vocabulary(
        &read(encoder_json)?,
        encoder_json,
        &read(vocab_bpe)?,
        vocab_bpe,
    )
}

// ANCHOR: read_vocabulary
/// Builds a vocabulary from the contents of the two files; the paths only
/// name them in errors.
pub fn read_vocabulary(
    encoder_json: &[u8],
    encoder_path: &Path,
    vocab_bpe: &[u8],
    vocab_path: &Path,
) -> Result<Vocabulary, TokenizerError> {
    let source = VocabSource::Gpt2Files {
        encoder: encoder_path,
        vocab: vocab_path,
    };
    let entries = serde_json::from_slice::<Entries>(encoder_json)
        .map_err(|e| source.tokens_error(format!("not a JSON object of token ids: {e}")))?
        .0;
    let is_special = |key: &str| key.starts_with("<|") && key.ends_with("|>") && key.len() > 4;
    let merges = parse_vocab_bpe(vocab_bpe, vocab_path)?;
    build_vocabulary(&entries, &is_special, &merges, &source)
}

/// Checks a token table and its merges (see the module docs) and builds
/// the vocabulary. `merges` are `(place, left, right)` in rank order,
/// `place` being what [`VocabSource::merge_error`] names.
pub(crate) fn build_vocabulary(
    entries: &[(String, Value)],
    is_special: &dyn Fn(&str) -> bool,
    lines: &[(usize, &str, &str)],
    source: &VocabSource<'_>,
) -> Result<Vocabulary, TokenizerError> {
    let (tokens, mut kinds) = parse_token_table(entries, is_special, source)?;
    // bytes -> id, for every token that is not special.
    let mut ids: FastHashMap<&[u8], u32> = FastHashMap::default();
    for (id, bytes) in tokens.iter().enumerate() {
        if kinds[id] != TokenKind::Special {
            ids.insert(bytes, id as u32);
        }
    }
    let mut byte_ids = [0u32; 256];
    for (b, slot) in byte_ids.iter_mut().enumerate() {
        *slot = *ids.get(&[b as u8][..]).ok_or_else(|| {
            source.tokens_error(format!(
                "no token for byte 0x{b:02X} (written `{}`)",
                BYTE_TO_CHAR[b]
            ))
        })?;
        kinds[*slot as usize] = TokenKind::Byte;
    }

    // The merge that makes each token, to say so when a merge uses it early.
    let mut made_by: FastHashMap<Vec<u8>, usize> = FastHashMap::default();
    let mut merges = Vec::with_capacity(lines.len());
    let tokens_name = source.tokens_name();
    for &(place, left, right) in lines {
        let part = |text: &str| -> Result<u32, TokenizerError> {
            let bytes = text_to_bytes(text)
                .map_err(|c| source.merge_error(place, not_in_alphabet(text, c)))?;
            let Some(&id) = ids.get(bytes.as_slice()) else {
                return Err(
                    source.merge_error(place, format!("`{text}` is not a token of {tokens_name}"))
                );
            };
            match kinds[id as usize] {
                k if k != UNSEEN => Ok(id),
                _ => Err(source.merge_error(
                    place,
                    format!(
                        "`{text}` is used before a merge makes it; merges must come in \
                         rank order{}",
                        lines
                            .iter()
                            .find(|(_, l, r)| format!("{l}{r}") == text)
                            .map_or(String::new(), |&(n, _, _)| format!(
                                " ({} makes it)",
                                source.merge_name(n)
                            ))
                    ),
                )),
            }
        };
        let (l, r) = (part(left)?, part(right)?);
        let mut result = tokens[l as usize].clone();
        result.extend_from_slice(&tokens[r as usize]);
        let Some(&id) = ids.get(result.as_slice()) else {
            return Err(source.merge_error(
                place,
                format!(
                    "`{left} {right}` makes `{left}{right}`, which is not a token of \
                     {tokens_name}"
                ),
            ));
        };
        if let Some(first) = made_by.insert(result, place) {
            return Err(source.merge_error(
                place,
                format!(
                    "`{left}{right}` is already made by {}",
                    source.merge_name(first)
                ),
            ));
        }
        kinds[id as usize] = TokenKind::Merged {
            rank: merges.len() as u32,
        };
        merges.push(MergeRule {
            left: l,
            right: r,
            result: id,
        });
    }

    // Every token must be reachable: a byte, a merge, or special.
    if let Some(id) = kinds.iter().position(|k| *k == UNSEEN) {
        return Err(source.tokens_error(format!(
            "token `{}` (id {id}) is neither a byte, nor made by a merge of {}, nor a \
             special token like <|endoftext|>",
            super::byte_alphabet::bytes_to_text(&tokens[id]),
            source.merges_name()
        )));
    }
    Ok(Vocabulary::from_checked_parts(
        tokens, kinds, merges, byte_ids,
    ))
}
// ANCHOR_END: read_vocabulary

/// Where a vocabulary's two halves come from, so that every error names
/// the file and the place in it: GPT-2's `encoder.json` and the lines of
/// `vocab.bpe` (or Hugging Face's `vocab.json` and `merges.txt`, the same
/// formats), or `model.vocab` and `model.merges[i]` of one
/// `tokenizer.json`.
#[derive(Clone, Copy, Debug)]
pub(crate) enum VocabSource<'p> {
    Gpt2Files { encoder: &'p Path, vocab: &'p Path },
    TokenizerJson(&'p Path),
}

impl VocabSource<'_> {
    /// An error about the token table as a whole.
    pub(crate) fn tokens_error(&self, problem: impl Into<String>) -> TokenizerError {
        match self {
            VocabSource::Gpt2Files { encoder, .. } => TokenizerError::file(encoder, problem),
            VocabSource::TokenizerJson(path) => {
                TokenizerError::file(path, format!("model.vocab: {}", problem.into()))
            }
        }
    }

    /// An error about one merge: `place` is its line of `vocab.bpe` (from
    /// 1), or its index in `model.merges` (from 0).
    pub(crate) fn merge_error(&self, place: usize, problem: impl Into<String>) -> TokenizerError {
        match self {
            VocabSource::Gpt2Files { vocab, .. } => TokenizerError::line(vocab, place, problem),
            VocabSource::TokenizerJson(path) => TokenizerError::file(
                path,
                format!("{}: {}", self.merge_name(place), problem.into()),
            ),
        }
    }

    /// The token table, as a merge's error names it.
    fn tokens_name(&self) -> String {
        match self {
            VocabSource::Gpt2Files { encoder, .. } => encoder.display().to_string(),
            VocabSource::TokenizerJson(_) => "model.vocab".to_string(),
        }
    }

    /// The merges, as the token table's error names them.
    fn merges_name(&self) -> String {
        match self {
            VocabSource::Gpt2Files { vocab, .. } => vocab.display().to_string(),
            VocabSource::TokenizerJson(_) => "model.merges".to_string(),
        }
    }

    /// One merge: `line 7`, or `model.merges[6]`.
    fn merge_name(&self, place: usize) -> String {
        match self {
            VocabSource::Gpt2Files { .. } => format!("line {place}"),
            VocabSource::TokenizerJson(_) => format!("model.merges[{place}]"),
        }
    }
}

/// The kind of a token no line has made yet (`Merged` with an impossible rank).
const UNSEEN: TokenKind = TokenKind::Merged { rank: u32::MAX };

fn not_in_alphabet(text: &str, c: char) -> String {
    format!(
        "`{text}`: the character {c:?} (U+{:04X}) is not in GPT-2's byte alphabet",
        c as u32
    )
}

/// The tokens of the table by id, with `Special` for the keys `is_special`
/// picks and [`UNSEEN`] for the others.
fn parse_token_table(
    entries: &[(String, Value)],
    is_special: &dyn Fn(&str) -> bool,
    source: &VocabSource<'_>,
) -> Result<(Vec<Vec<u8>>, Vec<TokenKind>), TokenizerError> {
    let n = entries.len();
    let mut by_id: Vec<Option<(String, Vec<u8>, TokenKind)>> = vec![None; n];
    let mut keys: FastHashMap<&str, ()> = FastHashMap::default();
    for (key, value) in entries {
        if keys.insert(key.as_str(), ()).is_some() {
            return Err(source.tokens_error(format!("the token `{key}` appears twice")));
        }
        let id = value.as_u64().filter(|&id| id < n as u64).ok_or_else(|| {
            source.tokens_error(match value.as_u64() {
                Some(id) => {
                    format!("token `{key}` has id {id}, but {n} tokens must have the ids 0..{n}")
                }
                None => format!(
                    "token `{key}` has the id {value}, which is not a whole number \
                         ≥ 0"
                ),
            })
        })? as usize;
        let (token, kind) = if is_special(key) {
            (key.as_bytes().to_vec(), TokenKind::Special)
        } else {
            let token =
                text_to_bytes(key).map_err(|c| source.tokens_error(not_in_alphabet(key, c)))?;
            if token.is_empty() {
                return Err(source.tokens_error(format!(
                    "the empty token \"\" (id {id}) cannot be made of bytes"
                )));
            }
            (token, UNSEEN)
        };
        if let Some((other, _, _)) = &by_id[id] {
            return Err(
                source.tokens_error(format!("tokens `{other}` and `{key}` both have id {id}"))
            );
        }
        by_id[id] = Some((key.clone(), token, kind));
    }
    // n entries, ids < n, no id twice: every id is present.
    Ok(by_id
        .into_iter()
        .map(|e| {
            let (_, token, kind) = e.expect("n distinct ids below n");
            (token, kind)
        })
        .unzip())
}

/// The entries of a JSON object in file order, duplicates kept (a
/// `serde_json::Map` would silently keep the last).
pub(crate) struct Entries(pub(crate) Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Entries, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object {\"token\": id, ...}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    out.push(entry);
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The merges of `vocab.bpe`: `(line number, left, right)`.
fn parse_vocab_bpe<'a>(
    bytes: &'a [u8],
    path: &Path,
) -> Result<Vec<(usize, &'a str, &'a str)>, TokenizerError> {
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let line = 1 + bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count();
        TokenizerError::line(path, line, "not valid UTF-8")
    })?;
    let mut merges = Vec::new();
    let all: Vec<&str> = text.split('\n').collect();
    for (i, raw) in all.iter().enumerate() {
        let line = i + 1;
        let content = raw.strip_suffix('\r').unwrap_or(raw);
        if line == 1 && content.starts_with('#') {
            continue; // "#version: 0.2"; a file without it is read all the same
        }
        if content.is_empty() && i + 1 == all.len() {
            continue; // the newline that ends the last line
        }
        let mut parts = content.split(' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(l), Some(r), None) if !l.is_empty() && !r.is_empty() => merges.push((line, l, r)),
            _ => {
                let shown: String = content.chars().take(60).collect();
                return Err(TokenizerError::line(
                    path,
                    line,
                    format!(
                        "expected two tokens separated by one space, found `{shown}`{}",
                        if shown.len() < content.len() {
                            "…"
                        } else {
                            ""
                        }
                    ),
                ));
            }
        }
    }
    Ok(merges)
}
