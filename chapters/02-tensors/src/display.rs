//! Printing tensors the way PyTorch does.
//!
//! ```text
//! tensor([[1.0000, 2.0000],
//!         [3.0000, 4.0000]], shape=[2, 2], dtype=f32, device=cpu)
//! ```
//! Large tensors are summarised: only the first and last three entries of
//! each dimension are printed, with `...` between.

use crate::{DType, Tensor};
use std::fmt;

const SUMMARY_THRESHOLD: usize = 1000;
const EDGE_ITEMS: usize = 3;

fn format_value(v: f64, dtype: DType, all_integral: bool) -> String {
    match dtype {
        DType::I64 | DType::U8 => format!("{}", v as i64),
        _ if v.is_nan() => "nan".into(),
        _ if v.is_infinite() => {
            if v > 0.0 {
                "inf".into()
            } else {
                "-inf".into()
            }
        }
        _ if all_integral => format!("{v:.0}."),
        _ if v != 0.0 && (v.abs() >= 1e8 || v.abs() < 1e-4) => format!("{v:.4e}"),
        _ => format!("{v:.4}"),
    }
}

// ANCHOR: display
/// Writes `values` (row-major, shape `dims`) as nested brackets, with each
/// row's continuation lines indented to line up under the first.
fn write_nested(
    out: &mut String,
    cells: &[String],
    dims: &[usize],
    width: usize,
    indent: usize,
    summarise: bool,
) {
    if dims.is_empty() {
        out.push_str(&format!("{:>width$}", cells[0]));
        return;
    }
    let n = dims[0];
    let block = cells.len() / n.max(1);
    let shown: Vec<Option<usize>> = if summarise && n > 2 * EDGE_ITEMS {
        (0..EDGE_ITEMS)
            .map(Some)
            .chain([None])
            .chain((n - EDGE_ITEMS..n).map(Some))
            .collect()
    } else {
        (0..n).map(Some).collect()
    };
    out.push('[');
    for (k, item) in shown.iter().enumerate() {
        if k > 0 {
            out.push(',');
            if dims.len() > 1 {
                out.push_str(&"\n".repeat(dims.len() - 1));
                out.push_str(&" ".repeat(indent + 1));
            } else {
                out.push(' ');
            }
        }
        match item {
            Some(i) => write_nested(
                out,
                &cells[i * block..(i + 1) * block],
                &dims[1..],
                width,
                indent + 1,
                summarise,
            ),
            None => out.push_str("..."),
        }
    }
    out.push(']');
}
// ANCHOR_END: display

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let values = match self.to_vec_f64() {
            Ok(v) => v,
            Err(e) => return write!(f, "tensor(<unreadable: {e}>)"),
        };
        let dtype = self.dtype();
        let all_integral =
            dtype.is_float() && values.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e8);
        let cells: Vec<String> = values
            .iter()
            .map(|&v| format_value(v, dtype, all_integral))
            .collect();
        let width = cells.iter().map(|c| c.len()).max().unwrap_or(0);
        let mut body = String::new();
        if values.is_empty() {
            body.push_str("[]");
        } else {
            write_nested(
                &mut body,
                &cells,
                self.dims(),
                width,
                "tensor(".len(),
                values.len() > SUMMARY_THRESHOLD,
            );
        }
        write!(
            f,
            "tensor({body}, shape={}, dtype={dtype}, device={})",
            self.shape(),
            self.device()
        )
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor[shape={}, dtype={}, device={}]",
            self.shape(),
            self.dtype(),
            self.device()
        )
    }
}
