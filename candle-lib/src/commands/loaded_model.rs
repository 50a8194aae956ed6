//! `--model SPEC` of `candle generate` and `candle chat`: from a SPEC to a
//! GPT, its tokenizer and its generation defaults.
//!
//! [`resolve_model`] finds the files (a run folder, a Hugging Face model
//! folder, or a model id in the Hugging Face cache); [`load_model_files`]
//! reads them:
//!
//! - a run folder of `candle train shakespeare`: the model rebuilt from the
//!   run's settings and checkpoint, the character vocabulary
//!   ([`gpt_run`](super::gpt_run));
//! - a Hugging Face folder: GPT-2 from `config.json` + `model.safetensors`,
//!   the BPE tokenizer from `vocab.json` + `merges.txt` (or, when the pair
//!   is missing, `tokenizer.json`), and the defaults of
//!   `generation_config.json` (its end token, sampling settings).
//!
//! Every file that is missing, damaged or inconsistent with another is an
//! error naming the file and the problem.

use super::gpt_run::load_run;
use chapter_02::DType;
use chapter_02::Device;
use chapter_08::gpt::Gpt;
use chapter_08::gpt2::load_gpt2_files;
use chapter_08::hub::{resolve_model, HubError, ModelFiles, ModelSource};
use chapter_08::tokenizer::TokenizerFiles;
use chapter_08::TextCodec;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

type DynError = Box<dyn std::error::Error>;

/// Settings a model's files suggest for generation; command-line options
/// override each of them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GenerationDefaults {
    /// Tokens that end a text (`eos_token_id`).
    pub eos_tokens: Vec<u32>,
    /// `do_sample`: `Some(false)` asks for greedy decoding.
    pub do_sample: Option<bool>,
    pub temperature: Option<f64>,
    pub top_k: Option<usize>,
    pub top_p: Option<f64>,
    pub repetition_penalty: Option<f64>,
    pub max_new_tokens: Option<usize>,
}

/// A model ready to generate with.
pub struct LoadedModel {
    pub gpt: Arc<Gpt>,
    pub codec: Box<dyn TextCodec>,
    pub files: ModelFiles,
    /// The files the GPT-2 tokenizer was read from (none for a run folder,
    /// whose vocabulary is its characters).
    pub tokenizer_files: Option<TokenizerFiles>,
    pub defaults: GenerationDefaults,
}

impl LoadedModel {
    /// Where the model came from, for messages.
    pub fn description(&self) -> String {
        let c = self.gpt.config();
        let mut shape = format!(
            "{} layers, width {}, context {}, vocabulary {}",
            c.n_layer, c.n_embd, c.context_length, c.vocab_size
        );
        if let Some(t) = &self.tokenizer_files {
            shape.push_str(&format!("; tokenizer from {t}"));
        }
        match &self.files.source {
            ModelSource::RunDir(dir) => format!("the run {} ({shape})", dir.display()),
            ModelSource::HubCache {
                model, revision, ..
            } => format!("{model}@{revision} from the Hugging Face cache ({shape})"),
            _ => format!("{} ({shape})", self.files.dir.display()),
        }
    }
}

/// Resolves and loads `spec` on `device`.
pub fn load_model(spec: &str, device: &Device) -> Result<LoadedModel, DynError> {
    let files = resolve_model(spec)?;
    load_model_files(files, device)
}

/// Whether `err` says a model id is not in the cache (it needs a download).
pub fn is_not_cached(err: &DynError) -> bool {
    matches!(
        err.downcast_ref::<HubError>(),
        Some(HubError::NotCached { .. })
    )
}

// ANCHOR: load_model_files
/// Loads the files [`resolve_model`] found.
pub fn load_model_files(files: ModelFiles, device: &Device) -> Result<LoadedModel, DynError> {
    if let ModelSource::RunDir(dir) = &files.source {
        let (gpt, vocab) = load_run(dir, device)?;
        return Ok(LoadedModel {
            gpt: Arc::new(gpt),
            codec: Box::new(vocab),
            files,
            tokenizer_files: None,
            defaults: GenerationDefaults::default(),
        });
    }
    let gpt = load_gpt2_files(&files.config, &files.weights, DType::F32, device)?;
    let Some(tokenizer_files) = files.tokenizer_files() else {
        return Err(format!(
            "{}: no tokenizer: the folder needs vocab.json and merges.txt (GPT-2's BPE files), \
             or tokenizer.json; `candle download` fetches them",
            files.dir.display()
        )
        .into());
    };
    let tokenizer = tokenizer_files.load()?;
    let vocab = tokenizer_files.vocab_file();
    let model_vocab = gpt.config().vocab_size;
    if tokenizer.vocab_size() > model_vocab {
        return Err(format!(
            "{}: the tokenizer has {} tokens, but {} gives the model a vocabulary of {model_vocab}",
            vocab.display(),
            tokenizer.vocab_size(),
            files.config.display()
        )
        .into());
    }
    let mut defaults = match &files.generation_config {
        Some(path) => read_generation_config(path)?,
        None => GenerationDefaults::default(),
    };
    if defaults.eos_tokens.is_empty() {
        // config.json may name the end token too; else the tokenizer's.
        defaults.eos_tokens = eos_of(&files.config)?;
    }
    if defaults.eos_tokens.is_empty() {
        defaults.eos_tokens.extend(tokenizer.eot_token());
    }
    if let Some(bad) = defaults
        .eos_tokens
        .iter()
        .find(|&&t| t as usize >= model_vocab)
    {
        return Err(format!(
            "{}: eos_token_id {bad} is outside the model's vocabulary of {model_vocab}",
            files
                .generation_config
                .as_ref()
                .unwrap_or(&files.config)
                .display()
        )
        .into());
    }
    Ok(LoadedModel {
        gpt: Arc::new(gpt),
        codec: Box::new(tokenizer),
        files,
        tokenizer_files: Some(tokenizer_files),
        defaults,
    })
}
// ANCHOR_END: load_model_files

fn read_json(path: &Path) -> Result<serde_json::Map<String, Value>, String> {
    let text = std::fs::read(path).map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    match serde_json::from_slice(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("{}: not a JSON object", path.display())),
        Err(e) => Err(format!("{}: not JSON: {e}", path.display())),
    }
}

/// `eos_token_id` of a JSON file: a number, a list of numbers, or absent.
fn eos_field(map: &serde_json::Map<String, Value>, path: &Path) -> Result<Vec<u32>, String> {
    let bad = || {
        format!(
            "{}: eos_token_id must be a token id or a list of token ids",
            path.display()
        )
    };
    let id = |v: &Value| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(bad)
    };
    match map.get("eos_token_id") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(ids)) => ids.iter().map(id).collect(),
        Some(v) => Ok(vec![id(v)?]),
    }
}

fn eos_of(config: &Path) -> Result<Vec<u32>, String> {
    eos_field(&read_json(config)?, config)
}

/// A field of a JSON object that is present and not `null`.
fn field<'m>(map: &'m serde_json::Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).filter(|v| !v.is_null())
}

fn out_of_range(path: &Path, name: &str, v: &Value, range: &str) -> String {
    format!(
        "{}: {name} = {v} is out of range: it must be {range}",
        path.display()
    )
}

/// A float field that must satisfy `ok`.
fn float_field(
    map: &serde_json::Map<String, Value>,
    path: &Path,
    name: &str,
    ok: fn(f64) -> bool,
    range: &str,
) -> Result<Option<f64>, String> {
    match field(map, name) {
        None => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if ok(x) => Ok(Some(x)),
            _ => Err(out_of_range(path, name, v, range)),
        },
    }
}

/// A whole-number field.
fn count_field(
    map: &serde_json::Map<String, Value>,
    path: &Path,
    name: &str,
) -> Result<Option<usize>, String> {
    match field(map, name) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| out_of_range(path, name, v, "a whole number")),
    }
}

/// Reads Hugging Face's `generation_config.json`: the fields that map to
/// our options, each checked (a value no sampler accepts is an error
/// naming the file and the field). `top_k = 0` means "off", as in
/// `transformers`.
pub fn read_generation_config(path: &Path) -> Result<GenerationDefaults, String> {
    let map = read_json(path)?;
    let do_sample = match field(&map, "do_sample") {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => return Err(out_of_range(path, "do_sample", v, "true or false")),
    };
    let max_new_tokens = match count_field(&map, path, "max_new_tokens")? {
        Some(0) => {
            return Err(format!(
                "{}: max_new_tokens = 0: nothing would be generated",
                path.display()
            ))
        }
        n => n,
    };
    Ok(GenerationDefaults {
        eos_tokens: eos_field(&map, path)?,
        do_sample,
        temperature: float_field(
            &map,
            path,
            "temperature",
            |x| x.is_finite() && x >= 0.0,
            "a number ≥ 0",
        )?,
        top_k: count_field(&map, path, "top_k")?.filter(|&k| k > 0),
        top_p: float_field(&map, path, "top_p", |x| x > 0.0 && x <= 1.0, "in (0, 1]")?,
        repetition_penalty: float_field(
            &map,
            path,
            "repetition_penalty",
            |x| x.is_finite() && x > 0.0,
            "a number > 0",
        )?,
        max_new_tokens,
    })
}
