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

/// Checks the error of an out-of-range index: it names the op, the index and
/// the size of the dimension. The CPU finds the index in the op layer,
/// before any kernel runs (`index_select: index 5 is out of range for a
/// dimension of size 3`); a GPU finds it in its kernel and says which
/// device and shapes (`index_select on cuda:0: index 5 is out of range for
/// dimension 0 of size 3 (source [3, 2], ids [2])`). Both must say these three.
pub fn assert_out_of_range(message: &str, op: &str, index: i64, size: usize) {
    assert!(
        message.starts_with(&format!("{op}:")) || message.starts_with(&format!("{op} on ")),
        "{message:?} does not start with the op {op}"
    );
    assert!(
        message.contains(&format!("index {index} is out of range"))
            && message.contains(&format!("of size {size}")),
        "{message:?} does not name index {index} and size {size}"
    );
}
