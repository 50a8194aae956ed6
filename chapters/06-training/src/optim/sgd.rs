//! Stochastic gradient descent with momentum, dampening, Nesterov and
//! weight decay.

use super::fused::{check_hyper, check_non_negative, Build, FusedOptimizer, UpdateRule};
use chapter_03::{Error, Result};

/// SGD hyper-parameters (PyTorch's defaults: everything 0 but `lr`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
    pub dampening: f64,
    pub weight_decay: f64,
    pub nesterov: bool,
    pub maximize: bool,
}

impl SgdConfig {
    pub fn new(lr: f64) -> Self {
        SgdConfig {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            weight_decay: 0.0,
            nesterov: false,
            maximize: false,
        }
    }
}

/// `torch.optim.SGD`.
pub type Sgd = FusedOptimizer<SgdRule>;

/// SGD's update rule (see [`SgdRule::program`]).
pub struct SgdRule;

// Runtime scalars of the SGD program.
const LR: usize = 0;
const WEIGHT_DECAY: usize = 1;
const MOMENTUM: usize = 2;
/// What the old momentum buffer is multiplied by: `μ`, or 0 at step 1.
const KEEP: usize = 3;
/// What the gradient enters the buffer with: `1 − τ`, or 1 at step 1.
const FRESH: usize = 4;

impl UpdateRule for SgdRule {
    type Config = SgdConfig;
    const NAME: &'static str = "SGD";

    fn validate(c: &SgdConfig) -> Result<()> {
        check_non_negative(
            "SGD",
            &[
                ("lr", c.lr),
                ("momentum", c.momentum),
                ("weight_decay", c.weight_decay),
            ],
        )?;
        check_hyper("SGD", "dampening", c.dampening, |_| true, "finite")?;
        if c.nesterov && (c.momentum <= 0.0 || c.dampening != 0.0) {
            return Err(Error::invalid(
                "SGD",
                "Nesterov momentum requires a momentum and zero dampening",
            ));
        }
        Ok(())
    }

    fn buffers(c: &SgdConfig) -> Vec<(&'static str, f64)> {
        match c.momentum != 0.0 {
            true => vec![("momentum_buffer", 0.0)],
            false => vec![],
        }
    }

    fn program_key(c: &SgdConfig) -> u32 {
        (c.maximize as u32)
            | ((c.weight_decay != 0.0) as u32) << 1
            | ((c.momentum != 0.0) as u32) << 2
            | (c.nesterov as u32) << 3
    }

    // ANCHOR: sgd_program
    /// `g ← ∇ + λp` (`g ← −∇ + λp` when maximising); with momentum
    /// `b ← μb + (1−τ)g` (`b ← g` at the first step: the scalars `KEEP`
    /// and `FRESH` are 0 and 1 then), then `g ← g + μb` (Nesterov) or
    /// `g ← b`; finally `p ← p − ηg`.
    fn program(c: &SgdConfig) -> chapter_02::Program {
        let mut b = Build::new();
        let p = b.input(0);
        let mut g = b.input(1);
        // As in PyTorch, `maximize` flips the gradient before weight decay
        // is added, so decay still pulls the weights to zero.
        if c.maximize {
            g = b.neg(g);
        }
        if c.weight_decay != 0.0 {
            let wd = b.scalar(WEIGHT_DECAY);
            let decay = b.mul(wd, p);
            g = b.add(g, decay);
        }
        let mut buffer = None;
        if c.momentum != 0.0 {
            let old = b.input(2);
            let (keep, fresh) = (b.scalar(KEEP), b.scalar(FRESH));
            let new = b.mix(keep, old, fresh, g);
            g = if c.nesterov {
                let mu = b.scalar(MOMENTUM);
                let look_ahead = b.mul(mu, new);
                b.add(g, look_ahead)
            } else {
                new
            };
            buffer = Some(new);
        }
        let lr = b.scalar(LR);
        let step = b.mul(lr, g);
        let new_p = b.sub(p, step);
        b.output(new_p);
        if let Some(new) = buffer {
            b.output(new);
        }
        b.finish()
    }
    // ANCHOR_END: sgd_program

    fn scalars(c: &SgdConfig, t: u64) -> Vec<f64> {
        let (keep, fresh) = if t == 1 {
            (0.0, 1.0)
        } else {
            (c.momentum, 1.0 - c.dampening)
        };
        vec![c.lr, c.weight_decay, c.momentum, keep, fresh]
    }

    fn lr(c: &SgdConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut SgdConfig, lr: f64) {
        c.lr = lr;
    }
    fn momentum(c: &SgdConfig) -> Option<(&'static str, f64)> {
        Some(("momentum", c.momentum))
    }
    fn set_momentum(c: &mut SgdConfig, momentum: f64) {
        c.momentum = momentum;
    }
}
