//! `f16` and `bf16` on the CPU: stored small, computed in `f32`.
//!
//! A CPU has no half-precision arithmetic to speak of, and even where
//! hardware has it, accumulating in 16 bits loses too much (a sum of a
//! thousand `f16` ones stops growing at 2048). So every arithmetic
//! primitive widens half inputs to `f32`, runs the `f32` kernel, and rounds
//! the result back to the half type once, at the end: one rounding per
//! output, as PyTorch's CPU kernels do. Copies, casts, comparisons and
//! indexing never widen: they move or compare the 16-bit values directly.

use super::{elementwise, CpuStorage};
use crate::{DType, Layout, Result};

/// Inputs where every half storage is replaced by a contiguous `f32` copy.
struct Widened<'a> {
    owned: Vec<Option<(CpuStorage, Layout)>>,
    inputs: &'a [(&'a CpuStorage, &'a Layout)],
}

impl<'a> Widened<'a> {
    fn new(inputs: &'a [(&'a CpuStorage, &'a Layout)]) -> Self {
        let owned = inputs
            .iter()
            .map(|&(s, l)| {
                s.dtype().is_half().then(|| {
                    (
                        elementwise::cast(s, l, DType::F32),
                        Layout::contiguous(l.shape().clone()),
                    )
                })
            })
            .collect();
        Widened { owned, inputs }
    }
    fn views(&self) -> Vec<(&CpuStorage, &Layout)> {
        self.inputs
            .iter()
            .zip(&self.owned)
            .map(|(&(s, l), w)| match w {
                Some((ws, wl)) => (ws, wl),
                None => (s, l),
            })
            .collect()
    }
}

/// Rounds an `f32` result back to `half`; other results pass through.
fn narrow(out: CpuStorage, half: DType) -> CpuStorage {
    if out.dtype() == DType::F32 {
        let l = Layout::contiguous(out.len());
        elementwise::cast(&out, &l, half)
    } else {
        out
    }
}

/// The half dtype among `inputs`, if any.
fn half_dtype(inputs: &[(&CpuStorage, &Layout)]) -> Option<DType> {
    inputs.iter().map(|(s, _)| s.dtype()).find(|d| d.is_half())
}

// ANCHOR: in_f32
/// Runs `kernel` on `inputs`, first widening half ones to `f32` and
/// afterwards rounding an `f32` result back to that half type.
pub(crate) fn in_f32(
    inputs: &[(&CpuStorage, &Layout)],
    kernel: impl FnOnce(&[(&CpuStorage, &Layout)]) -> Result<CpuStorage>,
) -> Result<CpuStorage> {
    let Some(half) = half_dtype(inputs) else {
        return kernel(inputs);
    };
    let widened = Widened::new(inputs);
    Ok(narrow(kernel(&widened.views())?, half))
}
// ANCHOR_END: in_f32

/// [`in_f32`] for kernels with several outputs (fused programs).
pub(crate) fn in_f32_many(
    inputs: &[(&CpuStorage, &Layout)],
    kernel: impl FnOnce(&[(&CpuStorage, &Layout)]) -> Result<Vec<CpuStorage>>,
) -> Result<Vec<CpuStorage>> {
    let Some(half) = half_dtype(inputs) else {
        return kernel(inputs);
    };
    let widened = Widened::new(inputs);
    Ok(kernel(&widened.views())?
        .into_iter()
        .map(|o| narrow(o, half))
        .collect())
}
