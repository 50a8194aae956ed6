//! Fused CPU kernels for the softmax operators of [`crate::softmax`].
//!
//! The composite softmax makes five passes over the tensor (max, subtract,
//! exp, sum, divide), each writing a full-size intermediate. These kernels
//! read each row once to find its max and its sum of exponentials together
//! (the *online softmax* of Milakov & Gimelshein, 2018) and once more to
//! write the result; a row is usually still in the L1 cache for that second
//! read. The backward kernels likewise make one reduction and one writing
//! pass per row.
//!
//! `f32` and `f64` are computed in their own type; `f16` and `bf16` are
//! widened to `f32` ([`in_compute_dtype`]).

use crate::row_kernels::{
    for_row_chunks, in_compute_dtype, lanes, padded, sum_lanes, vectorized, RowFloat, LANES,
};
use crate::softmax::{LogSoftmaxBackward, LogSoftmaxLastDim, SoftmaxBackward, SoftmaxLastDim};
use chapter_02::{DType, Error, Result, Tensor};
use std::array::from_fn;

/// Elements per online update: the row's running max is raised (and the
/// running sums rescaled) once per block, so the rescaling costs one `exp`
/// per lane per 64 elements instead of one per element.
const BLOCK: usize = 8 * LANES;

// ANCHOR: online_max_sum
/// The max `m` of a row and `s = Σⱼ exp(xⱼ − m)`, in one pass.
///
/// Each of the 8 lanes keeps a running max `mₗ` and a running sum `sₗ` of
/// `exp(x − mₗ)`. When a block of the row raises the max to `m'`, the sum
/// so far is rescaled, `sₗ ← sₗ·exp(mₗ − m')`, which is what it would have
/// been had `m'` been known from the start. At the end the lanes are
/// combined the same way: `s = Σₗ sₗ·exp(mₗ − m)`.
///
/// The running max starts at the lowest finite value, not at `−∞`: a lane
/// that has seen only masked (`−∞`) entries then holds `sₗ = 0` rather
/// than `exp(−∞ − (−∞)) = NaN`. A row of only `−∞` ends with `s = 0`, and
/// its softmax `0/0` is NaN, as the composite's (and PyTorch's) is.
#[inline(always)]
fn online_max_sum<T: RowFloat>(x: &[T]) -> (T, T) {
    let mut m = [T::LOWEST; LANES];
    let mut s = [T::ZERO; LANES];
    // One online update with a block whose length is a multiple of LANES.
    let mut update = |block: &[T]| {
        let mut m_new = m;
        for c in block.chunks_exact(LANES) {
            for l in 0..LANES {
                m_new[l] = c[l].max(m_new[l]);
            }
        }
        let rescale = T::exp_lanes(from_fn(|l| m[l] - m_new[l]));
        for l in 0..LANES {
            s[l] = s[l] * rescale[l];
        }
        for c in block.chunks_exact(LANES) {
            let e = T::exp_lanes(from_fn(|l| c[l] - m_new[l]));
            for l in 0..LANES {
                s[l] = s[l] + e[l];
            }
        }
        m = m_new;
    };
    let mut blocks = x.chunks_exact(BLOCK);
    for block in &mut blocks {
        update(block);
    }
    let rest = blocks.remainder();
    let whole = rest.len() / LANES * LANES;
    if whole > 0 {
        update(&rest[..whole]);
    }
    if whole < rest.len() {
        // Padding with −∞ adds exp(−∞ − m) = 0 to the sums.
        update(&padded(&rest[whole..], T::NEG_INFINITY));
    }
    let row_max = m.iter().fold(T::LOWEST, |a, &b| b.max(a));
    let rescale = T::exp_lanes(from_fn(|l| m[l] - row_max));
    (row_max, sum_lanes(from_fn(|l| s[l] * rescale[l])))
}
// ANCHOR_END: online_max_sum

/// `y = f(x)` for a row, `LANES` elements at a time plus a padded tail.
#[inline(always)]
fn map_row<T: RowFloat>(x: &[T], y: &mut [T], f: impl Fn([T; LANES]) -> [T; LANES]) {
    let mut xs = x.chunks_exact(LANES);
    let mut ys = y.chunks_exact_mut(LANES);
    for (xc, yc) in (&mut xs).zip(&mut ys) {
        yc.copy_from_slice(&f(lanes(xc)));
    }
    let (xt, yt) = (xs.remainder(), ys.into_remainder());
    if !xt.is_empty() {
        yt.copy_from_slice(&f(padded(xt, T::ZERO))[..xt.len()]);
    }
}

/// `y = f(a, b)` for two rows, like [`map_row`].
#[inline(always)]
fn map_row2<T: RowFloat>(
    a: &[T],
    b: &[T],
    y: &mut [T],
    f: impl Fn([T; LANES], [T; LANES]) -> [T; LANES],
) {
    let (mut a_chunks, mut b_chunks) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let mut ys = y.chunks_exact_mut(LANES);
    for ((ac, bc), yc) in (&mut a_chunks).zip(&mut b_chunks).zip(&mut ys) {
        yc.copy_from_slice(&f(lanes(ac), lanes(bc)));
    }
    let (at, bt, yt) = (
        a_chunks.remainder(),
        b_chunks.remainder(),
        ys.into_remainder(),
    );
    if !at.is_empty() {
        yt.copy_from_slice(&f(padded(at, T::ZERO), padded(bt, T::ZERO))[..at.len()]);
    }
}

/// `Σⱼ f(aⱼ, bⱼ)` over two rows, in lanes (the tail is padded with zeros,
/// so `f(0, 0)` must be 0).
#[inline(always)]
fn sum_row2<T: RowFloat>(a: &[T], b: &[T], f: impl Fn(T, T) -> T) -> T {
    let mut acc = [T::ZERO; LANES];
    let (mut ac, mut bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    for (x, y) in (&mut ac).zip(&mut bc) {
        for l in 0..LANES {
            acc[l] = acc[l] + f(x[l], y[l]);
        }
    }
    let (x, y) = (
        padded(ac.remainder(), T::ZERO),
        padded(bc.remainder(), T::ZERO),
    );
    for l in 0..LANES {
        acc[l] = acc[l] + f(x[l], y[l]);
    }
    sum_lanes(acc)
}

// ANCHOR: row_kernels
/// One softmax row: the online pass, then `yᵢ = exp(xᵢ − m) · (1/s)`.
#[inline(always)]
fn softmax_row<T: RowFloat>([x]: [&[T]; 1], y: &mut [T]) {
    let (m, s) = online_max_sum(x);
    let inv = s.recip();
    map_row(x, y, |xc| {
        let e = T::exp_lanes(from_fn(|l| xc[l] - m));
        from_fn(|l| e[l] * inv)
    });
}

/// One log-softmax row: the online pass, then `yᵢ = (xᵢ − m) − log s`
/// (no second `exp` at all).
#[inline(always)]
fn log_softmax_row<T: RowFloat>([x]: [&[T]; 1], y: &mut [T]) {
    let (m, s) = online_max_sum(x);
    let log_s = s.ln();
    map_row(x, y, |xc| from_fn(|l| (xc[l] - m) - log_s));
}

/// One row of softmax's backward: `dot = Σ gⱼyⱼ`, then
/// `dxᵢ = yᵢ(gᵢ − dot)`.
#[inline(always)]
fn softmax_backward_row<T: RowFloat>([y, g]: [&[T]; 2], dx: &mut [T]) {
    let dot = sum_row2(y, g, |y, g| y * g);
    map_row2(y, g, dx, |yc, gc| from_fn(|l| yc[l] * (gc[l] - dot)));
}

/// One row of log-softmax's backward: `total = Σ gⱼ`, then
/// `dxᵢ = gᵢ − exp(yᵢ)·total`.
#[inline(always)]
fn log_softmax_backward_row<T: RowFloat>([y, g]: [&[T]; 2], dx: &mut [T]) {
    let total = sum_row2(y, g, |_, g| g);
    map_row2(y, g, dx, |yc, gc| {
        let p = T::exp_lanes(yc);
        from_fn(|l| gc[l] - p[l] * total)
    });
}
// ANCHOR_END: row_kernels

// ANCHOR: map_rows
/// Runs `row` on every row of `K` contiguous `[.., n]` tensors of one
/// shape, writing one output of that shape: rows split over the cores when
/// the tensor is large, each chunk compiled for AVX2 where the CPU has it.
fn map_rows<T: RowFloat, const K: usize>(
    inputs: [&Tensor; K],
    row: impl Fn([&[T]; K], &mut [T]) + Sync,
) -> Result<Tensor> {
    let x = inputs[0];
    let n = x.dims().last().copied().unwrap_or(1);
    let mut data: [&[T]; K] = [&[]; K];
    for (d, t) in data.iter_mut().zip(inputs) {
        *d = t.host_slice::<T>()?;
    }
    let mut out = vec![T::ZERO; x.elem_count()];
    if n > 0 {
        for_row_chunks(&mut out, n, |rows, chunk| {
            vectorized(|| {
                for (i, y) in rows.zip(chunk.chunks_exact_mut(n)) {
                    row(data.map(|d| &d[i * n..(i + 1) * n]), y);
                }
            })
        });
    }
    Tensor::from_host_vec(out, x.shape().clone(), x.device())
}
// ANCHOR_END: map_rows

/// The kernel entry points: make the inputs contiguous, widen half types,
/// pick the element type.
fn rows_kernel<const K: usize>(
    op: &'static str,
    inputs: &[&Tensor],
    row32: impl Fn([&[f32]; K], &mut [f32]) + Sync,
    row64: impl Fn([&[f64]; K], &mut [f64]) + Sync,
) -> Result<Vec<Tensor>> {
    let contiguous = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = contiguous.iter().collect();
    in_compute_dtype(&refs, |inputs| {
        let arr: [&Tensor; K] = from_fn(|k| inputs[k]);
        Ok(vec![match arr[0].dtype() {
            DType::F32 => map_rows(arr, row32)?,
            DType::F64 => map_rows(arr, row64)?,
            dtype => return Err(Error::UnsupportedDType { op, dtype }),
        }])
    })
}

/// The CPU kernel of [`SoftmaxLastDim`].
pub fn softmax_cpu(_: &SoftmaxLastDim, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel::<1>("softmax", inputs, softmax_row, softmax_row)
}

/// The CPU kernel of [`LogSoftmaxLastDim`].
pub fn log_softmax_cpu(_: &LogSoftmaxLastDim, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel::<1>("log_softmax", inputs, log_softmax_row, log_softmax_row)
}

/// The CPU kernel of [`SoftmaxBackward`].
pub fn softmax_backward_cpu(_: &SoftmaxBackward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel::<2>(
        "softmax_backward",
        inputs,
        softmax_backward_row,
        softmax_backward_row,
    )
}

/// The CPU kernel of [`LogSoftmaxBackward`].
pub fn log_softmax_backward_cpu(_: &LogSoftmaxBackward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel::<2>(
        "log_softmax_backward",
        inputs,
        log_softmax_backward_row,
        log_softmax_backward_row,
    )
}
