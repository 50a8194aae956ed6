//! Lessons: convolutions through im2col. The forward pass must agree with
//! the plain loops of the definition for every option (stride, padding,
//! `same`, dilation, groups), the CPU kernels of im2col/col2im with their
//! composites, and every gradient with finite differences (f64
//! `gradcheck`), second derivatives included. `cargo test -p chapter-09 --test conv`.

mod common;

use chapter_02::dispatch::call;
use chapter_02::{CountingDevice, Device};
use chapter_03::{
    grad, gradcheck, set_grad_enabled, BackwardOptions, GradcheckOptions, RawTensor, Tensor,
};
use chapter_09::conv::{
    Col2im, ConvForward, ConvInputGrad, ConvWeightGrad, DepthwiseConv2d, Im2col,
};
use chapter_09::{
    conv2d, conv_transpose2d, Conv2dOptions, ConvGeometry, ConvTranspose2dOptions, Padding,
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

/// A random convolution: shapes and options that fit together.
#[derive(Debug, Clone)]
struct Case {
    x: Vec<usize>,
    w: Vec<usize>,
    opts: Conv2dOptions,
}

fn conv_case() -> impl Strategy<Value = Case> {
    (
        (1usize..3, 1usize..3, 1usize..3, 1usize..3), // n, groups, c/g, o/g
        (1usize..4, 1usize..4),                       // kernel
        (1usize..4, 1usize..4),                       // stride
        (1usize..3, 1usize..3),                       // dilation
        (0usize..3, 0usize..3),                       // padding
        (0usize..5, 0usize..5),                       // extra input size
        any::<bool>(),                                // padding 'same'
    )
        .prop_map(|((n, g, cg, og), (kh, kw), s, d, p, extra, same)| {
            let padding = if same {
                Padding::Same
            } else {
                Padding::Explicit(p.0, p.1)
            };
            let stride = if same { (1, 1) } else { s };
            let fit = |k: usize, d: usize, p: usize, e: usize| {
                (d * (k - 1) + 1).saturating_sub(2 * p).max(1) + e
            };
            Case {
                x: vec![
                    n,
                    g * cg,
                    fit(kh, d.0, p.0, extra.0),
                    fit(kw, d.1, p.1, extra.1),
                ],
                w: vec![g * og, cg, kh, kw],
                opts: Conv2dOptions {
                    stride,
                    padding,
                    dilation: d,
                    groups: g,
                },
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Shape and values of `conv2d` are those of the definition, for any
    /// combination of the options.
    #[test]
    fn conv2d_matches_the_definition_for_every_option(case in conv_case(), bias in any::<bool>()) {
        let (x, w) = (input(&case.x, 1), input(&case.w, 2));
        let b = bias.then(|| input(&[case.w[0]], 3));
        let g = ConvGeometry::conv2d(&case.x, &case.w, b.as_ref().map(|b| b.dims()).as_deref(), &case.opts).unwrap();
        let y = conv2d(&x, &w, b.as_ref(), &case.opts).unwrap();
        prop_assert_eq!(y.dims(), g.output_shape().dims().to_vec());
        let bv = b.as_ref().map(|b| b.to_vec_f64().unwrap());
        let want = conv2d_loops(&g, &x.to_vec_f64().unwrap(), &w.to_vec_f64().unwrap(), bv.as_deref());
        assert_close(&y.to_vec_f64().unwrap(), &want, 1e-12, "conv2d");
    }

    /// With `padding: Same` (stride 1) the output keeps the input's size,
    /// odd or even kernel, any dilation.
    #[test]
    fn conv2d_same_padding_keeps_the_size(h in 1usize..8, w in 1usize..8, k in 1usize..5, d in 1usize..3) {
        let x = input(&[1, 2, h, w], 4);
        let wt = input(&[3, 2, k, k], 5);
        let opts = Conv2dOptions { padding: Padding::Same, dilation: (d, d), ..Default::default() };
        prop_assert_eq!(conv2d(&x, &wt, None, &opts).unwrap().dims(), vec![1, 3, h, w]);
    }

    /// conv_transpose2d is the definition's scatter, with output padding.
    #[test]
    fn conv_transpose2d_matches_the_definition(case in conv_case(), op in (0usize..3, 0usize..3), bias in any::<bool>()) {
        prop_assume!(case.opts.padding != Padding::Same);
        let Padding::Explicit(ph, pw) = case.opts.padding else { unreachable!() };
        let o = &case.opts;
        let output_padding = (op.0 % o.stride.0.max(o.dilation.0), op.1 % o.stride.1.max(o.dilation.1));
        let opts = ConvTranspose2dOptions { stride: o.stride, padding: (ph, pw), output_padding, dilation: o.dilation, groups: o.groups };
        // The transposed convolution's input has the convolution's output shape.
        let (n, c_in) = (case.x[0], case.w[0]);
        let wt_dims = vec![c_in, case.w[1], case.w[2], case.w[3]];
        let xs = vec![n, c_in, case.x[2].min(4), case.x[3].min(4)];
        let (x, w) = (input(&xs, 6), input(&wt_dims, 7));
        let b = bias.then(|| input(&[case.w[1] * o.groups], 8));
        let geom = ConvGeometry::conv_transpose2d(&xs, &wt_dims, b.as_ref().map(|b| b.dims()).as_deref(), &opts);
        let Ok(g) = geom else {
            // Padding larger than the output: an error, never a panic.
            prop_assert!(conv_transpose2d(&x, &w, b.as_ref(), &opts).is_err());
            return Ok(());
        };
        let y = conv_transpose2d(&x, &w, b.as_ref(), &opts).unwrap();
        prop_assert_eq!(y.dims(), g.input_shape().dims().to_vec());
        let bv = b.as_ref().map(|b| b.to_vec_f64().unwrap());
        let want = conv_transpose2d_loops(&g, &x.to_vec_f64().unwrap(), &w.to_vec_f64().unwrap(), bv.as_deref());
        assert_close(&y.to_vec_f64().unwrap(), &want, 1e-12, "conv_transpose2d");
    }

    /// The CPU kernels of im2col and col2im agree with their composites
    /// (run on a counting device, which has no kernels).
    #[test]
    fn im2col_kernels_match_the_composites(case in conv_case()) {
        let g = ConvGeometry::conv2d(&case.x, &case.w, None, &case.opts).unwrap();
        let x = RawTensor::randn(0.0, 1.0, case.x.clone(), chapter_02::DType::F64, &Device::cpu()).unwrap();
        let c = RawTensor::randn(0.0, 1.0, g.cols_shape(), chapter_02::DType::F64, &Device::cpu()).unwrap();
        let counter = CountingDevice::new(Device::cpu());
        let on = |t: &RawTensor| t.to_device(counter.device()).unwrap();
        let kernel = call(&Im2col(g), &[&x]).unwrap().remove(0);
        let composite = call(&Im2col(g), &[&on(&x)]).unwrap().remove(0);
        prop_assert_eq!(kernel.shape(), composite.shape());
        prop_assert_eq!(kernel.to_vec_f64().unwrap(), composite.to_vec_f64().unwrap());
        let kernel = call(&Col2im(g), &[&c]).unwrap().remove(0);
        let composite = call(&Col2im(g), &[&on(&c)]).unwrap().remove(0);
        prop_assert_eq!(kernel.shape(), composite.shape());
        assert_close(&kernel.to_vec_f64().unwrap(), &composite.to_vec_f64().unwrap(), 1e-12, "col2im");
    }

    /// The direct depthwise kernel agrees with the im2col composite.
    #[test]
    fn depthwise_kernel_matches_the_composite(case in conv_case()) {
        // One input channel per group: C = groups.
        let g = case.opts.groups;
        let x_dims = vec![case.x[0], g, case.x[2], case.x[3]];
        let w_dims = vec![case.w[0], 1, case.w[2], case.w[3]];
        let geom = ConvGeometry::conv2d(&x_dims, &w_dims, None, &case.opts).unwrap();
        prop_assert!(geom.is_depthwise());
        let cpu = Device::cpu();
        let x = RawTensor::randn(0.0, 1.0, x_dims, chapter_02::DType::F64, &cpu).unwrap();
        let w = RawTensor::randn(0.0, 1.0, w_dims, chapter_02::DType::F64, &cpu).unwrap();
        let counter = CountingDevice::new(cpu);
        let on = |t: &RawTensor| t.to_device(counter.device()).unwrap();
        let kernel = call(&DepthwiseConv2d(geom), &[&x, &w]).unwrap().remove(0);
        let composite = call(&DepthwiseConv2d(geom), &[&on(&x), &on(&w)]).unwrap().remove(0);
        prop_assert_eq!(kernel.shape(), composite.shape());
        assert_close(&kernel.to_vec_f64().unwrap(), &composite.to_vec_f64().unwrap(), 1e-12, "depthwise");
    }

    /// The CPU's per-image kernels (forward, input gradient, weight
    /// gradient) give the numbers of the whole-batch lowering, their
    /// composites, run on a device without kernels.
    #[test]
    fn per_image_kernels_match_the_composites(case in conv_case()) {
        let geom = ConvGeometry::conv2d(&case.x, &case.w, None, &case.opts).unwrap();
        let x = randn(&case.x, 21);
        let w = randn(&case.w, 22);
        let dy = randn(geom.output_shape().dims(), 23);
        let counter = CountingDevice::new(Device::cpu());
        let on = |t: &RawTensor| t.to_device(counter.device()).unwrap();
        let both = |kernel: Vec<RawTensor>, composite: Vec<RawTensor>, what: &str| {
            assert_eq!(kernel[0].shape(), composite[0].shape(), "{what}");
            assert_close(
                &kernel[0].to_vec_f64().unwrap(),
                &composite[0].to_vec_f64().unwrap(),
                1e-12,
                what,
            );
        };
        both(
            call(&ConvForward(geom), &[&x, &w]).unwrap(),
            call(&ConvForward(geom), &[&on(&x), &on(&w)]).unwrap(),
            "forward",
        );
        both(
            call(&ConvInputGrad(geom), &[&dy, &w]).unwrap(),
            call(&ConvInputGrad(geom), &[&on(&dy), &on(&w)]).unwrap(),
            "input gradient",
        );
        both(
            call(&ConvWeightGrad(geom), &[&x, &dy]).unwrap(),
            call(&ConvWeightGrad(geom), &[&on(&x), &on(&dy)]).unwrap(),
            "weight gradient",
        );
    }

    /// col2im is the adjoint of im2col: `⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩`.
    #[test]
    fn im2col_col2im_are_adjoint(case in conv_case()) {
        let g = ConvGeometry::conv2d(&case.x, &case.w, None, &case.opts).unwrap();
        let x = randn(&case.x, 9);
        let c = randn(g.cols_shape().dims(), 10);
        let cols = call(&Im2col(g), &[&x]).unwrap().remove(0);
        let back = call(&Col2im(g), &[&c]).unwrap().remove(0);
        let lhs = cols.mul(&c).unwrap().sum_all().unwrap().item().unwrap();
        let rhs = x.mul(&back).unwrap().sum_all().unwrap().item().unwrap();
        prop_assert!((lhs - rhs).abs() <= 1e-10 * (1.0 + lhs.abs()), "{} vs {}", lhs, rhs);
    }
}

/// f64 gradient check of `conv2d` with respect to input, weight and bias.
fn gradcheck_conv2d(x: &[usize], w: &[usize], bias: bool, opts: Conv2dOptions) {
    let mut inputs = vec![randn(x, 11), randn(w, 12)];
    if bias {
        inputs.push(randn(&[w[0]], 13));
    }
    gradcheck(|t| conv2d(&t[0], &t[1], t.get(2), &opts), &inputs, TIGHT)
        .unwrap_or_else(|e| panic!("{opts:?}: {e}"));
}

#[test]
fn conv2d_gradcheck_plain() {
    gradcheck_conv2d(&[2, 3, 5, 5], &[4, 3, 3, 3], true, Conv2dOptions::default());
}

#[test]
fn conv2d_gradcheck_stride() {
    gradcheck_conv2d(
        &[2, 2, 7, 6],
        &[3, 2, 3, 2],
        true,
        Conv2dOptions::default().stride(2),
    );
    let opts = Conv2dOptions {
        stride: (3, 1),
        ..Default::default()
    };
    gradcheck_conv2d(&[1, 2, 8, 5], &[2, 2, 2, 3], true, opts);
}

#[test]
fn conv2d_gradcheck_padding() {
    gradcheck_conv2d(
        &[1, 2, 4, 5],
        &[3, 2, 3, 3],
        true,
        Conv2dOptions::default().padding(2),
    );
    let opts = Conv2dOptions {
        padding: Padding::Explicit(0, 1),
        stride: (2, 2),
        ..Default::default()
    };
    gradcheck_conv2d(&[2, 2, 5, 4], &[2, 2, 2, 3], true, opts);
}

#[test]
fn conv2d_gradcheck_same_padding() {
    let same = Conv2dOptions {
        padding: Padding::Same,
        ..Default::default()
    };
    // Odd kernel: symmetric padding; even kernel: one more at the end.
    gradcheck_conv2d(&[1, 2, 5, 4], &[2, 2, 3, 3], true, same);
    gradcheck_conv2d(&[1, 2, 5, 4], &[2, 2, 4, 2], true, same);
    gradcheck_conv2d(&[1, 1, 6, 6], &[2, 1, 2, 3], false, same.dilation(2));
}

#[test]
fn conv2d_gradcheck_dilation() {
    gradcheck_conv2d(
        &[1, 2, 7, 7],
        &[2, 2, 3, 3],
        true,
        Conv2dOptions::default().dilation(2),
    );
    let opts = Conv2dOptions {
        dilation: (1, 3),
        stride: (2, 1),
        padding: Padding::Explicit(1, 2),
        ..Default::default()
    };
    gradcheck_conv2d(&[1, 2, 6, 8], &[2, 2, 2, 2], true, opts);
}

#[test]
fn conv2d_gradcheck_groups() {
    gradcheck_conv2d(
        &[2, 4, 5, 5],
        &[6, 2, 3, 3],
        true,
        Conv2dOptions::default().groups(2).padding(1),
    );
    gradcheck_conv2d(
        &[1, 6, 4, 4],
        &[3, 2, 2, 2],
        true,
        Conv2dOptions::default().groups(3).stride(2),
    );
}

#[test]
fn conv2d_gradcheck_depthwise() {
    // groups = channels: each output channel sees one input channel
    // (here with a channel multiplier of 2).
    gradcheck_conv2d(
        &[2, 3, 5, 5],
        &[3, 1, 3, 3],
        true,
        Conv2dOptions::default().groups(3).padding(1),
    );
    gradcheck_conv2d(
        &[1, 3, 6, 6],
        &[6, 1, 3, 3],
        true,
        Conv2dOptions::default()
            .groups(3)
            .stride(2)
            .dilation(2)
            .padding(1),
    );
}

#[test]
fn conv2d_gradcheck_without_bias() {
    gradcheck_conv2d(
        &[2, 3, 4, 4],
        &[2, 3, 1, 1],
        false,
        Conv2dOptions::default(),
    );
    gradcheck_conv2d(
        &[1, 2, 5, 5],
        &[2, 2, 3, 3],
        false,
        Conv2dOptions::default().stride(2).padding(1),
    );
}

/// f64 gradient check of `conv_transpose2d`.
fn gradcheck_conv_transpose2d(x: &[usize], w: &[usize], bias: bool, opts: ConvTranspose2dOptions) {
    let mut inputs = vec![randn(x, 14), randn(w, 15)];
    if bias {
        inputs.push(randn(&[w[1] * opts.groups], 16));
    }
    gradcheck(
        |t| conv_transpose2d(&t[0], &t[1], t.get(2), &opts),
        &inputs,
        TIGHT,
    )
    .unwrap_or_else(|e| panic!("{opts:?}: {e}"));
}

#[test]
fn conv_transpose2d_gradcheck_plain() {
    gradcheck_conv_transpose2d(
        &[2, 3, 3, 3],
        &[3, 2, 3, 3],
        true,
        ConvTranspose2dOptions::default(),
    );
}

#[test]
fn conv_transpose2d_gradcheck_stride_padding_output_padding() {
    let opts = ConvTranspose2dOptions {
        stride: (2, 2),
        padding: (1, 1),
        output_padding: (1, 1),
        ..Default::default()
    };
    gradcheck_conv_transpose2d(&[1, 2, 3, 3], &[2, 3, 3, 3], true, opts);
    let opts = ConvTranspose2dOptions {
        stride: (3, 2),
        padding: (0, 1),
        output_padding: (2, 0),
        ..Default::default()
    };
    gradcheck_conv_transpose2d(&[2, 2, 2, 3], &[2, 1, 2, 3], true, opts);
}

#[test]
fn conv_transpose2d_gradcheck_dilation_and_groups() {
    let opts = ConvTranspose2dOptions {
        stride: (2, 1),
        dilation: (2, 2),
        // Larger than the stride, allowed because smaller than the dilation.
        output_padding: (1, 1),
        groups: 2,
        ..Default::default()
    };
    gradcheck_conv_transpose2d(&[1, 4, 3, 3], &[4, 2, 2, 2], true, opts);
}

#[test]
fn conv_transpose2d_gradcheck_without_bias() {
    let opts = ConvTranspose2dOptions {
        stride: (2, 2),
        groups: 3,
        ..Default::default()
    };
    gradcheck_conv_transpose2d(&[1, 3, 3, 2], &[3, 1, 3, 3], false, opts);
}

/// `conv_transpose2d` undoes the shape change of `conv2d`: with the same
/// options and the right output padding it gives back the input's shape,
/// and its values are the input gradient of `conv2d` (`⟨conv(x), y⟩ =
/// ⟨x, conv_transpose(y)⟩`).
#[test]
fn conv_transpose2d_is_the_adjoint_of_conv2d() {
    let (x, w, y) = (
        input(&[2, 4, 7, 8], 17),
        input(&[6, 2, 3, 3], 18),
        input(&[2, 6, 4, 4], 19),
    );
    let opts = Conv2dOptions::default().stride(2).padding(1).groups(2);
    let cx = conv2d(&x, &w, None, &opts).unwrap();
    assert_eq!(cx.dims(), y.dims());
    let topts = ConvTranspose2dOptions {
        stride: (2, 2),
        padding: (1, 1),
        output_padding: (0, 1),
        groups: 2,
        ..Default::default()
    };
    let ty = conv_transpose2d(&y, &w, None, &topts).unwrap();
    assert_eq!(ty.dims(), x.dims());
    let lhs = cx.mul(&y).unwrap().sum_all().unwrap().item().unwrap();
    let rhs = x.mul(&ty).unwrap().sum_all().unwrap().item().unwrap();
    assert!(
        (lhs - rhs).abs() < 1e-10 * (1.0 + lhs.abs()),
        "{lhs} vs {rhs}"
    );
}

/// `gradcheck` evaluates the perturbed points under `no_grad`, with plain
/// constants: turn recording on and make leaves to differentiate.
fn leaves(t: &[Tensor]) -> Vec<Tensor> {
    t.iter()
        .map(|t| match t.requires_grad() {
            true => t.clone(),
            false => Tensor::param(t.data()).unwrap(),
        })
        .collect()
}

/// Gradients of gradients: the backward passes are made of convolutions,
/// so `create_graph` makes them differentiable. Checked by finite
/// differences of the first derivatives.
#[test]
fn conv2d_second_derivatives_gradcheck() {
    let opts = Conv2dOptions::default().stride(2).padding(1).groups(2);
    let v = Tensor::from_raw(randn(&[1, 4, 3, 3], 20));
    let first = |t: &[Tensor], which: usize| -> chapter_03::Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let t = leaves(t);
        let y = conv2d(&t[0], &t[1], Some(&t[2]), &opts)?;
        // L = Σ y ⊙ v ⊙ y: quadratic, so the derivatives depend on x and w.
        let loss = y.mul(&v)?.mul(&y)?.sum_all()?;
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        let g = grad(&loss, &[&t[0], &t[1], &t[2]], None, opts)?;
        Ok(g[which].clone().expect("a gradient"))
    };
    let inputs = [
        randn(&[1, 4, 5, 5], 21),
        randn(&[4, 2, 3, 3], 22),
        randn(&[4], 23),
    ];
    for which in 0..3 {
        gradcheck(|t| first(t, which), &inputs, TIGHT)
            .unwrap_or_else(|e| panic!("derivative of gradient {which}: {e}"));
    }
}

#[test]
fn conv_transpose2d_second_derivatives_gradcheck() {
    let opts = ConvTranspose2dOptions {
        stride: (2, 2),
        padding: (1, 0),
        output_padding: (1, 1),
        ..Default::default()
    };
    let first = |t: &[Tensor], which: usize| -> chapter_03::Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let t = leaves(t);
        let y = conv_transpose2d(&t[0], &t[1], None, &opts)?;
        let loss = y.mul(&y)?.sum_all()?;
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        let g = grad(&loss, &[&t[0], &t[1]], None, opts)?;
        Ok(g[which].clone().expect("a gradient"))
    };
    let inputs = [randn(&[1, 2, 3, 3], 24), randn(&[2, 2, 3, 2], 25)];
    for which in 0..2 {
        gradcheck(|t| first(t, which), &inputs, TIGHT)
            .unwrap_or_else(|e| panic!("derivative of gradient {which}: {e}"));
    }
}

/// f32 runs through the same kernels (the fixtures test its values); here
/// only that it stays f32 and agrees with f64 to f32 precision.
#[test]
fn conv2d_f32_agrees_with_f64() {
    let (x, w) = (randn(&[2, 3, 6, 6], 26), randn(&[4, 3, 3, 3], 27));
    let opts = Conv2dOptions::default().padding(1);
    let f64_out = conv2d(
        &Tensor::from_raw(x.clone()),
        &Tensor::from_raw(w.clone()),
        None,
        &opts,
    )
    .unwrap();
    let to32 = |t: &RawTensor| Tensor::from_raw(t.to_dtype(chapter_02::DType::F32).unwrap());
    let f32_out = conv2d(&to32(&x), &to32(&w), None, &opts).unwrap();
    assert_eq!(f32_out.dtype(), chapter_02::DType::F32);
    assert_close(
        &f32_out.to_vec_f64().unwrap(),
        &f64_out.to_vec_f64().unwrap(),
        1e-5,
        "f32",
    );
}

/// Views go in as well as contiguous tensors: a transposed input and
/// weight give the same result as their contiguous copies.
#[test]
fn conv2d_accepts_strided_views() {
    let x = input(&[1, 2, 6, 5], 28).transpose(2, 3).unwrap(); // [1, 2, 5, 6], strided
    let w = input(&[3, 2, 3, 3], 29).transpose(2, 3).unwrap();
    let copy = |t: &Tensor| Tensor::from_raw(t.data().contiguous().unwrap());
    let opts = Conv2dOptions::default().stride(2).padding(1);
    let strided = conv2d(&x, &w, None, &opts).unwrap();
    let contiguous = conv2d(&copy(&x), &copy(&w), None, &opts).unwrap();
    assert_eq!(
        strided.to_vec_f64().unwrap(),
        contiguous.to_vec_f64().unwrap()
    );
}

/// An empty batch is a valid input with an empty output, forward and back,
/// whichever CPU method the convolution takes (the lowering with stride 2,
/// the padded rows with stride 1, Winograd's with 3 × 3 filters and 8
/// channels, and Winograd's weight gradient on 20 × 20 images).
#[test]
fn conv2d_of_an_empty_batch_is_empty() {
    let cases = [
        (2, 3, 1, 0, 5),
        (2, 3, 2, 1, 5),
        (8, 8, 1, 1, 5),
        (8, 8, 1, 1, 20),
    ];
    for (c, o, stride, padding, size) in cases {
        let x = input(&[0, c, size, size], 30).requires_grad_().unwrap();
        let w = input(&[o, c, 3, 3], 31).requires_grad_().unwrap();
        let opts = Conv2dOptions::default().stride(stride).padding(padding);
        let y = conv2d(&x, &w, None, &opts).unwrap();
        let side = (size + 2 * padding - 3) / stride + 1;
        assert_eq!(y.dims(), vec![0, o, side, side]);
        y.sum_all().unwrap().backward().unwrap();
        assert_eq!(
            w.grad().unwrap().to_vec_f64().unwrap(),
            vec![0.0; o * c * 9]
        );
        let t = conv_transpose2d(&y, &w, None, &ConvTranspose2dOptions::default()).unwrap();
        assert_eq!(t.dims(), vec![0, c, side + 2, side + 2]);
    }
}

/// The weight gradient sums its images in chunks whose order does not
/// depend on the number of threads: one thread and two give the same bits,
/// with 4 and 8 input channels, and with stride 1 and 2 (the padded rows
/// and the strided lowering), on 20 × 20 images with 8 channels
/// (Winograd's weight gradient), and with 16 output channels (the direct
/// kernel, on a CPU with AVX-512: partial sums of 32 images and 5).
#[test]
fn weight_gradient_does_not_depend_on_the_thread_count() {
    let cases = [
        (4, 8, 1, 9),
        (8, 8, 1, 9),
        (4, 8, 2, 41),
        (8, 8, 1, 20),
        (8, 16, 1, 9),
    ];
    for (c, o, stride, side) in cases {
        weight_gradient_is_thread_independent(c, o, stride, side);
    }
}

fn weight_gradient_is_thread_independent(c: usize, o: usize, stride: usize, side: usize) {
    // Strided 41 × 41: 21 × 21 outputs make chunks of 3 images, partial
    // sums of 9. Winograd at 20 × 20: 100 tiles, chunks of 10 images.
    let geom = ConvGeometry::conv2d(
        &[37, c, side, side],
        &[o, c, 3, 3],
        None,
        &Conv2dOptions::default().padding(1).stride(stride),
    )
    .unwrap();
    let x = randn(&[37, c, side, side], 31)
        .to_dtype(chapter_02::DType::F32)
        .unwrap();
    let dy = randn(geom.output_shape().dims(), 32)
        .to_dtype(chapter_02::DType::F32)
        .unwrap();
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| call(&ConvWeightGrad(geom), &[&x, &dy]).unwrap().remove(0))
            .to_vec::<f32>()
            .unwrap()
    };
    let (one, two) = (run(1), run(2));
    assert!(
        one.iter()
            .zip(&two)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "the weight gradient changed with the number of threads"
    );
}

/// Stride-1 convolutions take the wide lowering (rows of the patch matrix
/// copied as runs of the padded image, several images per product). Batches
/// that do not divide into its chunks, groups, dilation and uneven padding
/// give the numbers of the whole-batch composite, in f64 and f32.
#[test]
fn wide_lowering_matches_the_composites_on_ragged_chunks() {
    let cases = [
        // (x, w, options): 37 images of 5 × 5 make chunks of 30 and 7.
        (
            vec![37, 4, 5, 5],
            vec![6, 4, 3, 3],
            Conv2dOptions::default().padding(1),
        ),
        (
            vec![23, 4, 6, 5],
            vec![6, 2, 3, 2],
            Conv2dOptions {
                padding: Padding::Same,
                dilation: (2, 1),
                groups: 2,
                ..Conv2dOptions::default()
            },
        ),
        (
            vec![3, 3, 30, 31],
            vec![5, 3, 3, 3],
            Conv2dOptions::default().padding(1),
        ),
        (vec![9, 2, 7, 7], vec![4, 2, 1, 1], Conv2dOptions::default()),
    ];
    for (xs, ws, opts) in cases {
        kernels_agree_with_composites(&xs, &ws, &opts, 41);
    }
}

/// Strided convolutions lower a chunk of images side by side (about 1,024
/// columns: five 15 × 16 outputs here), so batches that do not divide into
/// chunks, groups, dilation and a 1 × 1 kernel give the numbers of the
/// whole-batch composite, in f64 and f32.
#[test]
fn strided_lowering_matches_the_composites_on_ragged_chunks() {
    let strided = |stride: (usize, usize)| Conv2dOptions {
        stride,
        padding: Padding::Explicit(1, 1),
        ..Conv2dOptions::default()
    };
    let cases = [
        (vec![23, 3, 30, 31], vec![5, 3, 3, 3], strided((2, 2))),
        (
            vec![13, 4, 24, 22],
            vec![6, 2, 3, 3],
            Conv2dOptions {
                groups: 2,
                dilation: (2, 1),
                ..strided((2, 3))
            },
        ),
        (
            vec![11, 6, 28, 28],
            vec![8, 6, 1, 1],
            Conv2dOptions::default().stride(2),
        ),
    ];
    for (xs, ws, opts) in cases {
        kernels_agree_with_composites(&xs, &ws, &opts, 71);
    }
}

/// On a CPU with AVX-512 or AVX2, `f32` 3 × 3 convolutions whose output
/// rows are as wide as their input rows are computed directly in registers
/// (`conv/direct/`): with AVX-512 the forward pass and input gradient with
/// 8 output channels or more, the weight gradient with 16 or more (in the
/// three blockings of 16, 32 and 64 output channels); with AVX2 the
/// forward pass and input gradient with 16 output channels or more, the
/// weight gradient with 8 or more (blockings for 8 or 16 output channels,
/// and for 3·C filter rows divisible by 2, 4 or only 3), and the forward
/// pass of stride-2 layers with 8 or more. Each agrees with the
/// whole-batch lowering: the stem's single input channel, planes whose
/// registers run across rows (widths 5, 9, 17) or hold a single row of
/// pixels, heights padded by 0 and 2 (the input gradient then pads by 2 and
/// 0), and batches that leave a ragged partial sum (37 = 32 + 5 images).
/// The numbers are the lowering's to `f32` rounding; `f64` takes the
/// other methods and agrees to 1e-12.
#[test]
fn direct_kernels_match_the_composites() {
    #[cfg(target_arch = "x86_64")]
    let vector = std::is_x86_feature_detected!("avx512f")
        || (std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma"));
    #[cfg(not(target_arch = "x86_64"))]
    let vector = false;
    if !vector {
        println!("skipped: this CPU has neither AVX-512 nor AVX2 with FMA; the direct kernels do not run here");
    }
    let rows = |top: usize| Conv2dOptions {
        padding: Padding::Explicit(top, 1),
        ..Conv2dOptions::default()
    };
    let strided = |padding: usize| Conv2dOptions::default().stride(2).padding(padding);
    let cases = [
        (vec![3, 1, 28, 28], vec![16, 1, 3, 3], rows(1)),
        (vec![37, 8, 9, 5], vec![8, 8, 3, 3], rows(1)),
        (vec![5, 16, 7, 17], vec![16, 16, 3, 3], rows(1)),
        (vec![4, 32, 14, 14], vec![32, 32, 3, 3], rows(1)),
        (vec![37, 12, 6, 6], vec![64, 12, 3, 3], rows(1)),
        (vec![3, 16, 1, 20], vec![48, 16, 3, 3], rows(1)),
        (vec![3, 8, 1, 16], vec![8, 8, 3, 3], rows(1)),
        (vec![2, 64, 7, 7], vec![64, 64, 3, 3], rows(1)),
        (vec![3, 16, 10, 8], vec![32, 16, 3, 3], rows(0)),
        (vec![2, 24, 5, 11], vec![16, 24, 3, 3], rows(2)),
        (
            vec![2, 8, 8, 8],
            vec![16, 8, 1, 1],
            Conv2dOptions::default(),
        ),
        // Stride 2 (the AVX2 strided forward kernel): ResNet14's two
        // strided layers, rows that end in a block of fewer than 7 pixels,
        // padding 0 and 2.
        (vec![3, 16, 28, 28], vec![32, 16, 3, 3], strided(1)),
        (vec![2, 32, 14, 14], vec![64, 32, 3, 3], strided(1)),
        (vec![3, 8, 9, 11], vec![8, 8, 3, 3], strided(1)),
        (vec![2, 8, 7, 8], vec![16, 8, 3, 3], strided(0)),
        (vec![2, 4, 6, 9], vec![24, 4, 3, 3], strided(2)),
    ];
    for (xs, ws, opts) in cases {
        kernels_agree_with_composites(&xs, &ws, &opts, 57);
    }
}

/// Half-precision inputs run the CPU kernels in `f32` (widened, then
/// rounded back): Winograd's path, the padded rows and the per-image
/// lowering give, in `f16` and `bf16`, the `f32` result of the same
/// rounded inputs to the half type's precision, forward and backward.
#[test]
fn half_precision_convolutions_run_in_f32() {
    use chapter_02::DType;
    let cases = [
        (
            vec![3, 8, 6, 6],
            vec![8, 8, 3, 3],
            Conv2dOptions::default().padding(1),
        ),
        (
            vec![3, 4, 6, 6],
            vec![6, 4, 3, 3],
            Conv2dOptions::default().padding(1),
        ),
        (
            vec![3, 8, 6, 6],
            vec![8, 8, 3, 3],
            Conv2dOptions::default().stride(2).padding(1),
        ),
    ];
    for (xs, ws, opts) in cases {
        for (half, tol) in [(DType::F16, 1e-2), (DType::BF16, 6e-2)] {
            let x = randn(&xs, 61).to_dtype(half).unwrap();
            let w = randn(&ws, 62)
                .affine(0.2, 0.0)
                .unwrap()
                .to_dtype(half)
                .unwrap();
            let run = |dtype: DType| {
                let xt = Tensor::param(x.to_dtype(dtype).unwrap()).unwrap();
                let wt = Tensor::param(w.to_dtype(dtype).unwrap()).unwrap();
                let y = conv2d(&xt, &wt, None, &opts).unwrap();
                assert_eq!(y.dtype(), dtype);
                y.sum_all().unwrap().backward().unwrap();
                let grads = [xt.grad().unwrap(), wt.grad().unwrap()];
                let values = |t: &RawTensor| t.to_vec_f64().unwrap();
                (values(&y.data()), grads.map(|g| values(&g.data())))
            };
            let (y_half, g_half) = run(half);
            let (y_f32, g_f32) = run(DType::F32);
            let close = |a: &[f64], b: &[f64], what: &str| {
                let scale = b.iter().fold(1.0f64, |m, v| m.max(v.abs()));
                for (i, (p, q)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (p - q).abs() <= tol * scale,
                        "{half:?} {xs:?} {what} {i}: {p} vs {q}"
                    );
                }
            };
            close(&y_half, &y_f32, "output");
            close(&g_half[0], &g_f32[0], "input gradient");
            close(&g_half[1], &g_f32[1], "weight gradient");
        }
    }
}
