//! A caching allocator for CPU buffers.
//!
//! Every primitive writes a fresh result, so a training step allocates the
//! same few dozen buffers, of the same sizes, at every step, and frees them
//! again. A large allocation is handed out by the operating system as
//! fresh pages: the first write to each 4 KiB page faults into the kernel,
//! which finds a page and fills it with zeros. For a 16M-element `add` that
//! costs more than the addition.
//!
//! So, as PyTorch's allocators do, a freed buffer is kept, by element type
//! and capacity, and the next request of that size takes it back: no system
//! call, no page fault, memory already in cache. The pool is bounded (a
//! number of buffers per size, a total in bytes), buffers below 16 KiB are left
//! to `malloc` (which already recycles them), and [`empty_cache`] gives
//! everything back.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::{Mutex, OnceLock, PoisonError};

/// Buffers smaller than this go straight to `malloc`.
const MIN_BYTES: usize = 16 << 10;
/// At most this many buffers of one size are kept. A network keeps many
/// activations of one shape alive until its backward pass (ResNet14 has
/// 17 of `[128, 16, 28, 28]` in its first stage alone, and as many
/// gradients of that shape): with 8 kept, the rest went back to the system
/// at every step and came back as fresh pages at the next, and page faults
/// were 8% of a ResNet step's time. The byte bound below is what limits
/// the pool.
const PER_SIZE: usize = 64;
/// At most this many bytes are kept in all.
const MAX_BYTES: usize = 1 << 30;

/// What the pool has done, for tests and the book.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStats {
    /// Requests served from a kept buffer.
    pub hits: u64,
    /// Requests that allocated.
    pub misses: u64,
    /// Bytes kept right now.
    pub cached_bytes: usize,
}

#[derive(Default)]
struct Pool {
    /// Kept `Vec<T>`s (boxed as `Any`), by element type and capacity.
    free: HashMap<(TypeId, usize), Vec<Box<dyn Any + Send>>>,
    stats: PoolStats,
}

fn pool() -> std::sync::MutexGuard<'static, Pool> {
    static POOL: OnceLock<Mutex<Pool>> = OnceLock::new();
    POOL.get_or_init(|| Mutex::new(Pool::default()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

fn pooled<T>(n: usize) -> bool {
    n * std::mem::size_of::<T>() >= MIN_BYTES
}

/// A kept buffer of capacity `n`, if there is one.
fn take<T: Copy + Send + 'static>(n: usize) -> Option<Vec<T>> {
    if !pooled::<T>(n) {
        return None;
    }
    let mut p = pool();
    let found = p
        .free
        .get_mut(&(TypeId::of::<T>(), n))
        .and_then(|list| list.pop())
        .and_then(|b| b.downcast::<Vec<T>>().ok());
    match found {
        Some(v) => {
            p.stats.hits += 1;
            p.stats.cached_bytes -= n * std::mem::size_of::<T>();
            Some(*v)
        }
        None => {
            p.stats.misses += 1;
            None
        }
    }
}

// ANCHOR: pool
/// An empty `Vec` with room for exactly `n` elements, reused if one was
/// kept: for kernels that build their result with `push`/`extend`.
pub(crate) fn with_capacity<T: Copy + Send + 'static>(n: usize) -> Vec<T> {
    match take::<T>(n) {
        Some(mut v) => {
            v.clear();
            v
        }
        None => Vec::with_capacity(n),
    }
}

/// A `Vec` of `n` elements whose values are unspecified (a kept buffer's
/// old values, or `fill`): for kernels that overwrite every element, such
/// as a matrix product with `β = 0`.
pub(crate) fn overwritten<T: Copy + Send + 'static>(n: usize, fill: T) -> Vec<T> {
    match take::<T>(n) {
        // A kept buffer of capacity n held n initialised elements.
        Some(v) if v.len() == n => v,
        Some(mut v) => {
            v.clear();
            v.resize(n, fill);
            v
        }
        None => vec![fill; n],
    }
}

/// Gives a buffer back for reuse (or to the system, past the bounds).
pub(crate) fn give<T: Copy + Send + 'static>(v: Vec<T>) {
    let n = v.capacity();
    if !pooled::<T>(n) || v.len() != n {
        return;
    }
    let bytes = n * std::mem::size_of::<T>();
    let mut p = pool();
    if p.stats.cached_bytes + bytes > MAX_BYTES {
        return;
    }
    let list = p.free.entry((TypeId::of::<T>(), n)).or_default();
    if list.len() < PER_SIZE {
        list.push(Box::new(v));
        p.stats.cached_bytes += bytes;
    }
}
// ANCHOR_END: pool

/// A scratch buffer of a kernel, taken from the pool and given back to it
/// when dropped. Later chapters' kernels use it for their temporary
/// matrices (a convolution's patch matrix, Winograd's transformed tiles):
/// a kernel that allocated them fresh at every call paid for the
/// zero-filling and the page faults of a megabyte at a time.
///
/// Its values are unspecified when it is handed out (a kept buffer's old
/// values, or the fill value): a kernel writes before it reads.
pub struct ScratchBuffer<T: Copy + Send + 'static>(Vec<T>);

/// A [`ScratchBuffer`] of `n` elements, reused from the pool when one of
/// that size was kept, else filled with `fill`.
pub fn scratch_buffer<T: Copy + Send + 'static>(n: usize, fill: T) -> ScratchBuffer<T> {
    ScratchBuffer(overwritten(n, fill))
}

impl<T: Copy + Send + 'static> std::ops::Deref for ScratchBuffer<T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Copy + Send + 'static> std::ops::DerefMut for ScratchBuffer<T> {
    fn deref_mut(&mut self) -> &mut [T] {
        &mut self.0
    }
}

impl<T: Copy + Send + 'static> Drop for ScratchBuffer<T> {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

/// A `Vec` of `n` elements for a host kernel's *result*, from the pool
/// when a buffer of that size was kept, else filled with `fill`. Its values
/// are unspecified, so the kernel must write every element. Made into a
/// tensor with [`Tensor::from_host_vec`](crate::Tensor::from_host_vec), it
/// goes back to the pool when the tensor is freed, like the primitives'
/// results: a kernel that wrote `vec![0.0; n]` instead paid a pass of zeros
/// over memory it then overwrote, at every call.
pub fn buffer_for_overwrite<T: Copy + Send + 'static>(n: usize, fill: T) -> Vec<T> {
    overwritten(n, fill)
}

/// Gives every kept buffer back to the system (like PyTorch's
/// `torch.cuda.empty_cache()`).
pub fn empty_cache() {
    let mut p = pool();
    p.free.clear();
    p.stats.cached_bytes = 0;
}

/// Hits, misses and bytes kept so far.
pub fn pool_stats() -> PoolStats {
    pool().stats
}
