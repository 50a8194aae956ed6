//! Chapter 03's integration tests, included unchanged, run on the device
//! that `CANDLE_DEVICE` names (`cuda-emu`, `cuda`; the CPU when unset).
//!
//! Each file below is chapter 03's own `tests/<file>.rs`; its `mod common;`
//! resolves next to it (a module loaded through `#[path]` finds its
//! submodules relative to its own directory), so the lessons run exactly
//! as written, only on another device.
//!
//! Five lessons build graphs of 10,000 to 100,000 operations
//! (`graph_lifetime::*100_000*`, `*10_000*`, `*deep_create_graph*`): on
//! the emulator every launch checks the guards of every live allocation,
//! so they take minutes there; skip them with
//! `-- --skip 100_000 --skip 10_000 --skip deep_create_graph`.

// Each included file declares its own `mod common;` (clippy would rather
// share one), and chapter 06 wraps each file's lessons in a module named
// like the file.
#![allow(clippy::duplicate_mod, clippy::module_inception)]

#[path = "../support/register.rs"]
mod register;

#[path = "../../../03-autograd/tests/accumulation.rs"]
mod accumulation;

#[path = "../../../03-autograd/tests/anomaly.rs"]
mod anomaly;

#[path = "../../../03-autograd/tests/backward.rs"]
mod backward;

#[path = "../../../03-autograd/tests/broadcasting.rs"]
mod broadcasting;

#[path = "../../../03-autograd/tests/custom_op.rs"]
mod custom_op;

#[path = "../../../03-autograd/tests/dot.rs"]
mod dot;

#[path = "../../../03-autograd/tests/errors.rs"]
mod errors;

#[path = "../../../03-autograd/tests/exercises.rs"]
mod exercises;

#[path = "../../../03-autograd/tests/gradcheck.rs"]
mod gradcheck;

#[path = "../../../03-autograd/tests/graph_lifetime.rs"]
mod graph_lifetime;

#[path = "../../../03-autograd/tests/higher_order.rs"]
mod higher_order;

#[path = "../../../03-autograd/tests/no_grad.rs"]
mod no_grad;
