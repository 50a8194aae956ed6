//! `conv2d` and `conv_transpose2d`, forward and backward, through im2col
//! and one matrix product per group.
//!
//! With the patch matrix `cols = im2col(x)` (`[G, K, N·L]`, `K =
//! (C/G)·kh·kw` rows, one column per output pixel) and the weight seen as a
//! matrix `W` (`[G, O/G, K]`), a convolution is
//!
//! ```text
//! Y = W · cols                       (one GEMM per group)
//! ```
//!
//! and its gradients, for `dY` laid out like `Y`, are two more products:
//!
//! ```text
//! dW    = dY · colsᵀ                 (a convolution of x with dY)
//! dcols = Wᵀ · dY,  dx = col2im(dcols)   (a transposed convolution of dY)
//! ```
//!
//! A transposed convolution is that second line used as a forward pass, so
//! the two operations are each other's input gradient, and each backward
//! below calls the other one: differentiating a backward pass again
//! (`create_graph`) needs nothing more.

use super::depthwise::DepthwiseConv2d;
use super::geometry::{Conv2dOptions, ConvGeometry, ConvTranspose2dOptions};
use super::per_image::{ConvForward, ConvInputGrad, ConvWeightGrad};
use chapter_02::dispatch::call;
use chapter_02::{Error, Result, Tensor as RawTensor};
use chapter_03::{BackwardCtx, CustomOp, Tensor};

// ANCHOR: forward_raw
/// `Y = W · im2col(x) (+ b)`: the forward pass of a convolution.
fn conv_forward(
    geom: &ConvGeometry,
    x: &RawTensor,
    w: &RawTensor,
    b: Option<&RawTensor>,
) -> Result<RawTensor> {
    let y = if geom.is_depthwise() {
        // One input channel per group: a direct kernel beats im2col.
        call(&DepthwiseConv2d(*geom), &[x, w])?.remove(0)
    } else {
        call(&ConvForward(*geom), &[x, w])?.remove(0)
    };
    add_bias(y, b)
}

/// `y = col2im(Wᵀ · x) (+ b)`: the forward pass of a transposed
/// convolution, `x` laid out like the convolution's output.
fn conv_transpose_forward(
    geom: &ConvGeometry,
    x: &RawTensor,
    w: &RawTensor,
    b: Option<&RawTensor>,
) -> Result<RawTensor> {
    let y = call(&ConvInputGrad(*geom), &[x, w])?.remove(0);
    add_bias(y, b)
}

/// `y + b` with `b: [C]` broadcast over `[N, C, H, W]`, or `y` made
/// contiguous.
fn add_bias(y: RawTensor, b: Option<&RawTensor>) -> Result<RawTensor> {
    match b {
        Some(b) => y.add(&b.reshape([1, b.elem_count(), 1, 1])?),
        None => y.contiguous(),
    }
}
// ANCHOR_END: forward_raw

// ANCHOR: weight_grad
/// `dW = dY · im2col(x)ᵀ`, one product per group, summing over every output
/// pixel of every image: `x` is the convolution's input `[N, C, H, W]`,
/// `dy` the gradient of its output `[N, O, out_h, out_w]`.
///
/// `dW` is linear in `x` and in `dy` separately, so its own gradients are
/// convolutions again: for an incoming `g` (shaped like the weight),
/// `⟨g, dW⟩ = ⟨dy, conv2d(x, g)⟩ = ⟨x, conv_transpose2d(dy, g)⟩`. That
/// makes it differentiable to any order.
struct ConvWeightGradOp {
    geom: ConvGeometry,
}

impl CustomOp for ConvWeightGradOp {
    fn name(&self) -> &'static str {
        "conv2d_weight_grad"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        Ok(call(&ConvWeightGrad(self.geom), inputs)?.remove(0))
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, dy) = (ctx.input(0), ctx.input(1));
        let dx = match ctx.needs_grad(0) {
            true => Some(conv_transpose2d_with(dy, g, None, &self.geom)?),
            false => None,
        };
        let ddy = match ctx.needs_grad(1) {
            true => Some(conv2d_with(x, g, None, &self.geom)?),
            false => None,
        };
        Ok(vec![dx, ddy])
    }
}

fn weight_grad(geom: &ConvGeometry, x: &Tensor, dy: &Tensor) -> Result<Tensor> {
    Tensor::apply(ConvWeightGradOp { geom: *geom }, &[x, dy])
}
// ANCHOR_END: weight_grad

// ANCHOR: conv2d_op
/// The convolution as a differentiable operation: inputs `x`, `weight` and
/// optionally `bias`.
struct Conv2dOp {
    geom: ConvGeometry,
}

impl CustomOp for Conv2dOp {
    fn name(&self) -> &'static str {
        "conv2d"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        conv_forward(&self.geom, inputs[0], inputs[1], inputs.get(2).copied())
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, dy: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, w) = (ctx.input(0), ctx.input(1));
        let mut grads = vec![None; ctx.inputs.len()];
        if ctx.needs_grad(0) {
            // dx = col2im(Wᵀ·dY): the transposed convolution of dY.
            grads[0] = Some(conv_transpose2d_with(dy, w, None, &self.geom)?);
        }
        if ctx.needs_grad(1) {
            grads[1] = Some(weight_grad(&self.geom, x, dy)?);
        }
        if ctx.inputs.len() == 3 && ctx.needs_grad(2) {
            // Each bias value is added to every pixel of its channel.
            grads[2] = Some(dy.sum(vec![0, 2, 3], false)?);
        }
        Ok(grads)
    }
}

/// The transposed convolution as a differentiable operation: inputs `x`
/// (shaped like the convolution's output), `weight` and optionally `bias`.
struct ConvTranspose2dOp {
    geom: ConvGeometry,
}

impl CustomOp for ConvTranspose2dOp {
    fn name(&self) -> &'static str {
        "conv_transpose2d"
    }
    fn forward(&self, inputs: &[&RawTensor]) -> Result<RawTensor> {
        conv_transpose_forward(&self.geom, inputs[0], inputs[1], inputs.get(2).copied())
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, dy: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (x, w) = (ctx.input(0), ctx.input(1));
        let mut grads = vec![None; ctx.inputs.len()];
        if ctx.needs_grad(0) {
            // The adjoint of the adjoint: the convolution itself.
            grads[0] = Some(conv2d_with(dy, w, None, &self.geom)?);
        }
        if ctx.needs_grad(1) {
            // The same product as a convolution's weight gradient, with the
            // roles of image and output gradient played by dy and x.
            grads[1] = Some(weight_grad(&self.geom, dy, x)?);
        }
        if ctx.inputs.len() == 3 && ctx.needs_grad(2) {
            grads[2] = Some(dy.sum(vec![0, 2, 3], false)?);
        }
        Ok(grads)
    }
}
// ANCHOR_END: conv2d_op

/// `x`, `weight` and `bias` of one float dtype, or an error naming `op`.
fn check_dtypes(op: &'static str, x: &Tensor, w: &Tensor, b: Option<&Tensor>) -> Result<()> {
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    for t in std::iter::once(w).chain(b) {
        if t.dtype() != x.dtype() {
            return Err(Error::DTypeMismatch {
                op,
                lhs: x.dtype(),
                rhs: t.dtype(),
            });
        }
    }
    Ok(())
}

fn inputs<'a>(x: &'a Tensor, w: &'a Tensor, b: Option<&'a Tensor>) -> Vec<&'a Tensor> {
    std::iter::once(x)
        .chain(std::iter::once(w))
        .chain(b)
        .collect()
}

// ANCHOR: conv2d
/// 2-D convolution (cross-correlation, as in every framework):
///
/// `y[n, o, p, q] = b[o] + Σ_{c, i, j} w[o, c, i, j] · x[n, g·C/G + c, p·s + i·d − pad, q·s + j·d − pad]`
///
/// where `g = o / (O/G)` is the group of output channel `o`. Shapes: `x`
/// `[N, C, H, W]`, `weight` `[O, C/groups, kh, kw]`, `bias` `[O]`, result
/// `[N, O, out_h, out_w]` with `out = ⌊(in + 2·pad − d·(k − 1) − 1)/s⌋ + 1`.
/// Bad shapes or options are reported before anything runs, naming the
/// shapes.
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: &Conv2dOptions,
) -> Result<Tensor> {
    let bias_dims = bias.map(|b| b.dims());
    let geom = ConvGeometry::conv2d(&x.dims(), &weight.dims(), bias_dims.as_deref(), opts)?;
    check_dtypes("conv2d", x, weight, bias)?;
    conv2d_with(x, weight, bias, &geom)
}

/// [`conv2d`] with the geometry already worked out (and checked).
pub fn conv2d_with(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geom: &ConvGeometry,
) -> Result<Tensor> {
    Tensor::apply(Conv2dOp { geom: *geom }, &inputs(x, weight, bias))
}
// ANCHOR_END: conv2d

// ANCHOR: conv_transpose2d
/// 2-D transposed convolution (PyTorch's `conv_transpose2d`, sometimes
/// called a "deconvolution"): the input gradient of [`conv2d`], used as a
/// forward pass. Each input pixel scatters a copy of the kernel, scaled by
/// its value, onto the output, `s` pixels apart; overlaps add up.
///
/// Shapes: `x` `[N, C_in, H, W]`, `weight` `[C_in, C_out/groups, kh, kw]`
/// (PyTorch's layout: the layout of the convolution it transposes), `bias`
/// `[C_out]`, result `[N, C_out, H_out, W_out]` with
/// `H_out = (H − 1)·s − 2·pad + d·(k − 1) + output_padding + 1`.
pub fn conv_transpose2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    opts: &ConvTranspose2dOptions,
) -> Result<Tensor> {
    let bias_dims = bias.map(|b| b.dims());
    let geom =
        ConvGeometry::conv_transpose2d(&x.dims(), &weight.dims(), bias_dims.as_deref(), opts)?;
    check_dtypes("conv_transpose2d", x, weight, bias)?;
    conv_transpose2d_with(x, weight, bias, &geom)
}

/// [`conv_transpose2d`] given the geometry of the convolution it
/// transposes: `x` has that convolution's output shape, the result its
/// input shape.
pub fn conv_transpose2d_with(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    geom: &ConvGeometry,
) -> Result<Tensor> {
    Tensor::apply(ConvTranspose2dOp { geom: *geom }, &inputs(x, weight, bias))
}
// ANCHOR_END: conv_transpose2d
