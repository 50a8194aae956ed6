//! Group `shape`: views, slicing, indexing, joining and splitting, masks.

use super::{OpCall, OpOutputs};
use crate::parity::Failure;
use chapter_03::Tensor;
use chapter_04::prelude::*;

pub fn run(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let out = match c.op() {
        // `resolved_shape` is `shape` with its -1 filled in; without it we
        // fill it in ourselves.
        "reshape" => {
            let x = c.input("x")?;
            let shape = if args.has("resolved_shape") {
                args.usize_list("resolved_shape")?
            } else {
                args.reshape_target("shape", x.elem_count())?
            };
            x.reshape(shape)?
        }
        "permute" => {
            let x = c.input("x")?;
            x.permute(&args.dim_list("dims", x.rank())?)?
        }
        "transpose" => c
            .input("x")?
            .transpose(args.i64("dim0")?, args.i64("dim1")?)?,
        "permute+reshape" => {
            let x = c.input("x")?;
            x.permute(&args.dim_list("dims", x.rank())?)?
                .reshape(args.reshape_target("shape", x.elem_count())?)?
        }
        "slice" => slice(c.input("x")?, &args.triples("normalized_slices")?)?,
        "index_select" => c
            .input("x")?
            .index_select(c.input("index")?, args.i64("dim")?)?,
        "gather" => c.input("x")?.gather(c.input("index")?, args.i64("dim")?)?,
        "cat" => cat(&c.inputs_named_by("inputs")?, args.i64("dim")?)?,
        "stack" => stack(&c.inputs_named_by("inputs")?, args.i64("dim")?)?,
        "split" => return split(c),
        "masked_fill" => c
            .input("x")?
            .masked_fill(c.input("mask")?, args.f64("value")?)?,
        "tril" => c.input("x")?.tril(args.i64("diagonal")?)?,
        "triu" => c.input("x")?.triu(args.i64("diagonal")?)?,
        "expand" => {
            let x = c.input("x")?;
            x.expand(args.expand_target("shape", &x.dims())?)?
        }
        _ => return Err(c.unknown_op()),
    };
    Ok(OpOutputs::one(out))
}

/// `x[a:b:s, ...]`: one strided slice per dimension (already normalised to
/// explicit non-negative bounds by the generator).
fn slice(x: &Tensor, slices: &[[usize; 3]]) -> Result<Tensor, Failure> {
    let mut t = x.clone();
    for (dim, &[start, stop, step]) in slices.iter().enumerate() {
        if (start, stop, step) != (0, t.dims()[dim], 1) {
            t = t.slice(dim, start, stop, step)?;
        }
    }
    Ok(t)
}

/// `torch.split(x, size_or_sections, dim)`: equal chunks of a size (the last
/// may be smaller), or sections of the listed sizes.
fn split(c: &OpCall<'_>) -> Result<OpOutputs, Failure> {
    let args = c.args();
    let (x, dim) = (c.input("x")?, args.i64("dim")?);
    let parts = if args.get("split_size_or_sections")?.is_array() {
        let mut start = 0;
        let mut parts = Vec::new();
        for len in args.usize_list("split_size_or_sections")? {
            parts.push(x.narrow(dim, start, len)?);
            start += len;
        }
        parts
    } else {
        x.split(args.usize("split_size_or_sections")?, dim)?
    };
    Ok(OpOutputs::many(parts))
}
