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
/// read soon. A no-op on other architectures than x86-64.
#[inline(always)]
pub(crate) fn prefetch_read<T>(start: *const T, len: usize) {
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

/// Like [`prefetch_read`], for values about to be written: the lines
/// arrive ready to be modified (`prefetchw`), sparing the write a second
/// trip to memory.
#[inline(always)]
pub(crate) fn prefetch_write<T>(start: *const T, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_ET0};
        let bytes = len * std::mem::size_of::<T>();
        let start = start.cast::<i8>();
        for line in (0..bytes).step_by(64) {
            // SAFETY: as in `prefetch_read`.
            unsafe { _mm_prefetch::<_MM_HINT_ET0>(start.wrapping_add(line)) };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}
