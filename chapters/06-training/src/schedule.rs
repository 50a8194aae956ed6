//! Learning-rate schedules.
//!
//! Each schedule is a pure function of the step count: `lr_at(t)`. PyTorch
//! computes most schedules recursively (each value from the previous one);
//! the closed forms here give the same numbers (to rounding) and make a
//! schedule's state a single integer, which is what makes resuming exact.
//! A [`Scheduler`] applies a schedule to an optimiser's parameter groups.

use crate::optim::Optimizer;
use std::f64::consts::PI;

// ANCHOR: schedule
/// A learning rate (and optionally a momentum) as a function of the step.
pub trait LrSchedule: Send {
    /// The learning rate after `t` calls of `Scheduler::step`, for a
    /// parameter group whose initial learning rate is `base_lr`.
    fn lr_at(&self, t: usize, base_lr: f64) -> f64;
    /// The momentum (or Adam β₁) at step `t`, for schedules that cycle it.
    fn momentum_at(&self, _t: usize) -> Option<f64> {
        None
    }
}
// ANCHOR_END: schedule

/// Multiply by `gamma` every `step_size` steps.
pub struct StepLr {
    pub step_size: usize,
    pub gamma: f64,
}
impl LrSchedule for StepLr {
    fn lr_at(&self, t: usize, base: f64) -> f64 {
        base * self.gamma.powi((t / self.step_size) as i32)
    }
}

/// Multiply by `gamma` at each milestone.
pub struct MultiStepLr {
    pub milestones: Vec<usize>,
    pub gamma: f64,
}
impl LrSchedule for MultiStepLr {
    fn lr_at(&self, t: usize, base: f64) -> f64 {
        let passed = self.milestones.iter().filter(|&&m| m <= t).count();
        base * self.gamma.powi(passed as i32)
    }
}

/// Multiply by `gamma` every step.
pub struct ExponentialLr {
    pub gamma: f64,
}
impl LrSchedule for ExponentialLr {
    fn lr_at(&self, t: usize, base: f64) -> f64 {
        base * self.gamma.powi(t as i32)
    }
}

// ANCHOR: cosine
/// `η_min + (η₀ − η_min)(1 + cos(πt/T))/2`: a half cosine from the base rate
/// down to `eta_min` over `t_max` steps (and, like PyTorch, back up after).
pub struct CosineAnnealingLr {
    pub t_max: usize,
    pub eta_min: f64,
}
impl LrSchedule for CosineAnnealingLr {
    fn lr_at(&self, t: usize, base: f64) -> f64 {
        self.eta_min
            + (base - self.eta_min) * (1.0 + (PI * t as f64 / self.t_max as f64).cos()) / 2.0
    }
}
// ANCHOR_END: cosine

/// Linear ramp of the factor from `start_factor` to `end_factor` over
/// `total_iters` steps (a warm-up), then constant.
pub struct LinearLr {
    pub start_factor: f64,
    pub end_factor: f64,
    pub total_iters: usize,
}
impl LrSchedule for LinearLr {
    fn lr_at(&self, t: usize, base: f64) -> f64 {
        let frac = t.min(self.total_iters) as f64 / self.total_iters.max(1) as f64;
        base * (self.start_factor + (self.end_factor - self.start_factor) * frac)
    }
}

/// How [`OneCycleLr`] interpolates within a phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anneal {
    Cos,
    Linear,
}

// ANCHOR: one_cycle
/// The one-cycle policy (Smith & Topin, 2018): warm up from
/// `max_lr/div_factor` to `max_lr` over the first `pct_start` of training,
/// then anneal to `initial/final_div_factor`; momentum moves the opposite
/// way, between `max_momentum` and `base_momentum`.
pub struct OneCycleLr {
    pub max_lr: f64,
    pub total_steps: usize,
    pub pct_start: f64,
    pub anneal: Anneal,
    pub div_factor: f64,
    pub final_div_factor: f64,
    pub three_phase: bool,
    pub cycle_momentum: bool,
    pub base_momentum: f64,
    pub max_momentum: f64,
}

impl OneCycleLr {
    /// PyTorch's defaults.
    pub fn new(max_lr: f64, total_steps: usize) -> Self {
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
            cycle_momentum: true,
            base_momentum: 0.85,
            max_momentum: 0.95,
        }
    }

    fn interpolate(&self, start: f64, end: f64, pct: f64) -> f64 {
        match self.anneal {
            Anneal::Cos => end + (start - end) / 2.0 * ((PI * pct).cos() + 1.0),
            Anneal::Linear => (end - start) * pct + start,
        }
    }

    /// Phases as (last step, lr from, lr to, momentum from, momentum to).
    fn phases(&self) -> Vec<(f64, f64, f64, f64, f64)> {
        let initial = self.max_lr / self.div_factor;
        let min_lr = initial / self.final_div_factor;
        let total = self.total_steps as f64;
        let up = self.pct_start * total - 1.0;
        let (lo_m, hi_m) = (self.base_momentum, self.max_momentum);
        if self.three_phase {
            vec![
                (up, initial, self.max_lr, hi_m, lo_m),
                (
                    2.0 * self.pct_start * total - 2.0,
                    self.max_lr,
                    initial,
                    lo_m,
                    hi_m,
                ),
                (total - 1.0, initial, min_lr, hi_m, hi_m),
            ]
        } else {
            vec![
                (up, initial, self.max_lr, hi_m, lo_m),
                (total - 1.0, self.max_lr, min_lr, lo_m, hi_m),
            ]
        }
    }

    fn at(&self, t: usize) -> (f64, f64) {
        let t = t as f64;
        let mut start = 0.0;
        let phases = self.phases();
        for (i, &(end, lr0, lr1, m0, m1)) in phases.iter().enumerate() {
            if t <= end || i == phases.len() - 1 {
                let pct = (t - start) / (end - start);
                return (
                    self.interpolate(lr0, lr1, pct),
                    self.interpolate(m0, m1, pct),
                );
            }
            start = end;
        }
        unreachable!("the last phase always matches")
    }
}

impl LrSchedule for OneCycleLr {
    fn lr_at(&self, t: usize, _base: f64) -> f64 {
        self.at(t).0
    }
    fn momentum_at(&self, t: usize) -> Option<f64> {
        self.cycle_momentum.then(|| self.at(t).1)
    }
}
// ANCHOR_END: one_cycle

/// Runs `schedules[0]` until `milestones[0]`, then `schedules[1]` from its
/// own step 0, and so on (warm-up followed by cosine decay, typically).
pub struct SequentialLr {
    pub schedules: Vec<Box<dyn LrSchedule>>,
    pub milestones: Vec<usize>,
}
impl SequentialLr {
    fn locate(&self, t: usize) -> (usize, usize) {
        let idx = self.milestones.iter().filter(|&&m| m <= t).count();
        let start = if idx == 0 {
            0
        } else {
            self.milestones[idx - 1]
        };
        (idx, t - start)
    }
}
impl LrSchedule for SequentialLr {
    fn lr_at(&self, t: usize, base: f64) -> f64 {
        let (i, local) = self.locate(t);
        self.schedules[i].lr_at(local, base)
    }
    fn momentum_at(&self, t: usize) -> Option<f64> {
        let (i, local) = self.locate(t);
        self.schedules[i].momentum_at(local)
    }
}

/// A constant learning rate (the base rate).
pub struct ConstantLr;
impl LrSchedule for ConstantLr {
    fn lr_at(&self, _t: usize, base: f64) -> f64 {
        base
    }
}

// ANCHOR: scheduler
/// Applies a schedule to an optimiser. Call [`step`](Self::step) after each
/// `optimizer.step()`, as in PyTorch.
pub struct Scheduler {
    schedule: Box<dyn LrSchedule>,
    base_lrs: Vec<f64>,
    t: usize,
}

impl Scheduler {
    /// Records the optimiser's current learning rates as the base rates and
    /// sets the step-0 values.
    pub fn new(schedule: impl LrSchedule + 'static, optimizer: &mut dyn Optimizer) -> Self {
        let base_lrs = optimizer.learning_rates();
        let s = Scheduler {
            schedule: Box::new(schedule),
            base_lrs,
            t: 0,
        };
        s.apply(optimizer);
        s
    }

    fn apply(&self, optimizer: &mut dyn Optimizer) {
        let lrs: Vec<f64> = self
            .base_lrs
            .iter()
            .map(|&b| self.schedule.lr_at(self.t, b))
            .collect();
        optimizer.set_learning_rates(&lrs);
        if let Some(m) = self.schedule.momentum_at(self.t) {
            optimizer.set_momentum(m);
        }
    }

    /// Advances one step and updates the optimiser.
    pub fn step(&mut self, optimizer: &mut dyn Optimizer) {
        self.t += 1;
        self.apply(optimizer);
    }

    /// Steps taken so far (the whole state of a scheduler).
    pub fn steps(&self) -> usize {
        self.t
    }

    /// Restores the step count (from a checkpoint) and re-applies the rates.
    pub fn set_steps(&mut self, t: usize, optimizer: &mut dyn Optimizer) {
        self.t = t;
        self.apply(optimizer);
    }

    /// The learning rate of each group at the current step.
    pub fn current_lrs(&self) -> Vec<f64> {
        self.base_lrs
            .iter()
            .map(|&b| self.schedule.lr_at(self.t, b))
            .collect()
    }
}
// ANCHOR_END: scheduler
