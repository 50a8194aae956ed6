//! Adagrad (Duchi et al., 2011).

use super::{grad_of, impl_lr_access, Optimizer, OptimizerState, ParamGroup};
use chapter_03::{RawTensor, Result, Tensor};

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
pub struct Adagrad {
    pub groups: Vec<ParamGroup<AdagradConfig>>,
    state: Vec<Vec<Option<(u64, RawTensor)>>>,
}

impl Adagrad {
    pub fn new(params: Vec<Tensor>, config: AdagradConfig) -> Self {
        Adagrad::with_groups(vec![ParamGroup { params, config }])
    }
    pub fn with_groups(groups: Vec<ParamGroup<AdagradConfig>>) -> Self {
        let state = groups.iter().map(|g| vec![None; g.params.len()]).collect();
        Adagrad { groups, state }
    }
}

impl Optimizer for Adagrad {
    // ANCHOR: adagrad_step
    /// `Σ ← Σ + g²`, `p ← p − η_t · g / (√Σ + ε)` with
    /// `η_t = η / (1 + (t−1)·decay)`: each coordinate's step shrinks with
    /// the total squared gradient it has seen.
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
                let (step, sum) = st.get_or_insert_with(|| {
                    (0, g.full_like(c.initial_accumulator_value).expect("full"))
                });
                *step += 1;
                let clr = c.lr / (1.0 + (*step - 1) as f64 * c.lr_decay);
                *sum = sum.add(&g.sqr()?)?;
                let denom = sum.sqrt()?.add_scalar(c.eps)?;
                p.set_data(x.sub(&g.div(&denom)?.affine(clr, 0.0)?)?)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: adagrad_step

    impl_lr_access!();

    fn state_dict(&self) -> Result<OptimizerState> {
        let mut out = OptimizerState::default();
        for (gi, (group, states)) in self.groups.iter().zip(&self.state).enumerate() {
            out.scalars.insert(format!("{gi}.lr"), group.config.lr);
            for (pi, s) in states.iter().enumerate() {
                if let Some((step, sum)) = s {
                    out.scalars.insert(format!("{gi}.{pi}.step"), *step as f64);
                    out.tensors.insert(format!("{gi}.{pi}.sum"), sum.clone());
                }
            }
        }
        Ok(out)
    }

    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()> {
        for (gi, (group, states)) in self.groups.iter_mut().zip(&mut self.state).enumerate() {
            group.config.lr = s.scalar(&format!("{gi}.lr"))?;
            for (pi, st) in states.iter_mut().enumerate() {
                *st = match s.tensor(&format!("{gi}.{pi}.sum")) {
                    Some(sum) => Some((s.scalar(&format!("{gi}.{pi}.step"))? as u64, sum)),
                    None => None,
                };
            }
        }
        Ok(())
    }
}
