//! Saving optimiser state: named tensors plus named numbers.

use chapter_02::default_device;
use chapter_03::{Error, RawTensor, Result};
use std::collections::BTreeMap;

/// An optimiser's state: tensors (momentum buffers, moments) and scalars
/// (step counts, learning rates), both by name such as `0.3.exp_avg` (group
/// 0, parameter 3). Stored in checkpoints next to the model's state dict.
#[derive(Debug, Clone, Default)]
pub struct OptimizerState {
    pub tensors: BTreeMap<String, RawTensor>,
    pub scalars: BTreeMap<String, f64>,
}

impl OptimizerState {
    pub fn tensor(&self, key: &str) -> Option<RawTensor> {
        self.tensors.get(key).cloned()
    }
    pub fn scalar(&self, key: &str) -> Result<f64> {
        self.scalars.get(key).copied().ok_or_else(|| {
            Error::invalid(
                "load_state_dict",
                format!("optimizer state has no entry `{key}`"),
            )
        })
    }
    /// Everything as one flat map of tensors (scalars become 0-d f64
    /// tensors under `scalar.` names), ready for a safetensors file.
    pub fn to_flat(&self, prefix: &str) -> Result<BTreeMap<String, RawTensor>> {
        let mut out = BTreeMap::new();
        for (k, v) in &self.tensors {
            out.insert(format!("{prefix}tensor.{k}"), v.clone());
        }
        for (k, v) in &self.scalars {
            out.insert(
                format!("{prefix}scalar.{k}"),
                RawTensor::scalar(*v, &default_device()?)?,
            );
        }
        Ok(out)
    }
    /// The inverse of [`to_flat`](Self::to_flat).
    pub fn from_flat(flat: &BTreeMap<String, RawTensor>, prefix: &str) -> Result<Self> {
        let mut state = OptimizerState::default();
        for (k, v) in flat {
            if let Some(name) = k.strip_prefix(prefix) {
                if let Some(t) = name.strip_prefix("tensor.") {
                    state.tensors.insert(t.to_string(), v.clone());
                } else if let Some(s) = name.strip_prefix("scalar.") {
                    state.scalars.insert(s.to_string(), v.item()?);
                }
            }
        }
        Ok(state)
    }
}
