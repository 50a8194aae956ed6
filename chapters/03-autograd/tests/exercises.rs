//! Exercises for chapter 03. Each test is ignored until you fill in the
//! function above it (each body is a `todo!()`); then run
//!
//! ```text
//! cargo test -p chapter-03 --test exercises -- --ignored
//! ```
//!
//! and remove the `#[ignore]` of the ones you have solved.

mod common;

use chapter_03::{grad, BackwardOptions, RawTensor, Result, Tensor};
use common::*;

const CREATE_GRAPH: BackwardOptions = BackwardOptions {
    retain_graph: false,
    create_graph: true,
};

// ANCHOR: exercise_sin
/// Exercise 1: `sin` as a [`CustomOp`](chapter_03::CustomOp).
///
/// The forward is `RawTensor::sin`; the backward is `g · cos x`. For the
/// backward to be differentiable itself (the second test below), `cos` must
/// be an autograd op too: write a `Cos` op whose backward is `−g · sin x`,
/// using your `Sin`.
#[allow(unused_variables)]
fn sin(x: &Tensor) -> Result<Tensor> {
    todo!("exercise: define `struct Sin` and `struct Cos`, implement CustomOp, return Tensor::apply(Sin, &[x])")
}

#[test]
#[ignore = "exercise: implement `sin` as a CustomOp"]
fn exercise_sin_custom_op() {
    check(|x| sin(&x[0]), [randn((3, 4), 1)]);
    // Second derivative: d²/dx² sin x = −sin x.
    let x = leaf(&[0.3, -1.2, 2.0], 3);
    let g = grad(
        &sin(&x).unwrap().sum_all().unwrap(),
        &[&x],
        None,
        CREATE_GRAPH,
    )
    .unwrap()
    .remove(0)
    .unwrap();
    let gg = grad(
        &g.sum_all().unwrap(),
        &[&x],
        None,
        BackwardOptions::default(),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    assert_close(
        &values(&gg),
        &[-0.3f64.sin(), 1.2f64.sin(), -2.0f64.sin()],
        1e-12,
    );
}
// ANCHOR_END: exercise_sin

// ANCHOR: exercise_log1p
/// Exercise 2: `ln(1 + x)` accurate for tiny `x`.
///
/// `x.add_scalar(1.0)?.log()` loses the digits of `x` below `1e-16` when it
/// rounds `1 + x`: for `x = 1e-12` its result is off by about `1e-4`
/// relative. Write a `Log1p` op whose forward uses `f64::ln_1p` (go through
/// `to_vec_f64` and `RawTensor::from_f64_vec`) and whose backward is
/// `g / (1 + x)`, written with tensor ops.
#[allow(unused_variables)]
fn log1p(x: &Tensor) -> Result<Tensor> {
    todo!("exercise: a Log1p CustomOp with forward f64::ln_1p and backward g / (1 + x)")
}

#[test]
#[ignore = "exercise: implement a numerically stable `log1p`"]
fn exercise_log1p_stable() {
    let tiny = [1e-12, -3e-15, 1e-300];
    let y = log1p(&constant(&tiny, 3)).unwrap();
    for (got, x) in values(&y).iter().zip(tiny) {
        assert!(
            (got - x.ln_1p()).abs() <= 1e-15 * x.abs(),
            "log1p({x}) = {got}"
        );
    }
    check(|x| log1p(&x[0]), [uniform(-0.5, 3.0, (2, 3), 2)]);
    // The backward is an autograd expression: −1/(1+x)² comes for free.
    let x = leaf(&[0.5], 1);
    let g = grad(
        &log1p(&x).unwrap().sum_all().unwrap(),
        &[&x],
        None,
        CREATE_GRAPH,
    )
    .unwrap()
    .remove(0)
    .unwrap();
    let gg = grad(
        &g.sum_all().unwrap(),
        &[&x],
        None,
        BackwardOptions::default(),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    assert_close(&values(&gg), &[-1.0 / 2.25], 1e-12);
}
// ANCHOR_END: exercise_log1p

// ANCHOR: exercise_jvp
/// Exercise 3: a forward-mode product `J v` from two reverse passes.
///
/// With a dummy `u` (same shape as `f(x)`, requiring grad), `grad` of
/// `Σ f(x)·u` with respect to `x` and `create_graph` is `Jᵀu`, which is
/// linear in `u`. Its VJP with `v`, `grad(Σ Jᵀu · v, u)`, is then `J v`.
#[allow(unused_variables)]
fn jvp(f: impl Fn(&Tensor) -> Result<Tensor>, x: &RawTensor, v: &RawTensor) -> Result<Tensor> {
    todo!("exercise: the double-VJP trick, with grad(.., create_graph: true) then grad(.., u)")
}

#[test]
#[ignore = "exercise: implement `jvp` with double backward"]
fn exercise_jvp_by_double_backward() {
    let w = Tensor::from_raw(randn((3, 4), 3));
    let f = |x: &Tensor| x.matmul(&w)?.tanh();
    let (x, v) = (randn(3, 4), randn(3, 5));
    let jv = jvp(f, &x, &v).unwrap();
    assert_eq!(jv.dims(), [4]);
    // Central difference along v: (f(x + εv) − f(x − εv)) / 2ε.
    let eps = 1e-6;
    let at = |s: f64| {
        values(
            &f(&Tensor::from_raw(
                x.add(&v.affine(s * eps, 0.0).unwrap()).unwrap(),
            ))
            .unwrap(),
        )
    };
    let numeric: Vec<f64> = at(1.0)
        .iter()
        .zip(at(-1.0))
        .map(|(a, b)| (a - b) / (2.0 * eps))
        .collect();
    assert_close(&values(&jv), &numeric, 1e-7);
}
// ANCHOR_END: exercise_jvp

// ANCHOR: exercise_hessian
/// Exercise 4: the full Hessian of a scalar function of a vector, one row
/// per Hessian-vector product (`∇(∇f · eᵢ)` with `create_graph`).
#[allow(unused_variables)]
fn hessian(f: impl Fn(&Tensor) -> Result<Tensor>, x: &RawTensor) -> Result<Vec<Vec<f64>>> {
    todo!("exercise: n Hessian-vector products with the basis vectors e_i")
}

#[test]
#[ignore = "exercise: implement `hessian` from Hessian-vector products"]
fn exercise_hessian_from_hvps() {
    // f = (x·x)²: H = 8 x xᵀ + 4 (x·x) I.
    let xs = [1.0, -2.0, 0.5];
    let f = |x: &Tensor| x.mul(x)?.sum_all()?.powf(2.0);
    let h = hessian(f, &raw(&xs, 3)).unwrap();
    let norm2: f64 = xs.iter().map(|x| x * x).sum();
    for i in 0..3 {
        let expected: Vec<f64> = (0..3)
            .map(|j| 8.0 * xs[i] * xs[j] + if i == j { 4.0 * norm2 } else { 0.0 })
            .collect();
        assert_close(&h[i], &expected, 1e-12);
    }
}
// ANCHOR_END: exercise_hessian
