//! Chapter 04's integration tests, included unchanged, run on the device
//! that `CANDLE_DEVICE` names (`cuda-emu`, `cuda`; the CPU when unset).
//!
//! Each file below is chapter 04's own `tests/<file>.rs`; its `mod common;`
//! resolves next to it (a module loaded through `#[path]` finds its
//! submodules relative to its own directory), so the lessons run exactly
//! as written, only on another device.

// Each included file declares its own `mod common;` (clippy would rather
// share one), and chapter 06 wraps each file's lessons in a module named
// like the file.
#![allow(clippy::duplicate_mod, clippy::module_inception)]

#[path = "../support/register.rs"]
mod register;

#[path = "../../../04-operations/tests/elementwise.rs"]
mod elementwise;

#[path = "../../../04-operations/tests/exercises_elementwise.rs"]
mod exercises_elementwise;

#[path = "../../../04-operations/tests/exercises_shape.rs"]
mod exercises_shape;

#[path = "../../../04-operations/tests/indexing.rs"]
mod indexing;

#[path = "../../../04-operations/tests/products.rs"]
mod products;

#[path = "../../../04-operations/tests/reductions.rs"]
mod reductions;

#[path = "../../../04-operations/tests/shape.rs"]
mod shape;

#[path = "../../../04-operations/tests/softmax.rs"]
mod softmax;

#[path = "../../../04-operations/tests/softmax_kernels.rs"]
mod softmax_kernels;
