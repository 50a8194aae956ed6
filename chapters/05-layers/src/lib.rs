//! # Chapter 05: layers
//!
//! A model is a tree of modules. This chapter defines what a module is
//! ([`Module`], found by visiting its fields: [`Visit`], `#[derive(Module)]`),
//! the layers deep learning is made of, how to initialise them, the losses
//! that train them, and how to save and load their state.

// Lets `#[derive(Module)]` name this crate `::chapter_05` from inside it too.
extern crate self as chapter_05;

pub mod containers;
pub mod init;
pub mod linear;
pub mod module;
pub mod state_dict;

pub use chapter_05_derive::Module;
pub use containers::{ModuleList, ParameterList, Sequential};
pub use linear::Linear;
pub use module::{join_name, Buffer, Module, ModuleExt, Slot, TrainingFlag, Visit};
pub use state_dict::{load_safetensors, save_safetensors, StateDict, StateDictError, StateDictExt};
