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
        let ga = if !ctx.needs_grad(0) {
            None
        } else if column_major(&a.data()) && b.rank() == 2 {
            // `(B Gᵀ)ᵀ`: the same numbers, laid out like `a` (see below).
            Some(b.matmul(&g.t()?)?.t()?)
        } else {
            Some(g.matmul(&b.t()?)?.sum_to(&a.dims())?)
        };
        let gb = if !ctx.needs_grad(1) {
            None
        } else if b.rank() == 2 {
            // A matrix shared by every batch element: its gradient sums
            // `Aᵢᵀ Gᵢ` over the batch, which is one product of the batch
            // flattened into rows (not a product per element and a sum).
            // For a transposed `b`, `(Gᵀ A)ᵀ`, again laid out like `b`.
            let (k, n) = (b.dims()[0], b.dims()[1]);
            // Rows: every dimension but the last (1 for a vector).
            let rows = |t: &Tensor| t.dims()[..t.rank().saturating_sub(1)].iter().product();
            let a2 = a.reshape(vec![rows(a), k])?;
            let g2 = g.reshape(vec![rows(g), n])?;
            if column_major(&b.data()) {
                Some(g2.t()?.matmul(&a2)?.t()?)
            } else {
                Some(a2.t()?.matmul(&g2)?)
            }
        } else {
            Some(a.t()?.matmul(g)?.sum_to(&b.dims())?)
        };
        Ok(vec![ga, gb])
    }
}

/// Whether `t` is a transposed matrix: 2-D, with its columns contiguous.
///
/// A linear layer multiplies by `w.t()`, a view of its weight. The
/// gradient for that view, `Aᵀ G`, is a fresh row-major matrix; the
/// transpose's own backward then hands the weight its transpose, a strided
/// view, and every later use of it (the optimiser's fused update, above
/// all) must copy it first. Computing `(Gᵀ A)ᵀ` instead costs the same
/// product, and the transposes cancel on the way back: the weight's
/// gradient arrives row-major, like the weight.
fn column_major(t: &RawTensor) -> bool {
    let (dims, strides) = (t.dims(), t.layout().strides());
    t.rank() == 2 && dims[0] > 1 && dims[1] > 1 && strides[0] == 1 && strides[1] == dims[0]
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
