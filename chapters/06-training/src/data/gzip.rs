//! Files that may or may not be gzipped.
//!
//! Data sets travel compressed (`train-images-idx3-ubyte.gz`) but people also
//! unpack them. Rather than trusting the file name, we look at the first two
//! bytes: every gzip stream starts with the magic `1f 8b` (RFC 1952), and no
//! IDX file or CSV text does.

use super::{DataError, Result};
use flate2::bufread::MultiGzDecoder;
use std::io::Read;
use std::path::Path;

/// Whether `bytes` starts with the gzip magic number `1f 8b`.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0x1f, 0x8b])
}

/// Reads a whole file, decompressing it if it is gzipped.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>> {
    if path.is_dir() {
        return Err(DataError::format(
            path,
            "is a directory, expected the file to read",
        ));
    }
    let bytes = std::fs::read(path).map_err(|e| DataError::io(path, "read", e))?;
    decode_maybe_gzip(path, bytes)
}

/// Decompresses `bytes` if they are gzipped, else returns them unchanged.
/// `path` only names the source in error messages.
pub fn decode_maybe_gzip(path: &Path, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::with_capacity(size_hint(&bytes));
    MultiGzDecoder::new(&bytes[..])
        .read_to_end(&mut out)
        .map_err(|e| DataError::format(path, format!("corrupt gzip stream: {e}")))?;
    Ok(out)
}

/// A guess at the decompressed size, to allocate once: the gzip trailer's
/// last four bytes hold it modulo 2^32. The trailer of a corrupt file can say
/// anything, so the guess is capped by deflate's best ratio (about 1032:1).
fn size_hint(gz: &[u8]) -> usize {
    let Some(tail) = gz.len().checked_sub(4).map(|start| &gz[start..]) else {
        return 0;
    };
    let isize = u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) as usize;
    isize.min(gz.len().saturating_mul(1032)).min(1 << 30)
}
