//! The AVX-512 registers the convolution kernels use for images up to 32
//! pixels wide (MNIST's 28 × 28 and its halvings, CIFAR's 32 × 32), where
//! a row of an image fits in two 16-lane registers and a row of output in
//! one or two.
//!
//! The portable kernels work a row at a time, in loops of 7 to 28 values:
//! too short for the compiler's vector loops, which spend most of their
//! time in their scalar remainders, and for calls such as `memcpy`. Held
//! in registers, a whole row is loaded with a masked load, rearranged with
//! one permutation instruction (`Gather`: every other value for a
//! stride-2 tap, the four columns of each Winograd tile) and stored with a
//! masked store. These helpers hold those steps; `winograd/avx512.rs` and
//! `im2col/avx512.rs` hold the kernels built from them.
//!
//! They run where the CPU has AVX-512 (`avx512f`) and
//! [`set_avx512_enabled`] has not turned them off; elsewhere the portable
//! kernels run, with the same results bit for bit.

use std::sync::atomic::{AtomicBool, Ordering};

static ENABLED: AtomicBool = AtomicBool::new(true);

/// Lets the CPU convolution kernels use AVX-512 registers where the CPU
/// has them and the images are at most 32 pixels wide (`true`, the
/// default), or makes them use their portable loops everywhere (`false`),
/// for every thread of the process: for measuring one against the other.
/// Both give the same bits.
pub fn set_avx512_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Whether the AVX-512 kernels run: this CPU has AVX-512 (asked once per
/// process) and [`set_avx512_enabled`] has not turned them off.
#[cfg(target_arch = "x86_64")]
pub(crate) fn available() -> bool {
    use std::sync::OnceLock;
    static AVX512: OnceLock<bool> = OnceLock::new();
    ENABLED.load(Ordering::Relaxed)
        && *AVX512.get_or_init(|| std::is_x86_feature_detected!("avx512f"))
}

#[cfg(target_arch = "x86_64")]
pub(crate) use x86::*;

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    /// `0, 1, …, 15`, a lane's own number.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn lane_numbers() -> __m512i {
        _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)
    }

    /// A mask of the first `n` lanes (`n ≤ 16`).
    pub(crate) fn first_lanes(n: usize) -> __mmask16 {
        ((1u32 << n) - 1) as __mmask16
    }

    /// One row of at most 32 values as two registers (lanes past `row.len()`
    /// are zero).
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn load_row(row: &[f32]) -> (__m512, __m512) {
        let (lo, hi) = row.split_at(row.len().min(16));
        // SAFETY: each masked load reads only the first `len` lanes, all
        // inside its slice.
        unsafe {
            (
                _mm512_maskz_loadu_ps(first_lanes(lo.len()), lo.as_ptr()),
                _mm512_maskz_loadu_ps(first_lanes(hi.len()), hi.as_ptr()),
            )
        }
    }

    /// Stores the first `dst.len()` (at most 16) lanes of `value` to `dst`.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn store_lanes(dst: &mut [f32], value: __m512) {
        // SAFETY: the masked store writes only the first `len` lanes, all
        // inside the slice.
        unsafe { _mm512_mask_storeu_ps(dst.as_mut_ptr(), first_lanes(dst.len()), value) }
    }

    /// The first `dst.len()` (at most 16) values of `src` as a register.
    #[inline]
    #[target_feature(enable = "avx512f")]
    pub(crate) fn load_lanes(src: &[f32]) -> __m512 {
        // SAFETY: as in `load_row`.
        unsafe { _mm512_maskz_loadu_ps(first_lanes(src.len()), src.as_ptr()) }
    }

    /// A gather of up to 16 values from a row held in two registers: lane `t`
    /// takes the row's value at `first + step·t`, or zero where that falls
    /// outside `0..w` or `t ≥ lanes`. One instruction (`vpermt2ps`) per use.
    #[derive(Clone, Copy)]
    pub(crate) struct Gather {
        index: __m512i,
        mask: __mmask16,
    }

    impl Gather {
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(crate) fn new(first: isize, step: isize, w: usize, lanes: usize) -> Self {
            // Computed in registers too (a handful of instructions): the
            // lowering builds one per tap and image.
            let at = _mm512_add_epi32(
                _mm512_set1_epi32(first as i32),
                _mm512_mullo_epi32(lane_numbers(), _mm512_set1_epi32(step as i32)),
            );
            let inside = _mm512_cmpge_epi32_mask(at, _mm512_setzero_si512())
                & _mm512_cmplt_epi32_mask(at, _mm512_set1_epi32(w as i32));
            // Lanes outside the row keep an index too, but their mask bit
            // is clear, so the permutation zeroes them.
            Gather {
                index: at,
                mask: inside & first_lanes(lanes),
            }
        }

        /// The lanes that take a value from the row.
        pub(crate) fn mask(self) -> __mmask16 {
            self.mask
        }

        /// The gathered register.
        #[inline]
        #[target_feature(enable = "avx512f")]
        pub(crate) fn apply(self, (lo, hi): (__m512, __m512)) -> __m512 {
            _mm512_maskz_permutex2var_ps(self.mask, lo, self.index, hi)
        }
    }
}

/// Values for the tests that hold the register kernels to the portable
/// ones bit for bit.
#[cfg(test)]
pub(crate) mod testing {
    /// `n` values of a fixed pseudo-random sequence in about `[-1, 1)`,
    /// with zeros of both signs among them (every 13th value from the 4th,
    /// and from the 9th): the sign of a zero is where two ways of adding
    /// can differ.
    pub(crate) fn values(n: usize, seed: u64) -> Vec<f32> {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                match i % 13 {
                    3 => 0.0,
                    8 => -0.0,
                    _ => (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0,
                }
            })
            .collect()
    }

    /// The bits of each value, for comparisons where `-0.0 != 0.0` and
    /// NaN equals itself.
    pub(crate) fn bits(v: &[f32]) -> Vec<u32> {
        v.iter().map(|x| x.to_bits()).collect()
    }
}
