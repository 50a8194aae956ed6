//! Helpers shared by the chapter 09 lessons: the device under test, seeded
//! inputs, and convolutions written as the plain loops of their
//! definitions, to check the im2col versions against.
#![allow(dead_code)]

use chapter_02::dispatch::call;
use chapter_02::CountingDevice;
use chapter_02::Generator;
use chapter_03::{DType, Device, RawTensor, Result, Tensor};
use chapter_09::conv::{ConvForward, ConvInputGrad, ConvWeightGrad};
use chapter_09::{Conv2dOptions, ConvGeometry};

/// The device the suite runs on: the one `CANDLE_DEVICE` names (default
/// `cpu`).
pub fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

/// Seeded standard-normal `f64` values on the device under test.
pub fn randn(shape: &[usize], seed: u64) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        1.0,
        shape,
        DType::F64,
        &dev(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

/// A constant autograd tensor of seeded normal values.
pub fn input(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_raw(randn(shape, seed))
}

/// Elementwise `|got − want| ≤ tol·(1 + |want|)`, naming the first bad element.
pub fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * (1.0 + w.abs()),
            "{what}: element {i}: got {g}, want {w}"
        );
    }
}

/// The message of an error the call must return.
pub fn err<T: std::fmt::Debug>(r: Result<T>) -> String {
    r.unwrap_err().to_string()
}

/// The input pixel `(row, column)` that tap `(i, j)` reads for output
/// pixel `(oh, ow)`, or `None` in the padding.
fn source(g: &ConvGeometry, oh: usize, ow: usize, i: usize, j: usize) -> Option<(usize, usize)> {
    let ih = (oh * g.stride.0 + i * g.dilation.0) as isize - g.pad_begin.0 as isize;
    let iw = (ow * g.stride.1 + j * g.dilation.1) as isize - g.pad_begin.1 as isize;
    let inside = (0..g.in_h as isize).contains(&ih) && (0..g.in_w as isize).contains(&iw);
    inside.then_some((ih as usize, iw as usize))
}

/// The convolution by its definition: for every output value, the sum over
/// the input channels of its group and the kernel taps.
pub fn conv2d_loops(g: &ConvGeometry, x: &[f64], w: &[f64], b: Option<&[f64]>) -> Vec<f64> {
    let (cg, og) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let (kh, kw) = g.kernel;
    let mut y = vec![0.0; g.batch * g.out_channels * g.out_h * g.out_w];
    for n in 0..g.batch {
        for o in 0..g.out_channels {
            let group = o / og;
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let mut acc = b.map_or(0.0, |b| b[o]);
                    for c in 0..cg {
                        let ch = group * cg + c;
                        for i in 0..kh {
                            for j in 0..kw {
                                if let Some((ih, iw)) = source(g, oh, ow, i, j) {
                                    let xv =
                                        x[((n * g.in_channels + ch) * g.in_h + ih) * g.in_w + iw];
                                    let wv = w[((o * cg + c) * kh + i) * kw + j];
                                    acc += xv * wv;
                                }
                            }
                        }
                    }
                    y[((n * g.out_channels + o) * g.out_h + oh) * g.out_w + ow] = acc;
                }
            }
        }
    }
    y
}

/// The transposed convolution by its definition: every value of `x`
/// (shaped like the convolution's output) scatters `x·w` onto the input
/// pixels its taps read.
pub fn conv_transpose2d_loops(
    g: &ConvGeometry,
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
) -> Vec<f64> {
    let (cg, og) = (g.in_channels / g.groups, g.out_channels / g.groups);
    let (kh, kw) = g.kernel;
    let plane = g.in_h * g.in_w;
    let mut y = vec![0.0; g.batch * g.in_channels * plane];
    for n in 0..g.batch {
        for ch in 0..g.in_channels {
            let v = b.map_or(0.0, |b| b[ch]);
            y[(n * g.in_channels + ch) * plane..][..plane].fill(v);
        }
        for o in 0..g.out_channels {
            let group = o / og;
            for oh in 0..g.out_h {
                for ow in 0..g.out_w {
                    let xv = x[((n * g.out_channels + o) * g.out_h + oh) * g.out_w + ow];
                    for c in 0..cg {
                        let ch = group * cg + c;
                        for i in 0..kh {
                            for j in 0..kw {
                                if let Some((ih, iw)) = source(g, oh, ow, i, j) {
                                    let wv = w[((o * cg + c) * kh + i) * kw + j];
                                    y[((n * g.in_channels + ch) * g.in_h + ih) * g.in_w + iw] +=
                                        xv * wv;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    y
}

/// The three CPU kernels of a convolution (forward, input gradient, weight
/// gradient) against their whole-batch composites on a device without
/// kernels: to 1e-12 in `f64` and to `f32` rounding (1e-4) in `f32`.
pub fn kernels_agree_with_composites(xs: &[usize], ws: &[usize], opts: &Conv2dOptions, seed: u64) {
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-4 };
        for (what, kernel, composite) in kernels_and_composites(xs, ws, opts, seed, dtype) {
            let what = format!("{what} {xs:?} {opts:?} {dtype:?}");
            assert_close(&kernel, &composite, tol, &what);
        }
    }
}

/// The forward pass, input gradient and weight gradient of one convolution
/// of random tensors in `dtype`, each by its CPU kernel and by its
/// composite on a device without kernels: `(what, kernel, composite)`.
pub fn kernels_and_composites(
    xs: &[usize],
    ws: &[usize],
    opts: &Conv2dOptions,
    seed: u64,
    dtype: DType,
) -> Vec<(&'static str, Vec<f64>, Vec<f64>)> {
    let geom = ConvGeometry::conv2d(xs, ws, None, opts).unwrap();
    let x = randn(xs, seed).to_dtype(dtype).unwrap();
    let w = randn(ws, seed + 1).to_dtype(dtype).unwrap();
    let dy = randn(geom.output_shape().dims(), seed + 2)
        .to_dtype(dtype)
        .unwrap();
    let counter = CountingDevice::new(Device::cpu());
    let on = |t: &RawTensor| t.to_device(counter.device()).unwrap();
    let pairs = [
        (
            "forward",
            call(&ConvForward(geom), &[&x, &w]),
            call(&ConvForward(geom), &[&on(&x), &on(&w)]),
        ),
        (
            "input gradient",
            call(&ConvInputGrad(geom), &[&dy, &w]),
            call(&ConvInputGrad(geom), &[&on(&dy), &on(&w)]),
        ),
        (
            "weight gradient",
            call(&ConvWeightGrad(geom), &[&x, &dy]),
            call(&ConvWeightGrad(geom), &[&on(&x), &on(&dy)]),
        ),
    ];
    pairs
        .into_iter()
        .map(|(what, kernel, composite)| {
            let (kernel, composite) = (kernel.unwrap().remove(0), composite.unwrap().remove(0));
            assert_eq!(kernel.shape(), composite.shape(), "{what} {xs:?}");
            (
                what,
                kernel.to_vec_f64().unwrap(),
                composite.to_vec_f64().unwrap(),
            )
        })
        .collect()
}
