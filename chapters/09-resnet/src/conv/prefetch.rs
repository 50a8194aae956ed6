//! Software prefetching: asking the memory system for data a little before
//! a loop reaches it.
//!
//! The convolution kernels read one channel plane after another, and on
//! the 2-core EPYC of chapter 09 a ResNet's activations (6.4 MB per
//! 28 × 28 tensor of 16 channels at batch 128) come from main memory, not
//! from the caches. The hardware prefetcher follows a single stream well,
//! but the kernels interleave several streams (a plane in, 16 rows of
//! Winograd products out) and stall on each new plane. Asking for the next
//! plane while this one is worked on hides most of that wait: see the
//! measurements in book chapter 09. A prefetch is only a hint: it never
//! faults and changes no result.

// ANCHOR: prefetch
/// Asks for the cache lines of `len` values from `start` (which need not
/// be inside any allocation: a prefetch of any address is harmless), to be
/// read or written soon. A no-op on other architectures than x86-64.
///
/// For lines about to be written there is a hint with write intent
/// (`_MM_HINT_ET0`), but without the `prfchw` target feature, which this
/// build does not enable, LLVM compiles it to the same `prefetcht0` as
/// this; so one function serves both.
#[inline(always)]
pub(crate) fn prefetch_lines<T>(start: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let bytes = len * std::mem::size_of::<T>();
        let start = start.cast::<i8>();
        for line in (0..bytes).step_by(64) {
            // SAFETY: SSE is part of every x86-64 CPU, and a prefetch
            // reads nothing the program can see.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}
// ANCHOR_END: prefetch
