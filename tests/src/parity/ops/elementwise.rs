//! Group `elementwise`: arithmetic with broadcasting, powers, exp/log,
//! activations.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let out = match c.op() {
        "add" => c.input("a")?.add(c.input("b")?)?,
        "sub" => c.input("a")?.sub(c.input("b")?)?,
        "mul" => c.input("a")?.mul(c.input("b")?)?,
        "div" => c.input("a")?.div(c.input("b")?)?,
        // torch.pow(x, 2.0) has a scalar exponent; torch.pow(a, b) a tensor one.
        "pow" if args.has("exponent") => c.input("x")?.powf(args.f64("exponent")?)?,
        "pow" => c.input("a")?.pow(c.input("b")?)?,
        "exp" => c.input("x")?.exp()?,
        "log" => c.input("x")?.log()?,
        "sqrt" => c.input("x")?.sqrt()?,
        "tanh" => c.input("x")?.tanh()?,
        "sigmoid" => c.input("x")?.sigmoid()?,
        "relu" => c.input("x")?.relu()?,
        "leaky_relu" => c.input("x")?.leaky_relu(args.f64("negative_slope")?)?,
        "gelu" | "gelu_tanh" => match args.str("approximate")? {
            "none" => c.input("x")?.gelu()?,
            "tanh" => c.input("x")?.gelu_tanh()?,
            other => {
                return Err(Failure::new(format!(
                    "gelu approximation `{other}` is not one PyTorch has"
                )))
            }
        },
        "silu" => c.input("x")?.silu()?,
        "softplus" => c
            .input("x")?
            .softplus(args.f64("beta")?, args.f64("threshold")?)?,
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
