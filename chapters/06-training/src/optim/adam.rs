//! Adam and AdamW.

use super::{grad_of, impl_lr_access, Optimizer, OptimizerState, ParamGroup};
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
        AdamConfig { lr, betas: (0.9, 0.999), eps: 1e-8, weight_decay: 0.0, amsgrad: false, maximize: false, decoupled_weight_decay: false }
    }
    /// PyTorch's AdamW defaults: as Adam, with decoupled weight decay 0.01.
    pub fn adamw(lr: f64) -> Self {
        AdamConfig { weight_decay: 0.01, decoupled_weight_decay: true, ..AdamConfig::adam(lr) }
    }
}

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
    fn step(&mut self) -> Result<()> {
        for (group, states) in self.groups.iter().zip(&mut self.state) {
            let c = group.config;
            let (b1, b2) = c.betas;
            for (p, st) in group.params.iter().zip(states.iter_mut()) {
                let Some(mut g) = grad_of(p) else { continue };
                let mut x = p.data();
                if c.maximize {
                    g = g.neg()?;
                }
                if c.weight_decay != 0.0 {
                    if c.decoupled_weight_decay {
                        x = x.affine(1.0 - c.lr * c.weight_decay, 0.0)?;
                    } else {
                        g = g.add(&x.affine(c.weight_decay, 0.0)?)?;
                    }
                }
                let s = st.get_or_insert_with(|| Moments {
                    step: 0,
                    m: g.zeros_like().expect("zeros"),
                    v: g.zeros_like().expect("zeros"),
                    v_max: None,
                });
                s.step += 1;
                s.m = s.m.affine(b1, 0.0)?.add(&g.affine(1.0 - b1, 0.0)?)?;
                s.v = s.v.affine(b2, 0.0)?.add(&g.sqr()?.affine(1.0 - b2, 0.0)?)?;
                let t = s.step as i32;
                let bias1 = 1.0 - b1.powi(t);
                let bias2 = 1.0 - b2.powi(t);
                let v_hat = if c.amsgrad {
                    let vm = match &s.v_max {
                        Some(vm) => vm.maximum(&s.v)?,
                        None => s.v.clone(),
                    };
                    s.v_max = Some(vm.clone());
                    vm
                } else {
                    s.v.clone()
                };
                let denom = v_hat.sqrt()?.affine(1.0 / bias2.sqrt(), c.eps)?;
                let update = s.m.div(&denom)?.affine(c.lr / bias1, 0.0)?;
                p.set_data(x.sub(&update)?)?;
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
            out.scalars.insert(format!("{gi}.beta1"), group.config.betas.0);
            for (pi, s) in states.iter().enumerate() {
                if let Some(s) = s {
                    out.scalars.insert(format!("{gi}.{pi}.step"), s.step as f64);
                    out.tensors.insert(format!("{gi}.{pi}.exp_avg"), s.m.clone());
                    out.tensors.insert(format!("{gi}.{pi}.exp_avg_sq"), s.v.clone());
                    if let Some(vm) = &s.v_max {
                        out.tensors.insert(format!("{gi}.{pi}.max_exp_avg_sq"), vm.clone());
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
                *st = match (s.tensor(&format!("{gi}.{pi}.exp_avg")), s.tensor(&format!("{gi}.{pi}.exp_avg_sq"))) {
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
