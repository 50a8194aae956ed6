//! The weight gradient's kernel, written once for both register widths:
//! output channels in the lanes (see the parent module). `avx512.rs` and
//! `avx2.rs` implement [`Register`] for their vector types and compile
//! [`weight_grad_block`] inside a function with their target features, so
//! that every method below becomes one instruction.

use super::{ConvGeometry, Padded, SUM_PIXELS};

/// A vector register of `f32` lanes, as the weight gradient uses it.
///
/// # Safety
///
/// Every method may be called only where the CPU has the register's
/// instruction set (the caller runs with those target features), and the
/// pointers must be valid for `LANES` values (one value for `broadcast`).
pub(super) trait Register: Copy {
    /// `f32` values in one register.
    const LANES: usize;
    /// All lanes zero.
    unsafe fn zero() -> Self;
    /// `LANES` values from `from` (no alignment needed).
    unsafe fn load(from: *const f32) -> Self;
    /// The value at `from` in every lane.
    unsafe fn broadcast(from: *const f32) -> Self;
    /// `self · b + c`, rounded once (a fused multiply-add).
    unsafe fn mul_add(self, b: Self, c: Self) -> Self;
    /// Adds the lanes to the `LANES` values at `to`.
    unsafe fn add_to(self, to: *mut f32);
}

/// The order in which the weight gradient's kernel visits one image's
/// output pixels: `rows` rows of `width` pixels, with pixel `(r, x)`'s
/// input `r·row_step + x·step` values on from the start of each filter
/// row's plane, and its output gradient at row `r·width + x` of the
/// transposed `dY`.
#[derive(Clone, Copy, Debug)]
pub(super) struct Walk {
    pub(super) rows: usize,
    pub(super) width: usize,
    pub(super) step: usize,
    pub(super) row_step: usize,
}

impl Walk {
    /// The walk for `g`, whose image is padded with pitch `pw`: `out_h`
    /// rows of `out_w` pixels, `stride` input columns apart, each `stride`
    /// input rows below the last. (With stride 1 the walk once ran over
    /// all `out_h·pw` pixels of the padded pitch as one row, the gap
    /// columns' gradient zero: fewer row ends, but a gap pixel in every
    /// `pw`, 2 in 9 at 7 × 7. Skipping them measured faster on AVX2.)
    pub(super) fn new(g: &ConvGeometry, pw: usize) -> Walk {
        let (sy, sx) = g.stride;
        Walk {
            rows: g.out_h,
            width: g.out_w,
            step: sx,
            row_step: sy * pw,
        }
    }

    /// Pixels visited.
    pub(super) fn pixels(&self) -> usize {
        self.rows * self.width
    }

    /// One past the farthest input a tap reads, from the start of a plane
    /// (tap row `i ≤ 2` and column `j ≤ 2` included).
    fn reach(&self, pw: usize) -> usize {
        (self.rows - 1) * self.row_step + (self.width - 1) * self.step + 2 * pw + 3
    }
}

// ANCHOR: direct_weight_grad
/// Adds one image's weight gradient to `lanes` (`[O/L][C][9][L]`, `L`
/// lanes a register). The 3·C filter rows (input channel `ci`, tap row
/// `i`) go `R` at a time, and the output channels `L·V` at a time: each
/// block sums, over every pixel `q`, `V` registers of `dY[q]` times the
/// broadcast inputs of its `R` rows' three taps, `3·R·V` FMAs (24 with
/// AVX-512, 12 or 9 with AVX2) for `V + 3·R` loads. The pixels come in the
/// order of `walk`.
///
/// # Safety
///
/// The CPU must have `S`'s instruction set (see [`Register`]).
#[inline(always)]
pub(super) unsafe fn weight_grad_block<S: Register, const V: usize, const R: usize>(
    g: &ConvGeometry,
    (xp, pw, len): Padded,
    walk: Walk,
    dt: &[f32],
    lanes: &mut [f32],
) {
    let l = S::LANES;
    let (c, o) = (g.in_channels, g.out_channels);
    let pixels = walk.pixels();
    assert!(xp.len() >= c * len && dt.len() >= pixels * o && lanes.len() >= o * c * 9);
    assert!(walk.width > 0 && walk.reach(pw) <= len);
    assert!(o.is_multiple_of(l * V) && (3 * c).is_multiple_of(R));
    // Where the `L` output channels from `L·block` keep tap `t` of input
    // channel `ci`.
    let at = |block: usize, ci: usize, t: usize| ((block * c + ci) * 9 + t) * l;
    for co in (0..o).step_by(l * V) {
        for first in (0..3 * c).step_by(R) {
            // Row r of this block: filter row i of input channel ci.
            let rows: [(usize, usize); R] =
                std::array::from_fn(|r| ((first + r) / 3, (first + r) % 3));
            // SAFETY: the asserts above bound every load and store: the
            // rows' reads end before `walk.reach(pw)`, the gradient's at
            // `pixels·o`; the caller vouches for the instruction set.
            unsafe {
                let mut x_r = [xp.as_ptr(); R];
                for (x, &(ci, i)) in x_r.iter_mut().zip(&rows) {
                    *x = xp.as_ptr().add(ci * len + i * pw);
                }
                let d_q = dt.as_ptr().add(co);
                for start in (0..pixels).step_by(SUM_PIXELS) {
                    let mut acc = [[[S::zero(); V]; 3]; R];
                    // Pixel q's row and column, and its input's offset.
                    let (mut row, mut column) = (start / walk.width, start % walk.width);
                    let mut at_x = row * walk.row_step + column * walk.step;
                    for q in start..(start + SUM_PIXELS).min(pixels) {
                        let mut d = [S::zero(); V];
                        for (v, d_v) in d.iter_mut().enumerate() {
                            *d_v = S::load(d_q.add(q * o + l * v));
                        }
                        for (acc_r, x) in acc.iter_mut().zip(x_r) {
                            for (j, acc_j) in acc_r.iter_mut().enumerate() {
                                let input = S::broadcast(x.add(at_x + j));
                                for (a, &d_v) in acc_j.iter_mut().zip(&d) {
                                    *a = d_v.mul_add(input, *a);
                                }
                            }
                        }
                        column += 1;
                        at_x += walk.step;
                        if column == walk.width {
                            (row, column) = (row + 1, 0);
                            at_x = row * walk.row_step;
                        }
                    }
                    for (acc_r, &(ci, i)) in acc.iter().zip(&rows) {
                        for (j, acc_j) in acc_r.iter().enumerate() {
                            for (v, &value) in acc_j.iter().enumerate() {
                                value.add_to(lanes.as_mut_ptr().add(at(co / l + v, ci, 3 * i + j)));
                            }
                        }
                    }
                }
            }
        }
    }
}
// ANCHOR_END: direct_weight_grad
