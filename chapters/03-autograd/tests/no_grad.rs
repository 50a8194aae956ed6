//! Lesson: turning the recorder off. Under a `no_grad` guard operations
//! compute their values and record nothing, so evaluation and optimiser
//! updates cost no graph memory. The mode is per thread and restored when
//! the guard is dropped, also during a panic.
//! `cargo test -p chapter-03 no_grad` runs these.

mod common;

use chapter_03::{is_grad_enabled, no_grad, set_grad_enabled, DType, Tensor};
use common::*;

// ANCHOR: no_grad_example
#[test]
fn no_grad_records_no_graph() {
    let w = leaf(&[1.0, 2.0], 2);
    let y = {
        let _guard = no_grad();
        w.mul_scalar(3.0).unwrap().exp().unwrap()
    };
    // The value is computed, but `y` is a constant: no grad_fn, no requires_grad.
    assert_close(&values(&y), &[3f64.exp(), 6f64.exp()], 1e-12);
    assert!(y.is_leaf());
    assert_eq!(y.op_name(), None);
    assert!(!y.requires_grad());
    assert!(y.sum_all().unwrap().backward().is_err());
    // Outside the guard, recording is back on.
    assert!(w.mul_scalar(3.0).unwrap().requires_grad());
}
// ANCHOR_END: no_grad_example

#[test]
fn no_grad_guard_restores_the_previous_mode_and_nests() {
    assert!(is_grad_enabled());
    {
        let _outer = no_grad();
        assert!(!is_grad_enabled());
        {
            // Re-enabling inside no_grad (torch.enable_grad).
            let _inner = set_grad_enabled(true);
            assert!(is_grad_enabled());
            let w = leaf(&[1.0], 1);
            assert!(w.exp().unwrap().requires_grad());
        }
        assert!(!is_grad_enabled());
        {
            let _again = no_grad();
            assert!(!is_grad_enabled());
        }
        assert!(!is_grad_enabled());
    }
    assert!(is_grad_enabled());
}

#[test]
fn no_grad_is_restored_after_a_panic() {
    let r = std::panic::catch_unwind(|| {
        let _guard = no_grad();
        panic!("boom");
    });
    assert!(r.is_err());
    assert!(is_grad_enabled());
}

#[test]
fn no_grad_is_per_thread() {
    let _guard = no_grad();
    assert!(!is_grad_enabled());
    let other = std::thread::spawn(is_grad_enabled).join().unwrap();
    assert!(other, "a new thread starts with grad mode on");
}

#[test]
fn no_grad_sgd_update_keeps_the_parameter_a_leaf() {
    // The optimiser step: w ← w − lr·∇w, computed without a graph and
    // written back into the same leaf.
    let w = leaf(&[1.0, -2.0], 2);
    w.powf(2.0).unwrap().sum_all().unwrap().backward().unwrap();
    {
        let _guard = no_grad();
        let updated = w.sub(&w.grad().unwrap().mul_scalar(0.25).unwrap()).unwrap();
        assert!(!updated.requires_grad());
        w.set_data(updated.data()).unwrap();
    }
    assert_close(&values(&w), &[0.5, -1.0], 0.0);
    assert!(w.is_leaf() && w.requires_grad());
    // Gradient still there until zero_grad.
    assert_close(&grad_values(&w), &[2.0, -4.0], 0.0);
}

#[test]
fn no_grad_set_data_rejects_intermediates_and_shape_changes() {
    let w = leaf(&[1.0, 2.0], 2);
    let y = w.exp().unwrap();
    let e = y.set_data(raw(&[0.0, 0.0], 2)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "set_data: only leaf tensors can be updated in place"
    );
    let e = w.set_data(raw(&[0.0, 0.0, 0.0], 3)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "set_data: shape mismatch [2] vs [3] (dtype f64 vs f64)"
    );
}

#[test]
fn no_grad_detach_is_the_per_tensor_alternative() {
    let w = leaf(&[1.0, 2.0], 2);
    let y = w.exp().unwrap().detach();
    assert!(!y.requires_grad());
    // Ops on a detached tensor record only when another input requires grad.
    let z = y.mul(&w).unwrap();
    assert!(z.requires_grad());
    z.sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&w), &[1f64.exp(), 2f64.exp()], 1e-12);
}

#[test]
fn no_grad_set_data_before_backward_changes_what_backward_reads() {
    // A limitation worth knowing: backward formulas read their inputs when
    // backward runs, and nothing records that a leaf was changed since the
    // forward pass (PyTorch's version counters would refuse). Update
    // parameters only after backward.
    let w = leaf(&[1.0, 2.0], 2);
    let loss = w.mul(&w).unwrap().sum_all().unwrap();
    w.set_data(raw(&[10.0, 20.0], 2)).unwrap();
    loss.backward().unwrap();
    assert_close(&grad_values(&w), &[20.0, 40.0], 0.0); // 2·new w, not 2·old w
}

#[test]
fn no_grad_allows_in_place_writes_to_parameters() {
    let cache = Tensor::zeros((2, 3), DType::F64, &dev()).unwrap();
    let row = Tensor::from_raw(raw(&[1.0, 2.0, 3.0], (1, 3)));
    // A constant leaf (a buffer, a cache) can always be written in place.
    cache.slice_assign_(&[1..2, 0..3], &row).unwrap();
    assert_eq!(cache.to_vec_f64().unwrap(), [0.0, 0.0, 0.0, 1.0, 2.0, 3.0]);
    // A parameter only with grad mode off, as `torch.no_grad()` requires.
    let w = Tensor::param(raw(&[0.0; 6], (2, 3))).unwrap();
    let e = w
        .slice_assign_(&[0..1, 0..3], &row)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs a leaf that does not require grad"), "{e}");
    {
        let _off = no_grad();
        w.slice_assign_(&[0..1, 0..3], &row).unwrap();
    }
    assert_eq!(w.to_vec_f64().unwrap(), [1.0, 2.0, 3.0, 0.0, 0.0, 0.0]);
    // Never the result of an operation, which its backward may read.
    let y = w.mul(&w).unwrap();
    assert!(y.slice_assign_(&[0..1, 0..3], &row).is_err());
}
