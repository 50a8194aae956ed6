//! Stochastic gradient descent with momentum, dampening, Nesterov and
//! weight decay.

use super::{grad_of, impl_lr_access, Optimizer, OptimizerState, ParamGroup};
use chapter_03::{Error, RawTensor, Result, Tensor};

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
pub struct Sgd {
    pub groups: Vec<ParamGroup<SgdConfig>>,
    /// Momentum buffer per group and parameter.
    buffers: Vec<Vec<Option<RawTensor>>>,
}

impl Sgd {
    pub fn new(params: Vec<Tensor>, config: SgdConfig) -> Result<Self> {
        Sgd::with_groups(vec![ParamGroup { params, config }])
    }
    pub fn with_groups(groups: Vec<ParamGroup<SgdConfig>>) -> Result<Self> {
        for g in &groups {
            if g.config.nesterov && (g.config.momentum <= 0.0 || g.config.dampening != 0.0) {
                return Err(Error::invalid(
                    "SGD",
                    "Nesterov momentum requires a momentum and zero dampening",
                ));
            }
        }
        let buffers = groups.iter().map(|g| vec![None; g.params.len()]).collect();
        Ok(Sgd { groups, buffers })
    }
}

impl Optimizer for Sgd {
    // ANCHOR: sgd_step
    /// `g ← ∇ + λp` (`g ← −∇ + λp` when maximising); with momentum
    /// `b ← μb + (1−τ)g` (`b ← g` at first), then `g ← g + μb` (Nesterov)
    /// or `g ← b`; finally `p ← p − ηg`.
    fn step(&mut self) -> Result<()> {
        for (group, buffers) in self.groups.iter().zip(&mut self.buffers) {
            let c = group.config;
            for (p, buf) in group.params.iter().zip(buffers.iter_mut()) {
                let Some(mut g) = grad_of(p) else { continue };
                let x = p.data();
                // As in PyTorch, `maximize` flips the gradient before weight
                // decay is added, so decay still pulls the weights to zero.
                if c.maximize {
                    g = g.neg()?;
                }
                if c.weight_decay != 0.0 {
                    g = g.add(&x.affine(c.weight_decay, 0.0)?)?;
                }
                if c.momentum != 0.0 {
                    let b = match buf.take() {
                        None => g.clone(),
                        Some(b) => b
                            .affine(c.momentum, 0.0)?
                            .add(&g.affine(1.0 - c.dampening, 0.0)?)?,
                    };
                    g = if c.nesterov {
                        g.add(&b.affine(c.momentum, 0.0)?)?
                    } else {
                        b.clone()
                    };
                    *buf = Some(b);
                }
                p.set_data(x.sub(&g.affine(c.lr, 0.0)?)?)?;
            }
        }
        Ok(())
    }
    // ANCHOR_END: sgd_step

    impl_lr_access!();

    fn set_momentum(&mut self, momentum: f64) {
        for g in &mut self.groups {
            g.config.momentum = momentum;
        }
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let mut s = OptimizerState::default();
        for (gi, (group, buffers)) in self.groups.iter().zip(&self.buffers).enumerate() {
            s.scalars.insert(format!("{gi}.lr"), group.config.lr);
            s.scalars
                .insert(format!("{gi}.momentum"), group.config.momentum);
            for (pi, b) in buffers.iter().enumerate() {
                if let Some(b) = b {
                    s.tensors
                        .insert(format!("{gi}.{pi}.momentum_buffer"), b.clone());
                }
            }
        }
        Ok(s)
    }

    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()> {
        for (gi, (group, buffers)) in self.groups.iter_mut().zip(&mut self.buffers).enumerate() {
            group.config.lr = s.scalar(&format!("{gi}.lr"))?;
            group.config.momentum = s.scalar(&format!("{gi}.momentum"))?;
            for (pi, b) in buffers.iter_mut().enumerate() {
                *b = s.tensor(&format!("{gi}.{pi}.momentum_buffer"));
            }
        }
        Ok(())
    }
}
