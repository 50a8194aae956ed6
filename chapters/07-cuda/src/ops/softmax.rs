//! Softmax and log-softmax over the last dimension, forward and backward,
//! on the row kernels of `kernels/softmax.cu`.

use super::{on_device, wrap};
use crate::backend::{row_launch, suffix};
use crate::emulator::KernelArgs;
use crate::runtime::Runtime;
use chapter_02::{Result, Tensor};
use chapter_04::softmax::{LogSoftmaxBackward, LogSoftmaxLastDim, SoftmaxBackward, SoftmaxLastDim};

// ANCHOR: rows
/// Runs row kernel `name` on `inputs` (one shape, rows along the last
/// dimension): each input made contiguous if it is not, one block per row
/// (see [`row_launch`]), one output of the same shape.
fn rows<R: Runtime>(name: &str, op: &'static str, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let x = inputs[0];
    if x.elem_count() == 0 {
        return Ok(vec![x.copy()?]);
    }
    let cols = x.dims()[x.rank() - 1];
    let rows = x.elem_count() / cols;
    let (backend, _) = on_device::<R>(x)?;
    let mut args = KernelArgs::new().arg(rows as i64).arg(cols as i64);
    let mut copies = Vec::new();
    for t in inputs {
        let (_, s) = on_device::<R>(t)?;
        let (ptr, copy) = backend.flat(op, s, t.layout())?;
        args = args.arg(ptr);
        copies.push(copy);
    }
    let out = backend.alloc(op, x.dtype(), x.elem_count())?;
    args = args.arg(out.ptr());
    let kernel = format!("{name}_{}", suffix(x.dtype()));
    backend.launch(op, &kernel, row_launch(rows, cols), args)?;
    Ok(vec![wrap(out, x.shape().clone(), x)])
}
// ANCHOR_END: rows

/// `backend_softmax_<dtype>(rows, cols, x, y)`: the row's max, then its
/// sum of exponentials, then `y` (two block reductions; see
/// `kernels/backend_softmax.cu` for why not `softmax.cu`'s one-pass
/// online version: it gives NaN where a row is masked with −∞).
pub(super) fn softmax<R: Runtime>(_: &SoftmaxLastDim, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows::<R>("backend_softmax", "softmax", inputs)
}

/// `backend_log_softmax_<dtype>(rows, cols, x, y)`.
pub(super) fn log_softmax<R: Runtime>(
    _: &LogSoftmaxLastDim,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    rows::<R>("backend_log_softmax", "log_softmax", inputs)
}

/// `softmax_backward_<dtype>(rows, cols, y, g, dx)`.
pub(super) fn softmax_backward<R: Runtime>(
    _: &SoftmaxBackward,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    rows::<R>("softmax_backward", "softmax_backward", inputs)
}

/// `log_softmax_backward_<dtype>(rows, cols, y, g, dx)`.
pub(super) fn log_softmax_backward<R: Runtime>(
    _: &LogSoftmaxBackward,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    rows::<R>("log_softmax_backward", "log_softmax_backward", inputs)
}
