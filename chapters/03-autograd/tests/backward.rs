//! Lesson: the backward pass. Every op records its inputs; `backward` walks
//! the graph from the output in reverse topological order, hands each op the
//! gradient of its result, and stores in each leaf that requires grad the
//! derivative of the output with respect to it.
//! `cargo test -p chapter-03 backward` runs these.

mod common;

use chapter_03::{BackwardOptions, Tensor};
use common::*;

// ANCHOR: backward_first_example
#[test]
fn backward_computes_the_chain_rule_for_every_leaf() {
    // loss = Σ (w·x + b)²  with x constant, w and b parameters.
    let x = constant(&[1.0, 2.0, 3.0], 3);
    let w = leaf(&[0.5, -1.0, 2.0], 3);
    let b = leaf(&[1.0], 1);
    let y = w.mul(&x).unwrap().add(&b).unwrap(); // [1.5, -1, 7]
    let loss = y.powf(2.0).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    // ∂loss/∂w = 2y·x, ∂loss/∂b = Σ 2y (b was broadcast to every element).
    assert_close(&grad_values(&w), &[3.0, -4.0, 42.0], 1e-12);
    assert_close(&grad_values(&b), &[15.0], 1e-12);
}
// ANCHOR_END: backward_first_example

#[test]
fn backward_requires_grad_is_off_for_constants_and_on_for_params() {
    let c = constant(&[1.0, 2.0], 2);
    assert!(!c.requires_grad());
    let p = leaf(&[1.0, 2.0], 2);
    assert!(p.requires_grad());
    // The builder form and the setter do the same.
    let q = constant(&[3.0], 1).requires_grad_().unwrap();
    assert!(q.requires_grad());
    q.set_requires_grad(false).unwrap();
    assert!(!q.requires_grad());
}

#[test]
fn backward_result_requires_grad_when_any_input_does() {
    let c = constant(&[1.0, 2.0], 2);
    let p = leaf(&[1.0, 2.0], 2);
    assert!(c.add(&p).unwrap().requires_grad());
    assert!(p.add(&c).unwrap().requires_grad());
    // Two constants make a constant: nothing to record.
    let cc = c.add(&c).unwrap();
    assert!(!cc.requires_grad());
    assert!(cc.is_leaf());
    assert_eq!(cc.op_name(), None);
}

#[test]
fn backward_leaves_and_intermediates() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = x.exp().unwrap();
    let z = y.sum_all().unwrap();
    assert!(x.is_leaf());
    assert!(!y.is_leaf());
    assert_eq!(y.op_name(), Some("exp"));
    assert_eq!(z.op_name(), Some("sum"));
    z.backward().unwrap();
    // The leaf keeps its gradient; the intermediate does not (it would be
    // memory spent on every activation of a network).
    assert_close(&grad_values(&x), &[1f64.exp(), 2f64.exp()], 1e-12);
    assert!(y.grad_opt().is_none());
}

#[test]
fn backward_retain_grad_keeps_an_intermediate_gradient() {
    let x = leaf(&[1.0, 2.0, 3.0], 3);
    let y = x.mul_scalar(2.0).unwrap();
    y.retain_grad();
    let z = y.powf(2.0).unwrap().sum_all().unwrap();
    z.backward().unwrap();
    // ∂z/∂y = 2y = 4x, ∂z/∂x = 2·∂z/∂y.
    assert_close(&grad_values(&y), &[4.0, 8.0, 12.0], 1e-12);
    assert_close(&grad_values(&x), &[8.0, 16.0, 24.0], 1e-12);
}

#[test]
fn backward_detach_cuts_the_graph_but_shares_the_values() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = x.mul_scalar(3.0).unwrap();
    let d = y.detach();
    assert!(d.is_leaf());
    assert!(!d.requires_grad());
    assert_eq!(values(&d), values(&y));
    // z = y · stop_gradient(y): only the first factor is differentiated.
    let z = y.mul(&d).unwrap().sum_all().unwrap();
    z.backward().unwrap();
    // ∂z/∂x = 3·d = 9x  (not 18x, which is what y·y would give).
    assert_close(&grad_values(&x), &[9.0, 18.0], 1e-12);
}

#[test]
fn backward_shared_node_used_twice_sums_both_uses() {
    // a*a: the op sees the same tensor as both inputs and returns two
    // gradients for it; they must be added, not overwritten.
    let a = leaf(&[3.0, -2.0], 2);
    a.mul(&a).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&a), &[6.0, -4.0], 1e-12);
}

// ANCHOR: diamond
#[test]
fn backward_diamond_waits_for_both_branches() {
    //        ┌── b = exp(a) ──┐
    //  x ─ a ┤                ├─ d = b * c ─ sum
    //        └── c = a * 3  ──┘
    // `a` must receive both contributions before its own backward runs;
    // that is what the reverse topological order guarantees.
    let x = leaf(&[0.5, -1.0], 2);
    let a = x.mul(&x).unwrap();
    let b = a.exp().unwrap();
    let c = a.mul_scalar(3.0).unwrap();
    b.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
    // d = 3a·eᵃ, ∂d/∂a = 3eᵃ(1 + a), ∂a/∂x = 2x.
    let expected: Vec<f64> = [0.5f64, -1.0]
        .iter()
        .map(|&x| {
            let a = x * x;
            3.0 * a.exp() * (1.0 + a) * 2.0 * x
        })
        .collect();
    assert_close(&grad_values(&x), &expected, 1e-12);
}
// ANCHOR_END: diamond

#[test]
fn backward_gradients_flow_only_to_leaves_that_require_them() {
    let x = constant(&[1.0, 2.0], 2);
    let w = leaf(&[3.0, 4.0], 2);
    w.mul(&x).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(x.grad_opt().is_none());
    assert_close(&grad_values(&w), &[1.0, 2.0], 1e-12);
}

#[test]
fn backward_of_a_leaf_is_one() {
    let x = leaf(&[5.0], ());
    x.backward().unwrap();
    assert_close(&grad_values(&x), &[1.0], 0.0);
}

// ANCHOR: vjp
#[test]
fn backward_with_an_upstream_gradient_computes_a_vector_jacobian_product() {
    // y = W x (y: [2]), a non-scalar output. backward_with(v) gives vᵀ ∂y/∂x = Wᵀ v
    // and vᵀ ∂y/∂W = v xᵀ, without ever forming a Jacobian.
    let w = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let x = leaf(&[1.0, 0.0, -1.0], 3);
    let y = w.matmul(&x).unwrap();
    assert_eq!(y.dims(), [2]);
    let v = constant(&[1.0, 10.0], 2);
    y.backward_with(Some(&v), BackwardOptions::default())
        .unwrap();
    assert_close(&grad_values(&x), &[41.0, 52.0, 63.0], 1e-12);
    assert_close(&grad_values(&w), &[1.0, 0.0, -1.0, 10.0, 0.0, -10.0], 1e-12);
}
// ANCHOR_END: vjp

#[test]
fn backward_with_ones_equals_backward_of_the_sum() {
    let x = leaf(&[0.1, 0.2, 0.3, 0.4], (2, 2));
    let y = x.tanh().unwrap();
    y.backward_with(
        Some(&constant(&[1.0; 4], (2, 2))),
        BackwardOptions::default(),
    )
    .unwrap();
    let g1 = grad_values(&x);
    let x2 = leaf(&[0.1, 0.2, 0.3, 0.4], (2, 2));
    x2.tanh().unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&g1, &grad_values(&x2), 1e-15);
}

#[test]
fn backward_through_views_and_matmul_trains_a_linear_layer_step() {
    // One SGD step on a least-squares problem must lower the loss.
    let x = Tensor::from_raw(randn((8, 3), 1));
    let target = Tensor::from_raw(randn((8, 2), 2));
    let w = Tensor::param(randn((3, 2), 3)).unwrap();
    let loss_of = |w: &Tensor| {
        x.matmul(w)
            .unwrap()
            .sub(&target)
            .unwrap()
            .powf(2.0)
            .unwrap()
            .mean_all()
            .unwrap()
    };
    let before = loss_of(&w);
    before.backward().unwrap();
    {
        let _g = chapter_03::no_grad();
        let step = w.sub(&w.grad().unwrap().mul_scalar(0.1).unwrap()).unwrap();
        w.set_data(step.data()).unwrap();
    }
    let after = loss_of(&w);
    assert!(after.item().unwrap() < before.item().unwrap());
}

#[test]
fn backward_display_shows_grad_fn_and_requires_grad() {
    let x = leaf(&[1.0], 1);
    let y = x.exp().unwrap();
    assert!(format!("{x}").contains("requires_grad=true"), "{x}");
    assert!(format!("{y}").contains("grad_fn=exp"), "{y}");
    assert!(format!("{y:?}").contains("grad_fn=exp"), "{y:?}");
}

// ANCHOR: functional_grad
#[test]
fn backward_functional_grad_returns_instead_of_accumulating() {
    // torch.autograd.grad: the gradients come back as values, in the order
    // of `inputs`; `.grad` is left alone; an unused input gets `None`.
    let x = leaf(&[1.0, 2.0], 2);
    let unused = leaf(&[5.0], 1);
    let h = x.exp().unwrap();
    let y = h.sum_all().unwrap();
    let grads = chapter_03::grad(&y, &[&x, &h, &unused], None, BackwardOptions::default()).unwrap();
    assert_close(
        &values(grads[0].as_ref().unwrap()),
        &[1f64.exp(), 2f64.exp()],
        1e-12,
    );
    // Intermediates can be asked for too.
    assert_close(&values(grads[1].as_ref().unwrap()), &[1.0, 1.0], 0.0);
    assert!(grads[2].is_none());
    assert!(x.grad_opt().is_none());
}
// ANCHOR_END: functional_grad

/// Empty dimensions flow through the matrix product's backward pass: a sum
/// over `k = 0` terms is 0 whatever its inputs, and a product with no
/// rows or columns has gradients with no elements, of the inputs' shapes.
#[test]
fn backward_through_matmul_with_empty_dimensions() {
    // [2, 3, 0] @ [0, 4]: the product is zeros, each gradient has no elements.
    let a = leaf(&[], (2, 3, 0));
    let w = leaf(&[], (0, 4));
    let c = a.matmul(&w).unwrap();
    assert_eq!(c.dims(), &[2, 3, 4]);
    c.sum_all().unwrap().backward().unwrap();
    assert_eq!(a.grad().unwrap().dims(), &[2, 3, 0]);
    assert_eq!(w.grad().unwrap().dims(), &[0, 4]);
    // [2, 3, 4] @ [4, 0] and a transposed [0, 4]ᵀ: no outputs, so zeros.
    let x = leaf(&[1.0; 24], (2, 3, 4));
    for v in [leaf(&[], (4, 0)), leaf(&[], (0, 4))] {
        let right = if v.dims()[0] == 0 {
            v.t().unwrap()
        } else {
            v.clone()
        };
        x.zero_grad();
        x.matmul(&right)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_eq!(grad_values(&x), vec![0.0; 24]);
        assert_eq!(v.grad().unwrap().dims(), v.dims());
    }
    // And rows: [0, 4] @ [4, 2] leaves the weight's gradient zeros.
    let none = leaf(&[], (0, 4));
    let w = leaf(&[1.0; 8], (4, 2));
    none.matmul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(grad_values(&w), vec![0.0; 8]);
}
