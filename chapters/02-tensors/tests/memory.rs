//! Lesson: the CPU backend keeps freed buffers and hands them out again,
//! so a training step that allocates the same sizes every step stops
//! asking the operating system for memory. `cargo test -p chapter-02
//! memory` runs these.

use chapter_02::{
    buffer_for_overwrite, cpu_empty_cache, cpu_pool_stats, scratch_buffer, DType, Device, Tensor,
};

// ANCHOR: pool_lesson
#[test]
fn memory_freed_buffers_are_reused() {
    let cpu = Device::cpu();
    // A size no other test uses, so the counts below are ours.
    let shape = (3, 100_003);
    let a = Tensor::ones(shape, DType::F32, &cpu).unwrap();
    drop(a); // its buffer goes back to the pool
    let before = cpu_pool_stats();
    let b = Tensor::full(2.0, shape, DType::F32, &cpu).unwrap();
    let after = cpu_pool_stats();
    assert!(after.hits > before.hits, "{before:?} then {after:?}");
    // A reused buffer's old contents never show through.
    assert!(b.to_vec::<f32>().unwrap().iter().all(|&v| v == 2.0));
}
// ANCHOR_END: pool_lesson

#[test]
fn memory_reused_buffers_never_leak_old_values() {
    let cpu = Device::cpu();
    for _ in 0..3 {
        // Fill the pool with buffers of garbage-looking values...
        let junk = Tensor::full(7.5, (64, 300), DType::F32, &cpu).unwrap();
        drop(junk);
        // ...then make results of the same size that must be exact.
        let z = Tensor::zeros((64, 300), DType::F32, &cpu).unwrap();
        assert!(z.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0));
        let a = Tensor::ones((64, 0), DType::F32, &cpu).unwrap();
        let b = Tensor::ones((0, 300), DType::F32, &cpu).unwrap();
        let product = a.matmul(&b).unwrap(); // k = 0: all zeros
        assert!(product.to_vec::<f32>().unwrap().iter().all(|&v| v == 0.0));
        let s = Tensor::full(7.5, (64, 300), DType::F32, &cpu)
            .unwrap()
            .sum([0], false)
            .unwrap();
        assert!(s.to_vec::<f32>().unwrap().iter().all(|&v| v == 480.0));
    }
}

#[test]
fn memory_empty_cache_returns_everything() {
    let t = Tensor::ones(50_000, DType::F64, &Device::cpu()).unwrap();
    drop(t);
    cpu_empty_cache();
    // Other tests may refill it at once; emptying itself must not fail,
    // and a new tensor is still right.
    let u = Tensor::ones(50_000, DType::F64, &Device::cpu()).unwrap();
    assert_eq!(u.sum_all().unwrap().item().unwrap(), 50_000.0);
}

/// A kernel's scratch buffer goes back to the pool when it is dropped, and
/// the next scratch buffer of that size is the same memory, handed out
/// without being filled again.
#[test]
fn memory_scratch_buffers_return_to_the_pool() {
    // A size no other test uses, so the counts below are ours.
    let n = 70_001;
    let mut a = scratch_buffer(n, 0.0f64);
    assert_eq!(a.len(), n);
    a.fill(3.0);
    let at = a.as_ptr();
    drop(a);
    let before = cpu_pool_stats();
    let b = scratch_buffer(n, 0.0f64);
    let after = cpu_pool_stats();
    assert!(after.hits > before.hits, "{before:?} then {after:?}");
    assert_eq!(b.as_ptr(), at, "a kept buffer of that size was not reused");
    assert_eq!(b.len(), n);
    // Small buffers are left to malloc, and still have their length.
    assert_eq!(scratch_buffer(10, 1u8).len(), 10);
}

/// A kernel's *result* buffer comes from the same pool: made into a
/// tensor, it goes back when the tensor is freed, and the next result of
/// that size reuses it instead of clearing fresh memory.
#[test]
fn memory_result_buffers_return_to_the_pool() {
    let cpu = chapter_02::Device::cpu();
    let n = 70_003; // a size no other test uses
    let mut v = buffer_for_overwrite(n, 0.0f32);
    assert_eq!(v.len(), n);
    v.iter_mut().enumerate().for_each(|(i, x)| *x = i as f32);
    let at = v.as_ptr();
    let t = chapter_02::Tensor::from_host_vec(v, n, &cpu).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap()[n - 1], (n - 1) as f32);
    drop(t);
    let before = cpu_pool_stats();
    let again = buffer_for_overwrite(n, 0.0f32);
    let after = cpu_pool_stats();
    assert!(after.hits > before.hits, "{before:?} then {after:?}");
    assert_eq!(
        again.as_ptr(),
        at,
        "the freed tensor's buffer was not reused"
    );
}
