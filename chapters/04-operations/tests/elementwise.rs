//! Lessons: elementwise operations and their derivatives. Each op has its
//! forward values checked by hand (against PyTorch's numbers), its backward
//! checked against finite differences (`gradcheck`, in `f64`, on several
//! shapes, away from kinks), and where it matters its numerical stability
//! and its second derivative (`create_graph`).
//! `cargo test -p chapter-04 --test elementwise` runs them all;
//! `cargo test -p chapter-04 sigmoid` only the sigmoid lessons.

mod common;
use chapter_02::Generator;
use chapter_03::{
    grad, gradcheck, set_grad_enabled, BackwardOptions, DType, GradcheckOptions, RawTensor, Result,
    Tensor,
};
use chapter_04::prelude::*;
use common::*;
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// Seeded uniform `f64` values in `[lo, hi)`.
fn rand(lo: f64, hi: f64, shape: &[usize], seed: u64) -> RawTensor {
    RawTensor::rand_with(lo, hi, shape, DType::F64, &dev(), &mut Generator::new(seed)).unwrap()
}

/// Normal values pushed at least 0.1 away from each kink, where a finite
/// difference would straddle two branches and disagree with either.
fn randn_away(shape: &[usize], seed: u64, kinks: &[f64]) -> RawTensor {
    let v: Vec<f64> = randn(shape, seed)
        .to_vec_f64()
        .unwrap()
        .into_iter()
        .map(|x| {
            kinks.iter().fold(x, |x, &k| {
                if (x - k).abs() < 0.1 {
                    k + 0.1f64.copysign(x - k)
                } else {
                    x
                }
            })
        })
        .collect();
    RawTensor::from_f64_vec(v, shape, DType::F64, &dev()).unwrap()
}

const SHAPES: [&[usize]; 4] = [&[], &[5], &[2, 3], &[2, 3, 4]];

/// Finite differences agree with backward for `f` at these inputs.
fn check(f: impl Fn(&[Tensor]) -> Result<Tensor>, inputs: &[RawTensor]) {
    gradcheck(f, inputs, GradcheckOptions::default()).unwrap();
}

/// Finite differences agree with backward for a one-input `f` on every
/// shape of [`SHAPES`], with inputs away from `kinks`.
fn check_unary(f: impl Fn(&Tensor) -> Result<Tensor>, kinks: &[f64]) {
    for (seed, shape) in SHAPES.iter().enumerate() {
        check(|x| f(&x[0]), &[randn_away(shape, seed as u64, kinks)]);
    }
}

const CREATE_GRAPH: BackwardOptions = BackwardOptions {
    retain_graph: true,
    create_graph: true,
};

/// `∂(Σ f(x))/∂x`, itself differentiable.
fn first_derivative(f: &impl Fn(&Tensor) -> Result<Tensor>, x: &Tensor) -> Result<Tensor> {
    let y = f(x)?.sum_all()?;
    Ok(grad(&y, &[x], None, CREATE_GRAPH)?
        .remove(0)
        .expect("f depends on x"))
}

/// The second-order check: `gradcheck` of the map `x ↦ ∂(Σ f(x))/∂x`. It
/// passes only if the backward pass is built from differentiable ops with
/// the right derivatives (the "gradgradcheck" of PyTorch).
fn check_second_order(f: impl Fn(&Tensor) -> Result<Tensor>, x: RawTensor) {
    let df = |xs: &[Tensor]| -> Result<Tensor> {
        // gradcheck evaluates the perturbed points under no_grad, with
        // plain constants: turn recording on and make a leaf to
        // differentiate with respect to.
        let _recording = set_grad_enabled(true);
        let x = if xs[0].requires_grad() {
            xs[0].clone()
        } else {
            Tensor::param(xs[0].data())?
        };
        first_derivative(&f, &x)
    };
    check(df, &[x]);
}

/// `∂(Σ y)/∂x` for each input, by `backward`.
fn grads_of(y: &Tensor, inputs: &[&Tensor]) -> Vec<Vec<f64>> {
    y.sum_all().unwrap().backward().unwrap();
    inputs.iter().map(|x| values(&x.grad().unwrap())).collect()
}

// ---------------------------------------------------------------- pow

#[test]
fn pow_with_a_tensor_exponent_broadcasts() {
    // [2, 3] ^ [3]: the exponent row is reused for every row of the base.
    let a = t(&[2.0, 4.0, 9.0, 1.0, 0.5, 0.25], (2, 3));
    let b = t(&[0.5, 2.0, -1.0], 3);
    let y = a.pow(&b).unwrap();
    assert_eq!(y.dims(), [2, 3]);
    assert_close(
        &values(&y),
        &[2f64.sqrt(), 16.0, 1.0 / 9.0, 1.0, 0.25, 4.0],
        1e-15,
    );
}

#[test]
fn pow_gradcheck_in_base_and_exponent_with_broadcasting() {
    // Positive bases: ln a must exist for ∂/∂b.
    let pairs: [(&[usize], &[usize]); 4] = [
        (&[4], &[4]),
        (&[2, 3, 4], &[3, 1]),
        (&[2, 3], &[]),
        (&[3, 1], &[1, 4]),
    ];
    for (seed, (sa, sb)) in pairs.into_iter().enumerate() {
        let seed = seed as u64;
        check(
            |x| x[0].pow(&x[1]),
            &[rand(0.5, 2.0, sa, seed), randn(sb, seed + 10)],
        );
    }
}

#[test]
fn pow_gradient_at_zero_follows_pytorch() {
    // At a = 0: ∂/∂a of 0^0 is 0 (b = 0), and ∂/∂b = aᵇ·ln a is 0 for b ≥ 0,
    // where the formula alone would give 0·(−∞) = NaN.
    let a = leaf(&[0.0, 2.0, 0.0], 3);
    let b = leaf(&[0.0, 3.0, 2.0], 3);
    let g = grads_of(&a.pow(&b).unwrap(), &[&a, &b]);
    assert_close(&g[0], &[0.0, 12.0, 0.0], 1e-15);
    assert_close(&g[1], &[0.0, 8.0 * 2f64.ln(), 0.0], 1e-15);
}

#[test]
fn pow_second_order_gradcheck() {
    let b = t(&[2.5], ());
    check_second_order(|x| x.pow(&b), rand(0.5, 2.0, &[2, 3], 3));
}

// ---------------------------------------------------------------- sqrt, abs, recip, square

#[test]
fn sqrt_forward_gradcheck_and_second_order() {
    assert_close(
        &values(&t(&[4.0, 2.0, 0.25], 3).sqrt().unwrap()),
        &[2.0, 2f64.sqrt(), 0.5],
        1e-15,
    );
    for (seed, shape) in SHAPES.iter().enumerate() {
        check(|x| x[0].sqrt(), &[rand(0.2, 3.0, shape, seed as u64)]);
    }
    check_second_order(|x| x.sqrt(), rand(0.2, 3.0, &[4], 1));
}

#[test]
fn abs_forward_gradcheck_and_zero_subgradient_at_the_kink() {
    assert_eq!(
        values(&t(&[-2.0, 0.0, 3.0], 3).abs().unwrap()),
        [2.0, 0.0, 3.0]
    );
    check_unary(|x| x.abs(), &[0.0]);
    // |x| has no derivative at 0; like PyTorch we use sign(0) = 0.
    let x = leaf(&[-2.0, 0.0, 3.0], 3);
    assert_eq!(grads_of(&x.abs().unwrap(), &[&x])[0], [-1.0, 0.0, 1.0]);
}

#[test]
fn recip_and_square_forward_gradcheck_and_second_order() {
    let x = t(&[-2.0, 0.5, 4.0], 3);
    assert_eq!(values(&x.recip().unwrap()), [-0.5, 2.0, 0.25]);
    assert_eq!(values(&x.square().unwrap()), [4.0, 0.25, 16.0]);
    check_unary(|x| x.recip(), &[0.0]);
    check_unary(|x| x.square(), &[]);
    check_second_order(|x| x.recip(), randn_away(&[5], 2, &[0.0]));
    check_second_order(|x| x.square(), randn(&[5], 2));
}

// ---------------------------------------------------------------- clamp, relu, leaky_relu

#[test]
fn clamp_forward_and_gradcheck_away_from_the_bounds() {
    let y = t(&[-3.0, -1.0, 0.0, 1.0, 3.0], 5).clamp(-1.0, 1.0).unwrap();
    assert_eq!(values(&y), [-1.0, -1.0, 0.0, 1.0, 1.0]);
    check_unary(|x| x.clamp(-0.5, 0.7), &[-0.5, 0.7]);
}

#[test]
fn clamp_gradient_passes_inside_and_on_the_bounds() {
    // Slope 1 for lo ≤ x ≤ hi (both bounds included), 0 outside.
    let x = leaf(&[-1.0, 0.0, 1.0, 2.0, 3.0], 5);
    assert_eq!(
        grads_of(&x.clamp(0.0, 2.0).unwrap(), &[&x])[0],
        [0.0, 1.0, 1.0, 1.0, 0.0]
    );
}

#[test]
fn relu_forward_gradcheck_and_zero_gradient_at_zero() {
    let x = leaf(&[-2.0, 0.0, 3.0], 3);
    let y = x.relu().unwrap();
    assert_eq!(values(&y), [0.0, 0.0, 3.0]);
    assert_eq!(grads_of(&y, &[&x])[0], [0.0, 0.0, 1.0]);
    check_unary(|x| x.relu(), &[0.0]);
}

#[test]
fn leaky_relu_forward_and_gradcheck() {
    let x = leaf(&[-2.0, 0.0, 3.0], 3);
    let y = x.leaky_relu(0.1).unwrap();
    assert_close(&values(&y), &[-0.2, 0.0, 3.0], 1e-15);
    // At 0 the negative side's slope, as in PyTorch (x > 0 ? 1 : slope).
    assert_close(&grads_of(&y, &[&x])[0], &[0.1, 0.1, 1.0], 1e-15);
    check_unary(|x| x.leaky_relu(0.01), &[0.0]);
    check_unary(|x| x.leaky_relu(-0.3), &[0.0]);
}

// ---------------------------------------------------------------- sigmoid

#[test]
fn sigmoid_forward_values() {
    let y = t(&[-2.0, -0.5, 0.0, 1.0, 3.0], 5).sigmoid().unwrap();
    let want = [
        0.11920292202211755,
        0.3775406687981454,
        0.5,
        0.7310585786300049,
        0.9525741268224334,
    ];
    assert_close(&values(&y), &want, 1e-15);
}

#[test]
fn sigmoid_is_stable_for_huge_inputs() {
    // 1/(1 + e⁻ˣ) at x = −1000 would compute e¹⁰⁰⁰ = ∞; the kernel uses
    // eˣ/(1 + eˣ) there. Values and gradients stay finite.
    let x = leaf(&[-1000.0, -40.0, 40.0, 1000.0], 4);
    let y = x.sigmoid().unwrap();
    let v = values(&y);
    assert_eq!(v[0], 0.0);
    assert_close(&v[1..2], &[(-40f64).exp()], 1e-12);
    assert_eq!(v[3], 1.0);
    let g = &grads_of(&y, &[&x])[0];
    assert!(g.iter().all(|v| v.is_finite()), "{g:?}");
}

#[test]
fn sigmoid_gradcheck() {
    check_unary(|x| x.sigmoid(), &[]);
}

#[test]
fn sigmoid_second_derivative_by_create_graph() {
    // σ' = σ(1 − σ), σ'' = σ(1 − σ)(1 − 2σ).
    let xs = [-1.5, 0.0, 0.7];
    let x = leaf(&xs, 3);
    let d1 = first_derivative(&|x: &Tensor| x.sigmoid(), &x).unwrap();
    let d2 = grad(
        &d1.sum_all().unwrap(),
        &[&x],
        None,
        BackwardOptions::default(),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    let s = |x: f64| 1.0 / (1.0 + (-x).exp());
    let want: Vec<f64> = xs
        .iter()
        .map(|&x| s(x) * (1.0 - s(x)) * (1.0 - 2.0 * s(x)))
        .collect();
    assert_close(&values(&d2), &want, 1e-12);
    check_second_order(|x| x.sigmoid(), randn(&[2, 3], 4));
}

// ---------------------------------------------------------------- gelu, silu

#[test]
fn gelu_exact_forward_matches_pytorch() {
    let y = t(&[-2.0, -0.5, 0.0, 1.0, 3.0], 5).gelu().unwrap();
    let want = [
        -0.04550026389635842,
        -0.15426876936299344,
        0.0,
        0.841344746068543,
        2.99595030590511,
    ];
    assert_close(&values(&y), &want, 1e-14);
}

#[test]
fn gelu_tanh_forward_matches_pytorch() {
    let y = t(&[-2.0, -0.5, 0.0, 1.0, 3.0], 5).gelu_tanh().unwrap();
    let want = [
        -0.04540230591222494,
        -0.15428599017485606,
        0.0,
        0.8411919906082768,
        2.996362607918227,
    ];
    assert_close(&values(&y), &want, 1e-14);
}

#[test]
fn gelu_tanh_approximates_gelu_within_5e_4() {
    let x = Tensor::from_raw(RawTensor::linspace(-6.0, 6.0, 1201, DType::F64, &dev()).unwrap());
    let exact = values(&x.gelu().unwrap());
    let approx = values(&x.gelu_tanh().unwrap());
    let worst = exact
        .iter()
        .zip(&approx)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    assert!(
        worst < 5e-4 && worst > 1e-5,
        "max |gelu − gelu_tanh| = {worst}"
    );
}

#[test]
fn gelu_gradcheck_both_forms_and_second_order() {
    check_unary(|x| x.gelu(), &[]);
    check_unary(|x| x.gelu_tanh(), &[]);
    check_second_order(|x| x.gelu(), randn(&[2, 3], 5));
    check_second_order(|x| x.gelu_tanh(), randn(&[2, 3], 6));
}

#[test]
fn silu_forward_gradcheck_and_second_order() {
    let y = t(&[-2.0, -0.5, 0.0, 1.0, 3.0], 5).silu().unwrap();
    let want = [
        -0.2384058440442351,
        -0.1887703343990727,
        0.0,
        0.7310585786300049,
        2.8577223804672998,
    ];
    assert_close(&values(&y), &want, 1e-14);
    check_unary(|x| x.silu(), &[]);
    check_second_order(|x| x.silu(), randn(&[5], 7));
}

// ---------------------------------------------------------------- softplus

#[test]
fn softplus_forward_matches_pytorch() {
    let x = t(&[-2.0, -0.5, 0.0, 1.0, 3.0], 5);
    let want = [
        0.1269280110429725,
        0.4740769841801067,
        std::f64::consts::LN_2,
        1.3132616875182228,
        3.048587351573742,
    ];
    assert_close(&values(&x.softplus(1.0, 20.0).unwrap()), &want, 1e-14);
    // beta = 2, threshold = 1: the last two are past the threshold (2x > 1).
    let want = [
        0.009074963958904869,
        0.15663084375911143,
        0.34657359027997264,
        1.0,
        3.0,
    ];
    assert_close(&values(&x.softplus(2.0, 1.0).unwrap()), &want, 1e-14);
}

// ANCHOR: softplus_stability
#[test]
fn softplus_is_accurate_for_very_negative_inputs() {
    // ln(1 + e⁻⁵⁰) ≈ 1.93e-22: `ln(1 + tiny)` would round to 0; the
    // log1p form keeps every digit.
    let y = values(&t(&[-50.0, -700.0], 2).softplus(1.0, 20.0).unwrap());
    assert_close(&y, &[1.9287498479639178e-22, 9.85967654375977e-305], 1e-13);
    let y = values(&t(&[-50.0], 1).softplus(2.0, 20.0).unwrap());
    assert_close(&y, &[1.860037988010418e-44], 1e-13);
}

#[test]
fn softplus_threshold_switches_to_the_identity() {
    // e^(1e4) overflows; past the threshold softplus(x) is x itself.
    let x = leaf(&[1e4, 25.0, -1e4], 3);
    let y = x.softplus(1.0, 20.0).unwrap();
    assert_eq!(values(&y), [1e4, 25.0, 0.0]);
    assert_eq!(grads_of(&y, &[&x])[0], [1.0, 1.0, 0.0]);
}
// ANCHOR_END: softplus_stability

#[test]
fn softplus_gradcheck_with_beta_and_threshold() {
    check_unary(|x| x.softplus(1.0, 20.0), &[]);
    // The branch switch at beta·x = threshold is a (small) jump: stay away.
    check_unary(|x| x.softplus(2.0, 1.0), &[0.5]);
    check_second_order(|x| x.softplus(1.5, 20.0), randn(&[2, 3], 8));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Symmetries that hold exactly in real arithmetic, checked over a range
    /// where naive formulas overflow: σ(x) + σ(−x) = 1 and
    /// softplus(x) − softplus(−x) = x.
    #[test]
    fn sigmoid_and_softplus_stay_finite_and_symmetric(x in -800.0f64..800.0) {
        let pos = t(&[x], 1);
        let neg = t(&[-x], 1);
        let s = values(&pos.sigmoid().unwrap())[0] + values(&neg.sigmoid().unwrap())[0];
        prop_assert!((s - 1.0).abs() < 1e-15);
        // The stable form needs no threshold to stay finite: with an
        // infinite one the identity holds to rounding.
        let sp = |x: &Tensor, threshold| values(&x.softplus(1.0, threshold).unwrap())[0];
        let d = sp(&pos, f64::INFINITY) - sp(&neg, f64::INFINITY);
        prop_assert!(d.is_finite() && (d - x).abs() <= 1e-12 * (1.0 + x.abs()), "x = {}, difference {}", x, d);
        // PyTorch's threshold 20 returns x itself past it, which is off by
        // ln(1 + e⁻ˣ) < e⁻²⁰ ≈ 2e-9.
        let d = sp(&pos, 20.0) - sp(&neg, 20.0);
        prop_assert!((d - x).abs() <= 3e-9 + 1e-12 * x.abs(), "x = {}, difference {}", x, d);
    }
}

// ---------------------------------------------------------------- sin, cos

#[test]
fn sin_cos_forward_gradcheck_and_second_order() {
    let x = t(&[0.0, std::f64::consts::FRAC_PI_2, 1.0], 3);
    assert_close(&values(&x.sin().unwrap()), &[0.0, 1.0, 1f64.sin()], 1e-15);
    assert_close(&values(&x.cos().unwrap()), &[1.0, 0.0, 1f64.cos()], 1e-15);
    check_unary(|x| x.sin(), &[]);
    check_unary(|x| x.cos(), &[]);
    check_second_order(|x| x.sin(), randn(&[4], 9));
    check_second_order(|x| x.cos(), randn(&[4], 10));
}

// ---------------------------------------------------------------- maximum, minimum

#[test]
fn maximum_minimum_forward_with_broadcasting() {
    let a = t(&[1.0, 5.0, 3.0, -1.0, 0.0, 7.0], (2, 3));
    let b = t(&[2.0, 2.0, 2.0], 3);
    assert_eq!(
        values(&a.maximum(&b).unwrap()),
        [2.0, 5.0, 3.0, 2.0, 2.0, 7.0]
    );
    assert_eq!(
        values(&a.minimum(&b).unwrap()),
        [1.0, 2.0, 2.0, -1.0, 0.0, 2.0]
    );
}

#[test]
fn maximum_minimum_gradcheck_with_broadcasting() {
    let pairs: [(&[usize], &[usize]); 3] = [(&[5], &[5]), (&[2, 3, 4], &[3, 1]), (&[2, 3], &[])];
    for (seed, (sa, sb)) in pairs.into_iter().enumerate() {
        let (a, b) = (randn(sa, seed as u64), randn(sb, seed as u64 + 20));
        check(|x| x[0].maximum(&x[1]), &[a.clone(), b.clone()]);
        check(|x| x[0].minimum(&x[1]), &[a, b]);
    }
}

// ANCHOR: maximum_ties
#[test]
fn maximum_minimum_ties_split_the_gradient() {
    // The larger input gets the gradient; on a tie each gets half (PyTorch).
    let a = leaf(&[1.0, 2.0, 2.0, 0.5], 4);
    let b = leaf(&[2.0, 2.0, 1.0, 0.5], 4);
    let g = grads_of(&a.maximum(&b).unwrap(), &[&a, &b]);
    assert_eq!(g, [vec![0.0, 0.5, 1.0, 0.5], vec![1.0, 0.5, 0.0, 0.5]]);
    let a = leaf(&[1.0, 2.0, 2.0, 0.5], 4);
    let b = leaf(&[2.0, 2.0, 1.0, 0.5], 4);
    let g = grads_of(&a.minimum(&b).unwrap(), &[&a, &b]);
    assert_eq!(g, [vec![1.0, 0.5, 0.0, 0.5], vec![0.0, 0.5, 1.0, 0.5]]);
    // A broadcast operand collects the shares of every position it won.
    let a = leaf(&[1.0, 3.0, 2.0], 3);
    let b = leaf(&[2.0], 1);
    let g = grads_of(&a.maximum(&b).unwrap(), &[&a, &b]);
    assert_eq!(g, [vec![0.0, 1.0, 0.5], vec![1.5]]);
}
// ANCHOR_END: maximum_ties

// ---------------------------------------------------------------- comparisons, where_cond

#[test]
fn comparisons_return_u8_masks_without_gradient() {
    let a = leaf(&[1.0, 2.0, 3.0], 3);
    let b = t(&[2.0], 1);
    let masks = [
        (a.eq_t(&b).unwrap(), [0u8, 1, 0]),
        (a.ne_t(&b).unwrap(), [1, 0, 1]),
        (a.lt_t(&b).unwrap(), [1, 0, 0]),
        (a.le_t(&b).unwrap(), [1, 1, 0]),
        (a.gt_t(&b).unwrap(), [0, 0, 1]),
        (a.ge_t(&b).unwrap(), [0, 1, 1]),
    ];
    for (mask, want) in masks {
        assert_eq!(mask.dtype(), DType::U8);
        assert!(
            !mask.requires_grad(),
            "a comparison is piecewise constant: no gradient"
        );
        assert_eq!(mask.to_vec::<u8>().unwrap(), want);
    }
}

#[test]
fn where_cond_selects_elementwise_with_broadcasting() {
    let x = t(&[-1.0, 2.0, -3.0, 4.0], (2, 2));
    let zero = t(&[0.0], ());
    let positive = x.gt_t(&zero).unwrap();
    // A relu written with where_cond; the scalar on_false broadcasts.
    assert_eq!(
        values(&where_cond(&positive, &x, &zero).unwrap()),
        [0.0, 2.0, 0.0, 4.0]
    );
}

#[test]
fn where_cond_routes_gradients_and_sums_them_to_each_shape() {
    let cond = RawTensor::from_vec(vec![1u8, 0, 1, 0, 0, 1], (2, 3), &dev()).unwrap();
    // on_true [3] is broadcast over rows, on_false [2, 1] over columns.
    check(
        |x| where_cond(&x[0], &x[1], &x[2]),
        &[cond.clone(), randn(&[3], 1), randn(&[2, 1], 2)],
    );
    check(
        |x| where_cond(&x[0], &x[1], &x[2]),
        &[cond.clone(), randn(&[2, 3], 3), randn(&[], 4)],
    );
    let on_true = leaf(&[1.0, 2.0, 3.0], 3);
    let on_false = leaf(&[10.0, 20.0], (2, 1));
    let y = where_cond(&Tensor::from_raw(cond), &on_true, &on_false).unwrap();
    assert_eq!(values(&y), [1.0, 10.0, 3.0, 20.0, 20.0, 3.0]);
    let g = grads_of(&y, &[&on_true, &on_false]);
    assert_eq!(g, [vec![1.0, 0.0, 2.0], vec![1.0, 2.0]]);
}

#[test]
fn where_cond_second_order_through_both_branches() {
    let cond = Tensor::from_raw(RawTensor::from_vec(vec![1u8, 0, 1, 0], 4, &dev()).unwrap());
    check_second_order(
        move |x| where_cond(&cond, &x.sigmoid()?, &x.sin()?),
        randn(&[4], 11),
    );
}

// ---------------------------------------------------------------- errors

#[test]
fn elementwise_errors_name_the_op_and_the_shapes() {
    let a = t(&[1.0; 6], (2, 3));
    let b = t(&[1.0; 4], 4);
    assert_eq!(
        err(a.maximum(&b)),
        "maximum: cannot broadcast [2, 3] with [4]"
    );
    assert_eq!(err(a.pow(&b)), "pow: cannot broadcast [2, 3] with [4]");
    assert_eq!(err(a.lt_t(&b)), "lt: cannot broadcast [2, 3] with [4]");
    let f32s = Tensor::from_vec(vec![1.0f32, 2.0, 3.0], 3, &dev()).unwrap();
    assert_eq!(err(a.minimum(&f32s)), "minimum: dtype mismatch f64 vs f32");
    let ints = Tensor::from_vec(vec![1i64, 2], 2, &dev()).unwrap();
    assert_eq!(err(ints.sigmoid()), "sigmoid: not supported for dtype i64");
    assert_eq!(err(ints.gelu()), "gelu: not supported for dtype i64");
    assert_eq!(
        err(ints.softplus(1.0, 20.0)),
        "softplus: not supported for dtype i64"
    );
    assert_eq!(
        err(a.softplus(0.0, 20.0)),
        "softplus: beta must be finite and non-zero, got 0"
    );
    assert_eq!(
        err(a.clamp(1.0, -1.0)),
        "clamp: min 1 is greater than max -1"
    );
    assert_eq!(
        err(where_cond(&a, &a, &a)),
        "where_cond (condition must be u8): not supported for dtype f64"
    );
    let mask = a.gt_t(&t(&[0.0], ())).unwrap();
    assert_eq!(
        err(where_cond(&mask, &a, &b)),
        "where_cond: cannot broadcast [2, 3] with [4]"
    );
}
