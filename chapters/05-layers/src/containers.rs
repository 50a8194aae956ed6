//! Containers: modules made of modules.

use crate::module::{join_name, Slot};
use crate::{Module, Visit};
use chapter_03::{Result, Tensor};

// ANCHOR: sequential
/// Applies its modules in order; parameters are named `0.weight`,
/// `1.weight`, ... by position, as in PyTorch.
#[derive(Default)]
pub struct Sequential {
    layers: Vec<Box<dyn Module + Send + Sync>>,
}

impl Sequential {
    pub fn new() -> Self {
        Sequential::default()
    }
    /// Appends a module (builder style).
    pub fn add_layer(mut self, layer: impl Module + Send + Sync + 'static) -> Self {
        self.layers.push(Box::new(layer));
        self
    }
    pub fn push(&mut self, layer: Box<dyn Module + Send + Sync>) {
        self.layers.push(layer);
    }
    pub fn len(&self) -> usize {
        self.layers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }
}

impl Visit for Sequential {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        for (i, layer) in self.layers.iter().enumerate() {
            layer.visit(&join_name(prefix, &i.to_string()), f);
        }
    }
}

impl Module for Sequential {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for layer in &self.layers {
            h = layer.forward(&h)?;
        }
        Ok(h)
    }
}
// ANCHOR_END: sequential

/// A list of modules that are not applied in sequence (the caller decides
/// how to use them); registered by position like `Sequential`.
pub struct ModuleList<M> {
    pub items: Vec<M>,
}

impl<M> ModuleList<M> {
    pub fn new(items: Vec<M>) -> Self {
        ModuleList { items }
    }
    pub fn iter(&self) -> std::slice::Iter<'_, M> {
        self.items.iter()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl<M: Visit> Visit for ModuleList<M> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        self.items.visit(prefix, f)
    }
}

impl<M> std::ops::Index<usize> for ModuleList<M> {
    type Output = M;
    fn index(&self, i: usize) -> &M {
        &self.items[i]
    }
}

/// A list of bare parameters, named `0`, `1`, ...
pub struct ParameterList {
    pub params: Vec<Tensor>,
}

impl ParameterList {
    pub fn new(params: Vec<Tensor>) -> Self {
        ParameterList { params }
    }
}

impl Visit for ParameterList {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        self.params.visit(prefix, f)
    }
}
