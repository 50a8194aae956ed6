//! Lesson: broadcasting. Align shapes on the right; each pair of sizes must
//! be equal or contain a 1; a size-1 (or missing) dimension is repeated by
//! giving it stride 0. `cargo test -p chapter-02 broadcast` runs these.

mod common;

use chapter_02::{DType, Shape, Tensor};
use common::*;
use proptest::prelude::*;

fn rule(a: &[usize], b: &[usize]) -> chapter_02::Result<Shape> {
    Shape::from(a).broadcast_with(&Shape::from(b), "test")
}

// ANCHOR: broadcast_rule_examples
#[test]
fn broadcast_rule_aligns_shapes_on_the_right() {
    // [2, 3, 4]        [2, 3, 4]
    //    [3, 1]   ->   [1, 3, 1]   ->   [2, 3, 4]
    assert_eq!(rule(&[2, 3, 4], &[3, 1]).unwrap().dims(), &[2, 3, 4]);
    assert_eq!(rule(&[4], &[3, 1]).unwrap().dims(), &[3, 4]);
    assert_eq!(rule(&[], &[2, 2]).unwrap().dims(), &[2, 2]);
    assert_eq!(rule(&[5, 1, 7], &[1, 6, 1]).unwrap().dims(), &[5, 6, 7]);
    // A size-1 dimension stretches to anything, even to 0.
    assert_eq!(rule(&[0], &[1]).unwrap().dims(), &[0]);
    // Sizes that are different and neither is 1: an error naming both shapes.
    let e = rule(&[2, 3], &[4]).unwrap_err();
    assert_eq!(e.to_string(), "test: cannot broadcast [2, 3] with [4]");
    assert!(rule(&[2, 1], &[3, 3]).is_err());
}
// ANCHOR_END: broadcast_rule_examples

#[test]
fn broadcast_add_bias_row_to_every_row_of_a_matrix() {
    // x: [2, 3], bias: [3] -> bias is read with stride 0 along the rows.
    let x = tensor(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let bias = tensor(&[10.0f32, 20.0, 30.0], 3);
    let y = x.add(&bias).unwrap();
    assert_eq!(y.dims(), &[2, 3]);
    assert_eq!(
        y.to_vec::<f32>().unwrap(),
        [11.0, 22.0, 33.0, 14.0, 25.0, 36.0]
    );
}

#[test]
fn broadcast_column_times_row_is_an_outer_product() {
    let col = tensor(&[1.0f64, 2.0, 3.0], (3, 1));
    let row = tensor(&[1.0f64, 10.0], (1, 2));
    let outer = col.mul(&row).unwrap();
    assert_eq!(outer.dims(), &[3, 2]);
    assert_eq!(
        outer.to_vec2::<f64>().unwrap(),
        [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]]
    );
}

#[test]
fn broadcast_scalar_tensor_with_anything() {
    let x = tensor(&[1i64, 2, 3, 4], (2, 2));
    let s = Tensor::scalar(10i64, &dev()).unwrap();
    assert_eq!(
        x.sub(&s).unwrap().to_vec::<i64>().unwrap(),
        [-9, -8, -7, -6]
    );
    assert_eq!(s.sub(&x).unwrap().to_vec::<i64>().unwrap(), [9, 8, 7, 6]);
}

#[test]
fn broadcast_to_gives_stride_zero_and_shares_storage() {
    let x = tensor(&[1.0f32, 2.0, 3.0], (3, 1));
    let y = x.broadcast_to((2, 3, 4)).unwrap();
    assert_eq!(y.dims(), &[2, 3, 4]);
    assert_eq!(y.layout().strides(), &[0, 1, 0]);
    assert!(y.same_storage(&x));
    assert!(!y.is_contiguous());
    assert_eq!(y.sum_all().unwrap().item().unwrap(), 8.0 * 6.0);
    let e = x.broadcast_to((3, 2, 5)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "broadcast_to: cannot broadcast [3, 1] with [3, 2, 5]"
    );
    // Broadcasting never removes dimensions.
    assert!(x.broadcast_to(3).is_err());
}

#[test]
fn broadcast_in_comparisons_and_where() {
    let x = tensor(&[-1.0f32, 2.0, -3.0, 4.0], (2, 2));
    let zero = Tensor::zeros((), DType::F32, &dev()).unwrap();
    let positive = x.gt(&zero).unwrap();
    assert_eq!(positive.to_vec::<u8>().unwrap(), [0, 1, 0, 1]);
    // cond [2, 2], on_true [2, 2], on_false a scalar.
    let relu = positive.where_cond(&x, &zero).unwrap();
    assert_eq!(relu.to_vec::<f32>().unwrap(), [0.0, 2.0, 0.0, 4.0]);
    // cond [2, 1], on_true [1, 3], on_false [3]: the result is [2, 3].
    let cond = tensor(&[1u8, 0], (2, 1));
    let a = tensor(&[1.0f64, 2.0, 3.0], (1, 3));
    let b = tensor(&[-1.0f64, -2.0, -3.0], 3);
    let w = cond.where_cond(&a, &b).unwrap();
    assert_eq!(
        w.to_vec2::<f64>().unwrap(),
        [[1.0, 2.0, 3.0], [-1.0, -2.0, -3.0]]
    );
}

#[test]
fn broadcast_of_incompatible_shapes_names_the_op_and_both_shapes() {
    let a = Tensor::zeros((2, 3), DType::F32, &dev()).unwrap();
    let b = Tensor::zeros(4, DType::F32, &dev()).unwrap();
    assert_eq!(
        a.add(&b).unwrap_err().to_string(),
        "add: cannot broadcast [2, 3] with [4]"
    );
    assert_eq!(
        b.mul(&a).unwrap_err().to_string(),
        "mul: cannot broadcast [4] with [2, 3]"
    );
    assert_eq!(
        a.lt(&b).unwrap_err().to_string(),
        "lt: cannot broadcast [2, 3] with [4]"
    );
}

/// A tensor method such as `Tensor::add`, its name, and the same function on numbers.
type BinaryCheck = (
    &'static str,
    fn(&Tensor, &Tensor) -> chapter_02::Result<Tensor>,
    fn(f64, f64) -> f64,
);

/// The result of `op` on two tensors, computed from the definition:
/// broadcast both with the naive model, then combine element by element.
fn naive_binary(a: &Naive, b: &Naive, out: &[usize], f: impl Fn(f64, f64) -> f64) -> Vec<f64> {
    let (a, b) = (a.broadcast_to(out), b.broadcast_to(out));
    a.data.iter().zip(&b.data).map(|(&x, &y)| f(x, y)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    // ANCHOR: broadcast_property
    /// Every binary op, on every compatible pair of shapes (with rank
    /// differences, size-1 and size-0 dimensions), contiguous or not,
    /// agrees with the naive definition.
    #[test]
    fn broadcast_binary_ops_match_naive_index_arithmetic(
        (sa, sb) in broadcastable_pair(),
        seed in any::<u64>(),
        scramble_a in any::<bool>(),
        scramble_b in any::<bool>(),
    ) {
        let out = naive_broadcast_shape(&sa, &sb).unwrap();
        let na = Naive::random(&sa, seed);
        let nb = Naive::random(&sb, seed ^ 1);
        for dtype in [DType::F32, DType::F64, DType::I64] {
            let a = make(&na.data, &sa, dtype, scramble_a);
            let b = make(&nb.data, &sb, dtype, scramble_b);
            let checks: [BinaryCheck; 5] = [
                ("add", |a, b| a.add(b), |x, y| x + y),
                ("sub", |a, b| a.sub(b), |x, y| x - y),
                ("mul", |a, b| a.mul(b), |x, y| x * y),
                ("maximum", |a, b| a.maximum(b), f64::max),
                ("minimum", |a, b| a.minimum(b), f64::min),
            ];
            for (name, op, f) in checks {
                let got = op(&a, &b).unwrap();
                prop_assert_eq!(got.dims(), out.as_slice(), "{} {:?}", name, dtype);
                prop_assert_eq!(got.dtype(), dtype);
                let expected = naive_binary(&na, &nb, &out, f);
                prop_assert_eq!(values(&got), expected, "{} {:?}", name, dtype);
            }
        }
    }
    // ANCHOR_END: broadcast_property

    #[test]
    fn broadcast_div_and_pow_match_naive_for_floats(
        (sa, sb) in broadcastable_pair(),
        seed in any::<u64>(),
        scramble in any::<bool>(),
    ) {
        let out = naive_broadcast_shape(&sa, &sb).unwrap();
        let na = Naive::random(&sa, seed);
        // Divisors and exponents from 1 to 9 (positive, so pow of a negative base stays real).
        let nb = Naive::random(&sb, seed ^ 1).map(|v| v + 5.0);
        let a = make(&na.data, &sa, DType::F64, scramble);
        let b = make(&nb.data, &sb, DType::F64, !scramble);
        let quotient = naive_binary(&na, &nb, &out, |x, y| x / y);
        prop_assert!(same(&values(&a.div(&b).unwrap()), &quotient));
        prop_assert!(same(&values(&a.pow(&b).unwrap()), &naive_binary(&na, &nb, &out, f64::powf)));
        // In f32 the kernel computes in f32: compare with the f32 result.
        let a32 = make(&na.data, &sa, DType::F32, scramble);
        let b32 = make(&nb.data, &sb, DType::F32, scramble);
        let expected: Vec<f64> = naive_binary(&na, &nb, &out, |x, y| (x as f32 / y as f32) as f64);
        prop_assert!(same(&values(&a32.div(&b32).unwrap()), &expected));
    }

    #[test]
    fn broadcast_comparisons_match_naive(
        (sa, sb) in broadcastable_pair(),
        seed in any::<u64>(),
        scramble in any::<bool>(),
    ) {
        let out = naive_broadcast_shape(&sa, &sb).unwrap();
        // Values from a small range so that ties (equal elements) are common.
        let na = Naive::random(&sa, seed).map(|v| (v / 3.0).round());
        let nb = Naive::random(&sb, !seed).map(|v| (v / 3.0).round());
        for dtype in [DType::F32, DType::I64, DType::U8] {
            // u8 cannot hold -1: shift the values up.
            let shift = if dtype == DType::U8 { 2.0 } else { 0.0 };
            let shifted = |v: &[f64]| v.iter().map(|x| x + shift).collect::<Vec<_>>();
            let a = make(&shifted(&na.data), &sa, dtype, scramble);
            let b = make(&shifted(&nb.data), &sb, dtype, !scramble);
            let lt = a.lt(&b).unwrap();
            prop_assert_eq!(lt.dtype(), DType::U8);
            prop_assert_eq!(values(&lt), naive_binary(&na, &nb, &out, |x, y| (x < y) as u8 as f64));
            let eq = naive_binary(&na, &nb, &out, |x, y| (x == y) as u8 as f64);
            prop_assert_eq!(values(&a.eq(&b).unwrap()), eq);
            let ge = naive_binary(&na, &nb, &out, |x, y| (x >= y) as u8 as f64);
            prop_assert_eq!(values(&a.ge(&b).unwrap()), ge);
        }
    }

    #[test]
    fn broadcast_where_cond_of_three_shapes_matches_naive(
        (sc, st) in broadcastable_pair(),
        seed in any::<u64>(),
        scramble in any::<bool>(),
    ) {
        // The third operand: broadcast-compatible with the other two's result.
        let mid = naive_broadcast_shape(&sc, &st).unwrap();
        // Drop some leading dims of `mid`, and sometimes make all the rest 1.
        let (skip, all_ones) = (seed as usize % (mid.len() + 1), seed % 3);
        let sf: Vec<usize> =
            mid.iter().skip(skip).map(|&d| if all_ones == 0 { 1 } else { d }).collect();
        let out = naive_broadcast_shape(&mid, &sf).unwrap();
        let nc = Naive::random(&sc, seed).map(|v| (v > 0.0) as u8 as f64);
        let nt = Naive::random(&st, seed ^ 2);
        let nf = Naive::random(&sf, seed ^ 3).map(|v| v + 100.0);
        let c = make(&nc.data, &sc, DType::U8, scramble);
        let t = make(&nt.data, &st, DType::F32, !scramble);
        let f = make(&nf.data, &sf, DType::F32, scramble);
        let got = c.where_cond(&t, &f).unwrap();
        let (bc, bt, bf) = (nc.broadcast_to(&out), nt.broadcast_to(&out), nf.broadcast_to(&out));
        let expected: Vec<f64> = (0..bc.data.len())
            .map(|i| if bc.data[i] != 0.0 { bt.data[i] } else { bf.data[i] })
            .collect();
        prop_assert_eq!(got.dims(), out.as_slice());
        prop_assert_eq!(values(&got), expected);
    }

    /// The rule accepts exactly the pairs the textbook rule accepts, and the
    /// error names both shapes.
    #[test]
    fn broadcast_rule_accepts_exactly_the_compatible_pairs(
        sa in shape(4, 3),
        sb in shape(4, 3),
    ) {
        let a = Tensor::zeros(sa.clone(), DType::F32, &dev()).unwrap();
        let b = Tensor::zeros(sb.clone(), DType::F32, &dev()).unwrap();
        match naive_broadcast_shape(&sa, &sb) {
            Some(out) => prop_assert_eq!(a.add(&b).unwrap().dims().to_vec(), out),
            None => prop_assert_eq!(
                a.add(&b).unwrap_err().to_string(),
                format!("add: cannot broadcast {sa:?} with {sb:?}")
            ),
        }
    }

    /// `broadcast_to` is a view: reading it equals the naive repetition.
    #[test]
    fn broadcast_to_view_matches_naive_repetition(
        (sa, sb) in broadcastable_pair(),
        seed in any::<u64>(),
        scramble in any::<bool>(),
    ) {
        let out = naive_broadcast_shape(&sa, &sb).unwrap();
        let na = Naive::random(&sa, seed);
        let a = make(&na.data, &sa, DType::F64, scramble);
        let view = a.broadcast_to(out.clone()).unwrap();
        prop_assert!(view.same_storage(&a));
        prop_assert_eq!(values(&view), na.broadcast_to(&out).data.clone());
        prop_assert_eq!(values(&view.contiguous().unwrap()), na.broadcast_to(&out).data);
    }
}
