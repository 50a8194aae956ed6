//! Fetching a model from the Hugging Face Hub into Hugging Face's cache.
//!
//! `candle download gpt2` does what Python's `huggingface_hub` does, with a
//! small client of our own on `ureq` (rustls, no OpenSSL):
//!
//! 1. [`client`]: `HEAD {endpoint}/{model}/resolve/{revision}/{file}` tells
//!    the commit, the etag (the SHA-256 of a large file) and the size, and
//!    where a large file really lives (a redirect to a CDN);
//! 2. [`blob`]: `GET` the bytes into `blobs/{etag}.incomplete`, resuming
//!    with a `Range` request after an interruption, verify size and hash,
//!    rename into place;
//! 3. [`cache`]: link `snapshots/{commit}/{file}` to the blob and record
//!    `refs/{revision}`, the layout Python reads and writes;
//! 4. [`download`]: the files a GPT needs, all from one commit;
//! 5. [`resolve`]: later commands find the files again, offline.

pub mod blob;
pub mod cache;
pub mod client;
pub mod download;
pub mod error;
pub mod model_id;
pub mod resolve;

pub use blob::BlobDownload;
pub use cache::HubCache;
pub use client::{FileMetadata, HubClient, HubConfig, DEFAULT_ENDPOINT};
pub use download::{DownloadEvent, FileOutcome, ModelDownload, RepoFile, MODEL_FILES};
pub use error::{HubError, Result};
pub use model_id::ModelId;
pub use resolve::{cached_model, resolve_model, resolve_model_in, ModelFiles, ModelSource};

/// Lower-case hexadecimal SHA-256 of `bytes`: the etag the Hub gives a
/// large file.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    format!("{:x}", Sha256::digest(bytes))
}
