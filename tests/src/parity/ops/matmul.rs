//! Group `matmul`: `torch.matmul` with NumPy semantics, and `einsum`.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let out = match c.op() {
        "matmul" => c.input("a")?.matmul(c.input("b")?)?,
        "einsum" => einsum(c.args().str("equation")?, &[c.input("a")?, c.input("b")?])?,
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
