//! Lesson: printing. `{}` prints a tensor the way PyTorch does (nested
//! brackets, one column width, big tensors summarised), then its shape,
//! dtype and device. `cargo test -p chapter-02 display` runs these.

mod common;

use chapter_02::{DType, Tensor};
use common::*;

// ANCHOR: display_lesson
#[test]
fn display_matrix_like_pytorch() {
    let x = tensor(&[1.0f32, 2.0, 3.0, 4.0], (2, 2));
    assert_eq!(
        x.to_string(),
        "tensor([[1., 2.],\n        [3., 4.]], shape=[2, 2], dtype=f32, device=cpu)"
    );
    let y = tensor(&[1.5f32, -2.25], 2);
    assert_eq!(
        y.to_string(),
        "tensor([ 1.5000, -2.2500], shape=[2], dtype=f32, device=cpu)"
    );
}
// ANCHOR_END: display_lesson

#[test]
fn display_integers_and_masks() {
    let x = tensor(&[1i64, -20, 300], 3);
    assert_eq!(
        x.to_string(),
        "tensor([  1, -20, 300], shape=[3], dtype=i64, device=cpu)"
    );
    let m = tensor(&[1u8, 0, 1], 3);
    assert_eq!(
        m.to_string(),
        "tensor([1, 0, 1], shape=[3], dtype=u8, device=cpu)"
    );
}

#[test]
fn display_scalars_and_empty_tensors() {
    let s = Tensor::scalar(2.5f64, &dev()).unwrap();
    assert_eq!(
        s.to_string(),
        "tensor(2.5000, shape=[], dtype=f64, device=cpu)"
    );
    let e = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    assert_eq!(
        e.to_string(),
        "tensor([], shape=[0, 3], dtype=f32, device=cpu)"
    );
}

#[test]
fn display_three_dimensions_separates_blocks_with_a_blank_line() {
    let x = iota(&[2, 2, 2], DType::I64);
    let expected = "\
tensor([[[0, 1],
         [2, 3]],

        [[4, 5],
         [6, 7]]], shape=[2, 2, 2], dtype=i64, device=cpu)";
    assert_eq!(x.to_string(), expected);
}

#[test]
fn display_special_and_tiny_values() {
    let x = tensor(&[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.5], 4);
    assert_eq!(
        x.to_string(),
        "tensor([   nan,    inf,   -inf, 1.5000], shape=[4], dtype=f32, device=cpu)"
    );
    let y = tensor(&[-1.0f64, 2.0], 2);
    assert_eq!(
        y.to_string(),
        "tensor([-1.,  2.], shape=[2], dtype=f64, device=cpu)"
    );
    let z = tensor(&[1e-5f64, 1.0], 2);
    assert_eq!(
        z.to_string(),
        "tensor([1.0000e-5,    1.0000], shape=[2], dtype=f64, device=cpu)"
    );
}

#[test]
fn display_prints_the_view_not_the_storage() {
    let x = iota(&[2, 3], DType::I64).t().unwrap();
    assert_eq!(
        x.to_string(),
        "tensor([[0, 3],\n        [1, 4],\n        [2, 5]], shape=[3, 2], dtype=i64, device=cpu)"
    );
}

// ANCHOR: display_summary
#[test]
fn display_summarises_large_tensors() {
    // More than 1000 elements: the first and last three of each dimension.
    let x = iota(&[2000], DType::I64);
    assert_eq!(
        x.to_string(),
        "tensor([   0,    1,    2, ..., 1997, 1998, 1999], shape=[2000], dtype=i64, device=cpu)"
    );
    let m = iota(&[100, 100], DType::F32);
    let expected = "\
tensor([[   0.,    1.,    2., ...,   97.,   98.,   99.],
        [ 100.,  101.,  102., ...,  197.,  198.,  199.],
        [ 200.,  201.,  202., ...,  297.,  298.,  299.],
        ...,
        [9700., 9701., 9702., ..., 9797., 9798., 9799.],
        [9800., 9801., 9802., ..., 9897., 9898., 9899.],
        [9900., 9901., 9902., ..., 9997., 9998., 9999.]], shape=[100, 100], dtype=f32, device=cpu)";
    assert_eq!(m.to_string(), expected);
}
// ANCHOR_END: display_summary

#[test]
fn display_debug_is_short() {
    let x = Tensor::zeros((2, 2), DType::F32, &dev()).unwrap();
    assert_eq!(
        format!("{x:?}"),
        "Tensor[shape=[2, 2], dtype=f32, device=cpu]"
    );
    assert_eq!(format!("{:?}", x.shape()), "[2, 2]");
    assert_eq!(format!("{}", DType::I64), "i64");
}
