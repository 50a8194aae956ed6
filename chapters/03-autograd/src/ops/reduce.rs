//! Summation, and its partner broadcasting: each is the other's adjoint.

use crate::{BackwardCtx, CustomOp, Tensor};
use chapter_02::{Dims, Error, Result, Tensor as RawTensor};

// ANCHOR: sum
/// Sum over `axes`. Every input element contributes with weight 1 to its
/// output element, so the gradient is the output gradient broadcast back.
struct Sum {
    axes: Vec<usize>,
    keepdim: bool,
}
impl CustomOp for Sum {
    fn name(&self) -> &'static str {
        "sum"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].sum(self.axes.clone(), self.keepdim)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let input_dims = ctx.input(0).dims();
        // Put the summed axes back as size 1 so `g` broadcasts against the input.
        let kept: Vec<usize> = input_dims
            .iter()
            .enumerate()
            .map(|(d, &n)| if self.axes.contains(&d) { 1 } else { n })
            .collect();
        Ok(vec![Some(g.reshape(kept)?.broadcast_to(&input_dims)?)])
    }
}
// ANCHOR_END: sum

// ANCHOR: sum_to
/// Sums a tensor down to `shape`, undoing a broadcast: leading dimensions
/// that broadcasting added are summed away, and dimensions that were 1 are
/// summed with `keepdim`. This is how every binary op's backward returns a
/// gradient of its input's shape.
struct SumTo {
    shape: Vec<usize>,
}
impl CustomOp for SumTo {
    fn name(&self) -> &'static str {
        "sum_to"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        sum_to_raw(x[0], &self.shape)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.broadcast_to(ctx.input(0).dims())?)])
    }
}

/// The raw computation behind [`SumTo`].
pub(crate) fn sum_to_raw(x: &RawTensor, shape: &[usize]) -> Result<RawTensor> {
    let dims = x.dims();
    if dims == shape {
        return Ok(x.clone());
    }
    let lead = dims
        .len()
        .checked_sub(shape.len())
        .ok_or_else(|| Error::Broadcast {
            op: "sum_to",
            lhs: x.shape().clone(),
            rhs: shape.to_vec().into(),
        })?;
    let mut axes: Vec<usize> = (0..lead).collect();
    for (i, &s) in shape.iter().enumerate() {
        let d = dims[lead + i];
        if s == 1 && d != 1 {
            axes.push(lead + i);
        } else if s != d {
            return Err(Error::Broadcast {
                op: "sum_to",
                lhs: x.shape().clone(),
                rhs: shape.to_vec().into(),
            });
        }
    }
    x.sum(axes, true)?.reshape(shape.to_vec())
}
// ANCHOR_END: sum_to

impl Tensor {
    /// Sum over `dims` (negative indices count from the end).
    pub fn sum(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(&self.shape(), "sum")?;
        Tensor::apply(Sum { axes, keepdim }, &[self])
    }
    /// Sum of every element, as a 0-d tensor.
    pub fn sum_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        Tensor::apply(
            Sum {
                axes,
                keepdim: false,
            },
            &[self],
        )
    }
    /// Mean over `dims`.
    pub fn mean(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(&self.shape(), "mean")?;
        let n: usize = axes.iter().map(|&d| self.dims()[d]).product();
        self.sum(axes, keepdim)?.affine(1.0 / n as f64, 0.0)
    }
    /// Mean of every element, as a 0-d tensor.
    pub fn mean_all(&self) -> Result<Tensor> {
        let n = self.elem_count();
        self.sum_all()?.affine(1.0 / n as f64, 0.0)
    }
    /// Sums down to `shape` (the adjoint of [`broadcast_to`](Self::broadcast_to)).
    pub fn sum_to(&self, shape: &[usize]) -> Result<Tensor> {
        if self.dims() == shape {
            return Ok(self.clone());
        }
        Tensor::apply(
            SumTo {
                shape: shape.to_vec(),
            },
            &[self],
        )
    }
}
