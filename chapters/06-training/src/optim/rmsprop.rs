//! RMSprop (Hinton's lecture notes, 2012), as PyTorch defines it.

use super::fused::{check_non_negative, Build, FusedOptimizer, UpdateRule};
use chapter_03::Result;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RmsPropConfig {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
    pub weight_decay: f64,
    pub momentum: f64,
    pub centered: bool,
    pub maximize: bool,
}

impl RmsPropConfig {
    /// PyTorch's defaults: α = 0.99, ε = 1e-8.
    pub fn new(lr: f64) -> Self {
        RmsPropConfig {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
            maximize: false,
        }
    }
}

/// `torch.optim.RMSprop`.
pub type RmsProp = FusedOptimizer<RmsPropRule>;

/// RMSprop's update rule.
pub struct RmsPropRule;

const LR: usize = 0;
const ALPHA: usize = 1;
const ONE_MINUS_ALPHA: usize = 2;
const EPS: usize = 3;
const WEIGHT_DECAY: usize = 4;
const MOMENTUM: usize = 5;

impl UpdateRule for RmsPropRule {
    type Config = RmsPropConfig;
    const NAME: &'static str = "RMSprop";

    fn validate(c: &RmsPropConfig) -> Result<()> {
        check_non_negative(
            "RMSprop",
            &[
                ("lr", c.lr),
                ("alpha", c.alpha),
                ("eps", c.eps),
                ("weight_decay", c.weight_decay),
                ("momentum", c.momentum),
            ],
        )
    }

    fn buffers(c: &RmsPropConfig) -> Vec<(&'static str, f64)> {
        let mut b = vec![("square_avg", 0.0)];
        if c.centered {
            b.push(("grad_avg", 0.0));
        }
        if c.momentum > 0.0 {
            b.push(("momentum_buffer", 0.0));
        }
        b
    }

    fn program_key(c: &RmsPropConfig) -> u32 {
        (c.maximize as u32)
            | ((c.weight_decay != 0.0) as u32) << 1
            | ((c.momentum > 0.0) as u32) << 2
            | (c.centered as u32) << 3
    }

    // ANCHOR: rmsprop_program
    /// `s ← αs + (1−α)g²`; centred: `ḡ ← αḡ + (1−α)g` and use `s − ḡ²`;
    /// `d = √s + ε`; then `p ← p − ηg/d`, or with momentum
    /// `b ← μb + g/d`, `p ← p − ηb`. Every buffer starts at zero, which
    /// makes the first step come out as PyTorch's.
    fn program(c: &RmsPropConfig) -> chapter_02::Program {
        let mut b = Build::new();
        let p = b.input(0);
        let mut g = b.input(1);
        let mut next_input = 2;
        let mut input = |b: &mut Build| {
            next_input += 1;
            b.input(next_input - 1)
        };
        let square_avg = input(&mut b);
        let grad_avg = c.centered.then(|| input(&mut b));
        let momentum_buffer = (c.momentum > 0.0).then(|| input(&mut b));
        if c.maximize {
            g = b.neg(g);
        }
        if c.weight_decay != 0.0 {
            let wd = b.scalar(WEIGHT_DECAY);
            let decay = b.mul(wd, p);
            g = b.add(g, decay);
        }
        let (alpha, rest) = (b.scalar(ALPHA), b.scalar(ONE_MINUS_ALPHA));
        let g2 = b.sqr(g);
        let new_square = b.mix(alpha, square_avg, rest, g2);
        let mut outputs = vec![new_square];
        let avg = match grad_avg {
            Some(ga) => {
                let new_ga = b.mix(alpha, ga, rest, g);
                outputs.push(new_ga);
                let ga2 = b.sqr(new_ga);
                b.sub(new_square, ga2)
            }
            None => new_square,
        };
        let root = b.sqrt(avg);
        let eps = b.scalar(EPS);
        let denom = b.add(root, eps);
        let ratio = b.div(g, denom);
        let direction = match momentum_buffer {
            Some(buf) => {
                let mu = b.scalar(MOMENTUM);
                let kept = b.mul(mu, buf);
                let new_buf = b.add(kept, ratio);
                outputs.push(new_buf);
                new_buf
            }
            None => ratio,
        };
        let lr = b.scalar(LR);
        let step = b.mul(lr, direction);
        let new_p = b.sub(p, step);
        b.output(new_p);
        for o in outputs {
            b.output(o);
        }
        b.finish()
    }
    // ANCHOR_END: rmsprop_program

    fn scalars(c: &RmsPropConfig, _t: u64) -> Vec<f64> {
        vec![
            c.lr,
            c.alpha,
            1.0 - c.alpha,
            c.eps,
            c.weight_decay,
            c.momentum,
        ]
    }

    fn lr(c: &RmsPropConfig) -> f64 {
        c.lr
    }
    fn set_lr(c: &mut RmsPropConfig, lr: f64) {
        c.lr = lr;
    }
    fn momentum(c: &RmsPropConfig) -> Option<(&'static str, f64)> {
        Some(("momentum", c.momentum))
    }
    fn set_momentum(c: &mut RmsPropConfig, momentum: f64) {
        c.momentum = momentum;
    }
}
