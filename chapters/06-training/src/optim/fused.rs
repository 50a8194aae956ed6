//! One machine for every elementwise optimiser: an update rule written as a
//! fused program, run once per parameter per step.
//!
//! SGD, RMSprop, Adagrad, Adam and AdamW differ only in their arithmetic:
//! each reads a parameter `p`, its gradient `g` and a few per-parameter
//! buffers (momentum, moment estimates), and writes new values of `p` and
//! the buffers, element by element. So each is an [`UpdateRule`]: the list
//! of buffers, and the update as a chapter 02 [`Program`] whose
//! hyper-parameters (learning rate, betas, the step's bias corrections)
//! are *runtime scalars*. [`FusedOptimizer`] does everything else once:
//! finding parameters with gradients, creating buffers on the parameter's
//! device, counting steps, running the program, and saving and restoring
//! state.
//!
//! The program depends only on the rule's structural switches (momentum
//! or not, AMSGrad or not, ...), never on a number, so one program serves
//! every step of a run: a device that compiles programs (chapter 07's GPU)
//! compiles each optimiser's update once.

use super::{grad_of, Optimizer, OptimizerState, ParamGroup};
use chapter_02::{BinaryOp, Program, UnaryOp};
use chapter_03::{Error, RawTensor, Result, Tensor};
use std::collections::{BTreeMap, HashMap};

// ANCHOR: update_rule
/// The arithmetic of one optimiser.
pub trait UpdateRule: 'static {
    /// Hyper-parameters of a parameter group.
    type Config: Copy + std::fmt::Debug;

    /// `SGD`, `Adam`, ...: shown in errors.
    const NAME: &'static str;

    /// Refuses hyper-parameters that make no sense (a negative learning
    /// rate, a β outside `[0, 1)`, NaN anywhere).
    fn validate(c: &Self::Config) -> Result<()>;

    /// The per-parameter buffers the update reads and writes, in program
    /// order, with the value each starts at: `[("exp_avg", 0.0), ...]`.
    fn buffers(c: &Self::Config) -> Vec<(&'static str, f64)>;

    /// Which structural switches `c` sets: configs with equal keys share
    /// one program.
    fn program_key(c: &Self::Config) -> u32;

    /// The update as a fused program over inputs `(p, g, buffers...)` and
    /// outputs `(p', buffers'...)`, reading its numbers from scalars.
    fn program(c: &Self::Config) -> Program;

    /// The runtime scalars of the program at step `t` (counted from 1).
    fn scalars(c: &Self::Config, t: u64) -> Vec<f64>;

    fn lr(c: &Self::Config) -> f64;
    fn set_lr(c: &mut Self::Config, lr: f64);

    /// The momentum-like hyper-parameter a one-cycle schedule cycles
    /// (`momentum`, Adam's `beta1`), by the name it is saved under.
    fn momentum(_c: &Self::Config) -> Option<(&'static str, f64)> {
        None
    }
    fn set_momentum(_c: &mut Self::Config, _momentum: f64) {}
}
// ANCHOR_END: update_rule

/// Checks a hyper-parameter: finite and inside `range` (as text).
pub(crate) fn check_hyper(
    op: &'static str,
    name: &str,
    value: f64,
    ok: impl Fn(f64) -> bool,
    range: &str,
) -> Result<()> {
    if value.is_finite() && ok(value) {
        return Ok(());
    }
    Err(Error::invalid(
        op,
        format!("{name} must be {range}, got {value}"),
    ))
}

/// Checks hyper-parameters that must be finite and `>= 0`: learning
/// rates, weight decays, epsilons, momenta.
pub(crate) fn check_non_negative(op: &'static str, values: &[(&str, f64)]) -> Result<()> {
    for &(name, value) in values {
        check_hyper(op, name, value, |v| v >= 0.0, "finite and >= 0")?;
    }
    Ok(())
}

/// A parameter's optimiser state: its step count and buffers by name.
#[derive(Clone, Default)]
struct ParamState {
    step: u64,
    buffers: BTreeMap<&'static str, RawTensor>,
}

// ANCHOR: fused_optimizer
/// An optimiser whose update is `R`'s fused program.
pub struct FusedOptimizer<R: UpdateRule> {
    pub groups: Vec<ParamGroup<R::Config>>,
    state: Vec<Vec<Option<ParamState>>>,
    /// One program per structural configuration, built once.
    programs: HashMap<u32, Program>,
}

impl<R: UpdateRule> FusedOptimizer<R> {
    /// One group of parameters sharing `config`.
    pub fn new(params: Vec<Tensor>, config: R::Config) -> Result<Self> {
        Self::with_groups(vec![ParamGroup { params, config }])
    }

    /// Several groups, each with its own hyper-parameters.
    pub fn with_groups(groups: Vec<ParamGroup<R::Config>>) -> Result<Self> {
        for g in &groups {
            R::validate(&g.config)?;
        }
        let state = groups.iter().map(|g| vec![None; g.params.len()]).collect();
        Ok(FusedOptimizer {
            groups,
            state,
            programs: HashMap::new(),
        })
    }
}

impl<R: UpdateRule> Optimizer for FusedOptimizer<R> {
    /// For every parameter with a gradient: create its buffers if this is
    /// its first step, count the step, and run the rule's program on
    /// `(p, g, buffers...)` with this step's scalars.
    fn step(&mut self) -> Result<()> {
        let FusedOptimizer {
            groups,
            state,
            programs,
        } = self;
        for (group, states) in groups.iter().zip(state.iter_mut()) {
            let c = group.config;
            let program = programs
                .entry(R::program_key(&c))
                .or_insert_with(|| R::program(&c));
            let buffers = R::buffers(&c);
            for (p, st) in group.params.iter().zip(states.iter_mut()) {
                let Some(g) = grad_of(p) else { continue };
                let x = p.data();
                let s = st.get_or_insert_with(ParamState::default);
                for &(name, init) in &buffers {
                    if !s.buffers.contains_key(name) {
                        s.buffers.insert(name, g.full_like(init)?);
                    }
                }
                s.step += 1;
                let mut inputs = vec![&x, &g];
                inputs.extend(buffers.iter().map(|(name, _)| &s.buffers[name]));
                let outs = RawTensor::fused(program, &inputs, &R::scalars(&c, s.step))?;
                if outs.len() != 1 + buffers.len() {
                    return Err(Error::invalid(
                        R::NAME,
                        format!(
                            "the update program has {} outputs, expected {}",
                            outs.len(),
                            1 + buffers.len()
                        ),
                    ));
                }
                let mut outs = outs.into_iter();
                if let Some(new_x) = outs.next() {
                    p.set_data(new_x)?;
                }
                for (&(name, _), t) in buffers.iter().zip(outs) {
                    s.buffers.insert(name, t);
                }
            }
        }
        Ok(())
    }
    // ANCHOR_END: fused_optimizer

    fn zero_grad(&self) {
        for g in &self.groups {
            for p in &g.params {
                p.zero_grad();
            }
        }
    }

    fn learning_rates(&self) -> Vec<f64> {
        self.groups.iter().map(|g| R::lr(&g.config)).collect()
    }

    fn set_learning_rates(&mut self, lrs: &[f64]) {
        for (g, &lr) in self.groups.iter_mut().zip(lrs) {
            R::set_lr(&mut g.config, lr);
        }
    }

    fn set_momentum(&mut self, momentum: f64) {
        for g in &mut self.groups {
            R::set_momentum(&mut g.config, momentum);
        }
    }

    fn state_dict(&self) -> Result<OptimizerState> {
        let mut out = OptimizerState::default();
        for (gi, (group, states)) in self.groups.iter().zip(&self.state).enumerate() {
            out.scalars.insert(format!("{gi}.lr"), R::lr(&group.config));
            if let Some((name, m)) = R::momentum(&group.config) {
                out.scalars.insert(format!("{gi}.{name}"), m);
            }
            for (pi, s) in states.iter().enumerate() {
                let Some(s) = s else { continue };
                out.scalars.insert(format!("{gi}.{pi}.step"), s.step as f64);
                for (name, t) in &s.buffers {
                    out.tensors.insert(format!("{gi}.{pi}.{name}"), t.clone());
                }
            }
        }
        Ok(out)
    }

    fn load_state_dict(&mut self, s: &OptimizerState) -> Result<()> {
        for (gi, (group, states)) in self.groups.iter_mut().zip(&mut self.state).enumerate() {
            R::set_lr(&mut group.config, s.scalar(&format!("{gi}.lr"))?);
            if let Some((name, _)) = R::momentum(&group.config) {
                R::set_momentum(&mut group.config, s.scalar(&format!("{gi}.{name}"))?);
            }
            let names = R::buffers(&group.config);
            for (pi, (p, st)) in group.params.iter().zip(states.iter_mut()).enumerate() {
                let Ok(step) = s.scalar(&format!("{gi}.{pi}.step")) else {
                    *st = None;
                    continue;
                };
                let mut buffers = BTreeMap::new();
                for &(name, _) in &names {
                    if let Some(t) = s.tensor(&format!("{gi}.{pi}.{name}")) {
                        // Buffers live where their parameter lives.
                        buffers.insert(name, t.to_device(&p.device())?);
                    }
                }
                *st = Some(ParamState {
                    step: step as u64,
                    buffers,
                });
            }
        }
        Ok(())
    }
}

// ANCHOR: build
/// Shorthands for writing update programs: each call appends one
/// instruction and returns its register.
pub(crate) struct Build(pub Program);

impl Build {
    pub fn new() -> Self {
        Build(Program::new())
    }
    pub fn input(&mut self, i: usize) -> usize {
        self.0.input(i)
    }
    pub fn scalar(&mut self, i: usize) -> usize {
        self.0.scalar(i)
    }
    pub fn add(&mut self, a: usize, b: usize) -> usize {
        self.0.binary(BinaryOp::Add, a, b)
    }
    pub fn sub(&mut self, a: usize, b: usize) -> usize {
        self.0.binary(BinaryOp::Sub, a, b)
    }
    pub fn mul(&mut self, a: usize, b: usize) -> usize {
        self.0.binary(BinaryOp::Mul, a, b)
    }
    pub fn div(&mut self, a: usize, b: usize) -> usize {
        self.0.binary(BinaryOp::Div, a, b)
    }
    pub fn max(&mut self, a: usize, b: usize) -> usize {
        self.0.binary(BinaryOp::Maximum, a, b)
    }
    pub fn neg(&mut self, a: usize) -> usize {
        self.0.unary(UnaryOp::Neg, a)
    }
    pub fn sqr(&mut self, a: usize) -> usize {
        self.0.unary(UnaryOp::Sqr, a)
    }
    pub fn sqrt(&mut self, a: usize) -> usize {
        self.0.unary(UnaryOp::Sqrt, a)
    }
    /// `a·x + b·y`, the shape of most moving averages.
    pub fn mix(&mut self, a: usize, x: usize, b: usize, y: usize) -> usize {
        let ax = self.mul(a, x);
        let by = self.mul(b, y);
        self.add(ax, by)
    }
    pub fn output(&mut self, r: usize) {
        self.0.output(r)
    }
    pub fn finish(self) -> Program {
        self.0
    }
}
// ANCHOR_END: build
