//! Reductions beyond chapter 03's `sum` and `mean`: `max`/`min` (with and
//! without their indices), `var`/`std`, `logsumexp`, `argmax`/`argmin` and
//! `topk`.
//!
//! The interesting question for each is where the gradient goes. A sum
//! spreads it evenly; a max sends it to the element that won; a variance
//! weights each element by its distance from the mean; `logsumexp` weights
//! each by its softmax probability.

use crate::elementwise::where_cond;
use crate::index::IndexOps;
use chapter_02::{CmpOp, Dim, Dims, Error, Result, Shape, Tensor as RawTensor};
use chapter_03::{BackwardCtx, CustomOp, Tensor};

// ANCHOR: helpers
/// The input's dims with the reduced `axes` kept as size 1: the shape that
/// broadcasts a reduced result (or its gradient) back against the input.
fn kept_dims(dims: &[usize], axes: &[usize]) -> Vec<usize> {
    dims.iter()
        .enumerate()
        .map(|(d, &n)| if axes.contains(&d) { 1 } else { n })
        .collect()
}

/// The input's dims with the reduced `axes` removed (`keepdim = false`).
fn dropped_dims(dims: &[usize], axes: &[usize]) -> Vec<usize> {
    dims.iter()
        .enumerate()
        .filter(|(d, _)| !axes.contains(d))
        .map(|(_, &n)| n)
        .collect()
}

/// Number of elements each output element reduces over.
fn reduced_count(dims: &[usize], axes: &[usize]) -> usize {
    axes.iter().map(|&d| dims[d]).product()
}

/// A max, min or arg-reduction of an empty axis has no answer.
fn check_not_empty(shape: &Shape, axes: &[usize], op: &'static str) -> Result<()> {
    if let Some(&d) = axes.iter().find(|&&d| shape.dims()[d] == 0) {
        return Err(Error::invalid(
            op,
            format!("cannot reduce the empty dimension {d} of shape {shape}"),
        ));
    }
    Ok(())
}

fn check_float(x: &Tensor, op: &'static str) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    Ok(())
}
// ANCHOR_END: helpers

// ANCHOR: max_over
/// `max` (or `min`) over several axes at once, or over everything.
///
/// The derivative of a max is 1 for the element that attains it and 0 for
/// the others. When several elements tie, any split of the gradient among
/// them is a valid subgradient; like PyTorch's `amax` and `max()` we split
/// it evenly: `∂y/∂xᵢ = [xᵢ = y] / #{j : xⱼ = y}`.
struct MaxOver {
    axes: Vec<usize>,
    keepdim: bool,
    is_max: bool,
}
impl CustomOp for MaxOver {
    fn name(&self) -> &'static str {
        if self.is_max {
            "max"
        } else {
            "min"
        }
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        if self.is_max {
            x[0].max(self.axes.clone(), self.keepdim)
        } else {
            x[0].min(self.axes.clone(), self.keepdim)
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0).data();
        let kept = kept_dims(x.dims(), &self.axes);
        let y = ctx.output.data().reshape(kept.clone())?;
        let winners = x.eq(&y)?.to_dtype(x.dtype())?;
        let share = winners.div(&winners.sum(self.axes.clone(), true)?)?;
        Ok(vec![Some(g.reshape(kept)?.mul(&Tensor::from_raw(share))?)])
    }
}
// ANCHOR_END: max_over

// ANCHOR: with_indices
/// `torch.max(x, dim)`: the values and the index (`i64`) of the first
/// maximum along `dim`. The values are read with a differentiable
/// [`gather`](IndexOps::gather) at those indices, so the gradient flows to
/// exactly the element whose index is returned, and nowhere else, even when
/// others tie with it.
fn extremum_with_indices(
    x: &Tensor,
    dim: usize,
    keepdim: bool,
    is_max: bool,
) -> Result<(Tensor, Tensor)> {
    let op = if is_max {
        "max_with_indices"
    } else {
        "min_with_indices"
    };
    check_not_empty(&x.shape(), &[dim], op)?;
    let raw = x.data();
    let ids = if is_max {
        raw.argmax(dim, true)?
    } else {
        raw.argmin(dim, true)?
    };
    let ids = Tensor::from_raw(ids);
    let values = x.gather(&ids, dim)?;
    if keepdim {
        return Ok((values, ids));
    }
    let dropped = dropped_dims(&x.dims(), &[dim]);
    Ok((values.reshape(dropped.clone())?, ids.reshape(dropped)?))
}
// ANCHOR_END: with_indices

// ANCHOR: var
/// Variance with a correction: `Σ(xᵢ − μ)² / (N − c)` over the reduced axes.
/// `c = 0` is the population (biased) variance, what normalisation layers
/// use; `c = 1` is Bessel's unbiased estimate from a sample.
///
/// The derivative is `∂/∂xᵢ = 2(xᵢ − μ)/(N − c)`. The mean depends on `xᵢ`
/// too, but its term is `−2/(N(N−c))·Σⱼ(xⱼ − μ)`, and deviations from the
/// mean sum to zero.
struct Var {
    axes: Vec<usize>,
    correction: usize,
    keepdim: bool,
    /// `true` for the standard deviation `√var`.
    sqrt: bool,
}

impl Var {
    fn divisor(&self, dims: &[usize]) -> f64 {
        (reduced_count(dims, &self.axes) - self.correction) as f64
    }
}

impl CustomOp for Var {
    fn name(&self) -> &'static str {
        if self.sqrt {
            "std"
        } else {
            "var"
        }
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let mean = x[0].mean(self.axes.clone(), true)?;
        let dev = x[0].sub(&mean)?;
        let var = dev
            .sqr()?
            .sum(self.axes.clone(), self.keepdim)?
            .div_scalar(self.divisor(x[0].dims()))?;
        if self.sqrt {
            var.sqrt()
        } else {
            Ok(var)
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let dims = x.dims();
        let kept = kept_dims(&dims, &self.axes);
        // For std = √var, first go back through the square root:
        // ∂std/∂var = 1/(2·std), taken as 0 where std = 0 (as PyTorch does).
        let g_var = if self.sqrt {
            let y = ctx.output;
            let y_is_zero = Tensor::from_raw(y.data().cmp_scalar(CmpOp::Eq, 0.0)?);
            let zero = Tensor::from_raw(RawTensor::full(0.0, (), y.dtype(), &y.device())?);
            where_cond(&y_is_zero, &zero, &g.div(&y.mul_scalar(2.0)?)?)?
        } else {
            g.clone()
        };
        let dev = x.sub(&x.mean(self.axes.clone(), true)?)?;
        let d = dev.mul_scalar(2.0 / self.divisor(&dims))?;
        Ok(vec![Some(g_var.reshape(kept)?.mul(&d)?)])
    }
}
// ANCHOR_END: var

// ANCHOR: logsumexp
/// `log Σ exp(xᵢ)` over the axes, computed as `m + log Σ exp(xᵢ − m)` with
/// `m = max xᵢ`: every exponent is ≤ 0, so nothing overflows, and the
/// largest term is exactly 1, so the log never sees 0. (A row that is all
/// `−∞` has `m = −∞`; we use `m = 0` there and the answer is `−∞`.)
///
/// The derivative is the softmax: `∂/∂xᵢ = exp(xᵢ − y)`.
struct LogSumExp {
    axes: Vec<usize>,
    keepdim: bool,
}
impl CustomOp for LogSumExp {
    fn name(&self) -> &'static str {
        "logsumexp"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let x = x[0];
        let m = x.max(self.axes.clone(), true)?;
        let finite = m.abs()?.cmp_scalar(CmpOp::Lt, f64::INFINITY)?;
        let m = finite.where_cond(&m, &m.zeros_like()?)?;
        let lse = x
            .sub(&m)?
            .exp()?
            .sum(self.axes.clone(), true)?
            .log()?
            .add(&m)?;
        if self.keepdim {
            Ok(lse)
        } else {
            lse.reshape(dropped_dims(x.dims(), &self.axes))
        }
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let kept = kept_dims(&x.dims(), &self.axes);
        let p = x.sub(&ctx.output.reshape(kept.clone())?)?.exp()?;
        Ok(vec![Some(g.reshape(kept)?.mul(&p)?)])
    }
}
// ANCHOR_END: logsumexp

// ANCHOR: topk
/// The indices of the `k` largest (or smallest) entries along `dim`,
/// sorted (largest first, or smallest first): the first `k` positions of a
/// stable sort of each row, made by the device's `argsort` primitive (ties
/// keep their order; NaN counts as the largest, as in PyTorch). Nothing
/// comes back to the host, so sampling a token from a GPU model's logits
/// stays on the GPU. The values are then a differentiable `gather`, so the
/// gradient goes to exactly the selected elements.
fn topk_indices(x: &RawTensor, k: usize, dim: usize, largest: bool) -> Result<RawTensor> {
    x.argsort(dim, largest)?.narrow(dim, 0, k)?.contiguous()
}
// ANCHOR_END: topk

// ANCHOR: trait
/// Reductions with their gradients. `use chapter_04::prelude::*` brings
/// them into scope.
pub trait ReductionOps {
    /// Largest value over `dims`. Over one dim the gradient goes to the
    /// index [`max_with_indices`](Self::max_with_indices) returns (like
    /// `torch.max(x, dim)`); over several dims it is split evenly between
    /// tied maxima (like `torch.amax`).
    fn max(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor>;
    /// Smallest value over `dims` (gradient as for [`max`](Self::max)).
    fn min(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor>;
    /// Largest element of the whole tensor, as a 0-d tensor; ties split
    /// the gradient evenly (like `torch.max(x)`).
    fn max_all(&self) -> Result<Tensor>;
    /// Smallest element of the whole tensor, as a 0-d tensor.
    fn min_all(&self) -> Result<Tensor>;
    /// `(values, indices)` of the maximum along `dim` (`torch.max(x, dim)`).
    /// The indices are `i64` and carry no gradient.
    fn max_with_indices(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)>;
    /// `(values, indices)` of the minimum along `dim`.
    fn min_with_indices(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)>;
    /// Variance over `dims`, dividing by `N − correction` (0: biased,
    /// 1: unbiased).
    fn var(&self, dims: impl Dims, correction: usize, keepdim: bool) -> Result<Tensor>;
    /// Standard deviation `√var` over `dims`.
    fn std(&self, dims: impl Dims, correction: usize, keepdim: bool) -> Result<Tensor>;
    /// `log Σ exp(x)` over `dims`, computed without overflow.
    fn logsumexp(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor>;
    /// Index (`i64`) of the first maximum along `dim`; not differentiable.
    fn argmax(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor>;
    /// Index (`i64`) of the first minimum along `dim`; not differentiable.
    fn argmin(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor>;
    /// The `k` largest (`largest = true`) or smallest entries along `dim`,
    /// sorted, as `(values, indices)`. Shape: `dim` becomes `k`.
    fn topk(&self, k: usize, dim: impl Dim, largest: bool) -> Result<(Tensor, Tensor)>;
}
// ANCHOR_END: trait

// ANCHOR: impl
impl ReductionOps for Tensor {
    fn max(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(&self.shape(), "max")?;
        if let [d] = axes[..] {
            return Ok(extremum_with_indices(self, d, keepdim, true)?.0);
        }
        check_not_empty(&self.shape(), &axes, "max")?;
        Tensor::apply(
            MaxOver {
                axes,
                keepdim,
                is_max: true,
            },
            &[self],
        )
    }
    fn min(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        let axes = dims.to_indexes(&self.shape(), "min")?;
        if let [d] = axes[..] {
            return Ok(extremum_with_indices(self, d, keepdim, false)?.0);
        }
        check_not_empty(&self.shape(), &axes, "min")?;
        Tensor::apply(
            MaxOver {
                axes,
                keepdim,
                is_max: false,
            },
            &[self],
        )
    }
    fn max_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        check_not_empty(&self.shape(), &axes, "max_all")?;
        Tensor::apply(
            MaxOver {
                axes,
                keepdim: false,
                is_max: true,
            },
            &[self],
        )
    }
    fn min_all(&self) -> Result<Tensor> {
        let axes: Vec<usize> = (0..self.rank()).collect();
        check_not_empty(&self.shape(), &axes, "min_all")?;
        Tensor::apply(
            MaxOver {
                axes,
                keepdim: false,
                is_max: false,
            },
            &[self],
        )
    }
    fn max_with_indices(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)> {
        let d = dim.to_index(&self.shape(), "max_with_indices")?;
        extremum_with_indices(self, d, keepdim, true)
    }
    fn min_with_indices(&self, dim: impl Dim, keepdim: bool) -> Result<(Tensor, Tensor)> {
        let d = dim.to_index(&self.shape(), "min_with_indices")?;
        extremum_with_indices(self, d, keepdim, false)
    }
    fn var(&self, dims: impl Dims, correction: usize, keepdim: bool) -> Result<Tensor> {
        variance(self, dims, correction, keepdim, false)
    }
    fn std(&self, dims: impl Dims, correction: usize, keepdim: bool) -> Result<Tensor> {
        variance(self, dims, correction, keepdim, true)
    }
    fn logsumexp(&self, dims: impl Dims, keepdim: bool) -> Result<Tensor> {
        check_float(self, "logsumexp")?;
        let axes = dims.to_indexes(&self.shape(), "logsumexp")?;
        Tensor::apply(LogSumExp { axes, keepdim }, &[self])
    }
    fn argmax(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let d = dim.to_index(&self.shape(), "argmax")?;
        check_not_empty(&self.shape(), &[d], "argmax")?;
        Ok(Tensor::from_raw(self.data().argmax(d, keepdim)?))
    }
    fn argmin(&self, dim: impl Dim, keepdim: bool) -> Result<Tensor> {
        let d = dim.to_index(&self.shape(), "argmin")?;
        check_not_empty(&self.shape(), &[d], "argmin")?;
        Ok(Tensor::from_raw(self.data().argmin(d, keepdim)?))
    }
    fn topk(&self, k: usize, dim: impl Dim, largest: bool) -> Result<(Tensor, Tensor)> {
        let d = dim.to_index(&self.shape(), "topk")?;
        let n = self.dims()[d];
        if k > n {
            return Err(Error::invalid(
                "topk",
                format!(
                    "k = {k} is larger than dimension {d} (size {n}) of shape {}",
                    self.shape()
                ),
            ));
        }
        let ids = Tensor::from_raw(topk_indices(&self.data(), k, d, largest)?);
        Ok((self.gather(&ids, d)?, ids))
    }
}

fn variance(
    x: &Tensor,
    dims: impl Dims,
    correction: usize,
    keepdim: bool,
    sqrt: bool,
) -> Result<Tensor> {
    let op = if sqrt { "std" } else { "var" };
    check_float(x, op)?;
    let axes = dims.to_indexes(&x.shape(), op)?;
    let n = reduced_count(&x.dims(), &axes);
    if n <= correction {
        return Err(Error::invalid(
            op,
            format!(
                "correction {correction} needs more than {correction} elements, but dims {axes:?} of shape {} hold {n}",
                x.shape()
            ),
        ));
    }
    Tensor::apply(
        Var {
            axes,
            correction,
            keepdim,
            sqrt,
        },
        &[x],
    )
}
// ANCHOR_END: impl
