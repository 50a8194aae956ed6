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

// ANCHOR: direct_weight_grad
/// Adds one image's weight gradient to `lanes` (`[O/L][C][9][L]`, `L`
/// lanes a register). The 3·C filter rows (input channel `ci`, tap row
/// `i`) go `R` at a time, and the output channels `L·V` at a time: each
/// block sums, over every pixel `q`, `V` registers of `dY[q]` times the
/// broadcast inputs of its `R` rows' three taps, `3·R·V` FMAs (24 with
/// AVX-512, 12 or 9 with AVX2) for `V + 3·R` loads.
///
/// # Safety
///
/// The CPU must have `S`'s instruction set (see [`Register`]).
#[inline(always)]
pub(super) unsafe fn weight_grad_block<S: Register, const V: usize, const R: usize>(
    g: &ConvGeometry,
    (xp, pw, len): Padded,
    dt: &[f32],
    lanes: &mut [f32],
) {
    let l = S::LANES;
    let (c, o) = (g.in_channels, g.out_channels);
    let flat = g.out_h * pw;
    assert!(xp.len() >= c * len && dt.len() >= flat * o && lanes.len() >= o * c * 9);
    assert!(flat + 2 * pw + 2 <= len && o.is_multiple_of(l * V) && (3 * c).is_multiple_of(R));
    // Where the `L` output channels from `L·block` keep tap `t` of input
    // channel `ci`.
    let at = |block: usize, ci: usize, t: usize| ((block * c + ci) * 9 + t) * l;
    for co in (0..o).step_by(l * V) {
        for first in (0..3 * c).step_by(R) {
            // Row r of this block: filter row i of input channel ci.
            let rows: [(usize, usize); R] =
                std::array::from_fn(|r| ((first + r) / 3, (first + r) % 3));
            // SAFETY: the asserts above bound every load and store: the
            // rows' reads end at `flat + 2·pw + 2`, the gradient's at
            // `flat·o`; the caller vouches for the instruction set.
            unsafe {
                let mut x_r = [xp.as_ptr(); R];
                for (x, &(ci, i)) in x_r.iter_mut().zip(&rows) {
                    *x = xp.as_ptr().add(ci * len + i * pw);
                }
                let d_q = dt.as_ptr().add(co);
                for start in (0..flat).step_by(SUM_PIXELS) {
                    let mut acc = [[[S::zero(); V]; 3]; R];
                    for q in start..(start + SUM_PIXELS).min(flat) {
                        let mut d = [S::zero(); V];
                        for (v, d_v) in d.iter_mut().enumerate() {
                            *d_v = S::load(d_q.add(q * o + l * v));
                        }
                        for (acc_r, x) in acc.iter_mut().zip(x_r) {
                            for (j, acc_j) in acc_r.iter_mut().enumerate() {
                                let input = S::broadcast(x.add(q + j));
                                for (a, &d_v) in acc_j.iter_mut().zip(&d) {
                                    *a = d_v.mul_add(input, *a);
                                }
                            }
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
