//! Group `attention`. Chapter 04 covers the causal masked softmax;
//! chapter 08 `scaled_dot_product_attention` and `nn.MultiheadAttention`.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_04::prelude::*;
use chapter_05::Linear;
use chapter_08::attention::{scaled_dot_product_attention, AttentionOptions, MultiheadAttention};

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let out = match c.op() {
        // F.softmax(x.masked_fill(mask.bool(), -inf), dim=-1)
        "masked_fill+softmax" => {
            let x = c.input("x")?;
            x.masked_fill(c.input("mask")?, f64::NEG_INFINITY)?
                .softmax(-1)?
        }
        // F.scaled_dot_product_attention(q, k, v, is_causal=..., dropout_p=0)
        "scaled_dot_product_attention" => {
            let args = c.args();
            let dropout_p = if args.has("dropout_p") {
                args.f64("dropout_p")?
            } else {
                0.0
            };
            // The fixtures spell PyTorch's default scale "1/sqrt(D)"; a number is used as given.
            let scale = args.get("scale").ok().and_then(|v| v.as_f64());
            let opts = AttentionOptions {
                causal: args.has("is_causal") && args.bool("is_causal")?,
                dropout_p,
                training: dropout_p > 0.0,
                scale,
                ..Default::default()
            };
            let (q, k, v) = (c.input("q")?, c.input("k")?, c.input("v")?);
            if opts.causal && q.dims()[q.rank() - 2] != k.dims()[k.rank() - 2] {
                // PyTorch aligns a non-square causal mask to the top left; ours
                // to the bottom right (see AttentionOptions::causal).
                return Err(Failure::new(
                    "is_causal with fewer queries than keys aligns differently in PyTorch",
                ));
            }
            scaled_dot_product_attention(q, k, v, &opts)?
        }
        // nn.MultiheadAttention(E, H, batch_first=True)(x, x, x, attn_mask=mask.bool())
        "multi_head_attention" => {
            let args = c.args();
            let batch_first = !args.has("batch_first") || args.bool("batch_first")?;
            let bias = |name: &str| {
                c.inputs
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, t)| t.clone())
            };
            let out_proj =
                Linear::from_weights(c.input("out_proj.weight")?.clone(), bias("out_proj.bias"));
            let mha = MultiheadAttention::from_weights(
                c.input("in_proj_weight")?.clone(),
                bias("in_proj_bias"),
                out_proj,
                args.usize("num_heads")?,
                batch_first,
            )?;
            let x = c.input("x")?;
            let mask = c
                .inputs
                .iter()
                .find(|(n, _)| n == "attn_mask")
                .map(|(_, t)| t);
            let (out, weights) = mha.forward_attention(x, x, x, mask, true)?;
            let weights = weights.ok_or_else(|| Failure::new("no attention weights returned"))?;
            return Ok(OpOutputs::one(out).with_aux("attn_weights", weights));
        }
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}
