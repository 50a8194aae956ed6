//! Lessons: the residual blocks against PyTorch's fixtures (train mode:
//! output, every gradient, running statistics), the three configurations'
//! shapes and parameter counts against PyTorch's, gradient checks of both
//! blocks, a few steps of training, and the errors a user meets.
//! `cargo test -p chapter-09 --test resnet`.

mod common;

use chapter_02::manual_seed;
use chapter_03::{gradcheck, DType, GradcheckOptions, RawTensor, Result, Tensor};
use chapter_05::{
    cross_entropy, BatchNormConfig, CrossEntropyOptions, Module, ModuleExt, StateDictExt,
};
use chapter_06::{Optimizer, Sgd, SgdConfig};
use chapter_09::resnet::Block;
use chapter_09::{BasicBlock, BlockKind, BlockSpec, Bottleneck, ResNet, ResNetConfig};
use common::*;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;

// ---------------------------------------------------------------------------
// PyTorch's BasicBlock, from the fixtures.

/// The fixture folder: `CANDLE_FIXTURES` when set, the shipped one otherwise.
fn fixtures() -> PathBuf {
    match std::env::var_os("CANDLE_FIXTURES") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures"),
    }
}

/// A float tensor of a safetensors file, read as `f64` values and built
/// in `dtype`.
fn read_tensor(st: &SafeTensors<'_>, key: &str, dtype: DType) -> RawTensor {
    let t = st.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
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
        other => panic!("{key}: unexpected dtype {other:?}"),
    };
    RawTensor::from_f64_vec(values, t.shape().to_vec(), dtype, &dev()).unwrap()
}

/// `|got − want| ≤ atol + rtol·|want|` (the fixtures' rule), naming the
/// first bad element.
fn allclose(got: &[f64], want: &[f64], tol: (f64, f64), what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol.1 + tol.0 * w.abs(),
            "{what}[{i}]: got {g}, want {w} (rtol {}, atol {})",
            tol.0,
            tol.1
        );
    }
}

/// Runs every `resnet_basic_block` case of the manifest in `dtype`: builds
/// the block from the fixture's tensors, runs it in training mode, and
/// compares the output, the gradient of `(out·w).sum()` with respect to
/// the input and every parameter, and the running statistics after the
/// step. Returns how many cases ran.
fn check_basic_block_cases(dtype: DType) -> usize {
    let dir = fixtures();
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    let mut ran = 0;
    for case in manifest["cases"].as_array().unwrap() {
        if case["op"] != "resnet_basic_block" {
            continue;
        }
        let id = case["id"].as_str().unwrap();
        let (file, tol) = match dtype {
            DType::F32 => ("file", &case["tol"]),
            _ => ("file_f64", &case["tol_f64"]),
        };
        let tol = (tol["rtol"].as_f64().unwrap(), tol["atol"].as_f64().unwrap());
        let bytes = std::fs::read(dir.join(case[file].as_str().unwrap())).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let tensors = case["tensors"].as_array().unwrap();
        let of_role = |role: &'static str| tensors.iter().filter(move |t| t["role"] == role);
        let load = |t: &Value| read_tensor(&st, t["key"].as_str().unwrap(), dtype);
        let name = |t: &Value| t["name"].as_str().unwrap().to_string();

        // Inputs: x and the parameters require grad; running stats do not.
        let inputs: HashMap<String, Tensor> = of_role("input")
            .map(|t| {
                let v = Tensor::from_raw(load(t));
                if t["differentiable"] == true {
                    v.set_requires_grad(true).unwrap();
                }
                (name(t), v)
            })
            .collect();
        let args = &case["args"];
        let arg = |k: &str| args[k].as_u64().unwrap() as usize;
        let spec = BlockSpec::new(arg("in_ch"), arg("out_ch"), arg("stride"));
        let bn = BatchNormConfig {
            eps: args["bn_eps"].as_f64().unwrap_or(1e-5),
            momentum: Some(args["bn_momentum"].as_f64().unwrap_or(0.1)),
            ..Default::default()
        };
        let get = |n: &str| -> Result<Tensor> {
            inputs
                .get(n)
                .cloned()
                .ok_or_else(|| chapter_03::Error::invalid("fixture", format!("no input {n}")))
        };
        let block = BasicBlock::from_tensors(&spec, bn, &get).unwrap();
        assert_eq!(
            block.downsample.is_some(),
            args["downsample"] == true,
            "{id}"
        );
        block.train();

        let x = &inputs["x"];
        let out = block.forward(x).unwrap();
        let want = |n: &str| {
            let t = tensors.iter().find(|t| t["name"] == n).unwrap();
            load(t).to_vec_f64().unwrap()
        };
        allclose(
            &out.to_vec_f64().unwrap(),
            &want("out"),
            tol,
            &format!("{id}: out"),
        );
        let w = Tensor::from_raw(load(of_role("w").next().unwrap()));
        out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();

        let mut grads = 0;
        for g in of_role("grad") {
            let of = g["of"].as_str().unwrap();
            let got = inputs[of].grad().unwrap().to_vec_f64().unwrap();
            allclose(
                &got,
                &load(g).to_vec_f64().unwrap(),
                tol,
                &format!("{id}: {}", name(g)),
            );
            grads += 1;
        }
        // x and every parameter of the block has its gradient checked.
        assert_eq!(grads, 1 + block.named_parameters().len(), "{id}");

        let buffers: HashMap<String, RawTensor> = block.named_buffers().into_iter().collect();
        let mut stats = 0;
        for a in of_role("aux") {
            let n = name(a);
            let Some(buffer) = n.strip_suffix("_after") else {
                continue;
            };
            let got = buffers[buffer].to_vec_f64().unwrap();
            allclose(
                &got,
                &load(a).to_vec_f64().unwrap(),
                tol,
                &format!("{id}: {n}"),
            );
            stats += 1;
        }
        assert_eq!(
            stats,
            if block.downsample.is_some() { 6 } else { 4 },
            "{id}"
        );
        ran += 1;
    }
    ran
}

#[test]
fn basic_block_matches_pytorch_in_train_mode_f32() {
    assert!(check_basic_block_cases(DType::F32) >= 2);
}

#[test]
fn basic_block_matches_pytorch_in_train_mode_f64() {
    assert!(check_basic_block_cases(DType::F64) >= 2);
}

#[test]
fn block_parameter_names_are_torchvision_names() {
    // `BasicBlock(4, 8, stride=2).state_dict().keys()` in PyTorch (see
    // tests/param_counts.py), sorted.
    let torch = [
        "bn1.bias",
        "bn1.num_batches_tracked",
        "bn1.running_mean",
        "bn1.running_var",
        "bn1.weight",
        "bn2.bias",
        "bn2.num_batches_tracked",
        "bn2.running_mean",
        "bn2.running_var",
        "bn2.weight",
        "conv1.weight",
        "conv2.weight",
        "downsample.0.weight",
        "downsample.1.bias",
        "downsample.1.num_batches_tracked",
        "downsample.1.running_mean",
        "downsample.1.running_var",
        "downsample.1.weight",
    ];
    let block = BasicBlock::new(&BlockSpec::new(4, 8, 2), true, DType::F32, &dev()).unwrap();
    let keys: Vec<String> = block.state_dict().into_keys().collect();
    assert_eq!(keys, torch);
    // Same widths and stride 1: no projection, so no `downsample.*`.
    let same = BasicBlock::new(&BlockSpec::new(8, 8, 1), true, DType::F32, &dev()).unwrap();
    assert!(same.downsample.is_none());
    assert_eq!(same.state_dict().len(), 12);
}

// ---------------------------------------------------------------------------
// The networks.

/// A batch of seeded normal images `[n, c, h, w]` in `f32`.
fn images(shape: [usize; 4], seed: u64) -> Tensor {
    Tensor::from_raw(randn(&shape, seed).to_dtype(DType::F32).unwrap())
}

fn model(config: &ResNetConfig, seed: u64) -> ResNet {
    manual_seed(seed);
    ResNet::new(config, DType::F32, &dev()).unwrap()
}

#[test]
fn every_config_maps_images_to_logits() {
    let cases = [
        (ResNetConfig::resnet14_mnist(), [2, 1, 28, 28], 10, 14),
        (ResNetConfig::resnet14_digits(), [3, 1, 8, 8], 10, 10),
        (ResNetConfig::resnet20_cifar(100), [2, 3, 32, 32], 100, 20),
    ];
    for (config, shape, classes, depth) in cases {
        let net = model(&config, 1);
        assert_eq!(config.depth(), depth);
        let logits = net.forward(&images(shape, 2)).unwrap();
        assert_eq!(logits.dims(), vec![shape[0], classes], "{config:?}");
        assert!(logits.to_vec_f64().unwrap().iter().all(|v| v.is_finite()));
        // Evaluation mode, running statistics: same shape.
        net.eval();
        assert_eq!(
            net.forward(&images(shape, 3)).unwrap().dims(),
            vec![shape[0], classes]
        );
    }
    // The MNIST network halves 28 → 14 → 7.
    assert_eq!(
        model(&ResNetConfig::resnet14_mnist(), 1).feature_size(28, 28),
        (7, 7)
    );
}

/// Parameter counts of the same architectures built in PyTorch
/// (`/work/venv-torch/bin/python chapters/09-resnet/tests/param_counts.py`,
/// which builds torchvision-style blocks with these configurations and
/// prints `sum(p.numel() for p in m.parameters())`).
#[test]
fn parameter_counts_match_pytorch() {
    let count = |c: &ResNetConfig| model(c, 0).num_parameters();
    assert_eq!(count(&ResNetConfig::resnet14_mnist()), 174_970);
    assert_eq!(
        count(&ResNetConfig::resnet14_mnist().with_residual(false)),
        172_218
    );
    assert_eq!(count(&ResNetConfig::resnet14_digits()), 10_978);
    assert_eq!(count(&ResNetConfig::resnet20_cifar(10)), 272_474);
    assert_eq!(count(&ResNetConfig::resnet20_cifar(100)), 278_324);
    for (depth, n) in [(14, 28_378), (26, 56_410), (50, 112_474)] {
        let c = ResNetConfig::with_depth_basic(depth, 16, 1, 10).unwrap();
        assert_eq!(c.depth(), depth);
        assert_eq!(count(&c), n, "depth {depth}");
        // Same width everywhere: no projections, so plain = residual.
        assert_eq!(count(&c.with_residual(false)), n, "plain, depth {depth}");
    }
    let b = |i, o, s| Bottleneck::new(&BlockSpec::new(i, o, s), true, DType::F32, &dev());
    assert_eq!(b(16, 64, 2).unwrap().num_parameters(), 4_928);
    assert_eq!(b(64, 64, 1).unwrap().num_parameters(), 4_544);
    let basic = BasicBlock::new(&BlockSpec::new(4, 8, 2), true, DType::F32, &dev()).unwrap();
    assert_eq!(basic.num_parameters(), 944);
}

#[test]
fn bottleneck_shapes_and_names() {
    manual_seed(3);
    let block = Bottleneck::new(&BlockSpec::new(16, 64, 2), true, DType::F32, &dev()).unwrap();
    let y = block.forward(&images([2, 16, 7, 7], 4)).unwrap();
    assert_eq!(y.dims(), vec![2, 64, 4, 4]);
    // `Bottleneck(16, 16, stride=2)` (expansion 4) in torchvision.
    let shapes: Vec<(String, Vec<usize>)> = block
        .named_parameters()
        .into_iter()
        .map(|(n, p)| (n, p.dims()))
        .collect();
    let want = [
        ("conv1.weight", vec![16, 16, 1, 1]),
        ("bn1.weight", vec![16]),
        ("bn1.bias", vec![16]),
        ("conv2.weight", vec![16, 16, 3, 3]),
        ("bn2.weight", vec![16]),
        ("bn2.bias", vec![16]),
        ("conv3.weight", vec![64, 16, 1, 1]),
        ("bn3.weight", vec![64]),
        ("bn3.bias", vec![64]),
        ("downsample.0.weight", vec![64, 16, 1, 1]),
        ("downsample.1.weight", vec![64]),
        ("downsample.1.bias", vec![64]),
    ];
    let want: Vec<(String, Vec<usize>)> = want.into_iter().map(|(n, s)| (n.into(), s)).collect();
    assert_eq!(shapes, want);
    assert_eq!(block.state_dict().len(), 24);
    // A bottleneck network: ResNet-50's block on small images.
    let config = ResNetConfig {
        in_channels: 3,
        stem_channels: 16,
        blocks: vec![BlockSpec::new(16, 64, 1), BlockSpec::new(64, 128, 2)],
        block: BlockKind::Bottleneck,
        num_classes: 5,
        residual: true,
    };
    let net = model(&config, 5);
    assert!(matches!(net.blocks[1], Block::Bottleneck(_)));
    assert_eq!(
        net.forward(&images([2, 3, 8, 8], 6)).unwrap().dims(),
        vec![2, 5]
    );
    assert_eq!(config.depth(), 8);
}

#[test]
fn resnet20_every_parameter_gets_a_gradient() {
    let net = model(&ResNetConfig::resnet20_cifar(10), 7);
    let logits = net.forward(&images([4, 3, 32, 32], 8)).unwrap();
    let target =
        Tensor::from_raw(RawTensor::from_vec(vec![1i64, 4, 7, 9], vec![4], &dev()).unwrap());
    cross_entropy(&logits, &target, &CrossEntropyOptions::default())
        .unwrap()
        .backward()
        .unwrap();
    let params = net.named_parameters();
    assert_eq!(params.len(), 3 * 3 * 6 + 2 * 3 + 3 + 2); // blocks, projections, stem, fc
    for (name, p) in params {
        let g = p
            .grad()
            .unwrap_or_else(|e| panic!("{name}: no gradient ({e})"));
        let g = g.to_vec_f64().unwrap();
        assert!(
            g.iter().all(|v| v.is_finite()),
            "{name}: non-finite gradient"
        );
        assert!(g.iter().any(|v| *v != 0.0), "{name}: gradient is all zeros");
    }
}

#[test]
fn a_few_sgd_steps_lower_the_loss_of_the_digits_resnet() {
    let net = model(&ResNetConfig::resnet14_digits(), 11);
    let x = images([16, 1, 8, 8], 12);
    let labels: Vec<i64> = (0..16).map(|i| (i * 7 % 10) as i64).collect();
    let target = Tensor::from_raw(RawTensor::from_vec(labels, vec![16], &dev()).unwrap());
    let mut opt = Sgd::new(
        net.parameters(),
        SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(0.1)
        },
    )
    .unwrap();
    let mut losses = Vec::new();
    for _ in 0..15 {
        opt.zero_grad();
        let loss = cross_entropy(&net.forward(&x).unwrap(), &target, &Default::default()).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        losses.push(loss.to_vec_f64().unwrap()[0]);
    }
    let (first, last) = (losses[0], *losses.last().unwrap());
    assert!(
        last < 0.5 * first,
        "loss went from {first} to {last}: {losses:?}"
    );
}

#[test]
fn a_state_dict_round_trips_and_another_models_is_refused() {
    let net = model(&ResNetConfig::resnet14_digits(), 13);
    let x = images([4, 1, 8, 8], 14);
    net.forward(&x).unwrap(); // moves the running statistics
    net.eval();
    let want = net.forward(&x).unwrap().to_vec_f64().unwrap();
    let state = net.state_dict();
    // PyTorch's ResNet of this configuration has 62 state-dict entries
    // (5 per batch norm, 1 per convolution, 2 for fc).
    assert_eq!(state.len(), 62);
    for key in [
        "conv1.weight",
        "bn1.num_batches_tracked",
        "blocks.2.downsample.1.running_var",
        "fc.bias",
    ] {
        assert!(state.contains_key(key), "{key}");
    }
    let copy = model(&ResNetConfig::resnet14_digits(), 99);
    copy.load_state_dict(&state).unwrap();
    copy.eval();
    assert_eq!(copy.forward(&x).unwrap().to_vec_f64().unwrap(), want);

    // The MNIST network's weights do not fit the digits network: every
    // mismatch is named, with both shapes.
    let mnist = model(&ResNetConfig::resnet14_mnist(), 15);
    let e = copy
        .load_state_dict(&mnist.state_dict())
        .unwrap_err()
        .to_string();
    assert!(e.contains("unexpected keys: blocks.4."), "{e}");
    assert!(
        e.contains("size mismatch for conv1.weight: expected [8, 1, 3, 3], got [16, 1, 3, 3]"),
        "{e}"
    );
    assert!(
        e.contains("size mismatch for fc.weight: expected [10, 16], got [10, 64]"),
        "{e}"
    );
    // And nothing was changed.
    assert_eq!(copy.forward(&x).unwrap().to_vec_f64().unwrap(), want);
}

// ---------------------------------------------------------------------------
// Gradient checks.

/// Checks the gradients of a block with respect to its input and every
/// parameter, in `f64`, against central differences. `build` makes the
/// block from tensors by name, so the closure gradcheck calls can put the
/// perturbed tensors in; the running statistics are fixed, random but not
/// trivial, so evaluation mode uses something other than 0 and 1.
fn gradcheck_block<M: Module>(
    reference: &M,
    x_shape: [usize; 4],
    training: bool,
    build: impl Fn(&dyn Fn(&str) -> Result<Tensor>) -> Result<M>,
) {
    let params = reference.named_parameters();
    let mut stats: HashMap<String, Tensor> = HashMap::new();
    for (i, (name, b)) in reference.named_buffers().into_iter().enumerate() {
        let r = randn(b.dims(), 100 + i as u64);
        let value = if name.ends_with("running_var") {
            r.mul_scalar(0.2).unwrap().exp().unwrap()
        } else {
            r.mul_scalar(0.3).unwrap()
        };
        stats.insert(name, Tensor::from_raw(value));
    }
    let mut inputs = vec![randn(&x_shape, 1)];
    for (i, (name, p)) in params.iter().enumerate() {
        let r = randn(&p.dims(), 10 + i as u64);
        // Batch-norm scales near 1 and shifts near 0, as after training.
        inputs.push(match name.ends_with("weight") && p.rank() == 1 {
            true => r.mul_scalar(0.2).unwrap().add_scalar(1.0).unwrap(),
            false => r.mul_scalar(0.3).unwrap(),
        });
    }
    let report = gradcheck(
        |t| {
            let get = |n: &str| -> Result<Tensor> {
                match params.iter().position(|(p, _)| p == n) {
                    Some(i) => Ok(t[i + 1].clone()),
                    None => Ok(stats[n].clone()),
                }
            };
            let block = build(&get)?;
            block.set_training(training);
            block.forward(&t[0])
        },
        &inputs,
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(
        report.checked,
        inputs.iter().map(|i| i.elem_count()).sum::<usize>()
    );
}

#[test]
fn gradcheck_basic_block_train_and_eval() {
    let spec = BlockSpec::new(3, 4, 2);
    let reference = BasicBlock::new(&spec, true, DType::F64, &dev()).unwrap();
    for training in [true, false] {
        gradcheck_block(&reference, [2, 3, 5, 5], training, |get| {
            BasicBlock::from_tensors(&spec, BatchNormConfig::default(), get)
        });
    }
}

#[test]
fn gradcheck_bottleneck_train_and_eval() {
    let spec = BlockSpec::new(4, 8, 2);
    let reference = Bottleneck::new(&spec, true, DType::F64, &dev()).unwrap();
    for training in [true, false] {
        gradcheck_block(&reference, [2, 4, 5, 5], training, |get| {
            Bottleneck::from_tensors(&spec, BatchNormConfig::default(), get)
        });
    }
}

// ---------------------------------------------------------------------------
// Errors.

#[test]
fn wrong_inputs_are_reported_with_the_layer_and_both_shapes() {
    let net = model(&ResNetConfig::resnet14_mnist(), 16);
    let e = err(net.forward(&images([2, 3, 28, 28], 17)));
    assert!(e.starts_with("ResNet: the stem (conv1)"), "{e}");
    assert!(
        e.contains("[N, 1, H, W]") && e.contains("[2, 3, 28, 28]"),
        "{e}"
    );
    let rank3 = Tensor::from_raw(randn(&[1, 28, 28], 18).to_dtype(DType::F32).unwrap());
    let e = err(net.forward(&rank3));
    assert!(
        e.contains("rank 3") && e.contains("[1, 28, 28]") && e.contains("batch dimension"),
        "{e}"
    );
    // One 1 × 1 image cannot be trained on (batch norm has one value per
    // channel), but it can be evaluated.
    let digits = model(&ResNetConfig::resnet14_digits(), 19);
    let e = err(digits.forward(&images([1, 1, 1, 1], 20)));
    assert!(
        e.contains("too small to train on") && e.contains("1 × 1"),
        "{e}"
    );
    digits.eval();
    assert_eq!(
        digits.forward(&images([1, 1, 1, 1], 20)).unwrap().dims(),
        vec![1, 10]
    );
    let e = err(digits.forward(&images([2, 1, 0, 8], 21)));
    assert!(e.contains("empty"), "{e}");
    // A block names its layer too.
    let block = BasicBlock::new(&BlockSpec::new(4, 4, 1), true, DType::F32, &dev()).unwrap();
    let e = err(block.forward(&images([2, 3, 8, 8], 22)));
    assert!(
        e.contains("BasicBlock: conv1 expects an input [N, 4, H, W], got shape [2, 3, 8, 8]"),
        "{e}"
    );
}

#[test]
fn bad_configs_are_refused_before_anything_is_built() {
    let base = ResNetConfig::resnet14_digits();
    let check = |edit: &dyn Fn(&mut ResNetConfig), want: &str| {
        let mut c = base.clone();
        edit(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(want), "{e}");
        let built = ResNet::new(&c, DType::F32, &dev());
        assert_eq!(built.err().map(|e| e.to_string()), Some(e));
    };
    check(&|c| c.in_channels = 0, "in_channels is 0");
    check(&|c| c.stem_channels = 0, "stem_channels is 0");
    check(&|c| c.num_classes = 0, "num_classes is 0");
    check(&|c| c.blocks.clear(), "no blocks");
    check(&|c| c.blocks[1].stride = 0, "block 1 has stride 0");
    check(
        &|c| c.blocks[2].out_channels = 0,
        "block 2 has 8 input and 0 output channels",
    );
    check(
        &|c| c.blocks[3].in_channels = 12,
        "block 3 takes in_channels = 12 but block 2's out_channels is 16",
    );
    check(
        &|c| c.blocks[0].in_channels = 4,
        "block 0 takes in_channels = 4 but the stem's stem_channels is 8",
    );
    check(
        &|c| {
            c.block = BlockKind::Bottleneck;
            c.blocks = vec![BlockSpec::new(8, 6, 1)];
        },
        "block 0 is a bottleneck with out_channels = 6, not a multiple of its expansion 4",
    );
    assert!(ResNetConfig::with_depth_basic(13, 8, 1, 10).is_err());
    assert!(ResNetConfig::with_depth_basic(2, 8, 1, 10).is_err());
    let e = Bottleneck::new(&BlockSpec::new(8, 6, 1), true, DType::F32, &dev())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("out_channels = 6"), "{e}");
}

#[test]
fn plain_blocks_have_no_shortcut() {
    let net = model(&ResNetConfig::resnet14_mnist().with_residual(false), 23);
    for block in &net.blocks {
        let Block::Basic(b) = block else {
            panic!("basic blocks")
        };
        assert!(!b.residual && b.downsample.is_none());
    }
    // A plain block is the residual one minus the `+ x`: with the same
    // weights, the residual output is relu(plain pre-activation + x).
    manual_seed(24);
    let spec = BlockSpec::new(4, 4, 1);
    let mut block = BasicBlock::new(&spec, true, DType::F64, &dev()).unwrap();
    block.eval();
    let x = input(&[2, 4, 5, 5], 25);
    let with_skip = block.forward(&x).unwrap().to_vec_f64().unwrap();
    block.residual = false;
    let without = block.forward(&x).unwrap().to_vec_f64().unwrap();
    assert_ne!(with_skip, without);
    for (i, (a, b)) in with_skip.iter().zip(&without).enumerate() {
        // Where the plain block's output is positive, it is the
        // pre-activation; adding x and applying ReLU must give `a`.
        if *b > 0.0 {
            let xi = x.to_vec_f64().unwrap()[i];
            assert!((a - (b + xi).max(0.0)).abs() < 1e-12, "{i}");
        }
    }
}
