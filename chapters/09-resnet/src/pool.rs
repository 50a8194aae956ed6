//! Pooling: max, average, adaptive average and global average.
//!
//! A pooling window walks over each channel the way a convolution's kernel
//! does, so pooling reuses the convolution's geometry: `[N, C, H, W]` is
//! seen as `N·C` one-channel images, and the window is a kernel with one
//! input and one output channel. What changes is what the window computes:
//!
//! - **max**: the largest value under the window. Its gradient goes, whole,
//!   to the one input the maximum came from, so the forward pass records
//!   that input's position (the *indices*), and the backward pass is a
//!   scatter-add of the output gradient to those positions.
//! - **average**: the mean under the window, a linear map: the patches of
//!   im2col summed and divided. Its backward is the adjoint, col2im of the
//!   gradient divided by the same counts: each input receives a share of
//!   the gradient of every window it was part of.

use crate::conv::{unfold, ConvGeometry, Im2col};
use chapter_02::dispatch::call;
use chapter_02::{
    CmpOp, DType, DeviceKind, Error, Kernel, Operator, Result, Shape, Tensor as RawTensor,
};
use chapter_03::{BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};

// ANCHOR: options
/// The options of [`max_pool2d`], PyTorch's defaults by [`Pool2dOptions::new`]:
/// stride = kernel size, no padding, no dilation, floor mode. Pairs are
/// `(height, width)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pool2dOptions {
    pub kernel: (usize, usize),
    /// `None`: the kernel size (windows that touch but do not overlap).
    pub stride: Option<(usize, usize)>,
    /// Implicit `−∞` (max) or `0` (average) on each side; at most half the
    /// window.
    pub padding: (usize, usize),
    pub dilation: (usize, usize),
    /// Round the output size up instead of down: a last, partial window
    /// covers the rows a floor would drop (if it starts inside the input
    /// or its left padding).
    pub ceil_mode: bool,
}

impl Pool2dOptions {
    /// A `k × k` window.
    pub fn new(k: usize) -> Self {
        Pool2dOptions {
            kernel: (k, k),
            stride: None,
            padding: (0, 0),
            dilation: (1, 1),
            ceil_mode: false,
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = Some((s, s));
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = (p, p);
        self
    }
    pub fn dilation(mut self, d: usize) -> Self {
        self.dilation = (d, d);
        self
    }
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
}

/// The options of [`avg_pool2d`]: a window as for max pooling (without
/// dilation, as in PyTorch), and whether the zeros of the padding count in
/// the divisor (`count_include_pad`, PyTorch's default `true`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AvgPool2dOptions {
    pub kernel: (usize, usize),
    pub stride: Option<(usize, usize)>,
    pub padding: (usize, usize),
    pub ceil_mode: bool,
    pub count_include_pad: bool,
}

impl AvgPool2dOptions {
    pub fn new(k: usize) -> Self {
        AvgPool2dOptions {
            kernel: (k, k),
            stride: None,
            padding: (0, 0),
            ceil_mode: false,
            count_include_pad: true,
        }
    }
    pub fn stride(mut self, s: usize) -> Self {
        self.stride = Some((s, s));
        self
    }
    pub fn padding(mut self, p: usize) -> Self {
        self.padding = (p, p);
        self
    }
    pub fn ceil_mode(mut self, on: bool) -> Self {
        self.ceil_mode = on;
        self
    }
    pub fn count_include_pad(mut self, on: bool) -> Self {
        self.count_include_pad = on;
        self
    }
}
// ANCHOR_END: options

// ANCHOR: pool_geometry
/// The output size along one dimension of `n` inputs, and the padding the
/// last window needs at the end (more than `p` in ceil mode):
///
/// `out = ⌊(n + 2p − d·(k − 1) − 1)/s⌋ + 1` (or `⌈…⌉ + 1` in ceil mode,
/// dropping a last window that would start in the right padding).
#[allow(clippy::too_many_arguments)]
fn pool_size(
    op: &'static str,
    shape: &[usize],
    n: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    ceil: bool,
) -> Result<(usize, usize)> {
    let span = d * (k - 1) + 1;
    if p > span / 2 {
        return Err(Error::invalid(
            op,
            format!(
                "padding {p} must be at most half the window ({span}), input shape {}",
                Shape::from(shape.to_vec())
            ),
        ));
    }
    let Some(room) = (n + 2 * p).checked_sub(span) else {
        return Err(Error::invalid(
            op,
            format!(
                "window {span} (kernel {k}, dilation {d}) is larger than the padded input \
                 {} (input shape {}, padding {p})",
                n + 2 * p,
                Shape::from(shape.to_vec())
            ),
        ));
    };
    let mut out = if ceil { room.div_ceil(s) } else { room / s } + 1;
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    let pad_end = ((out - 1) * s + span).saturating_sub(n + p).max(p);
    Ok((out, pad_end))
}

/// The geometry of a pooling window over `x: [N, C, H, W]`, as a
/// convolution over `N·C` one-channel images.
fn pool_geometry(
    op: &'static str,
    x: &[usize],
    kernel: (usize, usize),
    stride: Option<(usize, usize)>,
    padding: (usize, usize),
    dilation: (usize, usize),
    ceil: bool,
) -> Result<ConvGeometry> {
    let &[n, c, h, w] = x else {
        return Err(Error::invalid(
            op,
            format!(
                "expected a 4-D input [N, C, H, W], got shape {}",
                Shape::from(x.to_vec())
            ),
        ));
    };
    let stride = stride.unwrap_or(kernel);
    for (name, (a, b)) in [
        ("kernel size", kernel),
        ("stride", stride),
        ("dilation", dilation),
    ] {
        if a == 0 || b == 0 {
            return Err(Error::invalid(
                op,
                format!("{name} must be positive, got ({a}, {b})"),
            ));
        }
    }
    let (out_h, end_h) = pool_size(op, x, h, kernel.0, stride.0, padding.0, dilation.0, ceil)?;
    let (out_w, end_w) = pool_size(op, x, w, kernel.1, stride.1, padding.1, dilation.1, ceil)?;
    Ok(ConvGeometry {
        batch: n * c,
        in_channels: 1,
        in_h: h,
        in_w: w,
        out_channels: 1,
        kernel,
        stride,
        pad_begin: padding,
        pad_end: (end_h, end_w),
        dilation,
        groups: 1,
        out_h,
        out_w,
    })
}
// ANCHOR_END: pool_geometry

/// `[N·C, L]`-shaped pooling results back to `[N, C, out_h, out_w]`.
fn images(x: &[usize], g: &ConvGeometry) -> [usize; 4] {
    [x[0], x[1], g.out_h, g.out_w]
}

/// The geometry `g` applied to one image of the same size.
fn one_image(g: &ConvGeometry) -> ConvGeometry {
    ConvGeometry { batch: 1, ..*g }
}

/// For each window (column) and tap (row), whether the tap reads the
/// input rather than the padding: `[kh·kw, out_h·out_w]` ones and zeros,
/// im2col of an image of ones.
fn inside_mask(g: &ConvGeometry, dtype: DType, dev: &chapter_02::Device) -> Result<RawTensor> {
    let one = one_image(g);
    let ones = RawTensor::ones([1, 1, g.in_h, g.in_w], dtype, dev)?;
    call(&Im2col(one), &[&ones])?
        .remove(0)
        .reshape([one.col_rows(), one.col_cols()])
}

// ANCHOR: max_pool_operator
/// Max pooling's forward pass: `x: [N, C, H, W]` → the maxima
/// `[N, C, out_h, out_w]` and their positions (`i64`, the flat index
/// `h·W + w` in the input's plane, as PyTorch returns them). The first
/// maximum in scan order wins a tie; a NaN always wins.
pub struct MaxPool2dForward(pub ConvGeometry);

impl Operator for MaxPool2dForward {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        let g = &self.0;
        g.validate("max_pool2d")?;
        match inputs {
            [x] if x.dtype().is_float() && x.elem_count() == g.batch * g.in_h * g.in_w => Ok(()),
            _ => Err(Error::invalid(
                "max_pool2d",
                "expects one float tensor matching its geometry",
            )),
        }
    }
    /// im2col of the input with the padding taps set to `−∞`, `argmax` over
    /// the taps, and the same taps of an image of positions `0..H·W` give
    /// the indices.
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let x = inputs[0];
        let dims = x.dims().to_vec();
        let (dev, k, l) = (x.device(), g.col_rows(), g.out_h * g.out_w);
        let planes = x.reshape([g.batch, 1, g.in_h, g.in_w])?;
        let cols = call(&Im2col(*g), &[&planes])?
            .remove(0)
            .reshape([k, g.batch, l])?;
        let padding = inside_mask(g, x.dtype(), dev)?
            .cmp_scalar(CmpOp::Eq, 0.0)?
            .reshape([k, 1, l])?;
        let minus_inf = RawTensor::full(f64::NEG_INFINITY, (), x.dtype(), dev)?;
        let cols = padding.where_cond(&minus_inf, &cols)?;
        let tap = cols.argmax(0, true)?; // [1, N·C, L]
        let values = cols.gather(&tap, 0)?;
        let positions = RawTensor::arange(0.0, (g.in_h * g.in_w) as f64, 1.0, DType::F64, dev)?
            .reshape([1, 1, g.in_h, g.in_w])?;
        let one = one_image(g);
        let positions = call(&Im2col(one), &[&positions])?
            .remove(0)
            .reshape([k, 1, l])?
            .broadcast_to([k, g.batch, l])?
            .contiguous()?;
        let indices = positions.gather(&tap, 0)?.to_dtype(DType::I64)?;
        let out = images(&dims, g);
        Ok(vec![values.reshape(out)?, indices.reshape(out)?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, max_pool_cpu)]
    }
}
// ANCHOR_END: max_pool_operator

// ANCHOR: max_pool_cpu
/// One plane of max pooling: for each window, scan its taps in order and
/// keep the first largest value (or the last NaN, as PyTorch does).
fn max_pool_plane<T: chapter_02::WithDType>(
    g: &ConvGeometry,
    x: &[T],
    values: &mut [T],
    indices: &mut [i64],
) {
    let (kh, kw) = g.kernel;
    for oh in 0..g.out_h {
        for ow in 0..g.out_w {
            let mut best: Option<(T, usize)> = None;
            for i in 0..kh {
                let ih = (oh * g.stride.0 + i * g.dilation.0) as isize - g.pad_begin.0 as isize;
                if ih < 0 || ih >= g.in_h as isize {
                    continue;
                }
                for j in 0..kw {
                    let iw = (ow * g.stride.1 + j * g.dilation.1) as isize - g.pad_begin.1 as isize;
                    if iw < 0 || iw >= g.in_w as isize {
                        continue;
                    }
                    let at = ih as usize * g.in_w + iw as usize;
                    let v = x[at];
                    let nan = v.partial_cmp(&v).is_none();
                    if best.is_none_or(|(b, _)| v > b || nan) {
                        best = Some((v, at));
                    }
                }
            }
            let (v, at) = best.map_or((T::from_f64(f64::NEG_INFINITY), -1), |(v, a)| (v, a as i64));
            values[oh * g.out_w + ow] = v;
            indices[oh * g.out_w + ow] = at;
        }
    }
}

fn max_pool_typed<T: chapter_02::WithDType>(
    g: &ConvGeometry,
    x: &RawTensor,
) -> Result<Vec<RawTensor>> {
    let data = x.host_slice::<T>()?;
    let (plane, out_plane) = (g.in_h * g.in_w, g.out_h * g.out_w);
    let mut values = vec![T::default(); g.batch * out_plane];
    let mut indices = vec![0i64; g.batch * out_plane];
    let work = |(p, (v, ix)): (usize, (&mut [T], &mut [i64]))| {
        max_pool_plane(g, &data[p * plane..][..plane], v, ix)
    };
    if out_plane > 0 {
        let chunks = values
            .par_chunks_mut(out_plane)
            .zip(indices.par_chunks_mut(out_plane));
        chunks.enumerate().for_each(work);
    }
    let out = images(x.dims(), g);
    Ok(vec![
        RawTensor::from_host_vec(values, out, x.device())?,
        RawTensor::from_host_vec(indices, out, x.device())?,
    ])
}

fn max_pool_cpu(op: &MaxPool2dForward, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    let x = inputs[0].contiguous()?;
    match x.dtype() {
        DType::F32 => max_pool_typed::<f32>(&op.0, &x),
        DType::F64 => max_pool_typed::<f64>(&op.0, &x),
        _ => op.composite(&[&x]),
    }
}
// ANCHOR_END: max_pool_cpu

// ANCHOR: max_pool_op
/// Max pooling as a differentiable operation. The forward pass keeps the
/// indices (shared with the caller); the backward pass sends each output
/// gradient to the input it came from, adding where windows overlap and
/// picked the same input: `dx = zeros.scatter_add(indices, dy)` on each
/// plane. Scatter-add is differentiable in `dy` (its adjoint is a gather),
/// so second derivatives work too.
struct MaxPool {
    geom: ConvGeometry,
    indices: Arc<OnceLock<RawTensor>>,
}

impl CustomOp for MaxPool {
    fn name(&self) -> &'static str {
        "max_pool2d"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        let mut out = call(&MaxPool2dForward(self.geom), x)?;
        let indices = out.remove(1);
        // A forward pass runs once per op value; keep the first indices.
        let _ = self.indices.set(indices);
        Ok(out.remove(0))
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, dy: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let x = ctx.input(0);
        let dims = x.dims();
        let g = &self.geom;
        let indices = self
            .indices
            .get()
            .ok_or_else(|| Error::invalid("max_pool2d", "backward before forward: no indices"))?;
        let ids = Tensor::from_raw(indices.reshape([dims[0], dims[1], g.out_h * g.out_w])?);
        let zeros = Tensor::from_raw(RawTensor::zeros(
            [dims[0], dims[1], g.in_h * g.in_w],
            dy.dtype(),
            &dy.device(),
        )?);
        let src = dy.reshape([dims[0], dims[1], g.out_h * g.out_w])?;
        Ok(vec![Some(zeros.scatter_add(&ids, &src, 2)?.reshape(dims)?)])
    }
}

/// Max pooling with the positions of the maxima: `x: [N, C, H, W]` →
/// (`[N, C, out_h, out_w]`, `i64` indices of the same shape, each the flat
/// position `h·W + w` of its maximum in the input plane, as in PyTorch).
pub fn max_pool2d_with_indices(x: &Tensor, opts: &Pool2dOptions) -> Result<(Tensor, Tensor)> {
    let geom = pool_geometry(
        "max_pool2d",
        &x.dims(),
        opts.kernel,
        opts.stride,
        opts.padding,
        opts.dilation,
        opts.ceil_mode,
    )?;
    let indices = Arc::new(OnceLock::new());
    let op = MaxPool {
        geom,
        indices: indices.clone(),
    };
    let out = Tensor::apply(op, &[x])?;
    let indices = indices
        .get()
        .cloned()
        .ok_or_else(|| Error::invalid("max_pool2d", "the forward pass left no indices"))?;
    Ok((out, Tensor::from_raw(indices)))
}

/// Max pooling: the largest value of each window of each channel.
/// `x: [N, C, H, W]` → `[N, C, out_h, out_w]`.
pub fn max_pool2d(x: &Tensor, opts: &Pool2dOptions) -> Result<Tensor> {
    Ok(max_pool2d_with_indices(x, opts)?.0)
}
// ANCHOR_END: max_pool_op

// ANCHOR: avg_pool
/// Average pooling: the mean of each window of each channel, `x:
/// [N, C, H, W]` → `[N, C, out_h, out_w]`. Written as im2col, a sum over
/// the taps and a division by the window's count, all differentiable: the
/// backward pass is col2im of the gradient divided by the counts.
///
/// The count is the number of taps inside the padded input
/// (`count_include_pad`, PyTorch's default) or inside the input itself;
/// either way, taps past the padding (the last window in ceil mode) do not
/// count. The counts depend only on the geometry; they are computed on
/// the device by pooling an image of ones, never uploaded.
pub fn avg_pool2d(x: &Tensor, opts: &AvgPool2dOptions) -> Result<Tensor> {
    let dims = x.dims();
    let g = pool_geometry(
        "avg_pool2d",
        &dims,
        opts.kernel,
        opts.stride,
        opts.padding,
        (1, 1),
        opts.ceil_mode,
    )?;
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op: "avg_pool2d",
            dtype: x.dtype(),
        });
    }
    let (k, l) = (g.col_rows(), g.out_h * g.out_w);
    let planes = x.reshape([g.batch, 1, g.in_h, g.in_w])?;
    let sums = unfold(&planes, &g)?
        .reshape([k, g.batch, l])?
        .sum(vec![0], false)?; // [N·C, L]
    let counts = window_counts(&g, opts.count_include_pad, x.dtype(), &x.device())?;
    sums.div(&Tensor::from_raw(counts))?
        .reshape(images(&dims, &g))
}

/// How many taps of each window count in its average, `[1, L]`.
fn window_counts(
    g: &ConvGeometry,
    include_pad: bool,
    dtype: DType,
    dev: &chapter_02::Device,
) -> Result<RawTensor> {
    let one = one_image(g);
    let counts = if include_pad {
        // Ones over the input *and* its padding; zeros only past it.
        let (ph, pw) = g.pad_begin;
        let padded = ConvGeometry {
            in_h: g.in_h + 2 * ph,
            in_w: g.in_w + 2 * pw,
            pad_begin: (0, 0),
            pad_end: (g.pad_end.0 - ph, g.pad_end.1 - pw),
            ..one
        };
        let ones = RawTensor::ones([1, 1, padded.in_h, padded.in_w], dtype, dev)?;
        call(&Im2col(padded), &[&ones])?.remove(0)
    } else {
        inside_mask(g, dtype, dev)?
    };
    counts
        .reshape([one.col_rows(), one.col_cols()])?
        .sum(vec![0], true)
}
// ANCHOR_END: avg_pool

// ANCHOR: adaptive_avg_pool
/// Adaptive average pooling to a fixed output size `(out_h, out_w)`,
/// whatever the input size: output row `i` averages input rows
/// `⌊i·H/out_h⌋ .. ⌈(i + 1)·H/out_h⌉` (windows may differ in size by one,
/// and overlap), and likewise for columns.
///
/// When the sizes divide, that is plain average pooling with kernel =
/// stride = `H/out_h`. Otherwise the average is linear in each direction
/// separately, `y = A_h · x · A_wᵀ` with `A[i, h] = 1/|window i|` inside
/// window `i`: two matrix products, differentiable as they are. (`A_h` and
/// `A_w` are built on the host from the sizes alone, a small upload.)
pub fn adaptive_avg_pool2d(x: &Tensor, out: (usize, usize)) -> Result<Tensor> {
    let dims = x.dims();
    let &[_, _, h, w] = dims.as_slice() else {
        return Err(Error::invalid(
            "adaptive_avg_pool2d",
            format!("expected a 4-D input [N, C, H, W], got shape {}", x.shape()),
        ));
    };
    if out.0 == 0 || out.1 == 0 || h == 0 || w == 0 {
        return Err(Error::invalid(
            "adaptive_avg_pool2d",
            format!(
                "output size {out:?} and input shape {} must be non-empty",
                x.shape()
            ),
        ));
    }
    if out == (1, 1) {
        return global_avg_pool2d(x);
    }
    if h % out.0 == 0 && w % out.1 == 0 {
        let (kh, kw) = (h / out.0, w / out.1);
        let opts = AvgPool2dOptions {
            kernel: (kh, kw),
            ..AvgPool2dOptions::new(1)
        };
        return avg_pool2d(x, &opts);
    }
    let a_h = averaging_matrix(out.0, h, x)?; // [out_h, H]
    let a_w = averaging_matrix(out.1, w, x)?; // [out_w, W]
    a_h.matmul(x)?.matmul(&a_w.t()?)
}

/// `[m, n]`: row `i` averages inputs `⌊i·n/m⌋ .. ⌈(i + 1)·n/m⌉`.
fn averaging_matrix(m: usize, n: usize, like: &Tensor) -> Result<Tensor> {
    let mut a = vec![0.0; m * n];
    for i in 0..m {
        let (start, end) = (i * n / m, ((i + 1) * n).div_ceil(m));
        for v in &mut a[i * n + start..i * n + end] {
            *v = 1.0 / (end - start) as f64;
        }
    }
    let a = RawTensor::from_f64_vec(a, vec![m, n], like.dtype(), &like.device())?;
    Ok(Tensor::from_raw(a))
}

/// Global average pooling: the mean of each channel, `[N, C, H, W]` →
/// `[N, C, 1, 1]`; what a ResNet does before its classifier.
pub fn global_avg_pool2d(x: &Tensor) -> Result<Tensor> {
    if x.rank() != 4 {
        return Err(Error::invalid(
            "global_avg_pool2d",
            format!("expected a 4-D input [N, C, H, W], got shape {}", x.shape()),
        ));
    }
    x.mean(vec![2, 3], true)
}
// ANCHOR_END: adaptive_avg_pool
