//! The sizes and choices that define a GPT.

use chapter_02::{Error, Result};
use chapter_05::GeluApproximation;

// ANCHOR: config
/// A GPT's hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct GptConfig {
    /// Number of distinct tokens `V`.
    pub vocab_size: usize,
    /// Longest sequence `T_max` (the number of learned positions).
    pub context_length: usize,
    /// Number of transformer blocks.
    pub n_layer: usize,
    /// Attention heads per block; must divide `n_embd`.
    pub n_head: usize,
    /// Width `C` of the residual stream.
    pub n_embd: usize,
    /// Width of the MLP's hidden layer; `None` is `4·C`.
    pub n_inner: Option<usize>,
    /// Dropout after the embeddings, on the attention weights and after
    /// each residual branch (training only).
    pub dropout: f64,
    /// Whether the projections and layer norms have biases (GPT-2: yes).
    pub bias: bool,
    /// `ε` of every layer norm.
    pub layer_norm_eps: f64,
    /// The MLP's GELU: exact, or GPT-2's tanh approximation (`gelu_new`).
    pub activation: GeluApproximation,
}

impl GptConfig {
    /// GPT-2 small (124M parameters): 12 layers, 12 heads, width 768,
    /// 1024 positions, 50257 tokens.
    pub fn gpt2_small() -> Self {
        GptConfig {
            vocab_size: 50257,
            context_length: 1024,
            n_layer: 12,
            n_head: 12,
            n_embd: 768,
            n_inner: None,
            dropout: 0.0,
            bias: true,
            layer_norm_eps: 1e-5,
            activation: GeluApproximation::Tanh,
        }
    }

    /// The size of one head, `C / heads`.
    pub fn head_dim(&self) -> usize {
        self.n_embd / self.n_head.max(1)
    }

    /// The MLP's hidden width.
    pub fn mlp_width(&self) -> usize {
        self.n_inner.unwrap_or(4 * self.n_embd)
    }

    /// Checks that the sizes make a model.
    pub fn validate(&self) -> Result<()> {
        let sizes = [
            ("vocab_size", self.vocab_size),
            ("context_length", self.context_length),
            ("n_head", self.n_head),
            ("n_embd", self.n_embd),
            ("n_inner", self.mlp_width()),
        ];
        if let Some((name, _)) = sizes.iter().find(|(_, v)| *v == 0) {
            return Err(Error::invalid(
                "GptConfig",
                format!("{name} must be positive"),
            ));
        }
        if !self.n_embd.is_multiple_of(self.n_head) {
            return Err(Error::invalid(
                "GptConfig",
                format!(
                    "n_embd {} must be a multiple of n_head {}",
                    self.n_embd, self.n_head
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.dropout) {
            return Err(Error::invalid(
                "GptConfig",
                format!("dropout must be in [0, 1], got {}", self.dropout),
            ));
        }
        if self.layer_norm_eps.is_nan() || self.layer_norm_eps <= 0.0 {
            return Err(Error::invalid(
                "GptConfig",
                format!(
                    "layer_norm_eps must be positive, got {}",
                    self.layer_norm_eps
                ),
            ));
        }
        Ok(())
    }
}
// ANCHOR_END: config
