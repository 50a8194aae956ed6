//! The softmax family, `cumsum` and `one_hot`.
//!
//! `softmax` and `log_softmax` run in every attention layer and every
//! classification loss, so each is a single [`CustomOp`] with its
//! closed-form backward instead of a chain of `exp`, `sum` and `div` nodes:
//! one node in the graph, one formula, and no intermediate results kept
//! alive for the backward pass beyond the output itself.
//!
//! The arithmetic itself goes through chapter 02's kernel registry: four
//! [`Operator`]s over the last dimension of a tensor (the two forwards and
//! the two backward formulas), each with a composite made of primitives
//! that runs on every device, and a fused single-pass CPU kernel
//! ([`crate::softmax_kernels`]).

use crate::softmax_kernels;
use chapter_02::dispatch::call;
use chapter_02::{DType, DeviceKind, Dim, Error, Kernel, Operator, Result, Tensor as RawTensor};
use chapter_03::{is_grad_enabled, BackwardCtx, CustomOp, Tensor};

fn check_float(x: &RawTensor, op: &'static str) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    Ok(())
}

/// The checks of the four operators: `arity` float tensors of at least one
/// dimension, all of one shape and dtype (the rows are their last
/// dimension).
fn check_rows(op: &'static str, inputs: &[&RawTensor], arity: usize) -> Result<()> {
    if inputs.len() != arity {
        return Err(Error::invalid(
            op,
            format!("takes {arity} tensors, got {}", inputs.len()),
        ));
    }
    let x = inputs[0];
    check_float(x, op)?;
    if x.rank() == 0 {
        return Err(Error::invalid(
            op,
            "needs a tensor of at least one dimension",
        ));
    }
    for other in &inputs[1..] {
        if other.shape() != x.shape() {
            return Err(Error::ShapeMismatch {
                op,
                lhs: x.shape().clone(),
                rhs: other.shape().clone(),
                detail: String::new(),
            });
        }
        if other.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: x.dtype(),
                rhs: other.dtype(),
            });
        }
    }
    Ok(())
}

// ANCHOR: operators
/// Softmax over the last dimension, as a registry operator: input `x`
/// `[.., n]`, output `y` of the same shape,
/// `yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m)` with `m = maxⱼ xⱼ` per row.
///
/// A row of only `−∞` (every position masked) gives NaN, as in PyTorch,
/// and so does a row holding `+∞` or NaN.
pub struct SoftmaxLastDim;

impl Operator for SoftmaxLastDim {
    fn name(&self) -> &'static str {
        "softmax"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_rows("softmax", inputs, 1)
    }
    /// Five primitives, each a pass over the tensor: max, sub, exp, sum,
    /// div. Subtracting the max keeps every exponent ≤ 0, so nothing
    /// overflows (see the page).
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let x = inputs[0];
        if x.elem_count() == 0 {
            return Ok(vec![x.copy()?]);
        }
        let last = x.rank() - 1;
        let m = x.max([last], true)?;
        let e = x.sub(&m)?.exp()?;
        Ok(vec![e.div(&e.sum([last], true)?)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, softmax_kernels::softmax_cpu)]
    }
}

/// Log-softmax over the last dimension:
/// `yᵢ = (xᵢ − m) − log Σⱼ exp(xⱼ − m)`, same shapes as [`SoftmaxLastDim`].
pub struct LogSoftmaxLastDim;

impl Operator for LogSoftmaxLastDim {
    fn name(&self) -> &'static str {
        "log_softmax"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_rows("log_softmax", inputs, 1)
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let x = inputs[0];
        if x.elem_count() == 0 {
            return Ok(vec![x.copy()?]);
        }
        let last = x.rank() - 1;
        let z = x.sub(&x.max([last], true)?)?;
        Ok(vec![z.sub(&z.exp()?.sum([last], true)?.log()?)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, softmax_kernels::log_softmax_cpu)]
    }
}

/// Softmax's vector-Jacobian product over the last dimension: inputs the
/// output `y` and its gradient `g`, output `∂L/∂x = y ⊙ (g − Σⱼ gⱼyⱼ)`.
pub struct SoftmaxBackward;

impl Operator for SoftmaxBackward {
    fn name(&self) -> &'static str {
        "softmax_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_rows("softmax_backward", inputs, 2)
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (y, g) = (inputs[0], inputs[1]);
        if y.elem_count() == 0 {
            return Ok(vec![y.copy()?]);
        }
        let dot = g.mul(y)?.sum([y.rank() - 1], true)?;
        Ok(vec![y.mul(&g.sub(&dot)?)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, softmax_kernels::softmax_backward_cpu)]
    }
}

/// Log-softmax's vector-Jacobian product over the last dimension: inputs
/// the output `y` and its gradient `g`, output
/// `∂L/∂x = g − exp(y) · Σⱼ gⱼ` (`exp(y)` is the softmax).
pub struct LogSoftmaxBackward;

impl Operator for LogSoftmaxBackward {
    fn name(&self) -> &'static str {
        "log_softmax_backward"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        check_rows("log_softmax_backward", inputs, 2)
    }
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let (y, g) = (inputs[0], inputs[1]);
        if y.elem_count() == 0 {
            return Ok(vec![y.copy()?]);
        }
        let total = g.sum([y.rank() - 1], true)?;
        Ok(vec![g.sub(&y.exp()?.mul(&total)?)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, softmax_kernels::log_softmax_backward_cpu)]
    }
}
// ANCHOR_END: operators

// ANCHOR: on_last_dim
/// Runs a last-dimension operator along `dim`: `dim` is swapped with the
/// last dimension (a free view) and made contiguous (a copy, unless `dim`
/// already is the last), the operator runs on the rows, and the result is
/// swapped back (a view again).
fn along<O: Operator>(op: &O, dim: usize, inputs: &[&RawTensor]) -> Result<RawTensor> {
    let last = inputs[0].rank() - 1;
    let moved = inputs
        .iter()
        .map(|t| match dim == last {
            true => t.contiguous(),
            false => t.transpose(dim, last)?.contiguous(),
        })
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&RawTensor> = moved.iter().collect();
    let out = call(op, &refs)?.remove(0);
    match dim == last {
        true => Ok(out),
        false => out.transpose(dim, last),
    }
}
// ANCHOR_END: on_last_dim

// ANCHOR: softmax
/// `yᵢ = exp(xᵢ − m) / Σⱼ exp(xⱼ − m)` along `dim`, with `m = maxⱼ xⱼ`.
///
/// Subtracting the max changes nothing mathematically (it cancels between
/// numerator and denominator) but keeps every exponent ≤ 0: `exp(1000)`
/// overflows to ∞ and `∞/∞` is NaN, while `exp(1000 − 1000) = 1`.
///
/// Backward: the Jacobian is `∂yᵢ/∂xⱼ = yᵢ(δᵢⱼ − yⱼ)`, so the
/// vector-Jacobian product is `yᵢ(gᵢ − Σⱼ gⱼyⱼ)`: one reduction, no `n×n`
/// matrix. It runs as the [`SoftmaxBackward`] operator (a fused kernel on
/// the CPU), except when the backward pass is itself being recorded
/// (`create_graph`): then the same formula is written with autograd ops, so
/// that it can be differentiated again.
struct Softmax {
    dim: usize,
}
impl CustomOp for Softmax {
    fn name(&self) -> &'static str {
        "softmax"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "softmax")?;
        along(&SoftmaxLastDim, self.dim, x)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let y = ctx.output;
        if is_grad_enabled() {
            let dot = g.mul(y)?.sum([self.dim], true)?;
            return Ok(vec![Some(y.mul(&g.sub(&dot)?)?)]);
        }
        let dx = along(&SoftmaxBackward, self.dim, &[&y.data(), &g.data()])?;
        Ok(vec![Some(Tensor::from_raw(dx))])
    }
}
// ANCHOR_END: softmax

// ANCHOR: log_softmax
/// `yᵢ = xᵢ − log Σⱼ exp(xⱼ) = (xᵢ − m) − log Σⱼ exp(xⱼ − m)`.
///
/// Computing `log(softmax(x))` instead would round tiny probabilities to 0
/// and return `−∞`; here the log never sees anything smaller than 1.
///
/// Backward: `∂yᵢ/∂xⱼ = δᵢⱼ − softmax(x)ⱼ`, so the gradient is
/// `gᵢ − softmax(x)ᵢ·Σⱼ gⱼ`, with `softmax(x) = exp(y)`: the
/// [`LogSoftmaxBackward`] operator, or autograd ops under `create_graph`.
struct LogSoftmax {
    dim: usize,
}
impl CustomOp for LogSoftmax {
    fn name(&self) -> &'static str {
        "log_softmax"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        check_float(x[0], "log_softmax")?;
        along(&LogSoftmaxLastDim, self.dim, x)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let y = ctx.output;
        if is_grad_enabled() {
            let total = g.sum([self.dim], true)?;
            return Ok(vec![Some(g.sub(&y.exp()?.mul(&total)?)?)]);
        }
        let dx = along(&LogSoftmaxBackward, self.dim, &[&y.data(), &g.data()])?;
        Ok(vec![Some(Tensor::from_raw(dx))])
    }
}
// ANCHOR_END: log_softmax

// ANCHOR: cumsum
/// Running sum along `dim`: `yᵢ = Σ_{j ≤ i} xⱼ` (or `Σ_{j ≥ i}` reversed).
///
/// Each `xⱼ` contributes to every `yᵢ` with `i ≥ j`, so the gradient is
/// the running sum of `g` taken from the other end:
/// `∂L/∂xⱼ = Σ_{i ≥ j} gᵢ`. The backward is therefore a reversed `CumSum`,
/// whose own backward is a forward one again.
struct CumSum {
    dim: usize,
    reverse: bool,
}
impl CustomOp for CumSum {
    fn name(&self) -> &'static str {
        "cumsum"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        cumsum_raw(x[0], self.dim, self.reverse)
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let op = CumSum {
            dim: self.dim,
            reverse: !self.reverse,
        };
        Ok(vec![Some(Tensor::apply(op, &[g])?)])
    }
}
// ANCHOR_END: cumsum

// ANCHOR: scan
/// An `n × n` 0/1 matrix `T` such that `x·T` is a scan of the row `x`:
/// `T[i][j] = 1` when `i ≤ j` (inclusive) or `i < j` (exclusive), mirrored
/// for a reverse scan. Made on the device by comparing row and column
/// numbers, like a causal mask.
fn scan_matrix(n: usize, inclusive: bool, reverse: bool, like: &RawTensor) -> Result<RawTensor> {
    let ids = RawTensor::arange(0.0, n as f64, 1.0, DType::I64, like.device())?;
    let (i, j) = (ids.reshape((n, 1))?, ids.reshape((1, n))?);
    let (from, to) = if reverse { (j, i) } else { (i, j) };
    let mask = if inclusive {
        from.le(&to)?
    } else {
        from.lt(&to)?
    };
    mask.to_dtype(like.dtype())
}

/// The scan itself, built from the matmul primitive (there is no scan
/// primitive, and a host loop would leave the device). A single `n × n`
/// triangular matrix would cost `n²` memory: 2.5·10⁹ entries for GPT-2's
/// vocabulary. So we scan in two levels, as GPU scans do: split each row
/// into blocks of `b ≈ √n`, scan inside every block with one `b × b`
/// matmul, scan the block totals with one small matmul, and add each
/// block's offset. Cost `O(n√n)` per row, memory `O(n)`.
///
/// Integer tensors are scanned in `f64` (exact below 2⁵³) and returned as
/// `i64`, as PyTorch returns `int64` for integer inputs.
fn cumsum_raw(x: &RawTensor, dim: usize, reverse: bool) -> Result<RawTensor> {
    if !x.dtype().is_float() {
        return cumsum_raw(&x.to_dtype(DType::F64)?, dim, reverse)?.to_dtype(DType::I64);
    }
    if x.elem_count() == 0 {
        return x.copy();
    }
    let last = x.rank() - 1;
    let moved = x.transpose(dim, last)?;
    let moved_dims = moved.dims().to_vec();
    let n = moved_dims[last];
    let rows = x.elem_count() / n;
    let b = (n as f64).sqrt().ceil() as usize;
    let blocks = n.div_ceil(b);
    let mut flat = moved.reshape((rows, n))?;
    if blocks * b > n {
        let pad = RawTensor::zeros((rows, blocks * b - n), x.dtype(), x.device())?;
        flat = RawTensor::cat(&[&flat, &pad], 1)?;
    }
    // [rows, blocks, b]: scan inside each block.
    let within = flat
        .reshape((rows, blocks, b))?
        .matmul(&scan_matrix(b, true, reverse, x)?)?;
    // [rows, blocks]: each block's total, then the exclusive scan of totals.
    let total_at = if reverse { 0 } else { b - 1 };
    let totals = within.narrow(2, total_at, 1)?.reshape((rows, blocks))?;
    let offsets = totals.matmul(&scan_matrix(blocks, false, reverse, x)?)?;
    let out = within.add(&offsets.reshape((rows, blocks, 1))?)?;
    let out = out.reshape((rows, blocks * b))?.narrow(1, 0, n)?;
    out.reshape(moved_dims)?.transpose(dim, last)?.contiguous()
}
// ANCHOR_END: scan

// ANCHOR: one_hot
/// `ids` (`i64`, any shape) as one-hot rows: an `f32` tensor of shape
/// `ids.shape + [num_classes]` with a 1 at each id, made on the device by
/// scattering ones into zeros. A bad id is an error, never an all-zero row:
/// ids in host memory are checked (free there) and reported by value; on
/// another device the scatter kernel finds it.
pub fn one_hot(ids: &Tensor, num_classes: usize) -> Result<Tensor> {
    if ids.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op: "one_hot (ids must be i64)",
            dtype: ids.dtype(),
        });
    }
    let raw = ids.data();
    if let Some(bad) = raw.first_id_outside(num_classes)? {
        return Err(Error::invalid(
            "one_hot",
            format!(
                "class id {bad} is out of range 0..{num_classes} (ids of shape {})",
                raw.shape()
            ),
        ));
    }
    let mut column = raw.dims().to_vec();
    column.push(1);
    let mut out_shape = raw.dims().to_vec();
    out_shape.push(num_classes);
    let device = raw.device();
    let zeros = RawTensor::zeros(out_shape, DType::F32, device)?;
    let ones = RawTensor::ones(column.clone(), DType::F32, device)?;
    let hot = zeros.scatter_add(&raw.reshape(column)?, &ones, -1)?;
    Ok(Tensor::from_raw(hot))
}
// ANCHOR_END: one_hot

// ANCHOR: trait
/// Softmax, log-softmax and cumulative sum along one dimension.
pub trait SoftmaxOps {
    /// `exp(x) / Σ exp(x)` along `dim`, computed without overflow.
    fn softmax(&self, dim: impl Dim) -> Result<Tensor>;
    /// `x − log Σ exp(x)` along `dim`, computed without overflow.
    fn log_softmax(&self, dim: impl Dim) -> Result<Tensor>;
    /// Running sum along `dim` (`torch.cumsum`).
    fn cumsum(&self, dim: impl Dim) -> Result<Tensor>;
}

impl SoftmaxOps for Tensor {
    fn softmax(&self, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "softmax")?;
        Tensor::apply(Softmax { dim }, &[self])
    }
    fn log_softmax(&self, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "log_softmax")?;
        Tensor::apply(LogSoftmax { dim }, &[self])
    }
    fn cumsum(&self, dim: impl Dim) -> Result<Tensor> {
        let dim = dim.to_index(&self.shape(), "cumsum")?;
        Tensor::apply(
            CumSum {
                dim,
                reverse: false,
            },
            &[self],
        )
    }
}
// ANCHOR_END: trait
