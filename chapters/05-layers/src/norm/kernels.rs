//! Fused CPU kernels for [`LayerNormForward`] and [`LayerNormBackward`].
//!
//! The composite layer norm runs about ten primitives, each a pass over
//! the whole `[rows, n]` tensor with a full-size intermediate; its backward
//! as many again. These kernels take one row at a time and keep it in the
//! L1 cache while they make the few passes the formulas need (a row of a
//! transformer's width, 768 `f32`, is 3 KB), so the tensor itself is read
//! from memory once and written once.
//!
//! Numerics: the mean and the variance come from two passes over the
//! cached row, `μ = Σx/n` and then `σ² = Σ(x − μ)²/n`, each summed in 8
//! lanes and added pairwise. Squaring the *centred* values avoids the
//! cancellation of `E[x²] − E[x]²` (which loses every digit when the mean
//! is large against the spread), and is as accurate as Welford's running
//! update without its division per element. `f32` and `f64` compute in
//! their own type; `f16` and `bf16` are widened to `f32`.

use super::{LayerNormBackward, LayerNormForward};
use chapter_02::{buffer_for_overwrite, DType, Error, Result, Tensor};
use chapter_04::row_kernels::{
    for_row_chunks, in_compute_dtype, run_chunk, sum_by, sum_by2, sum_by3, RowChunk, RowFloat,
};
use std::ops::Range;

// ANCHOR: forward_row
/// One row of layer norm: returns `(μ, r)` with `r = 1/√(σ² + ε)`, and
/// writes `yᵢ = (xᵢ − μ)·r·γᵢ + βᵢ`.
#[inline(always)]
fn forward_row<T: RowFloat>(
    x: &[T],
    weight: Option<&[T]>,
    bias: Option<&[T]>,
    eps: T,
    y: &mut [T],
) -> (T, T) {
    let inv_n = T::from_f64(1.0 / x.len() as f64);
    let mean = sum_by(x, |v| v) * inv_n;
    let var = sum_by(x, |v| (v - mean) * (v - mean)) * inv_n;
    let rstd = (var + eps).sqrt().recip();
    // One loop per case, so that no branch is left in the inner loop.
    let x_hat = |v: T| (v - mean) * rstd;
    match (weight, bias) {
        (Some(w), Some(b)) => {
            for (((y, &x), &w), &b) in y.iter_mut().zip(x).zip(w).zip(b) {
                *y = x_hat(x) * w + b;
            }
        }
        (Some(w), None) => {
            for ((y, &x), &w) in y.iter_mut().zip(x).zip(w) {
                *y = x_hat(x) * w;
            }
        }
        (None, Some(b)) => {
            for ((y, &x), &b) in y.iter_mut().zip(x).zip(b) {
                *y = x_hat(x) + b;
            }
        }
        (None, None) => {
            for (y, &x) in y.iter_mut().zip(x) {
                *y = x_hat(x);
            }
        }
    }
    (mean, rstd)
}
// ANCHOR_END: forward_row

// ANCHOR: backward_row
/// One row of layer norm's backward. With `x̂ = (x − μ)·r` and `ĝ = g ⊙ γ`:
///
/// `dx = r·(ĝ − mean(ĝ) − x̂·mean(ĝ ⊙ x̂))`
///
/// and the row's share of the parameters' gradients is added to `dw`
/// (`g ⊙ x̂`) and `db` (`g`). Two passes over the cached row: the two
/// means, then `dx` and the sums.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_row<T: RowFloat>(
    g: &[T],
    x: &[T],
    mean: T,
    rstd: T,
    weight: Option<&[T]>,
    dx: &mut [T],
    dw: Option<&mut [T]>,
    db: Option<&mut [T]>,
) {
    let inv_n = T::from_f64(1.0 / x.len() as f64);
    let x_hat = |v: T| (v - mean) * rstd;
    let (a, c) = match weight {
        Some(w) => (
            sum_by2(g, w, |g, w| g * w) * inv_n,
            sum_by3(g, w, x, |g, w, x| g * w * x_hat(x)) * inv_n,
        ),
        None => (
            sum_by(g, |g| g) * inv_n,
            sum_by2(g, x, |g, x| g * x_hat(x)) * inv_n,
        ),
    };
    match weight {
        Some(w) => {
            for (((dx, &g), &x), &w) in dx.iter_mut().zip(g).zip(x).zip(w) {
                *dx = ((g * w - a) - x_hat(x) * c) * rstd;
            }
        }
        None => {
            for ((dx, &g), &x) in dx.iter_mut().zip(g).zip(x) {
                *dx = ((g - a) - x_hat(x) * c) * rstd;
            }
        }
    }
    if let Some(dw) = dw {
        for ((dw, &g), &x) in dw.iter_mut().zip(g).zip(x) {
            *dw = *dw + g * x_hat(x);
        }
    }
    if let Some(db) = db {
        for (db, &g) in db.iter_mut().zip(g) {
            *db = *db + g;
        }
    }
}
// ANCHOR_END: backward_row

/// What every row of the forward kernel reads.
struct Forward<'a, T> {
    x: &'a [T],
    weight: Option<&'a [T]>,
    bias: Option<&'a [T]>,
    eps: T,
    n: usize,
}

/// The forward rows `rows` into `y` (their chunk of the output),
/// returning `(μ, r)` per row.
impl<T: RowFloat> RowChunk<T> for Forward<'_, T> {
    type Output = Vec<(T, T)>;
    #[inline(always)]
    fn run<const FMA: bool>(&self, rows: Range<usize>, y: &mut [T]) -> Vec<(T, T)> {
        let n = self.n;
        let mut stats = Vec::with_capacity(rows.len());
        for (i, y) in rows.zip(y.chunks_exact_mut(n)) {
            let x = &self.x[i * n..(i + 1) * n];
            stats.push(forward_row(x, self.weight, self.bias, self.eps, y));
        }
        stats
    }
}

fn forward<T: RowFloat>(op: &LayerNormForward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let x = inputs[0];
    let (rows, n) = (x.dims()[0], x.dims()[1]);
    let mut params = inputs[1..].iter();
    let mut next = |present: bool| match present {
        true => params.next().map(|t| t.host_slice::<T>()).transpose(),
        false => Ok(None),
    };
    let a = Forward {
        x: x.host_slice::<T>()?,
        weight: next(op.weight)?,
        bias: next(op.bias)?,
        eps: T::from_f64(op.eps),
        n,
    };
    let mut y = buffer_for_overwrite(rows * n, T::ZERO);
    let chunks = for_row_chunks(&mut y, n, |rows, chunk| run_chunk(&a, rows, chunk));
    let (mean, rstd): (Vec<T>, Vec<T>) = chunks.into_iter().flatten().unzip();
    let dev = x.device();
    Ok(vec![
        Tensor::from_host_vec(y, (rows, n), dev)?,
        Tensor::from_host_vec(mean, rows, dev)?,
        Tensor::from_host_vec(rstd, rows, dev)?,
    ])
}

/// What every row of the backward kernel reads.
struct Backward<'a, T> {
    g: &'a [T],
    x: &'a [T],
    mean: &'a [T],
    rstd: &'a [T],
    weight: Option<&'a [T]>,
    n: usize,
    /// Whether to sum `g ⊙ x̂` (for the weight) and `g` (for the bias).
    dw: bool,
    db: bool,
}

/// The backward rows `rows` into `dx` (their chunk), returning this
/// chunk's sums for the weight's and the bias's gradients.
impl<T: RowFloat> RowChunk<T> for Backward<'_, T> {
    type Output = (Vec<T>, Vec<T>);
    #[inline(always)]
    fn run<const FMA: bool>(&self, rows: Range<usize>, dx: &mut [T]) -> (Vec<T>, Vec<T>) {
        let n = self.n;
        let mut dw = vec![T::ZERO; if self.dw { n } else { 0 }];
        let mut db = vec![T::ZERO; if self.db { n } else { 0 }];
        for (i, dx) in rows.zip(dx.chunks_exact_mut(n)) {
            let row = i * n..(i + 1) * n;
            backward_row(
                &self.g[row.clone()],
                &self.x[row],
                self.mean[i],
                self.rstd[i],
                self.weight,
                dx,
                self.dw.then_some(&mut dw[..]),
                self.db.then_some(&mut db[..]),
            );
        }
        (dw, db)
    }
}

fn backward<T: RowFloat>(op: &LayerNormBackward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    let (g, x) = (inputs[0], inputs[1]);
    let (rows, n) = (x.dims()[0], x.dims()[1]);
    let a = Backward {
        g: g.host_slice::<T>()?,
        x: x.host_slice::<T>()?,
        mean: inputs[2].host_slice::<T>()?,
        rstd: inputs[3].host_slice::<T>()?,
        weight: match op.weight {
            true => Some(inputs[4].host_slice::<T>()?),
            false => None,
        },
        n,
        dw: op.weight,
        db: op.bias,
    };
    let mut dx = buffer_for_overwrite(rows * n, T::ZERO);
    let chunks = for_row_chunks(&mut dx, n, |rows, chunk| run_chunk(&a, rows, chunk));
    // The chunks' partial sums, added in row order.
    let (mut dw, mut db) = (vec![T::ZERO; n], vec![T::ZERO; n]);
    for (part_w, part_b) in &chunks {
        for (s, &p) in dw.iter_mut().zip(part_w) {
            *s = *s + p;
        }
        for (s, &p) in db.iter_mut().zip(part_b) {
            *s = *s + p;
        }
    }
    let dev = x.device();
    let mut out = vec![Tensor::from_host_vec(dx, (rows, n), dev)?];
    if op.weight {
        out.push(Tensor::from_host_vec(dw, n, dev)?);
    }
    if op.bias {
        out.push(Tensor::from_host_vec(db, n, dev)?);
    }
    Ok(out)
}

/// The inputs made contiguous and half types widened, then the kernel for
/// the element type.
fn run(
    name: &'static str,
    inputs: &[&Tensor],
    kernel32: impl FnOnce(&[&Tensor]) -> Result<Vec<Tensor>>,
    kernel64: impl FnOnce(&[&Tensor]) -> Result<Vec<Tensor>>,
) -> Result<Vec<Tensor>> {
    let contiguous = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = contiguous.iter().collect();
    in_compute_dtype(&refs, |inputs| match inputs[0].dtype() {
        DType::F32 => kernel32(inputs),
        DType::F64 => kernel64(inputs),
        dtype => Err(Error::UnsupportedDType { op: name, dtype }),
    })
}

/// The CPU kernel of [`LayerNormForward`].
pub fn layer_norm_forward_cpu(op: &LayerNormForward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    run(
        "layer_norm",
        inputs,
        |i| forward::<f32>(op, i),
        |i| forward::<f64>(op, i),
    )
}

/// The CPU kernel of [`LayerNormBackward`].
pub fn layer_norm_backward_cpu(op: &LayerNormBackward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    run(
        "layer_norm_backward",
        inputs,
        |i| backward::<f32>(op, i),
        |i| backward::<f64>(op, i),
    )
}
