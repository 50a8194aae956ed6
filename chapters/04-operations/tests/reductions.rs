//! Lessons: reductions and where their gradients go. A max sends the
//! gradient to the winner (to the returned index over one dim, split among
//! ties over several); a variance weights each element by its deviation;
//! `logsumexp` by its softmax probability; `topk` to the selected elements.
//! `cargo test -p chapter-04 --test reductions` runs them all;
//! `cargo test -p chapter-04 logsumexp` only the logsumexp lessons.

mod common;
use chapter_03::{
    grad, gradcheck, set_grad_enabled, BackwardOptions, DType, GradcheckOptions, RawTensor, Result,
    Tensor,
};
use chapter_04::prelude::*;
use common::*;
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// Finite differences agree with backward for a one-input `f`.
fn check(x: RawTensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    gradcheck(|xs| f(&xs[0]), &[x], GradcheckOptions::default()).unwrap();
}

/// `gradcheck` of `x ↦ ∂(Σ f(x))/∂x`: the backward pass is itself
/// correctly differentiable.
fn check_second_order(x: RawTensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    let df = |xs: &[Tensor]| -> Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let x = if xs[0].requires_grad() {
            xs[0].clone()
        } else {
            Tensor::param(xs[0].data())?
        };
        let y = f(&x)?.sum_all()?;
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        Ok(grad(&y, &[&x], None, opts)?
            .remove(0)
            .expect("f depends on x"))
    };
    gradcheck(df, &[x], GradcheckOptions::default()).unwrap();
}

/// `∂(Σ y)/∂x` by `backward`.
fn grad_of(y: &Tensor, x: &Tensor) -> Vec<f64> {
    y.sum_all().unwrap().backward().unwrap();
    values(&x.grad().unwrap())
}

/// Dim lists to reduce a `[2, 3, 4]` tensor over, negative ones included.
const DIM_LISTS: [&[i64]; 6] = [&[0], &[-1], &[1], &[0, 2], &[-2, -1], &[0, 1, 2]];

// ---------------------------------------------------------------- max, min

#[test]
fn max_with_indices_returns_values_and_first_indices() {
    let x = t(&[1.0, 5.0, 3.0, 4.0, 2.0, 6.0], (2, 3));
    let (v, i) = x.max_with_indices(1, false).unwrap();
    assert_eq!((v.dims(), i.dims()), (vec![2], vec![2]));
    assert_eq!(values(&v), [5.0, 6.0]);
    assert_eq!(i.dtype(), DType::I64);
    assert_eq!(i.to_vec::<i64>().unwrap(), [1, 2]);
    let (v, i) = x.min_with_indices(0, true).unwrap();
    assert_eq!((v.dims(), i.dims()), (vec![1, 3], vec![1, 3]));
    assert_eq!(values(&v), [1.0, 2.0, 3.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), [0, 1, 0]);
    assert!(!i.requires_grad());
}

// ANCHOR: ties
#[test]
fn max_over_one_dim_sends_the_gradient_to_the_returned_index() {
    // Row 0 ties at 3 (positions 1 and 2): torch.max(x, 1) returns index 1
    // and only that element gets the gradient.
    let x = leaf(&[1.0, 3.0, 3.0, 2.0, 0.0, 2.0], (2, 3));
    let (v, i) = x.max_with_indices(1, false).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), [1, 0]);
    assert_eq!(grad_of(&v, &x), [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]);
    // `max` over a single dim is the same operation.
    let x = leaf(&[1.0, 3.0, 3.0, 2.0, 0.0, 2.0], (2, 3));
    assert_eq!(
        grad_of(&x.max([-1], false).unwrap(), &x),
        [0.0, 1.0, 0.0, 1.0, 0.0, 0.0]
    );
}

#[test]
fn max_over_several_dims_splits_ties_evenly() {
    // Over several dims (torch.amax) and over everything (torch.max(x)),
    // tied maxima share the gradient equally.
    let x = leaf(&[1.0, 3.0, 3.0, 2.0, 0.0, 2.0], (2, 3));
    assert_eq!(
        grad_of(&x.max([0, 1], false).unwrap(), &x),
        [0.0, 0.5, 0.5, 0.0, 0.0, 0.0]
    );
    let x = leaf(&[1.0, 3.0, 3.0, 2.0, 0.0, 2.0], (2, 3));
    let m = x.max_all().unwrap();
    assert_eq!(m.dims(), Vec::<usize>::new());
    assert_eq!(grad_of(&m, &x), [0.0, 0.5, 0.5, 0.0, 0.0, 0.0]);
    let x = leaf(&[1.0, 3.0, 0.0, 2.0, 0.0, 2.0], (2, 3));
    let m = x.min_all().unwrap();
    assert_eq!(m.item().unwrap(), 0.0);
    assert_eq!(grad_of(&m, &x), [0.0, 0.0, 0.5, 0.0, 0.5, 0.0]);
}
// ANCHOR_END: ties

#[test]
fn max_min_values_and_shapes_over_dim_lists() {
    let x = Tensor::from_raw(randn(&[2, 3, 4], 1));
    let v = values(&x);
    for keepdim in [false, true] {
        let m = x.max([0, 2], keepdim).unwrap();
        assert_eq!(m.dims(), if keepdim { vec![1, 3, 1] } else { vec![3] });
        for (j, got) in values(&m).into_iter().enumerate() {
            let want = (0..2)
                .flat_map(|i| (0..4).map(move |k| (i, k)))
                .map(|(i, k)| v[i * 12 + j * 4 + k]);
            assert_eq!(got, want.fold(f64::MIN, f64::max));
        }
    }
    assert_eq!(x.min([-1], false).unwrap().dims(), [2, 3]);
    assert_eq!(
        x.max_all().unwrap().item().unwrap(),
        v.iter().cloned().fold(f64::MIN, f64::max)
    );
    assert_eq!(
        x.min_all().unwrap().item().unwrap(),
        v.iter().cloned().fold(f64::MAX, f64::min)
    );
}

#[test]
fn max_min_gradcheck_over_dims_and_keepdim() {
    for (seed, dims) in DIM_LISTS.iter().enumerate() {
        for keepdim in [false, true] {
            check(randn(&[2, 3, 4], seed as u64), |x| {
                x.max(dims.to_vec(), keepdim)
            });
            check(randn(&[2, 3, 4], seed as u64 + 10), |x| {
                x.min(dims.to_vec(), keepdim)
            });
        }
    }
    check(randn(&[3, 4], 30), |x| x.max_all());
    check(randn(&[3, 4], 31), |x| x.min_all());
    check(randn(&[3, 4], 32), |x| Ok(x.max_with_indices(-1, true)?.0));
    check(randn(&[3, 4], 33), |x| Ok(x.min_with_indices(0, false)?.0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// The returned index points at the returned value, and no element
    /// along the dim is larger.
    #[test]
    fn max_with_indices_index_points_at_the_maximum(
        dims in prop::collection::vec(1usize..5, 1..4),
        dim_seed in 0usize..8,
        seed in 0u64..1000,
    ) {
        let d = dim_seed % dims.len();
        let x = Tensor::from_raw(randn(&dims, seed));
        let (v, i) = x.max_with_indices(d, true).unwrap();
        let picked = x.data().gather(&i.data(), d).unwrap();
        prop_assert_eq!(values(&v), picked.to_vec_f64().unwrap());
        let larger = x.data().gt(&v.data()).unwrap().to_vec::<u8>().unwrap();
        prop_assert!(larger.iter().all(|&b| b == 0));
    }
}

// ---------------------------------------------------------------- var, std

#[test]
fn var_correction_zero_is_biased_and_one_is_unbiased() {
    let x = t(&[1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 2.0], (2, 4));
    // Mean 2.5, squared deviations 2.25 + 0.25 + 0.25 + 2.25 = 5.
    assert_close(
        &values(&x.var([1], 0, false).unwrap()),
        &[5.0 / 4.0, 0.0],
        1e-15,
    );
    assert_close(
        &values(&x.var([1], 1, false).unwrap()),
        &[5.0 / 3.0, 0.0],
        1e-15,
    );
    assert_close(
        &values(&x.std([-1], 1, false).unwrap()),
        &[(5.0f64 / 3.0).sqrt(), 0.0],
        1e-15,
    );
    assert_eq!(x.var([1], 0, true).unwrap().dims(), [2, 1]);
    // Over everything: mean 2.25, squared deviations sum to 5.5.
    assert_close(
        &values(&x.var([0, 1], 0, false).unwrap()),
        &[5.5 / 8.0],
        1e-15,
    );
}

#[test]
fn var_std_gradcheck_over_dims_corrections_and_keepdim() {
    for (seed, dims) in DIM_LISTS.iter().enumerate() {
        for (correction, keepdim) in [(0, false), (1, true), (1, false)] {
            let seed = seed as u64;
            check(randn(&[2, 3, 4], seed), |x| {
                x.var(dims.to_vec(), correction, keepdim)
            });
            check(randn(&[2, 3, 4], seed + 10), |x| {
                x.std(dims.to_vec(), correction, keepdim)
            });
        }
    }
}

#[test]
fn var_std_second_order_gradcheck() {
    check_second_order(randn(&[3, 4], 1), |x| x.var([1], 1, false));
    check_second_order(randn(&[3, 4], 2), |x| x.std([0, 1], 0, false));
}

#[test]
fn std_of_a_constant_has_gradient_zero_not_nan() {
    // ∂std/∂var = 1/(2·std) is infinite at std = 0; like PyTorch we pass 0.
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 2.0, 2.0, 2.0, 2.0], (2, 4));
    let g = grad_of(&x.std([1], 1, false).unwrap(), &x);
    let a = 1.0 / (2.0 * (5.0f64 / 3.0).sqrt()) * 2.0 / 3.0;
    assert_close(
        &g,
        &[-1.5 * a, -0.5 * a, 0.5 * a, 1.5 * a, 0.0, 0.0, 0.0, 0.0],
        1e-14,
    );
}

// ---------------------------------------------------------------- logsumexp

#[test]
fn logsumexp_forward_values() {
    let x = t(&[1.0, 5.0, 3.0, 4.0, 2.0, 6.0], (2, 3));
    assert_close(
        &values(&x.logsumexp([1], false).unwrap()),
        &[5.1429316284999, 6.142931628499899],
        1e-14,
    );
    assert_close(
        &values(&x.logsumexp([0, 1], false).unwrap()),
        &[6.456193316018123],
        1e-14,
    );
    assert_eq!(x.logsumexp([-1], true).unwrap().dims(), [2, 1]);
}

#[test]
fn logsumexp_is_stable_for_huge_inputs() {
    // exp(1e4) is ∞ in f64; subtracting the max first keeps every term ≤ 1.
    let x = leaf(
        &[1e4, 1e4 - 1.0, -1e4, -1e4, -1e4 - 1.0, -1e4 - 2.0],
        (2, 3),
    );
    let y = x.logsumexp([1], false).unwrap();
    let v = values(&y);
    assert_close(&v[..1], &[10000.31326168752], 1e-14);
    assert_close(
        &v[1..],
        &[-1e4 + (1.0 + (-1f64).exp() + (-2f64).exp()).ln()],
        1e-14,
    );
    let g = grad_of(&y, &x);
    assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
    // Each row's gradient is a softmax: it sums to 1 (to about the ulp of
    // 1e4, 2e-12, which `exp(x − y)` inherits from `y`).
    assert_close(
        &[g[..3].iter().sum::<f64>(), g[3..].iter().sum::<f64>()],
        &[1.0, 1.0],
        1e-11,
    );
    // A row of −∞ (everything masked) gives −∞, not NaN.
    let masked = t(&[f64::NEG_INFINITY; 2], 2).logsumexp([0], false).unwrap();
    assert_eq!(values(&masked), [f64::NEG_INFINITY]);
}

#[test]
fn logsumexp_gradcheck_and_second_order() {
    for (seed, dims) in DIM_LISTS.iter().enumerate() {
        check(randn(&[2, 3, 4], seed as u64), |x| {
            x.logsumexp(dims.to_vec(), false)
        });
    }
    check(randn(&[3, 4], 9), |x| x.logsumexp([1], true));
    // The Hessian of logsumexp is diag(p) − p pᵀ.
    check_second_order(randn(&[3, 4], 10), |x| x.logsumexp([-1], false));
}

// ---------------------------------------------------------------- argmax, argmin

#[test]
fn argmax_argmin_pick_the_first_extremum_and_carry_no_gradient() {
    let x = leaf(&[1.0, 3.0, 3.0, 2.0, 0.0, 0.0], (2, 3));
    let i = x.argmax(1, false).unwrap();
    assert_eq!(i.dtype(), DType::I64);
    assert_eq!(i.to_vec::<i64>().unwrap(), [1, 0]);
    assert!(!i.requires_grad());
    assert_eq!(
        x.argmin(-1, false).unwrap().to_vec::<i64>().unwrap(),
        [0, 1]
    );
    assert_eq!(x.argmax(0, true).unwrap().dims(), [1, 3]);
    assert_eq!(
        x.argmax(0, true).unwrap().to_vec::<i64>().unwrap(),
        [1, 0, 0]
    );
}

// ---------------------------------------------------------------- topk

#[test]
fn topk_returns_sorted_values_and_indices() {
    let x = t(&[1.0, 5.0, 3.0, 5.0, 2.0], (1, 5));
    let (v, i) = x.topk(3, 1, true).unwrap();
    assert_eq!(values(&v), [5.0, 5.0, 3.0]);
    // Ties keep their order (the sort is stable).
    assert_eq!(i.to_vec::<i64>().unwrap(), [1, 3, 2]);
    let (v, i) = x.topk(2, -1, false).unwrap();
    assert_eq!(values(&v), [1.0, 2.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), [0, 4]);
    // Along dim 0 of a [3, 2]: each column separately.
    let x = t(&[1.0, 6.0, 3.0, 4.0, 2.0, 5.0], (3, 2));
    let (v, i) = x.topk(2, 0, true).unwrap();
    assert_eq!(v.dims(), [2, 2]);
    assert_eq!(values(&v), [3.0, 6.0, 2.0, 5.0]);
    assert_eq!(i.to_vec::<i64>().unwrap(), [1, 0, 2, 2]);
    // NaN counts as the largest, as in PyTorch.
    let (_, i) = t(&[1.0, f64::NAN, 3.0], 3).topk(2, 0, true).unwrap();
    assert_eq!(i.to_vec::<i64>().unwrap(), [1, 2]);
}

#[test]
fn topk_gradient_goes_to_the_selected_elements() {
    let x = leaf(&[1.0, 5.0, 3.0, 5.0, 2.0], 5);
    let (v, _) = x.topk(3, 0, true).unwrap();
    assert_eq!(grad_of(&v, &x), [0.0, 1.0, 1.0, 1.0, 0.0]);
    check(randn(&[3, 5], 1), |x| Ok(x.topk(2, -1, true)?.0));
    check(randn(&[4, 2, 3], 2), |x| Ok(x.topk(3, 0, false)?.0));
}

// ---------------------------------------------------------------- errors

#[test]
fn reduction_errors_name_the_op_and_the_shapes() {
    let x = t(&[1.0; 6], (2, 3));
    assert_eq!(
        err(x.max([2], false)),
        "max: dimension 2 out of range for a tensor of shape [2, 3]"
    );
    assert_eq!(
        err(x.max_with_indices(-3, false)),
        "max_with_indices: dimension -3 out of range for a tensor of shape [2, 3]"
    );
    assert_eq!(
        err(x.topk(4, 1, true)),
        "topk: k = 4 is larger than dimension 1 (size 3) of shape [2, 3]"
    );
    assert_eq!(
        err(x.var([0], 2, false)),
        "var: correction 2 needs more than 2 elements, but dims [0] of shape [2, 3] hold 2"
    );
    let empty = Tensor::zeros((2, 0), DType::F64, &dev()).unwrap();
    assert_eq!(
        err(empty.argmax(1, false)),
        "argmax: cannot reduce the empty dimension 1 of shape [2, 0]"
    );
    assert_eq!(
        err(empty.max_all()),
        "max_all: cannot reduce the empty dimension 1 of shape [2, 0]"
    );
    let ints = Tensor::from_vec(vec![1i64, 2], 2, &dev()).unwrap();
    assert_eq!(
        err(ints.var([0], 0, false)),
        "var: not supported for dtype i64"
    );
    assert_eq!(
        err(ints.logsumexp([0], false)),
        "logsumexp: not supported for dtype i64"
    );
}
