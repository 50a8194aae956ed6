//! The direct kernels in AVX-512 registers (see the parent module): 32
//! registers of 16 lanes, with masked loads for the padding.

use super::super::registers::{lane_numbers, store_lanes};
use super::weight_grad::{weight_grad_block, Register, Walk};
use super::{ConvGeometry, Padded};
use std::arch::x86_64::*;

/// Output channels a block of the forward kernel holds: one broadcast per
/// channel and step.
pub(super) const CHANNELS: usize = 8;

/// Registers of pixels a block of the forward kernel holds.
const PIXEL_REGISTERS: usize = 3;

// ANCHOR: direct_forward
/// `y = conv(x, w)` for every image (`x`: `[N, C, H, W]`, `y`: `[N, O,
/// out_h, W]`), `w` arranged by [`super::arrange_filters`]. Images run on
/// the cores in parallel. Call only through [`super::convolve`], which
/// checks the sizes and that the CPU has AVX-512.
pub(super) fn convolve(g: &ConvGeometry, x: &[f32], w: &[f32], y: &mut [f32]) {
    use rayon::prelude::*;
    let ol = g.out_channels * g.out_h * g.out_w;
    let chw = g.in_channels * g.in_h * g.in_w;
    let masks = tap_masks(g);
    y.par_chunks_mut(ol).enumerate().for_each(|(n, y_n)| {
        // SAFETY: the caller checked for AVX-512.
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

/// Adds image `n`'s weight gradient to `lanes` (`[O/16][C][9][16]`):
/// transposes its output gradient `dy_n` into `dt`, then runs the blocks
/// of `(V, R)` = `blocking` over the padded input `padded`. Call only
/// through [`super::weight_grad_lanes`], which checks the sizes and that
/// the CPU has AVX-512.
pub(super) fn weight_grad_image(
    g: &ConvGeometry,
    blocking: (usize, usize),
    (padded, walk): (Padded, Walk),
    dy_n: &[f32],
    dt: &mut [f32],
    lanes: &mut [f32],
) {
    // SAFETY: the caller checked for AVX-512.
    unsafe {
        transpose_grad(g, dy_n, dt, walk.pixels() / g.out_h);
        match blocking {
            (4, _) => weight_grad_block_avx512::<4, 2>(g, padded, walk, dt, lanes),
            (2, _) => weight_grad_block_avx512::<2, 4>(g, padded, walk, dt, lanes),
            _ => weight_grad_block_avx512::<1, 8>(g, padded, walk, dt, lanes),
        }
    }
}

/// `dy_n` (`[O, out_h, out_w]`) as `[out_h·pw, O]`: each pixel's output
/// channels side by side (one gather of 16 channels a step), rows of `pw`
/// pixels, zeros in any columns past `out_w` (the weight gradient's walk
/// takes `pw = out_w`).
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

/// The 16-lane register of the weight gradient's kernel.
impl Register for __m512 {
    const LANES: usize = 16;

    #[inline(always)]
    unsafe fn zero() -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm512_setzero_ps() }
    }

    #[inline(always)]
    unsafe fn load(from: *const f32) -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm512_loadu_ps(from) }
    }

    #[inline(always)]
    unsafe fn broadcast(from: *const f32) -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm512_set1_ps(*from) }
    }

    #[inline(always)]
    unsafe fn mul_add(self, b: Self, c: Self) -> Self {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm512_fmadd_ps(self, b, c) }
    }

    #[inline(always)]
    unsafe fn add_to(self, to: *mut f32) {
        // SAFETY: the caller's (see `Register`).
        unsafe { _mm512_storeu_ps(to, _mm512_add_ps(_mm512_loadu_ps(to), self)) }
    }
}

/// [`weight_grad_block`] compiled for AVX-512.
#[target_feature(enable = "avx512f")]
fn weight_grad_block_avx512<const V: usize, const R: usize>(
    g: &ConvGeometry,
    padded: Padded,
    walk: Walk,
    dt: &[f32],
    lanes: &mut [f32],
) {
    // SAFETY: this function's target features make `__m512`'s methods
    // valid.
    unsafe { weight_grad_block::<__m512, V, R>(g, padded, walk, dt, lanes) }
}
