//! Helpers shared by the chapter 04 lessons: small `f64` tensors, seeded
//! random inputs for `gradcheck`, and comparisons. Each test file uses the
//! ones it needs.
#![allow(dead_code)]

use chapter_02::Generator;
use chapter_03::{DType, Device, RawTensor, Result, Shape, Tensor};

/// The device the suite runs on: the one `CANDLE_DEVICE` names (default
/// `cpu`), so that `CANDLE_DEVICE=cuda cargo test` runs this same suite on
/// a GPU. An unknown or unavailable device fails the test with the error,
/// which lists the known devices.
pub fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

/// An `f64` constant.
pub fn t(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

/// An `f64` leaf that requires grad.
pub fn leaf(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    t(values, shape).requires_grad_().unwrap()
}

/// `0, 1, 2, ...` as an `f64` tensor of `shape`.
pub fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(
        &(0..n).map(|i| i as f64).collect::<Vec<_>>(),
        shape.to_vec(),
    )
}

pub fn values(x: &Tensor) -> Vec<f64> {
    x.to_vec_f64().unwrap()
}

/// Seeded standard-normal `f64` values, as a raw tensor for `gradcheck`.
pub fn randn(shape: &[usize], seed: u64) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        1.0,
        shape,
        DType::F64,
        &dev(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

/// Elementwise `|got − want| ≤ tol·(1 + |want|)`, naming the first bad element.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "element {i}: got {g}, want {w} (all: {got:?})"
        );
    }
}

/// The message of an error the call must return.
pub fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}
