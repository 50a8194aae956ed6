//! Operations with a backward pass: the custom-op API.
//!
//! Every differentiable operation of the library, built-in or user-written,
//! is a value implementing [`CustomOp`]: a forward on raw tensors and a
//! backward on autograd tensors, side by side. [`Tensor::apply`] runs the
//! forward and, when gradients are wanted, records a [`Node`] linking the
//! result to its inputs.

use crate::grad_mode::{is_anomaly_enabled, is_grad_enabled};
use crate::sync::lock;
use crate::Tensor;
use chapter_02::{Error, Result, Tensor as RawTensor};
use std::sync::Mutex;

// ANCHOR: custom_op
/// A differentiable operation: `torch.autograd.Function` in Rust.
///
/// `forward` computes the result from raw (chapter 02) tensors. `backward`
/// receives the gradient of the final output with respect to this op's
/// result and returns one gradient per input (`None` for inputs that need
/// none, such as indices). It is written with autograd tensors and their
/// ops, so that differentiating the backward pass itself (`create_graph`)
/// needs nothing extra.
pub trait CustomOp: Send + Sync + 'static {
    /// Shown in errors, `Display`, anomaly reports and the DOT graph.
    fn name(&self) -> &'static str;

    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor>;

    fn backward(&self, ctx: &BackwardCtx<'_>, grad: &Tensor) -> Result<Vec<Option<Tensor>>>;
}

/// What a backward pass can look at: the op's inputs, its output, and which
/// inputs actually need a gradient (so expensive ones can be skipped).
pub struct BackwardCtx<'a> {
    pub inputs: &'a [Tensor],
    pub output: &'a Tensor,
    pub(crate) needs_grad: Vec<bool>,
}

impl BackwardCtx<'_> {
    /// Input `i`.
    pub fn input(&self, i: usize) -> &Tensor {
        &self.inputs[i]
    }
    /// Whether input `i` needs a gradient.
    pub fn needs_grad(&self, i: usize) -> bool {
        self.needs_grad[i]
    }
}
// ANCHOR_END: custom_op

/// An edge of the graph: the op that produced a tensor and its inputs.
/// Backward releases the inputs (unless asked to retain the graph), which
/// frees every intermediate result as soon as its gradient is computed.
pub(crate) struct Node {
    pub(crate) op: Box<dyn CustomOp>,
    inputs: Mutex<Option<Vec<Tensor>>>,
}

impl Node {
    /// The inputs, or `None` once a backward pass has released them.
    pub(crate) fn inputs(&self) -> Option<Vec<Tensor>> {
        lock(&self.inputs).clone()
    }
    pub(crate) fn take_inputs(&self) -> Option<Vec<Tensor>> {
        lock(&self.inputs).take()
    }
}

// ANCHOR: apply
impl Tensor {
    /// Runs `op` on `inputs`. The result joins the graph when grad mode is
    /// on and at least one input requires grad; otherwise it is a plain
    /// constant and costs nothing more than the forward computation.
    pub fn apply(op: impl CustomOp, inputs: &[&Tensor]) -> Result<Tensor> {
        let raw: Vec<RawTensor> = inputs.iter().map(|t| t.data()).collect();
        let raw_refs: Vec<&RawTensor> = raw.iter().collect();
        let out = op.forward(&raw_refs)?;
        if is_anomaly_enabled() {
            check_finite(&out, op.name(), "forward", &raw_refs)?;
        }
        let record = is_grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        if !record {
            return Ok(Tensor::from_raw(out));
        }
        let node = Node {
            op: Box::new(op),
            inputs: Mutex::new(Some(inputs.iter().map(|&t| t.clone()).collect())),
        };
        Ok(Tensor::from_op(out, node))
    }
}
// ANCHOR_END: apply

/// Anomaly mode: fails with the op's name and input shapes when `t` holds a
/// NaN or an infinity.
pub(crate) fn check_finite(
    t: &RawTensor,
    op: &str,
    pass: &str,
    inputs: &[&RawTensor],
) -> Result<()> {
    if !t.dtype().is_float() {
        return Ok(());
    }
    let values = t.to_vec_f64()?;
    if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
        let shapes: Vec<String> = inputs.iter().map(|i| i.shape().to_string()).collect();
        return Err(Error::invalid(
            "anomaly",
            format!(
                "{op} produced {bad} in its {pass} pass (input shapes {})",
                shapes.join(", ")
            ),
        ));
    }
    Ok(())
}
