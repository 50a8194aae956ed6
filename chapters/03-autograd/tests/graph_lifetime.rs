//! Lesson: how long the graph lives. An op's node holds its inputs, so the
//! graph keeps every intermediate result alive until `backward` has used it.
//! After backward the nodes let go (unless `retain_graph`), which frees the
//! activations of a training step; and both the walk and the drop of a
//! graph are loops, not recursion, so a graph 100 000 ops deep works on an
//! ordinary 2 MiB thread stack.
//! `cargo test -p chapter-03 graph_lifetime` runs these.

mod common;

use chapter_03::{BackwardCtx, BackwardOptions, CustomOp, RawTensor, Result, Tensor};
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

// ANCHOR: freed
#[test]
fn graph_lifetime_second_backward_through_a_freed_graph_is_an_error() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward().unwrap();
    let e = y.backward().unwrap_err();
    assert_eq!(
        e.to_string(),
        "backward: the graph behind `sum` was freed by an earlier backward; \
         pass retain_graph: true to the first backward to run it twice"
    );
}

#[test]
fn graph_lifetime_retain_graph_allows_a_second_backward() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = x.exp().unwrap().sum_all().unwrap();
    y.backward_with(
        None,
        BackwardOptions {
            retain_graph: true,
            ..Default::default()
        },
    )
    .unwrap();
    y.backward().unwrap(); // the last one may free it
    assert_close(
        &grad_values(&x),
        &[2.0 * 1f64.exp(), 2.0 * 2f64.exp()],
        1e-12,
    );
    assert!(y.backward().is_err());
}
// ANCHOR_END: freed

#[test]
fn graph_lifetime_a_new_graph_over_the_same_leaves_is_fine() {
    // Freeing is per graph: the leaves survive and can start a new one,
    // which is what every training step does.
    let x = leaf(&[1.0, 2.0], 2);
    for _ in 0..3 {
        x.exp().unwrap().sum_all().unwrap().backward().unwrap();
    }
    assert_close(
        &grad_values(&x),
        &[3.0 * 1f64.exp(), 3.0 * 2f64.exp()],
        1e-12,
    );
}

#[test]
fn graph_lifetime_an_intermediate_of_a_freed_graph_cannot_be_reused() {
    let x = leaf(&[1.0, 2.0], 2);
    let h = x.tanh().unwrap();
    h.sum_all().unwrap().backward().unwrap();
    // h's own node (tanh ← x) was released too: a new graph built on top of
    // h cannot reach x any more.
    let e = h
        .mul_scalar(2.0)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap_err();
    assert!(
        e.to_string().contains("the graph behind `tanh` was freed"),
        "{e}"
    );
}

/// An identity op that counts how many of its nodes have been dropped.
struct Tracked(Arc<AtomicUsize>);
impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}
impl CustomOp for Tracked {
    fn name(&self) -> &'static str {
        "tracked"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        Ok(x[0].clone())
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.clone())])
    }
}

#[test]
fn graph_lifetime_backward_frees_intermediates_as_it_goes() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let x = leaf(&[1.0, 2.0], 2);
    // We keep no handle to the intermediate: only the graph holds it.
    let loss = Tensor::apply(Tracked(dropped.clone()), &[&x])
        .unwrap()
        .sum_all()
        .unwrap();
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "the graph keeps the intermediate alive"
    );
    loss.backward().unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "backward released it");
    assert_close(&grad_values(&x), &[1.0, 1.0], 0.0);
}

/// An identity op whose backward records how many `Tracked` nodes had been
/// dropped by the time it ran.
struct Probe {
    dropped: Arc<AtomicUsize>,
    seen: Arc<AtomicUsize>,
}
impl CustomOp for Probe {
    fn name(&self) -> &'static str {
        "probe"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        Ok(x[0].clone())
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        self.seen
            .store(self.dropped.load(Ordering::SeqCst), Ordering::SeqCst);
        Ok(vec![Some(g.clone())])
    }
}

#[test]
fn graph_lifetime_intermediates_are_freed_during_the_backward_pass() {
    // x → probe → tracked → sum. Backward runs tracked's backward before
    // probe's; by then the tracked intermediate is no longer needed and must
    // already be gone, so a long backward pass never holds every activation.
    let (dropped, seen) = (
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(usize::MAX)),
    );
    let x = leaf(&[1.0, 2.0], 2);
    let p = Tensor::apply(
        Probe {
            dropped: dropped.clone(),
            seen: seen.clone(),
        },
        &[&x],
    )
    .unwrap();
    let loss = Tensor::apply(Tracked(dropped.clone()), &[&p])
        .unwrap()
        .sum_all()
        .unwrap();
    drop(p);
    loss.backward().unwrap();
    assert_eq!(
        seen.load(Ordering::SeqCst),
        1,
        "the later intermediate was freed before the earlier backward ran"
    );
}

#[test]
fn graph_lifetime_retain_graph_keeps_intermediates_until_the_output_is_dropped() {
    let dropped = Arc::new(AtomicUsize::new(0));
    let x = leaf(&[1.0, 2.0], 2);
    let loss = Tensor::apply(Tracked(dropped.clone()), &[&x])
        .unwrap()
        .sum_all()
        .unwrap();
    loss.backward_with(
        None,
        BackwardOptions {
            retain_graph: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    drop(loss);
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

#[test]
fn graph_lifetime_create_graph_gradient_in_dot_grad_keeps_the_graph_alive_until_zero_grad() {
    // With create_graph, x.grad is a graph node whose graph reaches back
    // through the forward graph to x itself: a reference cycle, as in
    // PyTorch. It lives until the gradient is cleared.
    let dropped = Arc::new(AtomicUsize::new(0));
    let x = leaf(&[1.0, 2.0], 2);
    let y = Tensor::apply(Tracked(dropped.clone()), &[&x]).unwrap();
    let loss = y.mul(&y).unwrap().sum_all().unwrap(); // mul's backward reads y
    loss.backward_with(
        None,
        BackwardOptions {
            create_graph: true,
            ..Default::default()
        },
    )
    .unwrap();
    drop((y, loss));
    assert_eq!(
        dropped.load(Ordering::SeqCst),
        0,
        "x.grad's graph still holds y"
    );
    x.zero_grad();
    assert_eq!(dropped.load(Ordering::SeqCst), 1);
}

/// `n` affine ops in a row, then a sum: each node's only input is the
/// previous node, so the graph is `n` deep.
fn chain(x: &Tensor, n: usize) -> Tensor {
    let mut y = x.clone();
    for _ in 0..n {
        y = y.affine(1.0001, 0.0).unwrap();
    }
    y.sum_all().unwrap()
}

#[test]
fn graph_lifetime_backward_through_a_10_000_op_chain() {
    let x = leaf(&[1.0, -1.0], 2);
    chain(&x, 10_000).backward().unwrap();
    let expected = 1.0001f64.powi(10_000);
    assert_close(&grad_values(&x), &[expected, expected], 1e-9);
}

#[test]
fn graph_lifetime_backward_through_a_100_000_op_chain() {
    let x = leaf(&[1.0], 1);
    chain(&x, 100_000).backward().unwrap();
    assert_close(&grad_values(&x), &[1.0001f64.powi(100_000)], 1e-8);
}

// ANCHOR: deep_drop
#[test]
fn graph_lifetime_dropping_a_100_000_op_graph_does_not_overflow_the_stack() {
    // Without the iterative `Drop`, dropping `y` would drop its input inside
    // its own drop, and so on 100 000 frames deep.
    let x = leaf(&[1.0], 1);
    let y = chain(&x, 100_000);
    drop(y);
    // The leaf is untouched and can start a new graph.
    assert!(x.requires_grad() && x.is_leaf());
}
// ANCHOR_END: deep_drop

#[test]
fn graph_lifetime_retained_100_000_op_graph_runs_twice_and_drops() {
    let x = leaf(&[1.0], 1);
    let y = chain(&x, 100_000);
    y.backward_with(
        None,
        BackwardOptions {
            retain_graph: true,
            ..Default::default()
        },
    )
    .unwrap();
    y.backward().unwrap();
    assert_close(&grad_values(&x), &[2.0 * 1.0001f64.powi(100_000)], 1e-8);
}

#[test]
fn graph_lifetime_deep_create_graph_result_drops_cleanly() {
    // create_graph builds a second graph as deep as the first; it is
    // dropped by the same loop.
    let x = leaf(&[0.3], 1);
    let mut y = x.clone();
    for _ in 0..10_000 {
        y = y.mul(&x).unwrap().affine(0.5, 0.0).unwrap();
    }
    let y = y.sum_all().unwrap();
    let g = chapter_03::grad(
        &y,
        &[&x],
        None,
        BackwardOptions {
            create_graph: true,
            ..Default::default()
        },
    )
    .unwrap()
    .remove(0)
    .unwrap();
    assert!(!g.is_leaf());
    drop(y);
    drop(g);
}

#[test]
fn graph_lifetime_a_wide_graph_is_walked_once_per_node() {
    // 1 000 uses of one leaf: every use contributes once.
    let x = leaf(&[2.0], 1);
    let mut acc = x.clone();
    for _ in 0..999 {
        acc = acc.add(&x).unwrap();
    }
    acc.sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&x), &[1000.0], 0.0);
}
