//! Shape operations: the views of chapter 02 (permute, squeeze, slice,
//! expand, ...) made differentiable, and the copies built from them (cat,
//! stack, split, repeat, flip, pad, tril/triu, masked_fill).
//!
//! None of these ops computes a new number: each one only moves elements.
//! So each backward only moves the gradient back. For a one-to-one move
//! (permute, squeeze, flip) that is the inverse move. For a move that drops
//! elements (slice, narrow) it is the *adjoint*: put every gradient back
//! where its element came from and fill the dropped positions with zeros
//! (pad). For a move that reads an element several times (broadcast,
//! repeat) it is the adjoint again: add up the gradients of all the copies
//! (sum). Writing the pairs next to each other:
//!
//! | forward                 | backward                     |
//! |-------------------------|------------------------------|
//! | `permute(p)`            | `permute(p⁻¹)`               |
//! | `squeeze` / `unsqueeze` | `unsqueeze` / `squeeze`      |
//! | `narrow`, `slice`       | `pad` with zeros / `index_add` into zeros |
//! | `pad`                   | `narrow`                     |
//! | `cat`                   | `narrow` into pieces (split) |
//! | `expand`, `repeat`      | `sum`                        |
//! | `flip`                  | `flip`                       |
//! | `tril`, `masked_fill`   | the same mask on the gradient |

use chapter_02::{Device, Dim, Dims, Error, Result, Shape};
use chapter_03::{BackwardCtx, CustomOp, DType, RawTensor, Tensor};
use std::ops::Range;

/// Operations that rearrange, select or join elements without computing new
/// values. Negative dimensions count from the end, as in PyTorch.
pub trait ShapeOps {
    /// Reorders dimensions: output dimension `i` is input dimension
    /// `dims[i]`. A view. `[2, 3, 4].permute([2, 0, 1])` is `[4, 2, 3]`.
    fn permute(&self, dims: &[usize]) -> Result<Tensor>;

    /// Removes dimension `dim`, which must have size 1. A view. (PyTorch
    /// silently returns the tensor unchanged when the size is not 1; we
    /// report it, as chapter 02 does, since it is usually a bug.)
    fn squeeze(&self, dim: impl Dim) -> Result<Tensor>;

    /// Inserts a dimension of size 1 at `dim` (`-1` appends). A view.
    fn unsqueeze(&self, dim: impl Dim) -> Result<Tensor>;

    /// Merges dimensions `start..=end` into one. A view when the layout
    /// allows it. `[2, 3, 4].flatten(1, -1)` is `[2, 12]`.
    fn flatten(&self, start: impl Dim, end: impl Dim) -> Result<Tensor>;

    /// Same as `broadcast_to` (PyTorch's name): stretches size-1 dimensions
    /// and prepends new ones. A view with stride 0; backward sums.
    fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor>;

    /// Like `reshape`, but an error instead of a copy when the strides do
    /// not allow a view (PyTorch's `view`).
    fn view_as_shape(&self, shape: impl Into<Shape>) -> Result<Tensor>;

    /// Every `step`-th element of `start..stop` along `dim`, like Python's
    /// `x[start:stop:step]`; `stop` is clamped to the size. A view.
    fn slice(&self, dim: impl Dim, start: usize, stop: usize, step: usize) -> Result<Tensor>;

    /// `len` elements from `start` along `dim`. A view.
    fn narrow(&self, dim: impl Dim, start: usize, len: usize) -> Result<Tensor>;

    /// Pieces of `split_size` along `dim`; the last one is smaller when the
    /// size is not a multiple (`torch.split`). Views.
    fn split(&self, split_size: usize, dim: impl Dim) -> Result<Vec<Tensor>>;

    /// At most `n` pieces of equal size `ceil(size / n)` along `dim`, the
    /// last one smaller (`torch.chunk`; like it, fewer than `n` pieces when
    /// the size does not allow `n`). Views.
    fn chunk(&self, n: usize, dim: impl Dim) -> Result<Vec<Tensor>>;

    /// Tiles the tensor `repeats[i]` times along dimension `i`
    /// (`torch.repeat`). With more repeat counts than dimensions, the tensor
    /// first gets leading size-1 dimensions: `[2, 3].repeat([4, 1, 2])` is
    /// `[4, 2, 6]`. A copy.
    fn repeat(&self, repeats: &[usize]) -> Result<Tensor>;

    /// Reverses the order of elements along each of `dims`. A copy.
    fn flip(&self, dims: impl Dims) -> Result<Tensor>;

    /// Constant padding: `pads[i] = (before, after)` adds that many elements
    /// of `value` on each side of dimension `i`, **starting from the first
    /// dimension**; dimensions without a pair are not padded. (PyTorch's
    /// `F.pad` lists pairs from the *last* dimension backwards, flattened;
    /// we keep the order in which shapes are written.) A copy.
    fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor>;

    /// Keeps the elements on and below diagonal `diagonal` of the last two
    /// dimensions (`j - i <= diagonal`) and zeroes the rest. `0` is the main
    /// diagonal, positive values go above it, negative below.
    fn tril(&self, diagonal: i64) -> Result<Tensor>;

    /// Keeps the elements on and above diagonal `diagonal` of the last two
    /// dimensions (`j - i >= diagonal`) and zeroes the rest.
    fn triu(&self, diagonal: i64) -> Result<Tensor>;

    /// Replaces the elements where the `u8` mask is non-zero with `value`
    /// (which may be `-inf`, as in attention masks). The mask broadcasts to
    /// the shape of `self`. The gradient is zero at the masked positions.
    fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor>;
}

// ANCHOR: permute
/// `y = x.permute(p)` moves axis `p[i]` of `x` to axis `i` of `y`. Undoing
/// it moves axis `i` back to `p[i]`: the inverse permutation, `q[p[i]] = i`.
struct Permute {
    perm: Vec<usize>,
}
impl CustomOp for Permute {
    fn name(&self) -> &'static str {
        "permute"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].permute(&self.perm)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut inverse = vec![0; self.perm.len()];
        for (i, &p) in self.perm.iter().enumerate() {
            inverse[p] = i;
        }
        Ok(vec![Some(g.permute(&inverse)?)])
    }
}
// ANCHOR_END: permute

// ANCHOR: squeeze
/// Removing a size-1 axis and inserting it again are inverse views.
struct Squeeze(usize);
impl CustomOp for Squeeze {
    fn name(&self) -> &'static str {
        "squeeze"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].squeeze(self.0)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.unsqueeze(self.0)?)])
    }
}

struct Unsqueeze(usize);
impl CustomOp for Unsqueeze {
    fn name(&self) -> &'static str {
        "unsqueeze"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].unsqueeze(self.0)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.squeeze(self.0)?)])
    }
}
// ANCHOR_END: squeeze

/// `flatten` and `view` keep the row-major order of the elements and only
/// regroup them into dimensions, so the gradient is regrouped back.
struct Regroup {
    name: &'static str,
    shape: Shape,
    /// Fail instead of copying (`view`), or copy when needed (`flatten`).
    view_only: bool,
}
impl CustomOp for Regroup {
    fn name(&self) -> &'static str {
        self.name
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        match self.view_only {
            true => x[0].view(&self.shape),
            false => x[0].reshape(&self.shape),
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.reshape(ctx.input(0).dims())?)])
    }
}

// ANCHOR: narrow
/// `y = x.narrow(d, start, len)` keeps `x[.., start..start+len, ..]`.
/// Elements outside the window do not affect `y`, so their gradient is
/// zero: the adjoint of cutting a window out is padding it back with zeros,
/// `start` before and `size - start - len` after.
struct Narrow {
    dim: usize,
    start: usize,
    len: usize,
}
impl CustomOp for Narrow {
    fn name(&self) -> &'static str {
        "narrow"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].narrow(self.dim, self.start, self.len)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let size = ctx.input(0).dims()[self.dim];
        let mut pads = vec![(0, 0); self.dim + 1];
        pads[self.dim] = (self.start, size - self.start - self.len);
        Ok(vec![Some(g.pad(&pads, 0.0)?)])
    }
}
// ANCHOR_END: narrow

// ANCHOR: strided_slice
/// `y = x.slice(d, start, stop, step)` with `step > 1` reads positions
/// `start, start + step, ...`: the same as `index_select` with those ids.
/// So its adjoint is `index_add` of the gradient into zeros at those ids.
struct StridedSlice {
    dim: usize,
    start: usize,
    stop: usize,
    step: usize,
}
impl CustomOp for StridedSlice {
    fn name(&self) -> &'static str {
        "slice"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].slice(self.dim, self.start, self.stop, self.step)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        use crate::index::IndexOps;
        let x = ctx.input(0);
        let ids = RawTensor::arange(
            self.start as f64,
            self.stop as f64,
            self.step as f64,
            DType::I64,
            &x.device(),
        )?;
        let ids = Tensor::from_raw(ids);
        let zeros = Tensor::zeros(x.shape(), x.dtype(), &x.device())?;
        Ok(vec![Some(zeros.index_add(&ids, g, self.dim)?)])
    }
}
// ANCHOR_END: strided_slice

// ANCHOR: pad
/// `y = x.pad(pads, v)` puts `x` in the middle of a block of `v`s. The
/// constant border does not depend on `x`, so the gradient of `x` is the
/// middle of the output gradient: `narrow` along every padded dimension.
struct Pad {
    pads: Vec<(usize, usize)>,
    value: f64,
}
impl CustomOp for Pad {
    fn name(&self) -> &'static str {
        "pad"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let x = x[0];
        let mut dims = x.dims().to_vec();
        let mut window: Vec<Range<usize>> = Vec::with_capacity(dims.len());
        for (d, n) in dims.iter_mut().enumerate() {
            let (before, after) = self.pads.get(d).copied().unwrap_or((0, 0));
            window.push(before..before + *n);
            *n += before + after;
        }
        // One buffer full of `value`, then `x` copied into its window.
        let border = RawTensor::full(self.value, dims, x.dtype(), x.device())?;
        border.slice_assign(&window, x)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let dims = ctx.input(0).dims();
        let mut g = g.clone();
        for (d, &(before, _)) in self.pads.iter().enumerate() {
            g = g.narrow(d, before, dims[d])?;
        }
        Ok(vec![Some(g)])
    }
}
// ANCHOR_END: pad

// ANCHOR: cat
/// `y = cat([x₀, x₁, ...], d)` lays the inputs end to end along `d`. Each
/// input's gradient is its own stretch of the output gradient: `cat` and
/// `split` are each other's adjoints.
struct Cat {
    dim: usize,
}
impl CustomOp for Cat {
    fn name(&self) -> &'static str {
        "cat"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        RawTensor::cat(x, self.dim)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let mut start = 0;
        let mut grads = Vec::with_capacity(ctx.inputs.len());
        for (i, x) in ctx.inputs.iter().enumerate() {
            let len = x.dims()[self.dim];
            grads.push(match ctx.needs_grad(i) {
                true => Some(g.narrow(self.dim, start, len)?),
                false => None,
            });
            start += len;
        }
        Ok(grads)
    }
}
// ANCHOR_END: cat

// ANCHOR: flip
/// Reversing an axis is a permutation of its elements that is its own
/// inverse, so the backward flips the gradient back.
struct Flip {
    dims: Vec<usize>,
}
impl CustomOp for Flip {
    fn name(&self) -> &'static str {
        "flip"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        // Our layouts have unsigned strides, so a flip cannot be a view:
        // we read each axis through the reversed ids n-1, ..., 1, 0.
        let mut y = x[0].clone();
        for &d in &self.dims {
            let n = y.dims()[d] as f64;
            // n − 1, n − 2, ..., 0, made on the device.
            let ids = RawTensor::arange(n - 1.0, -1.0, -1.0, DType::I64, y.device())?;
            y = y.index_select(&ids, d)?;
        }
        Ok(y)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.flip(self.dims.clone())?)])
    }
}
// ANCHOR_END: flip

// ANCHOR: masked_fill
/// `y = where(mask, v, x)`: a masked element is the constant `v` and does
/// not depend on `x`, the others are `x` itself. So the gradient is the
/// output gradient with zeros at the masked positions:
/// `∂L/∂x = (∂L/∂y).masked_fill(mask, 0)`. `tril`/`triu` are the same op
/// with a triangular mask.
struct MaskedFill {
    value: f64,
}
impl CustomOp for MaskedFill {
    fn name(&self) -> &'static str {
        "masked_fill"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let (x, mask) = (x[0], x[1]);
        let value = RawTensor::full(self.value, (), x.dtype(), x.device())?;
        mask.where_cond(&value, x)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(g.masked_fill(ctx.input(1), 0.0)?), None])
    }
}
// ANCHOR_END: masked_fill

// ANCHOR: triangle_mask
/// The `u8` mask of the elements that `tril(diagonal)` (or `triu`) sets
/// to zero, for an `[m, n]` matrix: those with `j - i > diagonal` (or
/// `j - i < diagonal`). Made on the tensor's device from two `arange`s and
/// one broadcast comparison (`i + diagonal < j`), so a causal mask never
/// crosses the bus: `[m, 1]` row numbers against `[1, n]` column numbers.
fn outside_triangle(
    m: usize,
    n: usize,
    diagonal: i64,
    lower: bool,
    device: &Device,
) -> Result<RawTensor> {
    let rows = RawTensor::arange(
        diagonal as f64,
        (m as i64 + diagonal) as f64,
        1.0,
        DType::I64,
        device,
    )?
    .reshape((m, 1))?;
    let cols = RawTensor::arange(0.0, n as f64, 1.0, DType::I64, device)?.reshape((1, n))?;
    if lower {
        rows.lt(&cols) // j > i + diagonal
    } else {
        rows.gt(&cols) // j < i + diagonal
    }
}

/// The causal mask of attention over `len` positions: a `u8` `[len, len]`
/// constant that is 1 where position `i` would look ahead at `j > i`.
/// `scores.masked_fill(&causal_mask(t, &device)?, f64::NEG_INFINITY)` keeps
/// each position from attending to the future. Made on `device`.
pub fn causal_mask(len: usize, device: &Device) -> Result<Tensor> {
    Ok(Tensor::from_raw(outside_triangle(
        len, len, 0, true, device,
    )?))
}
// ANCHOR_END: triangle_mask

/// Resolves a possibly negative dimension index against `t`'s shape.
fn axis(t: &Tensor, dim: impl Dim, op: &'static str) -> Result<usize> {
    dim.to_index(&t.shape(), op)
}

impl ShapeOps for Tensor {
    fn permute(&self, dims: &[usize]) -> Result<Tensor> {
        Tensor::apply(
            Permute {
                perm: dims.to_vec(),
            },
            &[self],
        )
    }

    fn squeeze(&self, dim: impl Dim) -> Result<Tensor> {
        let d = axis(self, dim, "squeeze")?;
        Tensor::apply(Squeeze(d), &[self])
    }

    fn unsqueeze(&self, dim: impl Dim) -> Result<Tensor> {
        let d = dim.to_index_plus_one(&self.shape(), "unsqueeze")?;
        Tensor::apply(Unsqueeze(d), &[self])
    }

    fn flatten(&self, start: impl Dim, end: impl Dim) -> Result<Tensor> {
        let shape = self.data().flatten(start, end)?.shape().clone();
        Tensor::apply(
            Regroup {
                name: "flatten",
                shape,
                view_only: false,
            },
            &[self],
        )
    }

    fn expand(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        self.broadcast_to(shape)
    }

    fn view_as_shape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        Tensor::apply(
            Regroup {
                name: "view",
                shape,
                view_only: true,
            },
            &[self],
        )
    }

    // ANCHOR: slice_method
    fn slice(&self, dim: impl Dim, start: usize, stop: usize, step: usize) -> Result<Tensor> {
        let d = axis(self, dim, "slice")?;
        if step == 0 {
            return Err(Error::invalid("slice", "step must be positive"));
        }
        // Python's clamping: `x[5:100]` of 10 elements is `x[5:10]`.
        let stop = stop.min(self.dims()[d]);
        let start = start.min(stop);
        if step == 1 {
            return Tensor::apply(
                Narrow {
                    dim: d,
                    start,
                    len: stop - start,
                },
                &[self],
            );
        }
        Tensor::apply(
            StridedSlice {
                dim: d,
                start,
                stop,
                step,
            },
            &[self],
        )
    }
    // ANCHOR_END: slice_method

    fn narrow(&self, dim: impl Dim, start: usize, len: usize) -> Result<Tensor> {
        let d = axis(self, dim, "narrow")?;
        Tensor::apply(Narrow { dim: d, start, len }, &[self])
    }

    // ANCHOR: split
    fn split(&self, split_size: usize, dim: impl Dim) -> Result<Vec<Tensor>> {
        let d = axis(self, dim, "split")?;
        if split_size == 0 {
            return Err(Error::invalid("split", "split_size must be positive"));
        }
        let size = self.dims()[d];
        if size == 0 {
            return Ok(vec![self.clone()]);
        }
        (0..size)
            .step_by(split_size)
            .map(|start| self.narrow(d, start, split_size.min(size - start)))
            .collect()
    }

    fn chunk(&self, n: usize, dim: impl Dim) -> Result<Vec<Tensor>> {
        let d = axis(self, dim, "chunk")?;
        if n == 0 {
            return Err(Error::invalid(
                "chunk",
                "the number of chunks must be positive",
            ));
        }
        self.split(self.dims()[d].div_ceil(n).max(1), d)
    }
    // ANCHOR_END: split

    // ANCHOR: repeat
    fn repeat(&self, repeats: &[usize]) -> Result<Tensor> {
        let dims = self.dims();
        if repeats.len() < dims.len() {
            return Err(Error::invalid(
                "repeat",
                format!(
                    "{} repeat counts for a tensor of shape {} (need at least one per dimension)",
                    repeats.len(),
                    self.shape()
                ),
            ));
        }
        // Left-pad the shape with 1s to one entry per repeat count.
        let mut padded = vec![1; repeats.len() - dims.len()];
        padded.extend(dims);
        // [d0, d1] -> [1, d0, 1, d1] -> broadcast [r0, d0, r1, d1]
        //          -> reshape [r0 * d0, r1 * d1]
        let interleaved: Vec<usize> = padded.iter().flat_map(|&d| [1, d]).collect();
        let tiled: Vec<usize> = padded
            .iter()
            .zip(repeats)
            .flat_map(|(&d, &r)| [r, d])
            .collect();
        let out: Vec<usize> = padded.iter().zip(repeats).map(|(&d, &r)| r * d).collect();
        // Three differentiable ops, so the backward comes for free:
        // broadcast's backward sums the gradients of the copies.
        self.reshape(interleaved)?.broadcast_to(tiled)?.reshape(out)
    }
    // ANCHOR_END: repeat

    fn flip(&self, dims: impl Dims) -> Result<Tensor> {
        let dims = dims.to_indexes(&self.shape(), "flip")?;
        Tensor::apply(Flip { dims }, &[self])
    }

    fn pad(&self, pads: &[(usize, usize)], value: f64) -> Result<Tensor> {
        if pads.len() > self.rank() {
            return Err(Error::invalid(
                "pad",
                format!(
                    "{} (before, after) pairs for a tensor of shape {}",
                    pads.len(),
                    self.shape()
                ),
            ));
        }
        Tensor::apply(
            Pad {
                pads: pads.to_vec(),
                value,
            },
            &[self],
        )
    }

    fn tril(&self, diagonal: i64) -> Result<Tensor> {
        triangle(self, diagonal, true)
    }

    fn triu(&self, diagonal: i64) -> Result<Tensor> {
        triangle(self, diagonal, false)
    }

    fn masked_fill(&self, mask: &Tensor, value: f64) -> Result<Tensor> {
        if mask.dtype() != DType::U8 {
            return Err(Error::UnsupportedDType {
                op: "masked_fill (mask must be u8)",
                dtype: mask.dtype(),
            });
        }
        let shape = self.shape();
        if shape.broadcast_with(&mask.shape(), "masked_fill")? != shape {
            return Err(Error::Broadcast {
                op: "masked_fill",
                lhs: shape,
                rhs: mask.shape(),
            });
        }
        Tensor::apply(MaskedFill { value }, &[self, mask])
    }
}

/// `tril`/`triu`: `masked_fill` with the mask of the other triangle.
fn triangle(t: &Tensor, diagonal: i64, lower: bool) -> Result<Tensor> {
    let op = if lower { "tril" } else { "triu" };
    let dims = t.dims();
    if dims.len() < 2 {
        return Err(Error::invalid(
            op,
            format!("needs at least 2 dimensions, got shape {}", t.shape()),
        ));
    }
    let (m, n) = (dims[dims.len() - 2], dims[dims.len() - 1]);
    let mask = outside_triangle(m, n, diagonal, lower, &t.device())?;
    t.masked_fill(&Tensor::from_raw(mask), 0.0)
}

// ANCHOR: cat_stack
/// Joins tensors along an existing dimension `dim`; all other dimensions
/// must agree. `[2, 3]` and `[4, 3]` along `0` give `[6, 3]`.
pub fn cat(tensors: &[&Tensor], dim: impl Dim) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("cat", "needs at least one tensor"))?;
    let d = axis(first, dim, "cat")?;
    Tensor::apply(Cat { dim: d }, tensors)
}

/// Joins tensors of one shape along a new dimension `dim`: `n` tensors of
/// shape `[2, 3]` stacked along `0` give `[n, 2, 3]`. It is `unsqueeze`
/// then `cat`, so its backward is theirs: narrow, then squeeze.
pub fn stack(tensors: &[&Tensor], dim: impl Dim) -> Result<Tensor> {
    let first = tensors
        .first()
        .ok_or_else(|| Error::invalid("stack", "needs at least one tensor"))?;
    let d = dim.to_index_plus_one(&first.shape(), "stack")?;
    for t in tensors {
        if t.shape() != first.shape() {
            return Err(Error::ShapeMismatch {
                op: "stack",
                lhs: first.shape(),
                rhs: t.shape(),
                detail: " (all shapes must be equal)".into(),
            });
        }
    }
    let parts = tensors
        .iter()
        .map(|t| t.unsqueeze(d))
        .collect::<Result<Vec<_>>>()?;
    cat(&parts.iter().collect::<Vec<_>>(), d)
}
// ANCHOR_END: cat_stack
