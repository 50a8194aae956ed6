//! Indexing: reading elements at positions held in an index tensor, and the
//! scattered writes that are their adjoints.
//!
//! A read `y = x[ids]` copies each selected element once; an element of `x`
//! may be selected many times (repeated ids) or never. Its backward sends
//! each element of the output gradient back to the position it was read
//! from, *adding* where one position was read several times and leaving
//! zeros where it was never read. That write-with-accumulation is exactly
//! the scatter operation paired with each read:
//!
//! | read (forward)  | its adjoint (backward) |
//! |-----------------|------------------------|
//! | `index_select`  | `index_add`            |
//! | `gather`        | `scatter_add`          |
//!
//! and, read the other way round, the adjoint of each scatter is its read.
//! So the four ops below are two pairs whose backward passes call each
//! other, which also makes every backward differentiable again.
//!
//! Indices are `i64` tensors (as in PyTorch) and never receive a gradient.
//! Out-of-range indices are reported by chapter 02's backend, with the name
//! of the op: `index_select: index 5 is out of range for a dimension of size 3`.

use chapter_02::{Dim, Result};
use chapter_03::{BackwardCtx, CustomOp, RawTensor, Tensor};

/// Reads, along one dimension, the positions held in an `i64` index tensor,
/// and the scatter-adds that undo them.
pub trait IndexOps {
    /// Picks slices along `dim`: `out[.., i, ..] = self[.., ids[i], ..]`.
    /// `ids` is a 1-D `i64` tensor; the output has `ids.len()` in place of
    /// `dim`. Shape: `[a, n, b]` with `ids: [k]` along `1` gives `[a, k, b]`.
    /// The backward adds each gradient slice back at its id with
    /// `index_add`, so repeated ids accumulate (an embedding lookup of the
    /// same token twice gets both gradients).
    fn index_select(&self, ids: &Tensor, dim: impl Dim) -> Result<Tensor>;

    /// Picks one element per index position: for `dim = 1` on a matrix,
    /// `out[i][j] = self[i][ids[i][j]]` (`torch.gather`). `ids` has the rank
    /// of `self` and the output has the shape of `ids`. The classic use is
    /// picking the log-probability of each target class. Backward: `scatter_add`.
    fn gather(&self, ids: &Tensor, dim: impl Dim) -> Result<Tensor>;

    /// A copy of `self` with `src[i][j]` added at `[ids[i][j]][j]` (for
    /// `dim = 0`; `torch.scatter_add`). `ids` and `src` have the same shape.
    /// Differentiable in `self` (the gradient passes through unchanged) and
    /// in `src` (each element's gradient is read back with `gather`).
    fn scatter_add(&self, ids: &Tensor, src: &Tensor, dim: impl Dim) -> Result<Tensor>;

    /// A copy of `self` with slice `i` of `src` added to slice `ids[i]` along
    /// `dim` (`torch.index_add`). `src` has the shape of `self` with
    /// `ids.len()` in place of `dim`. Differentiable in `self` (identity) and
    /// in `src` (the gradient slices are read back with `index_select`).
    fn index_add(&self, ids: &Tensor, src: &Tensor, dim: impl Dim) -> Result<Tensor>;
}

// ANCHOR: index_select
/// `y = x.index_select(ids, d)`: `y[.., i, ..] = x[.., ids[i], ..]`.
/// Then `∂L/∂x[.., j, ..] = Σ_{i : ids[i] = j} ∂L/∂y[.., i, ..]`, which is
/// `zeros.index_add(ids, ∂L/∂y, d)`.
struct IndexSelect {
    dim: usize,
}
impl CustomOp for IndexSelect {
    fn name(&self) -> &'static str {
        "index_select"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].index_select(x[1], self.dim)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, ids) = (ctx.input(0), ctx.input(1));
        let zeros = zeros_like(x)?;
        Ok(vec![Some(zeros.index_add(ids, g, self.dim)?), None])
    }
}
// ANCHOR_END: index_select

// ANCHOR: index_add
/// `y = x.index_add(ids, s, d)`: `y = x` plus `s[.., i, ..]` added at
/// `[.., ids[i], ..]`. Linear in both: `∂L/∂x = ∂L/∂y` and
/// `∂L/∂s[.., i, ..] = ∂L/∂y[.., ids[i], ..]`, an `index_select`.
struct IndexAdd {
    dim: usize,
}
impl CustomOp for IndexAdd {
    fn name(&self) -> &'static str {
        "index_add"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].index_add(x[1], x[2], self.dim)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let gx = ctx.needs_grad(0).then(|| g.clone());
        let gs = match ctx.needs_grad(2) {
            true => Some(g.index_select(ctx.input(1), self.dim)?),
            false => None,
        };
        Ok(vec![gx, None, gs])
    }
}
// ANCHOR_END: index_add

// ANCHOR: gather
/// `y = x.gather(ids, d)`: element `p` of `y` reads `x` at `p` with
/// coordinate `d` replaced by `ids[p]`. Its adjoint writes each `∂L/∂y[p]`
/// back to that position, adding collisions: `zeros.scatter_add(ids, ∂L/∂y, d)`.
struct Gather {
    dim: usize,
}
impl CustomOp for Gather {
    fn name(&self) -> &'static str {
        "gather"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].gather(x[1], self.dim)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, ids) = (ctx.input(0), ctx.input(1));
        let zeros = zeros_like(x)?;
        Ok(vec![Some(zeros.scatter_add(ids, g, self.dim)?), None])
    }
}
// ANCHOR_END: gather

// ANCHOR: scatter_add
/// `y = x.scatter_add(ids, s, d)`: `y = x`, then `s[p]` is added at `p`
/// with coordinate `d` replaced by `ids[p]`. `∂L/∂x = ∂L/∂y`, and each
/// `s[p]` reads its gradient from where it was added: `∂L/∂y.gather(ids, d)`.
struct ScatterAdd {
    dim: usize,
}
impl CustomOp for ScatterAdd {
    fn name(&self) -> &'static str {
        "scatter_add"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].scatter_add(x[1], x[2], self.dim)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let gx = ctx.needs_grad(0).then(|| g.clone());
        let gs = match ctx.needs_grad(2) {
            true => Some(g.gather(ctx.input(1), self.dim)?),
            false => None,
        };
        Ok(vec![gx, None, gs])
    }
}
// ANCHOR_END: scatter_add

/// A constant tensor of zeros with the shape, dtype and device of `x`.
fn zeros_like(x: &Tensor) -> Result<Tensor> {
    Ok(Tensor::from_raw(x.data().zeros_like()?))
}

impl IndexOps for Tensor {
    fn index_select(&self, ids: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "index_select")?;
        Tensor::apply(IndexSelect { dim }, &[self, ids])
    }
    fn gather(&self, ids: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "gather")?;
        Tensor::apply(Gather { dim }, &[self, ids])
    }
    fn scatter_add(&self, ids: &Tensor, src: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "scatter_add")?;
        Tensor::apply(ScatterAdd { dim }, &[self, ids, src])
    }
    fn index_add(&self, ids: &Tensor, src: &Tensor, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "index_add")?;
        Tensor::apply(IndexAdd { dim }, &[self, ids, src])
    }
}
