//! Group `loss` (chapter 05): `cross_entropy` (mean/sum, label smoothing,
//! ignore_index, `[N, C, d]` logits), `nll_loss`, `mse_loss` and
//! `binary_cross_entropy_with_logits`.

use super::{OpCall, OpOutputs};
use crate::parity::args::Args;
use crate::parity::Failure;
use chapter_05::loss::{
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss, CrossEntropyOptions,
    Reduction,
};

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let reduction = Reduction::parse(args.str("reduction")?)?;
    let out = match c.op() {
        "cross_entropy" => {
            let opts = CrossEntropyOptions {
                reduction,
                label_smoothing: if args.has("label_smoothing") {
                    args.f64("label_smoothing")?
                } else {
                    0.0
                },
                ignore_index: ignore_index(&args)?,
                weight: c.input("weight").ok().cloned(),
            };
            cross_entropy(c.input("logits")?, c.input("target")?, &opts)?
        }
        "nll_loss" => nll_loss(
            c.input("input")?,
            c.input("target")?,
            reduction,
            ignore_index(&args)?,
        )?,
        "mse_loss" => mse_loss(c.input("input")?, c.input("target")?, reduction)?,
        "binary_cross_entropy_with_logits" => binary_cross_entropy_with_logits(
            c.input("logits")?,
            c.input("target")?,
            reduction,
            c.input("pos_weight").ok(),
        )?,
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}

/// PyTorch's `ignore_index` (default -100).
fn ignore_index(args: &Args<'_>) -> Result<Option<i64>, Failure> {
    Ok(Some(if args.has("ignore_index") {
        args.i64("ignore_index")?
    } else {
        -100
    }))
}
