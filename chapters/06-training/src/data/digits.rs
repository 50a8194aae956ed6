//! scikit-learn's 8x8 digits: 1797 small images in a CSV file.
//!
//! Each line of `data/digits/digits.csv.gz` holds 65 integers: 64 pixel
//! values (an 8x8 image, row-major, ink from 0 to 16) and then the label
//! 0..=9. Small enough to train on in a second, which makes it the data set
//! of this chapter's quick tests.

use super::{read_maybe_gzip, DataError, InMemoryDataset, Result};
use std::path::Path;

/// Number of examples in the digits file.
pub const DIGITS_ROWS: usize = 1797;
/// Pixels per digit (8x8).
pub const DIGITS_FEATURES: usize = 64;

// ANCHOR: load_digits
/// Loads the digits CSV (gzipped or not). Features are the pixels divided
/// by 16, so in `[0, 1]`, of shape `[64]` (view them as `[8, 8]` with
/// [`InMemoryDataset::with_feature_shape`]); labels are 0..=9.
pub fn load_digits(path: impl AsRef<Path>) -> Result<InMemoryDataset> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut features = Vec::with_capacity(DIGITS_ROWS * DIGITS_FEATURES);
    let mut labels = Vec::with_capacity(DIGITS_ROWS);
    for (line, fields) in csv_lines(&text) {
        let err = |msg: String| DataError::Line {
            path: path.to_path_buf(),
            line,
            msg,
        };
        if fields.len() != DIGITS_FEATURES + 1 {
            return Err(err(format!(
                "expected {} comma-separated values (64 pixels and a label), found {}",
                DIGITS_FEATURES + 1,
                fields.len()
            )));
        }
        for (column, field) in fields.iter().enumerate() {
            let value: u8 = field.parse().map_err(|_| {
                err(format!(
                    "value {field:?} in column {} is not a small non-negative integer",
                    column + 1
                ))
            })?;
            if column < DIGITS_FEATURES {
                if value > 16 {
                    return Err(err(format!(
                        "pixel {value} in column {} is outside 0..=16",
                        column + 1
                    )));
                }
                features.push(value as f32 / 16.0);
            } else if value > 9 {
                return Err(err(format!("label {value} is not a digit 0..=9")));
            } else {
                labels.push(value as i64);
            }
        }
    }
    InMemoryDataset::new(features, &[DIGITS_FEATURES], labels)
}
// ANCHOR_END: load_digits

/// A whole file as UTF-8 text (decompressed if gzipped).
pub(super) fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_maybe_gzip(path)?).map_err(|e| {
        DataError::format(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// The non-blank lines of a CSV text, numbered from 1, split at commas and
/// trimmed.
pub(super) fn csv_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split(',').map(str::trim).collect()))
}
