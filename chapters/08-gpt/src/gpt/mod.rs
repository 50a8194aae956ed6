//! The GPT: token and position embeddings, a stack of transformer blocks,
//! a final layer norm, and a language-model head tied to the token
//! embedding.
//!
//! ```text
//! ids [B, T] ─ wte ─┐
//!                   + ─ drop ─ block₀ ─ … ─ block_{L−1} ─ ln_f ─ · wteᵀ ─ logits [B, T, V]
//! positions ─ wpe ──┘
//! ```
//!
//! The parameter names are GPT-2's as Hugging Face writes them
//! (`transformer.h.0.attn.c_attn.weight`, ...), so a state dict saved here
//! is laid out like theirs and [`gpt2`](crate::gpt2) loads their files into
//! this same type.

mod block;
mod config;
mod generator;

pub use block::{Block, Mlp};
pub use config::GptConfig;
pub use generator::{GptGenerator, RecomputingGenerator};

use crate::attention::WeightInit;
use crate::kv_cache::KvCache;
use chapter_02::{Error, Generator, Result};
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;
use chapter_05::{cross_entropy, CrossEntropyOptions, Dropout, Embedding, LayerNorm, Module};

// ANCHOR: gpt
/// The body of the model, named `transformer` as in GPT-2's checkpoints.
#[derive(Module)]
pub struct Transformer {
    /// Token embedding `[V, C]`, also the output layer (tied).
    pub wte: Embedding,
    /// Position embedding `[T_max, C]`: one learned vector per position.
    pub wpe: Embedding,
    pub drop: Dropout,
    pub h: Vec<Block>,
    pub ln_f: LayerNorm,
}

/// A decoder-only transformer language model.
#[derive(Module)]
pub struct Gpt {
    pub transformer: Transformer,
    #[module(skip)]
    config: GptConfig,
}
// ANCHOR_END: gpt

/// What a forward pass returns beyond the logits.
pub struct GptOutput {
    /// `[B, T, V]`.
    pub logits: Tensor,
    /// With `hidden_states`, Hugging Face's list: the embeddings' output,
    /// each block's output except the last, and the last block's output
    /// after `ln_f` (`n_layer + 1` tensors `[B, T, C]`); otherwise empty.
    pub hidden_states: Vec<Tensor>,
}

impl Gpt {
    // ANCHOR: init
    /// A model with nanoGPT's (and GPT-2's) initialisation, drawn from a
    /// generator seeded with `seed` (so the same seed gives the same model,
    /// whatever else used the default generator): every weight
    /// `N(0, 0.02²)`, biases 0, layer norms `γ = 1, β = 0`, and the two
    /// projections that end a residual branch (`attn.c_proj`, `mlp.c_proj`)
    /// `N(0, (0.02/√(2L))²)`. Each of the `2L` branches adds its output to
    /// the residual stream; scaling them by `1/√(2L)` keeps the stream's
    /// variance from growing with depth.
    pub fn new(config: &GptConfig, dtype: DType, device: &Device, seed: u64) -> Result<Self> {
        let mut generator = Generator::new(seed);
        Gpt::build(
            config,
            dtype,
            device,
            &mut WeightInit::Normal(&mut generator),
        )
    }
    // ANCHOR_END: init

    /// A model whose weights are all zero: the cheapest thing to load a
    /// checkpoint into (see [`gpt2`](crate::gpt2)).
    pub fn zeros(config: &GptConfig, dtype: DType, device: &Device) -> Result<Self> {
        Gpt::build(config, dtype, device, &mut WeightInit::Zeros)
    }

    fn build(
        config: &GptConfig,
        dtype: DType,
        device: &Device,
        init: &mut WeightInit<'_>,
    ) -> Result<Self> {
        config.validate()?;
        crate::attention::check_float_dtype(dtype, "Gpt")?;
        let c = config.n_embd;
        let mut embedding = |rows: usize| -> Result<Embedding> {
            Embedding::from_weights(
                Tensor::param(init.normal(vec![rows, c], 0.02, dtype, device)?)?,
                None,
            )
        };
        let wte = embedding(config.vocab_size)?;
        let wpe = embedding(config.context_length)?;
        let proj_std = 0.02 / ((2 * config.n_layer.max(1)) as f64).sqrt();
        let h = (0..config.n_layer)
            .map(|_| Block::new(config, proj_std, dtype, device, init))
            .collect::<Result<Vec<_>>>()?;
        Ok(Gpt {
            transformer: Transformer {
                wte,
                wpe,
                drop: Dropout::new(config.dropout)?,
                h,
                ln_f: block::layer_norm(config, dtype, device)?,
            },
            config: config.clone(),
        })
    }

    pub fn config(&self) -> &GptConfig {
        &self.config
    }

    /// The device the parameters live on.
    pub fn device(&self) -> Device {
        self.transformer.wte.weight.device()
    }

    /// The parameters' dtype.
    pub fn dtype(&self) -> DType {
        self.transformer.wte.weight.dtype()
    }

    /// An empty KV cache for `batch` sequences, sized to the context length.
    pub fn new_cache(&self, batch: usize) -> Result<KvCache> {
        let c = &self.config;
        KvCache::new(
            c.n_layer,
            batch,
            c.n_head,
            c.context_length,
            c.head_dim(),
            self.dtype(),
            &self.device(),
        )
    }

    // ANCHOR: forward
    /// The forward pass. `ids: [B, T]` (`i64`) are the new tokens; with a
    /// `cache` holding `P` positions they are positions `P..P+T` and attend
    /// to the cached ones too (and their keys and values are appended).
    /// Returns the logits `[B, T, V]` and, with `hidden_states`, every
    /// hidden state (see [`GptOutput`]).
    pub fn forward_with(
        &self,
        ids: &Tensor,
        cache: Option<&mut KvCache>,
        hidden_states: bool,
    ) -> Result<GptOutput> {
        let mut hidden = Vec::new();
        let x = self.trunk(ids, cache, hidden_states.then_some(&mut hidden))?;
        let x = self.transformer.ln_f.forward(&x)?;
        if hidden_states {
            hidden.push(x.clone());
        }
        Ok(GptOutput {
            logits: self.lm_head(&x)?, // [B, T, V]
            hidden_states: hidden,
        })
    }

    /// Embeddings and blocks: the hidden states `[B, T, C]` before `ln_f`,
    /// pushing each block's input onto `hidden` when asked.
    fn trunk(
        &self,
        ids: &Tensor,
        mut cache: Option<&mut KvCache>,
        mut hidden: Option<&mut Vec<Tensor>>,
    ) -> Result<Tensor> {
        let past = cache.as_ref().map_or(0, |c| c.len());
        let t = self.check_ids(ids, past)?;
        let tr = &self.transformer;
        // Learned positions: rows past..past+T of the table, a view, so
        // the gradient flows back into exactly those rows.
        let pos = tr.wpe.weight.narrow(0, past, t)?; // [T, C]
        let mut x = tr.drop.forward(&tr.wte.forward(ids)?.add(&pos)?)?; // [B, T, C]
        for (i, block) in tr.h.iter().enumerate() {
            if let Some(h) = hidden.as_deref_mut() {
                h.push(x.clone());
            }
            let layer = match cache.as_deref_mut() {
                Some(c) => Some(c.layer_mut(i)?),
                None => None,
            };
            x = block.forward_cached(&x, layer)?;
        }
        Ok(x)
    }

    /// The LM head is the token embedding, transposed: one parameter for
    /// both ends, and both uses add to its gradient. `[B, T, C] → [B, T, V]`.
    fn lm_head(&self, x: &Tensor) -> Result<Tensor> {
        x.matmul(&self.transformer.wte.weight.t()?)
    }
    // ANCHOR_END: forward

    // ANCHOR: forward_last
    /// The logits of the last position only, `[B, 1, V]`: what generation
    /// samples from after a prompt. Every position must still go through
    /// the blocks (their keys and values fill the cache, and the last one
    /// attends to them all), but `ln_f` works on each position alone, so
    /// the final norm and the LM head (for GPT-2 small, `768 × 50257` ≈ 39 M
    /// of the ≈ 124 M multiply-adds per position) run on one row instead
    /// of `T`. The result is the last row
    /// of [`forward_with`](Self::forward_with)'s logits.
    pub fn forward_last(&self, ids: &Tensor, cache: Option<&mut KvCache>) -> Result<Tensor> {
        let x = self.trunk(ids, cache, None)?; // [B, T, C]
        let t = x.dims()[1];
        let last = x.narrow(1, t - 1, 1)?; // [B, 1, C]
        self.lm_head(&self.transformer.ln_f.forward(&last)?)
    }
    // ANCHOR_END: forward_last

    // ANCHOR: loss
    /// Training: logits `[B, T, V]` and the mean cross entropy of
    /// predicting `targets: [B, T]` (`i64`; `targets[b, t]` is the token
    /// after `ids[b, t]`, so usually `ids` shifted left by one).
    pub fn forward_loss(&self, ids: &Tensor, targets: &Tensor) -> Result<(Tensor, Tensor)> {
        let logits = self.forward(ids)?;
        let loss = next_token_loss(&logits, targets)?;
        Ok((logits, loss))
    }
    // ANCHOR_END: loss

    /// `ids: [B, T]` must be `i64`, non-empty and fit in the context after
    /// `past` cached positions; returns `T`.
    fn check_ids(&self, ids: &Tensor, past: usize) -> Result<usize> {
        if ids.dtype() != DType::I64 {
            return Err(Error::UnsupportedDType {
                op: "Gpt::forward (token ids must be i64)",
                dtype: ids.dtype(),
            });
        }
        if ids.rank() != 2 || ids.dims()[1] == 0 {
            return Err(Error::invalid(
                "Gpt::forward",
                format!(
                    "token ids must be [batch, T] with T > 0, got {}",
                    ids.shape()
                ),
            ));
        }
        let t = ids.dims()[1];
        if past + t > self.config.context_length {
            return Err(Error::invalid(
                "Gpt::forward",
                format!(
                    "{} positions ({past} cached + {t} new) exceed the context length {}",
                    past + t,
                    self.config.context_length
                ),
            ));
        }
        Ok(t)
    }
}

impl Module for Gpt {
    /// `ids: [B, T]` (`i64`) → logits `[B, T, V]`, no cache.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        Ok(self.forward_with(ids, None, false)?.logits)
    }
}

/// The mean cross entropy of `logits: [B, T, V]` against `targets: [B, T]`
/// (`i64`) over all `B·T` positions (chapter 05's `cross_entropy`).
pub fn next_token_loss(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let dims = logits.dims();
    if dims.len() != 3 || targets.dims() != dims[..2] {
        return Err(Error::invalid(
            "next_token_loss",
            format!(
                "logits must be [B, T, V] and targets [B, T], got {} and {}",
                logits.shape(),
                targets.shape()
            ),
        ));
    }
    let n = dims[0] * dims[1];
    cross_entropy(
        &logits.reshape(vec![n, dims[2]])?,
        &targets.reshape(vec![n])?,
        &CrossEntropyOptions::default(),
    )
}

// ANCHOR: lm_loss
/// Hugging Face's language-model loss with `labels = ids`: the logits at
/// position `t` predict token `t + 1`, so drop the last position's logits
/// and the first token, `mean CE(logits[:, :-1], ids[:, 1:])`.
pub fn language_model_loss(logits: &Tensor, ids: &Tensor) -> Result<Tensor> {
    let t = logits.dims().get(1).copied().unwrap_or(0);
    if t < 2 {
        return Err(Error::invalid(
            "language_model_loss",
            format!("needs at least 2 positions, got logits {}", logits.shape()),
        ));
    }
    next_token_loss(&logits.narrow(1, 0, t - 1)?, &ids.narrow(1, 1, t - 1)?)
}
// ANCHOR_END: lm_loss
