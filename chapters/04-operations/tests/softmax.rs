//! Lessons: the softmax family, cumulative sums and one-hot encoding.
//! Softmax and log-softmax subtract the max before exponentiating (so huge
//! logits stay finite) and have closed-form backward passes; cumsum's
//! backward is a cumsum running the other way.
//! `cargo test -p chapter-04 --test softmax` runs them all;
//! `cargo test -p chapter-04 cumsum` only the cumsum lessons.

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

/// Seeded normal `f64` values, as a raw tensor for `gradcheck`.
fn randn(shape: &[usize], std: f64, seed: u64) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        std,
        shape,
        DType::F64,
        &dev(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

/// Finite differences agree with backward for a one-input `f`.
fn check(x: RawTensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    gradcheck(|xs| f(&xs[0]), &[x], GradcheckOptions::default()).unwrap();
}

/// `gradcheck` of `x ↦ ∂(Σ f(x) ⊙ w)/∂x` for a fixed random `w`: the
/// backward pass is itself correctly differentiable. (A plain `Σ f(x)`
/// would be useless for softmax: its rows sum to the constant 1.)
fn check_second_order(x: RawTensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    let w = Tensor::from_raw(randn(x.dims(), 1.0, 99));
    let df = |xs: &[Tensor]| -> Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let x = if xs[0].requires_grad() {
            xs[0].clone()
        } else {
            Tensor::param(xs[0].data())?
        };
        let y = f(&x)?.mul(&w)?.sum_all()?;
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

// ---------------------------------------------------------------- softmax, log_softmax

#[test]
fn softmax_and_log_softmax_forward_values() {
    let x = t(&[1.0, 2.0, 3.0], 3);
    let p = [0.09003057317038045, 0.2447284710547976, 0.6652409557748218];
    assert_close(&values(&x.softmax(0).unwrap()), &p, 1e-15);
    let lp = [
        -2.4076059644443806,
        -1.4076059644443804,
        -0.4076059644443804,
    ];
    assert_close(&values(&x.log_softmax(-1).unwrap()), &lp, 1e-15);
    // Along dim 0 of a matrix: each column is normalised.
    let x = t(&[0.0, 1.0, 0.0, 1.0], (2, 2));
    assert_close(
        &values(&x.softmax(0).unwrap()),
        &[0.5, 0.5, 0.5, 0.5],
        1e-15,
    );
}

// ANCHOR: stability
#[test]
fn softmax_is_stable_for_huge_inputs() {
    // exp(1e4) = ∞ and ∞/∞ = NaN; after subtracting the max the exponents
    // are 0, −1, −2 and the answer is that of [0, −1, −2].
    let x = leaf(
        &[1e4, 1e4 - 1.0, 1e4 - 2.0, -1e4, -1e4 - 1.0, -1e4 - 2.0],
        (2, 3),
    );
    let p = x.softmax(1).unwrap();
    let want = values(&t(&[0.0, -1.0, -2.0], 3).softmax(0).unwrap());
    assert_close(&values(&p)[..3], &want, 1e-15);
    assert_close(&values(&p)[3..], &want, 1e-15);
    let lp = values(&x.log_softmax(1).unwrap());
    assert!(lp.iter().all(|v| v.is_finite()), "{lp:?}");
    let w = t(&[1.0, -2.0, 0.5, 3.0, 0.0, -1.0], (2, 3));
    p.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    assert!(values(&x.grad().unwrap()).iter().all(|g| g.is_finite()));
}

#[test]
fn log_softmax_keeps_tiny_probabilities() {
    // softmax([0, −1000])[1] = e⁻¹⁰⁰⁰ underflows to 0, and log(0) = −∞.
    // log_softmax never forms the probability: it returns −1000.
    let x = t(&[0.0, -1000.0], 2);
    assert_eq!(values(&x.softmax(0).unwrap())[1], 0.0);
    assert_close(&values(&x.log_softmax(0).unwrap()), &[0.0, -1000.0], 1e-15);
}
// ANCHOR_END: stability

#[test]
fn softmax_with_masked_entries_gives_them_zero_probability_and_gradient() {
    // A causal mask: −∞ logits become exactly 0 and take no gradient.
    let inf = f64::NEG_INFINITY;
    let x = leaf(&[0.5, inf, inf, 1.0, 2.0, inf, -1.0, 0.0, 1.0], (3, 3));
    let p = x.softmax(-1).unwrap();
    let v = values(&p);
    assert_eq!((v[0], v[1], v[2], v[5]), (1.0, 0.0, 0.0, 0.0));
    let w = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0], (3, 3));
    p.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    let g = values(&x.grad().unwrap());
    assert!(g.iter().all(|g| g.is_finite()), "{g:?}");
    assert_eq!((g[1], g[2], g[5]), (0.0, 0.0, 0.0));
}

#[test]
fn softmax_log_softmax_gradcheck_over_shapes_and_dims() {
    let cases: [(&[usize], i64); 5] = [
        (&[5], 0),
        (&[2, 3], 1),
        (&[2, 3], -2),
        (&[2, 3, 4], -1),
        (&[2, 3, 4], 1),
    ];
    for (seed, (shape, dim)) in cases.into_iter().enumerate() {
        check(randn(shape, 2.0, seed as u64), |x| x.softmax(dim));
        check(randn(shape, 2.0, seed as u64 + 10), |x| x.log_softmax(dim));
    }
}

#[test]
fn softmax_log_softmax_second_order_gradcheck() {
    check_second_order(randn(&[2, 4], 1.0, 1), |x| x.softmax(-1));
    check_second_order(randn(&[3, 2], 1.0, 2), |x| x.log_softmax(0));
}

#[test]
fn softmax_is_one_node_and_log_softmax_is_its_log() {
    let x = leaf(&[0.3, -1.2, 2.0, 0.1], (2, 2));
    let p = x.softmax(1).unwrap();
    let lp = x.log_softmax(1).unwrap();
    // A single CustomOp each: the graph holds one node, not exp/sum/div.
    assert_eq!(p.op_name(), Some("softmax"));
    assert_eq!(lp.op_name(), Some("log_softmax"));
    assert_close(
        &values(&lp),
        &values(&p).iter().map(|v| v.ln()).collect::<Vec<_>>(),
        1e-14,
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Whatever the shape, the dim and the scale of the logits (up to 1e4),
    /// softmax gives finite probabilities that sum to 1 along `dim`.
    #[test]
    fn softmax_rows_sum_to_one(
        dims in prop::collection::vec(1usize..6, 1..4),
        dim_seed in 0usize..8,
        scale in prop::sample::select(vec![1e-3, 1.0, 30.0, 1e4]),
        seed in 0u64..1000,
    ) {
        let d = dim_seed % dims.len();
        let p = Tensor::from_raw(randn(&dims, scale, seed)).softmax(d).unwrap();
        let v = values(&p);
        prop_assert!(v.iter().all(|p| (0.0..=1.0).contains(p)));
        let sums = values(&p.sum([d], false).unwrap());
        prop_assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-12), "sums {:?}", sums);
    }
}

// ---------------------------------------------------------------- cumsum

/// The running sum by a host loop along the last axis.
fn naive_cumsum_rows(v: &[f64], n: usize) -> Vec<f64> {
    v.chunks(n)
        .flat_map(|row| {
            row.iter().scan(0.0, |acc, x| {
                *acc += x;
                Some(*acc)
            })
        })
        .collect()
}

#[test]
fn cumsum_forward_values() {
    assert_eq!(
        values(&t(&[1.0, 2.0, 3.0, 4.0], 4).cumsum(0).unwrap()),
        [1.0, 3.0, 6.0, 10.0]
    );
    let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    assert_eq!(
        values(&x.cumsum(0).unwrap()),
        [1.0, 2.0, 3.0, 5.0, 7.0, 9.0]
    );
    assert_eq!(
        values(&x.cumsum(-1).unwrap()),
        [1.0, 3.0, 6.0, 4.0, 9.0, 15.0]
    );
}

#[test]
fn cumsum_long_rows_match_a_host_loop() {
    // Row lengths that are and are not perfect squares exercise the
    // two-level (block, then block totals) scan and its padding.
    for (seed, n) in [1usize, 2, 37, 64, 1000].into_iter().enumerate() {
        let x = randn(&[3, n], 1.0, seed as u64);
        let got = values(&Tensor::from_raw(x.clone()).cumsum(1).unwrap());
        assert_close(&got, &naive_cumsum_rows(&x.to_vec_f64().unwrap(), n), 1e-12);
    }
    // Along a leading dim: the same after a transpose.
    let x = randn(&[50, 3], 1.0, 9);
    let got = Tensor::from_raw(x.clone())
        .cumsum(0)
        .unwrap()
        .data()
        .t()
        .unwrap()
        .contiguous()
        .unwrap();
    let rows = x.t().unwrap().contiguous().unwrap().to_vec_f64().unwrap();
    assert_close(
        &got.to_vec_f64().unwrap(),
        &naive_cumsum_rows(&rows, 50),
        1e-12,
    );
}

#[test]
fn cumsum_of_integers_is_exact_and_i64() {
    let ids = Tensor::from_vec(vec![1i64, 0, 1, 1, 0, 1], (2, 3), &dev()).unwrap();
    let c = ids.cumsum(1).unwrap();
    assert_eq!(c.dtype(), DType::I64);
    assert_eq!(c.to_vec::<i64>().unwrap(), [1, 1, 2, 1, 1, 2]);
}

// ANCHOR: cumsum_backward
#[test]
fn cumsum_backward_is_a_reversed_cumsum() {
    // y_i = Σ_{j ≤ i} x_j, so x_j feeds every y_i with i ≥ j:
    // ∂(Σ y)/∂x = [4, 3, 2, 1].
    let x = leaf(&[0.5, -1.0, 2.0, 3.0], 4);
    x.cumsum(0).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(values(&x.grad().unwrap()), [4.0, 3.0, 2.0, 1.0]);
    check(randn(&[7], 1.0, 1), |x| x.cumsum(0));
    check(randn(&[2, 3, 4], 1.0, 2), |x| x.cumsum(1));
    check(randn(&[2, 3, 4], 1.0, 3), |x| x.cumsum(-1));
    // The backward of the backward is a forward cumsum again.
    check_second_order(randn(&[2, 5], 1.0, 4), |x| x.cumsum(1)?.square());
}
// ANCHOR_END: cumsum_backward

// ---------------------------------------------------------------- one_hot

#[test]
fn one_hot_appends_a_class_dimension() {
    let ids = Tensor::from_vec(vec![0i64, 2, 1, 0], (2, 2), &dev()).unwrap();
    let h = one_hot(&ids, 3).unwrap();
    assert_eq!((h.dims(), h.dtype()), (vec![2, 2, 3], DType::F32));
    let want = [1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
    assert_eq!(h.to_vec::<f32>().unwrap(), want);
    assert!(!h.requires_grad());
}

// ---------------------------------------------------------------- errors

#[test]
fn softmax_family_errors_name_the_op_and_the_shapes() {
    let x = t(&[1.0; 6], (2, 3));
    assert_eq!(
        err(x.softmax(2)),
        "softmax: dimension 2 out of range for a tensor of shape [2, 3]"
    );
    assert_eq!(
        err(x.log_softmax(-3)),
        "log_softmax: dimension -3 out of range for a tensor of shape [2, 3]"
    );
    assert_eq!(
        err(x.cumsum(5)),
        "cumsum: dimension 5 out of range for a tensor of shape [2, 3]"
    );
    let ids = Tensor::from_vec(vec![0i64, 3, 1, 0], (2, 2), &dev()).unwrap();
    assert_eq!(err(ids.softmax(0)), "softmax: not supported for dtype i64");
    // The CPU checks the ids before any kernel runs; a GPU finds a bad id
    // inside the kernel that writes the ones (reading the ids back first
    // would cost a transfer) and names that kernel's index and size.
    let bad_id = |message: String, id: i64, host: &str| {
        let on_device = message.contains(&format!("index {id} is out of range"))
            && message.contains("of size 3");
        assert!(message == host || on_device, "{message}");
    };
    bad_id(
        err(one_hot(&ids, 3)),
        3,
        "one_hot: class id 3 is out of range 0..3 (ids of shape [2, 2])",
    );
    let negative = Tensor::from_vec(vec![-1i64], 1, &dev()).unwrap();
    bad_id(
        err(one_hot(&negative, 3)),
        -1,
        "one_hot: class id -1 is out of range 0..3 (ids of shape [1])",
    );
    assert_eq!(
        err(one_hot(&x, 3)),
        "one_hot (ids must be i64): not supported for dtype f64"
    );
}
