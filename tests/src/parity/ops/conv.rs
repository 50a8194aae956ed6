//! Group `conv` (chapter 09): `conv2d`, `conv_transpose2d`, `max_pool2d`
//! (with indices), `avg_pool2d` and `adaptive_avg_pool2d`.
//!
//! PyTorch's arguments are an int or an `(h, w)` pair; `padding` may also
//! be `'same'` or `'valid'`. An argument the case leaves out takes
//! PyTorch's default.

use super::{OpCall, OpOutputs};
use crate::parity::args::Args;
use crate::parity::Failure;
use chapter_09::{
    adaptive_avg_pool2d, avg_pool2d, conv2d, conv_transpose2d, max_pool2d_with_indices,
    AvgPool2dOptions, Conv2dOptions, ConvTranspose2dOptions, Padding, Pool2dOptions,
};

/// An int or an `(h, w)` pair as a pair; `default` when absent.
fn pair(args: &Args<'_>, name: &str, default: (usize, usize)) -> Result<(usize, usize), Failure> {
    if !args.has(name) {
        return Ok(default);
    }
    match args.usize_or_list(name)?.as_slice() {
        [v] => Ok((*v, *v)),
        [h, w] => Ok((*h, *w)),
        other => Err(Failure::new(format!(
            "argument `{name}` should be an int or a pair, got {other:?}"
        ))),
    }
}

fn flag(args: &Args<'_>, name: &str, default: bool) -> Result<bool, Failure> {
    if args.has(name) {
        args.bool(name)
    } else {
        Ok(default)
    }
}

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let x = c.input("x")?;
    let bias = c.input("bias").ok();
    let out = match c.op() {
        "conv2d" => {
            let padding = match args.get("padding").ok().and_then(|v| v.as_str()) {
                Some("same") => Padding::Same,
                Some("valid") => Padding::Explicit(0, 0),
                Some(other) => return Err(Failure::new(format!("unknown padding `{other}`"))),
                None => {
                    let (h, w) = pair(&args, "padding", (0, 0))?;
                    Padding::Explicit(h, w)
                }
            };
            let opts = Conv2dOptions {
                stride: pair(&args, "stride", (1, 1))?,
                padding,
                dilation: pair(&args, "dilation", (1, 1))?,
                groups: if args.has("groups") {
                    args.usize("groups")?
                } else {
                    1
                },
            };
            conv2d(x, c.input("weight")?, bias, &opts)?
        }
        "conv_transpose2d" => {
            let opts = ConvTranspose2dOptions {
                stride: pair(&args, "stride", (1, 1))?,
                padding: pair(&args, "padding", (0, 0))?,
                output_padding: pair(&args, "output_padding", (0, 0))?,
                dilation: pair(&args, "dilation", (1, 1))?,
                groups: if args.has("groups") {
                    args.usize("groups")?
                } else {
                    1
                },
            };
            conv_transpose2d(x, c.input("weight")?, bias, &opts)?
        }
        "max_pool2d" => {
            let kernel = pair(&args, "kernel_size", (1, 1))?;
            let opts = Pool2dOptions {
                kernel,
                stride: Some(pair(&args, "stride", kernel)?),
                padding: pair(&args, "padding", (0, 0))?,
                dilation: pair(&args, "dilation", (1, 1))?,
                ceil_mode: flag(&args, "ceil_mode", false)?,
            };
            let (out, indices) = max_pool2d_with_indices(x, &opts)?;
            return Ok(OpOutputs::one(out).with_aux("indices", indices));
        }
        "avg_pool2d" => {
            let kernel = pair(&args, "kernel_size", (1, 1))?;
            let opts = AvgPool2dOptions {
                kernel,
                stride: Some(pair(&args, "stride", kernel)?),
                padding: pair(&args, "padding", (0, 0))?,
                ceil_mode: flag(&args, "ceil_mode", false)?,
                count_include_pad: flag(&args, "count_include_pad", true)?,
            };
            avg_pool2d(x, &opts)?
        }
        "adaptive_avg_pool2d" => adaptive_avg_pool2d(x, pair(&args, "output_size", (1, 1))?)?,
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
