//! Checkpoints: everything needed to continue a run exactly.
//!
//! A checkpoint is one safetensors file holding the model's state dict
//! (`model.*`), the optimiser's state (`optim.*`), and in its metadata the
//! epoch and step reached, the scheduler's step count and the random
//! generator's exact position. It is written atomically (temporary file,
//! flush, rename), so a crash while saving leaves the previous checkpoint
//! intact, and restoring all of it makes the rest of the run identical bit
//! for bit to a run that was never interrupted.

use crate::optim::OptimizerState;
use chapter_02::{default_device, GeneratorState};
use chapter_05::state_dict::{from_safetensors_bytes, to_safetensors_bytes, write_atomically};
use chapter_05::{StateDict, StateDictError};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

const FORMAT: &str = "candle-checkpoint-v1";

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
    /// Writes the checkpoint atomically to `path`.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), StateDictError> {
        let mut tensors = StateDict::new();
        for (k, v) in &self.model {
            tensors.insert(format!("model.{k}"), v.clone());
        }
        tensors.extend(self.optimizer.to_flat("optim.")?);
        let mut meta = HashMap::new();
        meta.insert("format".to_string(), FORMAT.to_string());
        meta.insert("epoch".to_string(), self.epoch.to_string());
        meta.insert("global_step".to_string(), self.global_step.to_string());
        meta.insert(
            "scheduler_steps".to_string(),
            self.scheduler_steps.to_string(),
        );
        meta.insert("rng".to_string(), hex(&self.rng.to_bytes()));
        for (k, v) in &self.extra {
            meta.insert(format!("extra.{k}"), v.clone());
        }
        let bytes = to_safetensors_bytes(&tensors, Some(meta))?;
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
        let tensors = from_safetensors_bytes(&bytes, path, &default_device()?)?;
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
            .map_err(|e| corrupt(path, e.to_string()))?;
        let meta = header.metadata().clone().unwrap_or_default();
        let field = |k: &str| {
            meta.get(k)
                .ok_or_else(|| corrupt(path, format!("checkpoint metadata has no `{k}`")))
        };
        if field("format")? != FORMAT {
            return Err(corrupt(path, format!("not a {FORMAT} file")));
        }
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
