//! The lowering's two row kernels, [`super::tap_row`] and
//! [`super::add_taps_to_plane`], in AVX-512 registers for `f32` images up
//! to 32 pixels wide and 16 output pixels wide: the strided layers of a
//! ResNet on 28 × 28 or 32 × 32 images, and every layer whose weight
//! gradient goes through the patch matrix.
//!
//! A tap of a stride-2 convolution reads every other value of an input
//! row; the portable code picks them one at a time, and at stride 1 it
//! calls `memcpy` for rows of 7 or 14 values. Here a row is loaded into
//! two registers and one permutation ([`Gather`]) picks the tap's values
//! for the whole output row, zeros where the tap falls in the padding;
//! one masked store writes the row of the patch matrix. Adding the rows
//! back (`col2im`, for the input gradient) is the same permutation run
//! backwards: each lane of the input row takes the output pixel that
//! read it, and a masked addition leaves the other lanes untouched. Each
//! value sees the same additions in the same order as in the portable
//! code, so the results are the same bits.

use super::super::registers::{
    available, first_lanes, lane_numbers, load_lanes, load_row, store_lanes, Gather,
};
use super::ConvGeometry;
use std::arch::x86_64::*;

/// Whether rows of this geometry fit: input rows of at most 32 values (two
/// registers) and output rows of at most 16 (one).
fn fits(g: &ConvGeometry) -> bool {
    g.in_w <= 32 && g.out_w <= 16
}

/// [`super::tap_row`] in registers, for strides of 2 or more; `false`
/// (and nothing written) where this CPU, the stride or these rows do not
/// fit.
pub(super) fn tap_row(g: &ConvGeometry, src: &[f32], tap: (usize, usize), dst: &mut [f32]) -> bool {
    // At stride 1 a row is one copy, and `memcpy` was as fast: the 64-
    // channel 7 × 7 layer's weight gradient through the per-image lowering
    // took 4.3–4.5 ms either way. (ResNet14's stride-1 layers take the
    // padded rows or Winograd's method instead.)
    if !available() || !fits(g) || g.stride.1 == 1 {
        return false;
    }
    // SAFETY: AVX-512 was detected above.
    unsafe { tap_row_avx512(g, src, tap, dst) };
    true
}

#[target_feature(enable = "avx512f")]
fn tap_row_avx512(g: &ConvGeometry, src: &[f32], (i, j): (usize, usize), dst: &mut [f32]) {
    let (sh, sw) = g.stride;
    let (dh, dw) = g.dilation;
    let (h, w) = (g.in_h, g.in_w);
    // Output column ow reads input column ow·sw + off_w.
    let off_w = (j * dw) as isize - g.pad_begin.1 as isize;
    let columns = Gather::new(off_w, sw as isize, w, g.out_w);
    for (oh, dst_row) in dst.chunks_exact_mut(g.out_w).enumerate() {
        let ih = (oh * sh + i * dh) as isize - g.pad_begin.0 as isize;
        let row = if (0..h as isize).contains(&ih) {
            columns.apply(load_row(&src[ih as usize * w..][..w]))
        } else {
            _mm512_setzero_ps()
        };
        store_lanes(dst_row, row);
    }
}

/// [`super::add_taps_to_plane`] in registers; `false` (and nothing
/// written) where this CPU or these rows do not fit.
pub(super) fn add_taps_to_plane(
    g: &ConvGeometry,
    cols: &[f32],
    (ncols, first): (usize, usize),
    ch: usize,
    dst: &mut [f32],
) -> bool {
    if !available() || !fits(g) {
        return false;
    }
    // SAFETY: AVX-512 was detected above.
    unsafe { add_taps_avx512(g, cols, (ncols, first), ch, dst) };
    true
}

/// The inverse of a tap's [`Gather`] for the 16 input lanes from `base`
/// of a row: lane `q` takes the output pixel `ow` that read input column
/// `base + q` (where `base + q = ow·sw + off_w`), and the mask holds the
/// lanes that one did. In registers for strides that are powers of two
/// (division is a shift), with a loop for others.
#[inline]
#[target_feature(enable = "avx512f")]
fn spread(base: usize, off_w: isize, sw: usize, out_w: usize) -> (__m512i, __mmask16) {
    let first = base as isize - off_w;
    if sw.is_power_of_two() {
        let from = _mm512_add_epi32(lane_numbers(), _mm512_set1_epi32(first as i32));
        let ow = _mm512_srlv_epi32(from, _mm512_set1_epi32(sw.trailing_zeros() as i32));
        let on_stride = _mm512_testn_epi32_mask(from, _mm512_set1_epi32(sw as i32 - 1));
        let mask = _mm512_cmpge_epi32_mask(from, _mm512_setzero_si512())
            & on_stride
            & _mm512_cmplt_epi32_mask(ow, _mm512_set1_epi32(out_w as i32));
        return (ow, mask);
    }
    let mut index = [0i32; 16];
    let mut mask = 0u16;
    for (q, slot) in index.iter_mut().enumerate() {
        let from = first + q as isize;
        if from >= 0 && (from as usize).is_multiple_of(sw) && (from as usize / sw) < out_w {
            *slot = (from as usize / sw) as i32;
            mask |= 1 << q;
        }
    }
    // SAFETY: an unaligned load of 16 `i32` from a local array.
    (unsafe { _mm512_loadu_si512(index.as_ptr().cast()) }, mask)
}

#[target_feature(enable = "avx512f")]
fn add_taps_avx512(
    g: &ConvGeometry,
    cols: &[f32],
    (ncols, first): (usize, usize),
    ch: usize,
    dst: &mut [f32],
) {
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    let (dh, dw) = g.dilation;
    let (h, w, out_w) = (g.in_h, g.in_w, g.out_w);
    let split = w.min(16);
    let (lo_lanes, hi_lanes) = (first_lanes(split), first_lanes(w - split));
    for i in 0..kh {
        for j in 0..kw {
            let r = (ch * kh + i) * kw + j;
            let src = &cols[r * ncols + first..][..g.out_h * out_w];
            let off_w = (j * dw) as isize - g.pad_begin.1 as isize;
            let (lo_index, lo_mask) = spread(0, off_w, sw, out_w);
            let (hi_index, hi_mask) = spread(16, off_w, sw, out_w);
            let (lo_mask, hi_mask) = (lo_mask & lo_lanes, hi_mask & hi_lanes);
            if lo_mask == 0 && hi_mask == 0 {
                continue; // this tap reads only padding
            }
            for (oh, src_row) in src.chunks_exact(out_w).enumerate() {
                let ih = (oh * sh + i * dh) as isize - g.pad_begin.0 as isize;
                if !(0..h as isize).contains(&ih) {
                    continue;
                }
                let taps = load_lanes(src_row);
                let (lo, hi) = dst[ih as usize * w..][..w].split_at_mut(split);
                let d_lo = load_lanes(lo);
                let d_lo =
                    _mm512_mask_add_ps(d_lo, lo_mask, d_lo, _mm512_permutexvar_ps(lo_index, taps));
                store_lanes(lo, d_lo);
                if !hi.is_empty() {
                    let d_hi = load_lanes(hi);
                    let d_hi = _mm512_mask_add_ps(
                        d_hi,
                        hi_mask,
                        d_hi,
                        _mm512_permutexvar_ps(hi_index, taps),
                    );
                    store_lanes(hi, d_hi);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{portable_add_taps_to_plane, portable_tap_row};
    use super::ConvGeometry;
    use crate::conv::registers::testing::{bits, values};
    use crate::conv::Conv2dOptions;

    #[test]
    fn the_registers_match_the_portable_row_kernels_bit_for_bit() {
        if !crate::conv::registers::available() {
            println!("skipped: this CPU has no AVX-512; only the portable kernels run here");
            return;
        }
        // (size, kernel, stride, padding, dilation): ResNet14's strided
        // layers, stride-1 lowering, wider strides, dilation, no padding,
        // and sizes the registers leave to the portable code.
        let cases = [
            (28, 3, 2, 1, 1),
            (14, 3, 2, 1, 1),
            (28, 1, 2, 0, 1),
            (14, 3, 1, 1, 1),
            (7, 3, 1, 1, 1),
            (32, 3, 2, 1, 1),
            (31, 5, 3, 2, 1),
            (20, 3, 2, 2, 3),
            (9, 4, 1, 0, 1),
            (5, 3, 1, 3, 2),
            (28, 3, 1, 1, 1),
            (40, 3, 2, 1, 1),
        ];
        for (case, &(size, k, s, p, d)) in cases.iter().enumerate() {
            let opts = Conv2dOptions::default().stride(s).padding(p).dilation(d);
            let g = ConvGeometry::conv2d(&[1, 2, size, size], &[3, 2, k, k], None, &opts).unwrap();
            let fits = super::fits(&g);
            let tap_fits = fits && s > 1;
            let (hw, plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
            let x = values(2 * hw, case as u64);
            let rows = 2 * k * k;
            // The patch matrix of both channels, tap by tap; NaN marks
            // values that must not be written.
            let (mut fast, mut portable) =
                (vec![f32::NAN; rows * plane], vec![f32::NAN; rows * plane]);
            for r in 0..rows {
                let (ch, i, j) = (r / (k * k), r / k % k, r % k);
                let src = &x[ch * hw..][..hw];
                assert_eq!(
                    super::tap_row(&g, src, (i, j), &mut fast[r * plane..][..plane]),
                    tap_fits
                );
                portable_tap_row(&g, src, (i, j), &mut portable[r * plane..][..plane]);
            }
            if tap_fits {
                assert_eq!(bits(&fast), bits(&portable), "tap rows, {g:?}");
            }
            // Adding them back onto planes that already hold values.
            let cols = values(rows * plane, 50 + case as u64);
            for ch in 0..2 {
                let mut fast = values(hw, 100 + ch as u64);
                let mut portable = fast.clone();
                let added = super::add_taps_to_plane(&g, &cols, (plane, 0), ch, &mut fast);
                assert_eq!(added, fits);
                portable_add_taps_to_plane(&g, &cols, plane, 0, ch, &mut portable);
                if fits {
                    assert_eq!(bits(&fast), bits(&portable), "adding taps back, {g:?}");
                }
            }
        }
    }
}
