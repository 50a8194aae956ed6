//! Modules: values that hold parameters and compute a forward pass.
//!
//! A layer is a plain struct. Its parameters, buffers (non-trained state
//! such as batch-norm running statistics) and train/eval switch are found
//! by *visiting* its fields: [`Visit`] is implemented for the building
//! blocks (a `Tensor` field is a parameter, a [`Buffer`] is a buffer, a
//! [`TrainingFlag`] is a switch, `Vec`/`Option`/`Box` forward to their
//! contents), and `#[derive(Module)]` implements it for any struct by
//! visiting each field with its name. Everything else
//! (`named_parameters`, `train`, `state_dict`, ...) is written once, in
//! [`ModuleExt`], on top of `visit`.

use chapter_03::{RawTensor, Result, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};

// ANCHOR: visit
/// One thing a module holds, as a visitor sees it.
pub enum Slot<'a> {
    /// A trainable tensor (requires grad).
    Param(&'a Tensor),
    /// State saved with the model but not trained (running statistics).
    Buffer(&'a Buffer),
    /// A train/eval switch (dropout, batch norm).
    Training(&'a TrainingFlag),
}

/// Lists what a value holds: `f(name, slot)` for each parameter, buffer and
/// flag, with dotted names (`layers.0.weight`) built from `prefix`.
pub trait Visit {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>));
}

/// `prefix.name`, or `name` at the top level.
pub fn join_name(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}
// ANCHOR_END: visit

// ANCHOR: module
/// A layer or model: something with a forward pass and visitable state.
pub trait Module: Visit {
    fn forward(&self, x: &Tensor) -> Result<Tensor>;
}
// ANCHOR_END: module

/// A non-trainable tensor that belongs to a module's state (and its state
/// dict), updated in place during training: batch norm's running mean.
pub struct Buffer(Tensor);

impl Buffer {
    pub fn new(value: RawTensor) -> Self {
        Buffer(Tensor::from_raw(value))
    }
    pub fn get(&self) -> RawTensor {
        self.0.data()
    }
    pub fn set(&self, value: RawTensor) -> Result<()> {
        self.0.set_data(value)
    }
}

/// Whether a module is in training mode (the default) or evaluation mode.
pub struct TrainingFlag(AtomicBool);

impl TrainingFlag {
    pub fn new() -> Self {
        TrainingFlag(AtomicBool::new(true))
    }
    pub fn get(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set(&self, training: bool) {
        self.0.store(training, Ordering::Relaxed)
    }
}

impl Default for TrainingFlag {
    fn default() -> Self {
        TrainingFlag::new()
    }
}

// ANCHOR: visit_impls
impl Visit for Tensor {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(prefix, Slot::Param(self))
    }
}
impl Visit for Buffer {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(prefix, Slot::Buffer(self))
    }
}
impl Visit for TrainingFlag {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        f(prefix, Slot::Training(self))
    }
}
/// Items of a list are named by position: `layers.0`, `layers.1`, ...
impl<T: Visit> Visit for Vec<T> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        for (i, item) in self.iter().enumerate() {
            item.visit(&join_name(prefix, &i.to_string()), f);
        }
    }
}
impl<T: Visit> Visit for Option<T> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        if let Some(inner) = self {
            inner.visit(prefix, f);
        }
    }
}
impl<T: Visit + ?Sized> Visit for Box<T> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        (**self).visit(prefix, f)
    }
}
impl<T: Visit + ?Sized> Visit for std::sync::Arc<T> {
    fn visit(&self, prefix: &str, f: &mut dyn FnMut(&str, Slot<'_>)) {
        (**self).visit(prefix, f)
    }
}
// ANCHOR_END: visit_impls

/// Configuration fields (sizes, rates, flags) hold no state.
macro_rules! visit_nothing {
    ($($t:ty),*) => {
        $(impl Visit for $t {
            fn visit(&self, _: &str, _: &mut dyn FnMut(&str, Slot<'_>)) {}
        })*
    };
}
visit_nothing!(
    usize,
    u64,
    u32,
    i64,
    i32,
    f32,
    f64,
    bool,
    String,
    chapter_03::DType
);

// ANCHOR: module_ext
/// Everything derived from `visit`, available on every module.
pub trait ModuleExt: Visit {
    /// Parameters with their dotted names, in declaration order.
    fn named_parameters(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, slot| {
            if let Slot::Param(t) = slot {
                out.push((name.to_string(), t.clone()));
            }
        });
        out
    }
    fn parameters(&self) -> Vec<Tensor> {
        self.named_parameters()
            .into_iter()
            .map(|(_, t)| t)
            .collect()
    }
    /// Buffers with their dotted names.
    fn named_buffers(&self) -> Vec<(String, RawTensor)> {
        let mut out = Vec::new();
        self.visit("", &mut |name, slot| {
            if let Slot::Buffer(b) = slot {
                out.push((name.to_string(), b.get()));
            }
        });
        out
    }
    /// Total number of trainable scalars.
    fn num_parameters(&self) -> usize {
        self.parameters().iter().map(|p| p.elem_count()).sum()
    }
    /// Switches every submodule to training (`true`) or evaluation mode.
    fn set_training(&self, training: bool) {
        self.visit("", &mut |_, slot| {
            if let Slot::Training(flag) = slot {
                flag.set(training);
            }
        });
    }
    fn train(&self) {
        self.set_training(true)
    }
    fn eval(&self) {
        self.set_training(false)
    }
    /// Forgets every parameter's gradient.
    fn zero_grad(&self) {
        for p in self.parameters() {
            p.zero_grad();
        }
    }
}

impl<T: Visit + ?Sized> ModuleExt for T {}
// ANCHOR_END: module_ext
