//! Group `reductions`: sum, mean, max (with indices), var, logsumexp and the
//! softmax family. A `dim` of `null` means every dimension, as in PyTorch.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let x = c.input("x")?;
    let keepdim = || -> Result<bool, Failure> {
        if args.has("keepdim") {
            args.bool("keepdim")
        } else {
            Ok(false)
        }
    };
    let dims = args.dims("dim")?;
    let all_dims = || (0..x.rank() as i64).collect::<Vec<i64>>();
    let out = match c.op() {
        // `dim=None, keepdim=True` reduces every dimension to size 1.
        "sum" => match (dims, keepdim()?) {
            (None, false) => x.sum_all()?,
            (d, k) => x.sum(d.unwrap_or_else(all_dims), k)?,
        },
        "mean" => match (dims, keepdim()?) {
            (None, false) => x.mean_all()?,
            (d, k) => x.mean(d.unwrap_or_else(all_dims), k)?,
        },
        "max" => match dims.as_deref() {
            None => x.max_all()?,
            Some(&[d]) => {
                let (values, indices) = x.max_with_indices(d, keepdim()?)?;
                return Ok(OpOutputs::one(values).with_aux("indices", indices));
            }
            Some(d) => {
                return Err(Failure::new(format!(
                    "torch.max takes one dim, the case gives {d:?}"
                )))
            }
        },
        "var" => x.var(
            dims.unwrap_or_else(all_dims),
            args.usize("correction")?,
            keepdim()?,
        )?,
        "logsumexp" => x.logsumexp(dims.unwrap_or_else(all_dims), keepdim()?)?,
        "softmax" => x.softmax(args.i64("dim")?)?,
        "log_softmax" => x.log_softmax(args.i64("dim")?)?,
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
