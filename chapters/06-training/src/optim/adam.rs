//! Adam and AdamW.

use super::fused::{
    check_hyper, check_non_negative, Build, FusedOptimizer, UpdateRule, UpdateStep,
};
use chapter_02::{DeviceKind, InPlaceKernel};
use chapter_03::Result;

/// Adam hyper-parameters. `decoupled_weight_decay` selects AdamW.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamConfig {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub weight_decay: f64,
    pub amsgrad: bool,
    pub maximize: bool,
    pub decoupled_weight_decay: bool,
}

impl AdamConfig {
    /// PyTorch's Adam defaults: β = (0.9, 0.999), ε = 1e-8, no weight decay.
    pub fn adam(lr: f64) -> Self {
        AdamConfig {
            lr,
            betas: (0.9, 0.999),
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            maximize: false,
            decoupled_weight_decay: false,
        }
    }
    /// PyTorch's AdamW defaults: as Adam, with decoupled weight decay 0.01.
    pub fn adamw(lr: f64) -> Self {
        AdamConfig {
            weight_decay: 0.01,
            decoupled_weight_decay: true,
            ..AdamConfig::adam(lr)
        }
    }
}

/// `torch.optim.Adam` (and, with decoupled weight decay, `AdamW`).
pub type Adam = FusedOptimizer<AdamRule>;

/// AdamW is Adam with `decoupled_weight_decay`; see [`AdamConfig::adamw`].
pub type AdamW = Adam;

/// Adam's update rule.
pub struct AdamRule;

// Runtime scalars of the Adam program.
const WEIGHT_DECAY: usize = 0;
/// `1 − ηλ`: AdamW's shrink factor.
const SHRINK: usize = 1;
const BETA1: usize = 2;
const ONE_MINUS_BETA1: usize = 3;
const BETA2: usize = 4;
const ONE_MINUS_BETA2: usize = 5;
/// `√(1 − β₂ᵗ)`: the second moment's bias correction at step `t`.
const SQRT_BIAS2: usize = 6;
const EPS: usize = 7;
/// `η / (1 − β₁ᵗ)`: the step size with the first moment's bias correction.
const STEP_SIZE: usize = 8;

impl UpdateRule for AdamRule {
    type Config = AdamConfig;
    const NAME: &'static str = "Adam";

    fn validate(c: &AdamConfig) -> Result<()> {
        let unit = |v: f64| (0.0..1.0).contains(&v);
        check_hyper("Adam", "beta1", c.betas.0, unit, "in [0, 1)")?;
        check_hyper("Adam", "beta2", c.betas.1, unit, "in [0, 1)")?;
        check_non_negative(
            "Adam",
            &[
                ("lr", c.lr),
                ("eps", c.eps),
                ("weight_decay", c.weight_decay),
            ],
        )
    }

    fn buffers(c: &AdamConfig) -> Vec<(&'static str, f64)> {
        let mut b = vec![("exp_avg", 0.0), ("exp_avg_sq", 0.0)];
        if c.amsgrad {
            b.push(("max_exp_avg_sq", 0.0));
        }
        b
    }

    fn program_key(c: &AdamConfig) -> u32 {
        (c.maximize as u32)
            | ((c.weight_decay != 0.0) as u32) << 1
            | (c.decoupled_weight_decay as u32) << 2
            | (c.amsgrad as u32) << 3
    }

    // ANCHOR: adam_program
    /// With `t` the step count:
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `p ← p − η/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + ε)`.
    /// Adam adds weight decay to the gradient (`g ← g + λp`, an L2
    /// penalty); AdamW shrinks the weights directly (`p ← p(1 − ηλ)`), which
    /// does not get rescaled by `v` (Loshchilov & Hutter, 2019).
    ///
    /// The whole update is one fused program (chapter 02): one pass reading
    /// `p, g, m, v` and writing `p, m, v`, instead of a dozen passes and
    /// allocations. The bias corrections change every step, so they are
    /// runtime scalars: the program itself never changes.
    fn program(c: &AdamConfig) -> chapter_02::Program {
        let mut b = Build::new();
        let mut p = b.input(0);
        let mut g = b.input(1);
        let m = b.input(2);
        let v = b.input(3);
        if c.maximize {
            g = b.neg(g);
        }
        if c.weight_decay != 0.0 {
            if c.decoupled_weight_decay {
                let shrink = b.scalar(SHRINK);
                p = b.mul(p, shrink);
            } else {
                let wd = b.scalar(WEIGHT_DECAY);
                let decay = b.mul(wd, p);
                g = b.add(g, decay);
            }
        }
        let (b1, rest1) = (b.scalar(BETA1), b.scalar(ONE_MINUS_BETA1));
        let new_m = b.mix(b1, m, rest1, g);
        let (b2, rest2) = (b.scalar(BETA2), b.scalar(ONE_MINUS_BETA2));
        let g2 = b.sqr(g);
        let new_v = b.mix(b2, v, rest2, g2);
        let v_hat = if c.amsgrad {
            let v_max = b.input(4);
            b.max(v_max, new_v)
        } else {
            new_v
        };
        let root = b.sqrt(v_hat);
        let bias2 = b.scalar(SQRT_BIAS2);
        let corrected = b.div(root, bias2);
        let eps = b.scalar(EPS);
        let denom = b.add(corrected, eps);
        let ratio = b.div(new_m, denom);
        let step_size = b.scalar(STEP_SIZE);
        let step = b.mul(step_size, ratio);
        let new_p = b.sub(p, step);
        b.output(new_p);
        b.output(new_m);
        b.output(new_v);
        if c.amsgrad {
            b.output(v_hat);
        }
        b.finish()
    }
    // ANCHOR_END: adam_program

    fn scalars(c: &AdamConfig, t: u64) -> Vec<f64> {
        let (b1, b2) = c.betas;
        let bias1 = 1.0 - b1.powi(t as i32);
        let bias2 = 1.0 - b2.powi(t as i32);
        vec![
            c.weight_decay,
            1.0 - c.lr * c.weight_decay,
            b1,
            1.0 - b1,
            b2,
            1.0 - b2,
            bias2.sqrt(),
            c.eps,
            c.lr / bias1,
        ]
    }

    fn lr(c: &AdamConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut AdamConfig, lr: f64) {
        c.lr = lr;
    }
    fn momentum(c: &AdamConfig) -> Option<(&'static str, f64)> {
        Some(("beta1", c.betas.0))
    }
    fn set_momentum(c: &mut AdamConfig, momentum: f64) {
        c.betas.0 = momentum;
    }

    /// On the CPU, one loop instead of the interpreted program (see
    /// `adam_cpu.rs`): the same numbers, about twice as fast.
    fn kernels() -> Vec<(DeviceKind, InPlaceKernel<UpdateStep<Self>>)> {
        vec![(DeviceKind::CPU, super::adam_cpu::update)]
    }
}
