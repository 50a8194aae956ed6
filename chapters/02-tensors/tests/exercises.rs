//! Exercises for chapter 02. Each one is a function below whose body is
//! `todo!()`, and an ignored test that checks it. Fill in the function, then
//! run the tests with
//!
//! ```text
//! cargo test -p chapter-02 --test exercises -- --ignored
//! ```
//!
//! (or one of them: `... -- --ignored exercise_roll`). They fail until you
//! have written the function.

mod common;

use chapter_02::{DType, Result, Tensor};
use common::dev;

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::arange(0.0, n as f64, 1.0, DType::F32, &dev())
        .unwrap()
        .reshape(shape)
        .unwrap()
}

// ANCHOR: exercise_diag
/// Exercise 1. The diagonal of a 2-D tensor `[n, m]` as a 1-D *view* of
/// length `min(n, m)`, without copying: one `as_strided` call.
///
/// Hint: from `[i, i]` to `[i + 1, i + 1]` is one step along each
/// dimension, so the stride is the sum of the two strides. Start at the
/// view's own offset, so it also works for slices and transposes.
fn diag(t: &Tensor) -> Result<Tensor> {
    todo!("the diagonal of a tensor of shape {}", t.shape())
}
// ANCHOR_END: exercise_diag

#[test]
#[ignore = "exercise: implement `diag` as an `as_strided` view"]
fn exercise_diag_is_a_strided_view() {
    let x = iota(&[3, 3]);
    let d = diag(&x).unwrap();
    assert_eq!(d.to_vec::<f32>().unwrap(), [0.0, 4.0, 8.0]);
    assert!(d.same_storage(&x), "diag must be a view, not a copy");
    // The trace is then a sum over the view.
    assert_eq!(d.sum_all().unwrap().item().unwrap(), 12.0);
    // Non-square, transposed, and offset views.
    assert_eq!(
        diag(&iota(&[2, 4])).unwrap().to_vec::<f32>().unwrap(),
        [0.0, 5.0]
    );
    assert_eq!(
        diag(&iota(&[2, 4]).t().unwrap())
            .unwrap()
            .to_vec::<f32>()
            .unwrap(),
        [0.0, 5.0]
    );
    let block = iota(&[4, 4])
        .narrow(0, 1, 3)
        .unwrap()
        .narrow(1, 2, 2)
        .unwrap();
    assert_eq!(diag(&block).unwrap().to_vec::<f32>().unwrap(), [6.0, 11.0]);
}

// ANCHOR: exercise_roll
/// Exercise 2. `torch.roll`: shift the elements along `dim` by `shift`
/// places, wrapping around (a negative shift goes the other way).
/// `roll([0, 1, 2, 3, 4], 2, 0) = [3, 4, 0, 1, 2]`.
///
/// Hint: two `narrow`s and one `cat`. Reduce the shift modulo the size first.
fn roll(t: &Tensor, shift: isize, dim: usize) -> Result<Tensor> {
    todo!(
        "roll a tensor of shape {} by {shift} along {dim}",
        t.shape()
    )
}
// ANCHOR_END: exercise_roll

#[test]
#[ignore = "exercise: implement `roll` with `narrow` and `cat`"]
fn exercise_roll_wraps_around() {
    let x = iota(&[5]);
    assert_eq!(
        roll(&x, 2, 0).unwrap().to_vec::<f32>().unwrap(),
        [3.0, 4.0, 0.0, 1.0, 2.0]
    );
    assert_eq!(
        roll(&x, -1, 0).unwrap().to_vec::<f32>().unwrap(),
        [1.0, 2.0, 3.0, 4.0, 0.0]
    );
    assert_eq!(
        roll(&x, 7, 0).unwrap().to_vec::<f32>().unwrap(),
        [3.0, 4.0, 0.0, 1.0, 2.0]
    );
    assert_eq!(
        roll(&x, 0, 0).unwrap().to_vec::<f32>().unwrap(),
        [0.0, 1.0, 2.0, 3.0, 4.0]
    );
    let m = iota(&[2, 3]);
    assert_eq!(
        roll(&m, 1, 1).unwrap().to_vec2::<f32>().unwrap(),
        [[2.0, 0.0, 1.0], [5.0, 3.0, 4.0]]
    );
    assert_eq!(
        roll(&m, 1, 0).unwrap().to_vec2::<f32>().unwrap(),
        [[3.0, 4.0, 5.0], [0.0, 1.0, 2.0]]
    );
}

// ANCHOR: exercise_windows
/// Exercise 3. All windows of `size` consecutive elements of a 1-D tensor,
/// as a `[n - size + 1, size]` view (no copy): row `i` is
/// `t[i], ..., t[i + size - 1]`. This is the trick behind `unfold` and
/// im2col convolution (chapter 09). Return an error if `size` is 0 or
/// larger than `n`.
///
/// Hint: both strides are the input's own stride.
fn sliding_windows(t: &Tensor, size: usize) -> Result<Tensor> {
    todo!("windows of {size} over a tensor of shape {}", t.shape())
}
// ANCHOR_END: exercise_windows

#[test]
#[ignore = "exercise: implement `sliding_windows` as an `as_strided` view"]
fn exercise_sliding_windows_overlap_in_storage() {
    let x = iota(&[6]);
    let w = sliding_windows(&x, 3).unwrap();
    assert_eq!(
        w.to_vec2::<f32>().unwrap(),
        [
            [0.0, 1.0, 2.0],
            [1.0, 2.0, 3.0],
            [2.0, 3.0, 4.0],
            [3.0, 4.0, 5.0]
        ]
    );
    assert!(w.same_storage(&x), "windows must be a view, not a copy");
    // A moving sum is then one reduction.
    let moving_sum = w.sum([1], false).unwrap();
    assert_eq!(moving_sum.to_vec::<f32>().unwrap(), [3.0, 6.0, 9.0, 12.0]);
    // Works on a strided input: every other element of 0..12.
    let evens = iota(&[12]).slice(0, 0, 12, 2).unwrap();
    let w = sliding_windows(&evens, 4).unwrap();
    assert_eq!(w.dims(), &[3, 4]);
    assert_eq!(w.to_vec2::<f32>().unwrap()[2], [4.0, 6.0, 8.0, 10.0]);
    assert!(sliding_windows(&x, 7).is_err());
    assert!(sliding_windows(&x, 0).is_err());
}

// ANCHOR: exercise_softmax
/// Exercise 4. Softmax over the last dimension,
/// `softmax(x)_i = exp(x_i - max(x)) / Σ_j exp(x_j - max(x))`,
/// using only this chapter's ops. Subtracting the row maximum changes
/// nothing mathematically but keeps `exp` from overflowing.
///
/// Hint: `max` and `sum` with `keepdim = true` give `[.., 1]` tensors that
/// broadcast back against `[.., n]`.
fn softmax_last_dim(t: &Tensor) -> Result<Tensor> {
    todo!(
        "softmax over the last dimension of a tensor of shape {}",
        t.shape()
    )
}
// ANCHOR_END: exercise_softmax

#[test]
#[ignore = "exercise: implement `softmax_last_dim` with keepdim reductions and broadcasting"]
fn exercise_softmax_rows_sum_to_one() {
    let x = Tensor::new(&[1.0f64, 2.0, 3.0]).unwrap();
    let p = softmax_last_dim(&x).unwrap().to_vec::<f64>().unwrap();
    let expected = [0.09003057317038046, 0.24472847105479767, 0.6652409557748219];
    for (a, b) in p.iter().zip(expected) {
        assert!((a - b).abs() < 1e-12, "{p:?}");
    }
    // No overflow for large inputs.
    let big = Tensor::new(&[1000.0f32, 1000.0]).unwrap();
    assert_eq!(
        softmax_last_dim(&big).unwrap().to_vec::<f32>().unwrap(),
        [0.5, 0.5]
    );
    // Rows of a [2, 3, 4] tensor each sum to one.
    let x = iota(&[2, 3, 4]);
    let p = softmax_last_dim(&x).unwrap();
    assert_eq!(p.dims(), &[2, 3, 4]);
    for s in p.sum([-1], false).unwrap().to_vec::<f32>().unwrap() {
        assert!((s - 1.0).abs() < 1e-6);
    }
}
