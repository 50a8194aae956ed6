//! Views: reshape, transpose and broadcast. Their backward passes move the
//! gradient back through the inverse view.

use crate::{BackwardCtx, CustomOp, Tensor};
use chapter_02::{Dim, Result, Shape, Tensor as RawTensor};

struct Reshape {
    shape: Shape,
}
impl CustomOp for Reshape {
    fn name(&self) -> &'static str {
        "reshape"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].reshape(&self.shape)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.reshape(ctx.input(0).dims())?)])
    }
}

// ANCHOR: transpose
/// Swapping two dimensions is its own inverse.
struct Transpose(usize, usize);
impl CustomOp for Transpose {
    fn name(&self) -> &'static str {
        "transpose"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].transpose(self.0, self.1)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.transpose(self.0, self.1)?)])
    }
}
// ANCHOR_END: transpose

/// Broadcasting reads one element many times; its adjoint sums them.
struct BroadcastTo {
    shape: Shape,
}
impl CustomOp for BroadcastTo {
    fn name(&self) -> &'static str {
        "broadcast_to"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].broadcast_to(&self.shape)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.sum_to(&ctx.input(0).dims())?)])
    }
}

impl Tensor {
    /// Same elements, new shape.
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.dims() == self.dims().as_slice() {
            return Ok(self.clone());
        }
        Tensor::apply(Reshape { shape }, &[self])
    }
    /// Swaps two dimensions.
    pub fn transpose(&self, d0: impl Dim, d1: impl Dim) -> Result<Tensor> {
        let s = self.shape();
        let (a, b) = (d0.to_index(&s, "transpose")?, d1.to_index(&s, "transpose")?);
        Tensor::apply(Transpose(a, b), &[self])
    }
    /// Transposes the last two dimensions.
    pub fn t(&self) -> Result<Tensor> {
        self.transpose(-2, -1)
    }
    /// Stretches size-1 dimensions (and adds leading ones) to `shape`.
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.dims() == self.dims().as_slice() {
            return Ok(self.clone());
        }
        Tensor::apply(BroadcastTo { shape }, &[self])
    }
}
