//! Exercises for the ResNet sections. Each test is ignored until you
//! implement the function above it (each one is a `todo!()` now). Run them
//! with
//!
//! ```text
//! cargo test -p chapter-09 --test exercises_resnet -- --ignored
//! ```

mod common;

use chapter_02::manual_seed;
use chapter_03::{DType, Result};
use chapter_04::prelude::*;
#[allow(unused_imports)] // your solutions will need these
use chapter_05::{Module, ModuleExt};
#[allow(unused_imports)]
use chapter_09::resnet::Block;
use chapter_09::{BlockKind, BlockSpec, ResNet, ResNetConfig};
use common::*;

// ANCHOR: param_count
/// Exercise 1: the number of parameters of the network `config` describes,
/// from the configuration alone (without building it).
///
/// Hint: a `k × k` convolution from `i` to `o` channels without bias has
/// `o·i·k²` weights, a batch norm of `c` channels `2c` parameters (its
/// running statistics are buffers), the classifier `(features + 1)·classes`.
/// Remember the projection shortcuts, and that a plain network has none.
fn param_count(config: &ResNetConfig) -> usize {
    let _ = config;
    todo!("exercise: count a ResNet's parameters")
}
// ANCHOR_END: param_count

#[test]
#[ignore = "exercise: implement param_count"]
fn exercise_param_count() {
    let bottleneck = ResNetConfig {
        in_channels: 3,
        stem_channels: 16,
        blocks: vec![BlockSpec::new(16, 64, 1), BlockSpec::new(64, 128, 2)],
        block: BlockKind::Bottleneck,
        num_classes: 7,
        residual: true,
    };
    for config in [
        ResNetConfig::resnet14_mnist(),
        ResNetConfig::resnet14_mnist().with_residual(false),
        ResNetConfig::resnet14_digits(),
        ResNetConfig::resnet20_cifar(100),
        bottleneck,
    ] {
        let built = ResNet::new(&config, DType::F32, &dev()).unwrap();
        assert_eq!(param_count(&config), built.num_parameters(), "{config:?}");
    }
    assert_eq!(param_count(&ResNetConfig::resnet14_mnist()), 174_970);
}

// ANCHOR: zero_init
/// Exercise 2: torchvision's `zero_init_residual`. Set the scale `γ` of
/// the *last* batch norm of every residual block (`bn2` of a basic block,
/// `bn3` of a bottleneck) to zero, so that each block starts as its
/// shortcut: `relu(0 + x) = x` for the non-negative `x` a block receives.
/// Goyal et al. (2017) found this helps large-batch training.
///
/// Hint: `bn.weight` is an `Option<Tensor>`; `Tensor::set_data` replaces
/// a parameter's value in place, and `RawTensor::zeros_like` (or
/// `mul_scalar(0.0)`) gives the zeros.
fn zero_init_residual(model: &ResNet) -> Result<()> {
    let _ = model;
    todo!("exercise: start every residual block as the identity")
}
// ANCHOR_END: zero_init

#[test]
#[ignore = "exercise: implement zero_init_residual"]
fn exercise_zero_init_residual() {
    manual_seed(1);
    let net = ResNet::new(&ResNetConfig::resnet14_digits(), DType::F64, &dev()).unwrap();
    zero_init_residual(&net).unwrap();
    net.eval();
    // Block 0 keeps the width and the size: with γ = 0 it is the identity
    // on the stem's (non-negative) output.
    let x = input(&[2, 8, 6, 6], 2).relu().unwrap();
    let Block::Basic(b0) = &net.blocks[0] else {
        panic!("a basic block")
    };
    assert_close(
        &b0.forward(&x).unwrap().to_vec_f64().unwrap(),
        &x.to_vec_f64().unwrap(),
        1e-12,
        "block 0",
    );
    // The first batch norm of each block is left alone.
    assert!(b0
        .bn1
        .weight
        .as_ref()
        .unwrap()
        .to_vec_f64()
        .unwrap()
        .iter()
        .all(|v| *v == 1.0));
    let zeros = net
        .named_parameters()
        .into_iter()
        .filter(|(_, p)| p.to_vec_f64().unwrap().iter().all(|v| *v == 0.0))
        .map(|(n, _)| n)
        .collect::<Vec<_>>();
    // bn2.weight of the four blocks, and the (zero-initialised) biases.
    assert_eq!(
        zeros.iter().filter(|n| n.ends_with("bn2.weight")).count(),
        4,
        "{zeros:?}"
    );
    assert!(!zeros
        .iter()
        .any(|n| n.ends_with("bn1.weight") || n.ends_with("downsample.1.weight")));
}
