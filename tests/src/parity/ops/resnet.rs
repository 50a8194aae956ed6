//! Group `resnet_block` (chapter 09): torchvision's `BasicBlock` in
//! training mode, with and without its projection shortcut.
//!
//! The dispatcher builds chapter 09's [`BasicBlock`] around the fixture's
//! tensors, found by their torchvision names (`conv1.weight`,
//! `bn1.running_mean`, `downsample.0.weight`, ...), so the suite's
//! gradients reach them; the running statistics after the step are the aux
//! results `<bn>.running_mean_after` / `<bn>.running_var_after`.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_03::Tensor;
use chapter_05::{BatchNormConfig, Module, ModuleExt};
use chapter_09::{BasicBlock, BlockSpec};

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    match c.op() {
        "resnet_basic_block" => basic_block(c),
        _ => Err(c.unknown_op()),
    }
}

/// `BasicBlock(in_ch, out_ch, stride).train()(x)`.
fn basic_block(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let or = |name: &str, default: f64| {
        if args.has(name) {
            args.f64(name)
        } else {
            Ok(default)
        }
    };
    let spec = BlockSpec::new(
        args.usize("in_ch")?,
        args.usize("out_ch")?,
        args.usize("stride")?,
    );
    let bn = BatchNormConfig {
        eps: or("bn_eps", 1e-5)?,
        momentum: Some(or("bn_momentum", 0.1)?),
        ..BatchNormConfig::default()
    };
    let get = |name: &str| {
        c.input(name)
            .cloned()
            .map_err(|f| chapter_02::Error::invalid("resnet_basic_block", f.0))
    };
    let block = BasicBlock::from_tensors(&spec, bn, &get)?;
    let training = !args.has("mode") || args.str("mode")? == "train";
    block.set_training(training);
    let mut outputs = OpOutputs::one(block.forward(c.input("x")?)?);
    if training {
        for (name, value) in block.named_buffers() {
            if name.ends_with("running_mean") || name.ends_with("running_var") {
                outputs = outputs.with_aux(&format!("{name}_after"), Tensor::from_raw(value));
            }
        }
    }
    Ok(outputs)
}
