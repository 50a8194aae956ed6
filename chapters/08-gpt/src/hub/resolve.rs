//! From `--model SPEC` to the files on disk, without the network.
//!
//! `candle generate --model gpt2` and `--model ./my-gpt2` should both work:
//! a SPEC is a folder holding a model (a Hugging Face model folder, or a
//! snapshot in the cache), or a model id (optionally `id@revision`) that
//! `candle download` has put in the cache. Each kind of source is one
//! variant of [`ModelSource`] and one step of [`resolve_model_in`], so a new
//! kind (a training run's folder) is one more variant and one more step.

use super::cache::HubCache;
use super::error::{HubError, Result};
use super::model_id::ModelId;
use std::path::{Path, PathBuf};

/// Where a model's files were found.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ModelSource {
    /// A folder named on the command line.
    Folder(PathBuf),
    /// A snapshot in the Hugging Face cache.
    HubCache {
        model: ModelId,
        revision: String,
        commit: String,
    },
    /// The folder of a training run (`candle train shakespeare`): its
    /// `config.json` is the run's settings, its weights are in
    /// `checkpoint.safetensors`, and `vocab.json` is a *character*
    /// vocabulary (a JSON list of one-character strings), not GPT-2's.
    RunDir(PathBuf),
}

/// The files that mark a folder as a training run's rather than a model's.
pub const RUN_MARKERS: [&str; 2] = ["checkpoint.safetensors", "metrics.jsonl"];

// ANCHOR: model_files_struct
/// The files of one model, ready for the loaders of [`gpt2`](crate::gpt2)
/// and [`tokenizer`](crate::tokenizer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelFiles {
    pub source: ModelSource,
    /// The folder holding them.
    pub dir: PathBuf,
    /// `config.json`: the architecture's hyper-parameters.
    pub config: PathBuf,
    /// `model.safetensors`: the weights (a run's `checkpoint.safetensors`).
    pub weights: PathBuf,
    /// `vocab.json` and `merges.txt`: GPT-2's byte-level BPE, if present
    /// (a run's `vocab.json` is its character vocabulary).
    pub vocab: Option<PathBuf>,
    pub merges: Option<PathBuf>,
    /// `tokenizer.json`: the `tokenizers` library's all-in-one file, if present.
    pub tokenizer_json: Option<PathBuf>,
    /// `generation_config.json`: default sampling settings, if present.
    pub generation_config: Option<PathBuf>,
}
// ANCHOR_END: model_files_struct

impl ModelFiles {
    /// The model files in `dir`: `config.json` and `model.safetensors` must
    /// be there (the error names the one that is not), the rest may be.
    pub fn in_folder(dir: &Path, source: ModelSource) -> Result<ModelFiles> {
        let required = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(HubError::NotAModelDir {
                    path: dir.to_path_buf(),
                    missing: name.to_string(),
                })
            }
        };
        let optional = |name: &str| Some(dir.join(name)).filter(|p| p.is_file());
        Ok(ModelFiles {
            config: required("config.json")?,
            weights: required("model.safetensors")?,
            vocab: optional("vocab.json"),
            merges: optional("merges.txt"),
            tokenizer_json: optional("tokenizer.json"),
            generation_config: optional("generation_config.json"),
            dir: dir.to_path_buf(),
            source,
        })
    }

    /// The tokenizer's files: `vocab.json` + `merges.txt` when both are
    /// there, else `tokenizer.json` (see
    /// [`TokenizerFiles::choose`](crate::tokenizer::TokenizerFiles::choose)).
    pub fn tokenizer_files(&self) -> Option<crate::tokenizer::TokenizerFiles> {
        crate::tokenizer::TokenizerFiles::choose(
            self.vocab.as_deref(),
            self.merges.as_deref(),
            self.tokenizer_json.as_deref(),
        )
    }

    /// The files of a training run's folder: `config.json`,
    /// `checkpoint.safetensors` and `vocab.json` must all be there.
    pub fn in_run_dir(dir: &Path) -> Result<ModelFiles> {
        let required = |name: &str| {
            let path = dir.join(name);
            if path.is_file() {
                Ok(path)
            } else {
                Err(HubError::NotARunDir {
                    path: dir.to_path_buf(),
                    missing: name.to_string(),
                })
            }
        };
        Ok(ModelFiles {
            config: required("config.json")?,
            weights: required("checkpoint.safetensors")?,
            vocab: Some(required("vocab.json")?),
            merges: None,
            tokenizer_json: None,
            generation_config: None,
            dir: dir.to_path_buf(),
            source: ModelSource::RunDir(dir.to_path_buf()),
        })
    }
}

// ANCHOR: resolve_model
/// Resolves `--model SPEC` with the cache of [`HubCache::from_env`].
pub fn resolve_model(spec: &str) -> Result<ModelFiles> {
    resolve_model_in(&HubCache::from_env()?, spec)
}

/// Resolves `spec`, in this order:
/// 1. the folder of a training run (it has one of [`RUN_MARKERS`] and no
///    `model.safetensors`): it must hold the run's settings, checkpoint
///    and vocabulary;
/// 2. another existing folder: it must hold a model;
/// 3. a model id `owner/name` or `name`, with an optional `@revision`
///    (default `main`): its snapshot in `cache` must hold the model.
///
/// Never goes online; a model id that is not cached is an error that says
/// to run `candle download`.
pub fn resolve_model_in(cache: &HubCache, spec: &str) -> Result<ModelFiles> {
    let path = Path::new(spec);
    let is_run = |p: &Path| {
        !p.join("model.safetensors").exists() && RUN_MARKERS.iter().any(|m| p.join(m).exists())
    };
    if path.is_dir() && is_run(path) {
        return ModelFiles::in_run_dir(path);
    }
    if path.is_dir() {
        return ModelFiles::in_folder(path, ModelSource::Folder(path.to_path_buf()));
    }
    let (id, revision) = spec.split_once('@').unwrap_or((spec, "main"));
    let model = ModelId::parse(id).map_err(|e| HubError::UnknownModelSpec {
        spec: spec.to_string(),
        reason: format!("no such folder, and {e}"),
    })?;
    cached_model(cache, &model, revision)
}

/// The snapshot of `model` at `revision` in `cache`.
pub fn cached_model(cache: &HubCache, model: &ModelId, revision: &str) -> Result<ModelFiles> {
    let not_cached = |detail: String| HubError::NotCached {
        model: model.to_string(),
        revision: revision.to_string(),
        cache: cache.root().to_path_buf(),
        detail,
    };
    let commit = cache
        .resolve_revision(model, revision)?
        .ok_or_else(|| not_cached(String::new()))?;
    let snapshot = cache.snapshot_dir(model, &commit);
    if !snapshot.is_dir() {
        return Err(not_cached(String::new()));
    }
    let source = ModelSource::HubCache {
        model: model.clone(),
        revision: revision.to_string(),
        commit,
    };
    ModelFiles::in_folder(&snapshot, source).map_err(|e| match e {
        HubError::NotAModelDir { missing, .. } => not_cached(format!(
            " (its snapshot {} has no {missing}: an interrupted download?)",
            snapshot.display()
        )),
        other => other,
    })
}
// ANCHOR_END: resolve_model
