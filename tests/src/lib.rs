//! Shared helpers for the workspace-wide tests.
//!
//! The checks are plain functions over a [`SourceTree`], so each one is
//! unit-tested on a small in-memory tree (proving it *can* fail) and then run
//! on the real workspace by the integration tests in `tests/tests/`.

pub mod book;
pub mod checksums;
pub mod notebooks;
pub mod parity;
pub mod problem;
pub mod readme;
pub mod source_tree;

pub use problem::{Problem, Problems};
pub use source_tree::{DiskTree, MemoryTree, SourceTree};

use std::path::PathBuf;

/// The workspace root: the folder holding the root `Cargo.toml`, `book.toml` and `README.md`.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let root = manifest_dir.join("..");
    root.canonicalize().unwrap_or(root)
}
