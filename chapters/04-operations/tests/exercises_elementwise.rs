//! Exercises for the elementwise operations. Each test is ignored until you
//! fill in the function above it (each body is a `todo!()`); then run
//!
//! ```text
//! cargo test -p chapter-04 --test exercises_elementwise -- --ignored
//! ```
//!
//! and remove the `#[ignore]` of the ones you have solved. Each asks for a
//! [`CustomOp`](chapter_03::CustomOp) with forward and backward side by
//! side, as in `src/elementwise.rs`.

use chapter_02::Generator;
use chapter_03::{
    gradcheck, set_grad_enabled, BackwardOptions, DType, GradcheckOptions, RawTensor, Result,
    Shape, Tensor,
};
#[allow(unused_imports)] // for your solutions
use chapter_03::{BackwardCtx, CustomOp};
#[allow(unused_imports)] // for your solutions
use chapter_04::prelude::*;

/// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn dev() -> chapter_02::Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------- helpers

fn t(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

fn values(x: &Tensor) -> Vec<f64> {
    x.to_vec_f64().unwrap()
}

fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w}"
        );
    }
}

fn randn(shape: &[usize], seed: u64) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        1.5,
        shape,
        DType::F64,
        &dev(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

/// `∂(Σ f(x))/∂x` at `x`, by `backward`.
fn grad_of(f: impl Fn(&Tensor) -> Result<Tensor>, x: &[f64]) -> Vec<f64> {
    let x = t(x, x.len()).requires_grad_().unwrap();
    f(&x).unwrap().sum_all().unwrap().backward().unwrap();
    values(&x.grad().unwrap())
}

/// `gradcheck` of `x ↦ ∂(Σ f(x))/∂x`: the backward pass is differentiable.
fn check_second_order(f: impl Fn(&Tensor) -> Result<Tensor>, x: RawTensor) {
    let df = |xs: &[Tensor]| -> Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let x = if xs[0].requires_grad() {
            xs[0].clone()
        } else {
            Tensor::param(xs[0].data())?
        };
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        Ok(chapter_03::grad(&f(&x)?.sum_all()?, &[&x], None, opts)?
            .remove(0)
            .unwrap())
    };
    gradcheck(df, &[x], GradcheckOptions::default()).unwrap();
}

// ANCHOR: exercise_mish
/// Exercise 1: Mish, `x·tanh(softplus(x))` (Misra, 2019), as one CustomOp.
///
/// With `s = softplus(x)` and `t = tanh(s)`, the chain rule gives
/// `d/dx = t + x·(1 − t²)·σ(x)` (because `softplus' = σ`). Compute the
/// forward on raw tensors (chapter 02 has `tanh`; for `softplus` reuse the
/// stable form of this chapter or call the autograd op on a constant) and
/// write the backward with autograd ops so that it is differentiable too.
#[allow(unused_variables)]
fn mish(x: &Tensor) -> Result<Tensor> {
    todo!("exercise: define `struct Mish`, implement CustomOp, return Tensor::apply(Mish, &[x])")
}

#[test]
#[ignore = "exercise: implement `mish` as a CustomOp"]
fn exercise_mish_custom_op() {
    let y = mish(&t(&[-2.0, -0.5, 0.0, 1.0, 3.0], 5)).unwrap();
    let want = [
        -0.2525014826957089,
        -0.22074377465173,
        0.0,
        0.8650983882673103,
        2.9865350049679575,
    ];
    assert_close(&values(&y), &want, 1e-14);
    assert_eq!(
        y.op_name(),
        None,
        "a constant input gives a constant output"
    );
    let x = t(&[1.0], 1).requires_grad_().unwrap();
    assert_eq!(
        mish(&x).unwrap().op_name(),
        Some("mish"),
        "one node named `mish`"
    );
    gradcheck(
        |x| mish(&x[0]),
        &[randn(&[2, 3], 1)],
        GradcheckOptions::default(),
    )
    .unwrap();
    check_second_order(mish, randn(&[4], 2));
}
// ANCHOR_END: exercise_mish

// ANCHOR: exercise_hardtanh
/// Exercise 2: `hardtanh(x, lo, hi)`, the clamp that activations use.
///
/// The forward is `RawTensor::clamp`. The backward differs from this
/// chapter's `clamp` in one place, PyTorch's convention for `hardtanh`:
/// the gradient is 1 only strictly inside, `lo < x < hi`, and 0 *at* the
/// bounds. Return an error naming `hardtanh` when `lo > hi`.
#[allow(unused_variables)]
fn hardtanh(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    todo!(
        "exercise: define `struct HardTanh {{ lo, hi }}` with a strict-inequality mask in backward"
    )
}

#[test]
#[ignore = "exercise: implement `hardtanh` with PyTorch's boundary convention"]
fn exercise_hardtanh_boundaries() {
    let x = [-2.0, -1.0, 0.0, 0.5, 1.0, 2.0];
    let y = hardtanh(&t(&x, 6), -1.0, 1.0).unwrap();
    assert_eq!(values(&y), [-1.0, -1.0, 0.0, 0.5, 1.0, 1.0]);
    assert_eq!(
        grad_of(|x| hardtanh(x, -1.0, 1.0), &x),
        [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]
    );
    let e = hardtanh(&t(&x, 6), 1.0, -1.0).unwrap_err().to_string();
    assert!(e.starts_with("hardtanh"), "the error names the op: {e}");
}
// ANCHOR_END: exercise_hardtanh

// ANCHOR: exercise_log_sigmoid
/// Exercise 3: a stable `log σ(x)`, the log-likelihood term of logistic
/// regression.
///
/// `x.sigmoid()?.log()` returns `−∞` at `x = −1000`, because `σ(−1000)`
/// underflows to 0; the true value is about `−1000`. Use the identity
/// `log σ(x) = −softplus(−x) = min(x, 0) − log(1 + e^(−|x|))`, in which the
/// exponential never exceeds 1. The derivative is `1 − σ(x) = σ(−x)`.
#[allow(unused_variables)]
fn log_sigmoid(x: &Tensor) -> Result<Tensor> {
    todo!(
        "exercise: define `struct LogSigmoid` whose forward never exponentiates a positive number"
    )
}

#[test]
#[ignore = "exercise: implement a numerically stable `log_sigmoid`"]
fn exercise_log_sigmoid_stable() {
    let x = [-1000.0, -2.0, 0.0, 3.0, 1000.0];
    let y = log_sigmoid(&t(&x, 5)).unwrap();
    let want = [
        -1000.0,
        -2.1269280110429727,
        -std::f64::consts::LN_2,
        -0.04858735157374206,
        0.0,
    ];
    assert_close(&values(&y), &want, 1e-14);
    let g = grad_of(log_sigmoid, &x);
    assert_close(
        &g,
        &[1.0, 0.8807970779778824, 0.5, 0.04742587317756679, 0.0],
        1e-14,
    );
    gradcheck(
        |x| log_sigmoid(&x[0]),
        &[randn(&[2, 3], 3)],
        GradcheckOptions::default(),
    )
    .unwrap();
    check_second_order(log_sigmoid, randn(&[4], 4));
}
// ANCHOR_END: exercise_log_sigmoid

// ANCHOR: exercise_l2_norm
/// The Reductions page's exercise: the Euclidean norm `‖x‖ = √(Σ xᵢ²)` over `dims`.
///
/// Its gradient is `x/‖x‖`, the unit vector along `x`; at `x = 0` that is
/// `0/0`, and like `abs` at 0 (and PyTorch's `vector_norm`) we choose the
/// subgradient 0. A composition `x.square()?.sum(..)?.sqrt()` gets the
/// value right but the gradient at 0 wrong (NaN): write a CustomOp whose
/// backward masks the zero norms, as `std` does in `src/reduce.rs`.
#[allow(unused_variables)]
fn l2_norm(x: &Tensor, dims: &[i64], keepdim: bool) -> Result<Tensor> {
    todo!("exercise: define `struct L2Norm {{ axes, keepdim }}` with backward g·x/‖x‖, 0 where ‖x‖ = 0")
}

#[test]
#[ignore = "exercise: implement `l2_norm` with a zero subgradient at 0"]
fn exercise_l2_norm_gradient_at_zero() {
    let x = t(&[3.0, 4.0, 0.0, 0.0], (2, 2)).requires_grad_().unwrap();
    let n = l2_norm(&x, &[1], false).unwrap();
    assert_eq!(values(&n), [5.0, 0.0]);
    n.sum_all().unwrap().backward().unwrap();
    assert_close(&values(&x.grad().unwrap()), &[0.6, 0.8, 0.0, 0.0], 1e-15);
    assert_eq!(l2_norm(&x, &[-1], true).unwrap().dims(), [2, 1]);
    let f = |x: &[Tensor]| l2_norm(&x[0], &[0, 2], false);
    gradcheck(f, &[randn(&[2, 3, 4], 5)], GradcheckOptions::default()).unwrap();
}
// ANCHOR_END: exercise_l2_norm

// ANCHOR: exercise_cross_entropy
/// The Softmax page's exercise: cross-entropy from logits as one fused CustomOp.
///
/// For logits `z: [n, c]` and class ids `t: [n]` (`i64`), the loss is
/// `L = −(1/n) Σᵢ log_softmax(zᵢ)[tᵢ]`, and its gradient is remarkably
/// simple: `∂L/∂z = (softmax(z) − one_hot(t))/n`. Computing the loss with
/// `log_softmax`, `one_hot` and a sum works; here write it as a single op
/// whose forward uses the max-subtracted log-softmax and whose backward is
/// that formula (scaled by the incoming gradient, a 0-d tensor).
#[allow(unused_variables)]
fn cross_entropy(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    todo!("exercise: define `struct CrossEntropy` with backward g·(softmax(z) − one_hot(t))/n")
}

#[test]
#[ignore = "exercise: implement a fused `cross_entropy` with the softmax-minus-one-hot gradient"]
fn exercise_cross_entropy_fused() {
    let z = t(&[2.0, 1.0, 0.1, 0.5, 2.5, -1.0], (2, 3))
        .requires_grad_()
        .unwrap();
    let targets = Tensor::from_vec(vec![0i64, 2], 2, &dev()).unwrap();
    let loss = cross_entropy(&z, &targets).unwrap();
    assert_eq!(loss.dims(), Vec::<usize>::new());
    assert_close(&[loss.item().unwrap()], &[2.035104111700061], 1e-14);
    loss.backward().unwrap();
    let want = [
        -0.17049943055701605,
        0.12121648535235695,
        0.0492829452046591,
        0.058057267337070576,
        0.4289884053042286,
        -0.4870456726412992,
    ];
    assert_close(&values(&z.grad().unwrap()), &want, 1e-14);
    // Huge logits stay finite.
    let big = t(&[1e4, 0.0, -1e4, 0.0], (2, 2));
    let ids = Tensor::from_vec(vec![1i64, 0], 2, &dev()).unwrap();
    assert_close(
        &[cross_entropy(&big, &ids).unwrap().item().unwrap()],
        &[1e4],
        1e-12,
    );
    let f = |x: &[Tensor]| cross_entropy(&x[0], &x[1]);
    let ids = RawTensor::from_vec(vec![3i64, 0, 1], 3, &dev()).unwrap();
    gradcheck(f, &[randn(&[3, 4], 6), ids], GradcheckOptions::default()).unwrap();
}
// ANCHOR_END: exercise_cross_entropy
