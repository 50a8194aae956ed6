//! Lesson: autograd's mistakes should be explained, not silent. Each error
//! names the operation and what it was given, and where there is a usual
//! fix, says it. These tests pin the exact messages.
//! `cargo test -p chapter-03 errors` runs these.

mod common;

use chapter_03::{grad, BackwardCtx, BackwardOptions, CustomOp, DType, RawTensor, Result, Tensor};
use common::*;

fn message<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

// ANCHOR: error_messages
#[test]
fn errors_backward_of_a_non_scalar_needs_a_gradient() {
    let x = leaf(&[1.0; 6], (2, 3));
    let y = x.exp().unwrap();
    assert_eq!(
        message(y.backward()),
        "backward: a gradient can be created implicitly only for a scalar output; \
         this one has shape [2, 3] (use backward_with and pass a gradient)"
    );
}

#[test]
fn errors_second_backward_through_a_freed_graph() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = x.mul(&x).unwrap().sum_all().unwrap();
    y.backward().unwrap();
    assert_eq!(
        message(y.backward()),
        "backward: the graph behind `sum` was freed by an earlier backward; \
         pass retain_graph: true to the first backward to run it twice"
    );
}

#[test]
fn errors_grad_of_a_tensor_that_does_not_require_it() {
    let c = constant(&[1.0], 1);
    assert_eq!(
        message(c.grad()),
        "grad: this tensor does not require grad (call requires_grad_() on the leaf first)"
    );
}

#[test]
fn errors_grad_of_an_intermediate_that_was_not_retained() {
    let x = leaf(&[1.0, 2.0], 2);
    let h = x.exp().unwrap();
    h.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        message(h.grad()),
        "grad: this tensor is not a leaf, so backward does not keep its gradient; \
         call retain_grad() before backward"
    );
}

#[test]
fn errors_upstream_gradient_of_the_wrong_shape() {
    let x = leaf(&[1.0; 6], (2, 3));
    let y = x.exp().unwrap();
    let g = constant(&[1.0, 1.0], 2);
    assert_eq!(
        message(y.backward_with(Some(&g), BackwardOptions::default())),
        "backward: shape mismatch [2] vs [2, 3] (the gradient must have the output's shape)"
    );
}

#[test]
fn errors_dtype_mismatch() {
    let a = leaf(&[1.0, 2.0], 2);
    let b = Tensor::from_raw(RawTensor::ones(2, DType::F32, &dev()).unwrap());
    assert_eq!(message(a.add(&b)), "add: dtype mismatch f64 vs f32");
    // An upstream gradient of another dtype than the output.
    let y = a.exp().unwrap();
    assert_eq!(
        message(y.backward_with(Some(&b), BackwardOptions::default())),
        "backward: dtype mismatch f32 vs f64"
    );
}

/// A custom op whose backward returns a gradient of the wrong shape.
struct BadShape;
impl CustomOp for BadShape {
    fn name(&self) -> &'static str {
        "bad_shape"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].exp()
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.sum([0], false)?)]) // forgot to broadcast back
    }
}

#[test]
fn errors_custom_op_returning_a_wrong_shaped_gradient_is_named() {
    let x = leaf(&[1.0; 6], (2, 3));
    let y = Tensor::apply(BadShape, &[&x]).unwrap().sum_all().unwrap();
    assert_eq!(
        message(y.backward()),
        "bad_shape: shape mismatch [3] vs [2, 3] (backward returned a gradient whose shape differs from its input)"
    );
}
// ANCHOR_END: error_messages

/// A custom op whose backward returns the wrong number of gradients.
struct OneGradForTwo;
impl CustomOp for OneGradForTwo {
    fn name(&self) -> &'static str {
        "one_grad_for_two"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].add(x[1])
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.clone())])
    }
}

#[test]
fn errors_custom_op_returning_too_few_gradients_is_named() {
    let (a, b) = (leaf(&[1.0], 1), leaf(&[2.0], 1));
    let y = Tensor::apply(OneGradForTwo, &[&a, &b])
        .unwrap()
        .sum_all()
        .unwrap();
    assert_eq!(
        message(y.backward()),
        "backward: `one_grad_for_two` returned 1 gradients for 2 inputs"
    );
}

/// A custom op whose backward returns a gradient of another dtype.
struct BadDType;
impl CustomOp for BadDType {
    fn name(&self) -> &'static str {
        "bad_dtype"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        Ok(x[0].clone())
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(Tensor::from_raw(g.data().to_dtype(DType::F32)?))])
    }
}

#[test]
fn errors_custom_op_returning_a_gradient_of_another_dtype_is_named() {
    let x = leaf(&[1.0, 2.0], 2);
    let y = Tensor::apply(BadDType, &[&x]).unwrap().sum_all().unwrap();
    assert_eq!(
        message(y.backward()),
        "bad_dtype: dtype mismatch f32 vs f64"
    );
}

#[test]
fn errors_backward_of_a_constant() {
    let c = constant(&[1.0], ());
    assert_eq!(
        message(c.backward()),
        "backward: this tensor does not require grad and has no grad_fn \
         (did an input call requires_grad_()? is no_grad active?)"
    );
}

#[test]
fn errors_requires_grad_on_integers_and_intermediates() {
    let i = Tensor::from_vec(vec![1i64, 2], 2, &dev()).unwrap();
    assert_eq!(
        message(i.set_requires_grad(true)),
        "requires_grad: not supported for dtype i64"
    );
    let y = leaf(&[1.0], 1).exp().unwrap();
    assert_eq!(
        message(y.set_requires_grad(false)),
        "requires_grad: can only be set on leaf tensors; use detach() to make a new leaf"
    );
}

#[test]
fn errors_functional_grad_with_an_input_that_does_not_require_grad() {
    let x = leaf(&[1.0], 1);
    let c = constant(&[1.0], 1);
    let y = x.mul(&c).unwrap().sum_all().unwrap();
    assert_eq!(
        message(grad(&y, &[&x, &c], None, BackwardOptions::default())),
        "grad: one of the inputs does not require grad"
    );
}

#[test]
fn errors_shape_mismatches_name_the_op_and_both_shapes() {
    let a = leaf(&[1.0; 6], (2, 3));
    let b = leaf(&[1.0; 4], 4);
    assert_eq!(message(a.add(&b)), "add: cannot broadcast [2, 3] with [4]");
    assert_eq!(
        message(a.matmul(&b)),
        "matmul: shape mismatch [2, 3] vs [4] (inner dimensions 3 and 4 differ)"
    );
    assert_eq!(
        message(a.sum_to(&[4])),
        "sum_to: cannot broadcast [2, 3] with [4]"
    );
    assert_eq!(
        message(a.sum([2], false)),
        "sum: dimension 2 out of range for a tensor of shape [2, 3]"
    );
}
