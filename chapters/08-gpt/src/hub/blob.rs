//! One file's bytes into `blobs/{etag}`: resumable, verified, atomic.
//!
//! - **Resume.** Bytes are appended to `blobs/{etag}.incomplete`. When the
//!   connection breaks the partial file stays; the next attempt asks for the
//!   rest with `Range: bytes={len}-`. A server that answers `206 Partial
//!   Content` sends the rest; one that ignores the range answers `200` with
//!   the whole file, and we start again from byte 0.
//! - **Verify.** The size must be the one announced, and where the etag is
//!   a SHA-256 (every large file on the Hub) the bytes must hash to it. The
//!   hash of a resumed file covers the partial file's bytes too, read back
//!   once before the rest arrives.
//! - **Atomic.** Only a verified file is renamed to `blobs/{etag}`; a rename
//!   within one folder is atomic, so a blob under its final name is always
//!   complete. A wrong size or hash deletes the partial file (its bytes
//!   cannot be trusted); a broken connection keeps it.

use super::client::{FileMetadata, HubClient};
use super::download::DownloadEvent;
use super::error::{HubError, Result};
use super::model_id::ModelId;
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Where a blob download ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobDownload {
    /// `blobs/{etag}`.
    pub path: PathBuf,
    /// The blob's size in bytes.
    pub bytes: u64,
    /// Bytes that were already there from an interrupted download (`0` for
    /// a fresh one).
    pub resumed_from: u64,
}

const CHUNK: usize = 1 << 16;

impl HubClient {
    // ANCHOR: download_blob
    /// Fetches the bytes `meta` describes into the cache's `blobs/{etag}`,
    /// resuming a partial download, and reports progress.
    pub fn download_blob(
        &self,
        model: &ModelId,
        revision: &str,
        file: &str,
        meta: &FileMetadata,
        progress: &mut dyn FnMut(&DownloadEvent),
    ) -> Result<BlobDownload> {
        let blob = self.cache().blob_path(model, &meta.etag);
        let part = self.cache().incomplete_path(model, &meta.etag);
        let dir = blob.parent().expect("a blob has a folder");
        std::fs::create_dir_all(dir).map_err(|e| HubError::io(dir, "create the folder", e))?;

        let mut have = match std::fs::metadata(&part) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(HubError::io(&part, "inspect", e)),
        };
        if meta.size.is_some_and(|size| have > size) {
            progress(&DownloadEvent::Restarted {
                file,
                reason: "the partial file is longer than the file",
            });
            have = 0;
        }
        // A partial file that is already whole needs no request.
        let complete = have > 0 && meta.size == Some(have);
        let (response, start) = if complete {
            (None, have)
        } else {
            let (response, start) =
                self.get_from(model, revision, file, &meta.download_url, have)?;
            (Some(response), start)
        };
        if have > 0 && start == 0 {
            progress(&DownloadEvent::Restarted {
                file,
                reason: "the server ignored the Range request and sent the whole file",
            });
        }
        let mut out = open_partial(&part, start)?;
        let mut hasher = meta.sha256().map(|_| Sha256::new());
        if let Some(hasher) = hasher.as_mut().filter(|_| start > 0) {
            hash_prefix(&part, start, hasher)?;
        }
        progress(&DownloadEvent::Started {
            file,
            total: meta.size,
            resumed_from: start,
        });

        let mut done = start;
        if let Some(mut response) = response {
            let mut body = response.body_mut().as_reader();
            let mut chunk = vec![0u8; CHUNK];
            loop {
                let n = match body.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        return Err(interrupted(file, done, meta, &part, out, &e.to_string()))
                    }
                };
                if let Some(size) = meta.size.filter(|&size| done + n as u64 > size) {
                    drop(out);
                    let _ = std::fs::remove_file(&part);
                    return Err(HubError::SizeMismatch {
                        file: file.to_string(),
                        expected: size,
                        actual: done + n as u64,
                    });
                }
                out.write_all(&chunk[..n])
                    .map_err(|e| HubError::io(&part, "write (the partial file is kept)", e))?;
                if let Some(h) = hasher.as_mut() {
                    h.update(&chunk[..n]);
                }
                done += n as u64;
                progress(&DownloadEvent::Progress {
                    file,
                    done,
                    total: meta.size,
                });
            }
        }
        if meta.size.is_some_and(|size| done < size) {
            return Err(interrupted(
                file,
                done,
                meta,
                &part,
                out,
                "the connection closed early",
            ));
        }
        out.sync_all()
            .map_err(|e| HubError::io(&part, "flush to disk", e))?;
        drop(out);
        if let (Some(expected), Some(hasher)) = (meta.sha256(), hasher) {
            let actual = format!("{:x}", hasher.finalize());
            if !actual.eq_ignore_ascii_case(expected) {
                let _ = std::fs::remove_file(&part);
                return Err(HubError::HashMismatch {
                    file: file.to_string(),
                    expected: expected.to_string(),
                    actual,
                });
            }
        }
        std::fs::rename(&part, &blob)
            .map_err(|e| HubError::io(&blob, "rename the download to", e))?;
        Ok(BlobDownload {
            path: blob,
            bytes: done,
            resumed_from: start,
        })
    }
    // ANCHOR_END: download_blob
}

/// The partial file, emptied when the body starts at byte 0, else opened
/// for appending at `start` (its current length).
fn open_partial(part: &Path, start: u64) -> Result<File> {
    if start == 0 {
        return File::create(part).map_err(|e| HubError::io(part, "create", e));
    }
    OpenOptions::new()
        .append(true)
        .open(part)
        .map_err(|e| HubError::io(part, "open for appending", e))
}

/// Feeds the first `len` bytes of `path` to `hasher`.
fn hash_prefix(path: &Path, len: u64, hasher: &mut Sha256) -> Result<()> {
    let file = File::open(path).map_err(|e| HubError::io(path, "open", e))?;
    let mut reader = file.take(len);
    let mut chunk = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut chunk)
            .map_err(|e| HubError::io(path, "read back", e))?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&chunk[..n]);
    }
}

/// A broken download: the bytes so far are flushed and kept for a resume.
fn interrupted(
    file: &str,
    received: u64,
    meta: &FileMetadata,
    part: &Path,
    out: File,
    message: &str,
) -> HubError {
    let _ = out.sync_all();
    HubError::Interrupted {
        file: file.to_string(),
        received,
        expected: meta
            .size
            .map_or_else(|| "an unknown number of".to_string(), |s| s.to_string()),
        partial: part.to_path_buf(),
        message: message.to_string(),
    }
}
