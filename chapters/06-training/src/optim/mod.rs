//! Optimisers: turning gradients into parameter updates.
//!
//! Every optimiser here follows PyTorch's definitions exactly (checked
//! against recorded PyTorch trajectories in the parity suite), keeps its
//! per-parameter state (momentum buffers, moment estimates, step counts),
//! and can save and restore that state so a resumed run continues bit for
//! bit. Updates run on raw tensors: the update itself is not part of any
//! graph.

mod adagrad;
mod adam;
mod adam_cpu;
mod fused;
mod rmsprop;
mod sgd;
mod state;

pub use adagrad::{Adagrad, AdagradConfig, AdagradRule};
pub use adam::{Adam, AdamConfig, AdamRule, AdamW};
pub use fused::{FusedOptimizer, UpdateRule, UpdateStep};
pub use rmsprop::{RmsProp, RmsPropConfig, RmsPropRule};
pub use sgd::{Sgd, SgdConfig, SgdRule};
pub use state::OptimizerState;

use chapter_03::{RawTensor, Result, Tensor};

// ANCHOR: optimizer
/// What every optimiser offers. Learning rates are per parameter group,
/// so a scheduler (or the user) can change them between steps.
pub trait Optimizer {
    /// Updates every parameter that has a gradient.
    fn step(&mut self) -> Result<()>;
    /// Forgets every parameter's gradient.
    fn zero_grad(&self);
    /// The learning rate of each parameter group.
    fn learning_rates(&self) -> Vec<f64>;
    /// Sets the learning rate of each parameter group.
    fn set_learning_rates(&mut self, lrs: &[f64]);
    /// Sets the momentum (or Adam's β₁) of every group, for schedules that
    /// cycle it (one-cycle). Optimisers without momentum ignore it.
    fn set_momentum(&mut self, _momentum: f64) {}
    /// Per-parameter state and hyper-parameters, for checkpoints.
    fn state_dict(&self) -> Result<OptimizerState>;
    /// Restores what [`state_dict`](Self::state_dict) saved.
    fn load_state_dict(&mut self, state: &OptimizerState) -> Result<()>;
}

/// A set of parameters sharing hyper-parameters (`C`, the optimiser's
/// config), like PyTorch's `param_groups`.
#[derive(Clone)]
pub struct ParamGroup<C> {
    pub params: Vec<Tensor>,
    pub config: C,
}
// ANCHOR_END: optimizer

/// The gradient of `p` as a raw tensor, if it has one.
pub(crate) fn grad_of(p: &Tensor) -> Option<RawTensor> {
    p.grad_opt().map(|g| g.data())
}
