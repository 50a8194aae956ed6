//! A caching allocator for device memory.
//!
//! `cuMemAlloc` and `cuMemFree` are slow (tens of microseconds, and a free
//! waits for the device), while a training step allocates and frees the
//! same few hundred tensors of the same sizes at every step. So, like
//! PyTorch's CUDA caching allocator, we ask the device for memory only
//! when we have nothing suitable, and a freed block goes into a cache,
//! not back to the device: the next request of its size class takes it.
//! After the first step, a training loop allocates nothing from the device.
//!
//! Reusing a freed block at once is safe because every kernel and copy of
//! a device runs on one stream, in order: work queued after the block is
//! handed out again runs after the work that used it before.
//!
//! The cache holds memory that the device could give to someone else, so
//! [`CachingAllocator::empty_cache`] returns it, and an allocation that
//! fails for lack of memory empties the cache and tries once more before
//! it reports "out of memory".

use crate::runtime::{DevicePtr, Runtime};
use chapter_02::{Error, Result};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

// ANCHOR: size_classes
/// Requests up to this size are "small": rounded to [`SMALL_GRANULE`].
pub const SMALL_LIMIT: usize = 1 << 20;
/// Small requests are rounded up to a multiple of 512 bytes, so that
/// sizes a few elements apart share a class and reuse each other's blocks:
/// a tensor of 1000 `f32`s (4000 bytes) and one of 1020 (4080 bytes) both
/// take a 4096-byte block. The waste is under 512 bytes a block, small
/// next to what a block costs the driver to track. (Each block is its own
/// device allocation, which the driver aligns to 256 bytes or more: enough
/// for any vector load.)
pub const SMALL_GRANULE: usize = 512;
/// Large requests are rounded up to one of `LARGE_STEPS` evenly spaced
/// sizes in each power of two: between 4 MiB and 8 MiB the classes are
/// 5, 6, 7 and 8 MiB. A fixed granule would either waste a lot on small
/// "large" blocks or make so many classes that a block seldom finds a
/// second user; steps that grow with the size keep the waste under 25%
/// (about 8% on average) with only four classes per doubling.
pub const LARGE_STEPS: usize = 4;

/// The size class of a request of `bytes` bytes: the size of the block
/// that serves it.
///
/// `bytes ≤ 1 MiB`: `⌈bytes / 512⌉ · 512`.
/// `bytes > 1 MiB`: with `2^k < bytes ≤ 2^(k+1)`, the step is
/// `2^k / LARGE_STEPS` and the class is `⌈bytes / step⌉ · step`.
pub fn size_class(bytes: usize) -> usize {
    if bytes <= SMALL_LIMIT {
        return bytes.max(1).div_ceil(SMALL_GRANULE) * SMALL_GRANULE;
    }
    // 2^k: the largest power of two strictly below `bytes`.
    let below = 1usize << (usize::BITS - 1 - (bytes - 1).leading_zeros());
    let step = below / LARGE_STEPS;
    bytes.div_ceil(step) * step
}
// ANCHOR_END: size_classes

/// What the allocator has done. Bytes are counted in whole blocks (a
/// request of 1000 bytes holds a block of 1024, and counts 1024), since
/// that is what the device has given up.
///
/// `reserved_bytes` is what the device has given us: blocks in use
/// (`allocated_bytes`) plus blocks in the cache.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryStats {
    /// Bytes of blocks handed out and not yet dropped.
    pub allocated_bytes: usize,
    /// Bytes held from the device: allocated plus cached.
    pub reserved_bytes: usize,
    /// The most `allocated_bytes` has been since the last reset.
    pub peak_allocated_bytes: usize,
    /// The most `reserved_bytes` has been since the last reset.
    pub peak_reserved_bytes: usize,
    /// Allocations that went to the device (cache misses).
    pub device_allocs: usize,
    /// Blocks returned to the device (by `empty_cache` or an OOM retry).
    pub device_frees: usize,
    /// Requests served from the cache.
    pub cache_hits: usize,
}

/// The allocator's state, behind one lock.
#[derive(Default)]
struct State {
    /// Free blocks by size class.
    cache: BTreeMap<usize, Vec<DevicePtr>>,
    stats: MemoryStats,
}

impl State {
    fn grow_allocated(&mut self, class: usize) {
        let s = &mut self.stats;
        s.allocated_bytes += class;
        s.peak_allocated_bytes = s.peak_allocated_bytes.max(s.allocated_bytes);
    }
    fn grow_reserved(&mut self, class: usize) {
        let s = &mut self.stats;
        s.reserved_bytes += class;
        s.peak_reserved_bytes = s.peak_reserved_bytes.max(s.reserved_bytes);
    }
}

struct Inner<R: Runtime> {
    runtime: Arc<R>,
    state: Mutex<State>,
}

impl<R: Runtime> Inner<R> {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the counters torn
        // (each update is a few additions), so a poisoned lock is usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Frees every cached block; the first error (if any) is returned
    /// after trying them all.
    fn empty_cache_locked(&self, state: &mut State) -> Result<()> {
        let mut first_err = None;
        for (class, ptrs) in std::mem::take(&mut state.cache) {
            for ptr in ptrs {
                state.stats.reserved_bytes -= class;
                match self.runtime.free(ptr) {
                    Ok(()) => state.stats.device_frees += 1,
                    Err(e) => {
                        first_err.get_or_insert(e);
                    }
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

impl<R: Runtime> Drop for Inner<R> {
    fn drop(&mut self) {
        // Every buffer holds an `Arc` of this, so none is alive: the cache
        // holds all the memory we have. Errors cannot be reported from a drop.
        let mut state = std::mem::take(&mut *self.lock());
        let _ = self.empty_cache_locked(&mut state);
    }
}

/// Is this error the runtime's "out of memory"? Runtimes say so in the
/// message of an [`Error::Device`] (the driver's reads
/// `out of memory (CUDA_ERROR_OUT_OF_MEMORY)`).
pub fn is_out_of_memory(e: &Error) -> bool {
    match e {
        Error::Device { msg, .. } => {
            let m = msg.to_ascii_lowercase();
            m.contains("out of memory") || m.contains("out_of_memory")
        }
        _ => false,
    }
}

// ANCHOR: allocator
/// Device memory in blocks of [`size_class`] sizes, with freed blocks kept
/// for reuse. Cloning is cheap and shares the cache.
pub struct CachingAllocator<R: Runtime> {
    inner: Arc<Inner<R>>,
}

impl<R: Runtime> Clone for CachingAllocator<R> {
    fn clone(&self) -> Self {
        CachingAllocator {
            inner: self.inner.clone(),
        }
    }
}

impl<R: Runtime> fmt::Debug for CachingAllocator<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachingAllocator")
            .field("runtime", &self.inner.runtime.describe())
            .field("stats", &self.stats())
            .finish()
    }
}

impl<R: Runtime> CachingAllocator<R> {
    pub fn new(runtime: Arc<R>) -> Self {
        CachingAllocator {
            inner: Arc::new(Inner {
                runtime,
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The runtime the memory comes from.
    pub fn runtime(&self) -> &Arc<R> {
        &self.inner.runtime
    }

    /// A block of at least `bytes` bytes (uninitialised). From the cache if
    /// one of its size class is free; else from the device; if the device
    /// is out of memory, the cache is emptied and the device asked once
    /// more. Zero bytes allocate nothing.
    pub fn alloc(&self, bytes: usize) -> Result<DeviceBuffer<R>> {
        if bytes == 0 {
            return Ok(DeviceBuffer {
                ptr: 0,
                len: 0,
                class: 0,
                owner: self.inner.clone(),
            });
        }
        let class = size_class(bytes);
        let mut state = self.inner.lock();
        let cached = state.cache.get_mut(&class).and_then(|v| v.pop());
        let ptr = match cached {
            Some(ptr) => {
                state.stats.cache_hits += 1;
                ptr
            }
            None => self.alloc_from_device(&mut state, bytes, class)?,
        };
        state.grow_allocated(class);
        Ok(DeviceBuffer {
            ptr,
            len: bytes,
            class,
            owner: self.inner.clone(),
        })
    }

    /// A cache miss: a fresh block from the runtime, retrying once after
    /// emptying the cache when the device is out of memory.
    fn alloc_from_device(
        &self,
        state: &mut State,
        bytes: usize,
        class: usize,
    ) -> Result<DevicePtr> {
        let rt = &self.inner.runtime;
        let ptr = match rt.alloc(class) {
            Ok(p) => p,
            Err(e) if is_out_of_memory(&e) && !state.cache.is_empty() => {
                self.inner.empty_cache_locked(state)?;
                rt.alloc(class)
                    .map_err(|e| self.oom(state, bytes, class, e))?
            }
            Err(e) if is_out_of_memory(&e) => return Err(self.oom(state, bytes, class, e)),
            Err(e) => return Err(e),
        };
        state.stats.device_allocs += 1;
        state.grow_reserved(class);
        Ok(ptr)
    }

    fn oom(&self, state: &State, bytes: usize, class: usize, cause: Error) -> Error {
        if !is_out_of_memory(&cause) {
            return cause;
        }
        // The runtime's own name for the device (`cuda:0`).
        let (device, cause) = match cause {
            Error::Device { device, msg, .. } => (device, msg),
            other => (self.inner.runtime.describe(), other.to_string()),
        };
        Error::device(
            "alloc",
            device,
            format!(
                "out of memory: tried to allocate {} ({bytes} bytes, block of {class}) with {} \
                 allocated and {} reserved, with nothing left in the cache ({cause})",
                human_bytes(bytes),
                human_bytes(state.stats.allocated_bytes),
                human_bytes(state.stats.reserved_bytes),
            ),
        )
    }

    /// Returns every cached (free) block to the device. Blocks in use are
    /// not touched.
    pub fn empty_cache(&self) -> Result<()> {
        let mut state = self.inner.lock();
        self.inner.empty_cache_locked(&mut state)
    }

    /// The counters.
    pub fn stats(&self) -> MemoryStats {
        self.inner.lock().stats
    }

    /// Bytes in blocks handed out and not yet dropped.
    pub fn allocated_bytes(&self) -> usize {
        self.stats().allocated_bytes
    }
    /// Bytes held from the device (in use or cached).
    pub fn reserved_bytes(&self) -> usize {
        self.stats().reserved_bytes
    }
    pub fn peak_allocated_bytes(&self) -> usize {
        self.stats().peak_allocated_bytes
    }
    pub fn peak_reserved_bytes(&self) -> usize {
        self.stats().peak_reserved_bytes
    }
    /// Allocations that went to the device (cache misses).
    pub fn device_allocs(&self) -> usize {
        self.stats().device_allocs
    }
    /// Bytes in cached (free) blocks.
    pub fn cached_bytes(&self) -> usize {
        let s = self.stats();
        s.reserved_bytes - s.allocated_bytes
    }

    /// Sets both peaks to the current values, to measure one phase.
    pub fn reset_peak(&self) {
        let mut state = self.inner.lock();
        let s = &mut state.stats;
        s.peak_allocated_bytes = s.allocated_bytes;
        s.peak_reserved_bytes = s.reserved_bytes;
    }
}
// ANCHOR_END: allocator

/// `1.5 MiB`, `512 B`: sizes for messages.
pub fn human_bytes(bytes: usize) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.2} {}", UNITS[u])
    }
}

// ANCHOR: device_buffer
/// A block of device memory, `len` bytes long (any dtype). Dropping it
/// returns the block to its allocator's cache, not to the device.
pub struct DeviceBuffer<R: Runtime> {
    ptr: DevicePtr,
    /// Bytes asked for.
    len: usize,
    /// Bytes in the block (its size class).
    class: usize,
    owner: Arc<Inner<R>>,
}

impl<R: Runtime> DeviceBuffer<R> {
    /// The block's address on the device (0 for an empty buffer).
    pub fn ptr(&self) -> DevicePtr {
        self.ptr
    }
    /// Bytes asked for.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes in the block: `len` rounded up to its size class.
    pub fn capacity(&self) -> usize {
        self.class
    }
    /// The runtime the block belongs to.
    pub fn runtime(&self) -> &Arc<R> {
        &self.owner.runtime
    }
}

impl<R: Runtime> Drop for DeviceBuffer<R> {
    fn drop(&mut self) {
        if self.class == 0 {
            return;
        }
        let mut state = self.owner.lock();
        state.stats.allocated_bytes -= self.class;
        state.cache.entry(self.class).or_default().push(self.ptr);
    }
}

impl<R: Runtime> fmt::Debug for DeviceBuffer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DeviceBuffer({:#x}, {} bytes in a block of {})",
            self.ptr, self.len, self.class
        )
    }
}
// ANCHOR_END: device_buffer
