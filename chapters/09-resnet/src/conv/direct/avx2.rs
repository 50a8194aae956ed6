//! The direct kernels for AVX2 with FMA (see the parent module): 16
//! registers of 8 lanes.
//!
//! The weight gradient is the AVX-512 kernel's, blocked for half the
//! registers. The forward pass is not: it puts output channels in the
//! lanes, as the weight gradient does, and broadcasts the input pixels.
//!
//! - **Why not pixels in the lanes.** A block of 3 pixel registers × 4
//!   output channels needs 12 accumulators, 3 input registers and a
//!   broadcast: all 16 registers, and the compiler spilled accumulators to
//!   the stack (7.1–7.6 ms for the 16-channel 28 × 28 layer, 64 images on
//!   one core of a Zen 3 EPYC). With 2 × 4 there are only 8 independent
//!   sums for two FMA units of 4 cycles' latency: 4.9–5.5 ms, against
//!   3.7–4.1 for Winograd's method. And AVX2's masked loads (`vmaskmovps`) take a
//!   whole register for a mask and cannot be an FMA's operand.
//! - **Output channels in the lanes.** The input is padded once per image,
//!   as for the weight gradient (a zero column between rows, zero rows
//!   above and below), so no load needs a mask. A block is 6 consecutive
//!   pixels of the padded pitch × 16 output channels: per input channel
//!   and tap, 2 loads of filter values, 6 broadcasts and 12 FMAs into 12
//!   independent sums. The same layer took 3.4–3.6 ms. The price is the
//!   store: each pixel's 16 channels go to 16 planes, one value each, and
//!   the gap column's pixels are computed and dropped (1 in 29 at 28 × 28,
//!   1 in 15 at 14 × 14; at 7 × 7, 1 in 8, and there Winograd's method
//!   measured faster).

use super::weight_grad::{weight_grad_block, Register, Walk};
use super::{pad_image, padded_len, padded_pitch, ConvGeometry, Padded};
use chapter_02::scratch_buffer;
use std::arch::x86_64::*;

/// `f32` values in an AVX2 register.
const LANES: usize = 8;

/// Output channels a block of the forward kernel holds: two registers.
pub(super) const CHANNELS: usize = 2 * LANES;

/// Pixels a block of the forward kernel holds: 6 × 2 = 12 accumulators,
/// two registers of filter values and a broadcast, 15 of the 16 registers.
const PIXELS: usize = 6;

// ANCHOR: direct_forward_avx2
/// `y = conv(x, w)` for every image (`x`: `[N, C, H, W]`, `y`: `[N, O,
/// out_h, W]`), `w` arranged by [`super::arrange_filters`]. Images run on
/// the cores in parallel, each padded first; then blocks of 6 pixels (of
/// the padded pitch, running across rows) × 16 output channels. Call only
/// through [`super::convolve`], which checks the sizes and that the CPU
/// has AVX2 and FMA.
pub(super) fn convolve(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    use rayon::prelude::*;
    let ol = g.out_channels * g.out_h * g.out_w;
    let chw = g.in_channels * g.in_h * g.in_w;
    let pw = padded_pitch(g);
    let len = padded_len(g, pw);
    let flat = g.out_h * pw;
    y.par_chunks_mut(ol).enumerate().for_each(|(n, y_n)| {
        // From the buffer pool: `pad_image` writes every value, and the
        // blocks every value of `yt`.
        let mut xp = scratch_buffer(g.in_channels * len, 0.0f32);
        let mut yt = scratch_buffer(flat * g.out_channels, 0.0f32);
        pad_image(g, &x[n * chw..][..chw], &mut xp, (pw, len));
        for first in (0..flat).step_by(PIXELS) {
            for co in (0..g.out_channels).step_by(CHANNELS) {
                let image = ((&xp[..], pw, len), w, &mut yt[..]);
                let at = (first, co);
                // SAFETY: the caller checked for AVX2 and FMA.
                unsafe {
                    match PIXELS.min(flat - first) {
                        6 => pixel_block::<6>(g, image, at),
                        5 => pixel_block::<5>(g, image, at),
                        4 => pixel_block::<4>(g, image, at),
                        3 => pixel_block::<3>(g, image, at),
                        2 => pixel_block::<2>(g, image, at),
                        _ => pixel_block::<1>(g, image, at),
                    }
                }
            }
        }
        // SAFETY: as above.
        unsafe { to_channel_major(g, &yt, y_n, pw) };
    });
}

/// `P` pixels of the padded pitch from `first`, for the 16 output channels
/// from `co`: summed over every input channel and tap in `2·P`
/// accumulators, then stored in the pixel-major `yt` (`[out_h·pw, O]`),
/// each pixel's 16 channels two whole registers.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn pixel_block<const P: usize>(
    g: &ConvGeometry,
    ((xp, pw, len), w, yt): (Padded, &[f32], &mut [f32]),
    (first, co): (usize, usize),
) {
    let (c, o) = (g.in_channels, g.out_channels);
    assert!(xp.len() >= c * len && first + P + 2 * pw + 2 <= len);
    assert!(w.len() >= c * 9 * o && co + CHANNELS <= o && yt.len() >= (first + P) * o);
    let mut acc = [[_mm256_setzero_ps(); 2]; P];
    for ci in 0..c {
        // SAFETY: the asserts above bound every read.
        unsafe {
            let x_c = xp.as_ptr().add(ci * len + first);
            let w_c = w.as_ptr().add(ci * 9 * o + co);
            for tap in 0..9 {
                let (i, j) = (tap / 3, tap % 3);
                let w0 = _mm256_loadu_ps(w_c.add(tap * o));
                let w1 = _mm256_loadu_ps(w_c.add(tap * o + LANES));
                let x_t = x_c.add(i * pw + j);
                for (p, acc_p) in acc.iter_mut().enumerate() {
                    let b = _mm256_broadcast_ss(&*x_t.add(p));
                    acc_p[0] = _mm256_fmadd_ps(b, w0, acc_p[0]);
                    acc_p[1] = _mm256_fmadd_ps(b, w1, acc_p[1]);
                }
            }
        }
    }
    for (p, acc_p) in acc.iter().enumerate() {
        // SAFETY: 16 values inside `yt` (the assert above).
        unsafe {
            let to = yt.as_mut_ptr().add((first + p) * o + co);
            _mm256_storeu_ps(to, acc_p[0]);
            _mm256_storeu_ps(to.add(LANES), acc_p[1]);
        }
    }
}
// ANCHOR_END: direct_forward_avx2

/// Output channels a block of the strided forward kernel holds: one
/// register.
pub(super) const STRIDED_CHANNELS: usize = LANES;

/// Pixels of one output row a block of the strided kernel holds: 7 sums of
/// 8 channels, a register of filter values and a broadcast. Seven divides
/// ResNet14's strided rows (14 and 7 pixels) exactly.
const STRIDED_PIXELS: usize = 7;

// ANCHOR: direct_strided_avx2
/// `y = conv(x, w)` with stride 2 (`x`: `[N, C, H, W]`, `y`: `[N, O, out_h,
/// out_w]`), `w` arranged by [`super::arrange_filters`]. Output pixel
/// `(y, x)` reads rows `2y + i` and columns `2x + j` of the padded image,
/// so consecutive output pixels are two input columns apart, and only
/// within a row: the next row starts two input rows down. So the blocks
/// stay within an output row (7 pixels × 8 channels) and each image's rows
/// are padded on both sides (pitch `pl + W + pr`). Call only through
/// [`super::convolve`], which checks the sizes and that the CPU has AVX2
/// and FMA.
pub(super) fn convolve_strided(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    use rayon::prelude::*;
    let ol = g.out_channels * g.out_h * g.out_w;
    let chw = g.in_channels * g.in_h * g.in_w;
    let pw = g.pad_begin.1 + g.in_w + g.pad_end.1;
    let len = (g.pad_begin.0 + g.in_h + g.pad_end.0) * pw;
    let (oh, ow) = (g.out_h, g.out_w);
    y.par_chunks_mut(ol).enumerate().for_each(|(n, y_n)| {
        // From the buffer pool: `pad_image` writes every value, and the
        // blocks every value of `yt`.
        let mut xp = scratch_buffer(g.in_channels * len, 0.0f32);
        let mut yt = scratch_buffer(oh * ow * g.out_channels, 0.0f32);
        pad_image(g, &x[n * chw..][..chw], &mut xp, (pw, len));
        for row in 0..oh {
            for first in (0..ow).step_by(STRIDED_PIXELS) {
                for co in (0..g.out_channels).step_by(STRIDED_CHANNELS) {
                    let image = ((&xp[..], pw, len), w, &mut yt[..]);
                    let at = (row, first, co);
                    // SAFETY: the caller checked for AVX2 and FMA.
                    unsafe {
                        match STRIDED_PIXELS.min(ow - first) {
                            7 => strided_block::<7>(g, image, at),
                            6 => strided_block::<6>(g, image, at),
                            5 => strided_block::<5>(g, image, at),
                            4 => strided_block::<4>(g, image, at),
                            3 => strided_block::<3>(g, image, at),
                            2 => strided_block::<2>(g, image, at),
                            _ => strided_block::<1>(g, image, at),
                        }
                    }
                }
            }
        }
        // SAFETY: as above.
        unsafe { to_channel_major(g, &yt, y_n, ow) };
    });
}

/// Pixels `first .. first + P` of output row `row`, for the 8 output
/// channels from `co`: summed over every input channel and tap in `P`
/// accumulators, then stored in the pixel-major `yt` (`[out_h·out_w, O]`).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn strided_block<const P: usize>(
    g: &ConvGeometry,
    ((xp, pw, len), w, yt): (Padded, &[f32], &mut [f32]),
    (row, first, co): (usize, usize, usize),
) {
    let (c, o, ow) = (g.in_channels, g.out_channels, g.out_w);
    // The block's last read: row 2·row + 2, column 2·(first + P − 1) + 2.
    assert!(xp.len() >= c * len && (2 * row + 2) * pw + 2 * (first + P) < len);
    assert!(2 * (first + P) < pw && first + P <= ow);
    assert!(w.len() >= c * 9 * o && co + STRIDED_CHANNELS <= o);
    assert!(yt.len() >= (row * ow + first + P) * o);
    let mut acc = [_mm256_setzero_ps(); P];
    for ci in 0..c {
        // SAFETY: the asserts above bound every read.
        unsafe {
            let x_c = xp.as_ptr().add(ci * len + 2 * row * pw + 2 * first);
            let w_c = w.as_ptr().add(ci * 9 * o + co);
            for tap in 0..9 {
                let (i, j) = (tap / 3, tap % 3);
                let w_t = _mm256_loadu_ps(w_c.add(tap * o));
                let x_t = x_c.add(i * pw + j);
                for (p, acc_p) in acc.iter_mut().enumerate() {
                    let b = _mm256_broadcast_ss(&*x_t.add(2 * p));
                    *acc_p = _mm256_fmadd_ps(b, w_t, *acc_p);
                }
            }
        }
    }
    for (p, &value) in acc.iter().enumerate() {
        // SAFETY: 8 values inside `yt` (the assert above).
        unsafe { _mm256_storeu_ps(yt.as_mut_ptr().add((row * ow + first + p) * o + co), value) };
    }
}
// ANCHOR_END: direct_strided_avx2

/// Transposes the 8 × 8 block at `from` (rows `from_pitch` values apart)
/// into `to` (rows `to_pitch` apart): 8 loads, 24 shuffles within and
/// across the registers' two halves, 8 stores.
///
/// # Safety
///
/// The CPU must have AVX2, and both blocks must lie inside their buffers.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn transpose_8x8(from: *const f32, from_pitch: usize, to: *mut f32, to_pitch: usize) {
    // SAFETY: the caller's.
    unsafe {
        let r: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(from.add(i * from_pitch)));
        // Pairs of rows interleaved: [a0 b0 a1 b1 | a4 b4 a5 b5] and the rest.
        let t0 = _mm256_unpacklo_ps(r[0], r[1]);
        let t1 = _mm256_unpackhi_ps(r[0], r[1]);
        let t2 = _mm256_unpacklo_ps(r[2], r[3]);
        let t3 = _mm256_unpackhi_ps(r[2], r[3]);
        let t4 = _mm256_unpacklo_ps(r[4], r[5]);
        let t5 = _mm256_unpackhi_ps(r[4], r[5]);
        let t6 = _mm256_unpacklo_ps(r[6], r[7]);
        let t7 = _mm256_unpackhi_ps(r[6], r[7]);
        // Columns c and c + 4 of four rows: [a0 b0 c0 d0 | a4 b4 c4 d4].
        let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
        let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
        let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
        let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
        let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
        let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
        let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
        let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
        // The halves of rows 0–3 and 4–7 joined: whole columns.
        let columns = [
            _mm256_permute2f128_ps::<0x20>(u0, u4),
            _mm256_permute2f128_ps::<0x20>(u1, u5),
            _mm256_permute2f128_ps::<0x20>(u2, u6),
            _mm256_permute2f128_ps::<0x20>(u3, u7),
            _mm256_permute2f128_ps::<0x31>(u0, u4),
            _mm256_permute2f128_ps::<0x31>(u1, u5),
            _mm256_permute2f128_ps::<0x31>(u2, u6),
            _mm256_permute2f128_ps::<0x31>(u3, u7),
        ];
        for (i, &column) in columns.iter().enumerate() {
            _mm256_storeu_ps(to.add(i * to_pitch), column);
        }
    }
}

/// The forward pass's pixel-major result `yt` (`[out_h·pw, O]`) into the
/// image's planes `y_n` (`[O, out_h, out_w]`), dropping the gap column:
/// 8 channels × 8 pixels a block, the last pixels of a row one at a time.
#[target_feature(enable = "avx2,fma")]
fn to_channel_major(g: &ConvGeometry, yt: &[f32], y_n: &mut [f32], pw: usize) {
    let (o, oh, ow) = (g.out_channels, g.out_h, g.out_w);
    let plane = oh * ow;
    assert!(yt.len() >= oh * pw * o && y_n.len() >= o * plane && o.is_multiple_of(LANES));
    assert!(ow <= pw);
    for y in 0..oh {
        let whole = ow - ow % LANES;
        for co in (0..o).step_by(LANES) {
            for x in (0..whole).step_by(LANES) {
                // SAFETY: pixels x..x + 8 of row y and channels co..co + 8,
                // inside both buffers (the asserts above).
                unsafe {
                    let from = yt.as_ptr().add((y * pw + x) * o + co);
                    let to = y_n.as_mut_ptr().add(co * plane + y * ow + x);
                    transpose_8x8(from, o, to, plane);
                }
            }
            for x in whole..ow {
                for k in co..co + LANES {
                    y_n[k * plane + y * ow + x] = yt[(y * pw + x) * o + k];
                }
            }
        }
    }
}

/// The output gradient `dy_n` (`[O, out_h, out_w]`) as `[out_h·pw, O]`
/// for the weight gradient: each pixel's output channels side by side,
/// rows of `pw` pixels, zeros in the gap columns; 8 × 8 blocks as in
/// [`to_channel_major`], the other way.
#[target_feature(enable = "avx2,fma")]
fn to_pixel_major(g: &ConvGeometry, dy_n: &[f32], dt: &mut [f32], pw: usize) {
    let (o, oh, ow) = (g.out_channels, g.out_h, g.out_w);
    let plane = oh * ow;
    assert!(dt.len() >= oh * pw * o && dy_n.len() >= o * plane && o.is_multiple_of(LANES));
    assert!(ow <= pw);
    for y in 0..oh {
        dt[(y * pw + ow) * o..(y + 1) * pw * o].fill(0.0);
        let whole = ow - ow % LANES;
        for co in (0..o).step_by(LANES) {
            for x in (0..whole).step_by(LANES) {
                // SAFETY: as in `to_channel_major`.
                unsafe {
                    let from = dy_n.as_ptr().add(co * plane + y * ow + x);
                    let to = dt.as_mut_ptr().add((y * pw + x) * o + co);
                    transpose_8x8(from, plane, to, o);
                }
            }
            for x in whole..ow {
                for k in co..co + LANES {
                    dt[(y * pw + x) * o + k] = dy_n[k * plane + y * ow + x];
                }
            }
        }
    }
}

/// Adds image `n`'s weight gradient to `lanes` (`[O/8][C][9][8]`):
/// transposes its output gradient `dy_n` into `dt`, then runs the blocks
/// of `(V, R)` = `blocking` (see [`super::lane_blocking`]) over the padded
/// input `padded`. Call only through [`super::weight_grad_lanes`], which
/// checks the sizes and that the CPU has AVX2 and FMA.
pub(super) fn weight_grad_image(
    g: &ConvGeometry,
    blocking: (usize, usize),
    (padded, walk): (Padded, Walk),
    dy_n: &[f32],
    dt: &mut [f32],
    lanes: &mut [f32],
) {
    // SAFETY: the caller checked for AVX2 and FMA.
    unsafe {
        // The transposed gradient's rows: the walk's, the output's width.
        to_pixel_major(g, dy_n, dt, walk.pixels() / g.out_h);
        match blocking {
            (2, _) => weight_grad_block_avx2::<2, 2>(g, padded, walk, dt, lanes),
            (_, 4) => weight_grad_block_avx2::<1, 4>(g, padded, walk, dt, lanes),
            _ => weight_grad_block_avx2::<1, 3>(g, padded, walk, dt, lanes),
        }
    }
}

// ANCHOR: register_avx2
/// The 8-lane register of the weight gradient's kernel.
impl Register for __m256 {
    const LANES: usize = LANES;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm256_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm256_loadu_ps(from) }
    }

    #[inline(always)]
    unsafe fn broadcast(from: *const f32) -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm256_broadcast_ss(&*from) }
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm256_fmadd_ps(self, b, c) }
    }

    #[inline(always)]
    unsafe fn add_to(self, to: *mut f32) {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm256_storeu_ps(to, _mm256_add_ps(_mm256_loadu_ps(to), self)) }
    }
}

/// [`weight_grad_block`] compiled for AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
fn weight_grad_block_avx2<const V: usize, const R: usize>(
    g: &ConvGeometry,
    padded: Padded,
    walk: Walk,
    dt: &[f32],
    lanes: &mut [f32],
) {
    // SAFETY: this function's target features make `__m256`'s methods
    // valid.
    unsafe { weight_grad_block::<__m256, V, R>(g, padded, walk, dt, lanes) }
}
// ANCHOR_END: register_avx2
