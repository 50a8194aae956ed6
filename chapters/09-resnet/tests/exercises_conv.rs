//! Exercises for the convolution page. Each test is ignored until you
//! implement the function above it (each one is a `todo!()` now). Run them
//! with
//!
//! ```text
//! cargo test -p chapter-09 --test exercises_conv -- --ignored
//! ```

mod common;

use chapter_03::{gradcheck, GradcheckOptions, Result, Tensor};
#[allow(unused_imports)] // your solutions will need these
use chapter_04::prelude::*;
#[allow(unused_imports)]
use chapter_09::{conv2d, unfold, Conv2dOptions, ConvGeometry};
use common::*;

// ANCHOR: conv1d
/// Exercise 1: a 1-D convolution, `x: [N, C, L]`, `weight: [O, C, k]` →
/// `[N, O, L_out]`, with `stride` and `padding` on both ends.
///
/// Hint: a sequence is an image of height 1. Two `unsqueeze`s, one
/// `conv2d` with a `1 × k` kernel, one `squeeze`; the backward comes free.
fn conv1d(x: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let _ = (x, weight, stride, padding);
    todo!("exercise: conv1d through conv2d")
}
// ANCHOR_END: conv1d

#[test]
#[ignore = "exercise: implement conv1d"]
fn exercise_conv1d() {
    let (x, w) = (input(&[2, 3, 9], 1), input(&[4, 3, 3], 2));
    let y = conv1d(&x, &w, 2, 1).unwrap();
    assert_eq!(y.dims(), vec![2, 4, 5]);
    // y[0, 0, 1] = Σ_c Σ_j w[0, c, j]·x[0, c, 2·1 + j − 1]
    let (xv, wv) = (x.to_vec_f64().unwrap(), w.to_vec_f64().unwrap());
    let want: f64 = (0..3)
        .flat_map(|c| (0..3).map(move |j| (c, j)))
        .map(|(c, j)| wv[c * 3 + j] * xv[c * 9 + 1 + j])
        .sum();
    assert!((y.to_vec_f64().unwrap()[1] - want).abs() < 1e-12);
    gradcheck(
        |t| conv1d(&t[0], &t[1], 2, 1),
        &[randn(&[1, 2, 7], 3), randn(&[3, 2, 3], 4)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

// ANCHOR: im2col_bytes
/// Exercise 2: the memory im2col costs. How many bytes does the patch
/// matrix of `geometry` take, for elements of `elem_bytes` bytes? And how
/// many times the input is that?
///
/// Hint: [`ConvGeometry::cols_shape`]. For ResNet-50's first layer (a
/// 7×7 stride-2 convolution of a 224×224 RGB batch of 32) the answer is
/// about 12 times the input.
fn im2col_bytes(geometry: &ConvGeometry, elem_bytes: usize) -> (usize, f64) {
    let _ = (geometry, elem_bytes);
    todo!("exercise: the size of the patch matrix")
}
// ANCHOR_END: im2col_bytes

#[test]
#[ignore = "exercise: implement im2col_bytes"]
fn exercise_im2col_bytes() {
    let opts = Conv2dOptions::default().stride(2).padding(3);
    let g = ConvGeometry::conv2d(&[32, 3, 224, 224], &[64, 3, 7, 7], None, &opts).unwrap();
    let (bytes, ratio) = im2col_bytes(&g, 4);
    assert_eq!(bytes, 32 * 3 * 49 * 112 * 112 * 4);
    assert!((ratio - 12.25).abs() < 1e-9, "{ratio}");
    let cols = unfold(&input(&[1, 2, 5, 5], 5), &g_small()).unwrap();
    assert_eq!(im2col_bytes(&g_small(), 8).0, cols.elem_count() * 8);
}

fn g_small() -> ConvGeometry {
    ConvGeometry::conv2d(
        &[1, 2, 5, 5],
        &[1, 2, 3, 3],
        None,
        &Conv2dOptions::default(),
    )
    .unwrap()
}
