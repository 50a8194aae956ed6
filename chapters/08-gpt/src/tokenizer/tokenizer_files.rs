//! Which files of a folder hold its tokenizer.
//!
//! The same byte-level BPE vocabulary travels under three names:
//! OpenAI's `encoder.json` + `vocab.bpe`, Hugging Face's `vocab.json` +
//! `merges.txt` (the same two formats under other names), and the
//! `tokenizers` library's single [`tokenizer.json`](super::tokenizer_json).
//! A folder may hold several; the pair is preferred, since it is what GPT-2
//! itself was published with and needs no checks of a pipeline around it.

use super::error::TokenizerError;
use super::gpt2_tokenizer::Gpt2Tokenizer;
use std::fmt;
use std::path::{Path, PathBuf};

// ANCHOR: tokenizer_files
/// The files a tokenizer is read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenizerFiles {
    /// A token table and its merges: `encoder.json` + `vocab.bpe`, or
    /// `vocab.json` + `merges.txt`.
    Pair { vocab: PathBuf, merges: PathBuf },
    /// One `tokenizer.json`.
    TokenizerJson(PathBuf),
}

impl TokenizerFiles {
    /// The first of these that `dir` holds: `encoder.json` + `vocab.bpe`,
    /// `vocab.json` + `merges.txt`, `tokenizer.json`.
    pub fn in_dir(dir: &Path) -> Option<TokenizerFiles> {
        let file = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        let pair = |v: &str, m: &str| match (file(v), file(m)) {
            (Some(vocab), Some(merges)) => Some(TokenizerFiles::Pair { vocab, merges }),
            _ => None,
        };
        pair("encoder.json", "vocab.bpe")
            .or_else(|| pair("vocab.json", "merges.txt"))
            .or_else(|| file("tokenizer.json").map(TokenizerFiles::TokenizerJson))
    }

    /// The pair when both files are there, else `tokenizer.json`, else none
    /// (a lone `vocab.json` is not enough).
    pub fn choose(
        vocab: Option<&Path>,
        merges: Option<&Path>,
        tokenizer_json: Option<&Path>,
    ) -> Option<TokenizerFiles> {
        match (vocab, merges, tokenizer_json) {
            (Some(v), Some(m), _) => Some(TokenizerFiles::Pair {
                vocab: v.to_path_buf(),
                merges: m.to_path_buf(),
            }),
            (_, _, Some(t)) => Some(TokenizerFiles::TokenizerJson(t.to_path_buf())),
            _ => None,
        }
    }

    /// Reads and checks the files.
    pub fn load(&self) -> Result<Gpt2Tokenizer, TokenizerError> {
        match self {
            TokenizerFiles::Pair { vocab, merges } => Gpt2Tokenizer::from_files(vocab, merges),
            TokenizerFiles::TokenizerJson(path) => Gpt2Tokenizer::from_tokenizer_json(path),
        }
    }

    /// The file that holds the token table (for messages about its size).
    pub fn vocab_file(&self) -> &Path {
        match self {
            TokenizerFiles::Pair { vocab, .. } => vocab,
            TokenizerFiles::TokenizerJson(path) => path,
        }
    }
}
// ANCHOR_END: tokenizer_files

impl fmt::Display for TokenizerFiles {
    /// The file names, as messages show them: `vocab.json + merges.txt`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &Path| {
            p.file_name()
                .map_or_else(|| p.display().to_string(), |n| n.to_string_lossy().into())
        };
        match self {
            TokenizerFiles::Pair { vocab, merges } => {
                write!(f, "{} + {}", name(vocab), name(merges))
            }
            TokenizerFiles::TokenizerJson(path) => f.write_str(&name(path)),
        }
    }
}

impl Gpt2Tokenizer {
    /// The tokenizer of a folder ([`TokenizerFiles::in_dir`]), and the
    /// files it was read from.
    pub fn from_folder(dir: &Path) -> Result<(Gpt2Tokenizer, TokenizerFiles), TokenizerError> {
        let files = TokenizerFiles::in_dir(dir).ok_or_else(|| {
            TokenizerError::file(
                dir,
                "no tokenizer here: looked for encoder.json + vocab.bpe, vocab.json + \
                 merges.txt, and tokenizer.json",
            )
        })?;
        Ok((files.load()?, files))
    }
}
