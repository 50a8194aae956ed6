//! RMSprop (Hinton's lecture notes, 2012), as PyTorch defines it.

use super::{grad_of, impl_lr_access, Optimizer, OptimizerState, ParamGroup};
use chapter_03::{RawTensor, Result, Tensor};

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

#[derive(Clone)]
struct RmsState {
    square_avg: RawTensor,
    grad_avg: Option<RawTensor>,
    momentum_buffer: Option<RawTensor>,
}

/// `torch.optim.RMSprop`.
pub struct RmsProp {
    pub groups: Vec<ParamGroup<RmsPropConfig>>,
    state: Vec<Vec<Option<RmsState>>>,
}

impl RmsProp {
    pub fn new(params: Vec<Tensor>, config: RmsPropConfig) -> Self {
        RmsProp::with_groups(vec![ParamGroup { params, config }])
    }
    pub fn with_groups(groups: Vec<ParamGroup<RmsPropConfig>>) -> Self {
        let state = groups.iter().map(|g| vec![None; g.params.len()]).collect();
        RmsProp { groups, state }
    }
}

impl Optimizer for RmsProp {
    // ANCHOR: rmsprop_step
    /// `s ← αs + (1−α)g²`; centred: `ḡ ← αḡ + (1−α)g` and use `s − ḡ²`;
    /// `d = √s + ε`; then `p ← p − ηg/d`, or with momentum
    /// `b ← μb + g/d`, `p ← p − ηb`.
    fn step(&mut self) -> Result<()> {
        for (group, states) in self.groups.iter().zip(&mut self.state) {
            let c = group.config;
            for (p, st) in group.params.iter().zip(states.iter_mut()) {
                let Some(mut g) = grad_of(p) else { continue };
                let x = p.data();
                if c.maximize {
                    g = g.neg()?;
                }
                if c.weight_decay != 0.0 {
                    g = g.add(&x.affine(c.weight_decay, 0.0)?)?;
                }
                let s = st.get_or_insert_with(|| RmsState {
                    square_avg: g.zeros_like().expect("zeros"),
                    grad_avg: None,
                    momentum_buffer: None,
                });
                s.square_avg = s
                    .square_avg
                    .affine(c.alpha, 0.0)?
                    .add(&g.sqr()?.affine(1.0 - c.alpha, 0.0)?)?;
                let avg = if c.centered {
                    let ga = match &s.grad_avg {
                        Some(ga) => ga
                            .affine(c.alpha, 0.0)?
                            .add(&g.affine(1.0 - c.alpha, 0.0)?)?,
                        None => g.affine(1.0 - c.alpha, 0.0)?,
                    };
                    let centered = s.square_avg.sub(&ga.sqr()?)?;
                    s.grad_avg = Some(ga);
                    centered
                } else {
                    s.square_avg.clone()
                };
                let denom = avg.sqrt()?.add_scalar(c.eps)?;
                let update = if c.momentum > 0.0 {
                    let step = g.div(&denom)?;
                    let b = match &s.momentum_buffer {
                        Some(b) => b.affine(c.momentum, 0.0)?.add(&step)?,
                        None => step,
                    };
                    s.momentum_buffer = Some(b.clone());
                    b
                } else {
                    g.div(&denom)?
                };
                p.set_data(x.sub(&update.affine(c.lr, 0.0)?)?)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: rmsprop_step

    impl_lr_access!();

    fn set_momentum(&mut self, momentum: f64) {
        for g in &mut self.groups {
            g.config.momentum = momentum;
        }
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let mut out = OptimizerState::default();
        for (gi, (group, states)) in self.groups.iter().zip(&self.state).enumerate() {
            out.scalars.insert(format!("{gi}.lr"), group.config.lr);
            for (pi, s) in states.iter().enumerate() {
                let Some(s) = s else { continue };
                out.tensors
                    .insert(format!("{gi}.{pi}.square_avg"), s.square_avg.clone());
                if let Some(t) = &s.grad_avg {
                    out.tensors.insert(format!("{gi}.{pi}.grad_avg"), t.clone());
                }
                if let Some(t) = &s.momentum_buffer {
                    out.tensors
                        .insert(format!("{gi}.{pi}.momentum_buffer"), t.clone());
                }
            }
        }
        Ok(out)
    }

    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()> {
        for (gi, (group, states)) in self.groups.iter_mut().zip(&mut self.state).enumerate() {
            group.config.lr = s.scalar(&format!("{gi}.lr"))?;
            for (pi, st) in states.iter_mut().enumerate() {
                *st = s
                    .tensor(&format!("{gi}.{pi}.square_avg"))
                    .map(|square_avg| RmsState {
                        square_avg,
                        grad_avg: s.tensor(&format!("{gi}.{pi}.grad_avg")),
                        momentum_buffer: s.tensor(&format!("{gi}.{pi}.momentum_buffer")),
                    });
            }
        }
        Ok(())
    }
}
