//! Lesson: your own differentiable operation. A `CustomOp` is a forward on
//! raw (chapter 02) tensors and a backward on autograd tensors, side by
//! side, like `torch.autograd.Function`; `Tensor::apply` runs it and records
//! it in the graph. Every built-in op of the chapter is written this way.
//! `cargo test -p chapter-03 custom_op` runs these.

mod common;

use chapter_03::{
    gradcheck, BackwardCtx, BackwardOptions, CustomOp, GradcheckOptions, RawTensor, Result, Tensor,
};
use common::*;

// ANCHOR: cube
/// `y = x³`, with `dy/dx = 3x²`.
struct Cube;

impl CustomOp for Cube {
    fn name(&self) -> &'static str {
        "cube"
    }

    /// The values: plain chapter-02 arithmetic, no graph.
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        let x = inputs[0];
        x.mul(x)?.mul(x)
    }

    /// The vector-Jacobian product: `grad · 3x²`, written with autograd
    /// ops so that it can itself be differentiated (`create_graph`).
    fn backward(&self, ctx: &BackwardCtx<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let dy_dx = x.mul(x)?.mul_scalar(3.0)?;
        Ok(vec![Some(grad.mul(&dy_dx)?)])
    }
}

/// The user-facing method.
fn cube(x: &Tensor) -> Result<Tensor> {
    Tensor::apply(Cube, &[x])
}

#[test]
fn custom_op_cube_in_a_graph_and_gradchecked() -> Result<()> {
    let x = leaf(&[1.0, -2.0, 0.5], 3);
    let loss = cube(&x)?.add_scalar(1.0)?.log()?.sum_all()?; // Σ ln(x³ + 1)
    assert_eq!(cube(&x)?.op_name(), Some("cube"));
    loss.backward()?;
    // d/dx ln(x³ + 1) = 3x² / (x³ + 1)
    let expected: Vec<f64> = [1.0f64, -2.0, 0.5]
        .iter()
        .map(|x| 3.0 * x * x / (x.powi(3) + 1.0))
        .collect();
    assert_close(&grad_values(&x), &expected, 1e-12);

    // gradcheck compares the backward above with finite differences.
    gradcheck(
        |x| cube(&x[0]),
        &[randn((2, 3), 1)],
        GradcheckOptions::default(),
    )?;
    Ok(())
}
// ANCHOR_END: cube

#[test]
fn custom_op_backward_written_with_tensor_ops_is_differentiable_again() {
    // d²/dx² x³ = 6x comes for free: the backward built a graph.
    let x = leaf(&[1.0, -2.0], 2);
    let opts = BackwardOptions {
        create_graph: true,
        ..Default::default()
    };
    let g = chapter_03::grad(&cube(&x).unwrap().sum_all().unwrap(), &[&x], None, opts)
        .unwrap()
        .remove(0)
        .unwrap();
    let gg = chapter_03::grad(
        &g.sum_all().unwrap(),
        &[&x],
        None,
        BackwardOptions::default(),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    assert_close(&values(&gg), &[6.0, -12.0], 1e-12);
}

/// `x * scale`, where the integer `scale` tensor needs no gradient: the
/// backward returns `None` for it and skips work with `needs_grad`.
struct ScaleBy;
impl CustomOp for ScaleBy {
    fn name(&self) -> &'static str {
        "scale_by"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        inputs[0].mul(&inputs[1].to_dtype(inputs[0].dtype())?)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        assert!(ctx.needs_grad(0) && !ctx.needs_grad(1));
        let scale = Tensor::from_raw(ctx.input(1).data().to_dtype(grad.dtype())?);
        Ok(vec![Some(grad.mul(&scale)?), None])
    }
}

#[test]
fn custom_op_with_a_non_differentiable_input() {
    let x = leaf(&[1.0, 2.0, 3.0], 3);
    let k = Tensor::from_vec(vec![2i64, 0, -1], 3, &dev()).unwrap();
    let y = Tensor::apply(ScaleBy, &[&x, &k]).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&x), &[2.0, 0.0, -1.0], 0.0);
    // gradcheck passes integer inputs through as constants.
    let ids = RawTensor::from_vec(vec![3i64, 1, 4, 1, 5, 9], (2, 3), &dev()).unwrap();
    check(
        |x| Tensor::apply(ScaleBy, &[&x[0], &x[1]]),
        [randn((2, 3), 2), ids],
    );
}

/// Reads the op's output in its backward, as `exp` and `tanh` do:
/// `σ(x) = 1 / (1 + e⁻ˣ)`, `σ' = σ(1 − σ)`.
struct Sigmoid;
impl CustomOp for Sigmoid {
    fn name(&self) -> &'static str {
        "sigmoid"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        inputs[0].sigmoid()
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let s = ctx.output;
        Ok(vec![Some(grad.mul(&s.mul(&s.affine(-1.0, 1.0)?)?)?)])
    }
}

#[test]
fn custom_op_backward_may_use_the_output() {
    check(|x| Tensor::apply(Sigmoid, &[&x[0]]), [randn((3, 2), 3)]);
    // Twice differentiable too, because the output is a graph node.
    let x = leaf(&[0.3], 1);
    let opts = BackwardOptions {
        create_graph: true,
        ..Default::default()
    };
    let s = Tensor::apply(Sigmoid, &[&x]).unwrap();
    let g = chapter_03::grad(&s.sum_all().unwrap(), &[&x], None, opts)
        .unwrap()
        .remove(0)
        .unwrap();
    let gg = chapter_03::grad(
        &g.sum_all().unwrap(),
        &[&x],
        None,
        BackwardOptions::default(),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    let sv = 1.0 / (1.0 + (-0.3f64).exp());
    assert_close(&values(&gg), &[sv * (1.0 - sv) * (1.0 - 2.0 * sv)], 1e-12);
}

/// Several inputs: `a·b + c`, fused.
struct MulAdd;
impl CustomOp for MulAdd {
    fn name(&self) -> &'static str {
        "mul_add"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].mul(x[1])?.add(x[2])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            Some(g.mul(b)?)
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            Some(g.mul(a)?)
        } else {
            None
        };
        let gc = if ctx.needs_grad(2) {
            Some(g.clone())
        } else {
            None
        };
        Ok(vec![ga, gb, gc])
    }
}

#[test]
fn custom_op_with_three_inputs() {
    check(
        |x| Tensor::apply(MulAdd, &[&x[0], &x[1], &x[2]]),
        [randn(4, 1), randn(4, 2), randn(4, 3)],
    );
    // Only the inputs that require grad get one.
    let a = leaf(&[1.0, 2.0], 2);
    let b = constant(&[3.0, 4.0], 2);
    let c = leaf(&[0.0, 0.0], 2);
    Tensor::apply(MulAdd, &[&a, &b, &c])
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad_values(&a), &[3.0, 4.0], 0.0);
    assert_close(&grad_values(&c), &[1.0, 1.0], 0.0);
    assert!(b.grad_opt().is_none());
}

#[test]
fn custom_op_without_grad_inputs_records_nothing() {
    let y = cube(&constant(&[2.0], 1)).unwrap();
    assert!(y.is_leaf());
    assert_close(&values(&y), &[8.0], 0.0);
}
