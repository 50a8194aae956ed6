//! Data sets and loaders.
//!
//! Training reads the same examples over and over, in a new order each epoch,
//! a batch at a time. This module keeps that cheap and reproducible:
//!
//! - [`Dataset`] is anything that can copy a list of examples into a batch;
//!   [`InMemoryDataset`] stores all features as one contiguous `f32` matrix
//!   (`[N, features...]`, row-major) plus `i64` labels, so a batch is a gather
//!   of rows — a few hundred kilobytes of `memcpy`.
//! - [`DataLoader`] cuts a dataset into batches, shuffles with an order derived
//!   from `(seed, epoch)` alone (so a resumed run sees exactly the batches it
//!   would have seen), applies a seeded [`Transform`], optionally assembles
//!   batches ahead of time on a background thread, and yields chapter 03
//!   tensors: inputs `f32 [B, features...]`, targets `i64 [B]`.
//! - Readers for the data in the repository's `data/` folder: MNIST in the IDX
//!   format ([`idx`], [`Mnist`]), scikit-learn's 8x8 [digits](load_digits) and
//!   [`iris`](load_iris) CSV files; and [`download_mnist`] for fetching MNIST
//!   with checksums and atomic writes.
//!
//! Every loader returns a [`DataError`] that names the file (and line) and
//! what is wrong with it; none of them panics on bad input.

mod dataset;
mod digits;
mod download;
mod error;
mod gzip;
pub mod idx;
mod iris;
mod loader;
mod mnist;
mod transforms;

pub use dataset::{Dataset, Example, InMemoryDataset};
pub use digits::{load_digits, DIGITS_FEATURES, DIGITS_ROWS};
pub use download::{
    download_mnist, download_mnist_with_progress, sha256_hex, verify_mnist_file, DownloadEvent,
    DownloadOutcome, MnistFile, MNIST_FILES, MNIST_MIRROR,
};
pub use error::{DataError, Result};
pub use gzip::{decode_maybe_gzip, is_gzip, read_maybe_gzip};
pub use iris::{load_iris, Iris};
pub use loader::{derive_seed, DataLoader, EpochBatches};
pub use mnist::{Mnist, MnistOptions, MNIST_MEAN, MNIST_STD};
pub use transforms::{Compose, Normalize, RandomCrop, RandomHorizontalFlip, Transform};

use std::path::{Path, PathBuf};

// ANCHOR: default_data_dir
/// The folder that holds the project's data (`mnist/`, `digits/`, ...).
///
/// The environment variable `CANDLE_DATA` wins when it is set, so data can
/// live anywhere. Otherwise we walk up from the current directory, then from
/// this crate's directory, to the first folder with a `data/mnist` inside: a
/// test runs in `chapters/06-training`, a user's program anywhere in the
/// checkout, and both find the repository's `data/`. If nothing is found we
/// return `data` (relative), and the loader's error will name that path.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CANDLE_DATA") {
        if !dir.is_empty() {
            return PathBuf::from(dir);
        }
    }
    let mut starts = Vec::new();
    if let Ok(cwd) = std::env::current_dir() {
        starts.push(cwd);
    }
    if let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
        starts.push(PathBuf::from(dir));
    }
    starts.push(PathBuf::from(env!("CARGO_MANIFEST_DIR")));
    starts
        .iter()
        .find_map(|start| find_data_dir_above(start))
        .unwrap_or_else(|| PathBuf::from("data"))
}
// ANCHOR_END: default_data_dir

/// The first `dir/data` with a `mnist` folder inside, for `dir` = `start` and
/// each of its ancestors.
fn find_data_dir_above(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join("data"))
        .find(|data| data.join("mnist").is_dir())
}
