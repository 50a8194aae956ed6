//! Lesson: reductions collapse axes. `sum`, `mean`, `max`, `min` over any
//! set of axes, `argmax`/`argmin` along one, with or without `keepdim`.
//! `cargo test -p chapter-02 reduction` runs these.

mod common;

use chapter_02::{DType, Tensor};
use common::*;
use proptest::prelude::*;

/// [[1, 5, 3],
///  [4, 2, 6]]
fn x() -> Tensor {
    tensor(&[1.0f32, 5.0, 3.0, 4.0, 2.0, 6.0], (2, 3))
}

// ANCHOR: reduction_lesson
#[test]
fn reduction_sum_over_each_axis() {
    let x = x();
    let down = x.sum([0], false).unwrap(); // add the rows
    assert_eq!(
        (down.dims(), down.to_vec::<f32>().unwrap()),
        (&[3][..], vec![5.0, 7.0, 9.0])
    );
    let across = x.sum([1], false).unwrap(); // add along each row
    assert_eq!(across.to_vec::<f32>().unwrap(), [9.0, 12.0]);
    // keepdim leaves a size-1 axis, so the result broadcasts against x:
    let kept = x.sum([-1], true).unwrap();
    assert_eq!(kept.dims(), &[2, 1]);
    let share = x.div(&kept).unwrap(); // each element's share of its row
    assert_eq!(values(&share.sum([1], false).unwrap()), [1.0, 1.0]);
    let all = x.sum([0, 1], false).unwrap();
    assert_eq!((all.rank(), all.item().unwrap()), (0, 21.0));
    assert_eq!(x.sum_all().unwrap().item().unwrap(), 21.0);
}
// ANCHOR_END: reduction_lesson

#[test]
fn reduction_mean_max_min() {
    let x = x();
    assert_eq!(
        x.mean([1], false).unwrap().to_vec::<f32>().unwrap(),
        [3.0, 4.0]
    );
    assert_eq!(x.mean([0], true).unwrap().dims(), &[1, 3]);
    assert_eq!(x.mean_all().unwrap().item().unwrap(), 3.5);
    assert_eq!(
        x.max([1], false).unwrap().to_vec::<f32>().unwrap(),
        [5.0, 6.0]
    );
    assert_eq!(
        x.min([0], false).unwrap().to_vec::<f32>().unwrap(),
        [1.0, 2.0, 3.0]
    );
    assert_eq!(x.max([0, 1], true).unwrap().dims(), &[1, 1]);
    assert_eq!(x.max_all().unwrap().item().unwrap(), 6.0);
    assert_eq!(x.min_all().unwrap().item().unwrap(), 1.0);
}

#[test]
fn reduction_argmax_argmin_return_i64_indices() {
    let x = x();
    let am = x.argmax(1, false).unwrap();
    assert_eq!(
        (am.dtype(), am.to_vec::<i64>().unwrap()),
        (DType::I64, vec![1, 2])
    );
    assert_eq!(
        x.argmin(0, false).unwrap().to_vec::<i64>().unwrap(),
        [0, 1, 0]
    );
    assert_eq!(x.argmax(-1, true).unwrap().dims(), &[2, 1]);
}

#[test]
fn reduction_argmax_ties_pick_the_first_index() {
    let x = tensor(&[3.0f64, 1.0, 3.0, 1.0], 4);
    assert_eq!(x.argmax(0, false).unwrap().to_vec::<i64>().unwrap(), [0]);
    assert_eq!(x.argmin(0, false).unwrap().to_vec::<i64>().unwrap(), [1]);
    let same = Tensor::ones((2, 5), DType::I64, &dev()).unwrap();
    assert_eq!(
        same.argmax(1, false).unwrap().to_vec::<i64>().unwrap(),
        [0, 0]
    );
}

#[test]
fn reduction_nan_propagates_like_pytorch() {
    let x = tensor(&[1.0f32, f32::NAN, 3.0, 7.0], 4);
    assert!(x.sum_all().unwrap().item().unwrap().is_nan());
    assert!(x.max_all().unwrap().item().unwrap().is_nan());
    assert!(x.min_all().unwrap().item().unwrap().is_nan());
    assert!(x.mean_all().unwrap().item().unwrap().is_nan());
    // argmax/argmin point at the (first) NaN.
    assert_eq!(x.argmax(0, false).unwrap().to_vec::<i64>().unwrap(), [1]);
    assert_eq!(x.argmin(0, false).unwrap().to_vec::<i64>().unwrap(), [1]);
    // Only the rows that contain a NaN become NaN.
    let m = tensor(&[1.0f64, 2.0, f64::NAN, 4.0], (2, 2));
    let r = values(&m.max([1], false).unwrap());
    assert_eq!(r[0], 2.0);
    assert!(r[1].is_nan());
}

#[test]
fn reduction_of_integers_and_masks() {
    let x = tensor(&[1i64, -2, 3, 4], (2, 2));
    let s = x.sum([0], false).unwrap();
    assert_eq!(
        (s.dtype(), s.to_vec::<i64>().unwrap()),
        (DType::I64, vec![4, 2])
    );
    assert_eq!(x.max_all().unwrap().to_scalar::<i64>().unwrap(), 4);
    let m = tensor(&[0u8, 1, 1], 3);
    assert_eq!(m.max_all().unwrap().to_scalar::<u8>().unwrap(), 1);
    // A u8 sum would overflow at 256: cast masks to i64 (or f32) first.
    assert_eq!(
        m.sum_all().unwrap_err().to_string(),
        "sum_all: not supported for dtype u8"
    );
    assert_eq!(
        m.to_dtype(DType::I64)
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<i64>()
            .unwrap(),
        2
    );
    assert_eq!(
        x.mean_all().unwrap_err().to_string(),
        "mean_all: not supported for dtype i64"
    );
}

#[test]
fn reduction_axis_errors_and_empty_axes() {
    let x = x();
    let e = x.sum([0, -2], false).unwrap_err().to_string();
    assert_eq!(e, "sum: a dimension is repeated in the list");
    let e = x.sum([2], false).unwrap_err().to_string();
    assert_eq!(
        e,
        "sum: dimension 2 out of range for a tensor of shape [2, 3]"
    );
    let e = x.argmax(-3, false).unwrap_err().to_string();
    assert_eq!(
        e,
        "argmax: dimension -3 out of range for a tensor of shape [2, 3]"
    );
    // Summing nothing gives 0; the largest of nothing does not exist.
    let empty = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    assert_eq!(values(&empty.sum([0], false).unwrap()), [0.0, 0.0, 0.0]);
    assert!(empty
        .max([0], false)
        .unwrap_err()
        .to_string()
        .contains("empty"));
    assert!(empty.argmax(0, false).is_err());
    // Reducing over no axes at all changes nothing.
    assert_eq!(
        values(&x.sum(Vec::<usize>::new(), false).unwrap()),
        values(&x)
    );
}

#[test]
fn reduction_of_a_transposed_view() {
    let x = x().t().unwrap(); // [[1, 4], [5, 2], [3, 6]]
    assert_eq!(
        x.sum([0], false).unwrap().to_vec::<f32>().unwrap(),
        [9.0, 12.0]
    );
    assert_eq!(
        x.sum([1], false).unwrap().to_vec::<f32>().unwrap(),
        [5.0, 7.0, 9.0]
    );
    assert_eq!(x.argmax(0, false).unwrap().to_vec::<i64>().unwrap(), [1, 2]);
}

// ANCHOR: accurate_sum
#[test]
fn reduction_sum_of_many_f32_values_stays_accurate() {
    // Adding 0.1 a million times to one f32 running total drifts by about
    // 1%: once the total is large, each small addend loses most of its
    // digits. Pairwise sums keep every partial total small.
    let n = 1_000_000;
    let x = Tensor::full(0.1, n, DType::F32, &dev()).unwrap();
    let exact = n as f64 * 0.1f32 as f64;
    let single_total = (0..n).fold(0.0f32, |acc, _| acc + 0.1f32);
    assert!((single_total as f64 - exact).abs() / exact > 5e-3);
    let ours = x.sum_all().unwrap().item().unwrap();
    assert!((ours - exact).abs() / exact < 1e-6, "sum {ours}");
    let rows = x.reshape((1000, 1000)).unwrap().sum([1], false).unwrap();
    let rows = values(&rows);
    assert!(rows.iter().all(|&r| (r - 100.0).abs() < 1e-3));
}
// ANCHOR_END: accurate_sum

// ---------------------------------------------------------------------------
// Random shapes, random axis sets, against the naive definition.

/// Folds `f` over every input element, grouping by the output position (the
/// input index with the reduced axes set to 0). Returns keepdim shape and values.
fn naive_reduce(
    n: &Naive,
    axes: &[usize],
    init: f64,
    f: impl Fn(f64, f64) -> f64,
) -> (Vec<usize>, Vec<f64>) {
    let out_shape: Vec<usize> = n
        .shape
        .iter()
        .enumerate()
        .map(|(d, &s)| if axes.contains(&d) { 1 } else { s })
        .collect();
    let mut out = vec![init; out_shape.iter().product()];
    for (i, &v) in n.data.iter().enumerate() {
        let mut idx = unravel(i, &n.shape);
        for &a in axes {
            idx[a] = 0;
        }
        let o = ravel(&idx, &out_shape);
        out[o] = f(out[o], v);
    }
    (out_shape, out)
}

/// The first index of the best element along `axis`, by the definition.
fn naive_arg(n: &Naive, axis: usize, better: impl Fn(f64, f64) -> bool) -> Vec<f64> {
    let mut out_shape = n.shape.clone();
    out_shape[axis] = 1;
    Naive::from_fn(&out_shape, |idx| {
        let mut at = idx.to_vec();
        let mut best = 0;
        for k in 1..n.shape[axis] {
            at[axis] = k;
            let v = n.at(&at);
            at[axis] = best;
            if better(v, n.at(&at)) {
                best = k;
            }
        }
        best as f64
    })
    .data
}

fn drop_axes(shape: &[usize], axes: &[usize]) -> Vec<usize> {
    shape
        .iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &s)| s)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    // ANCHOR: reduction_property
    #[test]
    fn reduction_over_random_axis_sets_matches_naive(
        shape in prop::collection::vec(dim_size(), 0..=4),
        mask in any::<u8>(),
        keepdim in any::<bool>(),
        negative in any::<bool>(),
        scramble in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let rank = shape.len();
        let axes: Vec<usize> = (0..rank).filter(|d| mask & (1 << d) != 0).collect();
        // The same axes, maybe written counting from the end (-1 = last).
        let shift = if negative { rank as isize } else { 0 };
        let dims: Vec<isize> = axes.iter().map(|&a| a as isize - shift).collect();
        let n = Naive::random(&shape, seed);
        let kept_shape = naive_reduce(&n, &axes, 0.0, |a, _| a).0;
        let out_shape = if keepdim { kept_shape } else { drop_axes(&shape, &axes) };
        for dtype in [DType::F32, DType::F64, DType::I64] {
            let t = make(&n.data, &shape, dtype, scramble);
            let sum = t.sum(dims.clone(), keepdim).unwrap();
            prop_assert_eq!(sum.dims(), out_shape.as_slice());
            prop_assert_eq!(values(&sum), naive_reduce(&n, &axes, 0.0, |a, b| a + b).1);
            let block: usize = axes.iter().map(|&a| shape[a]).product();
            if block == 0 {
                prop_assert!(t.max(dims.clone(), keepdim).is_err());
                continue;
            }
            let max = t.max(dims.clone(), keepdim).unwrap();
            prop_assert_eq!(max.dims(), out_shape.as_slice());
            prop_assert_eq!(values(&max), naive_reduce(&n, &axes, f64::NEG_INFINITY, f64::max).1);
            let min = t.min(dims.clone(), keepdim).unwrap();
            prop_assert_eq!(values(&min), naive_reduce(&n, &axes, f64::INFINITY, f64::min).1);
            if dtype == DType::F64 {
                let mean = t.mean(dims.clone(), keepdim).unwrap();
                let sums = naive_reduce(&n, &axes, 0.0, |a, b| a + b).1;
                let expected: Vec<f64> = sums.iter().map(|s| s / block as f64).collect();
                assert_close(&values(&mean), &expected, 1e-12);
            }
        }
    }
    // ANCHOR_END: reduction_property

    #[test]
    fn reduction_argmax_argmin_match_naive_first_index(
        shape in prop::collection::vec(1usize..=4, 1..=4),
        axis_pick in any::<usize>(),
        keepdim in any::<bool>(),
        scramble in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let axis = axis_pick % shape.len();
        // Values from {-1, 0, 1}: ties everywhere.
        let n = Naive::random(&shape, seed).map(|v| (v / 3.0).round());
        let t = make(&n.data, &shape, DType::F32, scramble);
        let mut out_shape = shape.clone();
        if keepdim {
            out_shape[axis] = 1;
        } else {
            out_shape.remove(axis);
        }
        let am = t.argmax(axis, keepdim).unwrap();
        prop_assert_eq!(am.dims(), out_shape.as_slice());
        prop_assert_eq!(values(&am), naive_arg(&n, axis, |v, best| v > best));
        let an = t.argmin(axis, keepdim).unwrap();
        prop_assert_eq!(values(&an), naive_arg(&n, axis, |v, best| v < best));
    }
}
