//! A direct kernel for depthwise convolutions.
//!
//! When every group has one input channel (`groups = C`, MobileNet's
//! depthwise filters), im2col is a poor trade: each group's "matrix
//! product" has `O/G` rows, usually one, so it is a matrix-vector product
//! that reads the `kh·kw`-times-larger patch matrix once. The copy costs
//! more than the arithmetic it feeds. Sliding the kernel over the input
//! directly reads the input `kh·kw` times from cache instead, and writes
//! no patch matrix at all. The composite (im2col and the GEMMs) remains
//! the version for every other device.

use super::geometry::ConvGeometry;
use super::im2col::{for_chunks, valid_columns, ConvFloat, Im2col};
use chapter_02::dispatch::call;
use chapter_02::{DType, DeviceKind, Error, Kernel, Operator, Result, Tensor as RawTensor};
use chapter_04::row_kernels::in_compute_dtype;

// ANCHOR: depthwise
/// A depthwise convolution without bias: inputs `x: [N, C, H, W]` and
/// `weight: [O, 1, kh, kw]` with `groups = C` (each output channel `o`
/// reads input channel `o / (O/C)`), output `[N, O, out_h, out_w]`.
pub struct DepthwiseConv2d(pub ConvGeometry);

impl ConvGeometry {
    /// Whether every group has exactly one input channel.
    pub fn is_depthwise(&self) -> bool {
        self.groups == self.in_channels
    }
}

impl Operator for DepthwiseConv2d {
    fn name(&self) -> &'static str {
        "depthwise_conv2d"
    }
    fn check(&self, inputs: &[&RawTensor]) -> Result<()> {
        let g = &self.0;
        g.validate("depthwise_conv2d")?;
        match inputs {
            [x, w]
                if g.is_depthwise()
                    && x.dtype().is_float()
                    && w.dtype() == x.dtype()
                    && *x.shape() == g.input_shape()
                    && *w.shape() == g.weight_shape() =>
            {
                Ok(())
            }
            _ => Err(Error::invalid(
                "depthwise_conv2d",
                "expects an input and a weight of one float dtype matching its depthwise geometry",
            )),
        }
    }
    /// The general lowering: im2col and one (one-row) GEMM per group.
    fn composite(&self, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
        let g = &self.0;
        let cols = call(&Im2col(*g), &[inputs[0]])?.remove(0);
        let w = inputs[1].reshape([g.groups, g.out_channels / g.groups, g.col_rows()])?;
        let y = w
            .matmul(&cols)?
            .reshape([g.out_channels, g.batch, g.out_h, g.out_w])?
            .permute(&[1, 0, 2, 3])?
            .contiguous()?;
        Ok(vec![y])
    }
    fn builtin_kernels() -> Vec<(DeviceKind, Kernel<Self>)> {
        vec![(DeviceKind::CPU, depthwise_cpu)]
    }
}

/// Each output plane `(n, o)` is one task: for each tap `(i, j)`, add
/// `w[o, i, j]` times the shifted input plane to it, a row at a time (at
/// stride 1 the inner loop is a contiguous multiply-add that vectorises).
/// `out` starts at zero.
fn depthwise_planes<T: ConvFloat>(g: &ConvGeometry, x: &[T], w: &[T], out: &mut [T]) {
    let (kh, kw) = g.kernel;
    let (sh, sw) = g.stride;
    let (h, wd) = (g.in_h, g.in_w);
    let multiplier = g.out_channels / g.in_channels;
    let plane = g.out_h * g.out_w;
    for_chunks(out, plane, |p, dst| {
        let (n, o) = (p / g.out_channels, p % g.out_channels);
        let src = &x[(n * g.in_channels + o / multiplier) * h * wd..][..h * wd];
        let taps = &w[o * kh * kw..][..kh * kw];
        for i in 0..kh {
            for j in 0..kw {
                let wv = taps[i * kw + j];
                let off_w = (j * g.dilation.1) as isize - g.pad_begin.1 as isize;
                let valid = valid_columns(g.out_w, sw, off_w, wd);
                if valid.is_empty() {
                    continue;
                }
                for oh in 0..g.out_h {
                    let ih = (oh * sh + i * g.dilation.0) as isize - g.pad_begin.0 as isize;
                    if ih < 0 || ih >= h as isize {
                        continue;
                    }
                    let src_row = &src[ih as usize * wd..][..wd];
                    let dst_row = &mut dst[oh * g.out_w..][..g.out_w];
                    if sw == 1 {
                        let start = (valid.start as isize + off_w) as usize;
                        let s = &src_row[start..start + valid.len()];
                        for (d, &v) in dst_row[valid.clone()].iter_mut().zip(s) {
                            *d += wv * v;
                        }
                    } else {
                        for ow in valid.clone() {
                            dst_row[ow] +=
                                wv * src_row[(ow as isize * sw as isize + off_w) as usize];
                        }
                    }
                }
            }
        }
    });
}
// ANCHOR_END: depthwise

fn depthwise_cpu(op: &DepthwiseConv2d, inputs: &[&RawTensor]) -> Result<Vec<RawTensor>> {
    let g = op.0;
    let (x, w) = (inputs[0].contiguous()?, inputs[1].contiguous()?);
    in_compute_dtype(&[&x, &w], |t| {
        let (x, w) = (t[0], t[1]);
        // From the buffer pool, zeroed: no fresh pages at every step.
        let mut y = RawTensor::zeros(g.output_shape(), x.dtype(), x.device())?;
        match x.dtype() {
            DType::F32 => depthwise_planes(
                &g,
                x.host_slice::<f32>()?,
                w.host_slice::<f32>()?,
                y.host_slice_mut::<f32>()?,
            ),
            DType::F64 => depthwise_planes(
                &g,
                x.host_slice::<f64>()?,
                w.host_slice::<f64>()?,
                y.host_slice_mut::<f64>()?,
            ),
            dtype => {
                return Err(Error::UnsupportedDType {
                    op: "depthwise_conv2d",
                    dtype,
                })
            }
        }
        Ok(vec![y])
    })
}
