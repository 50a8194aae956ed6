//! What the lessons share: small constructors for `f64` tensors, seeded
//! random inputs, and a tolerance comparison.
//!
//! Every test works in `f64`, the dtype in which finite differences are
//! accurate enough to judge a gradient (see `gradcheck`).

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use chapter_02::Generator;
use chapter_03::{
    gradcheck, DType, Device, GradcheckOptions, GradcheckReport, RawTensor, Result, Shape, Tensor,
};

/// The device the suite runs on: the one `CANDLE_DEVICE` names (default
/// `cpu`), so that `CANDLE_DEVICE=cuda cargo test` runs this same suite on
/// a GPU. An unknown or unavailable device fails the test with the error,
/// which lists the known devices.
pub fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

/// A raw (chapter 02) `f64` tensor.
pub fn raw(values: &[f64], shape: impl Into<Shape>) -> RawTensor {
    RawTensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

/// A constant: a leaf that does not require grad.
pub fn constant(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_raw(raw(values, shape))
}

/// A leaf that requires grad (a parameter).
pub fn leaf(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::param(raw(values, shape)).unwrap()
}

/// Standard-normal `f64` values from a seeded generator, so every run of a
/// test sees the same numbers.
pub fn randn(shape: impl Into<Shape>, seed: u64) -> RawTensor {
    let mut g = Generator::new(seed);
    RawTensor::randn_with(0.0, 1.0, shape, DType::F64, &dev(), &mut g).unwrap()
}

/// Uniform `f64` values in `[lo, hi)` from a seeded generator.
pub fn uniform(lo: f64, hi: f64, shape: impl Into<Shape>, seed: u64) -> RawTensor {
    let mut g = Generator::new(seed);
    RawTensor::rand_with(lo, hi, shape, DType::F64, &dev(), &mut g).unwrap()
}

/// The elements of a tensor, row-major.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

/// The accumulated gradient of a leaf, row-major.
pub fn grad_values(t: &Tensor) -> Vec<f64> {
    t.grad().unwrap().to_vec_f64().unwrap()
}

/// Elementwise `|a - e| <= tol * (1 + |e|)`, with a message naming the
/// first element that is off.
#[track_caller]
pub fn assert_close(actual: &[f64], expected: &[f64], tol: f64) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "lengths differ: {actual:?} vs {expected:?}"
    );
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tol * (1.0 + e.abs()),
            "element {i}: got {a}, expected {e} (tolerance {tol})\n  actual:   {actual:?}\n  expected: {expected:?}"
        );
    }
}

/// `gradcheck` with the default tolerances, panicking with its message.
#[track_caller]
pub fn check(
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
    inputs: impl AsRef<[RawTensor]>,
) -> GradcheckReport {
    match gradcheck(f, inputs.as_ref(), GradcheckOptions::default()) {
        Ok(report) => report,
        Err(e) => panic!("{e}"),
    }
}
