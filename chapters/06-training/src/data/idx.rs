//! The IDX file format of MNIST.
//!
//! An IDX file is a big-endian header followed by raw bytes. The first four
//! bytes are the magic number `00 00 TT DD`: two zero bytes, the element type
//! `TT` (`0x08` = unsigned byte) and the number of dimensions `DD`. Then one
//! 32-bit size per dimension, then the data in row-major order. MNIST uses
//! two kinds:
//!
//! | kind   | magic                | header fields (u32, big-endian) | data                   |
//! |--------|----------------------|---------------------------------|------------------------|
//! | images | 2051 = `0x00000803`  | magic, count, rows, cols        | count·rows·cols pixels |
//! | labels | 2049 = `0x00000801`  | magic, count                    | count labels           |
//!
//! A reader must not trust the header: a truncated download, a label file
//! passed as an image file, or a corrupt size field must each give an error
//! that names the file and the problem, never a panic or a 16-GiB allocation.
//! So sizes are multiplied with overflow checks and compared with the bytes
//! actually present before anything is allocated.

use super::gzip::read_maybe_gzip;
use super::{DataError, Result};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::io::Write;
use std::path::Path;

// ANCHOR: idx_magic
/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803; // 2051
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801; // 2049
/// Bytes before the pixels: magic, count, rows, cols.
pub const IMAGES_HEADER_LEN: usize = 16;
/// Bytes before the labels: magic, count.
pub const LABELS_HEADER_LEN: usize = 8;
// ANCHOR_END: idx_magic

/// The content of an IDX image file: `count` images of `rows x cols` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    pub count: usize,
    pub rows: usize,
    pub cols: usize,
    /// `count * rows * cols` pixels, image after image, each row-major.
    pub pixels: Vec<u8>,
}

/// Reads an IDX image file (gzipped or not, detected by its first bytes).
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<IdxImages> {
    let path = path.as_ref();
    parse_idx_images(path, &read_maybe_gzip(path)?)
}

/// Reads an IDX label file (gzipped or not, detected by its first bytes).
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Vec<u8>> {
    let path = path.as_ref();
    parse_idx_labels(path, &read_maybe_gzip(path)?)
}

/// The `i`-th big-endian `u32` of the header (the caller checked the length).
fn be_u32(bytes: &[u8], i: usize) -> u32 {
    let b = &bytes[4 * i..4 * i + 4];
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Checks the magic number and that the whole header is present.
fn check_header(
    path: &Path,
    bytes: &[u8],
    magic: u32,
    header_len: usize,
    kind: &str,
) -> Result<()> {
    let fields = match magic {
        IMAGES_MAGIC => "magic, count, rows, cols",
        _ => "magic, count",
    };
    let truncated = || {
        DataError::format(
            path,
            format!(
                "truncated header: the file has {} bytes, but an IDX {kind} file starts with a \
                 header of {header_len} bytes ({fields})",
                bytes.len()
            ),
        )
    };
    if bytes.len() < 4 {
        return Err(truncated());
    }
    let found = be_u32(bytes, 0);
    if found != magic {
        return Err(DataError::format(
            path,
            format!("bad magic number {found:#010x}, expected {magic} ({magic:#010x}) for an IDX {kind} file"),
        ));
    }
    if bytes.len() < header_len {
        return Err(truncated());
    }
    Ok(())
}

/// Checks that exactly `expected` data bytes follow the header.
fn check_data_len(path: &Path, data: &[u8], expected: usize, what: &str) -> Result<()> {
    if data.len() < expected {
        return Err(DataError::format(
            path,
            format!(
                "truncated data: the header promises {what} ({expected} bytes) but only {} bytes follow it",
                data.len()
            ),
        ));
    }
    if data.len() > expected {
        return Err(DataError::format(
            path,
            format!(
                "{} unexpected bytes after the {what} ({expected} bytes) that the header promises",
                data.len() - expected
            ),
        ));
    }
    Ok(())
}

// ANCHOR: parse_images
/// Parses the (decompressed) bytes of an IDX image file. `path` is only used
/// to name the file in errors.
pub fn parse_idx_images(path: &Path, bytes: &[u8]) -> Result<IdxImages> {
    check_header(path, bytes, IMAGES_MAGIC, IMAGES_HEADER_LEN, "image")?;
    let [count, rows, cols] = [1, 2, 3].map(|i| be_u32(bytes, i) as usize);
    if count > 0 && (rows == 0 || cols == 0) {
        return Err(DataError::format(
            path,
            format!("{count} images of {rows}x{cols} pixels: an image cannot be empty"),
        ));
    }
    // u32 * u32 * u32 can exceed even u64: multiply with overflow checks.
    let len = count
        .checked_mul(rows)
        .and_then(|n| n.checked_mul(cols))
        .ok_or_else(|| {
            DataError::format(
                path,
                format!("absurd header: {count} images of {rows}x{cols} pixels overflow the address space"),
            )
        })?;
    let what = format!("{count} images of {rows}x{cols}");
    check_data_len(path, &bytes[IMAGES_HEADER_LEN..], len, &what)?;
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels: bytes[IMAGES_HEADER_LEN..].to_vec(),
    })
}
// ANCHOR_END: parse_images

/// Parses the (decompressed) bytes of an IDX label file.
pub fn parse_idx_labels(path: &Path, bytes: &[u8]) -> Result<Vec<u8>> {
    check_header(path, bytes, LABELS_MAGIC, LABELS_HEADER_LEN, "label")?;
    let count = be_u32(bytes, 1) as usize;
    check_data_len(
        path,
        &bytes[LABELS_HEADER_LEN..],
        count,
        &format!("{count} labels"),
    )?;
    Ok(bytes[LABELS_HEADER_LEN..].to_vec())
}

/// The bytes of an IDX image file (uncompressed). Fails if a size does not
/// fit the format's 32-bit fields or the pixels do not match the sizes.
pub fn encode_idx_images(images: &IdxImages) -> Result<Vec<u8>> {
    let field = |n: usize, name: &str| {
        u32::try_from(n).map_err(|_| {
            DataError::invalid(
                "encode_idx_images",
                format!("{name} {n} does not fit in 32 bits"),
            )
        })
    };
    let (count, rows, cols) = (
        field(images.count, "count")?,
        field(images.rows, "rows")?,
        field(images.cols, "cols")?,
    );
    let expected = images
        .count
        .checked_mul(images.rows)
        .and_then(|n| n.checked_mul(images.cols));
    if expected != Some(images.pixels.len()) {
        return Err(DataError::invalid(
            "encode_idx_images",
            format!(
                "{} pixels do not make {} images of {}x{}",
                images.pixels.len(),
                images.count,
                images.rows,
                images.cols
            ),
        ));
    }
    let mut out = Vec::with_capacity(IMAGES_HEADER_LEN + images.pixels.len());
    for v in [IMAGES_MAGIC, count, rows, cols] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out.extend_from_slice(&images.pixels);
    Ok(out)
}

/// The bytes of an IDX label file (uncompressed).
pub fn encode_idx_labels(labels: &[u8]) -> Result<Vec<u8>> {
    let count = u32::try_from(labels.len()).map_err(|_| {
        DataError::invalid(
            "encode_idx_labels",
            format!("{} labels do not fit in 32 bits", labels.len()),
        )
    })?;
    let mut out = Vec::with_capacity(LABELS_HEADER_LEN + labels.len());
    out.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    out.extend_from_slice(labels);
    Ok(out)
}

/// Writes an IDX image file, gzipped if `gzip` is true.
pub fn write_idx_images(path: impl AsRef<Path>, images: &IdxImages, gzip: bool) -> Result<()> {
    write_bytes(path.as_ref(), &encode_idx_images(images)?, gzip)
}

/// Writes an IDX label file, gzipped if `gzip` is true.
pub fn write_idx_labels(path: impl AsRef<Path>, labels: &[u8], gzip: bool) -> Result<()> {
    write_bytes(path.as_ref(), &encode_idx_labels(labels)?, gzip)
}

fn write_bytes(path: &Path, bytes: &[u8], gzip: bool) -> Result<()> {
    let io = |e| DataError::io(path, "write", e);
    let file = std::fs::File::create(path).map_err(|e| DataError::io(path, "create", e))?;
    let mut out = std::io::BufWriter::new(file);
    if gzip {
        let mut gz = GzEncoder::new(&mut out, Compression::default());
        gz.write_all(bytes).map_err(io)?;
        gz.finish().map_err(io)?;
    } else {
        out.write_all(bytes).map_err(io)?;
    }
    out.flush().map_err(io)
}
