//! im2col and col2im: a convolution turned into a matrix product.
//!
//! A convolution computes, for every output pixel, a dot product between
//! the kernel and the patch of input under it. Copy every patch into a
//! column of a matrix (*im2col*) and all those dot products become one
//! matrix product with the kernel matrix, which a GEMM computes at close to
//! the machine's peak. The price is memory: each input pixel is copied once
//! per kernel tap that reads it, `kh·kw/(s_h·s_w)` times.
//!
//! *col2im* is the adjoint: it adds every entry of such a matrix back onto
//! the input pixel it was copied from. It is how the gradient of the
//! patches becomes the gradient of the input, and it is the whole of a
//! transposed convolution.
//!
//! Both are registry operators (chapter 02): a composite made of views,
//! copies and `index_add` that runs on any device, and a CPU kernel that
//! writes the matrix in one pass.

use super::geometry::ConvGeometry;
use chapter_02::dispatch::call;
use chapter_02::{DType, DeviceKind, Error, Kernel, Operator, Result, Shape, Tensor as RawTensor};
use chapter_03::{BackwardCtx, CustomOp, Tensor};
use chapter_04::row_kernels::in_compute_dtype;
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx512;

/// Below this many elements a kernel runs on one thread.
const PARALLEL_MIN: usize = 1 << 15;

// ANCHOR: im2col_view
impl ConvGeometry {
    /// The padded input `[N, C, H + pads, W + pads]` (zeros around `x`), or
    /// `x` itself when there is no padding.
    fn padded(&self, x: &RawTensor) -> Result<RawTensor> {
        let (pt, pl) = self.pad_begin;
        let (pb, pr) = self.pad_end;
        if pt + pl + pb + pr == 0 {
            return x.contiguous();
        }
        let (n, c, h, w) = (self.batch, self.in_channels, self.in_h, self.in_w);
        RawTensor::zeros([n, c, h + pt + pb, w + pl + pr], x.dtype(), x.device())?
            .slice_assign(&[0..n, 0..c, pt..pt + h, pl..pl + w], x)
    }

    /// im2col as a *view* of the padded input `p` (contiguous): shape
    /// `[groups, C/groups, kh, kw, N, out_h, out_w]`, where element
    /// `(g, c, i, j, n, oh, ow)` is `p[n, g·C/groups + c, oh·s_h + i·d_h,
    /// ow·s_w + j·d_w]`. Every index is a multiple of a stride, so strides
    /// alone express the patch matrix; copying the view to contiguous
    /// memory *is* im2col.
    fn patch_view(&self, p: &RawTensor) -> Result<RawTensor> {
        let (c, hp, wp) = (p.dims()[1], p.dims()[2], p.dims()[3]);
        let cg = c / self.groups;
        let (kh, kw) = self.kernel;
        let shape = [self.groups, cg, kh, kw, self.batch, self.out_h, self.out_w];
        let strides = [
            cg * hp * wp,
            hp * wp,
            self.dilation.0 * wp,
            self.dilation.1,
            c * hp * wp,
            self.stride.0 * wp,
            self.stride.1,
        ];
        p.as_strided(shape, &strides, p.layout().offset())
    }
}
// ANCHOR_END: im2col_view

// ANCHOR: im2col_operator
/// `x: [N, C, H, W]` → the patch matrix `[groups, (C/groups)·kh·kw,
/// N·out_h·out_w]`: row `(c, i, j)` of group `g` holds, for every output
/// pixel, the input value tap `(i, j)` of channel `g·C/groups + c` reads.
pub struct Im2col(pub ConvGeometry);

impl Operator for Im2col {
    fn name(&self) -> &'static str {
        "im2col"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        self.0.validate("im2col")?;
        check_one_float("im2col", inputs, &self.0.input_shape())
    }
    fn composite(&self, x: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let patches = g.patch_view(&g.padded(x[0])?)?.contiguous()?;
        Ok(vec![patches.reshape(g.cols_shape())?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, im2col_cpu)]
    }
}

/// `cols: [groups, (C/groups)·kh·kw, N·out_h·out_w]` → `[N, C, H, W]`, each
/// entry added onto the input pixel [`Im2col`] copied it from. The adjoint
/// of `Im2col`: `⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩`.
pub struct Col2im(pub ConvGeometry);

impl Operator for Col2im {
    fn name(&self) -> &'static str {
        "col2im"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        self.0.validate("col2im")?;
        check_one_float("col2im", inputs, &self.0.cols_shape())
    }
    /// Where each entry goes is im2col applied to the *positions*: the
    /// patch view of `arange` over the padded input gives, for every entry
    /// of the matrix, the flat index of its pixel; `index_add` then adds
    /// every entry there, and the padding is cut off.
    fn composite(&self, cols: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let (pt, pl) = g.pad_begin;
        let (hp, wp) = (g.in_h + pt + g.pad_end.0, g.in_w + pl + g.pad_end.1);
        let dev = cols[0].device();
        let n = g.batch * g.in_channels * hp * wp;
        let positions = RawTensor::arange(0.0, n as f64, 1.0, DType::I64, dev)?.reshape([
            g.batch,
            g.in_channels,
            hp,
            wp,
        ])?;
        let index = g.patch_view(&positions)?.contiguous()?.flatten(0, -1)?;
        let src = cols[0].contiguous()?.flatten(0, -1)?;
        let summed = RawTensor::zeros(n, cols[0].dtype(), dev)?
            .index_add(&index, &src, 0)?
            .reshape([g.batch, g.in_channels, hp, wp])?;
        let x = summed.narrow(2, pt, g.in_h)?.narrow(3, pl, g.in_w)?;
        Ok(vec![x.contiguous()?])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, col2im_cpu)]
    }
}
// ANCHOR_END: im2col_operator

/// One float tensor of shape `want`, or an error naming `op`.
fn check_one_float(op: &'static str, inputs: &[&RawTensor], want: &Shape) -> Result<()> {
    let [x] = inputs else {
        return Err(Error::invalid(
            op,
            format!("takes 1 tensor, got {}", inputs.len()),
        ));
    };
    if !x.dtype().is_float() {
        return Err(Error::UnsupportedDType {
            op,
            dtype: x.dtype(),
        });
    }
    if x.shape() != want {
        return Err(Error::ShapeMismatch {
            op,
            lhs: x.shape().clone(),
            rhs: want.clone(),
            detail: " (input does not match the convolution's geometry)".into(),
        });
    }
    Ok(())
}

/// The element types of the CPU kernels.
pub(crate) trait ConvFloat:
    chapter_02::WithDType
    + std::ops::AddAssign
    + std::ops::Add<Output = Self>
    + std::ops::Sub<Output = Self>
    + std::ops::Mul<Output = Self>
{
    /// The slice as `f32` values where `Self` is `f32`: for the kernels
    /// written for one type (Winograd's AVX-512 transforms).
    fn as_f32(values: &[Self]) -> Option<&[f32]> {
        let _ = values;
        None
    }

    /// [`ConvFloat::as_f32`] for a mutable slice.
    fn as_f32_mut(values: &mut [Self]) -> Option<&mut [f32]> {
        let _ = values;
        None
    }
}
impl ConvFloat for f32 {
    fn as_f32(values: &[f32]) -> Option<&[f32]> {
        Some(values)
    }

    fn as_f32_mut(values: &mut [f32]) -> Option<&mut [f32]> {
        Some(values)
    }
}
impl ConvFloat for f64 {}

/// `f(T)` for `f32`/`f64` tensors, half types widened to `f32`.
pub(crate) fn by_dtype(
    op: &'static str,
    inputs: &[&RawTensor],
    f32_kernel: impl Fn(&RawTensor) -> Result<RawTensor>,
    f64_kernel: impl Fn(&RawTensor) -> Result<RawTensor>,
) -> Result<Vec<RawTensor>> {
    let x = inputs[0].contiguous()?;
    in_compute_dtype(&[&x], |x| {
        Ok(vec![match x[0].dtype() {
            DType::F32 => f32_kernel(x[0])?,
            DType::F64 => f64_kernel(x[0])?,
            dtype => return Err(Error::UnsupportedDType { op, dtype }),
        }])
    })
}

/// Runs `f(index, chunk)` on each `len`-sized chunk of `out`, in parallel
/// when `out` is large.
pub(crate) fn for_chunks<T: Send>(out: &mut [T], len: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if len == 0 {
        return;
    }
    if out.len() < PARALLEL_MIN {
        out.chunks_mut(len).enumerate().for_each(|(i, c)| f(i, c));
    } else {
        out.par_chunks_mut(len)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

/// The output columns `ow` whose input column `ow·s + off` lies in `0..w`.
#[inline]
pub(crate) fn valid_columns(
    out_w: usize,
    s: usize,
    off: isize,
    w: usize,
) -> std::ops::Range<usize> {
    // ow·s + off ≥ 0  ⇔  ow ≥ ⌈−off/s⌉;   ow·s + off ≤ w − 1  ⇔  ow ≤ ⌊(w − 1 − off)/s⌋.
    let lo = if off >= 0 {
        0
    } else {
        ((-off) as usize).div_ceil(s)
    };
    let last = w as isize - 1 - off;
    let hi = if last < 0 {
        0
    } else {
        (last as usize / s + 1).min(out_w)
    };
    lo.min(hi)..hi
}

// ANCHOR: im2col_cpu
/// im2col on the CPU: one pass that writes each row of the patch matrix
/// (one (channel, tap) pair, all output pixels) contiguously; the rows are
/// independent, so they are split over the cores.
fn im2col_rows<T: ConvFloat>(g: &ConvGeometry, x: &[T]) -> Vec<T> {
    let (kh, kw) = g.kernel;
    let (h, w) = (g.in_h, g.in_w);
    let (rows, cols) = (g.groups * g.col_rows(), g.col_cols());
    let plane = g.out_h * g.out_w;
    let mut out = vec![T::default(); rows * cols];
    for_chunks(&mut out, cols, |r, row| {
        // Row r = (channel ch, tap (i, j)): rows of a group are (c, i, j)
        // in that order, and groups follow each other, so ch = r / (kh·kw).
        let (ch, i, j) = (r / (kh * kw), r / kw % kh, r % kw);
        for n in 0..g.batch {
            let src = &x[(n * g.in_channels + ch) * h * w..][..h * w];
            tap_row(g, src, (i, j), &mut row[n * plane..][..plane]);
        }
    });
    out
}

/// One image's part of one row of the patch matrix: for every output pixel
/// `(oh, ow)`, the value that tap `(i, j)` reads from the input plane `src`
/// (`in_h × in_w`), zero where it falls in the padding. Every element of
/// `dst` (`out_h × out_w`) is written; at stride 1 a row of taps is one
/// `memcpy`. In AVX-512 registers where the CPU has them and the rows fit
/// (see `im2col/avx512.rs`).
pub(crate) fn tap_row<T: ConvFloat>(
    g: &ConvGeometry,
    src: &[T],
    (i, j): (usize, usize),
    dst: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(src32), Some(dst32)) = (T::as_f32(src), T::as_f32_mut(dst)) {
        if avx512::tap_row(g, src32, (i, j), dst32) {
            return;
        }
    }
    portable_tap_row(g, src, (i, j), dst);
}

/// [`tap_row`] without registers: a row at a time, at stride 1 by a copy.
fn portable_tap_row<T: ConvFloat>(
    g: &ConvGeometry,
    src: &[T],
    (i, j): (usize, usize),
    dst: &mut [T],
) {
    let (sh, sw) = g.stride;
    let (dh, dw) = g.dilation;
    let (h, w) = (g.in_h, g.in_w);
    let off_w = (j * dw) as isize - g.pad_begin.1 as isize;
    let valid = valid_columns(g.out_w, sw, off_w, w);
    for (oh, dst_row) in dst.chunks_exact_mut(g.out_w).enumerate() {
        let ih = (oh * sh + i * dh) as isize - g.pad_begin.0 as isize;
        if ih < 0 || ih >= h as isize || valid.is_empty() {
            dst_row.fill(T::default());
            continue;
        }
        let src_row = &src[ih as usize * w..][..w];
        dst_row[..valid.start].fill(T::default());
        dst_row[valid.end..].fill(T::default());
        if sw == 1 {
            let start = (valid.start as isize + off_w) as usize;
            dst_row[valid.clone()].copy_from_slice(&src_row[start..start + valid.len()]);
        } else {
            for ow in valid.clone() {
                dst_row[ow] = src_row[(ow as isize * sw as isize + off_w) as usize];
            }
        }
    }
}

// ANCHOR_END: im2col_cpu

// ANCHOR: col2im_cpu
/// col2im on the CPU: each (image, channel) plane of the result is one
/// task, which visits the `kh·kw` rows of the patch matrix that came from
/// it and adds them back; planes are disjoint, so no two threads ever add
/// into the same pixel.
fn col2im_planes<T: ConvFloat>(g: &ConvGeometry, cols: &[T]) -> Vec<T> {
    let (h, w) = (g.in_h, g.in_w);
    let (ncols, plane) = (g.col_cols(), g.out_h * g.out_w);
    let mut out = vec![T::default(); g.batch * g.in_channels * h * w];
    for_chunks(&mut out, h * w, |p, dst| {
        let (n, ch) = (p / g.in_channels, p % g.in_channels);
        add_taps_to_plane(g, cols, ncols, n * plane, ch, dst);
    });
    out
}

/// Adds back onto `dst`, the input plane of channel `ch` (`in_h × in_w`),
/// the `kh·kw` rows of the patch matrix `cols` (rows of `ncols` entries)
/// that were copied from it, each row read from column `first` on. In
/// AVX-512 registers where they apply, like [`tap_row`].
pub(crate) fn add_taps_to_plane<T: ConvFloat>(
    g: &ConvGeometry,
    cols: &[T],
    ncols: usize,
    first: usize,
    ch: usize,
    dst: &mut [T],
) {
    #[cfg(target_arch = "x86_64")]
    if let (Some(cols32), Some(dst32)) = (T::as_f32(cols), T::as_f32_mut(dst)) {
        if avx512::add_taps_to_plane(g, cols32, (ncols, first), ch, dst32) {
            return;
        }
    }
    portable_add_taps_to_plane(g, cols, ncols, first, ch, dst);
}

/// [`add_taps_to_plane`] without registers.
fn portable_add_taps_to_plane<T: ConvFloat>(
    g: &ConvGeometry,
    cols: &[T],
    ncols: usize,
    first: usize,
    ch: usize,
    dst: &mut [T],
) {
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    let (dh, dw) = g.dilation;
    let (h, w) = (g.in_h, g.in_w);
    let plane = g.out_h * g.out_w;
    for i in 0..kh {
        for j in 0..kw {
            let r = (ch * kh + i) * kw + j;
            let src = &cols[r * ncols + first..][..plane];
            let off_w = (j * dw) as isize - g.pad_begin.1 as isize;
            let valid = valid_columns(g.out_w, sw, off_w, w);
            if valid.is_empty() {
                continue; // this tap reads only padding
            }
            for oh in 0..g.out_h {
                let ih = (oh * sh + i * dh) as isize - g.pad_begin.0 as isize;
                if ih < 0 || ih >= h as isize {
                    continue;
                }
                let dst_row = &mut dst[ih as usize * w..][..w];
                let src_row = &src[oh * g.out_w..][..g.out_w];
                if sw == 1 {
                    let start = (valid.start as isize + off_w) as usize;
                    let d = &mut dst_row[start..start + valid.len()];
                    for (d, &s) in d.iter_mut().zip(&src_row[valid.clone()]) {
                        *d += s;
                    }
                } else {
                    for ow in valid.clone() {
                        dst_row[(ow as isize * sw as isize + off_w) as usize] += src_row[ow];
                    }
                }
            }
        }
    }
}
// ANCHOR_END: col2im_cpu

fn im2col_cpu(op: &Im2col, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    let g = op.0;
    by_dtype(
        "im2col",
        inputs,
        |x| {
            let v = im2col_rows(&g, x.host_slice::<f32>()?);
            RawTensor::from_host_vec(v, g.cols_shape(), x.device())
        },
        |x| {
            let v = im2col_rows(&g, x.host_slice::<f64>()?);
            RawTensor::from_host_vec(v, g.cols_shape(), x.device())
        },
    )
}

fn col2im_cpu(op: &Col2im, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    let g = op.0;
    by_dtype(
        "col2im",
        inputs,
        |c| {
            let v = col2im_planes(&g, c.host_slice::<f32>()?);
            RawTensor::from_host_vec(v, g.input_shape(), c.device())
        },
        |c| {
            let v = col2im_planes(&g, c.host_slice::<f64>()?);
            RawTensor::from_host_vec(v, g.input_shape(), c.device())
        },
    )
}

// ANCHOR: unfold_fold
/// im2col as a differentiable operation. Its backward is col2im: each patch
/// entry is a copy of one input pixel, so the pixel's gradient is the sum
/// of its copies' gradients.
struct Unfold(ConvGeometry);

impl CustomOp for Unfold {
    fn name(&self) -> &'static str {
        "unfold"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        Ok(call(&Im2col(self.0), x)?.remove(0))
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(fold(g, &self.0)?)])
    }
}

/// col2im as a differentiable operation. Its backward is im2col: the
/// adjoint of the adjoint is the map itself.
struct Fold(ConvGeometry);

impl CustomOp for Fold {
    fn name(&self) -> &'static str {
        "fold"
    }
    fn forward(&self, cols: &[&RawTensor]) -> Result<RawTensor> {
        Ok(call(&Col2im(self.0), cols)?.remove(0))
    }
    fn backward(&self, _: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        Ok(vec![Some(unfold(g, &self.0)?)])
    }
}

/// `x: [N, C, H, W]` → the patch matrix `[groups, (C/groups)·kh·kw,
/// N·out_h·out_w]` of `geometry` (PyTorch's `F.unfold`, laid out for one
/// GEMM per group).
pub fn unfold(x: &Tensor, geometry: &ConvGeometry) -> Result<Tensor> {
    Tensor::apply(Unfold(*geometry), &[x])
}

/// The adjoint of [`unfold`]: `cols` → `[N, C, H, W]`, overlapping patches
/// summed (PyTorch's `F.fold`).
pub fn fold(cols: &Tensor, geometry: &ConvGeometry) -> Result<Tensor> {
    Tensor::apply(Fold(*geometry), &[cols])
}
// ANCHOR_END: unfold_fold
