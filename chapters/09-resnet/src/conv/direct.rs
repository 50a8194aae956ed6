//! 3 × 3 convolutions computed directly, in AVX-512 registers, for `f32`
//! images whose output rows are as wide as their input rows: stride 1 and
//! padding 1 on each side, every 3 × 3 layer of ResNet14 but the strided
//! ones, and their gradients.
//!
//! Winograd's method ([`super::winograd`]) does 16/36 of the direct
//! method's multiplications, but pays for them in memory: each input
//! value becomes four transformed values, written out and read back, and
//! each output value comes from four products. On a core with two 512-bit
//! FMA units the multiplications are cheap and that traffic is not:
//! measured on a 2-core Xeon (Emerald Rapids), half of a Winograd forward
//! pass of the 16-channel 28 × 28 layer went to its two transforms. These
//! kernels write nothing but their results. Two layouts of the work:
//!
//! - **Pixels in the lanes** (the forward pass and the input gradient).
//!   Number an output plane's pixels `p = y·W + x`. Since the output is as
//!   wide as the input, the input pixel that tap `(i, j)` reads for output
//!   `p` is `p + (i − pt)·W + (j − pl)`: the same shift for every pixel.
//!   So a register holds 16 consecutive output pixels (running across
//!   rows), and for each tap one *masked* load at the shifted address
//!   fetches the 16 input values it multiplies, the lanes whose input lies
//!   in the padding masked to zero. A block of 3 such registers for 8
//!   output channels is 24 accumulators: per input channel and tap, 3
//!   loads, 8 broadcast filter values and 24 FMAs.
//! - **Output channels in the lanes** (the weight gradient, a sum over
//!   all pixels of `dY[o][p] · X[c][p + shift]`). Each image's `dY` is
//!   transposed to pixel-major order, so a register holds one pixel's
//!   gradient for 16 output channels, and each input value is broadcast.
//!   The accumulators are the gradient itself (16 output channels of one
//!   tap each), so nothing is reduced across lanes at the end.
//!
//! The input gradient of such a layer is a convolution of the same kind
//! (of `dY` with the flipped, transposed filters and padding `2 − p`), so
//! the first kernel serves both.

use super::geometry::ConvGeometry;
use super::registers::{available, lane_numbers, store_lanes};
use chapter_02::scratch_buffer;
use std::arch::x86_64::*;
use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// See [`super::set_direct_enabled`].
pub(super) fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Output channels a block of the forward kernel holds: one broadcast per
/// channel and step.
const CHANNELS: usize = 8;

/// Registers of pixels a block of the forward kernel holds.
const PIXEL_REGISTERS: usize = 3;

/// Images one partial sum of the weight gradient covers. The partial sums
/// run on the cores in parallel and are added in order, so the result does
/// not depend on the number of threads. Measured with `conv_layers` on the
/// 64-channel 7 × 7 layer: 2.3 ms with 32 images a partial sum, 3.0–3.4
/// with 8 (each partial sum has its own buffers and its own final pass).
pub(crate) const WEIGHT_GRAD_IMAGES: usize = 32;

/// Whether these kernels can compute the convolution `g` at all: on a CPU
/// with AVX-512 (and not turned off), a 3 × 3 filter with stride 1, no
/// dilation and no groups, output rows exactly as wide as the input's.
/// The sizes must also be those of such a convolution (`out = in + pads −
/// 2`): the input gradient's geometry is built as a 3 × 3 convolution for
/// any layer, and only a 3 × 3 layer's is one.
fn applies(g: &ConvGeometry) -> bool {
    ENABLED.load(Ordering::Relaxed)
        && available()
        && g.kernel == (3, 3)
        && g.stride == (1, 1)
        && g.dilation == (1, 1)
        && g.groups == 1
        && g.out_w == g.in_w
        && g.out_h > 0
        && g.out_w > 0
        && g.out_h + 2 == g.in_h + g.pad_begin.0 + g.pad_end.0
        && g.out_w + 2 == g.in_w + g.pad_begin.1 + g.pad_end.1
}

/// Whether the forward kernel should compute `g`: output channels in
/// whole blocks of 8, and planes that fill their registers' lanes to at
/// least 90% (a 7 × 7 plane fills four registers to 77%; there Winograd's
/// method measured faster, 2.1–2.2 ms against 2.3–2.6 for the 64-channel
/// layer).
pub(crate) fn suits_forward(g: &ConvGeometry) -> bool {
    let plane = g.out_h * g.out_w;
    applies(g)
        && g.out_channels.is_multiple_of(CHANNELS)
        && 10 * plane >= 9 * 16 * plane.div_ceil(16)
}

/// Whether the weight-gradient kernel should compute `g`: output channels
/// in whole registers, and input channels in whole groups of rows (see
/// [`weight_grad_lanes`]).
pub(crate) fn suits_weight_grad(g: &ConvGeometry) -> bool {
    let (v, r) = lane_blocking(g.out_channels);
    applies(g) && g.out_channels.is_multiple_of(16 * v) && (3 * g.in_channels).is_multiple_of(r)
}

/// The filters `w` (`[O, C, 3, 3]`) laid out `[C][9][O]`, so that the
/// forward kernel's broadcasts for one input channel and tap are
/// consecutive; with `flip`, those of the input gradient (a convolution
/// from `O` channels to `C` with the filters transposed and rotated by
/// 180°), laid out `[O][9][C]`.
pub(crate) fn arrange_filters(w: &[f32], o: usize, c: usize, flip: bool) -> Vec<f32> {
    let mut out = vec![0.0; w.len()];
    for oi in 0..o {
        for ci in 0..c {
            for tap in 0..9 {
                let value = w[(oi * c + ci) * 9 + tap];
                match flip {
                    false => out[(ci * 9 + tap) * o + oi] = value,
                    true => out[(oi * 9 + (8 - tap)) * c + ci] = value,
                }
            }
        }
    }
    out
}

// ANCHOR: direct_forward
/// `y = conv(x, w)` for every image (`x`: `[N, C, H, W]`, `y`: `[N, O,
/// out_h, W]`), `w` arranged by [`arrange_filters`]. Images run on the
/// cores in parallel. Call only where [`suits_forward`] holds.
pub(crate) fn convolve(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    use rayon::prelude::*;
    assert!(suits_forward(g), "the direct kernel does not fit {g:?}");
    let ol = g.out_channels * g.out_h * g.out_w;
    let chw = g.in_channels * g.in_h * g.in_w;
    assert!(x.len() >= g.batch * chw && w.len() >= g.out_channels * g.in_channels * 9);
    let masks = tap_masks(g);
    y.par_chunks_mut(ol).enumerate().for_each(|(n, y_n)| {
        // SAFETY: `suits_forward` checked for AVX-512.
        unsafe { convolve_image(g, &x[n * chw..][..chw], w, y_n, &masks) }
    });
}

/// For each register of output pixels (16 at a time) and each tap, the
/// lanes whose input pixel lies inside the image.
fn tap_masks(g: &ConvGeometry) -> Vec<[__mmask16; 9]> {
    let (h, w) = (g.in_h as isize, g.in_w as isize);
    let (pt, pl) = (g.pad_begin.0 as isize, g.pad_begin.1 as isize);
    let plane = g.out_h * g.out_w;
    let inside = |p: usize, tap: usize| {
        let (i, j) = ((tap / 3) as isize, (tap % 3) as isize);
        let row = (p / g.out_w) as isize + i - pt;
        let column = (p % g.out_w) as isize + j - pl;
        p < plane && (0..h).contains(&row) && (0..w).contains(&column)
    };
    (0..plane.div_ceil(16))
        .map(|r| {
            std::array::from_fn(|tap| {
                (0..16)
                    .filter(|&lane| inside(16 * r + lane, tap))
                    .fold(0, |mask, lane| mask | 1 << lane)
            })
        })
        .collect()
}

/// One image, a block of pixel registers and output channels at a time.
#[target_feature(enable = "avx512f")]
fn convolve_image(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &[f32],
    y_n: &mut [f32],
    masks: &[[__mmask16; 9]],
) {
    let registers = masks.len();
    for first in (0..registers).step_by(PIXEL_REGISTERS) {
        for block in 0..g.out_channels / CHANNELS {
            let at = (first, block);
            match PIXEL_REGISTERS.min(registers - first) {
                3 => pixel_block::<3>(g, x_n, w, y_n, masks, at),
                2 => pixel_block::<2>(g, x_n, w, y_n, masks, at),
                _ => pixel_block::<1>(g, x_n, w, y_n, masks, at),
            }
        }
    }
}

/// `R` registers of output pixels from register `first`, for the 8 output
/// channels of `block`: summed over every input channel and tap in 24
/// accumulators (with `R = 3`), then stored.
#[inline]
#[target_feature(enable = "avx512f")]
fn pixel_block<const R: usize>(
    g: &ConvGeometry,
    x_n: &[f32],
    w: &[f32],
    y_n: &mut [f32],
    masks: &[[__mmask16; 9]],
    (first, block): (usize, usize),
) {
    let (c, o) = (g.in_channels, g.out_channels);
    let hw = g.in_h * g.in_w;
    let plane = g.out_h * g.out_w;
    let (pt, pl) = (g.pad_begin.0 as isize, g.pad_begin.1 as isize);
    let shifts: [isize; 9] = std::array::from_fn(|tap| {
        let (i, j) = ((tap / 3) as isize, (tap % 3) as isize);
        (i - pt) * g.in_w as isize + (j - pl)
    });
    let mut acc = [[_mm512_setzero_ps(); R]; CHANNELS];
    for (ci, x_c) in x_n.chunks_exact(hw).take(c).enumerate() {
        let w_c = &w[ci * 9 * o + block * CHANNELS..];
        for (tap, &shift) in shifts.iter().enumerate() {
            let mut inputs = [_mm512_setzero_ps(); R];
            for (r, input) in inputs.iter_mut().enumerate() {
                let p = ((first + r) * 16) as isize + shift;
                // SAFETY: the mask keeps exactly the lanes whose input
                // pixel lies inside this plane (`x_c`); masked-off lanes
                // are not read, wherever the shifted address points.
                *input = unsafe {
                    _mm512_maskz_loadu_ps(masks[first + r][tap], x_c.as_ptr().wrapping_offset(p))
                };
            }
            let w_tap = &w_c[tap * o..][..CHANNELS];
            for (acc_k, &weight) in acc.iter_mut().zip(w_tap) {
                let b = _mm512_set1_ps(weight);
                for (a, &input) in acc_k.iter_mut().zip(&inputs) {
                    *a = _mm512_fmadd_ps(b, input, *a);
                }
            }
        }
    }
    for (k, acc_k) in acc.iter().enumerate() {
        let y_o = &mut y_n[(block * CHANNELS + k) * plane..][..plane];
        for (r, &value) in acc_k.iter().enumerate() {
            let p = (first + r) * 16;
            store_lanes(&mut y_o[p..][..(plane - p).min(16)], value);
        }
    }
}
// ANCHOR_END: direct_forward

/// The pitch of the padded planes of the weight gradient: the input's
/// width and, between rows, as many zeros as the wider of the left and
/// right paddings (one gap serves as the right padding of a row and the
/// left of the next). The padded-row lowering's planes (`PaddedRows`)
/// give each row both of its paddings; here every column of the pitch is
/// a column of pixels the kernel computes (and drops), so the narrower
/// pitch saves work: 29 columns a row instead of 30 at 28 × 28, 8 instead
/// of 9 at 7 × 7.
fn padded_pitch(g: &ConvGeometry) -> usize {
    g.in_w + g.pad_begin.1.max(g.pad_end.1)
}

/// Pixels the weight gradient's accumulators sum before they are added to
/// the partial sum: a sum of `f32` values in one long chain loses about
/// one rounding per term, so the pixels are summed in runs, the runs per
/// image, the images per partial sum and the partial sums in order. With
/// one chain per image, a 17-image batch of 20 × 20 images missed the
/// lowering's gradient by 2.5e-4 relative; in runs of 64 it agrees to
/// within the tests' 1e-4.
const SUM_PIXELS: usize = 64;

/// Output-channel registers `V` and rows `R` of one block of the weight
/// gradient's kernel: `3·R·V = 24` accumulators (see
/// [`weight_grad_block`]).
fn lane_blocking(o: usize) -> (usize, usize) {
    match (o % 64, o % 32) {
        (0, _) => (4, 2),
        (_, 0) => (2, 4),
        _ => (1, 8),
    }
}

// ANCHOR: direct_weight_grad
/// The weight gradient `dw` (`[O, C, 3, 3]`) from the sum `lanes` of the
/// partial sums of [`weight_grad_lanes`] (the caller adds them in order,
/// [`WEIGHT_GRAD_IMAGES`] images each, with the lowering's
/// `sum_over_chunks`): from `[O/16][C][9][16]` to `[O][C][9]`.
pub(crate) fn from_lanes(g: &ConvGeometry, lanes: &[f32], dw: &mut [f32]) {
    let c = g.in_channels;
    for (oi, dw_o) in dw.chunks_exact_mut(c * 9).enumerate() {
        for (i, v) in dw_o.iter_mut().enumerate() {
            *v = lanes[((oi / 16) * c * 9 + i) * 16 + oi % 16];
        }
    }
}

/// One partial sum of the weight gradient, in the kernel's layout
/// `[O/16][C][9][16]` (16 output channels side by side): for each image,
/// its input is padded and its output gradient transposed, then every
/// block of accumulators runs over all its pixels. Call only where
/// [`suits_weight_grad`] holds.
pub(crate) fn weight_grad_lanes(
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
    images: std::ops::Range<usize>,
) -> Vec<f32> {
    assert!(suits_weight_grad(g), "the direct kernel does not fit {g:?}");
    let (c, o) = (g.in_channels, g.out_channels);
    let chw = c * g.in_h * g.in_w;
    let ol = o * g.out_h * g.out_w;
    let pw = padded_pitch(g);
    let len = padded_len(g, pw);
    // From the buffer pool: `pad_image` and `transpose_grad` write every
    // value before it is read.
    let mut xp = scratch_buffer(c * len, 0.0f32);
    let mut dt = scratch_buffer(g.out_h * pw * o, 0.0f32);
    let mut lanes = vec![0.0f32; o * c * 9];
    for n in images {
        pad_image(g, &x[n * chw..][..chw], &mut xp, (pw, len));
        // SAFETY: `suits_weight_grad` checked for AVX-512.
        unsafe {
            transpose_grad(g, &dy[n * ol..][..ol], &mut dt, pw);
            match lane_blocking(o) {
                (4, _) => weight_grad_block::<4, 2>(g, (&xp, pw, len), &dt, &mut lanes),
                (2, _) => weight_grad_block::<2, 4>(g, (&xp, pw, len), &dt, &mut lanes),
                _ => weight_grad_block::<1, 8>(g, (&xp, pw, len), &dt, &mut lanes),
            }
        }
    }
    lanes
}

/// Values in one padded plane: the rows the kernel reads, for every pixel
/// of `out_h` rows of `pw` (the last row's gap included) and the taps two
/// rows and two columns on.
fn padded_len(g: &ConvGeometry, pw: usize) -> usize {
    (g.out_h + 2) * pw + 2
}

/// Copies image `x_n` into `padded`: `C` planes of `len` values, input
/// row `yy` of each at `(yy + pt)·pw + pl`, zeros everywhere else.
fn pad_image(g: &ConvGeometry, x_n: &[f32], padded: &mut [f32], (pw, len): (usize, usize)) {
    let (h, w) = (g.in_h, g.in_w);
    let (pt, pl) = g.pad_begin;
    for (x_c, p_c) in x_n.chunks_exact(h * w).zip(padded.chunks_exact_mut(len)) {
        p_c.fill(0.0);
        for (yy, row) in x_c.chunks_exact(w).enumerate() {
            p_c[(yy + pt) * pw + pl..][..w].copy_from_slice(row);
        }
    }
}

/// `dy_n` (`[O, out_h, out_w]`) as `[out_h·pw, O]`: each pixel's output
/// channels side by side (one gather of 16 channels a step), rows of `pw`
/// pixels, zeros in the columns past `out_w`.
#[target_feature(enable = "avx512f")]
fn transpose_grad(g: &ConvGeometry, dy_n: &[f32], dt: &mut [f32], pw: usize) {
    let o = g.out_channels;
    let plane = g.out_h * g.out_w;
    let index = _mm512_mullo_epi32(lane_numbers(), _mm512_set1_epi32(plane as i32));
    assert!(dy_n.len() >= o * plane && dt.len() >= g.out_h * pw * o && o.is_multiple_of(16));
    for (q, pixel) in dt.chunks_exact_mut(o).take(g.out_h * pw).enumerate() {
        let (y, x) = (q / pw, q % pw);
        for (co, lanes) in pixel.chunks_exact_mut(16).enumerate() {
            let value = match x < g.out_w {
                // SAFETY: lane k reads dy_n[(16·co + k)·plane + p], the
                // gradient of output channel 16·co + k at pixel p, inside
                // dy_n (the assert above).
                true => unsafe {
                    let p = 16 * co * plane + y * g.out_w + x;
                    _mm512_i32gather_ps::<4>(index, dy_n.as_ptr().add(p).cast())
                },
                false => _mm512_setzero_ps(),
            };
            // SAFETY: 16 values, the length of `lanes`.
            unsafe { _mm512_storeu_ps(lanes.as_mut_ptr(), value) };
        }
    }
}

/// Adds one image's weight gradient to `lanes` (`[O/16][C][9][16]`). The
/// 3·C filter rows (input channel `ci`, tap row `i`) go `R` at a time, and
/// the output channels `16·V` at a time: each block sums, over every
/// pixel `q`, `V` registers of `dY[q]` times the broadcast inputs of its
/// `R` rows' three taps, `3·R·V = 24` FMAs for `V + 3·R` loads.
#[target_feature(enable = "avx512f")]
fn weight_grad_block<const V: usize, const R: usize>(
    g: &ConvGeometry,
    (xp, pw, len): (&[f32], usize, usize),
    dt: &[f32],
    lanes: &mut [f32],
) {
    let (c, o) = (g.in_channels, g.out_channels);
    let flat = g.out_h * pw;
    assert!(xp.len() >= c * len && dt.len() >= flat * o && lanes.len() >= o * c * 9);
    assert!(flat + 2 * pw + 2 <= len && o.is_multiple_of(16 * V) && (3 * c).is_multiple_of(R));
    // Where the 16 output channels from `16·co16` keep tap `t` of input
    // channel `ci`.
    let at = |co16: usize, ci: usize, t: usize| ((co16 * c + ci) * 9 + t) * 16;
    for co in (0..o).step_by(16 * V) {
        for first in (0..3 * c).step_by(R) {
            // Row r of this block: filter row i of input channel ci.
            let rows: [(usize, usize); R] =
                std::array::from_fn(|r| ((first + r) / 3, (first + r) % 3));
            // SAFETY: the asserts above bound every load and store: the
            // rows' reads end at `flat + 2·pw + 2`, the gradient's at
            // `flat·o`.
            unsafe {
                let mut x_r = [xp.as_ptr(); R];
                for (x, &(ci, i)) in x_r.iter_mut().zip(&rows) {
                    *x = xp.as_ptr().add(ci * len + i * pw);
                }
                let d_q = dt.as_ptr().add(co);
                for start in (0..flat).step_by(SUM_PIXELS) {
                    let mut acc = [[[_mm512_setzero_ps(); V]; 3]; R];
                    for q in start..(start + SUM_PIXELS).min(flat) {
                        let mut d = [_mm512_setzero_ps(); V];
                        for (v, d_v) in d.iter_mut().enumerate() {
                            *d_v = _mm512_loadu_ps(d_q.add(q * o + 16 * v));
                        }
                        for (acc_r, x) in acc.iter_mut().zip(x_r) {
                            for (j, acc_j) in acc_r.iter_mut().enumerate() {
                                let input = _mm512_set1_ps(*x.add(q + j));
                                for (a, &d_v) in acc_j.iter_mut().zip(&d) {
                                    *a = _mm512_fmadd_ps(d_v, input, *a);
                                }
                            }
                        }
                    }
                    for (acc_r, &(ci, i)) in acc.iter().zip(&rows) {
                        for (j, acc_j) in acc_r.iter().enumerate() {
                            for (v, &value) in acc_j.iter().enumerate() {
                                let sum = lanes.as_mut_ptr().add(at(co / 16 + v, ci, 3 * i + j));
                                _mm512_storeu_ps(sum, _mm512_add_ps(_mm512_loadu_ps(sum), value));
                            }
                        }
                    }
                }
            }
        }
    }
}
// ANCHOR_END: direct_weight_grad
