//! GPT-2's tokenizer: pre-tokenize, look up or merge each piece, and back.

use super::bpe::MergeTable;
use super::error::TokenizerError;
use super::fast_hash::FastHashMap;
use super::pretokenize::pieces;
use super::tokenizer_json::{read_tokenizer_json, read_tokenizer_json_file};
use super::vocab_files::{read_vocabulary, read_vocabulary_files};
use super::vocabulary::{TokenKind, Vocabulary, END_OF_TEXT};
use std::path::{Path, PathBuf};

/// GPT-2's byte-level BPE tokenizer, giving the same ids as tiktoken's
/// `gpt2` encoding for any text.
///
/// It holds no mutable state, so one tokenizer can be shared by threads.
#[derive(Clone)]
pub struct Gpt2Tokenizer {
    vocabulary: Vocabulary,
    /// bytes -> id of every token BPE can produce (not the special ones).
    token_ids: FastHashMap<Vec<u8>, u32>,
    merges: MergeTable,
    /// `(text, id)` of the special tokens, longest text first.
    specials: Vec<(String, u32)>,
}

/// The folder GPT-2's files ship in: `data/gpt2` of the repository (or of
/// `$CANDLE_DATA`).
pub fn default_gpt2_dir() -> PathBuf {
    chapter_06::data::default_data_dir().join("gpt2")
}

impl std::fmt::Debug for Gpt2Tokenizer {
    /// The sizes, not the 50 257 tokens.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gpt2Tokenizer")
            .field("vocab_size", &self.vocab_size())
            .field("merges", &self.vocabulary.merges().len())
            .field("merging_pairs", &self.merges.pair_count())
            .field("special_tokens", &self.specials)
            .finish()
    }
}

// ANCHOR: word_cache
/// The tokens of each piece already met in one `encode` call. Pieces repeat
/// (`" the"`, `","`, `" and"`), so most of a long text is looked up, not
/// merged. Keys borrow from the text and the ids of all entries share one
/// vector: a new entry allocates nothing of its own.
#[derive(Default)]
struct WordCache<'t> {
    /// piece -> range of `ids`.
    ranges: FastHashMap<&'t [u8], (u32, u32)>,
    ids: Vec<u32>,
}
// ANCHOR_END: word_cache

impl Gpt2Tokenizer {
    /// Reads `encoder.json` and `vocab.bpe`.
    pub fn from_files(encoder_json: &Path, vocab_bpe: &Path) -> Result<Self, TokenizerError> {
        Ok(Self::from_vocabulary(read_vocabulary_files(
            encoder_json,
            vocab_bpe,
        )?))
    }

    /// Reads `dir/encoder.json` and `dir/vocab.bpe`.
    pub fn from_dir(dir: &Path) -> Result<Self, TokenizerError> {
        Self::from_files(&dir.join("encoder.json"), &dir.join("vocab.bpe"))
    }

    /// GPT-2's own vocabulary, from [`default_gpt2_dir`].
    pub fn gpt2() -> Result<Self, TokenizerError> {
        Self::from_dir(&default_gpt2_dir())
    }

    /// From the contents of the two files; the paths only name them in errors.
    pub fn from_bytes(
        encoder_json: &[u8],
        encoder_path: &Path,
        vocab_bpe: &[u8],
        vocab_path: &Path,
    ) -> Result<Self, TokenizerError> {
        Ok(Self::from_vocabulary(read_vocabulary(
            encoder_json,
            encoder_path,
            vocab_bpe,
            vocab_path,
        )?))
    }

    /// Reads a Hugging Face `tokenizer.json` (a GPT-2-family one: see
    /// [`tokenizer_json`](super::tokenizer_json) for what is refused).
    pub fn from_tokenizer_json(path: &Path) -> Result<Self, TokenizerError> {
        Ok(Self::from_vocabulary(read_tokenizer_json_file(path)?))
    }

    /// From the contents of a `tokenizer.json`; the path only names it in
    /// errors.
    pub fn from_tokenizer_json_bytes(bytes: &[u8], path: &Path) -> Result<Self, TokenizerError> {
        Ok(Self::from_vocabulary(read_tokenizer_json(bytes, path)?))
    }

    /// The tokenizer of a (checked) vocabulary.
    pub fn from_vocabulary(vocabulary: Vocabulary) -> Self {
        let mut token_ids = FastHashMap::default();
        let mut mergeable = Vec::new();
        let mut specials = Vec::new();
        for id in 0..vocabulary.len() as u32 {
            let bytes = vocabulary.token_bytes(id).expect("id < len");
            match vocabulary.kind(id).expect("id < len") {
                TokenKind::Special => {
                    specials.push((String::from_utf8_lossy(bytes).into_owned(), id))
                }
                kind => {
                    token_ids.insert(bytes.to_vec(), id);
                    if let TokenKind::Merged { rank } = kind {
                        mergeable.push((bytes, rank, id));
                    }
                }
            }
        }
        // A longer special token wins over one that is its prefix.
        specials.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.1.cmp(&b.1)));
        let merges = MergeTable::new(vocabulary.byte_ids(), &mergeable);
        Gpt2Tokenizer {
            token_ids,
            merges,
            specials,
            vocabulary,
        }
    }

    /// The vocabulary (tokens, merges), e.g. to [`save`](Vocabulary::save) it.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// Number of token ids (50 257 for GPT-2).
    pub fn vocab_size(&self) -> usize {
        self.vocabulary.len()
    }

    /// The id of `<|endoftext|>` (50 256 for GPT-2), if the vocabulary has it.
    pub fn eot_token(&self) -> Option<u32> {
        self.special_token(END_OF_TEXT)
    }

    /// The id of special token `text`.
    pub fn special_token(&self, text: &str) -> Option<u32> {
        self.specials.iter().find(|(t, _)| t == text).map(|s| s.1)
    }

    /// The bytes of token `id`.
    pub fn token_bytes(&self, id: u32) -> Option<&[u8]> {
        self.vocabulary.token_bytes(id)
    }

    // ANCHOR: encode
    /// The ids of `text`. Special tokens are not recognised: `<|endoftext|>`
    /// in the text is text (tiktoken's `encode_ordinary`), so a document
    /// cannot inject one.
    pub fn encode(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut cache = WordCache::default();
        for piece in pieces(text) {
            self.encode_piece(piece.as_bytes(), &mut cache, &mut out);
        }
        out
    }

    /// One piece: a whole token is one lookup; otherwise the cache, and
    /// only a piece never met before is merged.
    #[inline]
    fn encode_piece<'t>(&self, piece: &'t [u8], cache: &mut WordCache<'t>, out: &mut Vec<u32>) {
        if let Some(&id) = self.token_ids.get(piece) {
            out.push(id);
        } else if let Some(&(start, end)) = cache.ranges.get(piece) {
            out.extend_from_slice(&cache.ids[start as usize..end as usize]);
        } else {
            let first = out.len();
            self.merges.encode_piece(piece, out);
            let start = cache.ids.len() as u32;
            cache.ids.extend_from_slice(&out[first..]);
            cache.ranges.insert(piece, (start, cache.ids.len() as u32));
        }
    }
    // ANCHOR_END: encode

    /// [`encode`](Self::encode) without the word cache: every piece that is
    /// not a whole token is merged again (to measure what the cache buys).
    pub fn encode_without_cache(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3);
        for piece in pieces(text) {
            match self.token_ids.get(piece.as_bytes()) {
                Some(&id) => out.push(id),
                None => self.merges.encode_piece(piece.as_bytes(), &mut out),
            }
        }
        out
    }

    // ANCHOR: encode_with_special
    /// The ids of `text` where every special token (`<|endoftext|>`) is its
    /// id and the text between them is encoded as by [`encode`](Self::encode)
    /// (tiktoken's `encode(text, allowed_special="all")`).
    pub fn encode_with_special(&self, text: &str) -> Vec<u32> {
        let mut out = Vec::with_capacity(text.len() / 3);
        let mut cache = WordCache::default();
        let mut rest = text;
        while !rest.is_empty() {
            // The earliest special token; the longest one where two start.
            let next = self
                .specials
                .iter()
                .filter_map(|(s, id)| rest.find(s.as_str()).map(|at| (at, s.len(), *id)))
                .min_by_key(|&(at, len, _)| (at, std::cmp::Reverse(len)));
            let (ordinary, special) = match next {
                Some((at, len, id)) => (&rest[..at], Some((len, at, id))),
                None => (rest, None),
            };
            for piece in pieces(ordinary) {
                self.encode_piece(piece.as_bytes(), &mut cache, &mut out);
            }
            match special {
                Some((len, at, id)) => {
                    out.push(id);
                    rest = &rest[at + len..];
                }
                None => break,
            }
        }
        out
    }
    // ANCHOR_END: encode_with_special

    /// The ids of any bytes, valid UTF-8 or not: each valid stretch is
    /// encoded as text, each invalid stretch as one piece of raw bytes, so
    /// `decode(encode_bytes(b)) == b` for every `b`.
    pub fn encode_bytes(&self, bytes: &[u8]) -> Vec<u32> {
        let mut out = Vec::with_capacity(bytes.len() / 3);
        let mut cache = WordCache::default();
        for chunk in bytes.utf8_chunks() {
            for piece in pieces(chunk.valid()) {
                self.encode_piece(piece.as_bytes(), &mut cache, &mut out);
            }
            if !chunk.invalid().is_empty() {
                self.encode_piece(chunk.invalid(), &mut cache, &mut out);
            }
        }
        out
    }

    // ANCHOR: decode
    /// The bytes of `ids`, concatenated. They need not be UTF-8: a token
    /// can end in the middle of a character (`decode(&[49426])` is half of
    /// an emoji).
    pub fn decode(&self, ids: &[u32]) -> Result<Vec<u8>, TokenizerError> {
        let mut out = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            let bytes = self
                .vocabulary
                .token_bytes(id)
                .ok_or(TokenizerError::UnknownId {
                    id,
                    vocab_size: self.vocab_size(),
                })?;
            out.extend_from_slice(bytes);
        }
        Ok(out)
    }

    /// `ids` as text: bytes that are not UTF-8, and ids that are not in the
    /// vocabulary, become U+FFFD `�`.
    pub fn decode_lossy(&self, ids: &[u32]) -> String {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            match self.vocabulary.token_bytes(id) {
                Some(b) => bytes.extend_from_slice(b),
                None => bytes.extend_from_slice("\u{FFFD}".as_bytes()),
            }
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }
    // ANCHOR_END: decode
}
