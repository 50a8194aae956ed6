//! A character GPT's run folder: what `candle train shakespeare` writes and
//! `candle generate` / `candle chat` read back.
//!
//! The folder holds `config.json` (the training configuration, plus the
//! model's shape as the settings `--layers`, `--heads`, `--width`,
//! `--context`, `--dropout`), `checkpoint.safetensors` (the weights, with
//! the optimiser's state) and `vocab.json` (the characters, token 0 first).
//! Those three files rebuild the model exactly; nothing else is needed.

use chapter_02::{DType, Device};
use chapter_05::{GeluApproximation, StateDictExt};
use chapter_06::{Checkpoint, RunDir};
use chapter_08::char_data::CharVocab;
use chapter_08::gpt::{Gpt, GptConfig};
use chapter_08::training::GptTrainConfig;
use std::collections::BTreeMap;
use std::path::Path;

type DynError = Box<dyn std::error::Error>;

/// The file a GPT run folder keeps its character vocabulary in.
pub const VOCAB_FILE: &str = "vocab.json";

/// The shape of a character GPT: no biases, exact GELU, LayerNorm ε 1e-5
/// (nanoGPT's Shakespeare recipe); the sizes come from the options.
pub fn char_gpt_config(
    vocab: usize,
    context: usize,
    layers: usize,
    heads: usize,
    width: usize,
    dropout: f64,
) -> GptConfig {
    GptConfig {
        vocab_size: vocab,
        context_length: context,
        n_layer: layers,
        n_head: heads,
        n_embd: width,
        n_inner: None,
        dropout,
        bias: false,
        layer_norm_eps: 1e-5,
        activation: GeluApproximation::None,
    }
}

/// Writes the vocabulary (a JSON array of one-character strings).
pub fn save_vocab(dir: &Path, vocab: &CharVocab) -> Result<(), DynError> {
    let chars: Vec<String> = vocab.chars().iter().map(|c| c.to_string()).collect();
    let json = serde_json::to_vec(&chars)?;
    let path = dir.join(VOCAB_FILE);
    chapter_05::state_dict::write_atomically(&path, &json)
        .map_err(|e| format!("{}: cannot write the vocabulary: {e}", path.display()))?;
    Ok(())
}

/// Reads the vocabulary a GPT run folder saved.
pub fn load_vocab(dir: &Path) -> Result<CharVocab, DynError> {
    let path = dir.join(VOCAB_FILE);
    let bytes =
        std::fs::read(&path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    let chars: Vec<String> = serde_json::from_slice(&bytes).map_err(|e| {
        format!(
            "{}: not a vocabulary (a JSON list of strings): {e}",
            path.display()
        )
    })?;
    let chars = chars
        .into_iter()
        .map(|s| {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => Ok(c),
                _ => Err(format!(
                    "{}: entry {s:?} is not a single character",
                    path.display()
                )),
            }
        })
        .collect::<Result<Vec<char>, String>>()?;
    Ok(CharVocab::from_chars(chars).map_err(|e| format!("{}: {e}", path.display()))?)
}

/// A whole-number setting of the run, or an error naming the file.
fn setting<T: std::str::FromStr>(
    settings: &BTreeMap<String, String>,
    option: &str,
    path: &Path,
) -> Result<T, String> {
    let value = settings.get(option).ok_or_else(|| {
        format!(
            "{}: the run's settings have no {option} (not a `candle train shakespeare` run?)",
            path.display()
        )
    })?;
    value
        .parse()
        .map_err(|_| format!("{}: {option} = {value:?} is not a number", path.display()))
}

// ANCHOR: load_run
/// Rebuilds the model of a run folder from its settings, vocabulary and
/// checkpoint, in `F32` on `device`. A missing file, a damaged file, or a
/// checkpoint whose tensors do not fit the settings is an error naming the
/// file and the problem.
pub fn load_run(dir: &Path, device: &Device) -> Result<(Gpt, CharVocab), DynError> {
    let run = RunDir::new(dir);
    let config_path = run.config();
    let saved = run.saved_config::<GptTrainConfig>()?;
    let vocab = load_vocab(dir)?;
    let s = &saved.settings;
    let config = char_gpt_config(
        vocab.len(),
        setting(s, "--context", &config_path)?,
        setting(s, "--layers", &config_path)?,
        setting(s, "--heads", &config_path)?,
        setting(s, "--width", &config_path)?,
        setting(s, "--dropout", &config_path)?,
    );
    config
        .validate()
        .map_err(|e| format!("{}: {e}", config_path.display()))?;
    let weights = run.checkpoint();
    let checkpoint = Checkpoint::load(&weights)?;
    let model = Gpt::zeros(&config, DType::F32, device)?;
    model.load_state_dict(&checkpoint.model).map_err(|e| {
        format!(
            "{}: does not match {} and {} ({} characters): {e}",
            weights.display(),
            config_path.display(),
            dir.join(VOCAB_FILE).display(),
            vocab.len()
        )
    })?;
    Ok((model, vocab))
}
// ANCHOR_END: load_run
