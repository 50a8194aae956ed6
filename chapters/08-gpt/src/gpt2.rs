//! OpenAI's GPT-2, loaded from Hugging Face's files: `config.json` and
//! `model.safetensors`, with no Python and no PyTorch.
//!
//! GPT-2 *is* the [`Gpt`] of this chapter: pre-LayerNorm blocks, learned
//! positions, a tied LM head, `gelu_new`. Its checkpoints name the
//! parameters as our model does (`transformer.h.0.attn.c_attn.weight`), and
//! store the projections input-major (`Conv1D`, our
//! [`LinearInOut`](crate::attention::LinearInOut)), so loading is: read the
//! config, build a model of that shape, check every name and shape, copy.
//! The differences a loader has to absorb:
//!
//! - some files name the parameters without the `transformer.` prefix
//!   (`h.0.ln_1.weight`: the base `GPT2Model`'s own files);
//! - older files carry the attention's causal-mask buffers (`attn.bias`,
//!   `attn.masked_bias`), constants that we make on the fly instead;
//! - `lm_head.weight` is usually left out because it *is* `wte.weight`.
//!
//! Anything else (a missing or extra tensor, a shape that does not match
//! `config.json`, a truncated file) is an error naming the file and the
//! problem.

use crate::gpt::{Gpt, GptConfig};
use chapter_02::{Error, Result};
use chapter_03::{DType, Device};
use chapter_05::state_dict::from_safetensors_bytes;
use chapter_05::{GeluApproximation, StateDict, StateDictError, StateDictExt};
use serde::Deserialize;
use std::path::Path;

// ANCHOR: config
/// The fields of Hugging Face's `GPT2Config` that decide the model's
/// shape and arithmetic (other fields of `config.json` are ignored).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Gpt2Config {
    pub vocab_size: usize,
    /// Context length (older files call it `n_ctx`).
    #[serde(alias = "n_ctx")]
    pub n_positions: usize,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    /// MLP width; `null` means `4·n_embd`.
    #[serde(default)]
    pub n_inner: Option<usize>,
    #[serde(default = "default_activation")]
    pub activation_function: String,
    #[serde(default = "default_eps")]
    pub layer_norm_epsilon: f64,
    #[serde(default = "default_pdrop")]
    pub resid_pdrop: f64,
    #[serde(default = "default_pdrop")]
    pub embd_pdrop: f64,
    #[serde(default = "default_pdrop")]
    pub attn_pdrop: f64,
    #[serde(default = "default_true")]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_true")]
    pub scale_attn_weights: bool,
    #[serde(default)]
    pub scale_attn_by_inverse_layer_idx: bool,
    #[serde(default)]
    pub add_cross_attention: bool,
}
// ANCHOR_END: config

fn default_activation() -> String {
    "gelu_new".into()
}
fn default_eps() -> f64 {
    1e-5
}
fn default_pdrop() -> f64 {
    0.1
}
fn default_true() -> bool {
    true
}

impl Gpt2Config {
    /// Reads `config.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|e| problem(path, format!("cannot read: {e}")))?;
        Gpt2Config::from_json(&text, path)
    }

    /// Parses the text of a `config.json`; `path` names it in errors.
    pub fn from_json(text: &str, path: &Path) -> Result<Self> {
        serde_json::from_str(text).map_err(|e| problem(path, format!("not a GPT-2 config: {e}")))
    }

    // ANCHOR: to_gpt_config
    /// The [`GptConfig`] of this model, or an error for the variants our
    /// [`Gpt`] does not compute (untied head, cross-attention, unscaled or
    /// layer-scaled attention, an activation other than GELU).
    pub fn to_gpt_config(&self) -> std::result::Result<GptConfig, String> {
        let activation = match self.activation_function.as_str() {
            // `gelu_new` is OpenAI's tanh approximation; PyTorch later named
            // the same formula `gelu(approximate="tanh")`.
            "gelu_new" | "gelu_pytorch_tanh" => GeluApproximation::Tanh,
            "gelu" => GeluApproximation::None,
            other => return Err(format!("activation_function {other:?} is not supported (gelu_new, gelu_pytorch_tanh or gelu)")),
        };
        let unsupported = [
            (!self.tie_word_embeddings, "tie_word_embeddings = false"),
            (!self.scale_attn_weights, "scale_attn_weights = false"),
            (
                self.scale_attn_by_inverse_layer_idx,
                "scale_attn_by_inverse_layer_idx = true",
            ),
            (self.add_cross_attention, "add_cross_attention = true"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(bad, _)| *bad) {
            return Err(format!("{what} is not supported"));
        }
        let config = GptConfig {
            vocab_size: self.vocab_size,
            context_length: self.n_positions,
            n_layer: self.n_layer,
            n_head: self.n_head,
            n_embd: self.n_embd,
            n_inner: self.n_inner,
            // One rate for the three places GPT-2 drops out (they are equal
            // in every released model; inference uses none of them).
            dropout: self.resid_pdrop,
            bias: true,
            layer_norm_eps: self.layer_norm_epsilon,
            activation,
        };
        config.validate().map_err(|e| e.to_string())?;
        Ok(config)
    }
    // ANCHOR_END: to_gpt_config
}

// ANCHOR: load
/// Loads GPT-2 from a folder holding Hugging Face's `config.json` and
/// `model.safetensors`, in `dtype` (`F32` or `F64`; half-precision files
/// are widened) on `device`.
pub fn load_gpt2(dir: impl AsRef<Path>, dtype: DType, device: &Device) -> Result<Gpt> {
    let dir = dir.as_ref();
    load_gpt2_files(
        dir.join("config.json"),
        dir.join("model.safetensors"),
        dtype,
        device,
    )
}

/// [`load_gpt2`] with the two files named separately.
pub fn load_gpt2_files(
    config: impl AsRef<Path>,
    weights: impl AsRef<Path>,
    dtype: DType,
    device: &Device,
) -> Result<Gpt> {
    let (config_path, weights_path) = (config.as_ref(), weights.as_ref());
    let gpt2 = Gpt2Config::from_file(config_path)?;
    let config = gpt2.to_gpt_config().map_err(|e| problem(config_path, e))?;
    let bytes = std::fs::read(weights_path)
        .map_err(|e| problem(weights_path, format!("cannot read: {e}")))?;
    let dict = from_safetensors_bytes(&bytes, weights_path, device).map_err(|e| match e {
        // Already names the file.
        StateDictError::Corrupt { .. } | StateDictError::Io { .. } => {
            Error::invalid("load_gpt2", e.to_string())
        }
        other => problem(weights_path, other.to_string()),
    })?;
    let dict = gpt2_names(dict).map_err(|e| problem(weights_path, e))?;
    let model = Gpt::zeros(&config, dtype, device)?;
    model.load_state_dict(&dict).map_err(|e| {
        problem(
            weights_path,
            format!("does not match {}: {e}", config_path.display()),
        )
    })?;
    Ok(model)
}
// ANCHOR_END: load

// ANCHOR: names
/// A checkpoint's tensors under our names: `transformer.` added where it
/// is missing, the causal-mask buffers dropped, and a stored `lm_head`
/// dropped after checking that it is the tied embedding.
pub fn gpt2_names(dict: StateDict) -> std::result::Result<StateDict, String> {
    let mut out = StateDict::new();
    let mut lm_head = None;
    for (name, t) in dict {
        if name == "lm_head.weight" {
            lm_head = Some(t);
            continue;
        }
        if name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias") {
            continue;
        }
        let name = if name.starts_with("transformer.") {
            name
        } else {
            format!("transformer.{name}")
        };
        if out.contains_key(&name) {
            return Err(format!(
                "tensor {name} appears twice (with and without the transformer. prefix)"
            ));
        }
        out.insert(name, t);
    }
    if let (Some(head), Some(wte)) = (lm_head, out.get("transformer.wte.weight")) {
        let same = head.shape() == wte.shape()
            && head
                .to_vec_f64()
                .ok()
                .zip(wte.to_vec_f64().ok())
                .is_some_and(|(a, b)| a == b);
        if !same {
            return Err(
                "lm_head.weight differs from transformer.wte.weight, but GPT-2 ties them".into(),
            );
        }
    }
    Ok(out)
}
// ANCHOR_END: names

/// `load_gpt2: <file>: <problem>`.
fn problem(path: &Path, msg: impl std::fmt::Display) -> Error {
    Error::invalid("load_gpt2", format!("{}: {msg}", path.display()))
}
