//! A whole model: the files a GPT needs, at one commit, into one snapshot.

use super::client::{FileMetadata, HubClient};
use super::error::{HubError, Result};
use super::model_id::{validate_relative_name, ModelId};
use std::fmt;
use std::path::PathBuf;

/// One file of a model repository, and whether the model is useless
/// without it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RepoFile {
    /// Its path in the repository.
    pub name: &'static str,
    /// A missing required file is an error; a missing optional one is
    /// skipped with a note.
    pub required: bool,
}

// ANCHOR: model_files
/// What `candle download` fetches: the configuration and the weights (a
/// model needs both), and the tokenizer and generation settings where the
/// model has them (GPT-2 ships `vocab.json` + `merges.txt`, newer models
/// `tokenizer.json`).
pub const MODEL_FILES: [RepoFile; 6] = [
    RepoFile {
        name: "config.json",
        required: true,
    },
    RepoFile {
        name: "model.safetensors",
        required: true,
    },
    RepoFile {
        name: "vocab.json",
        required: false,
    },
    RepoFile {
        name: "merges.txt",
        required: false,
    },
    RepoFile {
        name: "tokenizer.json",
        required: false,
    },
    RepoFile {
        name: "generation_config.json",
        required: false,
    },
];
// ANCHOR_END: model_files

/// What [`HubClient::download_model`] reports as it goes (for a progress
/// bar or a log).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownloadEvent<'a> {
    /// The revision points at `commit`; every file comes from that commit.
    Resolved {
        model: &'a ModelId,
        revision: &'a str,
        commit: &'a str,
    },
    /// The file's blob is in the cache already; nothing is fetched.
    Cached { file: &'a str, size: u64 },
    /// The first bytes are on their way (`resumed_from` already there).
    Started {
        file: &'a str,
        total: Option<u64>,
        resumed_from: u64,
    },
    /// `done` bytes of the file are on disk.
    Progress {
        file: &'a str,
        done: u64,
        total: Option<u64>,
    },
    /// The bytes so far are discarded and the file starts again.
    Restarted { file: &'a str, reason: &'a str },
    /// The file is verified and in place.
    Finished { file: &'a str, bytes: u64 },
    /// An optional file the model does not have.
    Missing { file: &'a str },
    /// The Hub cannot be reached, but the cache holds the revision: the
    /// cached snapshot is used.
    Offline { reason: &'a str },
}

impl fmt::Display for DownloadEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadEvent::Resolved {
                model,
                revision,
                commit,
            } => write!(f, "{model}: revision `{revision}` is commit {commit}"),
            DownloadEvent::Cached { file, size } => write!(f, "{file}: cached ({size} bytes)"),
            DownloadEvent::Started {
                file,
                total,
                resumed_from,
            } => {
                let total = total.map_or("?".to_string(), |t| t.to_string());
                if *resumed_from > 0 {
                    write!(f, "{file}: resuming at byte {resumed_from} of {total}")
                } else {
                    write!(f, "{file}: downloading {total} bytes")
                }
            }
            DownloadEvent::Progress { file, done, total } => {
                let total = total.map_or("?".to_string(), |t| t.to_string());
                write!(f, "{file}: {done}/{total} bytes")
            }
            DownloadEvent::Restarted { file, reason } => {
                write!(f, "{file}: starting again: {reason}")
            }
            DownloadEvent::Finished { file, bytes } => {
                write!(f, "{file}: downloaded and verified ({bytes} bytes)")
            }
            DownloadEvent::Missing { file } => {
                write!(f, "{file}: not in this model (optional, skipped)")
            }
            DownloadEvent::Offline { reason } => {
                write!(f, "offline ({reason}); using the cached snapshot")
            }
        }
    }
}

/// What happened to one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// Its blob was in the cache; no bytes were fetched.
    Cached { path: PathBuf, size: u64 },
    /// Fetched (the first `resumed_from` bytes by an earlier attempt).
    Downloaded {
        path: PathBuf,
        bytes: u64,
        resumed_from: u64,
    },
    /// An optional file the model does not have.
    Missing,
}

/// The result of [`HubClient::download_model`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelDownload {
    pub model: ModelId,
    /// The revision asked for (`main`, a tag, a commit).
    pub revision: String,
    /// The commit it resolved to.
    pub commit: String,
    /// `snapshots/{commit}`: the folder to load the model from.
    pub snapshot: PathBuf,
    /// Each requested file (by name) and its outcome, in request order.
    pub files: Vec<(String, FileOutcome)>,
}

impl ModelDownload {
    /// Bytes fetched over the network by this call.
    pub fn downloaded_bytes(&self) -> u64 {
        self.files
            .iter()
            .map(|(_, o)| match o {
                FileOutcome::Downloaded {
                    bytes,
                    resumed_from,
                    ..
                } => bytes - resumed_from,
                _ => 0,
            })
            .sum()
    }

    /// Whether every present file came from the cache.
    pub fn all_cached(&self) -> bool {
        self.files
            .iter()
            .all(|(_, o)| !matches!(o, FileOutcome::Downloaded { .. }))
    }
}

impl HubClient {
    // ANCHOR: download_model
    /// Downloads `files` of `model` at `revision` into the cache and
    /// returns the snapshot folder. The first file's answer fixes the
    /// commit; the other files are asked for *by that commit*, so a push
    /// during the download cannot mix two versions of the model.
    pub fn download_model(
        &self,
        model: &ModelId,
        revision: &str,
        files: &[RepoFile],
        progress: &mut dyn FnMut(&DownloadEvent),
    ) -> Result<ModelDownload> {
        validate_relative_name("revision", revision)?;
        let mut commit: Option<String> = None;
        let mut outcomes = Vec::with_capacity(files.len());
        for file in files {
            let asked = commit.as_deref().unwrap_or(revision);
            let meta = match self.file_metadata(model, asked, file.name) {
                Ok(meta) => meta,
                Err(HubError::FileNotFound { .. }) if !file.required => {
                    if let Some(commit) = &commit {
                        self.cache().mark_missing(model, commit, file.name)?;
                    }
                    progress(&DownloadEvent::Missing { file: file.name });
                    outcomes.push((file.name.to_string(), FileOutcome::Missing));
                    continue;
                }
                // Offline with the model in the cache: use it, as Python does.
                Err(e @ HubError::Network { .. }) if commit.is_none() => {
                    return self.cached_download(model, revision, files, e, progress);
                }
                Err(e) => return Err(e),
            };
            let commit = match &commit {
                Some(commit) => commit.clone(),
                None => {
                    self.cache().write_ref(model, revision, &meta.commit)?;
                    progress(&DownloadEvent::Resolved {
                        model,
                        revision,
                        commit: &meta.commit,
                    });
                    commit.insert(meta.commit.clone()).clone()
                }
            };
            let outcome = self.fetch_file(model, &commit, file.name, &meta, progress)?;
            outcomes.push((file.name.to_string(), outcome));
        }
        let commit = commit.ok_or_else(|| HubError::InvalidName {
            what: "file list",
            value: String::new(),
            reason: "no file was asked for, or none exists".into(),
        })?;
        Ok(ModelDownload {
            model: model.clone(),
            revision: revision.to_string(),
            snapshot: self.cache().snapshot_dir(model, &commit),
            commit,
            files: outcomes,
        })
    }

    /// The cached snapshot of `revision` when the Hub cannot be reached
    /// (`network` is that error, returned if the cache lacks a required file).
    fn cached_download(
        &self,
        model: &ModelId,
        revision: &str,
        files: &[RepoFile],
        network: HubError,
        progress: &mut dyn FnMut(&DownloadEvent),
    ) -> Result<ModelDownload> {
        let Ok(Some(commit)) = self.cache().resolve_revision(model, revision) else {
            return Err(network);
        };
        let snapshot = self.cache().snapshot_dir(model, &commit);
        let mut outcomes = Vec::with_capacity(files.len());
        for file in files {
            let path = snapshot.join(file.name);
            let outcome = match std::fs::metadata(&path) {
                Ok(found) => FileOutcome::Cached {
                    path,
                    size: found.len(),
                },
                Err(_) if !file.required => FileOutcome::Missing,
                Err(_) => return Err(network),
            };
            outcomes.push((file.name.to_string(), outcome));
        }
        progress(&DownloadEvent::Offline {
            reason: &network.to_string(),
        });
        Ok(ModelDownload {
            model: model.clone(),
            revision: revision.to_string(),
            commit,
            snapshot,
            files: outcomes,
        })
    }

    /// Puts one file into `snapshots/{commit}`: links the blob if it is
    /// cached with the right size, else downloads it first.
    fn fetch_file(
        &self,
        model: &ModelId,
        commit: &str,
        file: &str,
        meta: &FileMetadata,
        progress: &mut dyn FnMut(&DownloadEvent),
    ) -> Result<FileOutcome> {
        let blob = self.cache().blob_path(model, &meta.etag);
        if let Ok(found) = std::fs::metadata(&blob) {
            if meta.size.is_none_or(|size| size == found.len()) {
                let path = self
                    .cache()
                    .link_snapshot(model, commit, file, &meta.etag)?;
                progress(&DownloadEvent::Cached {
                    file,
                    size: found.len(),
                });
                return Ok(FileOutcome::Cached {
                    path,
                    size: found.len(),
                });
            }
            progress(&DownloadEvent::Restarted {
                file,
                reason: "the cached blob has the wrong size",
            });
            std::fs::remove_file(&blob).map_err(|e| HubError::io(&blob, "remove", e))?;
        }
        let done = self.download_blob(model, commit, file, meta, progress)?;
        progress(&DownloadEvent::Finished {
            file,
            bytes: done.bytes,
        });
        let path = self
            .cache()
            .link_snapshot(model, commit, file, &meta.etag)?;
        Ok(FileOutcome::Downloaded {
            path,
            bytes: done.bytes,
            resumed_from: done.resumed_from,
        })
    }
    // ANCHOR_END: download_model
}
