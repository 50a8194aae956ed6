//! Fused CPU kernels for the softmax operators of [`crate::softmax`].
//!
//! The composite softmax makes five passes over the tensor (max, subtract,
//! exp, sum, divide), each writing a full-size intermediate. These kernels
//! read each row once to find its max and its sum of exponentials together
//! (the *online softmax* of Milakov & Gimelshein, 2018), computing each
//! `exp` once, and then finish the row where it was written, still in the
//! L1 cache. The backward kernels likewise make one reduction and one
//! writing pass per row.
//!
//! `f32` and `f64` are computed in their own type; `f16` and `bf16` are
//! widened to `f32` ([`in_compute_dtype`]).

use crate::row_kernels::{
    for_row_chunks, in_compute_dtype, lanes, padded, run_chunk, sum_by, sum_by2, sum_lanes,
    RowChunk, RowFloat, LANES,
};
use crate::softmax::{LogSoftmaxBackward, LogSoftmaxLastDim, SoftmaxBackward, SoftmaxLastDim};
use chapter_02::{buffer_for_overwrite, DType, Error, Result, Tensor};
use std::array::from_fn;
use std::ops::Range;

/// Elements per online update. The running max is raised (and the sums
/// rescaled) once per block, which costs one scalar `exp` per 64 elements
/// instead of one per element.
const BLOCK: usize = 8 * LANES;

// ANCHOR: online_pass
/// One pass over a row `x` that returns its max `m` and
/// `s = Σⱼ exp(xⱼ − m)`: the *online softmax*.
///
/// The row is read block by block. Before a block's exponentials are
/// summed, the running max `m` is raised to cover the block, and the sum
/// so far is rescaled, `s ← s·exp(m_old − m)`: what it would have been had
/// the new max been known from the start. The sum is kept in 8 lanes, the
/// exponentials are computed 8 at a time.
///
/// (`FMA`: whether the code is compiled with fused multiply-adds, see
/// [`crate::row_kernels::exp_f32`].) With `KEEP`, the pass also writes each exponential `exp(xⱼ − m_b)` to
/// `y` and the max `m_b` it was taken against to `block_max`, one per
/// block, so that softmax's second pass only has to multiply
/// (`exp(m_b − m)/s` per block) instead of computing every `exp` again.
///
/// The running max starts at the lowest finite value, not at `−∞`, so that
/// a masked (`−∞`) entry adds `exp(−∞ − m) = 0` and never `exp(−∞ − (−∞))
/// = NaN`. A row of only `−∞` ends with `s = 0`, and its softmax `0·(1/0)`
/// is NaN, as the composite's `0/0` (and PyTorch's) is. A NaN anywhere
/// makes `s` NaN, hence the whole row, as in the composite.
#[inline(always)]
fn online_pass<T: RowFloat, const KEEP: bool, const FMA: bool>(
    x: &[T],
    y: &mut [T],
    block_max: &mut Vec<T>,
) -> (T, T) {
    let mut m = T::LOWEST;
    let mut s = [T::ZERO; LANES];
    block_max.clear();
    for (b, block) in x.chunks(BLOCK).enumerate() {
        // 1. The running max, raised to cover this block.
        let mut lane_max = [m; LANES];
        let mut chunks = block.chunks_exact(LANES);
        for c in &mut chunks {
            for l in 0..LANES {
                lane_max[l] = c[l].max(lane_max[l]);
            }
        }
        for &v in chunks.remainder() {
            lane_max[0] = v.max(lane_max[0]);
        }
        let m_new = lane_max.iter().fold(m, |a, &v| v.max(a));
        // 2. The sums so far, rescaled to the new max. (From the starting
        // value the factor underflows to 0; it is written out because the C
        // library's `exp` takes a slow path to report that underflow.)
        if m_new > m {
            let r = match m == T::LOWEST {
                true => T::ZERO,
                false => (m - m_new).exp(),
            };
            s = from_fn(|l| s[l] * r);
            m = m_new;
        }
        // 3. This block's exponentials, added (and kept).
        let y_block = match KEEP {
            true => &mut y[b * BLOCK..b * BLOCK + block.len()],
            false => &mut [],
        };
        let mut ys = y_block.chunks_exact_mut(LANES);
        let mut chunks = block.chunks_exact(LANES);
        for c in &mut chunks {
            let e = T::exp_lanes::<FMA>(from_fn(|l| c[l] - m));
            for l in 0..LANES {
                s[l] = s[l] + e[l];
            }
            if let Some(yc) = ys.next() {
                yc.copy_from_slice(&e);
            }
        }
        let tail = chunks.remainder();
        if !tail.is_empty() {
            // Padding with −∞ adds exp(−∞ − m) = 0.
            let c = padded(tail, T::NEG_INFINITY);
            let e = T::exp_lanes::<FMA>(from_fn(|l| c[l] - m));
            for l in 0..LANES {
                s[l] = s[l] + e[l];
            }
            let y_tail = ys.into_remainder();
            if KEEP {
                y_tail.copy_from_slice(&e[..tail.len()]);
            }
        }
        if KEEP {
            block_max.push(m);
        }
    }
    (m, sum_lanes(s))
}
// ANCHOR_END: online_pass

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

// ANCHOR: row_kernels
/// The work of a fused kernel on one row: `K` input rows in, one output
/// row out, with a scratch vector reused from row to row. A trait rather
/// than a closure so that the method can be `#[inline(always)]`, which the
/// AVX2 copy of the row loop needs (see [`RowChunk`]).
trait Row<const K: usize>: Sync {
    fn row<T: RowFloat, const FMA: bool>(&self, x: [&[T]; K], y: &mut [T], scratch: &mut Vec<T>);
}

/// One softmax row: the online pass, keeping the exponentials, then one
/// multiplication per element, `yⱼ = exp(xⱼ − m_b) · exp(m_b − m)/s`.
struct SoftmaxRow;
impl Row<1> for SoftmaxRow {
    #[inline(always)]
    fn row<T: RowFloat, const FMA: bool>(
        &self,
        [x]: [&[T]; 1],
        y: &mut [T],
        block_max: &mut Vec<T>,
    ) {
        let (m, s) = online_pass::<T, true, FMA>(x, y, block_max);
        let inv = s.recip();
        for (yb, &mb) in y.chunks_mut(BLOCK).zip(block_max.iter()) {
            let f = match mb == m {
                true => inv,
                false => (mb - m).exp() * inv,
            };
            for v in yb {
                *v = *v * f;
            }
        }
    }
}

/// One log-softmax row: the online pass, then `yⱼ = (xⱼ − m) − log s`
/// (no second `exp` at all).
struct LogSoftmaxRow;
impl Row<1> for LogSoftmaxRow {
    #[inline(always)]
    fn row<T: RowFloat, const FMA: bool>(
        &self,
        [x]: [&[T]; 1],
        y: &mut [T],
        block_max: &mut Vec<T>,
    ) {
        let (m, s) = online_pass::<T, false, FMA>(x, &mut [], block_max);
        let log_s = s.ln();
        map_row(x, y, |xc| from_fn(|l| (xc[l] - m) - log_s));
    }
}

/// One row of softmax's backward: `dot = Σ gⱼyⱼ`, then
/// `dxᵢ = yᵢ(gᵢ − dot)`.
struct SoftmaxBackwardRow;
impl Row<2> for SoftmaxBackwardRow {
    #[inline(always)]
    fn row<T: RowFloat, const FMA: bool>(&self, [y, g]: [&[T]; 2], dx: &mut [T], _: &mut Vec<T>) {
        let dot = sum_by2(y, g, |y, g| y * g);
        map_row2(y, g, dx, |yc, gc| from_fn(|l| yc[l] * (gc[l] - dot)));
    }
}

/// One row of log-softmax's backward: `total = Σ gⱼ`, then
/// `dxᵢ = gᵢ − exp(yᵢ)·total`.
struct LogSoftmaxBackwardRow;
impl Row<2> for LogSoftmaxBackwardRow {
    #[inline(always)]
    fn row<T: RowFloat, const FMA: bool>(&self, [y, g]: [&[T]; 2], dx: &mut [T], _: &mut Vec<T>) {
        let total = sum_by(g, |g| g);
        map_row2(y, g, dx, |yc, gc| {
            let p = T::exp_lanes::<FMA>(yc);
            from_fn(|l| gc[l] - p[l] * total)
        });
    }
}
// ANCHOR_END: row_kernels

// ANCHOR: map_rows
/// Runs `op` on every row of `K` contiguous `[.., n]` tensors of one
/// shape, writing one output of that shape: rows split over the cores when
/// the tensor is large, each chunk compiled for AVX2 and FMA where the CPU
/// has them.
fn map_rows<T: RowFloat, const K: usize>(inputs: [&Tensor; K], op: &impl Row<K>) -> Result<Tensor> {
    let x = inputs[0];
    let n = x.dims().last().copied().unwrap_or(1);
    let mut data: [&[T]; K] = [&[]; K];
    for (d, t) in data.iter_mut().zip(inputs) {
        *d = t.host_slice::<T>()?;
    }
    // Every row is written below.
    let mut out = buffer_for_overwrite(x.elem_count(), T::ZERO);
    if n > 0 {
        let rows = Rows { op, data, n };
        for_row_chunks(&mut out, n, |r, chunk| run_chunk(&rows, r, chunk));
    }
    Tensor::from_host_vec(out, x.shape().clone(), x.device())
}

/// `op` applied to the rows of `data`, as one [`RowChunk`].
struct Rows<'a, T, R, const K: usize> {
    op: &'a R,
    data: [&'a [T]; K],
    n: usize,
}

impl<T: RowFloat, R: Row<K>, const K: usize> RowChunk<T> for Rows<'_, T, R, K> {
    type Output = ();
    #[inline(always)]
    fn run<const FMA: bool>(&self, rows: Range<usize>, out: &mut [T]) {
        let n = self.n;
        let mut scratch = Vec::new();
        for (i, y) in rows.zip(out.chunks_exact_mut(n)) {
            let x = from_fn(|k| &self.data[k][i * n..(i + 1) * n]);
            self.op.row::<T, FMA>(x, y, &mut scratch);
        }
    }
}
// ANCHOR_END: map_rows

/// The kernel entry points: make the inputs contiguous, widen half types,
/// pick the element type.
fn rows_kernel<const K: usize>(
    name: &'static str,
    inputs: &[&Tensor],
    op: impl Row<K>,
) -> Result<Vec<Tensor>> {
    let contiguous = inputs
        .iter()
        .map(|t| t.contiguous())
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&Tensor> = contiguous.iter().collect();
    in_compute_dtype(&refs, |inputs| {
        let arr: [&Tensor; K] = from_fn(|k| inputs[k]);
        Ok(vec![match arr[0].dtype() {
            DType::F32 => map_rows::<f32, K>(arr, &op)?,
            DType::F64 => map_rows::<f64, K>(arr, &op)?,
            dtype => return Err(Error::UnsupportedDType { op: name, dtype }),
        }])
    })
}

/// The CPU kernel of [`SoftmaxLastDim`].
pub fn softmax_cpu(_: &SoftmaxLastDim, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel("softmax", inputs, SoftmaxRow)
}

/// The CPU kernel of [`LogSoftmaxLastDim`].
pub fn log_softmax_cpu(_: &LogSoftmaxLastDim, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel("log_softmax", inputs, LogSoftmaxRow)
}

/// The CPU kernel of [`SoftmaxBackward`].
pub fn softmax_backward_cpu(_: &SoftmaxBackward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel("softmax_backward", inputs, SoftmaxBackwardRow)
}

/// The CPU kernel of [`LogSoftmaxBackward`].
pub fn log_softmax_backward_cpu(_: &LogSoftmaxBackward, inputs: &[&Tensor]) -> Result<Vec<Tensor>> {
    rows_kernel("log_softmax_backward", inputs, LogSoftmaxBackwardRow)
}
