//! Batched matrix multiplication on top of the `gemm` crate.
//!
//! `gemm` implements the BLIS approach (packing panels of A and B into
//! cache-sized blocks and running a register-blocked micro-kernel, with
//! kernels chosen at run time for the CPU's vector width) and accepts
//! arbitrary row and column strides. That last property means a transposed
//! view never needs copying for correctness: `a.t().matmul(b)` passes the
//! swapped strides straight through. For speed, a column-major right
//! operand is repacked row-major first when the product reuses it enough
//! (see [`repack_rhs`]). Its threads are rayon's pool, which every parallel
//! CPU kernel of the library shares.

use super::CpuStorage;
use crate::{Error, Layout, Result};

// ANCHOR: matmul
/// `[batch.., m, k] @ [batch.., k, n] -> [batch.., m, n]` (contiguous).
pub(crate) fn matmul(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    let rank = la.rank();
    let (m, k, n) = (
        la.dims()[rank - 2],
        la.dims()[rank - 1],
        lb.dims()[rank - 1],
    );
    let batch_dims = &la.dims()[..rank - 2];
    let batch: usize = batch_dims.iter().product();
    // Offsets of each batch's matrices: walk the batch dims of both layouts.
    let batch_layout = |l: &Layout| {
        Layout::new(
            batch_dims.to_vec().into(),
            l.strides()[..rank - 2].to_vec(),
            l.offset(),
        )
    };
    let a_offsets: Vec<usize> = batch_layout(la).offsets().collect();
    let b_offsets: Vec<usize> = batch_layout(lb).offsets().collect();
    // A matrix broadcast over the batch (a layer's weight, applied to every
    // sequence of `[batch, time, features]`) times a left operand whose
    // matrices follow one another row after row is one product with
    // `batch · m` rows: the weight is packed once instead of once per
    // matrix, and the cores split one large product instead of many small
    // ones.
    let row_stride = la.strides()[rank - 2];
    let folds = batch > 1
        && b_offsets.iter().all(|&o| o == b_offsets[0])
        && a_offsets
            .iter()
            .enumerate()
            .all(|(i, &o)| o == a_offsets[0] + i * m * row_stride);
    let (batch, m, a_offsets, b_offsets) = if folds {
        (1, batch * m, vec![a_offsets[0]], vec![b_offsets[0]])
    } else {
        (batch, m, a_offsets, b_offsets)
    };
    let (rsa, csa) = (
        la.strides()[rank - 2] as isize,
        la.strides()[rank - 1] as isize,
    );
    let (rsb, csb) = (
        lb.strides()[rank - 2] as isize,
        lb.strides()[rank - 1] as isize,
    );

    // Small products run on one thread: waking the others costs more
    // than they would save.
    let parallelism = if 2 * m * n * k >= 1 << 20 && super::threads() > 1 {
        gemm::Parallelism::Rayon(super::threads())
    } else {
        gemm::Parallelism::None
    };
    // A column-major right operand (a transposed weight, as in `x · Wᵀ`)
    // is copied row-major first when the product reuses it enough.
    let repack = repack_rhs(m, k, n, rsb, csb);
    // A stack of products each too small to split (attention's heads: 48
    // products of 64 × 64 × 32 for the book's GPT) but large together goes
    // to the cores a matrix at a time, each product whole on one thread, so
    // every element is computed exactly as one after another would.
    let by_matrix = batch > 1
        && matches!(parallelism, gemm::Parallelism::None)
        && 2 * batch * m * n * k >= 1 << 20
        && super::threads() > 1
        && !repack;
    macro_rules! run {
        ($x:expr, $y:expr, $t:ty, $variant:ident) => {{
            // Every element is written below (β = 0), so a kept buffer's old
            // values do not matter; with k = 0 the product is all zeros.
            let mut out = super::pool::overwritten(batch * m * n, <$t>::default());
            if k == 0 {
                out.fill(<$t>::default());
            }
            let mut packed = if repack && m * n * k > 0 {
                super::pool::overwritten(k * n, <$t>::default())
            } else {
                Vec::new()
            };
            // One product into `c` (m × n, row-major), the left operand at
            // `oa` in the first input, the right one at `ob` in `rhs`.
            let product = |c: &mut [$t],
                           oa: usize,
                           (rhs, ob, rsb, csb): (&[$t], usize, isize, isize),
                           parallelism: gemm::Parallelism| {
                // SAFETY: the tensor layer checked that both layouts lie
                // within their storage, and `c` holds exactly m*n elements
                // with row stride n and column stride 1. `gemm` computes
                // dst = α·dst + β·lhs·rhs: α = 0 with `read_dst` false
                // ignores the old contents, β = 1.
                unsafe {
                    gemm::gemm(
                        m,
                        n,
                        k,
                        c.as_mut_ptr(),
                        1,
                        n as isize,
                        false,
                        $x.as_ptr().add(oa),
                        csa,
                        rsa,
                        rhs.as_ptr().add(ob),
                        csb,
                        rsb,
                        <$t>::default(),
                        1.0,
                        false,
                        false,
                        false,
                        parallelism,
                    );
                }
            };
            if m * n * k > 0 && by_matrix {
                use rayon::prelude::*;
                out.par_chunks_mut(m * n)
                    .zip(a_offsets.par_iter().zip(b_offsets.par_iter()))
                    .for_each(|(c, (&oa, &ob))| {
                        product(c, oa, (&$y[..], ob, rsb, csb), gemm::Parallelism::None)
                    });
            } else if m * n * k > 0 {
                // The offset of the right operand now in `packed`: a matrix
                // broadcast over the batch is repacked once, not per batch.
                let mut packed_from = None;
                for (i, (&oa, &ob)) in a_offsets.iter().zip(&b_offsets).enumerate() {
                    let c = &mut out[i * m * n..(i + 1) * m * n];
                    let rhs = if repack {
                        if packed_from != Some(ob) {
                            transpose_into(&$y[ob..], k, n, csb as usize, &mut packed);
                            packed_from = Some(ob);
                        }
                        (packed.as_slice(), 0, n as isize, 1)
                    } else {
                        (&$y[..], ob, rsb, csb)
                    };
                    product(c, oa, rhs, parallelism);
                }
            }
            super::pool::give(packed);
            CpuStorage::$variant(out)
        }};
    }
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => run!(x, y, f32, F32),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => run!(x, y, f64, F64),
        (x, y) if x.dtype() != y.dtype() => {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: x.dtype(),
                rhs: y.dtype(),
            })
        }
        (x, _) => {
            // i64/u8 are refused by the op layer; half arrives widened.
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: x.dtype(),
            });
        }
    })
}
// ANCHOR_END: matmul

// ANCHOR: repack
/// Whether to copy a column-major right operand (row stride 1) to
/// row-major before the product.
///
/// The `gemm` crate streams the right operand along its rows; a transposed
/// weight makes that a strided walk, and the product of the MNIST MLP's
/// first layer (`[128, 784] · [784, 256]ᵀ`) then runs at about 130 GFLOP/s
/// instead of 200 here. Copying the `k × n` operand costs `k·n` moves,
/// paid back when each element is used by at least 32 rows of the result.
fn repack_rhs(m: usize, k: usize, n: usize, rs: isize, cs: isize) -> bool {
    rs == 1 && cs != 1 && n > 1 && m >= 32 && k * n >= 4096
}

/// Writes the `k × n` matrix whose element `(r, c)` is `src[r + c·cs]`
/// into `dst` row-major, in square tiles so that both the reads and the
/// writes of a tile stay in the L1 cache; the two halves of the rows go to
/// two cores when the matrix is large. Whole `f32` tiles go through vector
/// registers where the CPU has AVX (see [`simd_tile`]).
fn transpose_into<T: Copy + Send + Sync + 'static>(
    src: &[T],
    k: usize,
    n: usize,
    cs: usize,
    dst: &mut [T],
) {
    const TILE: usize = 16;
    fn rows<T: Copy + 'static>(src: &[T], r0: usize, n: usize, cs: usize, dst: &mut [T]) {
        let k = dst.len() / n;
        let simd = simd_tile::<T>();
        for rb in (0..k).step_by(TILE) {
            let r_len = TILE.min(k - rb);
            for cb in (0..n).step_by(TILE) {
                let c_len = TILE.min(n - cb);
                if let (Some(tile), true) = (simd, r_len == TILE && c_len == TILE) {
                    // The tile's sixteen source columns start at rows
                    // `r0 + rb..` of columns `cb..cb + 16`; its sixteen
                    // destination rows at columns `cb..` of rows `rb..`.
                    let (from, to) = ((cb * cs + r0 + rb), (rb * n + cb));
                    // Bounds, checked once per tile: the last element read
                    // and the last element written.
                    assert!(from + (TILE - 1) * cs + TILE <= src.len());
                    assert!(to + (TILE - 1) * n + TILE <= dst.len());
                    // SAFETY: both ranges were checked just above.
                    unsafe { tile(src.as_ptr().add(from), cs, dst.as_mut_ptr().add(to), n) };
                } else if r_len == TILE && c_len == TILE {
                    // A whole tile: the sixteen source columns, cut to the
                    // tile's rows, so the loops below need no bounds checks.
                    let cols: [&[T]; TILE] =
                        std::array::from_fn(|j| &src[(cb + j) * cs + r0 + rb..][..TILE]);
                    for (r, row) in dst[rb * n..].chunks_mut(n).take(TILE).enumerate() {
                        for (d, col) in row[cb..cb + TILE].iter_mut().zip(&cols) {
                            *d = col[r];
                        }
                    }
                } else {
                    for r in rb..rb + r_len {
                        for c in cb..cb + c_len {
                            dst[r * n + c] = src[c * cs + r0 + r];
                        }
                    }
                }
            }
        }
    }
    let dst = &mut dst[..k * n];
    if k * n >= 1 << 16 && k >= 2 * TILE && super::threads() > 1 {
        let half = (k / 2).div_ceil(TILE) * TILE;
        let (top, bottom) = dst.split_at_mut(half * n);
        rayon::join(
            || rows(src, 0, n, cs, top),
            || rows(src, half, n, cs, bottom),
        );
    } else {
        rows(src, 0, n, cs, dst);
    }
}
// ANCHOR_END: repack

// ANCHOR: simd_transpose
/// A 16 × 16 tile transposed through vector registers: `dst[r·n + c] =
/// src[c·cs + r]` for `r, c < 16`.
type TileFn<T> = unsafe fn(*const T, usize, *mut T, usize);

/// The vector tile transpose for `T`, if there is one for this CPU: `f32`
/// with AVX (every x86-64 CPU of the last decade). Copying one number at a
/// time moves 4 bytes per instruction; eight 8-wide registers hold an 8 × 8
/// block, which 24 shuffles turn into its transpose, so each instruction
/// moves 32 bytes.
fn simd_tile<T: 'static>() -> Option<TileFn<T>> {
    #[cfg(target_arch = "x86_64")]
    if std::any::TypeId::of::<T>() == std::any::TypeId::of::<f32>()
        && std::arch::is_x86_feature_detected!("avx")
    {
        let f: TileFn<f32> = tile16_f32_avx;
        // SAFETY: `T` is `f32` (checked above), so the two function
        // pointer types are the same type.
        return Some(unsafe { std::mem::transmute::<TileFn<f32>, TileFn<T>>(f) });
    }
    None
}

/// Four 8 × 8 blocks of [`transpose8x8_avx`].
///
/// # Safety
/// The CPU has AVX; `src[c·cs + r]` and `dst[r·n + c]` are valid for
/// `r, c < 16`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn tile16_f32_avx(src: *const f32, cs: usize, dst: *mut f32, n: usize) {
    for (r, c) in [(0, 0), (0, 8), (8, 0), (8, 8)] {
        transpose8x8_avx(src.add(c * cs + r), cs, dst.add(r * n + c), n);
    }
}

/// Transposes one 8 × 8 block: load the eight source columns (each eight
/// consecutive numbers), interleave pairs of them (`unpack`: rows of 2 × 2
/// blocks), then pairs of pairs (`shuffle`: 4 × 4 blocks), then swap the
/// 128-bit halves (`permute2f128`): each register now holds a destination
/// row.
///
/// # Safety
/// As [`tile16_f32_avx`], for `r, c < 8`.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx")]
unsafe fn transpose8x8_avx(src: *const f32, cs: usize, dst: *mut f32, n: usize) {
    use std::arch::x86_64::*;
    let c: [__m256; 8] = std::array::from_fn(|j| _mm256_loadu_ps(src.add(j * cs)));
    let t = [
        _mm256_unpacklo_ps(c[0], c[1]),
        _mm256_unpackhi_ps(c[0], c[1]),
        _mm256_unpacklo_ps(c[2], c[3]),
        _mm256_unpackhi_ps(c[2], c[3]),
        _mm256_unpacklo_ps(c[4], c[5]),
        _mm256_unpackhi_ps(c[4], c[5]),
        _mm256_unpacklo_ps(c[6], c[7]),
        _mm256_unpackhi_ps(c[6], c[7]),
    ];
    let s = [
        _mm256_shuffle_ps::<0x44>(t[0], t[2]),
        _mm256_shuffle_ps::<0xEE>(t[0], t[2]),
        _mm256_shuffle_ps::<0x44>(t[1], t[3]),
        _mm256_shuffle_ps::<0xEE>(t[1], t[3]),
        _mm256_shuffle_ps::<0x44>(t[4], t[6]),
        _mm256_shuffle_ps::<0xEE>(t[4], t[6]),
        _mm256_shuffle_ps::<0x44>(t[5], t[7]),
        _mm256_shuffle_ps::<0xEE>(t[5], t[7]),
    ];
    for i in 0..4 {
        _mm256_storeu_ps(
            dst.add(i * n),
            _mm256_permute2f128_ps::<0x20>(s[i], s[i + 4]),
        );
        _mm256_storeu_ps(
            dst.add((i + 4) * n),
            _mm256_permute2f128_ps::<0x31>(s[i], s[i + 4]),
        );
    }
}
// ANCHOR_END: simd_transpose
