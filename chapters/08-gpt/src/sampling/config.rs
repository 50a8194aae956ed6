//! The knobs of sampling, checked once before any token is drawn.

use chapter_02::{Error, Result};

// ANCHOR: config
/// How to turn a row of logits into a next token.
///
/// The transforms run in a fixed order (the order Hugging Face's
/// `generate` uses), each on the output of the one before:
///
/// 1. `repetition_penalty` on the raw logits of tokens already seen;
/// 2. `temperature`: divide every logit by `T` (`T = 0` means greedy);
/// 3. `top_k`: keep the `k` highest logits;
/// 4. `top_p`: keep the smallest set of most likely tokens whose
///    probability adds up to at least `p`;
/// 5. `min_p`: keep the tokens at least `min_p` times as likely as the
///    most likely one;
///
/// then softmax over what is left. See [`crate::sampling::processors`]
/// for each formula.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingConfig {
    /// `T ≥ 0`; `1` leaves the distribution alone, below `1` sharpens it,
    /// above `1` flattens it, `0` picks the most likely token (greedy).
    pub temperature: f64,
    /// Keep only the `k ≥ 1` highest logits (ties with the `k`-th kept).
    pub top_k: Option<usize>,
    /// Nucleus sampling: `p` in `(0, 1]`.
    pub top_p: Option<f64>,
    /// Min-p sampling: `p` in `[0, 1]`, relative to the top probability.
    pub min_p: Option<f64>,
    /// `θ > 0`; `1` is off. Logits of tokens already in the sequence are
    /// divided by `θ` when positive and multiplied by `θ` when negative
    /// (Keskar et al. 2019, the CTRL paper), so `θ > 1` discourages repeats.
    pub repetition_penalty: f64,
}
// ANCHOR_END: config

impl Default for SamplingConfig {
    /// Plain sampling from the model's distribution: `T = 1`, no filter,
    /// no penalty.
    fn default() -> Self {
        SamplingConfig {
            temperature: 1.0,
            top_k: None,
            top_p: None,
            min_p: None,
            repetition_penalty: 1.0,
        }
    }
}

impl SamplingConfig {
    /// Always the most likely token (temperature 0).
    pub fn greedy() -> Self {
        SamplingConfig {
            temperature: 0.0,
            ..Self::default()
        }
    }

    /// Whether this config picks the arg-max instead of drawing.
    pub fn is_greedy(&self) -> bool {
        self.temperature == 0.0
    }

    /// Checks every option; the error names the option, its value and the
    /// range it must lie in. NaN fails every check.
    pub fn validate(&self) -> Result<()> {
        let t = self.temperature;
        if !(t.is_finite() && t >= 0.0) {
            return Err(out_of_range("temperature", t, "[0, ∞) (0 means greedy)"));
        }
        if let Some(k) = self.top_k {
            if k == 0 {
                return Err(out_of_range("top_k", 0.0, "[1, ∞) (None turns it off)"));
            }
        }
        if let Some(p) = self.top_p {
            if !(p > 0.0 && p <= 1.0) {
                return Err(out_of_range("top_p", p, "(0, 1]"));
            }
        }
        if let Some(p) = self.min_p {
            if !(0.0..=1.0).contains(&p) {
                return Err(out_of_range("min_p", p, "[0, 1]"));
            }
        }
        let r = self.repetition_penalty;
        if !(r.is_finite() && r > 0.0) {
            return Err(out_of_range("repetition_penalty", r, "(0, ∞) (1 is off)"));
        }
        Ok(())
    }
}

fn out_of_range(option: &str, value: f64, range: &str) -> Error {
    Error::Invalid {
        op: "SamplingConfig",
        msg: format!("{option} = {value} is out of range: it must lie in {range}"),
    }
}
