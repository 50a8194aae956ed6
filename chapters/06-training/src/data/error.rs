//! What can go wrong while loading data.
//!
//! A data error is only useful if it says *which* file and *what* about it:
//! `data/mnist/train-images-idx3-ubyte.gz: truncated data: ...` lets the
//! reader fix the problem (re-download, check the path) without a debugger.
//! So every variant that comes from a file carries its path, and the CSV
//! readers add the line number.

use std::path::PathBuf;

// ANCHOR: error
/// An error from a data reader, a download, a dataset or a loader.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened, read, written or renamed.
    #[error("{}: cannot {action}: {cause}", path.display())]
    Io {
        path: PathBuf,
        action: &'static str,
        cause: std::io::Error,
    },

    /// The file's content is not what its format requires.
    #[error("{}: {msg}", path.display())]
    Format { path: PathBuf, msg: String },

    /// One line of a text file is malformed (lines count from 1).
    #[error("{}:{line}: {msg}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        msg: String,
    },

    /// A file's SHA-256 is not the one we expected.
    #[error("{}: SHA-256 mismatch: expected {expected}, got {actual}{note}", path.display())]
    Checksum {
        path: PathBuf,
        expected: String,
        actual: String,
        note: String,
    },

    /// An HTTP request failed (connection, status code, truncated body).
    #[error("{url}: {msg}")]
    Http { url: String, msg: String },

    /// A dataset, loader or transform was used with arguments it cannot take.
    #[error("{op}: {msg}")]
    Invalid { op: &'static str, msg: String },

    /// Building a tensor from a batch failed.
    #[error(transparent)]
    Tensor(#[from] chapter_02::Error),
}
// ANCHOR_END: error

impl DataError {
    /// Shorthand for [`DataError::Format`].
    pub fn format(path: impl Into<PathBuf>, msg: impl Into<String>) -> Self {
        DataError::Format {
            path: path.into(),
            msg: msg.into(),
        }
    }

    /// Shorthand for [`DataError::Io`].
    pub fn io(path: impl Into<PathBuf>, action: &'static str, cause: std::io::Error) -> Self {
        DataError::Io {
            path: path.into(),
            action,
            cause,
        }
    }

    /// Shorthand for [`DataError::Invalid`].
    pub fn invalid(op: &'static str, msg: impl Into<String>) -> Self {
        DataError::Invalid {
            op,
            msg: msg.into(),
        }
    }
}

/// The result type of this module.
pub type Result<T, E = DataError> = std::result::Result<T, E>;
