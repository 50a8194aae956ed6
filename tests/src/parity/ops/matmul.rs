//! Group `matmul`: `torch.matmul` with NumPy semantics, and `einsum`.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let out = match c.op() {
        "matmul" => c.input("a")?.matmul(c.input("b")?)?,
        // The operands are the case's inputs in manifest order (a, b, ...).
        "einsum" => {
            let operands: Vec<&_> = c.inputs.iter().map(|(_, t)| t).collect();
            einsum(c.args().str("equation")?, &operands)?
        }
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
