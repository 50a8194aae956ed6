//! Lesson: errors say which operation failed and what it was given. Methods
//! return `Result` (use `?`); operators, which cannot, panic with the very
//! same message. `cargo test -p chapter-02 error` runs these.

mod common;

use chapter_02::{DType, Error, Result, Shape, Tensor};
use common::*;

fn zeros(shape: impl Into<Shape>, dtype: DType) -> Tensor {
    Tensor::zeros(shape, dtype, &dev()).unwrap()
}

fn message(r: Result<Tensor>) -> String {
    r.unwrap_err().to_string()
}

// ANCHOR: error_messages
#[test]
fn error_messages_name_the_op_and_what_it_was_given() {
    let a = zeros((2, 3), DType::F32);
    let b = zeros(4, DType::F32);
    let c = zeros((2, 3), DType::F64);
    assert_eq!(message(a.add(&b)), "add: cannot broadcast [2, 3] with [4]");
    assert_eq!(message(a.mul(&c)), "mul: dtype mismatch f32 vs f64");
    assert_eq!(
        message(a.matmul(&zeros((4, 5), DType::F32))),
        "matmul: shape mismatch [2, 3] vs [4, 5] (inner dimensions 3 and 4 differ)"
    );
    assert_eq!(
        message(a.transpose(0, 2)),
        "transpose: dimension 2 out of range for a tensor of shape [2, 3]"
    );
    assert_eq!(
        message(a.sum([-3], false)),
        "sum: dimension -3 out of range for a tensor of shape [2, 3]"
    );
    let ids = tensor(&[0i64, 5], 2);
    assert_out_of_range(&message(a.index_select(&ids, 1)), "index_select", 5, 3);
    assert_eq!(
        message(zeros(3, DType::I64).exp()),
        "exp: not supported for dtype i64"
    );
}
// ANCHOR_END: error_messages

#[test]
fn error_values_can_be_matched_not_just_printed() {
    let a = zeros((2, 3), DType::F32);
    match a.add(&zeros(4, DType::F32)) {
        Err(Error::Broadcast { op, lhs, rhs }) => {
            assert_eq!(op, "add");
            assert_eq!(lhs.dims(), &[2, 3]);
            assert_eq!(rhs.dims(), &[4]);
        }
        other => panic!("expected a broadcast error, got {other:?}"),
    }
    assert!(matches!(
        a.sub(&zeros(3, DType::I64)),
        Err(Error::DTypeMismatch {
            op: "sub",
            lhs: DType::F32,
            rhs: DType::I64
        })
    ));
    assert!(matches!(
        a.narrow(5, 0, 1),
        Err(Error::DimOutOfRange {
            op: "narrow",
            dim: 5,
            ..
        })
    ));
    assert!(matches!(
        zeros(2, DType::U8).sqrt(),
        Err(Error::UnsupportedDType {
            op: "sqrt",
            dtype: DType::U8
        })
    ));
    assert!(matches!(
        a.reshape(7),
        Err(Error::ShapeMismatch { op: "reshape", .. })
    ));
    assert!(matches!(
        a.slice(0, 0, 1, 0),
        Err(Error::Invalid { op: "slice", .. })
    ));
}

// ANCHOR: question_mark
/// Errors compose with `?`: the first failing step's message comes out.
fn normalise_rows(x: &Tensor) -> Result<Tensor> {
    let total = x.sum([-1], true)?;
    x.div(&total)
}

#[test]
fn error_propagates_through_question_mark() {
    let x = tensor(&[1.0f32, 3.0, 2.0, 2.0], (2, 2));
    assert_eq!(values(&normalise_rows(&x).unwrap()), [0.25, 0.75, 0.5, 0.5]);
    let s = Tensor::scalar(1.0f32, &dev()).unwrap();
    assert_eq!(
        message(normalise_rows(&s)),
        "sum: dimension -1 out of range for a tensor of shape []"
    );
    // It is a std::error::Error, so it also boxes into `Box<dyn Error>`.
    let boxed: Box<dyn std::error::Error> = Box::new(normalise_rows(&s).unwrap_err());
    assert!(boxed.to_string().starts_with("sum:"));
}
// ANCHOR_END: question_mark

#[test]
fn error_for_shapes_that_do_not_fit_a_view() {
    let a = iota(&[2, 3], DType::F32);
    assert_eq!(
        message(a.reshape((4, 2))),
        "reshape: shape mismatch [2, 3] vs [4, 2] (element counts differ)"
    );
    assert_eq!(
        message(a.view(7)),
        "view: shape mismatch [2, 3] vs [7] (element counts differ)"
    );
    assert_eq!(
        message(a.t().unwrap().view(6)),
        "view: shape [3, 2] with strides [1, 3] cannot be viewed as [6]; use reshape"
    );
    assert_eq!(
        message(a.unsqueeze(4)),
        "unsqueeze: dimension 4 out of range for a tensor of shape [2, 3]"
    );
    assert_eq!(
        message(a.as_strided((2, 2), &[1], 0)),
        "as_strided: 1 strides for shape [2, 2]"
    );
    assert_eq!(
        message(a.reshape(6).unwrap().t()),
        "t: needs at least 2 dimensions, got shape [6]"
    );
    assert_eq!(
        a.to_vec::<f64>().unwrap_err().to_string(),
        "to_vec: dtype mismatch f32 vs f64"
    );
    assert_eq!(
        a.reshape(6)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap_err()
            .to_string(),
        "to_vec2: expected a 2-D tensor, got shape [6]"
    );
}

// ---------------------------------------------------------------------------
// Operators panic with the method's message.

// ANCHOR: operator_panics
#[test]
#[should_panic(expected = "add: cannot broadcast [2, 3] with [4]")]
fn error_operator_add_panics_with_the_same_message() {
    let _ = &zeros((2, 3), DType::F32) + &zeros(4, DType::F32);
}
// ANCHOR_END: operator_panics

#[test]
#[should_panic(expected = "sub: cannot broadcast [3] with [2]")]
fn error_operator_sub_panics_with_the_same_message() {
    let _ = zeros(3, DType::F32) - zeros(2, DType::F32);
}

#[test]
#[should_panic(expected = "mul: dtype mismatch f32 vs f64")]
fn error_operator_mul_panics_on_a_dtype_mismatch() {
    let _ = &zeros(3, DType::F32) * zeros(3, DType::F64);
}

#[test]
#[should_panic(expected = "div: not supported for dtype i64")]
fn error_operator_div_panics_for_integers() {
    let _ = zeros(3, DType::I64) / &zeros(3, DType::I64);
}

#[test]
#[should_panic(expected = "add_scalar: not supported for dtype i64")]
fn error_operator_with_a_scalar_panics_naming_the_scalar_op() {
    let _ = &zeros(3, DType::I64) + 1.0;
}

#[test]
#[should_panic(expected = "neg: not supported for dtype u8")]
fn error_operator_neg_panics_for_masks() {
    let _ = -zeros(3, DType::U8);
}
