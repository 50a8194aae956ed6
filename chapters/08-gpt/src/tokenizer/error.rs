//! What can go wrong with a tokenizer: its files, an id, a training setting.

use std::path::PathBuf;

/// A tokenizer error. Every error about a file names the file (and, for
/// `vocab.bpe`, the line).
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The file could not be read or written.
    #[error("{}: cannot {action}: {source}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },
    /// A problem with a whole file (`encoder.json`, or the two files together).
    #[error("{}: {problem}", path.display())]
    File { path: PathBuf, problem: String },
    /// A problem on one line of `vocab.bpe` (lines count from 1).
    #[error("{}:{line}: {problem}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        problem: String,
    },
    /// `decode` met an id that is not in the vocabulary.
    #[error("token id {id} is not in the vocabulary (ids 0..{vocab_size})")]
    UnknownId { id: u32, vocab_size: usize },
    /// The BPE trainer was asked for something it cannot do.
    #[error("BPE trainer: {0}")]
    Trainer(String),
}

impl TokenizerError {
    pub(crate) fn file(path: &std::path::Path, problem: impl Into<String>) -> TokenizerError {
        TokenizerError::File {
            path: path.to_path_buf(),
            problem: problem.into(),
        }
    }

    pub(crate) fn line(
        path: &std::path::Path,
        line: usize,
        problem: impl Into<String>,
    ) -> TokenizerError {
        TokenizerError::Line {
            path: path.to_path_buf(),
            line,
            problem: problem.into(),
        }
    }
}
