//! Lesson: finding the op that made a NaN. A NaN spreads silently through
//! every later op, so by the time the loss shows it, the culprit is long
//! gone. Anomaly mode checks each op's result and each gradient and fails
//! at the first one that is not finite, naming the op and its input shapes.
//! It costs a pass over every result, so it is opt-in.
//! `cargo test -p chapter-03 anomaly` runs these.

mod common;

use chapter_03::{
    detect_anomaly, is_anomaly_enabled, BackwardCtx, CustomOp, RawTensor, Result, Tensor,
};
use common::*;

// ANCHOR: anomaly_forward
#[test]
fn anomaly_log_of_a_negative_input_is_named_with_its_shape() {
    let x = leaf(&[1.0, -1.0, 2.0], 3);
    let _anomaly = detect_anomaly();
    let e = x.log().unwrap_err();
    assert_eq!(
        e.to_string(),
        "anomaly: log produced NaN in its forward pass (input shapes [3])"
    );
}
// ANCHOR_END: anomaly_forward

#[test]
fn anomaly_log_of_zero_is_minus_infinity() {
    let x = leaf(&[0.0, 1.0, 2.0, 3.0], (2, 2));
    let _anomaly = detect_anomaly();
    let e = x.log().unwrap_err();
    assert_eq!(
        e.to_string(),
        "anomaly: log produced -inf in its forward pass (input shapes [2, 2])"
    );
}

#[test]
fn anomaly_without_the_mode_nan_passes_silently() {
    assert!(!is_anomaly_enabled());
    let x = leaf(&[1.0, -1.0], 2);
    let y = x.log().unwrap();
    assert!(values(&y)[1].is_nan());
    // ... and on into the loss, and the gradient.
    let loss = y.sum_all().unwrap();
    assert!(loss.item().unwrap().is_nan());
    loss.backward().unwrap();
    assert_close(&grad_values(&x), &[1.0, -1.0], 0.0);
}

/// `√x` with its backward `g / (2√x)` computed on raw values, so the
/// infinity at `x = 0` appears in the gradient this op returns.
struct RawSqrt;
impl CustomOp for RawSqrt {
    fn name(&self) -> &'static str {
        "sqrt"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sqrt()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let d = g.data().div(&ctx.output.data().affine(2.0, 0.0)?)?;
        Ok(vec![Some(Tensor::from_raw(d))])
    }
}

// ANCHOR: anomaly_backward
#[test]
fn anomaly_a_backward_producing_infinity_is_named() {
    let x = leaf(&[4.0, 0.0], 2);
    let _anomaly = detect_anomaly();
    let y = Tensor::apply(RawSqrt, &[&x]).unwrap().sum_all().unwrap(); // forward is finite
    let e = y.backward().unwrap_err();
    assert_eq!(
        e.to_string(),
        "anomaly: sqrt produced inf in its backward pass (input shapes [2])"
    );
}

#[test]
fn anomaly_inside_a_backward_formula_names_both_ops() {
    // d/dx x^0.5 = 0.5·x^-0.5: the backward's own powf makes the infinity.
    let x = leaf(&[4.0, 0.0, 1.0], 3);
    let _anomaly = detect_anomaly();
    let y = x.powf(0.5).unwrap().sum_all().unwrap();
    let e = y.backward().unwrap_err();
    assert_eq!(
        e.to_string(),
        "anomaly: powf produced inf in its forward pass (input shapes [3]), \
         while computing the backward pass of `powf`"
    );
}
// ANCHOR_END: anomaly_backward

#[test]
fn anomaly_division_by_zero_in_the_forward_pass() {
    let a = leaf(&[1.0, 2.0], 2);
    let b = leaf(&[1.0, 0.0], 2);
    let _anomaly = detect_anomaly();
    let e = a.div(&b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "anomaly: div produced inf in its forward pass (input shapes [2], [2])"
    );
}

#[test]
fn anomaly_without_the_mode_the_infinite_gradient_is_returned() {
    let x = leaf(&[4.0, 0.0], 2);
    Tensor::apply(RawSqrt, &[&x])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    let g = grad_values(&x);
    assert_eq!(g[0], 0.25);
    assert!(g[1].is_infinite());
}

#[test]
fn anomaly_guard_restores_the_previous_mode() {
    assert!(!is_anomaly_enabled());
    {
        let _a = detect_anomaly();
        assert!(is_anomaly_enabled());
        // Finite computations are unaffected.
        let x = leaf(&[1.0, 2.0], 2);
        x.log().unwrap().sum_all().unwrap().backward().unwrap();
        assert_close(&grad_values(&x), &[1.0, 0.5], 0.0);
    }
    assert!(!is_anomaly_enabled());
}
