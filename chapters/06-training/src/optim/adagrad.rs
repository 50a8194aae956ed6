//! Adagrad (Duchi et al., 2011).

use super::fused::{check_non_negative, Build, FusedOptimizer, UpdateRule};
use chapter_03::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdagradConfig {
    pub lr: f64,
    pub lr_decay: f64,
    pub weight_decay: f64,
    pub initial_accumulator_value: f64,
    pub eps: f64,
    pub maximize: bool,
}

impl AdagradConfig {
    /// PyTorch's defaults: ε = 1e-10, no decay.
    pub fn new(lr: f64) -> Self {
        AdagradConfig {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            maximize: false,
        }
    }
}

/// `torch.optim.Adagrad`.
pub type Adagrad = FusedOptimizer<AdagradRule>;

/// Adagrad's update rule.
pub struct AdagradRule;

const LR_T: usize = 0;
const WEIGHT_DECAY: usize = 1;
const EPS: usize = 2;

impl UpdateRule for AdagradRule {
    type Config = AdagradConfig;
    const NAME: &'static str = "Adagrad";

    fn validate(c: &AdagradConfig) -> Result<()> {
        check_non_negative(
            "Adagrad",
            &[
                ("lr", c.lr),
                ("lr_decay", c.lr_decay),
                ("weight_decay", c.weight_decay),
                ("initial_accumulator_value", c.initial_accumulator_value),
                ("eps", c.eps),
            ],
        )
    }

    fn buffers(c: &AdagradConfig) -> Vec<(&'static str, f64)> {
        vec![("sum", c.initial_accumulator_value)]
    }

    fn program_key(c: &AdagradConfig) -> u32 {
        (c.maximize as u32) | ((c.weight_decay != 0.0) as u32) << 1
    }

    // ANCHOR: adagrad_program
    /// `Σ ← Σ + g²`, `p ← p − η_t · g / (√Σ + ε)` with
    /// `η_t = η / (1 + (t−1)·decay)` (a runtime scalar): each coordinate's
    /// step shrinks with the total squared gradient it has seen.
    fn program(c: &AdagradConfig) -> chapter_02::Program {
        let mut b = Build::new();
        let p = b.input(0);
        let mut g = b.input(1);
        let sum = b.input(2);
        if c.maximize {
            g = b.neg(g);
        }
        if c.weight_decay != 0.0 {
            let wd = b.scalar(WEIGHT_DECAY);
            let decay = b.mul(wd, p);
            g = b.add(g, decay);
        }
        let g2 = b.sqr(g);
        let new_sum = b.add(sum, g2);
        let root = b.sqrt(new_sum);
        let eps = b.scalar(EPS);
        let denom = b.add(root, eps);
        let ratio = b.div(g, denom);
        let lr = b.scalar(LR_T);
        let step = b.mul(lr, ratio);
        let new_p = b.sub(p, step);
        b.output(new_p);
        b.output(new_sum);
        b.finish()
    }
    // ANCHOR_END: adagrad_program

    fn scalars(c: &AdagradConfig, t: u64) -> Vec<f64> {
        let lr_t = c.lr / (1.0 + (t - 1) as f64 * c.lr_decay);
        vec![lr_t, c.weight_decay, c.eps]
    }

    fn lr(c: &AdagradConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut AdagradConfig, lr: f64) {
        c.lr = lr;
    }
}
