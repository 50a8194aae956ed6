//! Adam and AdamW.

use super::{grad_of, impl_lr_access, Optimizer, OptimizerState, ParamGroup};
use chapter_02::{BinaryOp, Program, UnaryOp};
use chapter_03::{RawTensor, Result, Tensor};

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

// ANCHOR: adam_program
/// The Adam update at step `t` as a fused program over
/// `(p, g, m, v[, v_max])`, producing `(p', m', v'[, v_max'])`.
fn adam_program(c: &AdamConfig, t: u64) -> Program {
    let (b1, b2) = c.betas;
    let bias1 = 1.0 - b1.powi(t as i32);
    let bias2 = 1.0 - b2.powi(t as i32);
    let affine = |mul, add| UnaryOp::Affine { mul, add };
    let mut pr = Program::new();
    let mut x = pr.input(0);
    let mut g = pr.input(1);
    let m = pr.input(2);
    let v = pr.input(3);
    if c.maximize {
        g = pr.unary(UnaryOp::Neg, g);
    }
    if c.weight_decay != 0.0 {
        if c.decoupled_weight_decay {
            x = pr.unary(affine(1.0 - c.lr * c.weight_decay, 0.0), x);
        } else {
            let decay = pr.unary(affine(c.weight_decay, 0.0), x);
            g = pr.binary(BinaryOp::Add, g, decay);
        }
    }
    let m_old = pr.unary(affine(b1, 0.0), m);
    let m_new_part = pr.unary(affine(1.0 - b1, 0.0), g);
    let m_new = pr.binary(BinaryOp::Add, m_old, m_new_part);
    let v_old = pr.unary(affine(b2, 0.0), v);
    let g2 = pr.unary(UnaryOp::Sqr, g);
    let v_new_part = pr.unary(affine(1.0 - b2, 0.0), g2);
    let v_new = pr.binary(BinaryOp::Add, v_old, v_new_part);
    let v_hat = if c.amsgrad {
        let vm = pr.input(4);
        pr.binary(BinaryOp::Maximum, vm, v_new)
    } else {
        v_new
    };
    let root = pr.unary(UnaryOp::Sqrt, v_hat);
    let denom = pr.unary(affine(1.0 / bias2.sqrt(), c.eps), root);
    let ratio = pr.binary(BinaryOp::Div, m_new, denom);
    let update = pr.unary(affine(c.lr / bias1, 0.0), ratio);
    let x_new = pr.binary(BinaryOp::Sub, x, update);
    pr.output(x_new);
    pr.output(m_new);
    pr.output(v_new);
    if c.amsgrad {
        pr.output(v_hat);
    }
    pr
}
// ANCHOR_END: adam_program

#[derive(Clone)]
struct Moments {
    step: u64,
    m: RawTensor,
    v: RawTensor,
    v_max: Option<RawTensor>,
}

/// `torch.optim.Adam` (and, with decoupled weight decay, `AdamW`).
pub struct Adam {
    pub groups: Vec<ParamGroup<AdamConfig>>,
    state: Vec<Vec<Option<Moments>>>,
}

/// AdamW is Adam with `decoupled_weight_decay`; see [`AdamConfig::adamw`].
pub type AdamW = Adam;

impl Adam {
    pub fn new(params: Vec<Tensor>, config: AdamConfig) -> Result<Self> {
        Ok(Adam::with_groups(vec![ParamGroup { params, config }]))
    }
    pub fn with_groups(groups: Vec<ParamGroup<AdamConfig>>) -> Self {
        let state = groups.iter().map(|g| vec![None; g.params.len()]).collect();
        Adam { groups, state }
    }
}

impl Optimizer for Adam {
    // ANCHOR: adam_step
    /// With `t` the step count:
    /// `m ← β₁m + (1−β₁)g`, `v ← β₂v + (1−β₂)g²`,
    /// `p ← p − η · (m / (1−β₁ᵗ)) / (√v / √(1−β₂ᵗ) + ε)`.
    /// Adam adds weight decay to the gradient (`g ← g + λp`, an L2
    /// penalty); AdamW shrinks the weights directly (`p ← p(1 − ηλ)`), which
    /// does not get rescaled by `v` (Loshchilov & Hutter, 2019).
    ///
    /// The whole update is one fused elementwise program (chapter 02): one
    /// pass reading `p, g, m, v` and writing `p, m, v`, instead of a dozen
    /// passes and allocations.
    fn step(&mut self) -> Result<()> {
        for (group, states) in self.groups.iter().zip(&mut self.state) {
            let c = group.config;
            for (p, st) in group.params.iter().zip(states.iter_mut()) {
                let Some(g) = grad_of(p) else { continue };
                let x = p.data();
                let s = st.get_or_insert_with(|| Moments {
                    step: 0,
                    m: g.zeros_like().expect("zeros"),
                    v: g.zeros_like().expect("zeros"),
                    v_max: None,
                });
                s.step += 1;
                if c.amsgrad && s.v_max.is_none() {
                    s.v_max = Some(g.zeros_like()?);
                }
                let program = adam_program(&c, s.step);
                let mut inputs = vec![&x, &g, &s.m, &s.v];
                if let Some(vm) = &s.v_max {
                    inputs.push(vm);
                }
                let mut out = RawTensor::fused(&program, &inputs)?.into_iter();
                let (new_x, m, v) = (
                    out.next().unwrap(),
                    out.next().unwrap(),
                    out.next().unwrap(),
                );
                s.m = m;
                s.v = v;
                if c.amsgrad {
                    s.v_max = out.next();
                }
                p.set_data(new_x)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: adam_step

    impl_lr_access!();

    fn set_momentum(&mut self, momentum: f64) {
        for g in &mut self.groups {
            g.config.betas.0 = momentum;
        }
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let mut out = OptimizerState::default();
        for (gi, (group, states)) in self.groups.iter().zip(&self.state).enumerate() {
            out.scalars.insert(format!("{gi}.lr"), group.config.lr);
            out.scalars
                .insert(format!("{gi}.beta1"), group.config.betas.0);
            for (pi, s) in states.iter().enumerate() {
                if let Some(s) = s {
                    out.scalars.insert(format!("{gi}.{pi}.step"), s.step as f64);
                    out.tensors
                        .insert(format!("{gi}.{pi}.exp_avg"), s.m.clone());
                    out.tensors
                        .insert(format!("{gi}.{pi}.exp_avg_sq"), s.v.clone());
                    if let Some(vm) = &s.v_max {
                        out.tensors
                            .insert(format!("{gi}.{pi}.max_exp_avg_sq"), vm.clone());
                    }
                }
            }
        }
        Ok(out)
    }

    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()> {
        for (gi, (group, states)) in self.groups.iter_mut().zip(&mut self.state).enumerate() {
            group.config.lr = s.scalar(&format!("{gi}.lr"))?;
            group.config.betas.0 = s.scalar(&format!("{gi}.beta1"))?;
            for (pi, st) in states.iter_mut().enumerate() {
                *st = match (
                    s.tensor(&format!("{gi}.{pi}.exp_avg")),
                    s.tensor(&format!("{gi}.{pi}.exp_avg_sq")),
                ) {
                    (Some(m), Some(v)) => Some(Moments {
                        step: s.scalar(&format!("{gi}.{pi}.step"))? as u64,
                        m,
                        v,
                        v_max: s.tensor(&format!("{gi}.{pi}.max_exp_avg_sq")),
                    }),
                    _ => None,
                };
            }
        }
        Ok(())
    }
}
