//! What can go wrong between us and the Hub, each error naming the file (or
//! folder, or model) and the problem, and saying what to do about it.

use std::path::PathBuf;

/// The errors of [`hub`](super).
#[derive(Debug, thiserror::Error)]
pub enum HubError {
    /// The model id is not `name` or `owner/name` with safe characters.
    #[error("invalid model id `{id}`: {reason}")]
    InvalidModelId { id: String, reason: String },
    /// A revision or a file name that would escape its folder or is empty.
    #[error("invalid {what} `{value}`: {reason}")]
    InvalidName {
        what: &'static str,
        value: String,
        reason: String,
    },
    /// `HF_ENDPOINT` / `--endpoint` is not an `http(s)://` URL.
    #[error("invalid Hub endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// None of the variables that locate the cache is set.
    #[error("cannot locate the Hugging Face cache: set HF_HUB_CACHE, HF_HOME or HOME")]
    NoCacheDir,

    /// The Hub does not know the model (or hides it: the Hub answers a
    /// private model's id as if it did not exist).
    #[error(
        "model `{model}` not found on {endpoint} (HTTP {status} for {url}): check the id \
         (e.g. `gpt2`, `openai-community/gpt2`); if the model is private, set HF_TOKEN"
    )]
    ModelNotFound {
        model: String,
        endpoint: String,
        url: String,
        status: u16,
    },
    /// The model exists but the revision (branch, tag or commit) does not.
    #[error("model `{model}` has no revision `{revision}` (HTTP 404 for {url}): check --revision")]
    RevisionNotFound {
        model: String,
        revision: String,
        url: String,
    },
    /// The model exists but has no such file.
    #[error(
        "{file}: model `{model}` has no such file at revision `{revision}` (HTTP 404 for {url})"
    )]
    FileNotFound {
        model: String,
        revision: String,
        file: String,
        url: String,
    },
    /// 401/403: the model is private or gated, or the token is wrong.
    #[error("{file}: access to model `{model}` denied (HTTP {status} for {url}): {hint}")]
    AccessDenied {
        model: String,
        file: String,
        url: String,
        status: u16,
        hint: String,
    },
    /// Any other HTTP status.
    #[error("{file}: {url} answered HTTP {status}{detail}")]
    Http {
        file: String,
        url: String,
        status: u16,
        detail: String,
    },
    /// The request did not get an answer at all.
    #[error(
        "{file}: cannot reach {url}: {message} (check the network, or HF_ENDPOINT / --endpoint)"
    )]
    Network {
        file: String,
        url: String,
        message: String,
    },
    /// The answer lacks a header the Hub always sends.
    #[error("{file}: the answer from {url} has no {header} header; is this a Hugging Face Hub endpoint?")]
    MissingHeader {
        file: String,
        url: String,
        header: &'static str,
    },
    /// The connection broke before the whole file arrived. The bytes that
    /// did arrive are kept, and the next run continues from there.
    #[error(
        "{file}: download interrupted after {received} of {expected} bytes ({message}); \
         the partial file {partial} is kept: run the command again to resume"
    )]
    Interrupted {
        file: String,
        received: u64,
        expected: String,
        partial: PathBuf,
        message: String,
    },
    /// More bytes arrived than the Hub announced.
    #[error("{file}: size mismatch: expected {expected} bytes, received {actual}; the partial file was removed")]
    SizeMismatch {
        file: String,
        expected: u64,
        actual: u64,
    },
    /// The bytes are not those the Hub announced (its etag is their SHA-256).
    #[error("{file}: SHA-256 mismatch: expected {expected}, got {actual}; the downloaded file was removed")]
    HashMismatch {
        file: String,
        expected: String,
        actual: String,
    },
    /// A file-system operation failed (disk full, permissions, ...).
    #[error("{path}: cannot {action}: {source}")]
    Io {
        path: PathBuf,
        action: &'static str,
        source: std::io::Error,
    },

    /// `resolve_model`: the id is not in the cache (we never go online there).
    #[error(
        "model `{model}` (revision `{revision}`) is not in the Hugging Face cache {cache}: \
         run `candle download {model}` first{detail}"
    )]
    NotCached {
        model: String,
        revision: String,
        cache: PathBuf,
        detail: String,
    },
    /// `resolve_model`: a folder that lacks a model's files.
    #[error("{path}: not a model folder: {missing} is missing (a model folder holds config.json and model.safetensors)")]
    NotAModelDir { path: PathBuf, missing: String },
    /// `resolve_model`: a training run's folder that lacks one of its files.
    #[error(
        "{path}: a training run's folder without {missing} (`candle train shakespeare` writes \
         config.json, checkpoint.safetensors and vocab.json; did the run save a checkpoint?)"
    )]
    NotARunDir { path: PathBuf, missing: String },
    /// `resolve_model`: neither a folder nor a model id.
    #[error("--model `{spec}`: not a folder, and not a model id ({reason})")]
    UnknownModelSpec { spec: String, reason: String },
}

impl HubError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        HubError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}

/// `Result` with a [`HubError`].
pub type Result<T> = std::result::Result<T, HubError>;
