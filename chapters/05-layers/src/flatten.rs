//! `Flatten`: the reshape between convolutional and fully connected layers.

use crate::Module;
use chapter_02::Result;
use chapter_03::Tensor;
use chapter_04::prelude::*;
use chapter_05_derive::Module as DeriveModule;

// ANCHOR: flatten
/// Merges dimensions `start_dim..=end_dim` into one (PyTorch defaults 1
/// and −1): `[N, C, H, W]` → `[N, C·H·W]`, the bridge from convolutions to
/// a `Linear`. A view when the layout allows it.
#[derive(DeriveModule, Debug, Clone, Copy)]
pub struct Flatten {
    pub start_dim: i64,
    pub end_dim: i64,
}

impl Flatten {
    pub fn new(start_dim: i64, end_dim: i64) -> Self {
        Flatten { start_dim, end_dim }
    }
}

impl Default for Flatten {
    fn default() -> Self {
        Flatten::new(1, -1)
    }
}

impl Module for Flatten {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        x.flatten(self.start_dim, self.end_dim)
    }
}
// ANCHOR_END: flatten
