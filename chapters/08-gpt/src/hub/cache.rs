//! The Hugging Face cache layout, shared with Python's `huggingface_hub`.
//!
//! ```text
//! $HF_HUB_CACHE (default $HF_HOME/hub, default ~/.cache/huggingface/hub)
//! └── models--openai-community--gpt2/
//!     ├── blobs/
//!     │   ├── 248dfc39...2a7e5         the bytes, named by their etag
//!     │   └── 10c66461...a8d3.incomplete   a download in progress
//!     ├── refs/
//!     │   └── main                     "607a30d7..." : the commit of `main`
//!     ├── snapshots/
//!     │   └── 607a30d7.../             one folder per commit
//!     │       ├── config.json -> ../../blobs/10c66461...
//!     │       └── model.safetensors -> ../../blobs/248dfc39...
//!     └── .no_exist/607a30d7.../tokenizer.json   "this commit has no such file"
//! ```
//!
//! Content lives once in `blobs/`, named by the Hub's etag (for large files
//! the SHA-256 of the bytes); a snapshot is a folder of relative symbolic
//! links, so two commits that share a file share its blob. A branch name is
//! resolved through `refs/`. Because we write exactly this layout, a model
//! downloaded by `candle download` is found by Python's `from_pretrained`
//! and one downloaded by Python is found by `resolve_model`.

use super::error::{HubError, Result};
use super::model_id::{is_commit_hash, validate_relative_name, ModelId};
use std::path::{Path, PathBuf};

/// The root of a Hugging Face hub cache (the folder holding `models--*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HubCache {
    root: PathBuf,
}

// ANCHOR: cache_location
impl HubCache {
    /// A cache rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> HubCache {
        HubCache { root: root.into() }
    }

    /// The cache `huggingface_hub` would use: `$HF_HUB_CACHE`, else
    /// `$HF_HOME/hub`, else `$XDG_CACHE_HOME/huggingface/hub`, else
    /// `~/.cache/huggingface/hub`.
    pub fn from_env() -> Result<HubCache> {
        HubCache::from_vars(|name| std::env::var(name).ok())
    }

    /// [`HubCache::from_env`] reading variables through `var` (tests pass a
    /// map rather than change the process's environment).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HubCache> {
        let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(cache) = set("HF_HUB_CACHE") {
            return Ok(HubCache::new(cache));
        }
        Ok(HubCache::new(hf_home(&var)?.join("hub")))
    }
}

/// `$HF_HOME`, else `$XDG_CACHE_HOME/huggingface`, else
/// `~/.cache/huggingface`: where the cache and the login token live.
pub(crate) fn hf_home(var: &impl Fn(&str) -> Option<String>) -> Result<PathBuf> {
    let set = |name: &str| var(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(home) = set("HF_HOME") {
        return Ok(home);
    }
    if let Some(xdg) = set("XDG_CACHE_HOME") {
        return Ok(xdg.join("huggingface"));
    }
    let home = set("HOME").or_else(|| set("USERPROFILE"));
    home.map(|h| h.join(".cache").join("huggingface"))
        .ok_or(HubError::NoCacheDir)
}
// ANCHOR_END: cache_location

// ANCHOR: cache_paths
impl HubCache {
    /// The cache's root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// `models--{owner}--{name}`: everything about one model.
    pub fn repo_dir(&self, model: &ModelId) -> PathBuf {
        self.root.join(model.cache_folder())
    }

    /// `blobs/{etag}`: a file's bytes, named by the Hub's etag.
    pub fn blob_path(&self, model: &ModelId, etag: &str) -> PathBuf {
        self.repo_dir(model).join("blobs").join(etag)
    }

    /// `blobs/{etag}.incomplete`: a download in progress (or interrupted),
    /// the name `huggingface_hub` uses too, so either program resumes it.
    pub fn incomplete_path(&self, model: &ModelId, etag: &str) -> PathBuf {
        self.repo_dir(model)
            .join("blobs")
            .join(format!("{etag}.incomplete"))
    }

    /// `snapshots/{commit}`: the files of one commit, as links to blobs.
    pub fn snapshot_dir(&self, model: &ModelId, commit: &str) -> PathBuf {
        self.repo_dir(model).join("snapshots").join(commit)
    }

    /// `refs/{revision}`: the file that holds a branch's or tag's commit.
    pub fn ref_path(&self, model: &ModelId, revision: &str) -> PathBuf {
        self.repo_dir(model).join("refs").join(revision)
    }

    /// `.no_exist/{commit}/{file}`: an empty file recording that the commit
    /// has no such file, so an offline lookup can tell "absent" from "not
    /// downloaded".
    pub fn no_exist_path(&self, model: &ModelId, commit: &str, file: &str) -> PathBuf {
        self.repo_dir(model)
            .join(".no_exist")
            .join(commit)
            .join(file)
    }
}
// ANCHOR_END: cache_paths

impl HubCache {
    /// The commit `revision` stands for in the cache: a commit hash stands
    /// for itself, a branch or tag is read from `refs/`. `None` when the
    /// ref was never written.
    pub fn resolve_revision(&self, model: &ModelId, revision: &str) -> Result<Option<String>> {
        validate_relative_name("revision", revision)?;
        if is_commit_hash(revision) {
            return Ok(Some(revision.to_string()));
        }
        let path = self.ref_path(model, revision);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let commit = text.trim();
                if !is_commit_hash(commit) {
                    return Err(HubError::io(
                        &path,
                        "read a commit hash",
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("`{commit}` is not 40 hex digits"),
                        ),
                    ));
                }
                Ok(Some(commit.to_string()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(HubError::io(&path, "read", e)),
        }
    }

    /// Records that `revision` (a branch or tag) points at `commit`. A
    /// commit hash needs no ref. Written to a temporary file and renamed,
    /// so a reader never sees half a hash.
    pub fn write_ref(&self, model: &ModelId, revision: &str, commit: &str) -> Result<()> {
        validate_relative_name("revision", revision)?;
        if revision == commit {
            return Ok(());
        }
        let path = self.ref_path(model, revision);
        if std::fs::read_to_string(&path).is_ok_and(|old| old.trim() == commit) {
            return Ok(());
        }
        let dir = path.parent().expect("a ref path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, "create the folder", e))?;
        let temp = dir.join(format!(
            ".{}.{}.tmp",
            path.file_name().unwrap_or_default().to_string_lossy(),
            std::process::id()
        ));
        std::fs::write(&temp, commit).map_err(|e| HubError::io(&temp, "write", e))?;
        std::fs::rename(&temp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            HubError::io(&path, "rename a new ref into", e)
        })
    }

    // ANCHOR: link_snapshot
    /// Makes `snapshots/{commit}/{file}` a link to `blobs/{etag}` and
    /// returns its path. The link is relative (`../../blobs/{etag}`, one
    /// more `..` per folder in `file`), so the cache can be moved or
    /// mounted elsewhere. Where links are not allowed (Windows without
    /// developer mode) the blob is copied instead, as Python does.
    pub fn link_snapshot(
        &self,
        model: &ModelId,
        commit: &str,
        file: &str,
        etag: &str,
    ) -> Result<PathBuf> {
        validate_relative_name("file name", file)?;
        let link = self.snapshot_dir(model, commit).join(file);
        let dir = link.parent().expect("a snapshot file has a parent");
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, "create the folder", e))?;
        let depth = file.split('/').count() + 1; // + 1 for snapshots/{commit}
        let target: PathBuf = std::iter::repeat_n("..", depth)
            .collect::<PathBuf>()
            .join("blobs")
            .join(etag);
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link).map_err(|e| HubError::io(&link, "replace", e))?;
        }
        if make_symlink(&target, &link).is_err() {
            let blob = self.blob_path(model, etag);
            std::fs::copy(&blob, &link).map_err(|e| HubError::io(&link, "copy the blob to", e))?;
        }
        Ok(link)
    }
    // ANCHOR_END: link_snapshot

    /// Records that `commit` has no `file` (see [`HubCache::no_exist_path`]).
    pub fn mark_missing(&self, model: &ModelId, commit: &str, file: &str) -> Result<()> {
        validate_relative_name("file name", file)?;
        let path = self.no_exist_path(model, commit, file);
        let dir = path.parent().expect("a .no_exist path has a parent");
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, "create the folder", e))?;
        std::fs::write(&path, b"").map_err(|e| HubError::io(&path, "write", e))
    }
}

#[cfg(unix)]
fn make_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn make_symlink(target: &Path, link: &Path) -> std::io::Result<()> {
    std::os::windows::fs::symlink_file(target, link)
}

#[cfg(not(any(unix, windows)))]
fn make_symlink(_target: &Path, _link: &Path) -> std::io::Result<()> {
    Err(std::io::Error::other("no symbolic links on this platform"))
}
