//! The CPU's fast path: a convolution lowered one image at a time.
//!
//! The lowering of [`conv2d`](super::conv2d()) is three steps, each a full
//! pass over memory: im2col writes the patch matrix of the *whole batch*
//! (`[K, N·L]`, `K = C·kh·kw` rows, `L` output pixels per image), one GEMM
//! per group multiplies it, and a permute copies the `[O, N, L]` product
//! into the `[N, O, L]` layout of images. For the first stage of the MNIST
//! ResNet (`C = 16`, 28 × 28, a batch of 128) the patch matrix alone is
//! 144 × 100,352 floats, 58 MB: it lives in main memory, is written once
//! and read once, and every step of training allocates it again. The
//! backward pass does the same twice, once for each gradient.
//!
//! Done one image at a time, the same arithmetic needs none of that:
//!
//! - image `n`'s patch matrix (`[K, L]`, 450 KB here) is written into a
//!   buffer that each thread reuses, so it stays in the core's cache
//!   between being written and being read by the GEMM;
//! - the product `W · cols_n` (`[O, L]`) *is* image `n`'s output in
//!   `[N, O, H, W]` order, so the GEMM writes straight into the result and
//!   no permute is needed;
//! - the images are independent, so the cores take images, and each GEMM
//!   runs on one thread (small products parallelise badly anyway).
//!
//! The three operators below are those passes: [`ConvForward`] (`Y = W ·
//! im2col(x)`), [`ConvInputGrad`] (`dx = col2im(Wᵀ · dY)`, also the forward
//! pass of a transposed convolution) and [`ConvWeightGrad`] (`dW = Σₙ dYₙ ·
//! im2col(xₙ)ᵀ`, summed over images in a fixed order so that results do not
//! depend on the number of threads). Each keeps the whole-batch lowering as
//! its composite, which is what other devices run.
//!
//! Two refinements take over where they apply: with stride 1 the patch
//! matrix is built from whole runs of the padded image, several images per
//! product (`padded_rows.rs`), and 3 × 3 stride-1 convolutions use
//! Winograd's method for the forward pass and the input gradient
//! (`winograd.rs`); `forward` and `input_grad` below choose.

use super::geometry::ConvGeometry;
use super::im2col::{add_taps_to_plane, tap_row, ConvFloat, Im2col};
use super::padded_rows::{PaddedRows, CHUNK_COLUMNS};
use super::prefetch::prefetch_lines;
use super::winograd::{self, Winograd};
use chapter_02::dispatch::call;
use chapter_02::scratch_buffer;
use chapter_02::{DType, DeviceKind, Error, Kernel, Operator, Result, Tensor as RawTensor};
use chapter_04::row_kernels::in_compute_dtype;
use rayon::prelude::*;

/// Images whose partial weight gradients are summed together: the sum over
/// the batch is cut into chunks of this many images, whatever the number
/// of threads, so the order of additions (and the result, to the last bit)
/// depends only on the batch size.
const WEIGHT_GRAD_CHUNK: usize = 8;

/// `c = [c +] a · b` for an `m × k` matrix `a` and a `k × n` matrix `b`
/// given by row and column strides, `c` row-major with `n` columns; on the
/// calling thread.
///
/// # Safety
/// Every element the strides address must lie inside its slice; the
/// callers pass slices cut to the exact matrices.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_into<T: ConvFloat>(
    (m, k, n): (usize, usize, usize),
    c: &mut [T],
    accumulate: bool,
    a: &[T],
    (a_rs, a_cs): (usize, usize),
    b: &[T],
    (b_rs, b_cs): (usize, usize),
) {
    debug_assert!(c.len() >= m * n);
    debug_assert!(m * k == 0 || a.len() > (m - 1) * a_rs + (k - 1) * a_cs);
    debug_assert!(k * n == 0 || b.len() > (k - 1) * b_rs + (n - 1) * b_cs);
    if m * n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(T::default());
        }
        return;
    }
    // gemm computes dst = α·dst + β·lhs·rhs; with `read_dst` false the old
    // contents are ignored.
    gemm::gemm(
        m,
        n,
        k,
        c.as_mut_ptr(),
        1,
        n as isize,
        accumulate,
        a.as_ptr(),
        a_cs as isize,
        a_rs as isize,
        b.as_ptr(),
        b_cs as isize,
        b_rs as isize,
        T::from_f64(1.0),
        T::from_f64(1.0),
        false,
        false,
        false,
        gemm::Parallelism::None,
    );
}

/// `out = W · cols` for each group of a chunk of `s` columns: `w` holds
/// the groups' `[og, k]` filters, `cols` their `[k, s]` patch rows, `out`
/// their `[og, s]` products, one after another.
fn products_by_group<T: ConvFloat>(g: &ConvGeometry, s: usize, w: &[T], cols: &[T], out: &mut [T]) {
    let (og, k) = (g.out_channels / g.groups, g.col_rows());
    for gi in 0..g.groups {
        // SAFETY: the three slices are exactly the group's [og, k], [k, s]
        // and [og, s] row-major matrices.
        unsafe {
            gemm_into(
                (og, k, s),
                &mut out[gi * og * s..][..og * s],
                false,
                &w[gi * og * k..][..og * k],
                (k, 1),
                &cols[gi * k * s..][..k * s],
                (s, 1),
            )
        }
    }
}

/// `cols = Wᵀ · dY` for each group of a chunk of `s` columns: `dy` holds
/// the groups' `[og, s]` gradient rows, `cols` receives their `[k, s]`.
fn transposed_products_by_group<T: ConvFloat>(
    g: &ConvGeometry,
    s: usize,
    w: &[T],
    dy: &[T],
    cols: &mut [T],
) {
    let (og, k) = (g.out_channels / g.groups, g.col_rows());
    for gi in 0..g.groups {
        // Wᵀ of the group: element (r, o) of the [k, og] matrix is
        // w[o·k + r], so its row stride is 1 and its column stride k.
        // SAFETY: the slices are the group's [og, k], [og, s] and [k, s]
        // matrices.
        unsafe {
            gemm_into(
                (k, og, s),
                &mut cols[gi * k * s..][..k * s],
                false,
                &w[gi * og * k..][..og * k],
                (1, k),
                &dy[gi * og * s..][..og * s],
                (s, 1),
            )
        }
    }
}

/// `dWᵀ += cols · dYᵀ` for each group of a chunk of `s` columns: `cols`
/// holds the groups' `[k, s]` patch rows, `dy` their `[og, s]` gradient
/// rows, `dwt` their `[k, og]` sums.
fn add_weight_products_by_group<T: ConvFloat>(
    g: &ConvGeometry,
    s: usize,
    cols: &[T],
    dy: &[T],
    dwt: &mut [T],
) {
    let (og, k) = (g.out_channels / g.groups, g.col_rows());
    for gi in 0..g.groups {
        // dYᵀ of the group: element (q, o) of the [s, og] matrix is
        // dy[o·s + q]. SAFETY: the slices are the group's [k, s], [og, s]
        // and [k, og] matrices.
        unsafe {
            gemm_into(
                (k, s, og),
                &mut dwt[gi * k * og..][..k * og],
                true,
                &cols[gi * k * s..][..k * s],
                (s, 1),
                &dy[gi * og * s..][..og * s],
                (1, s),
            )
        }
    }
}

/// Images lowered side by side into one patch matrix: enough for about
/// [`CHUNK_COLUMNS`] columns. One 14 × 14 image makes a product with 196
/// columns, too few for the GEMM to run at speed; six side by side make
/// 1,176. Images of at least that many outputs go one at a time.
fn images_per_chunk(g: &ConvGeometry) -> usize {
    let l = (g.out_h * g.out_w).max(1);
    CHUNK_COLUMNS.div_ceil(l).clamp(1, g.batch.max(1))
}

/// Writes image `x_n`'s patch matrix (`[G·K, L]`, one row per (channel,
/// tap)) into columns `first .. first + L` of `cols`, whose rows are
/// `stride` long.
fn im2col_image<T: ConvFloat>(
    g: &ConvGeometry,
    x_n: &[T],
    cols: &mut [T],
    stride: usize,
    first: usize,
) {
    let (kh, kw) = g.kernel;
    let (hw, l) = (g.in_h * g.in_w, g.out_h * g.out_w);
    for (r, row) in cols.chunks_exact_mut(stride).enumerate() {
        let (ch, i, j) = (r / (kh * kw), r / kw % kh, r % kw);
        if (i, j) == (0, 0) {
            // The next plane (or image) while this one's taps are copied.
            prefetch_lines(x_n[ch * hw..].as_ptr().wrapping_add(hw), hw);
        }
        tap_row(g, &x_n[ch * hw..][..hw], (i, j), &mut row[first..][..l]);
    }
}

/// Copies image `b`'s `[O, L]` block out of the `[O, stride]` matrix
/// `wide` into `y_n`.
fn narrow_image<T: ConvFloat>(wide: &[T], stride: usize, b: usize, l: usize, y_n: &mut [T]) {
    for (o, row) in y_n.chunks_exact_mut(l).enumerate() {
        row.copy_from_slice(&wide[o * stride + b * l..][..l]);
    }
}

/// Copies image `b`'s `[O, L]` gradient `dy_n` into columns `b·L ..` of
/// the `[O, stride]` matrix `wide`.
fn widen_image<T: ConvFloat>(dy_n: &[T], l: usize, wide: &mut [T], stride: usize, b: usize) {
    for (o, row) in dy_n.chunks_exact(l).enumerate() {
        wide[o * stride + b * l..][..l].copy_from_slice(row);
    }
}

// ANCHOR: forward_per_image
/// `y_n = W · im2col(x_n)` for every image `n`, a chunk of images per
/// product ([`images_per_chunk`]: their patch matrices side by side), the
/// chunks on the cores in parallel.
fn forward_images<T: ConvFloat>(g: &ConvGeometry, x: &[T], w: &[T], y: &mut [T]) {
    let (groups, k) = (g.groups, g.col_rows());
    let (chw, l) = (g.in_channels * g.in_h * g.in_w, g.out_h * g.out_w);
    let ol = g.out_channels * l;
    let chunk = images_per_chunk(g);
    if ol == 0 {
        return;
    }
    y.par_chunks_mut(chunk * ol).enumerate().for_each_init(
        || {
            // From the buffer pool: every value is written before it is read.
            let cols = scratch_buffer(groups * k * chunk * l, T::default());
            (
                cols,
                scratch_buffer(g.out_channels * chunk * l, T::default()),
            )
        },
        |(cols, wide), (c, y_chunk)| {
            let (first, images) = (c * chunk, y_chunk.len() / ol);
            let s = images * l; // this chunk's columns
            for b in 0..images {
                let x_n = &x[(first + b) * chw..][..chw];
                im2col_image(g, x_n, &mut cols[..groups * k * s], s, b * l);
            }
            // One image's product is already its output; several are
            // copied out of the wide product.
            let out: &mut [T] = if images == 1 { y_chunk } else { wide };
            products_by_group(g, s, w, &cols[..], &mut out[..]);
            if images > 1 {
                for (b, y_n) in y_chunk.chunks_exact_mut(ol).enumerate() {
                    narrow_image(wide, s, b, l, y_n);
                }
            }
        },
    );
}
// ANCHOR_END: forward_per_image

/// `dx_n = col2im(Wᵀ · dy_n)` for every image `n`, a chunk of images per
/// product; `dx` starts at zero.
fn input_grad_images<T: ConvFloat>(g: &ConvGeometry, dy: &[T], w: &[T], dx: &mut [T]) {
    let (groups, k) = (g.groups, g.col_rows());
    let (hw, l) = (g.in_h * g.in_w, g.out_h * g.out_w);
    let (chw, ol) = (g.in_channels * hw, g.out_channels * l);
    let chunk = images_per_chunk(g);
    if chw == 0 {
        return;
    }
    dx.par_chunks_mut(chunk * chw).enumerate().for_each_init(
        || {
            // From the buffer pool: every value is written before it is read.
            let wide = scratch_buffer(g.out_channels * chunk * l, T::default());
            (wide, scratch_buffer(groups * k * chunk * l, T::default()))
        },
        |(wide, cols), (c, dx_chunk)| {
            let (first, images) = (c * chunk, dx_chunk.len() / chw);
            let s = images * l;
            for b in 0..images {
                widen_image(&dy[(first + b) * ol..][..ol], l, wide, s, b);
            }
            transposed_products_by_group(g, s, w, &wide[..], &mut cols[..]);
            for (b, dx_n) in dx_chunk.chunks_exact_mut(chw).enumerate() {
                for (ch, plane) in dx_n.chunks_exact_mut(hw).enumerate() {
                    add_taps_to_plane(g, cols, s, b * l, ch, plane);
                }
            }
        },
    );
}

/// `dWᵀ = Σ_n im2col(x_n) · dy_nᵀ` (one `[K, O/G]` matrix per group), a
/// chunk of images per product: partial sums cover a fixed number of
/// images (whole chunks, at least [`WEIGHT_GRAD_CHUNK`]) on one core each,
/// and are added in order, so the result does not depend on the number of
/// threads.
///
/// The transpose is what the GEMM wants: a product with a `[K, O/G]`
/// result (144 × 16 for a 3 × 3 convolution of 16 channels) runs at twice
/// the speed of the same product written as `[O/G, K]`, whose 16 rows are
/// too few for the GEMM's register tiles. [`weight_grad`] turns it back.
fn weight_grad_t_images<T: ConvFloat>(g: &ConvGeometry, x: &[T], dy: &[T]) -> Vec<T> {
    let (groups, k) = (g.groups, g.col_rows());
    let (chw, l) = (g.in_channels * g.in_h * g.in_w, g.out_h * g.out_w);
    let ol = g.out_channels * l;
    let chunk = images_per_chunk(g);
    let per_partial = chunk * WEIGHT_GRAD_CHUNK.div_ceil(chunk);
    sum_over_chunks(g.batch, per_partial, |images| {
        let (start, end) = (images.start, images.end);
        let mut dwt = vec![T::default(); g.out_channels * k];
        // From the buffer pool: every value is written before it is read.
        let mut cols = scratch_buffer(groups * k * chunk * l, T::default());
        let mut wide = scratch_buffer(g.out_channels * chunk * l, T::default());
        for first in (start..end).step_by(chunk) {
            let images = chunk.min(end - first);
            let s = images * l;
            for b in 0..images {
                let n = first + b;
                im2col_image(
                    g,
                    &x[n * chw..][..chw],
                    &mut cols[..groups * k * s],
                    s,
                    b * l,
                );
                widen_image(&dy[n * ol..][..ol], l, &mut wide, s, b);
            }
            add_weight_products_by_group(g, s, &cols[..], &wide[..], &mut dwt);
        }
        dwt
    })
}

/// `f(images)` for consecutive chunks of `per` images (the last one
/// shorter), on the cores in parallel, and the partial results added one
/// after another in the order of the chunks: the chunks, and so the order
/// of every addition, depend only on the batch size, never on the number
/// of threads. An empty batch gives an empty vector.
fn sum_over_chunks<T: ConvFloat>(
    batch: usize,
    per: usize,
    f: impl Fn(std::ops::Range<usize>) -> Vec<T> + Sync,
) -> Vec<T> {
    let firsts: Vec<usize> = (0..batch).step_by(per).collect();
    let partials: Vec<Vec<T>> = firsts
        .par_iter()
        .map(|&first| f(first..(first + per).min(batch)))
        .collect();
    let mut parts = partials.into_iter();
    let mut total = parts.next().unwrap_or_default();
    for part in parts {
        for (t, v) in total.iter_mut().zip(part) {
            *t += v;
        }
    }
    total
}

// ANCHOR: forward_wide
/// The forward pass through the stride-1 wide layout ([`PaddedRows`]):
/// each chunk of images is padded and lowered side by side into one patch
/// matrix, multiplied once per group, and the product's extra columns are
/// left behind as it is copied into the images' outputs.
fn forward_wide<T: ConvFloat>(g: &ConvGeometry, p: &PaddedRows, x: &[T], w: &[T], y: &mut [T]) {
    let (groups, k) = (g.groups, g.col_rows());
    let chw = g.in_channels * g.in_h * g.in_w;
    let ol = g.out_channels * g.out_h * g.out_w;
    let most = p.chunk * p.cols_per_image;
    if ol == 0 {
        return;
    }
    y.par_chunks_mut(p.chunk * ol).enumerate().for_each_init(
        || {
            // From the buffer pool: every value is written before it is read.
            let padded = scratch_buffer(p.padded_len(), T::default());
            let cols = scratch_buffer(groups * k * most, T::default());
            (
                padded,
                cols,
                scratch_buffer(g.out_channels * most, T::default()),
            )
        },
        |(padded, cols, wide), (chunk, y_chunk)| {
            let (first, images) = (chunk * p.chunk, y_chunk.len() / ol);
            let s = images * p.cols_per_image; // this chunk's columns
            for b in 0..images {
                p.pad(g, &x[(first + b) * chw..][..chw], padded);
                p.lower(g, padded, &mut cols[..groups * k * s], s, b);
            }
            products_by_group(g, s, w, &cols[..], &mut wide[..]);
            for (b, y_n) in y_chunk.chunks_exact_mut(ol).enumerate() {
                p.narrow(g, &wide[..g.out_channels * s], s, b, y_n);
            }
        },
    );
}
// ANCHOR_END: forward_wide

/// The input gradient through the wide layout: `dY` widened with zeros,
/// `Wᵀ · dY` for the chunk, each row added back onto a padded image, the
/// padding cut away.
fn input_grad_wide<T: ConvFloat>(
    g: &ConvGeometry,
    p: &PaddedRows,
    dy: &[T],
    w: &[T],
    dx: &mut [T],
) {
    let (groups, k) = (g.groups, g.col_rows());
    let chw = g.in_channels * g.in_h * g.in_w;
    let ol = g.out_channels * g.out_h * g.out_w;
    let most = p.chunk * p.cols_per_image;
    if chw == 0 {
        return;
    }
    dx.par_chunks_mut(p.chunk * chw).enumerate().for_each_init(
        || {
            let wide = scratch_buffer(g.out_channels * most, T::default());
            let dcols = scratch_buffer(groups * k * most, T::default());
            (wide, dcols, scratch_buffer(p.padded_len(), T::default()))
        },
        |(wide, dcols, dpadded), (chunk, dx_chunk)| {
            let (first, images) = (chunk * p.chunk, dx_chunk.len() / chw);
            let s = images * p.cols_per_image;
            for b in 0..images {
                let dy_n = &dy[(first + b) * ol..][..ol];
                p.widen(g, dy_n, &mut wide[..g.out_channels * s], s, b);
            }
            transposed_products_by_group(g, s, w, &wide[..], &mut dcols[..]);
            for (b, dx_n) in dx_chunk.chunks_exact_mut(chw).enumerate() {
                dpadded.fill(T::default());
                p.raise(g, &dcols[..groups * k * s], s, b, dpadded);
                p.crop_input(g, dpadded, dx_n);
            }
        },
    );
}

/// The weight gradient through the wide layout: per chunk of images,
/// `dWᵀ += cols · dY_wideᵀ`, the extra columns of `dY_wide` being zeros.
/// Partial sums cover a fixed number of images (whole chunks, at least
/// [`WEIGHT_GRAD_CHUNK`]) and are added in order, so the result does not
/// depend on the number of threads.
fn weight_grad_t_wide<T: ConvFloat>(g: &ConvGeometry, p: &PaddedRows, x: &[T], dy: &[T]) -> Vec<T> {
    let (groups, k) = (g.groups, g.col_rows());
    let chw = g.in_channels * g.in_h * g.in_w;
    let ol = g.out_channels * g.out_h * g.out_w;
    let most = p.chunk * p.cols_per_image;
    let per_partial = p.chunk * WEIGHT_GRAD_CHUNK.div_ceil(p.chunk);
    sum_over_chunks(g.batch, per_partial, |images| {
        let (start, end) = (images.start, images.end);
        let mut dwt = vec![T::default(); g.out_channels * k];
        // From the buffer pool: every value is written before it is read.
        let mut padded = scratch_buffer(p.padded_len(), T::default());
        let mut cols = scratch_buffer(groups * k * most, T::default());
        let mut wide = scratch_buffer(g.out_channels * most, T::default());
        for first in (start..end).step_by(p.chunk) {
            let images = p.chunk.min(end - first);
            let s = images * p.cols_per_image;
            for b in 0..images {
                let n = first + b;
                p.pad(g, &x[n * chw..][..chw], &mut padded);
                p.lower(g, &padded, &mut cols[..groups * k * s], s, b);
                p.widen(
                    g,
                    &dy[n * ol..][..ol],
                    &mut wide[..g.out_channels * s],
                    s,
                    b,
                );
            }
            add_weight_products_by_group(g, s, &cols[..], &wide[..], &mut dwt);
        }
        dwt
    })
}

// ANCHOR: choose
/// The forward pass by the fastest method that applies: in `f32` on a CPU
/// with AVX-512 or AVX2, the direct kernel for 3 × 3 convolutions with
/// stride 1 whose output is as wide as their input (`direct/`); Winograd's for
/// the other 3 × 3 convolutions with stride 1; the wide lowering for other
/// stride-1 convolutions; one image at a time otherwise.
fn forward<T: ConvFloat>(g: &ConvGeometry, x: &[T], w: &[T], y: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(x), Some(w), Some(y)) = (T::as_f32(x), T::as_f32(w), T::as_f32_mut(y)) {
        if super::direct::suits_forward(g) {
            let w = super::direct::arrange_filters(w, g.out_channels, g.in_channels, false);
            return super::direct::convolve(g, x, &w, y);
        }
    }
    if let Some(p) = Winograd::new(g) {
        let u = winograd::transform_filters(w, g.out_channels, g.in_channels, false);
        return winograd::convolve(g, &p, x, &u, y, gemm_rows);
    }
    match PaddedRows::new(g) {
        Some(p) => forward_wide(g, &p, x, w, y),
        None => forward_images(g, x, w, y),
    }
}

/// The input gradient likewise: with stride 1 it is a convolution of `dY`
/// with the flipped, transposed filters, which the direct kernel or
/// Winograd's method computes when that convolution is 3 × 3.
fn input_grad<T: ConvFloat>(g: &ConvGeometry, dy: &[T], w: &[T], dx: &mut [T]) {
    let transposed = Winograd::input_grad_geometry(g);
    #[cfg(target_arch = "x86_64")]
    if let (Some(t), Some(dy), Some(w), Some(dx)) =
        (transposed, T::as_f32(dy), T::as_f32(w), T::as_f32_mut(dx))
    {
        if super::direct::suits_forward(&t) {
            let w = super::direct::arrange_filters(w, g.out_channels, g.in_channels, true);
            return super::direct::convolve(&t, dy, &w, dx);
        }
    }
    if let Some((t, p)) = transposed.and_then(|t| Some((t, Winograd::new(&t)?))) {
        let u = winograd::transform_filters(w, g.in_channels, g.out_channels, true);
        return winograd::convolve(&t, &p, dy, &u, dx, gemm_rows);
    }
    match PaddedRows::new(g) {
        Some(p) => input_grad_wide(g, &p, dy, w, dx),
        None => input_grad_images(g, dy, w, dx),
    }
}
// ANCHOR_END: choose

/// `c = a · b` for row-major `a` (`m × k`), `b` (`k × n`) and `c`.
fn gemm_rows<T: ConvFloat>((m, k, n): (usize, usize, usize), c: &mut [T], a: &[T], b: &[T]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above: the slices hold the three matrices.
    unsafe { gemm_into((m, k, n), c, false, a, (k, 1), b, (n, 1)) }
}

/// The weight gradient of a convolution Winograd's method applies to:
/// `dU = Σ dM · Vᵀ` in partial sums of whole chunks of at least
/// [`WEIGHT_GRAD_CHUNK`] images, added in order (so the result does not
/// depend on the number of threads), then `dW = Gᵀ dU G`.
fn weight_grad_winograd<T: ConvFloat>(
    g: &ConvGeometry,
    p: &Winograd,
    x: &[T],
    dy: &[T],
    dw: &mut [T],
) {
    let per_partial = p.chunk * WEIGHT_GRAD_CHUNK.div_ceil(p.chunk);
    let du = sum_over_chunks(g.batch, per_partial, |images| {
        winograd::filter_grad_products(g, p, (x, dy), images, gemm_rows_nt)
    });
    if du.is_empty() {
        dw.fill(T::default()); // an empty batch: no gradient
        return;
    }
    winograd::untransform_filter_grad(&du, g.out_channels, g.in_channels, dw);
}

/// `c += a · bᵀ` for row-major `a` (`m × k`), `b` (`n × k`) and `c`
/// (`m × n`).
fn gemm_rows_nt<T: ConvFloat>((m, k, n): (usize, usize, usize), c: &mut [T], a: &[T], b: &[T]) {
    assert!(a.len() >= m * k && b.len() >= k * n && c.len() >= m * n);
    // SAFETY: the asserts above: the slices hold the three matrices (bᵀ
    // is b read with row stride 1 and column stride k).
    unsafe { gemm_into((m, k, n), c, true, a, (k, 1), b, (1, k)) }
}

/// The weight gradient `[O, C/G, kh, kw]`: by the direct kernel where it
/// applies (`f32` 3 × 3 layers as wide as their input, with AVX-512 or
/// AVX2), by
/// Winograd's method on large enough 3 × 3 images, otherwise by whichever
/// lowering applies, computed group by group as `dWᵀ` (`[K, O/G]`) and
/// transposed into `dw`.
fn weight_grad<T: ConvFloat>(g: &ConvGeometry, x: &[T], dy: &[T], dw: &mut [T]) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(x), Some(dy), Some(dw)) = (T::as_f32(x), T::as_f32(dy), T::as_f32_mut(dw)) {
        if super::direct::suits_weight_grad(g) {
            let per = super::direct::WEIGHT_GRAD_IMAGES;
            let lanes = sum_over_chunks(g.batch, per, |images| {
                super::direct::weight_grad_lanes(g, x, dy, images)
            });
            match lanes.is_empty() {
                true => dw.fill(0.0), // an empty batch: no gradient
                false => super::direct::from_lanes(g, &lanes, dw),
            }
            return;
        }
    }
    if let Some(p) = Winograd::new(g).filter(|p| p.suits_weight_grad::<T>(g)) {
        return weight_grad_winograd(g, &p, x, dy, dw);
    }
    let dwt = match PaddedRows::new(g) {
        Some(p) => weight_grad_t_wide(g, &p, x, dy),
        None => weight_grad_t_images(g, x, dy),
    };
    let (og, k) = (g.out_channels / g.groups, g.col_rows());
    if dwt.is_empty() {
        dw.fill(T::default()); // an empty batch: no gradient
        return;
    }
    for (gi, dw_g) in dw.chunks_exact_mut(og * k).enumerate() {
        let dwt_g = &dwt[gi * k * og..][..k * og];
        for (o, row) in dw_g.chunks_exact_mut(k).enumerate() {
            for (r, v) in row.iter_mut().enumerate() {
                *v = dwt_g[r * og + o];
            }
        }
    }
}

/// The checks every operator here makes: two float tensors of one dtype
/// with the shapes the geometry expects.
fn check_pair(
    op: &'static str,
    g: &ConvGeometry,
    inputs: &[&RawTensor],
    shapes: [chapter_02::Shape; 2],
) -> Result<()> {
    g.validate(op)?;
    let [a, b] = inputs else {
        return Err(Error::invalid(
            op,
            format!("takes 2 tensors, got {}", inputs.len()),
        ));
    };
    if !a.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: a.dtype(),
        });
    }
    if b.dtype() != a.dtype() {
        return Err(Error::DTypeMismatch {
            op,
            lhs: a.dtype(),
            rhs: b.dtype(),
        });
    }
    for (t, want) in [a, b].into_iter().zip(shapes) {
        if *t.shape() != want {
            return Err(Error::ShapeMismatch {
                op,
                lhs: t.shape().clone(),
                rhs: want,
                detail: " (input does not match the convolution's geometry)".into(),
            });
        }
    }
    Ok(())
}

/// Runs a two-input host kernel in `f32` or `f64` (half types widened),
/// writing into a result of shape `out` taken from the tensor library's
/// buffer pool: zeroed when the kernel adds into it (`zeroed`), left as it
/// is when the kernel overwrites every element.
fn host_kernel(
    op: &'static str,
    inputs: &[&RawTensor],
    (out, zeroed): (chapter_02::Shape, bool),
    f32_kernel: impl Fn(&[f32], &[f32], &mut [f32]),
    f64_kernel: impl Fn(&[f64], &[f64], &mut [f64]),
) -> Result<Vec<RawTensor>> {
    let (a, b) = (inputs[0].contiguous()?, inputs[1].contiguous()?);
    in_compute_dtype(&[&a, &b], |t| {
        let (a, b) = (t[0], t[1]);
        let mut y = match zeroed {
            true => RawTensor::zeros(out.clone(), a.dtype(), a.device())?,
            false => RawTensor::for_overwrite(out.clone(), a.dtype(), a.device())?,
        };
        match a.dtype() {
            DType::F32 => f32_kernel(a.host_slice()?, b.host_slice()?, y.host_slice_mut()?),
            DType::F64 => f64_kernel(a.host_slice()?, b.host_slice()?, y.host_slice_mut()?),
            dtype => return Err(Error::UnsupportedDType { op, dtype }),
        }
        Ok(vec![y])
    })
}

// ANCHOR: operators
/// `x: [N, C, H, W]`, `weight: [O, C/G, kh, kw]` → `[N, O, out_h, out_w]`,
/// without bias.
pub struct ConvForward(pub ConvGeometry);

/// `dy: [N, O, out_h, out_w]` (a gradient of the convolution's output, or
/// the input of a transposed convolution), `weight` → `[N, C, H, W]`.
pub struct ConvInputGrad(pub ConvGeometry);

/// `x: [N, C, H, W]`, `dy: [N, O, out_h, out_w]` → the weight's gradient
/// `[O, C/G, kh, kw]`.
pub struct ConvWeightGrad(pub ConvGeometry);
// ANCHOR_END: operators

/// `[N, O, L]` ↔ `[G, O/G, N·L]`, the layouts of images and of the
/// batch-wide GEMM.
fn to_group_rows(g: &ConvGeometry, t: &RawTensor) -> Result<RawTensor> {
    t.permute(&[1, 0, 2, 3])?
        .reshape([g.groups, g.out_channels / g.groups, g.col_cols()])
}

fn weight_matrix(g: &ConvGeometry, w: &RawTensor) -> Result<RawTensor> {
    w.reshape([g.groups, g.out_channels / g.groups, g.col_rows()])
}

impl Operator for ConvForward {
    fn name(&self) -> &'static str {
        "conv2d_forward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        let g = &self.0;
        check_pair(self.name(), g, inputs, [g.input_shape(), g.weight_shape()])
    }
    /// The whole-batch lowering: im2col, a GEMM per group, a permute.
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let cols = call(&Im2col(*g), &[inputs[0]])?.remove(0); // [G, K, N·L]
        let y = weight_matrix(g, inputs[1])?.matmul(&cols)?; // [G, O/G, N·L]
        let y = y
            .reshape([g.out_channels, g.batch, g.out_h, g.out_w])?
            .permute(&[1, 0, 2, 3])?;
        Ok(vec![y.contiguous()?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, |op, inputs| {
            let g = op.0;
            host_kernel(
                "conv2d_forward",
                inputs,
                (g.output_shape(), false),
                |x, w, y| forward(&g, x, w, y),
                |x, w, y| forward(&g, x, w, y),
            )
        })]
    }
}

impl Operator for ConvInputGrad {
    fn name(&self) -> &'static str {
        "conv2d_input_grad"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        let g = &self.0;
        check_pair(self.name(), g, inputs, [g.output_shape(), g.weight_shape()])
    }
    /// `Wᵀ · dY` for the whole batch, then col2im.
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let dym = to_group_rows(g, inputs[0])?; // [G, O/G, N·L]
        let cols = weight_matrix(g, inputs[1])?.transpose(1, 2)?.matmul(&dym)?; // [G, K, N·L]
        call(&super::im2col::Col2im(*g), &[&cols])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, |op, inputs| {
            let g = op.0;
            host_kernel(
                "conv2d_input_grad",
                inputs,
                // The wide path writes every value; the other adds into zeros.
                (g.input_shape(), PaddedRows::new(&g).is_none()),
                |dy, w, dx| input_grad(&g, dy, w, dx),
                |dy, w, dx| input_grad(&g, dy, w, dx),
            )
        })]
    }
}

impl Operator for ConvWeightGrad {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        let g = &self.0;
        check_pair(self.name(), g, inputs, [g.input_shape(), g.output_shape()])
    }
    /// `dY · im2col(x)ᵀ` for the whole batch.
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let cols = call(&Im2col(*g), &[inputs[0]])?.remove(0); // [G, K, N·L]
        let dym = to_group_rows(g, inputs[1])?; // [G, O/G, N·L]
        Ok(vec![dym
            .matmul(&cols.transpose(1, 2)?)?
            .reshape(g.weight_shape())?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, |op, inputs| {
            let g = op.0;
            host_kernel(
                "conv2d_weight_grad",
                inputs,
                (g.weight_shape(), false),
                |x, dy, dw| weight_grad(&g, x, dy, dw),
                |x, dy, dw| weight_grad(&g, x, dy, dw),
            )
        })]
    }
}
