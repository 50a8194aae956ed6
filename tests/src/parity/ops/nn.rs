//! Group `nn` (chapter 05): `Linear`, `Embedding`, `layer_norm`, `rms_norm`
//! and `batch_norm` in training mode (with the running statistics after the
//! update as aux results) and in evaluation mode.
//!
//! Where the case is a layer's forward pass, the dispatcher builds the layer
//! around the fixture's tensors (so the gradients reach them) and calls the
//! layer: `BatchNorm1d` for `[N, C]` and `[N, C, L]`, chapter 09's
//! `BatchNorm2d` for `[N, C, H, W]`; the functional form covers other ranks.

use super::{OpCall, OpOutputs};
use crate::parity::args::resolve_dim;
use crate::parity::Failure;
use chapter_03::Tensor;
use chapter_05::{
    batch_norm, layer_norm, rms_norm, BatchNorm1d, BatchNormConfig, Buffer, Embedding, Linear,
    Module, ModuleExt,
};
use chapter_09::BatchNorm2d;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let optional = |name: &str| c.input(name).ok().cloned();
    let out = match c.op() {
        // F.linear(x, weight, bias): y = x Wᵀ + b
        "linear" => {
            let bias = if args.bool("bias")? {
                Some(c.input("bias")?.clone())
            } else {
                None
            };
            Linear::from_weights(c.input("weight")?.clone(), bias).forward(c.input("x")?)?
        }
        // F.embedding(indices, weight, padding_idx): no gradient reaches
        // row `padding_idx` (negative counts from the end).
        "embedding" => {
            let weight = c.input("weight")?;
            let padding_idx = if args.has("padding_idx") {
                let p = args.i64("padding_idx")?;
                Some(
                    resolve_dim(p, weight.dims()[0])
                        .map_err(|e| Failure::new(format!("argument `padding_idx`: {e}")))?,
                )
            } else {
                None
            };
            Embedding::from_weights(weight.clone(), padding_idx)?.forward(c.input("indices")?)?
        }
        "layer_norm" => layer_norm(
            c.input("x")?,
            &args.usize_or_list("normalized_shape")?,
            optional("weight").as_ref(),
            optional("bias").as_ref(),
            args.f64("eps")?,
        )?,
        "rms_norm" => rms_norm(
            c.input("x")?,
            &args.usize_or_list("normalized_shape")?,
            optional("weight").as_ref(),
            // `eps=None`: the dtype's machine epsilon, as in PyTorch.
            if args.has("eps") {
                Some(args.f64("eps")?)
            } else {
                None
            },
        )?,
        "batch_norm" => return run_batch_norm(c),
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}

/// `F.batch_norm(x, running_mean, running_var, weight, bias, training, momentum, eps)`.
/// Inputs of rank 2 or 3 go through a `BatchNorm1d` holding the fixture's
/// tensors, rank 4 through a `BatchNorm2d`; other ranks through the
/// functional form.
fn run_batch_norm(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let x = c.input("x")?;
    let training = args.bool("training")?;
    let momentum = if args.has("momentum") {
        args.f64("momentum")?
    } else {
        0.1
    };
    let eps = args.f64("eps")?;
    let running_mean = Buffer::new(c.input("running_mean")?.data().copy()?);
    let running_var = Buffer::new(c.input("running_var")?.data().copy()?);
    let (weight, bias) = (c.input("weight")?.clone(), c.input("bias")?.clone());
    let channels = x.dims()[1];
    let config = BatchNormConfig {
        eps,
        momentum: Some(momentum),
        ..BatchNormConfig::default()
    };
    let (out, running_mean, running_var) = if matches!(x.rank(), 2..=4) {
        let mut bn = BatchNorm1d::with_options(channels, config, x.dtype(), &x.device())?;
        bn.weight = Some(weight);
        bn.bias = Some(bias);
        bn.running_mean = running_mean;
        bn.running_var = running_var;
        bn.set_training(training);
        let out = if x.rank() == 4 {
            // BatchNorm2d is a BatchNorm1d behind a reshape.
            let bn2d = BatchNorm2d::from(bn);
            let out = bn2d.forward(x)?;
            bn = bn2d.into_inner();
            out
        } else {
            bn.forward(x)?
        };
        (out, bn.running_mean, bn.running_var)
    } else {
        let out = batch_norm(
            x,
            Some(&running_mean),
            Some(&running_var),
            Some(&weight),
            Some(&bias),
            training,
            momentum,
            eps,
        )?;
        (out, running_mean, running_var)
    };
    let mut outputs = OpOutputs::one(out);
    if training {
        outputs = outputs
            .with_aux("running_mean_after", Tensor::from_raw(running_mean.get()))
            .with_aux("running_var_after", Tensor::from_raw(running_var.get()));
    }
    Ok(outputs)
}
