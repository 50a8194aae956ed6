//! Group `attention`. Chapter 04 covers the causal masked softmax;
//! `scaled_dot_product_attention` and `multi_head_attention` wait for
//! chapter 08 (see [`COVERED`](crate::parity::COVERED)).

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let out = match c.op() {
        // F.softmax(x.masked_fill(mask.bool(), -inf), dim=-1)
        "masked_fill+softmax" => {
            let x = c.input("x")?;
            x.masked_fill(c.input("mask")?, f64::NEG_INFINITY)?
                .softmax(-1)?
        }
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
