//! Walking strided views row by row.
//!
//! A kernel that visits elements one at a time through an index odometer is
//! correct but slow. Instead we first *coalesce* dimensions that are laid out
//! back to back in every operand (a contiguous `[64, 128]` becomes one row
//! of 8192), then loop over rows with a tight inner loop the compiler can
//! vectorise. Only the outer dimensions pay for index arithmetic.

use crate::Layout;
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// Below this many elements an elementwise kernel runs on the calling
/// thread: handing half of 64 Ki floats to another core costs about as
/// much as computing it.
const PARALLEL_MIN: usize = 1 << 16;

// ANCHOR: coalesce
/// Dimensions and per-operand strides after dropping size-1 dimensions and
/// merging neighbours that are contiguous with each other in *all* operands.
pub(crate) fn coalesce<const N: usize>(
    dims: &[usize],
    strides: [&[usize]; N],
) -> (Vec<usize>, [Vec<usize>; N]) {
    let mut out_dims: Vec<usize> = Vec::with_capacity(dims.len());
    let mut out_strides: [Vec<usize>; N] = std::array::from_fn(|_| Vec::new());
    for (d, &size) in dims.iter().enumerate() {
        if size == 1 {
            continue;
        }
        // Mergeable with the previous kept dimension when, in every
        // operand, its stride is this one's stride times this one's size.
        let mergeable = !out_dims.is_empty()
            && (0..N).all(|k| out_strides[k].last() == Some(&(strides[k][d] * size)));
        if let (true, Some(last)) = (mergeable, out_dims.last_mut()) {
            *last *= size;
            for k in 0..N {
                if let Some(s) = out_strides[k].last_mut() {
                    *s = strides[k][d];
                }
            }
        } else {
            out_dims.push(size);
            for k in 0..N {
                out_strides[k].push(strides[k][d]);
            }
        }
    }
    if out_dims.is_empty() {
        // A single element: one row of length 1.
        out_dims.push(1);
        for s in out_strides.iter_mut() {
            s.push(0);
        }
    }
    (out_dims, out_strides)
}
// ANCHOR_END: coalesce

// ANCHOR: for_each_row
/// Calls `f(offsets, len, inner_strides)` once per row of the (coalesced)
/// views, where `offsets[k]` is where operand `k`'s row starts.
#[inline(always)]
pub(crate) fn for_each_row<const N: usize>(
    layouts: [&Layout; N],
    mut f: impl FnMut([usize; N], usize, [usize; N]),
) {
    let dims = layouts[0].dims();
    if dims.iter().product::<usize>() == 0 {
        return;
    }
    let (cdims, cstrides) = coalesce(dims, layouts.map(|l| l.strides()));
    let rank = cdims.len();
    let len = cdims[rank - 1];
    let inner: [usize; N] = std::array::from_fn(|k| cstrides[k][rank - 1]);
    let mut offsets: [usize; N] = std::array::from_fn(|k| layouts[k].offset());
    let mut index = vec![0usize; rank - 1];
    loop {
        f(offsets, len, inner);
        // Odometer over the outer dimensions.
        let mut d = rank - 1;
        loop {
            if d == 0 {
                return;
            }
            d -= 1;
            index[d] += 1;
            for k in 0..N {
                offsets[k] += cstrides[k][d];
            }
            if index[d] < cdims[d] {
                break;
            }
            for k in 0..N {
                offsets[k] -= cstrides[k][d] * cdims[d];
            }
            index[d] = 0;
        }
    }
}
// ANCHOR_END: for_each_row

// ANCHOR: produce
/// A pooled vector of `n` elements, written by `fill(start, dst)`, which
/// must write every element of `dst` with the values of elements `start..`.
/// A large result is cut into one piece per kernel thread, each written
/// on its own core: an elementwise kernel is a pass over memory, and one
/// core alone cannot keep up with it.
fn produce<V: Copy + Send + 'static>(
    n: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<V>]) + Sync,
) -> Vec<V> {
    let mut out: Vec<V> = super::pool::with_capacity(n);
    let dst = &mut out.spare_capacity_mut()[..n];
    let threads = super::threads();
    if threads < 2 || n < PARALLEL_MIN {
        fill(0, dst);
    } else {
        // Pieces of whole cache lines, one per thread.
        let piece = n.div_ceil(threads).div_ceil(16) * 16;
        dst.par_chunks_mut(piece)
            .enumerate()
            .for_each(|(i, d)| fill(i * piece, d));
    }
    // SAFETY: `fill` wrote every one of the first `n` elements, and the
    // capacity is at least `n`.
    unsafe { out.set_len(n) };
    out
}
// ANCHOR_END: produce

/// `dst[i] = f(src[i])`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn map_into<T: Copy, U: Copy, F: Fn(T) -> U>(src: &[T], dst: &mut [MaybeUninit<U>], f: &F) {
    for (d, &x) in dst.iter_mut().zip(src) {
        d.write(f(x));
    }
}

/// `dst[i] = f(a[i], b[i])`.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn zip_into<T: Copy, U: Copy, V: Copy, F: Fn(T, U) -> V>(
    a: &[T],
    b: &[U],
    dst: &mut [MaybeUninit<V>],
    f: &F,
) {
    for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
        d.write(f(x, y));
    }
}

/// Applies `f` to every element of a view, in row-major order.
///
/// Compiled twice, like every hot loop of the CPU backend: for the
/// baseline x86-64 and for CPUs with AVX2 and FMA, chosen once at run time
/// (the `multiversion` crate), so the same binary uses 256-bit vectors
/// where the CPU has them. A contiguous view goes through [`produce`], on
/// every core when it is large.
pub(crate) fn map1<T: Copy + Sync, U: Copy + Send + 'static, F: Fn(T) -> U + Sync>(
    src: &[T],
    l: &Layout,
    f: F,
) -> Vec<U> {
    let n = l.elem_count();
    if n == 0 {
        return Vec::new();
    }
    if l.is_contiguous() {
        let src = &src[l.offset()..][..n];
        return produce(n, |start, dst| map_into(&src[start..], dst, &f));
    }
    map1_strided(src, l, f)
}

#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn map1_strided<T: Copy, U: Copy + Send + 'static, F: Fn(T) -> U>(
    src: &[T],
    l: &Layout,
    f: F,
) -> Vec<U> {
    let mut out = super::pool::with_capacity(l.elem_count());
    for_each_row([l], |[o], len, [s]| {
        if s == 1 {
            out.extend(src[o..o + len].iter().map(|&x| f(x)));
        } else {
            out.extend((0..len).map(|i| f(src[o + i * s])));
        }
    });
    out
}

// ANCHOR: map2
/// Applies `f` to pairs of elements of two views of the same shape. Two
/// contiguous views are one long row, written by [`produce`] on every core
/// when it is large; otherwise the inner loop is specialised for the
/// common stride patterns: both contiguous, or one side broadcast (stride
/// 0) as in adding a bias row.
pub(crate) fn map2<
    T: Copy + Sync,
    U: Copy + Sync,
    V: Copy + Send + 'static,
    F: Fn(T, U) -> V + Sync,
>(
    a: &[T],
    la: &Layout,
    b: &[U],
    lb: &Layout,
    f: F,
) -> Vec<V> {
    let n = la.elem_count();
    if n == 0 {
        return Vec::new();
    }
    if la.is_contiguous() && lb.is_contiguous() {
        let (a, b) = (&a[la.offset()..][..n], &b[lb.offset()..][..n]);
        return produce(n, |start, dst| zip_into(&a[start..], &b[start..], dst, &f));
    }
    map2_strided(a, la, b, lb, f)
}

#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn map2_strided<T: Copy, U: Copy, V: Copy + Send + 'static, F: Fn(T, U) -> V>(
    a: &[T],
    la: &Layout,
    b: &[U],
    lb: &Layout,
    f: F,
) -> Vec<V> {
    let mut out = super::pool::with_capacity(la.elem_count());
    for_each_row([la, lb], |[oa, ob], len, [sa, sb]| match (sa, sb) {
        (1, 1) => out.extend(
            a[oa..oa + len]
                .iter()
                .zip(&b[ob..ob + len])
                .map(|(&x, &y)| f(x, y)),
        ),
        (1, 0) => {
            let y = b[ob];
            out.extend(a[oa..oa + len].iter().map(|&x| f(x, y)));
        }
        (0, 1) => {
            let x = a[oa];
            out.extend(b[ob..ob + len].iter().map(|&y| f(x, y)));
        }
        _ => out.extend((0..len).map(|i| f(a[oa + i * sa], b[ob + i * sb]))),
    });
    out
}
// ANCHOR_END: map2

/// Three-operand version of [`map2`] (for `where`).
pub(crate) fn map3<T: Copy, U: Copy, W: Copy, V: Copy + Send + 'static>(
    a: &[T],
    la: &Layout,
    b: &[U],
    lb: &Layout,
    c: &[W],
    lc: &Layout,
    f: impl Fn(T, U, W) -> V,
) -> Vec<V> {
    let mut out = super::pool::with_capacity(la.elem_count());
    for_each_row([la, lb, lc], |[oa, ob, oc], len, [sa, sb, sc]| {
        out.extend((0..len).map(|i| f(a[oa + i * sa], b[ob + i * sb], c[oc + i * sc])))
    });
    out
}
