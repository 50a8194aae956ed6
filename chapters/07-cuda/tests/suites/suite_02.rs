//! Chapter 02's integration tests, included unchanged, run on the device
//! that `CANDLE_DEVICE` names (`cuda-emu`, `cuda`; the CPU when unset).
//!
//! Each file below is chapter 02's own `tests/<file>.rs`; its `mod common;`
//! resolves next to it (a module loaded through `#[path]` finds its
//! submodules relative to its own directory), so the lessons run exactly
//! as written, only on another device.
//!
//! Left out, because they are about the CPU itself: `devices.rs` (the
//! device registry as chapter 02 alone sees it), `memory.rs` (counts host
//! storage), `registry.rs` (registers and removes CPU kernels) and
//! `display.rs` (every expected string ends in `device=cpu`).

// Each included file declares its own `mod common;` (clippy would rather
// share one), and chapter 06 wraps each file's lessons in a module named
// like the file.
#![allow(clippy::duplicate_mod, clippy::module_inception)]

#[path = "../support/register.rs"]
mod register;

#[path = "../../../02-tensors/tests/broadcasting.rs"]
mod broadcasting;

#[path = "../../../02-tensors/tests/creation.rs"]
mod creation;

#[path = "../../../02-tensors/tests/dtypes.rs"]
mod dtypes;

#[path = "../../../02-tensors/tests/elementwise.rs"]
mod elementwise;

#[path = "../../../02-tensors/tests/errors.rs"]
mod errors;

#[path = "../../../02-tensors/tests/exercises.rs"]
mod exercises;

#[path = "../../../02-tensors/tests/fused.rs"]
mod fused;

#[path = "../../../02-tensors/tests/indexing.rs"]
mod indexing;

#[path = "../../../02-tensors/tests/matmul.rs"]
mod matmul;

#[path = "../../../02-tensors/tests/random.rs"]
mod random;

#[path = "../../../02-tensors/tests/reductions.rs"]
mod reductions;

#[path = "../../../02-tensors/tests/views.rs"]
mod views;
