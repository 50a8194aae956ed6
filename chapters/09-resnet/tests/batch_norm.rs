//! Lessons: `BatchNorm2d` against PyTorch's fixtures (training with the
//! running statistics' update, and evaluation), in f32 and f64; an f64
//! gradient check; and a training step of a small convolutional network
//! that never reads back to the host. `cargo test -p chapter-09 --test batch_norm`.

mod common;

use chapter_02::dispatch::call;
use chapter_02::{CountingDevice, DType, Device};
use chapter_03::{
    grad, gradcheck, set_grad_enabled, BackwardOptions, GradcheckOptions, RawTensor, Tensor,
};
use chapter_04::prelude::*;
use chapter_05::{BatchNormConfig, Buffer, Module, ModuleExt};
use chapter_09::{
    avg_pool2d, conv2d, global_avg_pool2d, max_pool2d, AvgPool2dOptions, BatchNorm2d,
    BatchNormBackward, BatchNormForward, Conv2dOptions, Pool2dOptions,
};
use common::*;
use safetensors::{Dtype, SafeTensors};
use std::path::PathBuf;

/// The fixture folder: `CANDLE_FIXTURES` when set, the shipped one otherwise.
fn fixtures() -> PathBuf {
    match std::env::var_os("CANDLE_FIXTURES") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures"),
    }
}

/// The float tensors of one case of a fixture file, by name, in `dtype`.
struct Case {
    bytes: Vec<u8>,
    id: &'static str,
    dtype: DType,
}

impl Case {
    fn load(file: &str, id: &'static str, dtype: DType) -> Case {
        let path = fixtures().join(file);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Case { bytes, id, dtype }
    }
    fn raw(&self, name: &str) -> RawTensor {
        let st = SafeTensors::deserialize(&self.bytes).unwrap();
        let t = st.tensor(&format!("{}/{name}", self.id)).unwrap();
        let values: Vec<f64> = match t.dtype() {
            Dtype::F32 => t
                .data()
                .chunks(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()) as f64)
                .collect(),
            Dtype::F64 => t
                .data()
                .chunks(8)
                .map(|b| f64::from_le_bytes(b.try_into().unwrap()))
                .collect(),
            other => panic!("{name}: unexpected dtype {other:?}"),
        };
        RawTensor::from_f64_vec(values, t.shape().to_vec(), self.dtype, &dev()).unwrap()
    }
    fn values(&self, name: &str) -> Vec<f64> {
        self.raw(name).to_vec_f64().unwrap()
    }
}

/// `|got − want| ≤ atol + rtol·|want|`, as the fixtures' README defines.
fn allclose(got: &[f64], want: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= atol + rtol * w.abs(),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

/// Runs one `F.batch_norm` case through a `BatchNorm2d` holding the
/// fixture's tensors and compares outputs, running statistics and grads.
fn check_case(id: &'static str, training: bool, dtype: DType) {
    let (file, rtol, atol) = match dtype {
        DType::F32 => ("nn.safetensors", 1e-4, 1e-5),
        _ => ("nn.f64.safetensors", 1e-9, 1e-11),
    };
    let case = Case::load(file, id, dtype);
    let x = Tensor::from_raw(case.raw("x")).requires_grad_().unwrap();
    let c = x.dims()[1];
    let config = BatchNormConfig {
        momentum: Some(0.1),
        eps: 1e-5,
        ..Default::default()
    };
    let mut bn = BatchNorm2d::with_options(c, config, dtype, &dev()).unwrap();
    bn.weight = Some(Tensor::param(case.raw("weight")).unwrap());
    bn.bias = Some(Tensor::param(case.raw("bias")).unwrap());
    bn.running_mean = Buffer::new(case.raw("running_mean"));
    bn.running_var = Buffer::new(case.raw("running_var"));
    if !training {
        bn.eval();
    }
    let out = bn.forward(&x).unwrap();
    let v = |t: &Tensor| t.to_vec_f64().unwrap();
    allclose(&v(&out), &case.values("out"), rtol, atol, "out");
    out.mul(&Tensor::from_raw(case.raw("w")))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    allclose(
        &v(&x.grad().unwrap()),
        &case.values("grad_x"),
        rtol,
        atol,
        "grad_x",
    );
    let (w, b) = (bn.weight.clone().unwrap(), bn.bias.clone().unwrap());
    allclose(
        &v(&w.grad().unwrap()),
        &case.values("grad_weight"),
        rtol,
        atol,
        "grad_weight",
    );
    allclose(
        &v(&b.grad().unwrap()),
        &case.values("grad_bias"),
        rtol,
        atol,
        "grad_bias",
    );
    if training {
        let stat = |b: &Buffer| b.get().to_vec_f64().unwrap();
        allclose(
            &stat(&bn.running_mean),
            &case.values("running_mean_after"),
            rtol,
            atol,
            "running_mean",
        );
        allclose(
            &stat(&bn.running_var),
            &case.values("running_var_after"),
            rtol,
            atol,
            "running_var",
        );
    }
}

#[test]
fn batch_norm2d_training_matches_pytorch() {
    check_case("batch_norm_train_0", true, DType::F32);
    check_case("batch_norm_train_0", true, DType::F64);
}

#[test]
fn batch_norm2d_evaluation_matches_pytorch() {
    check_case("batch_norm_eval_0", false, DType::F32);
    check_case("batch_norm_eval_0", false, DType::F64);
}

/// What follows the batch norm in the fused operation.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Tail {
    /// Nothing: `bn(x)`.
    None,
    /// `relu(bn(x))`, `forward_relu`.
    Relu,
    /// `relu(bn(x) + s)`, `forward_add_relu`, with the shortcut `s` the
    /// fourth input.
    AddRelu,
}

const TAILS: [Tail; 3] = [Tail::None, Tail::Relu, Tail::AddRelu];

/// `bn` applied to `x` with the given tail (`shortcut` for `AddRelu`).
fn forward_with(
    bn: &BatchNorm2d,
    x: &Tensor,
    shortcut: Option<&Tensor>,
    tail: Tail,
) -> chapter_03::Result<Tensor> {
    match tail {
        Tail::None => bn.forward(x),
        Tail::Relu => bn.forward_relu(x),
        Tail::AddRelu => bn.forward_add_relu(x, shortcut.expect("a shortcut")),
    }
}

/// Batch norm's gradients in training match finite differences, alone,
/// fused with the ReLU after it (`forward_relu`) and with a shortcut's
/// addition and the ReLU (`forward_add_relu`, where the shortcut's
/// gradient is checked too). The random inputs put some outputs on each
/// side of zero, none close enough to it for a finite difference to cross.
#[test]
fn batch_norm2d_gradcheck_in_training() {
    for tail in TAILS {
        let f = |t: &[Tensor]| {
            let mut bn =
                BatchNorm2d::with_options(3, BatchNormConfig::default(), DType::F64, &dev())?;
            bn.weight = Some(t[1].clone());
            bn.bias = Some(t[2].clone());
            forward_with(&bn, &t[0], t.get(3), tail)
        };
        let mut inputs = vec![randn(&[2, 3, 3, 2], 1), randn(&[3], 2), randn(&[3], 3)];
        if tail == Tail::AddRelu {
            inputs.push(randn(&[2, 3, 3, 2], 4).affine(0.5, 0.0).unwrap());
        }
        if tail != Tail::None {
            let t: Vec<Tensor> = inputs.iter().cloned().map(Tensor::from_raw).collect();
            let y = f(&t).unwrap().to_vec_f64().unwrap();
            assert!(y.contains(&0.0) && y.iter().any(|&v| v > 0.0), "{y:?}");
        }
        gradcheck(f, &inputs, GradcheckOptions::default())
            .unwrap_or_else(|e| panic!("{tail:?}: {e}"));
    }
}

#[test]
fn batch_norm2d_state_dict_names_are_pytorchs() {
    let bn = BatchNorm2d::new(4).unwrap();
    let names: Vec<String> = bn.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["weight", "bias"]);
}

#[test]
fn batch_norm2d_rejects_other_shapes() {
    let bn = BatchNorm2d::with_options(3, BatchNormConfig::default(), DType::F64, &dev()).unwrap();
    let msg = err(bn.forward(&input(&[2, 3, 4], 4)));
    assert!(
        msg.starts_with("BatchNorm2d:")
            && msg.contains("[N, 3, H, W]")
            && msg.contains("[2, 3, 4]"),
        "{msg}"
    );
    let msg = err(bn.forward(&input(&[2, 4, 2, 2], 5)));
    assert!(
        msg.starts_with("BatchNorm2d:") && msg.contains("[2, 4, 2, 2]"),
        "{msg}"
    );
    let msg = err(bn.forward(&input(&[1, 3, 1, 1], 6)));
    assert!(msg.contains("more than 1 value per channel"), "{msg}");
    let msg = err(bn.forward_add_relu(&input(&[2, 3, 4, 4], 7), &input(&[2, 3, 2, 2], 8)));
    assert!(
        msg.starts_with("BatchNorm2d:")
            && msg.contains("shortcut")
            && msg.contains("[2, 3, 4, 4]")
            && msg.contains("[2, 3, 2, 2]"),
        "{msg}"
    );
}

/// A training step (forward, backward, running statistics) of convolution,
/// batch norm and pooling, on a device that counts host transfers: none.
/// Everything runs through the composites there, as on a GPU.
#[test]
fn a_convolutional_training_step_makes_no_host_transfers() {
    let counter = CountingDevice::new(Device::cpu());
    let d = counter.device();
    let param = |shape: &[usize], seed| {
        let t = RawTensor::randn_with(
            0.0,
            0.5,
            shape,
            DType::F32,
            d,
            &mut chapter_02::Generator::new(seed),
        )
        .unwrap();
        Tensor::param(t).unwrap()
    };
    let x = Tensor::from_raw(RawTensor::randn(0.0, 1.0, [2, 3, 8, 8], DType::F32, d).unwrap());
    let (w1, b1, w2) = (
        param(&[4, 3, 3, 3], 1),
        param(&[4], 2),
        param(&[4, 1, 3, 3], 3),
    );
    let bn = BatchNorm2d::with_options(4, BatchNormConfig::default(), DType::F32, d).unwrap();
    counter.reset();
    let h = conv2d(&x, &w1, Some(&b1), &Conv2dOptions::default().padding(1)).unwrap();
    let h = bn.forward(&h).unwrap().relu().unwrap();
    let h = max_pool2d(&h, &Pool2dOptions::new(2)).unwrap();
    let h = conv2d(
        &h,
        &w2,
        None,
        &Conv2dOptions::default().groups(4).padding(1),
    )
    .unwrap();
    let h = avg_pool2d(&h, &AvgPool2dOptions::new(2).count_include_pad(false)).unwrap();
    let loss = global_avg_pool2d(&h).unwrap().sum_all().unwrap();
    loss.backward().unwrap();
    assert!(w1.grad().is_ok() && w2.grad().is_ok() && b1.grad().is_ok());
    let counts = counter.counts();
    assert!(
        counts.calls("matmul") > 0,
        "the convolutions ran on the counting device"
    );
    assert_eq!(counts.host_transfers(), 0, "{counts:?}");
}

/// The CPU kernels of training-mode batch norm (two passes forward, two
/// backward; the forward one with and without the ReLU it can apply) give
/// the numbers of their composites, the formulas in tensor operations, which a device
/// without kernels runs.
#[test]
fn batch_norm_kernels_match_the_composites() {
    let counter = CountingDevice::new(Device::cpu());
    let on = |t: &RawTensor| t.to_device(counter.device()).unwrap();
    let shapes = [[4, 3, 5, 5], [1, 2, 3, 1], [7, 1, 1, 2], [2, 16, 9, 9]];
    let variants = [(false, false), (true, false), (false, true), (true, true)];
    for (i, (dims, (relu, shortcut))) in shapes
        .iter()
        .flat_map(|d| variants.map(|v| (d, v)))
        .enumerate()
    {
        let seed = 40 + 10 * i as u64;
        let c = dims[1];
        let x = randn(dims, seed).affine(3.0, 2.0).unwrap();
        let (gamma, beta, g) = (
            randn(&[c], seed + 1),
            randn(&[c], seed + 2),
            randn(dims, seed + 3),
        );
        let s = randn(dims, seed + 4);
        let fwd = BatchNormForward {
            eps: 1e-5,
            relu,
            shortcut,
        };
        let inputs = [&x, &gamma, &beta, &s];
        let inputs = &inputs[..3 + shortcut as usize];
        let kernel = call(&fwd, inputs).unwrap();
        let on_counter: Vec<RawTensor> = inputs.iter().map(|t| on(t)).collect();
        let composite = call(&fwd, &on_counter.iter().collect::<Vec<_>>()).unwrap();
        for (k, c) in kernel.iter().zip(&composite) {
            assert_eq!(
                k.shape(),
                c.shape(),
                "{dims:?} relu {relu} shortcut {shortcut}"
            );
            assert_close(
                &k.to_vec_f64().unwrap(),
                &c.to_vec_f64().unwrap(),
                1e-10,
                "forward",
            );
        }
        if relu {
            let y = kernel[0].to_vec_f64().unwrap();
            assert!(y.iter().all(|&v| v >= 0.0), "{dims:?}: a negative output");
            // With enough values per channel some fall below zero.
            if dims[0] * dims[2] * dims[3] >= 20 {
                assert!(y.contains(&0.0), "{dims:?}: the ReLU cut nothing");
            }
        }
        let (mean, var) = (&kernel[1], &kernel[2]);
        let bwd = BatchNormBackward { eps: 1e-5 };
        let kernel = call(&bwd, &[&g, &x, mean, var, &gamma]).unwrap();
        let composite = call(&bwd, &[&on(&g), &on(&x), &on(mean), &on(var), &on(&gamma)]).unwrap();
        for (k, c) in kernel.iter().zip(&composite) {
            assert_eq!(k.shape(), c.shape(), "{dims:?}");
            assert_close(
                &k.to_vec_f64().unwrap(),
                &c.to_vec_f64().unwrap(),
                1e-10,
                "backward",
            );
        }
    }
}

/// Differentiating batch norm's backward pass (`create_graph`) takes the
/// formula written in differentiable operations; its derivatives match
/// finite differences, with and without the fused ReLU and shortcut.
#[test]
fn batch_norm2d_second_derivatives_gradcheck() {
    for tail in TAILS {
        second_derivatives_gradcheck(tail);
    }
}

fn second_derivatives_gradcheck(tail: Tail) {
    let v = Tensor::from_raw(randn(&[2, 3, 2, 2], 60));
    let first = |t: &[Tensor], which: usize| -> chapter_03::Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let t: Vec<Tensor> = t
            .iter()
            .map(|t| match t.requires_grad() {
                true => t.clone(),
                false => Tensor::param(t.data()).unwrap(),
            })
            .collect();
        let mut bn = BatchNorm2d::with_options(3, BatchNormConfig::default(), DType::F64, &dev())?;
        bn.weight = Some(t[1].clone());
        bn.bias = Some(t[2].clone());
        let y = forward_with(&bn, &t[0], t.get(3), tail)?;
        // L = Σ y ⊙ v ⊙ y: quadratic, so every derivative depends on x.
        let loss = y.mul(&v)?.mul(&y)?.sum_all()?;
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        let g = grad(&loss, &t.iter().collect::<Vec<_>>(), None, opts)?;
        Ok(g[which].clone().expect("a gradient"))
    };
    let mut inputs = vec![randn(&[2, 3, 2, 2], 61), randn(&[3], 62), randn(&[3], 63)];
    if tail == Tail::AddRelu {
        inputs.push(randn(&[2, 3, 2, 2], 64).affine(0.5, 0.0).unwrap());
    }
    for which in 0..inputs.len() {
        gradcheck(|t| first(t, which), &inputs, GradcheckOptions::default())
            .unwrap_or_else(|e| panic!("derivative of gradient {which}, {tail:?}: {e}"));
    }
}

/// The batch statistics read memory once (each plane centred on its own
/// mean, the planes merged in f64), yet keep the two-pass accuracy: in f32,
/// activations sitting at 1000 with a spread of 0.01 (where `E[x²] − E[x]²`
/// would lose every digit) give the variance of the same values computed
/// in f64 to a part in a thousand.
#[test]
fn batch_statistics_survive_a_large_mean_in_f32() {
    let dims = [6, 3, 7, 9];
    let x64 = randn(&dims, 77).affine(0.01, 1000.0).unwrap();
    let x = x64.to_dtype(DType::F32).unwrap();
    // The exact statistics of the f32 values, in f64.
    let values = x.to_vec_f64().unwrap();
    let (n, c, l) = (dims[0], dims[1], dims[2] * dims[3]);
    let fwd = BatchNormForward {
        eps: 1e-5,
        relu: false,
        shortcut: false,
    };
    let ones = RawTensor::ones(c, DType::F32, &Device::cpu()).unwrap();
    let zeros = RawTensor::zeros(c, DType::F32, &Device::cpu()).unwrap();
    let out = call(&fwd, &[&x, &ones, &zeros]).unwrap();
    let (mean, var) = (out[1].to_vec_f64().unwrap(), out[2].to_vec_f64().unwrap());
    for ch in 0..c {
        let vals: Vec<f64> = (0..n)
            .flat_map(|i| values[(i * c + ch) * l..][..l].to_vec())
            .collect();
        let m = vals.iter().sum::<f64>() / vals.len() as f64;
        let v = vals.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / vals.len() as f64;
        assert!(
            (mean[ch] - m).abs() < 1e-4,
            "channel {ch}: mean {} vs {m}",
            mean[ch]
        );
        assert!(
            (var[ch] - v).abs() < 1e-3 * v,
            "channel {ch}: variance {} vs {v}",
            var[ch]
        );
    }
}

/// `forward_relu` is `relu(forward(x))`: in training (one fused operation
/// on the CPU) the output, every gradient and the running statistics are
/// those of the two layers in turn, in f64 and f32; in evaluation it is
/// the two in turn.
#[test]
fn batch_norm2d_forward_relu_is_relu_of_forward() {
    fused_layer_is_the_layers_in_turn(Tail::Relu);
}

/// `forward_add_relu(x, s)` is `relu(forward(x) + s)`: likewise, with the
/// shortcut's gradient among the gradients.
#[test]
fn batch_norm2d_forward_add_relu_is_the_three_layers_in_turn() {
    fused_layer_is_the_layers_in_turn(Tail::AddRelu);
}

/// The batch norm fused with `tail` against the layers in turn, in
/// training and evaluation, f64 and f32: the output to the bit, and every
/// gradient (`x`'s, the shortcut's with a shortcut, `γ`'s and `β`'s) and
/// the running statistics to `1e-12` (f64) or `1e-5` (f32).
fn fused_layer_is_the_layers_in_turn(tail: Tail) {
    let shortcut = tail == Tail::AddRelu;
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-12 } else { 1e-5 };
        let dims = [3, 4, 5, 6];
        let x_raw = randn(&dims, 90).to_dtype(dtype).unwrap();
        let s_raw = randn(&dims, 93).to_dtype(dtype).unwrap();
        let v = Tensor::from_raw(randn(&dims, 91).to_dtype(dtype).unwrap());
        let run = |fused: bool, training: bool| {
            let bn =
                BatchNorm2d::with_options(4, BatchNormConfig::default(), dtype, &dev()).unwrap();
            bn.set_training(training);
            let x = Tensor::param(x_raw.clone()).unwrap();
            let s = Tensor::param(s_raw.clone()).unwrap();
            let y = match (fused, tail) {
                (true, _) => forward_with(&bn, &x, Some(&s), tail),
                (false, Tail::None) => bn.forward(&x),
                (false, Tail::Relu) => bn.forward(&x).and_then(|y| y.relu()),
                (false, Tail::AddRelu) => bn.forward(&x).and_then(|y| y.add(&s)?.relu()),
            }
            .unwrap();
            y.mul(&v).unwrap().sum_all().unwrap().backward().unwrap();
            let weight = bn.weight.as_ref().unwrap().grad().unwrap();
            let bias = bn.bias.as_ref().unwrap().grad().unwrap();
            let mut got = vec![("output", y.data()), ("x.grad", x.grad().unwrap().data())];
            if shortcut {
                got.push(("shortcut.grad", s.grad().unwrap().data()));
            }
            got.extend([
                ("weight.grad", weight.data()),
                ("bias.grad", bias.data()),
                ("running_mean", bn.running_mean.get()),
                ("running_var", bn.running_var.get()),
            ]);
            got.into_iter()
                .map(|(name, t)| (name, t.to_vec_f64().unwrap()))
                .collect::<Vec<_>>()
        };
        for training in [true, false] {
            let (fused, apart) = (run(true, training), run(false, training));
            let what = format!("{tail:?} {dtype:?} training {training}");
            assert_eq!(fused[0].1, apart[0].1, "output {what}");
            assert!(fused[0].1.contains(&0.0) && fused[0].1.iter().any(|&y| y > 0.0));
            for ((name, f), (_, a)) in fused.iter().zip(&apart) {
                assert_close(f, a, tol, &format!("{name} {what}"));
            }
        }
    }
}

/// A NaN in the input (and, with a shortcut, NaN and infinities in the
/// shortcut) comes out of the fused layer as it comes out of the
/// two layers in turn: chapter 02's ReLU writes 0 where `v > 0` is false.
#[test]
fn batch_norm2d_forward_relu_treats_nan_as_relu_does() {
    let mut values = randn(&[2, 2, 3, 3], 95).to_vec_f64().unwrap();
    values[4] = f64::NAN;
    let x = Tensor::from_raw(
        RawTensor::from_f64_vec(values, vec![2, 2, 3, 3], DType::F64, &dev()).unwrap(),
    );
    let bn = BatchNorm2d::with_options(2, BatchNormConfig::default(), DType::F64, &dev()).unwrap();
    let fused = bn.forward_relu(&x).unwrap().to_vec_f64().unwrap();
    let apart = bn
        .forward(&x)
        .unwrap()
        .relu()
        .unwrap()
        .to_vec_f64()
        .unwrap();
    let same = |a: f64, b: f64| a == b || (a.is_nan() && b.is_nan());
    assert!(
        fused.iter().zip(&apart).all(|(&a, &b)| same(a, b)),
        "{fused:?} against {apart:?}"
    );
    // With a shortcut: a NaN and both infinities in it, beside the NaN of
    // the input, come out as from the three layers in turn.
    let mut values = randn(&[2, 2, 3, 3], 96).to_vec_f64().unwrap();
    (values[1], values[10], values[30]) = (f64::NAN, f64::INFINITY, f64::NEG_INFINITY);
    let s = Tensor::from_raw(
        RawTensor::from_f64_vec(values, vec![2, 2, 3, 3], DType::F64, &dev()).unwrap(),
    );
    let fused = bn.forward_add_relu(&x, &s).unwrap().to_vec_f64().unwrap();
    let apart = bn.forward(&x).unwrap().add(&s).unwrap().relu().unwrap();
    let apart = apart.to_vec_f64().unwrap();
    assert!(
        fused.iter().zip(&apart).all(|(&a, &b)| same(a, b)),
        "{fused:?} against {apart:?}"
    );
    // +∞ passes the ReLU; NaN (the NaN channel, the shortcut's NaN) and
    // −∞ become 0, as chapter 02's ReLU writes them.
    assert!(
        fused[10] == f64::INFINITY && fused[1] == 0.0 && fused[30] == 0.0,
        "{fused:?}"
    );
}
