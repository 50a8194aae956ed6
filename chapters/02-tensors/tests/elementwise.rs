//! Lesson: elementwise operations. One function applied at every position:
//! unary maps, binary arithmetic, comparisons that make `u8` masks, and
//! `where_cond` that reads through a mask. `cargo test -p chapter-02
//! elementwise` runs these.

mod common;

use chapter_02::{CmpOp, DType, Tensor};
use common::*;

fn f64s(v: &[f64]) -> Tensor {
    tensor(v, v.len())
}

/// Checks `method` against `f` on a few points, in f64 and f32, on a
/// contiguous and a transposed input.
fn check_unary(
    name: &str,
    method: fn(&Tensor) -> chapter_02::Result<Tensor>,
    f: fn(f64) -> f64,
    points: &[f64],
) {
    let x = f64s(points);
    let expected: Vec<f64> = points.iter().map(|&p| f(p)).collect();
    assert_close(&values(&method(&x).unwrap()), &expected, 1e-12);
    let x32 = x.to_dtype(DType::F32).unwrap();
    let got = method(&x32).unwrap();
    assert_eq!(got.dtype(), DType::F32, "{name}");
    assert_close(&values(&got), &expected, 1e-6);
    // The same points, stored transposed: [2, n/2] viewed as [n/2, 2].T.
    let half = points.len() / 2;
    if 2 * half == points.len() {
        let t = make(points, &[2, half], DType::F64, true);
        assert!(!t.is_contiguous());
        assert_close(&values(&method(&t).unwrap()), &expected, 1e-12);
    }
}

#[test]
fn elementwise_unary_float_functions() {
    let pts = [-2.5, -1.0, -0.25, 0.0, 0.5, 3.0];
    check_unary("neg", Tensor::neg, |x| -x, &pts);
    check_unary("abs", Tensor::abs, f64::abs, &pts);
    check_unary("sqr", Tensor::sqr, |x| x * x, &pts);
    check_unary(
        "sign",
        Tensor::sign,
        |x| if x == 0.0 { 0.0 } else { x.signum() },
        &pts,
    );
    check_unary("sin", Tensor::sin, f64::sin, &pts);
    check_unary("cos", Tensor::cos, f64::cos, &pts);
    check_unary("tanh", Tensor::tanh, f64::tanh, &pts);
    check_unary(
        "sigmoid",
        Tensor::sigmoid,
        |x| 1.0 / (1.0 + (-x).exp()),
        &pts,
    );
    check_unary("relu", Tensor::relu, |x| x.max(0.0), &pts);
    check_unary("exp", Tensor::exp, f64::exp, &pts);
    let positive = [0.25, 0.5, 1.0, 2.0, 4.0, 10.0];
    check_unary("sqrt", Tensor::sqrt, f64::sqrt, &positive);
    check_unary("log", Tensor::log, f64::ln, &positive);
    check_unary("recip", Tensor::recip, |x| 1.0 / x, &positive);
}

#[test]
fn elementwise_erf_matches_known_values() {
    // erf(0.5), erf(1), erf(2) to 16 digits (Abramowitz & Stegun, table 7.1).
    let x = f64s(&[0.0, 0.5, 1.0, 2.0, -1.0]);
    let expected = [
        0.0,
        0.5204998778130465,
        0.8427007929497149,
        0.9953222650189527,
        -0.8427007929497149,
    ];
    assert_close(&values(&x.erf().unwrap()), &expected, 1e-15);
    assert_close(
        &values(&x.to_dtype(DType::F32).unwrap().erf().unwrap()),
        &expected,
        1e-6,
    );
}

#[test]
fn elementwise_sigmoid_does_not_overflow() {
    let x = f64s(&[-1000.0, -40.0, 0.0, 40.0, 1000.0]);
    let y = values(&x.sigmoid().unwrap());
    assert_eq!(y[0], 0.0);
    assert!(
        y[1] > 0.0 && y[1] < 1e-17,
        "e^-40 is representable: {}",
        y[1]
    );
    assert_eq!(y[2], 0.5);
    assert_eq!(y[4], 1.0);
    assert!(y.iter().all(|v| v.is_finite()));
    let y32 = values(&x.to_dtype(DType::F32).unwrap().sigmoid().unwrap());
    assert!(y32.iter().all(|v| v.is_finite()));
}

#[test]
fn elementwise_parameterised_unary_ops() {
    let x = f64s(&[-2.0, -0.5, 0.0, 1.5, 4.0]);
    assert_eq!(
        values(&x.affine(2.0, 1.0).unwrap()),
        [-3.0, 0.0, 1.0, 4.0, 9.0]
    );
    assert_eq!(
        values(&x.add_scalar(1.0).unwrap()),
        [-1.0, 0.5, 1.0, 2.5, 5.0]
    );
    assert_eq!(
        values(&x.sub_scalar(1.0).unwrap()),
        [-3.0, -1.5, -1.0, 0.5, 3.0]
    );
    assert_eq!(
        values(&x.mul_scalar(-2.0).unwrap()),
        [4.0, 1.0, -0.0, -3.0, -8.0]
    );
    assert_eq!(
        values(&x.div_scalar(2.0).unwrap()),
        [-1.0, -0.25, 0.0, 0.75, 2.0]
    );
    assert_eq!(values(&x.powf(2.0).unwrap()), [4.0, 0.25, 0.0, 2.25, 16.0]);
    assert_eq!(
        values(&x.clamp(-1.0, 1.0).unwrap()),
        [-1.0, -0.5, 0.0, 1.0, 1.0]
    );
    assert_eq!(
        values(&x.leaky_relu(0.1).unwrap()),
        [-0.2, -0.05, 0.0, 1.5, 4.0]
    );
    let e = x.clamp(1.0, -1.0).unwrap_err();
    assert_eq!(e.to_string(), "clamp: min 1 is greater than max -1");
}

#[test]
fn elementwise_integer_unary_ops_stay_integers() {
    let x = tensor(&[-3i64, 0, 2, 7], 4);
    assert_eq!(x.neg().unwrap().to_vec::<i64>().unwrap(), [3, 0, -2, -7]);
    assert_eq!(x.abs().unwrap().to_vec::<i64>().unwrap(), [3, 0, 2, 7]);
    assert_eq!(x.sqr().unwrap().to_vec::<i64>().unwrap(), [9, 0, 4, 49]);
    assert_eq!(x.sign().unwrap().to_vec::<i64>().unwrap(), [-1, 0, 1, 1]);
    assert_eq!(x.relu().unwrap().to_vec::<i64>().unwrap(), [0, 0, 2, 7]);
    assert_eq!(
        x.clamp(-1.0, 5.0).unwrap().to_vec::<i64>().unwrap(),
        [-1, 0, 2, 5]
    );
    // Functions whose results are not integers refuse, naming themselves.
    assert_eq!(
        x.exp().unwrap_err().to_string(),
        "exp: not supported for dtype i64"
    );
    assert_eq!(
        x.sqrt().unwrap_err().to_string(),
        "sqrt: not supported for dtype i64"
    );
    let mask = tensor(&[1u8, 0], 2);
    assert_eq!(
        mask.neg().unwrap_err().to_string(),
        "neg: not supported for dtype u8"
    );
}

// ANCHOR: binary_lesson
#[test]
fn elementwise_binary_arithmetic() {
    let a = f64s(&[1.0, -2.0, 3.0, 8.0]);
    let b = f64s(&[4.0, 5.0, -6.0, 2.0]);
    assert_eq!(values(&a.add(&b).unwrap()), [5.0, 3.0, -3.0, 10.0]);
    assert_eq!(values(&a.sub(&b).unwrap()), [-3.0, -7.0, 9.0, 6.0]);
    assert_eq!(values(&a.mul(&b).unwrap()), [4.0, -10.0, -18.0, 16.0]);
    assert_eq!(values(&a.div(&b).unwrap()), [0.25, -0.4, -0.5, 4.0]);
    assert_eq!(values(&a.maximum(&b).unwrap()), [4.0, 5.0, 3.0, 8.0]);
    assert_eq!(values(&a.minimum(&b).unwrap()), [1.0, -2.0, -6.0, 2.0]);
    assert_eq!(
        values(&b.pow(&f64s(&[0.5, 2.0, 2.0, 3.0])).unwrap()),
        [2.0, 25.0, 36.0, 8.0]
    );
    // The operators call the same methods.
    assert_eq!(values(&(&a + &b)), values(&a.add(&b).unwrap()));
    assert_eq!(values(&(&a - &b)), values(&a.sub(&b).unwrap()));
    assert_eq!(values(&(&a * &b)), values(&a.mul(&b).unwrap()));
    assert_eq!(values(&(&a / &b)), values(&a.div(&b).unwrap()));
    assert_eq!(values(&(&a * 2.0 + 1.0)), [3.0, -3.0, 7.0, 17.0]);
    assert_eq!(values(&(-&a)), [-1.0, 2.0, -3.0, -8.0]);
    assert_eq!(values(&(a.clone() / 4.0 - 1.0)), [-0.75, -1.5, -0.25, 1.0]);
}
// ANCHOR_END: binary_lesson

#[test]
fn elementwise_maximum_and_minimum_propagate_nan() {
    let a = f64s(&[f64::NAN, 1.0, 2.0]);
    let b = f64s(&[0.0, f64::NAN, 1.0]);
    let mx = values(&a.maximum(&b).unwrap());
    assert!(mx[0].is_nan() && mx[1].is_nan());
    assert_eq!(mx[2], 2.0);
    let mn = values(&a.minimum(&b).unwrap());
    assert!(mn[0].is_nan() && mn[1].is_nan());
    assert_eq!(mn[2], 1.0);
}

#[test]
fn elementwise_integer_binary_ops() {
    let a = tensor(&[7i64, -3, 4], 3);
    let b = tensor(&[2i64, 5, -4], 3);
    assert_eq!(a.add(&b).unwrap().to_vec::<i64>().unwrap(), [9, 2, 0]);
    assert_eq!(a.sub(&b).unwrap().to_vec::<i64>().unwrap(), [5, -8, 8]);
    assert_eq!(a.mul(&b).unwrap().to_vec::<i64>().unwrap(), [14, -15, -16]);
    assert_eq!(a.maximum(&b).unwrap().to_vec::<i64>().unwrap(), [7, 5, 4]);
    assert_eq!(a.minimum(&b).unwrap().to_vec::<i64>().unwrap(), [2, -3, -4]);
    // Integer division has no single right answer (floor? truncate?), so
    // we refuse it and ask for a cast, as the message says.
    assert_eq!(
        a.div(&b).unwrap_err().to_string(),
        "div: not supported for dtype i64"
    );
    assert_eq!(
        a.pow(&b).unwrap_err().to_string(),
        "pow: not supported for dtype i64"
    );
    let m = tensor(&[1u8, 0], 2);
    assert_eq!(
        m.add(&m).unwrap_err().to_string(),
        "add: not supported for dtype u8"
    );
}

// ANCHOR: comparison_lesson
#[test]
fn elementwise_comparisons_make_u8_masks() {
    let a = f64s(&[1.0, 2.0, 3.0, f64::NAN]);
    let b = f64s(&[2.0, 2.0, 2.0, f64::NAN]);
    let mask = |t: chapter_02::Result<Tensor>| t.unwrap().to_vec::<u8>().unwrap();
    assert_eq!(
        mask(a.eq(&b)),
        [0, 1, 0, 0],
        "NaN equals nothing, not even NaN"
    );
    assert_eq!(mask(a.ne(&b)), [1, 0, 1, 1]);
    assert_eq!(mask(a.lt(&b)), [1, 0, 0, 0]);
    assert_eq!(mask(a.le(&b)), [1, 1, 0, 0]);
    assert_eq!(mask(a.gt(&b)), [0, 0, 1, 0]);
    assert_eq!(mask(a.ge(&b)), [0, 1, 1, 0]);
    assert_eq!(mask(a.cmp_scalar(CmpOp::Gt, 1.5)), [0, 1, 1, 0]);
    // Masks compare too (u8 with u8).
    let m = tensor(&[0u8, 1, 1], 3);
    assert_eq!(mask(m.eq(&tensor(&[0u8, 0, 1], 3))), [1, 0, 1]);
}
// ANCHOR_END: comparison_lesson

#[test]
fn elementwise_where_cond_selects_through_a_mask() {
    let x = tensor(&[-1.0f32, 2.0, -3.0, 4.0], 4);
    let y = tensor(&[10.0f32, 20.0, 30.0, 40.0], 4);
    let cond = x.cmp_scalar(CmpOp::Gt, 0.0).unwrap();
    let w = cond.where_cond(&x, &y).unwrap();
    assert_eq!(w.to_vec::<f32>().unwrap(), [10.0, 2.0, 30.0, 4.0]);
    // Any non-zero byte counts as true.
    let cond = tensor(&[0u8, 7, 255, 0], 4);
    assert_eq!(
        cond.where_cond(&x, &y).unwrap().to_vec::<f32>().unwrap(),
        [10.0, 2.0, -3.0, 40.0]
    );
    let e = x.where_cond(&x, &y).unwrap_err().to_string();
    assert_eq!(
        e,
        "where_cond (condition must be u8): not supported for dtype f32"
    );
    let e = cond
        .where_cond(&x, &tensor(&[1i64, 2, 3, 4], 4))
        .unwrap_err()
        .to_string();
    assert_eq!(e, "where_cond: dtype mismatch f32 vs i64");
}

#[test]
fn elementwise_ops_read_views_without_copying_first() {
    // A transposed, sliced view as the left operand and a broadcast row as
    // the right: the kernel walks both through their strides.
    let x = iota(&[4, 6], DType::F32);
    let v = x.t().unwrap().slice(0, 1, 6, 2).unwrap(); // [3, 4]: columns 1, 3, 5
    let row = tensor(&[100.0f32, 200.0, 300.0, 400.0], 4);
    let got = v.add(&row).unwrap();
    assert_eq!(
        got.to_vec2::<f32>().unwrap(),
        [
            [101.0, 207.0, 313.0, 419.0],
            [103.0, 209.0, 315.0, 421.0],
            [105.0, 211.0, 317.0, 423.0]
        ]
    );
    assert!(
        got.is_contiguous(),
        "results are always fresh and contiguous"
    );
}

#[test]
fn elementwise_ops_on_empty_and_scalar_tensors() {
    let e = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    assert_eq!(e.exp().unwrap().dims(), &[0, 3]);
    assert_eq!(e.add(&e.t().unwrap().t().unwrap()).unwrap().dims(), &[0, 3]);
    let s = Tensor::scalar(2.0f64, &dev()).unwrap();
    assert_eq!(s.mul(&s).unwrap().item().unwrap(), 4.0);
    assert_eq!(s.exp().unwrap().rank(), 0);
}

/// Large contiguous results are written on every core, in one piece per
/// thread: each element is still `f` of its own inputs, so the values are
/// those of a plain loop, and one thread or two give the same bits. (A
/// lesson about the CPU's threads: it runs on the CPU whatever
/// `CANDLE_DEVICE` says.)
#[test]
fn elementwise_large_results_are_split_over_threads_without_changing_a_bit() {
    let cpu = chapter_02::Device::cpu();
    let n = (1 << 17) + 5; // above the threshold, and ragged
    let a: Vec<f32> = (0..n)
        .map(|i| ((i * 7919) % 1000) as f32 / 100.0 - 5.0)
        .collect();
    let b: Vec<f32> = (0..n)
        .map(|i| ((i * 104729) % 997) as f32 / 50.0 - 9.0)
        .collect();
    let run = |threads: usize| {
        on_threads(threads, || {
            let x = Tensor::from_vec(a.clone(), n, &cpu).unwrap();
            let y = Tensor::from_vec(b.clone(), n, &cpu).unwrap();
            let sum = x.add(&y).unwrap().to_vec::<f32>().unwrap();
            let exp = x.exp().unwrap().to_vec::<f32>().unwrap();
            let gt = x.cmp(&y, CmpOp::Gt, "gt").unwrap().to_vec::<u8>().unwrap();
            let wide = x.to_dtype(DType::F64).unwrap().to_vec::<f64>().unwrap();
            (sum, exp, gt, wide)
        })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two, "the number of threads changed a result");
    let (sum, exp, gt, wide) = two;
    for i in 0..n {
        assert_eq!(sum[i].to_bits(), (a[i] + b[i]).to_bits(), "add at {i}");
        assert_eq!(exp[i].to_bits(), a[i].exp().to_bits(), "exp at {i}");
        assert_eq!(gt[i], (a[i] > b[i]) as u8, "gt at {i}");
        assert_eq!(wide[i], a[i] as f64, "cast at {i}");
    }
}
