//! # Chapter 05: layers
//!
//! A model is a tree of modules. This chapter defines what a module is
//! ([`Module`], found by visiting its fields: [`Visit`], `#[derive(Module)]`),
//! the layers deep learning is made of, how to initialise them, the losses
//! that train them, and how to save and load their state.

// Lets `#[derive(Module)]` name this crate `::chapter_05` from inside it too.
extern crate self as chapter_05;

pub mod activation;
pub mod containers;
pub mod dropout;
pub mod embedding;
pub mod flatten;
pub mod init;
pub mod linear;
pub mod loss;
pub mod module;
pub mod norm;
pub mod state_dict;

pub use activation::{
    Gelu, GeluApproximation, LeakyRelu, Relu, Sigmoid, Silu, Softmax, Softplus, Tanh,
};
pub use chapter_05_derive::Module;
pub use containers::{ModuleList, ParameterList, Sequential};
pub use dropout::{dropout, Dropout};
pub use embedding::{embedding, Embedding};
pub use flatten::Flatten;
pub use linear::Linear;
pub use loss::{
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss, CrossEntropyOptions,
    Reduction,
};
pub use module::{join_name, Buffer, Module, ModuleExt, Slot, TrainingFlag, Visit};
pub use norm::{
    batch_norm, layer_norm, rms_norm, BatchNorm1d, BatchNormConfig, LayerNorm, RmsNorm,
};
pub use state_dict::{load_safetensors, save_safetensors, StateDict, StateDictError, StateDictExt};
