//! Embeddings: a learned vector per token id.

use crate::init::{normal, zeros};
use crate::Module;
use chapter_02::{default_device, CmpOp, DType, Device, Error, Result, Tensor as RawTensor};
use chapter_03::{BackwardCtx, CustomOp, Tensor};
use chapter_04::prelude::*;
use chapter_05_derive::Module as DeriveModule;

// ANCHOR: lookup
/// `out[i] = weight[ids[i]]` for a flat list of ids: row selection.
///
/// Its backward adds each output row's gradient into the row it was read
/// from (`index_add`), so a token that appears twice gets both gradients
/// and a token that does not appear gets zero. The one twist is
/// `padding_idx`: PyTorch treats that row as a fixed "nothing here" vector,
/// and its gradient is always zero. Masking the incoming rows before the
/// `index_add` does it without touching the forward values.
struct Lookup {
    padding_idx: Option<usize>,
}
impl CustomOp for Lookup {
    fn name(&self) -> &'static str {
        "embedding"
    }
    fn forward(&self, x: &[&RawTensor]) -> Result<RawTensor> {
        x[0].index_select(x[1], 0)
    }
    fn backward(&self, ctx: &BackwardCtx<'_>, g: &Tensor) -> Result<Vec<Option<Tensor>>> {
        let (weight, ids) = (ctx.input(0), ctx.input(1));
        let g = match self.padding_idx {
            None => g.clone(),
            Some(p) => {
                let ids_raw = ids.data();
                let n = ids_raw.elem_count();
                let keep = ids_raw
                    .cmp_scalar(CmpOp::Ne, p as f64)?
                    .to_dtype(g.dtype())?
                    .reshape((n, 1))?;
                g.mul(&Tensor::from_raw(keep))?
            }
        };
        let zeros = Tensor::from_raw(weight.data().zeros_like()?);
        Ok(vec![Some(zeros.index_add(ids, &g, 0)?), None])
    }
}
// ANCHOR_END: lookup

// ANCHOR: embedding_fn
/// `F.embedding`: looks up the rows of `weight` (`[num, dim]`) named by the
/// `i64` `ids` of any shape. Shape: `ids: [...]` → `[..., dim]`. The ids are
/// flattened to one list for the lookup, and the result reshaped back.
pub fn embedding(ids: &Tensor, weight: &Tensor, padding_idx: Option<usize>) -> Result<Tensor> {
    if ids.dtype() != DType::I64 {
        return Err(Error::UnsupportedDType {
            op: "embedding (ids must be i64)",
            dtype: ids.dtype(),
        });
    }
    if weight.rank() != 2 {
        return Err(Error::invalid(
            "embedding",
            format!(
                "weight must be [num_embeddings, dim], got shape {}",
                weight.shape()
            ),
        ));
    }
    let mut out_dims = ids.dims();
    out_dims.push(weight.dims()[1]);
    let flat = ids.reshape(ids.elem_count())?;
    Tensor::apply(Lookup { padding_idx }, &[weight, &flat])?.reshape(out_dims)
}
// ANCHOR_END: embedding_fn

// ANCHOR: embedding
/// A table of `num_embeddings` learned vectors of size `embedding_dim`: the
/// input layer of every language model. `forward` maps `i64` token ids of
/// any shape `[...]` to vectors `[..., embedding_dim]`.
///
/// Initialised `N(0, 1)` as in PyTorch: an embedding is a lookup, not a
/// sum over inputs, so there is no fan-in to scale by. The row
/// `padding_idx`, if any, starts at zero and never receives a gradient.
#[derive(DeriveModule)]
pub struct Embedding {
    /// Shape `[num_embeddings, embedding_dim]`.
    pub weight: Tensor,
    pub padding_idx: Option<usize>,
}

impl Embedding {
    pub fn new(num_embeddings: usize, embedding_dim: usize) -> Result<Self> {
        Embedding::with_options(
            num_embeddings,
            embedding_dim,
            None,
            DType::F32,
            &default_device()?,
        )
    }

    pub fn with_options(
        num_embeddings: usize,
        embedding_dim: usize,
        padding_idx: Option<usize>,
        dtype: DType,
        device: &Device,
    ) -> Result<Self> {
        let mut weight = normal((num_embeddings, embedding_dim), 0.0, 1.0, dtype, device)?;
        if let Some(p) = padding_idx {
            if p >= num_embeddings {
                return Err(Error::invalid(
                    "Embedding",
                    format!("padding_idx {p} is out of range for {num_embeddings} embeddings"),
                ));
            }
            let row = p..p + 1;
            weight = weight.slice_assign(
                std::slice::from_ref(&row),
                &zeros((1, embedding_dim), dtype, device)?,
            )?;
        }
        Ok(Embedding {
            weight: Tensor::param(weight)?,
            padding_idx,
        })
    }

    /// A layer around given weights `[num, dim]` (pretrained, or a fixture's).
    pub fn from_weights(weight: Tensor, padding_idx: Option<usize>) -> Result<Self> {
        if weight.rank() != 2 {
            return Err(Error::invalid(
                "Embedding",
                format!(
                    "weight must be [num_embeddings, dim], got shape {}",
                    weight.shape()
                ),
            ));
        }
        Ok(Embedding {
            weight,
            padding_idx,
        })
    }

    pub fn num_embeddings(&self) -> usize {
        self.weight.dims()[0]
    }

    pub fn embedding_dim(&self) -> usize {
        self.weight.dims()[1]
    }
}

impl Module for Embedding {
    /// `ids: [...]` (`i64`) → `[..., embedding_dim]`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        embedding(ids, &self.weight, self.padding_idx)
    }
}
// ANCHOR_END: embedding
