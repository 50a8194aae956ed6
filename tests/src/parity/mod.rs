//! The PyTorch parity suite: every op of the library, run on the inputs
//! PyTorch saw, must give PyTorch's outputs and gradients.
//!
//! The fixtures (`tests/fixtures/`, format in its `README.md`) hold, for each
//! case, the op's inputs, PyTorch's outputs, loss weights `w_j` and the
//! gradients of `loss = Σ_j (out_j ⊙ w_j).sum()`. The runner
//! ([`run_suite`]) loads them, calls our op through a group's dispatcher
//! ([`ops`]), rebuilds the same loss, runs `backward`, and compares every
//! output and gradient within the case's tolerance, once against the float32
//! file and once, in float64, against the `.f64` file.
//!
//! Set `CANDLE_FIXTURES=/path/to/folder` to run against another fixture set
//! of the same format.

pub mod args;
pub mod compare;
pub mod fixture_file;
pub mod layout;
pub mod manifest;
pub mod ops;
pub mod runner;

pub use runner::{
    run_suite, run_suite_with, CaseCheck, CaseEnv, CaseOutcome, Precision, SuiteReport,
};

use manifest::Case;
use ops::Dispatch;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

/// Which fixture cases the suite runs, and the dispatcher of each.
///
/// This list is the suite's coverage: a case of a kind listed here that we
/// cannot run (unknown op, missing API, error) counts as a failure, and a
/// case of any other kind is not counted at all. When a chapter implements a
/// new group (nn, loss, optimizers, lr_schedulers, clip_grad_norm, conv,
/// attention, resnet_block, gpt2_tiny, ...), write its dispatcher in
/// `ops/<group>.rs` and add one line here; `ops: None` takes every op of the
/// group, `Some(list)` only the ops named (the rest wait for their chapter).
pub const COVERED: &[Coverage] = &[
    // Chapter 03 (add/sub/mul/div/pow/exp/log/tanh) and chapter 04 (the rest).
    Coverage::group("elementwise", ops::elementwise::run),
    // Chapter 03 (sum/mean) and chapter 04 (max, var, logsumexp, softmax family).
    Coverage::group("reductions", ops::reductions::run),
    // Chapter 04: views, slicing, indexing, cat/stack/split, masks, tril/triu.
    Coverage::group("shape", ops::shape::run),
    // Chapter 03 (matmul) and chapter 04 (einsum).
    Coverage::group("matmul", ops::matmul::run),
    // Chapter 04: the causal masked softmax; chapter 08: SDPA and MultiheadAttention.
    Coverage::group("attention", ops::attention::run),
    // Chapter 05: Linear, Embedding, LayerNorm, RMSNorm, BatchNorm (train + running stats, eval).
    Coverage::group("nn", ops::nn::run),
    // Chapter 05: cross_entropy (smoothing, ignore_index), nll_loss, mse_loss, BCE with logits.
    Coverage::group("loss", ops::loss::run),
    // Chapter 06: SGD, Adam, AdamW, RMSprop, Adagrad replayed step by step.
    Coverage::custom("optimizers", ops::optimizers::check),
    // Chapter 06: the schedules of `lr_schedulers.json` (one case), momentum included.
    Coverage::custom("lr_schedulers", ops::lr_schedulers::check),
    // Chapter 06: clip_grad_norm_ (2-norm and inf-norm), the norm and the clipped grads.
    Coverage::custom("clip_grad_norm", ops::clip_grad_norm::check),
    // Chapter 08: GPT-2 from Hugging Face's files: logits, loss, hidden states, grads, generation.
    Coverage::custom("gpt2_tiny", ops::gpt2::check),
    // Chapter 08: GPT-2's tokenizer, ids exactly tiktoken's.
    Coverage::custom("tokenizer", ops::tokenizer::check),
    // Chapter 09: conv2d, conv_transpose2d, max/avg/adaptive average pooling.
    Coverage::group("conv", ops::conv::run),
    // Chapter 09: torchvision's BasicBlock in training mode (output, grads, running stats).
    Coverage::group("resnet_block", ops::resnet::run),
];

/// One covered kind of fixture case: a group, optionally narrowed to some
/// ops, and how its cases run.
pub struct Coverage {
    pub group: &'static str,
    /// `None`: every op of the group.
    pub ops: Option<&'static [&'static str]>,
    pub runner: Runner,
}

/// How the cases of a covered kind run.
#[derive(Clone, Copy)]
pub enum Runner {
    /// Generic cases (inputs, outputs, `w`, grads): the dispatcher maps the
    /// op to our API; building the loss, `backward` and every comparison are
    /// the suite's.
    Op(Dispatch),
    /// Cases with a layout of their own (optimizer trajectories, LR
    /// schedules, clipping, GPT-2, tokenizer): the function loads what it
    /// needs through the [`CaseEnv`] and checks everything itself.
    Case(CaseCheck),
}

impl Coverage {
    /// Every case of `group`, generic layout.
    pub const fn group(group: &'static str, run: Dispatch) -> Coverage {
        Coverage {
            group,
            ops: None,
            runner: Runner::Op(run),
        }
    }

    /// The cases of `group` whose op is one of `ops`, generic layout.
    pub const fn ops(group: &'static str, ops: &'static [&'static str], run: Dispatch) -> Coverage {
        Coverage {
            group,
            ops: Some(ops),
            runner: Runner::Op(run),
        }
    }

    /// Every case of `group`, checked by `check` (a layout of its own).
    pub const fn custom(group: &'static str, check: CaseCheck) -> Coverage {
        Coverage {
            group,
            ops: None,
            runner: Runner::Case(check),
        }
    }

    /// Whether this entry covers `case`.
    pub fn covers(&self, case: &Case) -> bool {
        self.group == case.group && self.ops.is_none_or(|ops| ops.contains(&case.op.as_str()))
    }
}

/// The entry of `coverage` that covers `case`, or `None` when its kind is
/// not covered (yet).
pub fn coverage_for<'c>(case: &Case, coverage: &'c [Coverage]) -> Option<&'c Coverage> {
    coverage.iter().find(|c| c.covers(case))
}

/// Why a case failed: one sentence, printed after the case id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl Failure {
    pub fn new(msg: impl Into<String>) -> Failure {
        Failure(msg.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<chapter_02::Error> for Failure {
    fn from(e: chapter_02::Error) -> Failure {
        Failure(e.to_string())
    }
}

impl From<String> for Failure {
    fn from(s: String) -> Failure {
        Failure(s)
    }
}

/// The environment variable naming another fixture folder.
pub const FIXTURES_ENV: &str = "CANDLE_FIXTURES";

/// The fixtures shipped with the repository: `<workspace>/tests/fixtures`.
pub fn default_fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// The folder to read: the value of `CANDLE_FIXTURES` when it is set and not
/// empty, the shipped fixtures otherwise. Takes the variable's value as an
/// argument so it can be tested without touching the process environment.
pub fn resolve_fixtures_dir(env_value: Option<OsString>) -> PathBuf {
    match env_value {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => default_fixtures_dir(),
    }
}

/// The fixture folder this run uses (reads `CANDLE_FIXTURES`).
pub fn fixtures_dir() -> PathBuf {
    resolve_fixtures_dir(std::env::var_os(FIXTURES_ENV))
}

#[cfg(test)]
mod tests;
