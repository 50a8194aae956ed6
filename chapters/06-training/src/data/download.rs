//! Downloading MNIST, verified and atomic.
//!
//! The repository ships MNIST in `data/mnist`, so nothing here is needed to
//! run the book. It is for readers who start from the library alone. Two
//! rules make a download safe to interrupt and to repeat:
//!
//! - **Verify before trusting.** Every file's SHA-256 is compared with a sum
//!   compiled into the program. Our `data/mnist/*.gz` files were re-compressed
//!   (gzip -9, no timestamp), so their bytes differ from a mirror's `.gz`
//!   files although the images are the same. We therefore keep two sums per
//!   file: that of the repository's `.gz` (checked first: one hash, no
//!   decompression) and that of the decompressed IDX content, which every
//!   faithful mirror shares whatever its gzip settings.
//! - **Write atomically.** Bytes go to a temporary file in the target folder;
//!   only a verified file is renamed to its final name (a rename within one
//!   file system is atomic). A crash leaves either the old state or the
//!   complete file, never half a file with the right name; a file that fails
//!   verification is deleted. Files already present and correct are skipped.

use super::gzip::{decode_maybe_gzip, is_gzip};
use super::{DataError, Result};
use sha2::{Digest, Sha256};
use std::fmt;
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A public mirror of the original MNIST files (served by PyTorch's CI).
pub const MNIST_MIRROR: &str = "https://ossci-datasets.s3.amazonaws.com/mnist/";

// ANCHOR: mnist_files
/// One of the four MNIST files and its expected checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MnistFile {
    /// File name, also the last part of its URL.
    pub name: &'static str,
    /// SHA-256 of the repository's `.gz` file (`data/mnist/SHA256SUMS`).
    pub gz_sha256: &'static str,
    /// SHA-256 of the decompressed IDX file, the same from every mirror.
    pub idx_sha256: &'static str,
    /// Length of the decompressed IDX file in bytes.
    pub idx_len: u64,
}

/// The four files of MNIST.
pub const MNIST_FILES: [MnistFile; 4] = [
    MnistFile {
        name: "train-images-idx3-ubyte.gz",
        gz_sha256: "71524e2cd1ad2968737f7f2f2ff69cbfc32df8ccddff51593f7cb2d4e0eb5b64",
        idx_sha256: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        idx_len: 47_040_016,
    },
    MnistFile {
        name: "train-labels-idx1-ubyte.gz",
        gz_sha256: "fe03b8bd7915f70bf5aa08be480aa413fbd85afcaa58b35d230d335f284fd88e",
        idx_sha256: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        idx_len: 60_008,
    },
    MnistFile {
        name: "t10k-images-idx3-ubyte.gz",
        gz_sha256: "5634745efa576a17e7d4cf5cd9d09123c75e6538e5114267c2d156edaf519341",
        idx_sha256: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        idx_len: 7_840_016,
    },
    MnistFile {
        name: "t10k-labels-idx1-ubyte.gz",
        gz_sha256: "ae18e77e031ccde52407f794d123116439864147d33ac992975f85dd4dc42af6",
        idx_sha256: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        idx_len: 10_008,
    },
];
// ANCHOR_END: mnist_files

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadOutcome {
    /// The file was there with the right content; nothing was fetched.
    AlreadyPresent { file: &'static str },
    /// The file was fetched, verified and moved into place.
    Downloaded { file: &'static str, bytes: u64 },
}

/// Progress of [`download_mnist_with_progress`], for a progress bar or a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DownloadEvent<'a> {
    /// The file is present and verified.
    AlreadyPresent { file: &'a str },
    /// The file is present but its content is wrong; it will be fetched again.
    Replacing { file: &'a str, reason: String },
    /// The request was answered; `total` is the Content-Length if sent.
    Started {
        file: &'a str,
        url: &'a str,
        total: Option<u64>,
    },
    /// `done` bytes of the file have arrived.
    Progress {
        file: &'a str,
        done: u64,
        total: Option<u64>,
    },
    /// The file was verified and renamed into place.
    Finished { file: &'a str, bytes: u64 },
}

impl fmt::Display for DownloadEvent<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DownloadEvent::AlreadyPresent { file } => {
                write!(f, "{file}: already present, checksum ok")
            }
            DownloadEvent::Replacing { file, reason } => {
                write!(f, "{file}: present but {reason}; downloading again")
            }
            DownloadEvent::Started { url, total, .. } => match total {
                Some(n) => write!(f, "downloading {url} ({n} bytes)"),
                None => write!(f, "downloading {url}"),
            },
            DownloadEvent::Progress { file, done, total } => match total {
                Some(n) => write!(f, "{file}: {done}/{n} bytes"),
                None => write!(f, "{file}: {done} bytes"),
            },
            DownloadEvent::Finished { file, bytes } => {
                write!(f, "{file}: {bytes} bytes, checksum ok")
            }
        }
    }
}

/// Lower-case hexadecimal SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

// ANCHOR: verify
/// Checks the bytes of an MNIST `.gz` file against `file`'s sums: first the
/// repository's exact `.gz` bytes, else the decompressed content. `path`
/// names the file in the error.
pub fn verify_mnist_file(path: &Path, bytes: &[u8], file: &MnistFile) -> Result<()> {
    let gz_sha = sha256_hex(bytes);
    if gz_sha == file.gz_sha256 {
        return Ok(());
    }
    let mismatch = |expected: &str, actual: String, note: String| DataError::Checksum {
        path: path.to_path_buf(),
        expected: expected.to_string(),
        actual,
        note,
    };
    if !is_gzip(bytes) {
        return Err(mismatch(
            file.gz_sha256,
            gz_sha,
            " (and it is not a gzip file)".into(),
        ));
    }
    match decode_maybe_gzip(path, bytes.to_vec()) {
        Ok(idx) => {
            let idx_sha = sha256_hex(&idx);
            if idx_sha == file.idx_sha256 {
                Ok(())
            } else {
                Err(mismatch(
                    file.idx_sha256,
                    idx_sha,
                    " for the decompressed content".into(),
                ))
            }
        }
        Err(e) => Err(mismatch(
            file.gz_sha256,
            gz_sha,
            format!(" (and it does not decompress: {e})"),
        )),
    }
}
// ANCHOR_END: verify

/// Downloads the four MNIST files from `base_url` (e.g. [`MNIST_MIRROR`]) into
/// `dir`, skipping files that are already there and correct. Silent; see
/// [`download_mnist_with_progress`].
pub fn download_mnist(base_url: &str, dir: &Path) -> Result<Vec<DownloadOutcome>> {
    download_mnist_with_progress(base_url, dir, &mut |_| {})
}

/// [`download_mnist`], reporting progress to `progress`.
pub fn download_mnist_with_progress(
    base_url: &str,
    dir: &Path,
    progress: &mut dyn FnMut(&DownloadEvent),
) -> Result<Vec<DownloadOutcome>> {
    std::fs::create_dir_all(dir).map_err(|e| DataError::io(dir, "create the folder", e))?;
    let mut config = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(30)))
        .timeout_recv_response(Some(Duration::from_secs(60)))
        .timeout_recv_body(Some(Duration::from_secs(600)));
    // A proxy from the environment (HTTP_PROXY, ...) cannot reach this
    // machine's loopback interface, where the tests run their server.
    let host = base_url.split("://").nth(1).unwrap_or("");
    if ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host.starts_with(h))
    {
        config = config.proxy(None);
    }
    let agent: ureq::Agent = config.build().into();
    let mut outcomes = Vec::new();
    for file in &MNIST_FILES {
        let path = dir.join(file.name);
        if path.exists() {
            let existing = std::fs::read(&path).map_err(|e| DataError::io(&path, "read", e))?;
            match verify_mnist_file(&path, &existing, file) {
                Ok(()) => {
                    progress(&DownloadEvent::AlreadyPresent { file: file.name });
                    outcomes.push(DownloadOutcome::AlreadyPresent { file: file.name });
                    continue;
                }
                Err(e) => progress(&DownloadEvent::Replacing {
                    file: file.name,
                    reason: e.to_string(),
                }),
            }
        }
        let url = format!("{}/{}", base_url.trim_end_matches('/'), file.name);
        let bytes = download_verified(&agent, &url, &path, file, progress)?;
        progress(&DownloadEvent::Finished {
            file: file.name,
            bytes,
        });
        outcomes.push(DownloadOutcome::Downloaded {
            file: file.name,
            bytes,
        });
    }
    Ok(outcomes)
}

/// Deletes the temporary file when dropped, unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

// ANCHOR: download_verified
/// Fetches `url` into a temporary file next to `path`, verifies it, and
/// renames it to `path`. On any error the temporary file is deleted.
fn download_verified(
    agent: &ureq::Agent,
    url: &str,
    path: &Path,
    file: &MnistFile,
    progress: &mut dyn FnMut(&DownloadEvent),
) -> Result<u64> {
    let http = |msg: String| DataError::Http {
        url: url.to_string(),
        msg,
    };
    let mut response = agent.get(url).call().map_err(|e| match e {
        ureq::Error::StatusCode(code) => http(format!("HTTP status {code}")),
        other => http(other.to_string()),
    })?;
    let total = response
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    progress(&DownloadEvent::Started {
        file: file.name,
        url,
        total,
    });

    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp = TempFile {
        path: dir.join(format!(".{}.{}.part", file.name, std::process::id())),
        keep: false,
    };
    let io = |action, e| DataError::io(&temp.path, action, e);
    let mut out = File::create(&temp.path).map_err(|e| io("create", e))?;
    // A cap well above MNIST's largest file (10 MB) bounds memory.
    let mut body = response.body_mut().with_config().limit(256 << 20).reader();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(64 << 20) as usize);
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        let n = body
            .read(&mut chunk)
            .map_err(|e| http(format!("reading the body: {e}")))?;
        if n == 0 {
            break;
        }
        out.write_all(&chunk[..n]).map_err(|e| io("write", e))?;
        bytes.extend_from_slice(&chunk[..n]);
        progress(&DownloadEvent::Progress {
            file: file.name,
            done: bytes.len() as u64,
            total,
        });
    }
    // Verify before the file gets its real name; on error `temp` is dropped
    // and deleted.
    verify_mnist_file(path, &bytes, file)?;
    out.sync_all().map_err(|e| io("flush", e))?;
    drop(out);
    std::fs::rename(&temp.path, path).map_err(|e| io("rename", e))?;
    temp.keep = true;
    Ok(bytes.len() as u64)
}
// ANCHOR_END: download_verified
