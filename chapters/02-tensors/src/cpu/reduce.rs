//! Reductions: sum, max, min, argmax, argmin over a set of axes.

use super::strided::for_each_row;
use super::CpuStorage;
use crate::backend::ReduceOp;
use crate::{Error, Layout, Result};

/// What a reduction needs from an element type.
pub(crate) trait ReduceElem: Copy + PartialOrd + Send + Sync + 'static {
    fn zero() -> Self;
    fn add(self, o: Self) -> Self;
    fn is_nan(self) -> bool;
}
macro_rules! reduce_elem {
    ($t:ty, $zero:expr, $nan:expr) => {
        impl ReduceElem for $t {
            fn zero() -> Self {
                $zero
            }
            #[inline(always)]
            fn add(self, o: Self) -> Self {
                self + o
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                #[allow(clippy::redundant_closure_call)]
                ($nan)(self)
            }
        }
    };
}
reduce_elem!(f32, 0.0, |v: f32| v.is_nan());
reduce_elem!(f64, 0.0, |v: f64| v.is_nan());
reduce_elem!(i64, 0, |_| false);
reduce_elem!(u8, 0, |_| false);

// ANCHOR: sum_slice
/// Sums a contiguous slice pairwise (as NumPy does): split it in halves
/// until a piece has at most 1024 elements, sum those with [`sum_lanes`],
/// and add the halves back up. Each element then passes through about
/// log2(n) additions of similar-sized numbers instead of n, so a million
/// `f32` values come out right to about 1e-7 (relative) instead of the 1e-2
/// of one running total.
fn sum_slice<T: ReduceElem>(x: &[T]) -> T {
    if x.len() <= 1024 {
        return sum_lanes(x);
    }
    let (left, right) = x.split_at(x.len() / 2);
    sum_slice(left).add(sum_slice(right))
}

/// Sums a slice with eight independent accumulators, which the compiler
/// turns into one SIMD register.
fn sum_lanes<T: ReduceElem>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i].add(c[i]);
        }
    }
    let mut total = ((acc[0].add(acc[4])).add(acc[1].add(acc[5])))
        .add((acc[2].add(acc[6])).add(acc[3].add(acc[7])));
    for &v in rest {
        total = total.add(v);
    }
    total
}
// ANCHOR_END: sum_slice

/// The largest (or smallest) element of a contiguous slice, with eight
/// independent lanes so the compiler can use SIMD compares. NaNs are
/// tracked on the side (a NaN anywhere makes the result NaN, as in PyTorch),
/// which keeps the inner loop free of unpredictable branches.
fn extreme_slice<T: ReduceElem>(x: &[T], wins: impl Fn(T, T) -> bool) -> T {
    let mut acc = [x[0]; 8];
    let mut nan = false;
    let chunks = x.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            nan |= c[i].is_nan();
            acc[i] = if wins(c[i], acc[i]) { c[i] } else { acc[i] };
        }
    }
    if let Some(&v) = x.iter().find(|v| nan && v.is_nan()) {
        return v;
    }
    let mut best = acc[0];
    for &v in acc[1..].iter().chain(rest) {
        if v.is_nan() {
            return v;
        }
        if wins(v, best) {
            best = v;
        }
    }
    best
}

/// `a` replaces `best` when it is larger (or smaller), or NaN: like PyTorch,
/// a NaN anywhere makes the max NaN.
#[inline(always)]
fn better<T: ReduceElem>(a: T, best: T, max: bool) -> bool {
    if best.is_nan() {
        return false;
    }
    a.is_nan() || if max { a > best } else { a < best }
}

// ANCHOR: reduce
/// Reduces `x` (viewed through `l`) over `axes`. We permute the view so the
/// reduced axes come last; then each output element is a reduction over a
/// block of the permuted view, visited row by row.
fn reduce_typed<T: ReduceElem>(
    op: ReduceOp,
    x: &[T],
    l: &Layout,
    axes: &[usize],
) -> Result<Vec<T>> {
    let rank = l.rank();
    let kept: Vec<usize> = (0..rank).filter(|d| !axes.contains(d)).collect();
    let mut perm = kept.clone();
    perm.extend_from_slice(axes);
    let p = l.permute(&perm);
    let out_n: usize = kept.iter().map(|&d| l.dims()[d]).product();
    let block: usize = axes.iter().map(|&d| l.dims()[d]).product();
    if block == 0 && op != ReduceOp::Sum {
        return Err(Error::invalid(
            "reduce",
            format!("{op:?} of an empty axis (shape {})", l.shape()),
        ));
    }

    // Fast path: a contiguous tensor summed over its leading axes (the bias
    // gradient `[batch, n] -> [n]`): add whole rows, which vectorises.
    let leading = axes.iter().enumerate().all(|(i, &a)| a == i);
    if op == ReduceOp::Sum && leading && l.is_contiguous() && !axes.is_empty() {
        let mut out = super::pool::overwritten(out_n, T::zero());
        out.fill(T::zero());
        if out_n * block == 0 {
            return Ok(out);
        }
        let o = l.offset();
        if out_n == 1 {
            // Everything into one number: one long vectorised sum.
            return Ok(vec![sum_slice(&x[o..o + block])]);
        }
        for row in x[o..o + out_n * block].chunks_exact(out_n.max(1)) {
            for (acc, &v) in out.iter_mut().zip(row) {
                *acc = acc.add(v);
            }
        }
        return Ok(out);
    }

    // Fast path: a contiguous tensor reduced over its trailing axes (a sum
    // or max over the last dimension, as in softmax): each output is one
    // contiguous run of `block` elements.
    let trailing = axes
        .iter()
        .rev()
        .enumerate()
        .all(|(i, &a)| a == rank - 1 - i);
    if trailing && l.is_contiguous() && block > 0 && !axes.is_empty() {
        let o = l.offset();
        let rows = x[o..o + out_n * block].chunks_exact(block);
        return Ok(match op {
            ReduceOp::Sum => rows.map(sum_slice).collect(),
            ReduceOp::Max => rows.map(|r| extreme_slice(r, |a, b| a > b)).collect(),
            ReduceOp::Min => rows.map(|r| extreme_slice(r, |a, b| a < b)).collect(),
            ReduceOp::ArgMax | ReduceOp::ArgMin => unreachable!("handled by arg_reduce"),
        });
    }

    // The kept part walks output positions, the reduced part walks a block.
    let outer = Layout::new(
        kept.iter().map(|&d| l.dims()[d]).collect::<Vec<_>>().into(),
        kept.iter().map(|&d| l.strides()[d]).collect(),
        p.offset(),
    );
    let inner_dims: Vec<usize> = axes.iter().map(|&d| l.dims()[d]).collect();
    let inner_strides: Vec<usize> = axes.iter().map(|&d| l.strides()[d]).collect();
    let mut out = super::pool::with_capacity(out_n);
    for start in outer.offsets() {
        let block_layout = Layout::new(inner_dims.clone().into(), inner_strides.clone(), start);
        let v = match op {
            ReduceOp::Sum => {
                let mut acc = T::zero();
                for_each_row([&block_layout], |[o], len, [s]| {
                    acc = acc.add(if s == 1 {
                        sum_slice(&x[o..o + len])
                    } else {
                        (0..len).fold(T::zero(), |a, i| a.add(x[o + i * s]))
                    });
                });
                acc
            }
            ReduceOp::Max | ReduceOp::Min => {
                let is_max = op == ReduceOp::Max;
                let mut best: Option<T> = None;
                for_each_row([&block_layout], |[o], len, [s]| {
                    if s == 1 && len > 0 {
                        let v = if is_max {
                            extreme_slice(&x[o..o + len], |a, b| a > b)
                        } else {
                            extreme_slice(&x[o..o + len], |a, b| a < b)
                        };
                        best = match best {
                            None => Some(v),
                            Some(b) if better(v, b, is_max) => Some(v),
                            keep => keep,
                        };
                        return;
                    }
                    for i in 0..len {
                        let v = x[o + i * s];
                        best = match best {
                            None => Some(v),
                            Some(b) if better(v, b, is_max) => Some(v),
                            keep => keep,
                        };
                    }
                });
                // The op layer refuses empty reductions for max and min.
                best.ok_or_else(|| Error::invalid("reduce", format!("{op:?} of an empty axis")))?
            }
            ReduceOp::ArgMax | ReduceOp::ArgMin => unreachable!("handled by arg_reduce"),
        };
        out.push(v);
    }
    Ok(out)
}
// ANCHOR_END: reduce

/// Index of the first maximum (or minimum) along one axis.
fn arg_reduce<T: ReduceElem>(op: ReduceOp, x: &[T], l: &Layout, axis: usize) -> Vec<i64> {
    let is_max = op == ReduceOp::ArgMax;
    let kept: Vec<usize> = (0..l.rank()).filter(|&d| d != axis).collect();
    let outer = Layout::new(
        kept.iter().map(|&d| l.dims()[d]).collect::<Vec<_>>().into(),
        kept.iter().map(|&d| l.strides()[d]).collect(),
        l.offset(),
    );
    let (n, s) = (l.dims()[axis], l.strides()[axis]);
    outer
        .offsets()
        .map(|o| {
            let mut best = 0;
            for i in 1..n {
                if better(x[o + i * s], x[o + best * s], is_max) {
                    best = i;
                }
            }
            best as i64
        })
        .collect()
}

/// Reduces `f32`, `f64`, `i64` or `u8` storage (half storage arrives
/// widened). `ArgMax`/`ArgMin` take one non-empty axis; the op layer checks.
pub(crate) fn reduce(
    op: ReduceOp,
    s: &CpuStorage,
    l: &Layout,
    axes: &[usize],
) -> Result<CpuStorage> {
    if matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin) {
        if axes.len() != 1 || l.dims()[axes[0]] == 0 {
            return Err(Error::invalid(
                "reduce",
                format!("{op:?} takes one non-empty axis (shape {})", l.shape()),
            ));
        }
        return Ok(CpuStorage::I64(match s {
            CpuStorage::F32(x) => arg_reduce(op, x, l, axes[0]),
            CpuStorage::F64(x) => arg_reduce(op, x, l, axes[0]),
            CpuStorage::I64(x) => arg_reduce(op, x, l, axes[0]),
            CpuStorage::U8(x) => arg_reduce(op, x, l, axes[0]),
            _ => return Err(unsupported(s)),
        }));
    }
    Ok(match s {
        CpuStorage::F32(x) => CpuStorage::F32(reduce_typed(op, x, l, axes)?),
        CpuStorage::F64(x) => CpuStorage::F64(reduce_typed(op, x, l, axes)?),
        CpuStorage::I64(x) => CpuStorage::I64(reduce_typed(op, x, l, axes)?),
        CpuStorage::U8(x) => CpuStorage::U8(reduce_typed(op, x, l, axes)?),
        _ => return Err(unsupported(s)),
    })
}

fn unsupported(s: &CpuStorage) -> Error {
    Error::UnsupportedDType {
        op: "reduce",
        dtype: s.dtype(),
    }
}
