//! Chapter 06's integration tests, included unchanged, run on the device
//! that `CANDLE_DEVICE` names (`cuda-emu`, `cuda`; the CPU when unset).
//!
//! Each file below is chapter 06's own `tests/<file>.rs`; its `mod common;`
//! resolves next to it (a module loaded through `#[path]` finds its
//! submodules relative to its own directory), so the lessons run exactly
//! as written, only on another device.

// Each included file declares its own `mod common;` (clippy would rather
// share one), and chapter 06 wraps each file's lessons in a module named
// like the file.
#![allow(clippy::duplicate_mod, clippy::module_inception)]

#[path = "../support/register.rs"]
mod register;

#[path = "../../../06-training/tests/accumulation.rs"]
mod accumulation;

#[path = "../../../06-training/tests/checkpoint.rs"]
mod checkpoint;

#[path = "../../../06-training/tests/clip.rs"]
mod clip;

#[path = "../../../06-training/tests/corrupt_files.rs"]
mod corrupt_files;

#[path = "../../../06-training/tests/dashboard.rs"]
mod dashboard;

#[path = "../../../06-training/tests/data_parallel.rs"]
mod data_parallel;

#[path = "../../../06-training/tests/data_digits.rs"]
mod data_digits;

#[path = "../../../06-training/tests/data_exercises.rs"]
mod data_exercises;

#[path = "../../../06-training/tests/data_idx.rs"]
mod data_idx;

#[path = "../../../06-training/tests/data_loader.rs"]
mod data_loader;

#[path = "../../../06-training/tests/data_paths.rs"]
mod data_paths;

#[path = "../../../06-training/tests/data_transforms.rs"]
mod data_transforms;

#[path = "../../../06-training/tests/exercises_training.rs"]
mod exercises_training;

#[path = "../../../06-training/tests/metrics.rs"]
mod metrics;

#[path = "../../../06-training/tests/optim.rs"]
mod optim;

#[path = "../../../06-training/tests/resume.rs"]
mod resume;

#[path = "../../../06-training/tests/run_dir.rs"]
mod run_dir;

#[path = "../../../06-training/tests/schedule.rs"]
mod schedule;
