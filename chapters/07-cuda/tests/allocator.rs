//! The caching allocator, tested on a fake runtime that hands out fake
//! addresses, counts its calls and runs out of memory on demand.

use chapter_02::{Error, Result};
use chapter_07::allocator::{size_class, CachingAllocator, SMALL_GRANULE, SMALL_LIMIT};
use chapter_07::{DevicePtr, LaunchConfig, Runtime};
use std::collections::HashMap;
use std::ffi::c_void;
use std::sync::{Arc, Mutex};

/// A device with `capacity` bytes that never touches memory.
#[derive(Debug)]
struct FakeRuntime {
    capacity: usize,
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    next: DevicePtr,
    live: HashMap<DevicePtr, usize>,
    used: usize,
    allocs: usize,
    frees: usize,
    /// Fail the next `n` allocations with a non-OOM error.
    fail_next: usize,
}

impl FakeRuntime {
    fn new(capacity: usize) -> Arc<Self> {
        Arc::new(FakeRuntime {
            capacity,
            state: Mutex::new(FakeState {
                next: 0x1000,
                ..Default::default()
            }),
        })
    }
    fn used(&self) -> usize {
        self.state.lock().unwrap().used
    }
    fn calls(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.allocs, s.frees)
    }
}

impl Runtime for FakeRuntime {
    fn describe(&self) -> String {
        "fake".into()
    }
    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        let mut s = self.state.lock().unwrap();
        if s.fail_next > 0 {
            s.fail_next -= 1;
            return Err(Error::device("alloc", "fake", "the fake device is unwell"));
        }
        if s.used + bytes > self.capacity {
            return Err(Error::device(
                "alloc",
                "fake",
                "out of memory (CUDA_ERROR_OUT_OF_MEMORY)",
            ));
        }
        let p = s.next;
        s.next += bytes.next_multiple_of(256) as u64;
        s.live.insert(p, bytes);
        s.used += bytes;
        s.allocs += 1;
        Ok(p)
    }
    fn free(&self, ptr: DevicePtr) -> Result<()> {
        let mut s = self.state.lock().unwrap();
        let bytes = s
            .live
            .remove(&ptr)
            .expect("free of an address never allocated");
        s.used -= bytes;
        s.frees += 1;
        Ok(())
    }
    fn copy_htod(&self, _: DevicePtr, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn copy_dtoh(&self, _: &mut [u8], _: DevicePtr) -> Result<()> {
        Ok(())
    }
    fn copy_dtod(&self, _: DevicePtr, _: DevicePtr, _: usize) -> Result<()> {
        Ok(())
    }
    fn memset_zero(&self, _: DevicePtr, _: usize) -> Result<()> {
        Ok(())
    }
    fn launch(&self, _: &str, _: LaunchConfig, _: &mut [*mut c_void]) -> Result<()> {
        Ok(())
    }
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }
}

const MIB: usize = 1 << 20;

#[test]
fn size_classes_round_small_requests_to_512_bytes() {
    assert_eq!(size_class(1), 512);
    assert_eq!(size_class(512), 512);
    assert_eq!(size_class(513), 1024);
    assert_eq!(size_class(4000), 4096);
    assert_eq!(size_class(SMALL_LIMIT), SMALL_LIMIT);
    for b in (1..SMALL_LIMIT).step_by(997) {
        let c = size_class(b);
        assert!(c >= b && c - b < SMALL_GRANULE && c.is_multiple_of(SMALL_GRANULE));
    }
}

#[test]
fn size_classes_of_large_requests_waste_under_a_quarter() {
    assert_eq!(size_class(MIB + 1), MIB + MIB / 4);
    assert_eq!(size_class(5 * MIB), 5 * MIB);
    assert_eq!(size_class(5 * MIB + 1), 6 * MIB);
    assert_eq!(size_class(8 * MIB), 8 * MIB);
    assert_eq!(size_class(8 * MIB + 1), 10 * MIB);
    let mut b = SMALL_LIMIT + 1;
    while b < (1 << 40) {
        let c = size_class(b);
        assert!(c >= b, "{b} -> {c}");
        assert!((c - b) * 4 < b, "{b} -> {c} wastes a quarter or more");
        // Classes are fixed points: a block serves its own size.
        assert_eq!(size_class(c), c);
        b = b * 9 / 7 + 12345;
    }
}

#[test]
fn size_classes_are_monotonic() {
    let mut prev = 0;
    for b in (1..64 * MIB).step_by(4099) {
        let c = size_class(b);
        assert!(c >= prev);
        prev = c;
    }
}

#[test]
fn freed_blocks_are_reused_from_the_cache() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    let a = alloc.alloc(4000).unwrap();
    assert_eq!(a.len(), 4000);
    assert_eq!(a.capacity(), 4096);
    let addr = a.ptr();
    drop(a);
    // Same class (4096): the same block, no device call.
    let b = alloc.alloc(3900).unwrap();
    assert_eq!(b.ptr(), addr);
    assert_eq!(rt.calls(), (1, 0));
    let s = alloc.stats();
    assert_eq!(s.device_allocs, 1);
    assert_eq!(s.cache_hits, 1);
    // Another class: a new block.
    let c = alloc.alloc(10_000).unwrap();
    assert_ne!(c.ptr(), addr);
    assert_eq!(alloc.device_allocs(), 2);
}

#[test]
fn a_training_loop_allocates_from_the_device_only_in_its_first_step() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    let sizes = [
        784 * 256 * 4,
        256 * 4,
        128 * 784 * 4,
        128 * 256 * 4,
        128 * 10 * 4,
        40,
    ];
    for step in 0..10 {
        let live: Vec<_> = sizes.iter().map(|&s| alloc.alloc(s).unwrap()).collect();
        let scratch: Vec<_> = sizes.iter().map(|&s| alloc.alloc(s).unwrap()).collect();
        drop(scratch);
        drop(live);
        assert_eq!(alloc.device_allocs(), 2 * sizes.len(), "step {step}");
    }
    assert_eq!(rt.calls().1, 0, "nothing returned to the device");
}

#[test]
fn counters_track_allocated_reserved_and_peaks() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    let a = alloc.alloc(1000).unwrap(); // 1024
    let b = alloc.alloc(2 * MIB).unwrap(); // 2 MiB
    let s = alloc.stats();
    assert_eq!(s.allocated_bytes, 1024 + 2 * MIB);
    assert_eq!(s.reserved_bytes, 1024 + 2 * MIB);
    assert_eq!(rt.used(), 1024 + 2 * MIB);
    drop(b);
    let s = alloc.stats();
    assert_eq!(s.allocated_bytes, 1024);
    assert_eq!(s.reserved_bytes, 1024 + 2 * MIB);
    assert_eq!(s.peak_allocated_bytes, 1024 + 2 * MIB);
    assert_eq!(alloc.cached_bytes(), 2 * MIB);
    alloc.reset_peak();
    assert_eq!(alloc.peak_allocated_bytes(), 1024);
    assert_eq!(alloc.peak_reserved_bytes(), 1024 + 2 * MIB);
    alloc.empty_cache().unwrap();
    assert_eq!(alloc.reserved_bytes(), 1024);
    assert_eq!(alloc.peak_reserved_bytes(), 1024 + 2 * MIB);
    assert_eq!(rt.used(), 1024);
    assert_eq!(rt.calls(), (2, 1));
    drop(a);
    assert_eq!(alloc.allocated_bytes(), 0);
    assert_eq!(alloc.reserved_bytes(), 1024);
}

#[test]
fn empty_cache_returns_only_free_blocks() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    let keep = alloc.alloc(MIB).unwrap();
    for _ in 0..3 {
        let _ = alloc.alloc(3 * MIB).unwrap();
    }
    alloc.empty_cache().unwrap();
    assert_eq!(rt.used(), MIB);
    assert_eq!(keep.capacity(), MIB);
    drop(keep);
    drop(alloc);
    assert_eq!(rt.used(), 0, "dropping the allocator frees its cache");
}

#[test]
fn out_of_memory_empties_the_cache_and_retries_once() {
    let rt = FakeRuntime::new(10 * MIB);
    let alloc = CachingAllocator::new(rt.clone());
    // Fill the device with cached 2 MiB blocks.
    let blocks: Vec<_> = (0..5).map(|_| alloc.alloc(2 * MIB).unwrap()).collect();
    drop(blocks);
    assert_eq!(rt.used(), 10 * MIB);
    // 4 MiB is another class: the device is full, so the cache is emptied.
    let big = alloc.alloc(4 * MIB).unwrap();
    assert_eq!(big.capacity(), 4 * MIB);
    assert_eq!(rt.used(), 4 * MIB);
    let s = alloc.stats();
    assert_eq!(s.device_frees, 5);
    assert_eq!(s.reserved_bytes, 4 * MIB);
    assert_eq!(s.allocated_bytes, 4 * MIB);
}

#[test]
fn out_of_memory_after_the_retry_is_a_clear_device_error() {
    let rt = FakeRuntime::new(10 * MIB);
    let alloc = CachingAllocator::new(rt.clone());
    let _held = alloc.alloc(8 * MIB).unwrap();
    let cached = alloc.alloc(MIB).unwrap();
    drop(cached);
    let err = alloc.alloc(3 * MIB).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::Device { op: "alloc", .. }), "{msg}");
    assert!(msg.contains("out of memory"), "{msg}");
    assert!(msg.contains("3.00 MiB"), "names the request: {msg}");
    assert!(
        msg.contains("8.00 MiB allocated"),
        "names what is held: {msg}"
    );
    assert!(msg.contains("on fake"), "names the device: {msg}");
    // The cache was emptied in the attempt.
    assert_eq!(rt.used(), 8 * MIB);
    // An OOM with nothing cached is reported at once.
    let err = alloc.alloc(5 * MIB).unwrap_err();
    assert!(err.to_string().contains("out of memory"));
    assert_eq!(alloc.allocated_bytes(), 8 * MIB);
}

#[test]
fn other_runtime_errors_pass_through_without_emptying_the_cache() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    drop(alloc.alloc(MIB).unwrap());
    rt.state.lock().unwrap().fail_next = 1;
    let err = alloc.alloc(2 * MIB).unwrap_err();
    assert!(err.to_string().contains("unwell"), "{err}");
    assert_eq!(alloc.cached_bytes(), MIB, "the cache is kept");
    assert!(alloc.alloc(2 * MIB).is_ok());
}

#[test]
fn zero_byte_buffers_allocate_nothing() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    let z = alloc.alloc(0).unwrap();
    assert!(z.is_empty());
    assert_eq!(z.capacity(), 0);
    drop(z);
    assert_eq!(rt.calls(), (0, 0));
    assert_eq!(alloc.stats(), Default::default());
}

#[test]
fn the_allocator_is_thread_safe() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt.clone());
    std::thread::scope(|s| {
        for t in 0..4 {
            let alloc = alloc.clone();
            s.spawn(move || {
                for i in 0..500 {
                    let a = alloc.alloc(512 * (1 + (i + t) % 7)).unwrap();
                    let b = alloc.alloc(MIB + 4096 * (i % 3)).unwrap();
                    assert_ne!(a.ptr(), b.ptr());
                }
            });
        }
    });
    let s = alloc.stats();
    assert_eq!(s.allocated_bytes, 0);
    assert!(s.device_allocs <= 4 * (7 + 3), "{s:?}");
    assert_eq!(s.reserved_bytes, rt.used());
    assert!(s.peak_allocated_bytes <= s.peak_reserved_bytes);
}

#[test]
fn live_buffers_never_share_an_address() {
    let rt = FakeRuntime::new(1 << 30);
    let alloc = CachingAllocator::new(rt);
    let mut live = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for i in 0..200usize {
        if i % 3 == 2 {
            let b: chapter_07::allocator::DeviceBuffer<FakeRuntime> =
                live.swap_remove(i % live.len());
            seen.remove(&b.ptr());
        }
        let b = alloc.alloc(100 + (i * 37) % 3000).unwrap();
        assert!(seen.insert(b.ptr()), "address handed out twice");
        live.push(b);
    }
}
