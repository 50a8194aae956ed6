//! Fisher's iris flowers: 150 examples, 4 measurements, 3 species.
//!
//! scikit-learn's `iris.csv` starts with a header line
//! `150,4,setosa,versicolor,virginica` (rows, features, class names), then
//! one line per flower: sepal length, sepal width, petal length, petal width
//! (cm) and the class index.

use super::digits::{csv_lines, read_text};
use super::{DataError, InMemoryDataset, Result};
use std::path::Path;

/// The iris data set and the names of its classes.
#[derive(Debug, Clone)]
pub struct Iris {
    /// Features `[4]` in centimetres, labels 0..=2.
    pub data: InMemoryDataset,
    pub class_names: Vec<String>,
}

/// Loads scikit-learn's `iris.csv` (gzipped or not), checking the header's
/// counts against the rows.
pub fn load_iris(path: impl AsRef<Path>) -> Result<Iris> {
    let path = path.as_ref();
    let text = read_text(path)?;
    let mut lines = csv_lines(&text);
    let err = |line: usize, msg: String| DataError::Line {
        path: path.to_path_buf(),
        line,
        msg,
    };
    let (header_line, header) = lines.next().ok_or_else(|| {
        DataError::format(
            path,
            "empty file: expected a header `rows,features,class names...`",
        )
    })?;
    let count = |i: usize, what: &str| -> Result<usize> {
        header.get(i).and_then(|f| f.parse().ok()).ok_or_else(|| {
            err(
                header_line,
                format!("header field {} should be the number of {what}", i + 1),
            )
        })
    };
    let (rows, n_features) = (count(0, "rows")?, count(1, "features")?);
    let class_names: Vec<String> = header[2..].iter().map(|s| s.to_string()).collect();
    let mut features = Vec::with_capacity(rows.saturating_mul(n_features).min(1 << 20));
    let mut labels = Vec::new();
    for (line, fields) in lines {
        if fields.len() != n_features + 1 {
            return Err(err(
                line,
                format!("expected {} comma-separated values ({n_features} features and a class), found {}", n_features + 1, fields.len()),
            ));
        }
        for (column, field) in fields[..n_features].iter().enumerate() {
            let v: f32 = field.parse().map_err(|_| {
                err(
                    line,
                    format!("value {field:?} in column {} is not a number", column + 1),
                )
            })?;
            features.push(v);
        }
        let class = fields[n_features];
        let label: usize = class
            .parse()
            .ok()
            .filter(|&c| c < class_names.len())
            .ok_or_else(|| {
                err(
                    line,
                    format!(
                        "class {class:?} is not an index below {}",
                        class_names.len()
                    ),
                )
            })?;
        labels.push(label as i64);
    }
    if labels.len() != rows {
        return Err(DataError::format(
            path,
            format!(
                "the header promises {rows} rows but the file has {}",
                labels.len()
            ),
        ));
    }
    Ok(Iris {
        data: InMemoryDataset::new(features, &[n_features], labels)?,
        class_names,
    })
}
