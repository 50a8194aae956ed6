//! Checkpoints: everything needed to continue a run exactly.
//!
//! A checkpoint is one safetensors file holding the model's state dict
//! (`model.*`), the optimiser's state (`optim.*`), and its *facts*: the
//! epoch and step reached, the scheduler's step count, the random
//! generator's exact position and free-form extras such as the run's
//! configuration. It is written atomically (temporary file, flush, rename),
//! so a crash while saving leaves the previous checkpoint intact, and
//! restoring all of it makes the rest of the run identical bit for bit to a
//! run that was never interrupted.
//!
//! Two identical runs write byte-identical checkpoints. That is why the
//! facts are not in the safetensors header's `__metadata__` map: the
//! `safetensors` crate takes that map as a `HashMap`, whose iteration order
//! changes from process to process, so the header's bytes would too. The
//! facts go instead, as one JSON object with its keys sorted (a
//! `BTreeMap`), into a small `u8` tensor named [`FACTS_TENSOR`], which the
//! file's checksum covers like any other tensor. Files of the first format,
//! with the facts in the header, still load.

use crate::optim::OptimizerState;
use chapter_02::{default_device, DType, Device, GeneratorState};
use chapter_03::RawTensor;
use chapter_05::state_dict::{from_safetensors_bytes, to_safetensors_bytes, write_atomically};
use chapter_05::{StateDict, StateDictError};
use std::collections::BTreeMap;
use std::path::Path;

/// The format written today: facts in the [`FACTS_TENSOR`] tensor.
const FORMAT: &str = "candle-checkpoint-v2";
/// The first format, still read: facts in the header's metadata.
const FORMAT_V1: &str = "candle-checkpoint-v1";
/// The tensor that holds a checkpoint's facts: the UTF-8 bytes of a JSON
/// object of strings, keys sorted.
pub const FACTS_TENSOR: &str = "checkpoint.facts";

// ANCHOR: checkpoint
/// The state of a training run between two epochs.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub model: StateDict,
    pub optimizer: OptimizerState,
    pub scheduler_steps: usize,
    pub rng: GeneratorState,
    /// Epochs completed.
    pub epoch: u64,
    /// Optimiser steps taken.
    pub global_step: u64,
    /// Free-form facts to keep with the weights (e.g. the configuration).
    pub extra: BTreeMap<String, String>,
}
// ANCHOR_END: checkpoint

fn corrupt(path: &Path, msg: impl Into<String>) -> StateDictError {
    StateDictError::Corrupt {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

impl Checkpoint {
    // ANCHOR: save
    /// Writes the checkpoint atomically to `path`. The same checkpoint
    /// always gives the same bytes: tensors are stored sorted by name and
    /// the facts as a JSON object with sorted keys, with no time stamp.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StateDictError> {
        let mut tensors = StateDict::new();
        for (k, v) in &self.model {
            tensors.insert(format!("model.{k}"), v.clone());
        }
        tensors.extend(self.optimizer.to_flat("optim.")?);
        let mut facts = BTreeMap::new();
        facts.insert("format".to_string(), FORMAT.to_string());
        facts.insert("epoch".to_string(), self.epoch.to_string());
        facts.insert("global_step".to_string(), self.global_step.to_string());
        facts.insert(
            "scheduler_steps".to_string(),
            self.scheduler_steps.to_string(),
        );
        facts.insert("rng".to_string(), hex(&self.rng.to_bytes()));
        for (k, v) in &self.extra {
            facts.insert(format!("extra.{k}"), v.clone());
        }
        let json = serde_json::to_vec(&facts).map_err(|e| corrupt(path.as_ref(), e.to_string()))?;
        let len = json.len();
        tensors.insert(
            FACTS_TENSOR.to_string(),
            RawTensor::from_vec(json, len, &Device::cpu())?,
        );
        let bytes = to_safetensors_bytes(&tensors, None)?;
        write_atomically(path.as_ref(), &bytes)
    }
    // ANCHOR_END: save

    /// Reads a checkpoint written by [`save`](Self::save). Every field is
    /// checked; a damaged file gives an error naming the file and the field.
    pub fn load(path: impl AsRef<Path>) -> Result<Checkpoint, StateDictError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| StateDictError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Checkpoint::from_bytes(&bytes, path)
    }

    /// Reads a checkpoint from the bytes of a file; `path` only names it in
    /// errors (the fuzz targets call this, with no file at all).
    pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Checkpoint, StateDictError> {
        let tensors = from_safetensors_bytes(bytes, path, &default_device()?)?;
        let meta = match tensors.get(FACTS_TENSOR) {
            Some(t) => facts_from_tensor(path, t)?,
            None => {
                let (_, header) = safetensors::SafeTensors::read_metadata(bytes)
                    .map_err(|e| corrupt(path, e.to_string()))?;
                let meta: BTreeMap<String, String> = header
                    .metadata()
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect();
                if meta.get("format").is_some_and(|f| f != FORMAT_V1) {
                    return Err(corrupt(path, format!("not a {FORMAT_V1} file")));
                }
                meta
            }
        };
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| corrupt(path, format!("checkpoint metadata has no `{k}`")))
        };
        field("format")?; // its value was checked above
        let number = |k: &str| -> Result<u64, StateDictError> {
            field(k)?
                .parse()
                .map_err(|_| corrupt(path, format!("checkpoint metadata `{k}` is not a number")))
        };
        let rng = unhex(field("rng")?)
            .and_then(|b| GeneratorState::from_bytes(&b))
            .ok_or_else(|| corrupt(path, "checkpoint metadata `rng` is not a generator state"))?;
        let model = tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("model.").map(|n| (n.to_string(), v.clone())))
            .collect();
        let optimizer = OptimizerState::from_flat(&tensors, "optim.")
            .map_err(|e| corrupt(path, format!("optimizer state: {e}")))?;
        let extra = meta
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("extra.").map(|n| (n.to_string(), v.clone())))
            .collect();
        Ok(Checkpoint {
            model,
            optimizer,
            scheduler_steps: number("scheduler_steps")? as usize,
            rng,
            epoch: number("epoch")?,
            global_step: number("global_step")?,
            extra,
        })
    }
}

/// The facts of a checkpoint of the current format, from its
/// [`FACTS_TENSOR`]: a `u8` vector holding a JSON object of strings.
fn facts_from_tensor(
    path: &Path,
    t: &RawTensor,
) -> Result<BTreeMap<String, String>, StateDictError> {
    if t.dtype() != DType::U8 || t.dims().len() != 1 {
        return Err(corrupt(
            path,
            format!(
                "`{FACTS_TENSOR}` must be a u8 vector, found {:?} of shape {:?}",
                t.dtype(),
                t.dims()
            ),
        ));
    }
    let bytes = t.to_vec::<u8>()?;
    let facts: BTreeMap<String, String> = serde_json::from_slice(&bytes).map_err(|e| {
        corrupt(
            path,
            format!("`{FACTS_TENSOR}` is not a JSON object of strings: {e}"),
        )
    })?;
    if facts.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(corrupt(path, format!("not a {FORMAT} file")));
    }
    Ok(facts)
}
