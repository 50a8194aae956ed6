//! The sampling options shared by `candle generate` and `candle chat`.

use super::loaded_model::GenerationDefaults;
use super::values;
use chapter_08::sampling::SamplingConfig;

/// How each next token is picked. An option not given takes the model's
/// `generation_config.json` value, else the command's default.
#[derive(Debug, Clone, clap::Args)]
pub struct SamplingArgs {
    /// Divide the logits by T before sampling, in [0, 100]: below 1 is
    /// more predictable, above 1 more surprising, 0 is greedy.
    #[arg(long, value_parser = values::temperature)]
    pub temperature: Option<f64>,
    /// Sample only among the k most likely tokens (1 to 1000000).
    #[arg(long, value_parser = values::top_k)]
    pub top_k: Option<usize>,
    /// Nucleus sampling: the fewest most likely tokens whose probabilities
    /// add up to p, in (0, 1].
    #[arg(long, value_parser = values::top_p)]
    pub top_p: Option<f64>,
    /// Keep the tokens at least p times as likely as the most likely one, in [0, 1].
    #[arg(long, value_parser = values::min_p)]
    pub min_p: Option<f64>,
    /// Divide the positive logits of tokens already in the text by θ (and
    /// multiply the negative ones), in (0, 100]; 1 is off.
    #[arg(long, value_parser = values::repetition_penalty)]
    pub repetition_penalty: Option<f64>,
    /// Always take the most likely token (no randomness).
    #[arg(long, conflicts_with_all = ["temperature", "top_k", "top_p", "min_p"])]
    pub greedy: bool,
    /// The random stream of the sampler: the same seed, model and options
    /// give the same text.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

impl SamplingArgs {
    /// The sampling configuration: each option from the command line, else
    /// from `defaults` (the model's files), else from `fallback` (the
    /// command's own). `do_sample: false` in the model's files means greedy
    /// unless a sampling option is given.
    pub fn config(
        &self,
        defaults: &GenerationDefaults,
        fallback: &SamplingConfig,
    ) -> SamplingConfig {
        let repetition_penalty = self
            .repetition_penalty
            .or(defaults.repetition_penalty)
            .unwrap_or(fallback.repetition_penalty);
        let any_given = self.temperature.is_some()
            || self.top_k.is_some()
            || self.top_p.is_some()
            || self.min_p.is_some();
        if self.greedy || (defaults.do_sample == Some(false) && !any_given) {
            return SamplingConfig {
                repetition_penalty,
                ..SamplingConfig::greedy()
            };
        }
        SamplingConfig {
            temperature: self
                .temperature
                .or(defaults.temperature)
                .unwrap_or(fallback.temperature),
            top_k: self.top_k.or(defaults.top_k).or(fallback.top_k),
            top_p: self.top_p.or(defaults.top_p).or(fallback.top_p),
            min_p: self.min_p.or(fallback.min_p),
            repetition_penalty,
        }
    }
}
