//! Exercises for the shape, indexing and product sections. Each test is
//! ignored until you implement the function above it (each one is a
//! `todo!()` now). Run them with
//!
//! ```text
//! cargo test -p chapter-04 --test exercises_shape -- --ignored
//! ```
//!
//! Every exercise can be solved with the ops of this chapter alone, and the
//! backward then comes for free: the tests check it with `gradcheck`.

use chapter_02::Generator;
use chapter_03::{gradcheck, DType, GradcheckOptions, RawTensor, Result, Shape, Tensor};
#[allow(unused_imports)] // your solutions will need these
use chapter_04::prelude::*;

/// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn dev() -> chapter_02::Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

// ANCHOR: roll
/// Exercise 1: `torch.roll`. Shift the elements along `dim` by `shift`
/// places (negative: to the left), wrapping around the end:
/// `roll([0, 1, 2, 3, 4], 2) = [3, 4, 0, 1, 2]`.
///
/// Hint: a roll is two `narrow`s put back together in the other order
/// with `cat`. Mind `shift` larger than the size, and negative.
fn roll(x: &Tensor, shift: i64, dim: usize) -> Result<Tensor> {
    let _ = (x, shift, dim);
    todo!("exercise: roll with narrow + cat")
}
// ANCHOR_END: roll

// ANCHOR: diagonal
/// Exercise 2: the `offset`-th diagonal of a matrix `[m, n]` as a *view*
/// (no copy): `offset = 0` is the main diagonal, `1` the one above it,
/// `-1` the one below.
///
/// Hint: in the row-major flattening of the matrix, element `[i, j]` sits
/// at `i·n + j`, so walking down a diagonal moves `n + 1` places at a time.
/// `flatten` then `slice` with a step.
fn diagonal(x: &Tensor, offset: i64) -> Result<Tensor> {
    let _ = (x, offset);
    todo!("exercise: diagonal as a strided slice")
}
// ANCHOR_END: diagonal

// ANCHOR: unfold
/// Exercise 3: `torch.Tensor.unfold`, sliding windows. Along `dim`, take
/// every window of `size` consecutive elements, starting every `step`
/// elements; the windows replace `dim` and their elements form a new last
/// dimension. `[5]` with `size = 2, step = 1` is `[4, 2]`:
/// `[[0, 1], [1, 2], [2, 3], [3, 4]]`. This is the first step of a
/// convolution (im2col, chapter 09).
///
/// Hint: `narrow` each window, `stack` them, `permute` the window
/// dimension to the end. Overlapping windows read an element several
/// times; see what the gradient does with that.
fn unfold(x: &Tensor, dim: usize, size: usize, step: usize) -> Result<Tensor> {
    let _ = (x, dim, size, step);
    todo!("exercise: unfold with narrow + stack + permute")
}
// ANCHOR_END: unfold

// ANCHOR: bilinear
/// Exercise 4: the bilinear layer `y[b, o] = Σ_ij x1[b, i] · w[o, i, j] ·
/// x2[b, j]` (PyTorch's `nn.Bilinear` without its bias), for `x1: [B, I]`,
/// `w: [O, I, J]`, `x2: [B, J]`.
///
/// Hint: one `einsum` with three operands. Then try writing it with
/// `matmul` and `reshape` and compare the effort.
fn bilinear(x1: &Tensor, w: &Tensor, x2: &Tensor) -> Result<Tensor> {
    let _ = (x1, w, x2);
    todo!("exercise: bilinear as one einsum")
}
// ANCHOR_END: bilinear

// ANCHOR: embedding_bag
/// Exercise 5: `nn.EmbeddingBag` with `mode = "sum"`. Row `b` of the result
/// is the sum of the rows of `table: [V, D]` named by those `ids: [N]` whose
/// `bags[n] == b`; the result is `[n_bags, D]`. A bag that owns no id is a
/// row of zeros. (Bag-of-words text classifiers do exactly this.)
///
/// Hint: `index_select` the rows, then `index_add` them into zeros by bag.
/// The gradient of each table row then counts how often it was used.
fn embedding_bag(table: &Tensor, ids: &Tensor, bags: &Tensor, n_bags: usize) -> Result<Tensor> {
    let _ = (table, ids, bags, n_bags);
    todo!("exercise: embedding_bag with index_select + index_add")
}
// ANCHOR_END: embedding_bag

// ------------------------------------------------------------------ the tests

fn t(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

fn iota(shape: &[usize]) -> Tensor {
    let n: usize = shape.iter().product();
    t(&(0..n).map(|i| i as f64).collect::<Vec<_>>(), shape)
}

fn values(x: &Tensor) -> Vec<f64> {
    x.to_vec_f64().unwrap()
}

fn randn(shape: &[usize], seed: u64) -> RawTensor {
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

#[test]
#[ignore = "exercise: implement roll (narrow + cat)"]
fn exercise_roll() {
    let x = iota(&[5]);
    assert_eq!(values(&roll(&x, 2, 0).unwrap()), [3.0, 4.0, 0.0, 1.0, 2.0]);
    assert_eq!(values(&roll(&x, -1, 0).unwrap()), [1.0, 2.0, 3.0, 4.0, 0.0]);
    assert_eq!(values(&roll(&x, 7, 0).unwrap()), [3.0, 4.0, 0.0, 1.0, 2.0]);
    assert_eq!(values(&roll(&x, 0, 0).unwrap()), values(&x));
    let m = iota(&[2, 3]);
    assert_eq!(
        values(&roll(&m, 1, 1).unwrap()),
        [2.0, 0.0, 1.0, 5.0, 3.0, 4.0]
    );
    assert_eq!(
        values(&roll(&m, 1, 0).unwrap()),
        [3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
    );
    gradcheck(
        |x| roll(&x[0], -2, 1),
        &[randn(&[2, 5], 1)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
#[ignore = "exercise: implement diagonal (flatten + strided slice)"]
fn exercise_diagonal() {
    let m = iota(&[3, 4]);
    assert_eq!(values(&diagonal(&m, 0).unwrap()), [0.0, 5.0, 10.0]);
    assert_eq!(values(&diagonal(&m, 1).unwrap()), [1.0, 6.0, 11.0]);
    assert_eq!(values(&diagonal(&m, 2).unwrap()), [2.0, 7.0]);
    assert_eq!(values(&diagonal(&m, -1).unwrap()), [4.0, 9.0]);
    assert_eq!(values(&diagonal(&m, -2).unwrap()), [8.0]);
    assert_eq!(values(&diagonal(&m, 4).unwrap()), Vec::<f64>::new());
    // A view: no element was copied.
    assert!(diagonal(&m, 1).unwrap().data().same_storage(&m.data()));
    // The same numbers as einsum's diagonal.
    let sq = iota(&[3, 3]);
    assert_eq!(
        values(&diagonal(&sq, 0).unwrap()),
        values(&einsum("ii->i", &[&sq]).unwrap())
    );
    gradcheck(
        |x| diagonal(&x[0], -1),
        &[randn(&[4, 3], 1)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
#[ignore = "exercise: implement unfold (narrow + stack + permute)"]
fn exercise_unfold() {
    let x = iota(&[5]);
    let w = unfold(&x, 0, 2, 1).unwrap();
    assert_eq!(w.dims(), [4, 2]);
    assert_eq!(values(&w), [0.0, 1.0, 1.0, 2.0, 2.0, 3.0, 3.0, 4.0]);
    let w = unfold(&x, 0, 3, 2).unwrap();
    assert_eq!(values(&w), [0.0, 1.0, 2.0, 2.0, 3.0, 4.0]);
    let m = iota(&[2, 4]);
    let w = unfold(&m, 1, 2, 2).unwrap();
    assert_eq!(w.dims(), [2, 2, 2]);
    assert_eq!(values(&w), [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]);
    let w = unfold(&m, 0, 2, 1).unwrap();
    assert_eq!(w.dims(), [1, 4, 2]);
    assert_eq!(values(&w), [0.0, 4.0, 1.0, 5.0, 2.0, 6.0, 3.0, 7.0]);
    // Overlapping windows: element i of [0, 1, 2, 3] is read by up to 3 windows.
    let p = Tensor::param(randn(&[4], 1)).unwrap();
    unfold(&p, 0, 2, 1)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(values(&p.grad().unwrap()), [1.0, 2.0, 2.0, 1.0]);
    gradcheck(
        |x| unfold(&x[0], 1, 3, 1),
        &[randn(&[2, 5], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
#[ignore = "exercise: implement bilinear (one einsum)"]
fn exercise_bilinear() {
    let (x1, w, x2) = (iota(&[2, 3]), iota(&[4, 3, 2]), iota(&[2, 2]));
    let y = bilinear(&x1, &w, &x2).unwrap();
    assert_eq!(y.dims(), [2, 4]);
    let (a, b, c) = (values(&x1), values(&w), values(&x2));
    for n in 0..2 {
        for o in 0..4 {
            let mut s = 0.0;
            for i in 0..3 {
                for j in 0..2 {
                    s += a[n * 3 + i] * b[(o * 3 + i) * 2 + j] * c[n * 2 + j];
                }
            }
            assert_eq!(values(&y)[n * 4 + o], s);
        }
    }
    gradcheck(
        |x| bilinear(&x[0], &x[1], &x[2]),
        &[randn(&[2, 3], 1), randn(&[4, 3, 2], 2), randn(&[2, 2], 3)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
#[ignore = "exercise: implement embedding_bag (index_select + index_add)"]
fn exercise_embedding_bag() {
    let table = iota(&[4, 2]);
    let ids = Tensor::from_vec(vec![3i64, 0, 3, 1], 4, &dev()).unwrap();
    let bags = Tensor::from_vec(vec![0i64, 0, 2, 2], 4, &dev()).unwrap();
    let y = embedding_bag(&table, &ids, &bags, 3).unwrap();
    assert_eq!(y.dims(), [3, 2]);
    // bag 0 = row 3 + row 0, bag 1 is empty, bag 2 = row 3 + row 1
    assert_eq!(values(&y), [6.0, 8.0, 0.0, 0.0, 8.0, 10.0]);
    let p = Tensor::param(randn(&[4, 2], 1)).unwrap();
    embedding_bag(&p, &ids, &bags, 3)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        values(&p.grad().unwrap()),
        [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 2.0, 2.0]
    );
    gradcheck(
        |x| embedding_bag(&x[0], &ids, &bags, 3),
        &[randn(&[4, 2], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}
