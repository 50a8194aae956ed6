//! Lesson: gradients accumulate. `backward` adds into `.grad`; it never
//! overwrites. That is what lets a shared weight collect every use, and a
//! training loop sum gradients over micro-batches; the price is that the loop
//! must call `zero_grad` between steps.
//! `cargo test -p chapter-03 accumulation` runs these.

mod common;

use chapter_03::{BackwardOptions, Tensor};
use common::*;

// ANCHOR: accumulation
#[test]
fn accumulation_across_two_backward_calls_adds_the_gradients() {
    let x = leaf(&[1.0, 2.0], 2);
    x.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad_values(&x), &[3.0, 3.0], 0.0);
    // A second, separate graph over the same leaf: its gradient is added.
    x.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&x), &[3.0 + 2.0, 3.0 + 4.0], 0.0);
    // zero_grad forgets it; the next backward starts from nothing.
    x.zero_grad();
    assert!(x.grad_opt().is_none());
    x.mul_scalar(3.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad_values(&x), &[3.0, 3.0], 0.0);
}
// ANCHOR_END: accumulation

#[test]
fn accumulation_grad_before_backward_is_an_error_and_grad_opt_is_none() {
    let x = leaf(&[1.0], 1);
    assert!(x.grad_opt().is_none());
    let e = x.grad().unwrap_err();
    assert_eq!(
        e.to_string(),
        "grad: no gradient yet: call backward() first"
    );
}

#[test]
fn accumulation_over_micro_batches_equals_the_full_batch() {
    // The mean loss over 8 rows, computed as two halves each weighted 1/2,
    // gives the same gradient as the full batch at once.
    let data = randn((8, 3), 7);
    let w = Tensor::param(randn((3, 1), 8)).unwrap();
    let loss = |x: &Tensor| {
        x.matmul(&w)
            .unwrap()
            .tanh()
            .unwrap()
            .powf(2.0)
            .unwrap()
            .mean_all()
            .unwrap()
    };

    loss(&Tensor::from_raw(data.clone())).backward().unwrap();
    let full = grad_values(&w);
    w.zero_grad();

    for half in 0..2 {
        let rows = Tensor::from_raw(data.narrow(0, half * 4, 4).unwrap());
        loss(&rows).mul_scalar(0.5).unwrap().backward().unwrap();
    }
    assert_close(&grad_values(&w), &full, 1e-14);
}

#[test]
fn accumulation_of_a_weight_shared_by_two_layers() {
    // y = W (W x): the same parameter appears twice in the graph, and
    // ∂/∂W collects both uses, exactly as a single backward would.
    let w = leaf(&[1.0, 2.0, 0.5, -1.0], (2, 2));
    let x = constant(&[1.0, 3.0], 2);
    let y = w.matmul(&w.matmul(&x).unwrap()).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    // d/dW Σ W W x = 1 (W x)ᵀ + Wᵀ 1 xᵀ.
    let wx = [1.0 + 6.0, 0.5 - 3.0];
    let wt1 = [1.0 + 0.5, 2.0 - 1.0];
    let expected = [
        wx[0] + wt1[0] * 1.0,
        wx[1] + wt1[0] * 3.0,
        wx[0] + wt1[1] * 1.0,
        wx[1] + wt1[1] * 3.0,
    ];
    assert_close(&grad_values(&w), &expected, 1e-12);
}

#[test]
fn accumulation_set_grad_replaces_the_stored_gradient() {
    // What gradient clipping does: read .grad, write a scaled one back.
    let x = leaf(&[1.0, 2.0], 2);
    x.mul_scalar(4.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let scaled = x.grad().unwrap().mul_scalar(0.25).unwrap();
    x.set_grad(Some(scaled));
    assert_close(&grad_values(&x), &[1.0, 1.0], 0.0);
    // Later backward calls keep accumulating into the replaced value.
    x.sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&x), &[2.0, 2.0], 0.0);
    x.set_grad(None);
    assert!(x.grad_opt().is_none());
}

#[test]
fn accumulation_retained_graph_run_twice_doubles_the_gradient() {
    let x = leaf(&[2.0], 1);
    let y = x.powf(3.0).unwrap().sum_all().unwrap();
    let keep = BackwardOptions {
        retain_graph: true,
        ..Default::default()
    };
    y.backward_with(None, keep).unwrap();
    y.backward_with(None, keep).unwrap();
    assert_close(&grad_values(&x), &[2.0 * 12.0], 1e-12);
}

#[test]
fn accumulation_does_not_build_a_graph_between_steps() {
    // The stored gradient is a plain value: accumulating into it must not
    // chain one step's gradient to the next one's graph.
    let x = leaf(&[1.0, 2.0], 2);
    for _ in 0..3 {
        x.exp().unwrap().sum_all().unwrap().backward().unwrap();
    }
    let g = x.grad().unwrap();
    assert!(g.is_leaf());
    assert!(!g.requires_grad());
    assert_close(&values(&g), &[3.0 * 1f64.exp(), 3.0 * 2f64.exp()], 1e-12);
}

#[test]
fn accumulation_from_two_threads_into_a_shared_parameter() {
    // Tensors are Send + Sync: two threads can run backward over graphs
    // that share a parameter, and both contributions land in its .grad.
    let w = leaf(&[1.0, 2.0], 2);
    std::thread::scope(|s| {
        for k in 1..=2 {
            let w = w.clone();
            s.spawn(move || {
                w.mul_scalar(k as f64)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            });
        }
    });
    assert_close(&grad_values(&w), &[3.0, 3.0], 0.0);
}
