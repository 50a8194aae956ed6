//! Lessons: pooling. Max pooling (indices, stride, padding, dilation, ceil
//! mode), average pooling (`count_include_pad`, ceil mode), adaptive and
//! global average pooling: values against the loops of their definitions,
//! the CPU kernel against the composite, gradients against finite
//! differences. `cargo test -p chapter-09 --test pool`.

mod common;

use chapter_02::dispatch::call;
use chapter_02::{CountingDevice, DType, Device};
use chapter_03::{gradcheck, GradcheckOptions, RawTensor, Tensor};
use chapter_09::pool::MaxPool2dForward;
use chapter_09::{
    adaptive_avg_pool2d, avg_pool2d, global_avg_pool2d, max_pool2d, max_pool2d_with_indices,
    AvgPool2dOptions, Pool2dOptions,
};
use common::*;
use proptest::prelude::*;

/// Convolutions and pooling are linear (or piecewise linear) in each
/// input, so central differences are exact up to rounding: a tolerance far
/// tighter than `gradcheck`'s default, which a 0.1% error in a gradient
/// would not pass.
const TIGHT: GradcheckOptions = GradcheckOptions {
    eps: 1e-6,
    atol: 1e-7,
    rtol: 1e-6,
    seed: 0,
};

/// The window of output `o` along one dimension, as input positions
/// (may lie in the padding: `< 0` or `≥ n`).
fn taps(o: usize, k: usize, s: usize, p: usize, d: usize) -> impl Iterator<Item = isize> {
    (0..k).map(move |i| (o * s + i * d) as isize - p as isize)
}

/// Output size by PyTorch's formula.
fn out_size(n: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
    let room = n + 2 * p - d * (k - 1) - 1;
    let mut out = if ceil { room.div_ceil(s) } else { room / s } + 1;
    if ceil && (out - 1) * s >= n + p {
        out -= 1;
    }
    out
}

/// Max pooling by its definition: `(values, indices)` per plane.
fn max_pool_loops(
    x: &[f64],
    dims: &[usize],
    o: &Pool2dOptions,
) -> (Vec<f64>, Vec<i64>, [usize; 2]) {
    let (h, w) = (dims[2], dims[3]);
    let s = o.stride.unwrap_or(o.kernel);
    let oh = out_size(h, o.kernel.0, s.0, o.padding.0, o.dilation.0, o.ceil_mode);
    let ow = out_size(w, o.kernel.1, s.1, o.padding.1, o.dilation.1, o.ceil_mode);
    let (mut vals, mut ids) = (vec![], vec![]);
    for plane in x.chunks(h * w) {
        for a in 0..oh {
            for b in 0..ow {
                let mut best = (f64::NEG_INFINITY, -1i64);
                for ih in taps(a, o.kernel.0, s.0, o.padding.0, o.dilation.0) {
                    for iw in taps(b, o.kernel.1, s.1, o.padding.1, o.dilation.1) {
                        if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < w {
                            let at = ih as usize * w + iw as usize;
                            if best.1 < 0 || plane[at] > best.0 {
                                best = (plane[at], at as i64);
                            }
                        }
                    }
                }
                vals.push(best.0);
                ids.push(best.1);
            }
        }
    }
    (vals, ids, [oh, ow])
}

/// Average pooling by its definition (PyTorch's divisor rules).
fn avg_pool_loops(x: &[f64], dims: &[usize], o: &AvgPool2dOptions) -> Vec<f64> {
    let (h, w) = (dims[2], dims[3]);
    let s = o.stride.unwrap_or(o.kernel);
    let (p, k) = (o.padding, o.kernel);
    let oh = out_size(h, k.0, s.0, p.0, 1, o.ceil_mode);
    let ow = out_size(w, k.1, s.1, p.1, 1, o.ceil_mode);
    let mut out = vec![];
    for plane in x.chunks(h * w) {
        for a in 0..oh {
            for b in 0..ow {
                let (mut sum, mut inside, mut padded) = (0.0, 0, 0);
                for ih in taps(a, k.0, s.0, p.0, 1) {
                    for iw in taps(b, k.1, s.1, p.1, 1) {
                        if ih < (h + p.0) as isize && iw < (w + p.1) as isize {
                            padded += 1;
                        }
                        if ih >= 0 && iw >= 0 && (ih as usize) < h && (iw as usize) < w {
                            sum += plane[ih as usize * w + iw as usize];
                            inside += 1;
                        }
                    }
                }
                out.push(sum / if o.count_include_pad { padded } else { inside } as f64);
            }
        }
    }
    out
}

/// A random pooling case: input shape and a window that fits.
fn pool_case() -> impl Strategy<Value = (Vec<usize>, Pool2dOptions)> {
    (
        (1usize..3, 1usize..3),
        (1usize..4, 1usize..4),
        (1usize..4, 1usize..4),
        (1usize..3, 1usize..3),
        (0usize..2, 0usize..2),
        (0usize..5, 0usize..5),
        any::<bool>(),
    )
        .prop_map(|((n, c), k, s, d, p, extra, ceil)| {
            let span = |k: usize, d: usize| d * (k - 1) + 1;
            // At most half the window of padding, as PyTorch requires.
            let p = (p.0.min(span(k.0, d.0) / 2), p.1.min(span(k.1, d.1) / 2));
            let h = span(k.0, d.0) + extra.0;
            let w = span(k.1, d.1) + extra.1;
            let opts = Pool2dOptions {
                kernel: k,
                stride: Some(s),
                padding: p,
                dilation: d,
                ceil_mode: ceil,
            };
            (vec![n, c, h, w], opts)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn max_pool2d_matches_the_definition((dims, opts) in pool_case()) {
        let x = input(&dims, 1);
        let (y, ids) = max_pool2d_with_indices(&x, &opts).unwrap();
        let (want, want_ids, [oh, ow]) = max_pool_loops(&x.to_vec_f64().unwrap(), &dims, &opts);
        prop_assert_eq!(y.dims(), vec![dims[0], dims[1], oh, ow]);
        prop_assert_eq!(ids.dtype(), DType::I64);
        prop_assert_eq!(y.to_vec_f64().unwrap(), want);
        prop_assert_eq!(ids.to_vec::<i64>().unwrap(), want_ids);
    }

    /// The CPU kernel of max pooling agrees with its composite (a counting
    /// device has no kernels), values and indices.
    #[test]
    fn max_pool2d_kernel_matches_the_composite((dims, opts) in pool_case()) {
        let x = RawTensor::randn(0.0, 1.0, dims.clone(), DType::F64, &Device::cpu()).unwrap();
        let (_, ids) = max_pool2d_with_indices(&Tensor::from_raw(x.clone()), &opts).unwrap();
        let (oh, ow) = (ids.dims()[2], ids.dims()[3]);
        let s = opts.stride.unwrap();
        let geom = chapter_09::ConvGeometry {
            batch: dims[0] * dims[1], in_channels: 1, in_h: dims[2], in_w: dims[3], out_channels: 1,
            kernel: opts.kernel, stride: s, pad_begin: opts.padding,
            pad_end: (((oh - 1) * s.0 + opts.dilation.0 * (opts.kernel.0 - 1) + 1).saturating_sub(dims[2] + opts.padding.0).max(opts.padding.0),
                      ((ow - 1) * s.1 + opts.dilation.1 * (opts.kernel.1 - 1) + 1).saturating_sub(dims[3] + opts.padding.1).max(opts.padding.1)),
            dilation: opts.dilation, groups: 1, out_h: oh, out_w: ow,
        };
        let counter = CountingDevice::new(Device::cpu());
        let kernel = call(&MaxPool2dForward(geom), &[&x]).unwrap();
        let composite = call(&MaxPool2dForward(geom), &[&x.to_device(counter.device()).unwrap()]).unwrap();
        prop_assert_eq!(kernel[0].to_vec_f64().unwrap(), composite[0].to_vec_f64().unwrap());
        prop_assert_eq!(kernel[1].to_vec::<i64>().unwrap(), composite[1].to_vec::<i64>().unwrap());
    }

    #[test]
    fn avg_pool2d_matches_the_definition((dims, opts) in pool_case(), include in any::<bool>()) {
        let a = AvgPool2dOptions {
            kernel: opts.kernel,
            stride: opts.stride,
            padding: (opts.padding.0.min(opts.kernel.0 / 2), opts.padding.1.min(opts.kernel.1 / 2)),
            ceil_mode: opts.ceil_mode,
            count_include_pad: include,
        };
        let dims = vec![dims[0], dims[1], dims[2].max(opts.kernel.0), dims[3].max(opts.kernel.1)];
        let x = input(&dims, 2);
        let y = avg_pool2d(&x, &a).unwrap();
        let want = avg_pool_loops(&x.to_vec_f64().unwrap(), &dims, &a);
        assert_close(&y.to_vec_f64().unwrap(), &want, 1e-12, "avg_pool2d");
    }

    /// Adaptive pooling's windows: `⌊i·H/m⌋ .. ⌈(i + 1)·H/m⌉`.
    #[test]
    fn adaptive_avg_pool2d_matches_the_definition(h in 1usize..9, w in 1usize..9, m in 1usize..5, n in 1usize..5) {
        let x = input(&[2, 2, h, w], 3);
        let y = adaptive_avg_pool2d(&x, (m, n)).unwrap();
        prop_assert_eq!(y.dims(), vec![2, 2, m, n]);
        let xv = x.to_vec_f64().unwrap();
        let mut want = vec![];
        for plane in xv.chunks(h * w) {
            for i in 0..m {
                for j in 0..n {
                    let (r0, r1) = (i * h / m, ((i + 1) * h).div_ceil(m));
                    let (c0, c1) = (j * w / n, ((j + 1) * w).div_ceil(n));
                    let sum: f64 = (r0..r1).flat_map(|r| (c0..c1).map(move |c| plane[r * w + c])).sum();
                    want.push(sum / ((r1 - r0) * (c1 - c0)) as f64);
                }
            }
        }
        assert_close(&y.to_vec_f64().unwrap(), &want, 1e-12, "adaptive_avg_pool2d");
    }
}

fn check(f: impl Fn(&Tensor) -> chapter_03::Result<Tensor>, dims: &[usize], seed: u64) {
    gradcheck(|t| f(&t[0]), &[randn(dims, seed)], TIGHT).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn max_pool2d_gradcheck() {
    // Random normal inputs have no ties, so the maximum is differentiable.
    check(|x| max_pool2d(x, &Pool2dOptions::new(2)), &[2, 2, 4, 4], 4);
    check(
        |x| max_pool2d(x, &Pool2dOptions::new(3).stride(2).padding(1)),
        &[1, 2, 7, 7],
        5,
    );
    check(
        |x| max_pool2d(x, &Pool2dOptions::new(2).stride(1).dilation(2)),
        &[1, 2, 5, 6],
        6,
    );
    check(
        |x| max_pool2d(x, &Pool2dOptions::new(2).ceil_mode(true)),
        &[1, 2, 5, 5],
        7,
    );
}

#[test]
fn max_pool2d_overlapping_windows_add_their_gradients() {
    // Stride 1, kernel 2 over [[0, 0, 0], [0, 9, 0], [0, 0, 0]]: every
    // window picks the 9, so it receives all four gradients.
    let mut v = vec![0.0; 9];
    v[4] = 9.0;
    let x = Tensor::from_vec(v, [1, 1, 3, 3], &dev())
        .unwrap()
        .requires_grad_()
        .unwrap();
    let y = max_pool2d(&x, &Pool2dOptions::new(2).stride(1)).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    let g = x.grad().unwrap().to_vec_f64().unwrap();
    assert_eq!(g, vec![0.0, 0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
}

#[test]
fn avg_pool2d_gradcheck() {
    check(
        |x| avg_pool2d(x, &AvgPool2dOptions::new(2)),
        &[2, 2, 4, 4],
        8,
    );
    let o = AvgPool2dOptions::new(3).stride(2).padding(1);
    check(|x| avg_pool2d(x, &o), &[1, 2, 7, 7], 9);
    check(
        |x| avg_pool2d(x, &o.count_include_pad(false)),
        &[1, 2, 7, 6],
        10,
    );
    check(
        |x| avg_pool2d(x, &AvgPool2dOptions::new(2).ceil_mode(true)),
        &[1, 2, 5, 5],
        11,
    );
}

#[test]
fn adaptive_and_global_avg_pool2d_gradcheck() {
    check(|x| adaptive_avg_pool2d(x, (2, 2)), &[1, 2, 6, 6], 12);
    check(|x| adaptive_avg_pool2d(x, (3, 2)), &[1, 2, 5, 7], 13);
    check(global_avg_pool2d, &[2, 3, 3, 4], 14);
}

#[test]
fn global_avg_pool2d_is_the_channel_mean() {
    let x = Tensor::from_vec(
        (0..8).map(f64::from).collect::<Vec<_>>(),
        [1, 2, 2, 2],
        &dev(),
    )
    .unwrap();
    let y = global_avg_pool2d(&x).unwrap();
    assert_eq!(y.dims(), vec![1, 2, 1, 1]);
    assert_eq!(y.to_vec_f64().unwrap(), vec![1.5, 5.5]);
    assert_eq!(
        adaptive_avg_pool2d(&x, (1, 1))
            .unwrap()
            .to_vec_f64()
            .unwrap(),
        vec![1.5, 5.5]
    );
}
