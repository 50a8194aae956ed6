//! Helpers shared by the chapter's test files.
#![allow(dead_code)]

use chapter_02::{DType, Device, Shape, Tensor as RawTensor};
use chapter_03::{gradcheck, GradcheckOptions, Result, Tensor};

/// The device the suite runs on: the one `CANDLE_DEVICE` names (default
/// `cpu`), so that `CANDLE_DEVICE=cuda cargo test` runs this same suite on
/// a GPU. An unknown or unavailable device fails the test with the error,
/// which lists the known devices.
pub fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

/// Standard normal samples in `f64` from the default generator.
pub fn randn(shape: impl Into<Shape>) -> RawTensor {
    RawTensor::randn(0.0, 1.0, shape, DType::F64, &dev()).unwrap()
}

/// A constant `f64` tensor with the given values.
pub fn tensor(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

/// A leaf that requires grad, from raw values.
pub fn param(raw: RawTensor) -> Tensor {
    Tensor::param(raw).unwrap()
}

/// `i64` class ids / token ids.
pub fn ids(values: &[i64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

/// Elementwise `|a − b| ≤ atol + rtol·|b|`, with the worst element in the message.
pub fn assert_close(a: &[f64], b: &[f64], atol: f64, rtol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= atol + rtol * y.abs() || (x.is_nan() && y.is_nan()),
            "element {i}: {x} vs {y} (all: {a:?} vs {b:?})"
        );
    }
}

pub fn assert_tensors_close(a: &Tensor, b: &Tensor, atol: f64) {
    assert_eq!(a.dims(), b.dims(), "shapes differ");
    assert_close(&values(a), &values(b), atol, 1e-9);
}

/// Analytic gradients of `f` agree with central differences (in `f64`).
pub fn check_gradients(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[RawTensor]) {
    let report =
        gradcheck(f, inputs, GradcheckOptions::default()).unwrap_or_else(|e| panic!("{e}"));
    assert!(report.checked > 0, "gradcheck compared nothing");
}

/// Mean and (biased) variance of a list of numbers.
pub fn mean_var(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    (mean, v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n)
}
