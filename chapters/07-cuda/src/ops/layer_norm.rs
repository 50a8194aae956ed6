//! Layer norm over rows, forward and backward, on the kernels of
//! `kernels/softmax.cu`.

use super::{on_device, wrap};
use crate::backend::{elementwise_launch, row_launch, suffix};
use crate::emulator::KernelArgs;
use crate::runtime::{DevicePtr, Runtime};
use chapter_02::{Result, Tensor};
use chapter_05::norm::{LayerNormBackward, LayerNormForward};

// ANCHOR: forward
/// `layer_norm_<dtype>(rows, cols, x, γ, β, y, μ, r, ε)`: one block per
/// row, two block reductions (the mean, then the variance about it), then
/// the row written. A missing `γ` or `β` is a null pointer.
pub(super) fn forward<R: Runtime>(
    op: &LayerNormForward,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    let name = "layer_norm";
    let x = inputs[0];
    let (rows, cols) = (x.dims()[0], x.dims()[1]);
    let (backend, _) = on_device::<R>(x)?;
    let mut ptrs: Vec<DevicePtr> = Vec::new();
    let mut copies = Vec::new();
    for t in inputs {
        let (_, s) = on_device::<R>(t)?;
        let (ptr, copy) = backend.flat(name, s, t.layout())?;
        ptrs.push(ptr);
        copies.push(copy);
    }
    let gamma = if op.weight { ptrs[1] } else { 0 };
    let beta = if op.bias { ptrs[ptrs.len() - 1] } else { 0 };
    let dtype = x.dtype();
    let y = backend.alloc(name, dtype, rows * cols)?;
    let mean = backend.alloc(name, dtype, rows)?;
    let rstd = backend.alloc(name, dtype, rows)?;
    if rows > 0 {
        let args = KernelArgs::new()
            .arg(rows as i64)
            .arg(cols as i64)
            .arg(ptrs[0])
            .arg(gamma)
            .arg(beta)
            .arg(y.ptr())
            .arg(mean.ptr())
            .arg(rstd.ptr())
            .arg(op.eps);
        let kernel = format!("layer_norm_{}", suffix(dtype));
        backend.launch(name, &kernel, row_launch(rows, cols), args)?;
    }
    Ok(vec![
        wrap(y, (rows, cols), x),
        wrap(mean, rows, x),
        wrap(rstd, rows, x),
    ])
}
// ANCHOR_END: forward

// ANCHOR: backward
/// Two launches: `layer_norm_backward_<dtype>` for `dx`, one block per row
/// (two block sums, then the row), and `layer_norm_backward_params_<dtype>`
/// for `dγ` and `dβ`, one thread per column summing down its column.
pub(super) fn backward<R: Runtime>(
    op: &LayerNormBackward,
    inputs: &[&Tensor],
) -> Result<Vec<Tensor>> {
    let name = "layer_norm_backward";
    let x = inputs[1];
    let (rows, cols) = (x.dims()[0], x.dims()[1]);
    let (backend, _) = on_device::<R>(x)?;
    let mut ptrs: Vec<DevicePtr> = Vec::new();
    let mut copies = Vec::new();
    for t in inputs {
        let (_, s) = on_device::<R>(t)?;
        let (ptr, copy) = backend.flat(name, s, t.layout())?;
        ptrs.push(ptr);
        copies.push(copy);
    }
    let (g, xp, mean, rstd) = (ptrs[0], ptrs[1], ptrs[2], ptrs[3]);
    let gamma = if op.weight { ptrs[4] } else { 0 };
    let dtype = x.dtype();
    let sfx = suffix(dtype);
    let dx = backend.alloc(name, dtype, rows * cols)?;
    if rows > 0 {
        let args = KernelArgs::new()
            .arg(rows as i64)
            .arg(cols as i64)
            .arg(g)
            .arg(xp)
            .arg(mean)
            .arg(rstd)
            .arg(gamma)
            .arg(dx.ptr());
        backend.launch(
            name,
            &format!("layer_norm_backward_{sfx}"),
            row_launch(rows, cols),
            args,
        )?;
    }
    let mut out = vec![wrap(dx, (rows, cols), x)];
    if op.weight || op.bias {
        let dgamma = if op.weight {
            Some(backend.alloc(name, dtype, cols)?)
        } else {
            None
        };
        let dbeta = if op.bias {
            Some(backend.alloc(name, dtype, cols)?)
        } else {
            None
        };
        let args = KernelArgs::new()
            .arg(rows as i64)
            .arg(cols as i64)
            .arg(g)
            .arg(xp)
            .arg(mean)
            .arg(rstd)
            .arg(dgamma.as_ref().map_or(0, |s| s.ptr()))
            .arg(dbeta.as_ref().map_or(0, |s| s.ptr()));
        let kernel = format!("layer_norm_backward_params_{sfx}");
        backend.launch(name, &kernel, elementwise_launch(cols), args)?;
        out.extend(dgamma.map(|s| wrap(s, cols, x)));
        out.extend(dbeta.map(|s| wrap(s, cols, x)));
    }
    Ok(out)
}
// ANCHOR_END: backward
