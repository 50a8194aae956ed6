//! Lesson: trust a gradient only after checking it. `gradcheck` compares
//! every element of the analytic gradient with a central difference of a
//! random projection of the output. Here it checks every op of the
//! chapter, and it catches a deliberately wrong backward.
//! `cargo test -p chapter-03 gradcheck` runs these.

mod common;

use chapter_03::{
    gradcheck, BackwardCtx, CustomOp, DType, GradcheckOptions, RawTensor, Result, Tensor,
};
use common::*;

#[test]
fn gradcheck_elementwise_binary_ops() {
    let a = randn((3, 4), 1);
    let b = randn((3, 4), 2);
    let pos = uniform(0.5, 2.0, (3, 4), 3);
    check(|x| x[0].add(&x[1]), [a.clone(), b.clone()]);
    check(|x| x[0].sub(&x[1]), [a.clone(), b.clone()]);
    check(|x| x[0].mul(&x[1]), [a.clone(), b.clone()]);
    check(|x| x[0].div(&x[1]), [a.clone(), pos.clone()]);
    // The same input on both sides.
    check(|x| x[0].mul(&x[0]), [a.clone()]);
    check(|x| x[0].div(&x[0].add_scalar(3.0)?), [pos]);
}

#[test]
fn gradcheck_elementwise_unary_ops() {
    let a = randn((2, 5), 4);
    let pos = uniform(0.2, 3.0, (2, 5), 5);
    check(|x| x[0].affine(-1.5, 0.25), [a.clone()]);
    check(|x| x[0].add_scalar(2.0), [a.clone()]);
    check(|x| x[0].mul_scalar(-3.0), [a.clone()]);
    check(|x| x[0].neg(), [a.clone()]);
    check(|x| x[0].exp(), [a.clone()]);
    check(|x| x[0].tanh(), [a.clone()]);
    check(|x| x[0].log(), [pos.clone()]);
    check(|x| x[0].powf(2.0), [a.clone()]);
    check(|x| x[0].powf(3.0), [a.clone()]);
    check(|x| x[0].powf(0.5), [pos.clone()]);
    check(|x| x[0].powf(-1.5), [pos]);
}

#[test]
fn gradcheck_operator_overloads() {
    let a = randn((2, 3), 6);
    let b = randn((2, 3), 7);
    check(|x| Ok(&x[0] + &x[1]), [a.clone(), b.clone()]);
    check(|x| Ok(&x[0] - &x[1]), [a.clone(), b.clone()]);
    check(|x| Ok(&x[0] * &x[1]), [a.clone(), b.clone()]);
    check(|x| Ok(&(&x[0] * 2.0) / 4.0 - 1.0), [a.clone()]);
    check(|x| Ok(-&x[0] + 3.0), [a]);
}

#[test]
fn gradcheck_reductions() {
    let a = randn((2, 3, 4), 8);
    check(|x| x[0].sum_all(), [a.clone()]);
    check(|x| x[0].sum([0], false), [a.clone()]);
    check(|x| x[0].sum([1], true), [a.clone()]);
    check(|x| x[0].sum([0, 2], false), [a.clone()]);
    check(|x| x[0].sum([-1], false), [a.clone()]);
    check(|x| x[0].mean([1], false), [a.clone()]);
    check(|x| x[0].mean([0, 2], true), [a.clone()]);
    check(|x| x[0].mean_all(), [a.clone()]);
    check(|x| x[0].sum_to(&[3, 1]), [a.clone()]);
    check(|x| x[0].sum_to(&[]), [a]);
    // A 0-d input.
    check(|x| x[0].sum_all()?.exp(), [randn((), 9)]);
}

#[test]
fn gradcheck_shape_ops() {
    let a = randn((2, 3, 4), 10);
    check(|x| x[0].reshape((6, 4)), [a.clone()]);
    check(|x| x[0].reshape(24), [a.clone()]);
    check(|x| x[0].transpose(0, 2), [a.clone()]);
    check(|x| x[0].transpose(-1, -2), [a.clone()]);
    check(|x| x[0].t(), [a.clone()]);
    check(|x| x[0].broadcast_to((5, 2, 3, 4)), [a.clone()]);
    check(|x| x[0].broadcast_to((3, 4)), [randn((1, 4), 11)]);
    // A view of a view, then arithmetic on the (non-contiguous) result.
    check(
        |x| x[0].t()?.reshape((2, 12))?.mul(&x[0].reshape((2, 12))?),
        [a],
    );
}

#[test]
fn gradcheck_matmul_in_every_form() {
    check(
        |x| x[0].matmul(&x[1]),
        [randn((3, 4), 12), randn((4, 2), 13)],
    );
    // Batched, and with a broadcast batch.
    check(
        |x| x[0].matmul(&x[1]),
        [randn((2, 3, 4), 14), randn((2, 4, 5), 15)],
    );
    check(
        |x| x[0].matmul(&x[1]),
        [randn((2, 3, 4), 16), randn((4, 5), 17)],
    );
    check(
        |x| x[0].matmul(&x[1]),
        [randn((3, 4), 18), randn((2, 4, 5), 19)],
    );
    check(
        |x| x[0].matmul(&x[1]),
        [randn((2, 1, 3, 4), 20), randn((3, 4, 2), 21)],
    );
    // Vectors on either side, and the dot product.
    check(|x| x[0].matmul(&x[1]), [randn(4, 22), randn((4, 3), 23)]);
    check(|x| x[0].matmul(&x[1]), [randn((3, 4), 24), randn(4, 25)]);
    check(|x| x[0].matmul(&x[1]), [randn(4, 26), randn(4, 27)]);
    check(|x| x[0].matmul(&x[1]), [randn(4, 28), randn((2, 4, 3), 29)]);
    // With transposed (strided) operands, as a linear layer's backward has.
    check(
        |x| x[0].t()?.matmul(&x[1]),
        [randn((4, 3), 30), randn((4, 2), 31)],
    );
    // A weight shared by a batch, its gradient one product over the batch
    // flattened into rows: stored as is, stored transposed (`x · Wᵀ`), and
    // under a left operand whose batches are not one after another.
    check(
        |x| x[0].matmul(&x[1].t()?),
        [randn((2, 3, 4), 32), randn((5, 4), 33)],
    );
    check(
        |x| x[0].transpose(0, 1)?.matmul(&x[1]),
        [randn((3, 2, 4), 34), randn((4, 5), 35)],
    );
}

#[test]
fn gradcheck_a_small_network() {
    let inputs = [
        randn((5, 3), 32),
        randn((3, 4), 33),
        randn(4, 34),
        randn((4, 1), 35),
    ];
    let report = check(
        |p| {
            let h = p[0].matmul(&p[1])?.add(&p[2])?.tanh()?;
            h.matmul(&p[3])?.exp()?.add_scalar(1.0)?.log()?.mean_all()
        },
        &inputs,
    );
    assert_eq!(report.checked, 15 + 12 + 4 + 4);
    assert!(report.max_abs_err < 1e-8, "{report:?}");
}

// ANCHOR: wrong_backward
/// `x²` with a bug: the backward forgets the factor 2.
struct BadSquare;
impl CustomOp for BadSquare {
    fn name(&self) -> &'static str {
        "bad_square"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].mul(x[0])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.mul(ctx.input(0))?)]) // should be 2·x·g
    }
}

#[test]
fn gradcheck_fails_for_a_wrong_backward_and_names_the_worst_element() {
    // The error at element j is |x_j| (times the random weight), so the
    // worst element is the largest |x_j|: index 1.
    let x = raw(&[0.1, -3.0, 0.5, 1.0], 4);
    let e = gradcheck(
        |x| Tensor::apply(BadSquare, &[&x[0]])?.sum_all(),
        &[x],
        GradcheckOptions::default(),
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.starts_with("gradcheck: input 0 (shape [4]) element 1: analytic "),
        "{msg}"
    );
    assert!(msg.ends_with("4 of 4 elements outside tolerance"), "{msg}");
}
// ANCHOR_END: wrong_backward

#[test]
fn gradcheck_reports_the_largest_error_when_it_passes() {
    let report = check(|x| x[0].exp(), [randn(6, 40)]);
    assert_eq!(report.checked, 6);
    assert!(report.max_abs_err < 1e-8);
    assert_eq!(report.worst.0, 0);
    assert!(report.worst.1 < 6);
}

#[test]
fn gradcheck_refuses_f32_inputs() {
    let x = RawTensor::ones(3, DType::F32, &dev()).unwrap();
    let e = gradcheck(|x| x[0].exp(), &[x], GradcheckOptions::default()).unwrap_err();
    assert_eq!(e.to_string(), "gradcheck: input 0 is f32; use f64 inputs");
}

#[test]
fn gradcheck_tolerance_is_what_makes_a_near_miss_pass_or_fail() {
    // A backward off by one part in 10⁴: default rtol 1e-3 accepts it,
    // rtol 1e-6 does not.
    struct AlmostDouble;
    impl CustomOp for AlmostDouble {
        fn name(&self) -> &'static str {
            "almost_double"
        }
        fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
            x[0].affine(2.0, 0.0)
        }
        fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
            Ok(vec![Some(g.mul_scalar(2.0002)?)])
        }
    }
    let f = |x: &[Tensor]| Tensor::apply(AlmostDouble, &[&x[0]]);
    let x = [randn(5, 41)];
    assert!(gradcheck(f, &x, GradcheckOptions::default()).is_ok());
    let strict = GradcheckOptions {
        atol: 1e-9,
        rtol: 1e-6,
        ..Default::default()
    };
    assert!(gradcheck(f, &x, strict).is_err());
}

#[test]
fn gradcheck_an_input_the_output_ignores_has_zero_gradient() {
    check(|x| x[0].exp(), [randn(3, 42), randn(2, 43)]);
}
