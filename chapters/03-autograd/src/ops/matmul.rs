//! Matrix multiplication and its two backward products.

use crate::{BackwardCtx, CustomOp, Tensor};
use chapter_02::{Error, Result, Tensor as RawTensor};

// ANCHOR: matmul
/// `C = A B` for (batches of) matrices. With `G = ∂L/∂C`:
/// `∂L/∂A = G Bᵀ` and `∂L/∂B = Aᵀ G`, each summed back over batch
/// dimensions that broadcasting stretched.
struct MatMul;
impl CustomOp for MatMul {
    fn name(&self) -> &'static str {
        "matmul"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].matmul(x[1])
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (a, b) = (ctx.input(0), ctx.input(1));
        let ga = if ctx.needs_grad(0) {
            Some(g.matmul(&b.t()?)?.sum_to(&a.dims())?)
        } else {
            None
        };
        let gb = if ctx.needs_grad(1) {
            Some(a.t()?.matmul(g)?.sum_to(&b.dims())?)
        } else {
            None
        };
        Ok(vec![ga, gb])
    }
}
// ANCHOR_END: matmul

impl Tensor {
    /// Matrix product with NumPy semantics (see chapter 02): batch
    /// dimensions broadcast, and a 1-D operand is treated as a row (left) or
    /// column (right) vector whose extra dimension is removed afterwards.
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        let (ra, rb) = (self.rank(), rhs.rank());
        if ra == 0 || rb == 0 {
            return Err(Error::invalid(
                "matmul",
                format!(
                    "both arguments need at least 1 dimension, got {} and {}",
                    self.shape(),
                    rhs.shape()
                ),
            ));
        }
        if ra >= 2 && rb >= 2 {
            return Tensor::apply(MatMul, &[self, rhs]);
        }
        // Lift vectors to matrices, multiply, and drop the added dimension.
        let a = if ra == 1 {
            self.reshape(vec![1, self.dims()[0]])?
        } else {
            self.clone()
        };
        let b = if rb == 1 {
            rhs.reshape(vec![rhs.dims()[0], 1])?
        } else {
            rhs.clone()
        };
        let (k, k2) = (a.dims()[a.rank() - 1], b.dims()[b.rank() - 2]);
        if k != k2 {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: self.shape(),
                rhs: rhs.shape(),
                detail: format!(" (inner dimensions {k} and {k2} differ)"),
            });
        }
        let c = Tensor::apply(MatMul, &[&a, &b])?;
        let mut dims = c.dims();
        if rb == 1 {
            dims.pop();
        }
        if ra == 1 {
            let n = dims.len();
            dims.remove(n - if rb == 1 { 1 } else { 2 });
        }
        c.reshape(dims)
    }
}
