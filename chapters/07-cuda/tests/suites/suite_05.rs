//! Chapter 05's integration tests, included unchanged, run on the device
//! that `CANDLE_DEVICE` names (`cuda-emu`, `cuda`; the CPU when unset).
//!
//! Each file below is chapter 05's own `tests/<file>.rs`; its `mod common;`
//! resolves next to it (a module loaded through `#[path]` finds its
//! submodules relative to its own directory), so the lessons run exactly
//! as written, only on another device.

// Each included file declares its own `mod common;` (clippy would rather
// share one), and chapter 06 wraps each file's lessons in a module named
// like the file.
#![allow(clippy::duplicate_mod, clippy::module_inception)]

#[path = "../support/register.rs"]
mod register;

#[path = "../../../05-layers/tests/exercises.rs"]
mod exercises;

#[path = "../../../05-layers/tests/init.rs"]
mod init;

#[path = "../../../05-layers/tests/layers.rs"]
mod layers;

#[path = "../../../05-layers/tests/loss.rs"]
mod loss;

#[path = "../../../05-layers/tests/module.rs"]
mod module;

#[path = "../../../05-layers/tests/norm.rs"]
mod norm;

#[path = "../../../05-layers/tests/norm_kernels.rs"]
mod norm_kernels;

#[path = "../../../05-layers/tests/state_dict.rs"]
mod state_dict;
