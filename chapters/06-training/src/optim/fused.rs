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
use chapter_02::dispatch::call_in_place;
use chapter_02::{BinaryOp, DeviceKind, InPlaceKernel, InPlaceOperator, Program, UnaryOp};
use chapter_03::{Error, RawTensor, Result, Tensor};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

// ANCHOR: update_rule
/// The arithmetic of one optimiser.
pub trait UpdateRule: 'static {
    /// Hyper-parameters of a parameter group.
    type Config: Copy + std::fmt::Debug + Send + Sync + 'static;

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

    /// Kernels of the update for particular devices, which replace the
    /// program there (Adam's CPU kernel, chapter 07's CUDA kernel): each
    /// must give exactly the program's results. None by default.
    fn kernels() -> Vec<(DeviceKind, InPlaceKernel<UpdateStep<Self>>)>
    where
        Self: Sized,
    {
        Vec::new()
    }
}
// ANCHOR_END: update_rule

// ANCHOR: update_step
/// One update of one parameter, as an in-place operator of the kernel
/// registry: the state is `(p, buffers...)`, overwritten where it lies, the
/// input is the gradient `g`. Its composite runs the rule's program with
/// [`RawTensor::fused_in_place`]; a device with a kernel for the rule (see
/// [`UpdateRule::kernels`]) runs that instead.
pub struct UpdateStep<R: UpdateRule> {
    pub config: R::Config,
    /// The step count `t`, from 1.
    pub step: u64,
    /// The rule's program with its inputs in state-first order.
    pub program: Arc<Program>,
    /// `R::scalars(config, step)`.
    pub scalars: Vec<f64>,
}

impl<R: UpdateRule> UpdateStep<R> {
    /// Step `step` (from 1) of `config`'s update, with its program built
    /// here (an optimiser builds each program once and fills the fields
    /// itself).
    pub fn new(config: R::Config, step: u64) -> Result<Self> {
        Ok(UpdateStep {
            config,
            step,
            program: Arc::new(in_place::<R>(&config)?),
            scalars: R::scalars(&config, step),
        })
    }
}

impl<R: UpdateRule> InPlaceOperator for UpdateStep<R> {
    fn name(&self) -> &'static str {
        R::NAME
    }

    fn check(&self, state: &[&RawTensor], inputs: &[&RawTensor]) -> Result<()> {
        let buffers = R::buffers(&self.config).len();
        if state.len() != 1 + buffers || inputs.len() != 1 {
            return Err(Error::invalid(
                R::NAME,
                format!(
                    "an update takes the parameter and its {buffers} buffers as state and the \
                     gradient as input; got {} state tensors and {} inputs",
                    state.len(),
                    inputs.len()
                ),
            ));
        }
        let p = state[0];
        for t in state.iter().chain(inputs) {
            if t.shape() != p.shape() || t.dtype() != p.dtype() {
                return Err(Error::ShapeMismatch {
                    op: R::NAME,
                    lhs: p.shape().clone(),
                    rhs: t.shape().clone(),
                    detail: format!(" (dtypes {} and {})", p.dtype(), t.dtype()),
                });
            }
        }
        Ok(())
    }

    fn composite(&self, state: &mut [&mut RawTensor], inputs: &[&RawTensor]) -> Result<()> {
        RawTensor::fused_in_place(&self.program, state, inputs, &self.scalars)
    }

    fn builtin_kernels() -> Vec<(DeviceKind, InPlaceKernel<Self>)> {
        R::kernels()
    }
}
// ANCHOR_END: update_step

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

/// `R`'s program with its inputs in the order an in-place run takes them:
/// the state first, `(p, buffers...)`, then the gradient. Its outputs,
/// `(p', buffers'...)`, overwrite the state where it lies (see
/// [`RawTensor::fused_in_place`]).
fn in_place<R: UpdateRule>(c: &R::Config) -> Result<Program> {
    let program = R::program(c);
    let buffers = R::buffers(c).len();
    if program.outputs.len() != 1 + buffers {
        return Err(Error::invalid(
            R::NAME,
            format!(
                "the update program has {} outputs, expected {}",
                program.outputs.len(),
                1 + buffers
            ),
        ));
    }
    // Input 0 is p, 1 is g, 2.. are the buffers.
    let map: Vec<usize> = (0..2 + buffers)
        .map(|i| match i {
            0 => 0,
            1 => 1 + buffers,
            k => k - 1,
        })
        .collect();
    program.remap_inputs(&map)
}

// ANCHOR: fused_optimizer
/// An optimiser whose update is `R`'s fused program.
pub struct FusedOptimizer<R: UpdateRule> {
    pub groups: Vec<ParamGroup<R::Config>>,
    state: Vec<Vec<Option<ParamState>>>,
    /// One program per structural configuration, built once (in the
    /// state-first order of an in-place run).
    programs: HashMap<u32, Arc<Program>>,
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
    /// its first step, count the step, and run the update, an
    /// [`UpdateStep`], in place on `(p, buffers...)` with the gradient and
    /// this step's scalars (a device's kernel for the rule if it has one,
    /// the rule's program otherwise).
    fn step(&mut self) -> Result<()> {
        let FusedOptimizer {
            groups,
            state,
            programs,
        } = self;
        for (group, states) in groups.iter().zip(state.iter_mut()) {
            let c = group.config;
            let buffers = R::buffers(&c);
            let program = match programs.entry(R::program_key(&c)) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(Arc::new(in_place::<R>(&c)?))
                }
            };
            for (p, st) in group.params.iter().zip(states.iter_mut()) {
                let Some(g) = grad_of(p) else { continue };
                let s = st.get_or_insert_with(ParamState::default);
                for &(name, init) in &buffers {
                    if !s.buffers.contains_key(name) {
                        s.buffers.insert(name, g.full_like(init)?);
                    }
                }
                s.step += 1;
                let update = UpdateStep::<R> {
                    config: c,
                    step: s.step,
                    program: program.clone(),
                    scalars: R::scalars(&c, s.step),
                };
                // The buffers leave the map for the update (so that each is
                // borrowed mutably once) and come back whatever happens.
                let mut bufs: Vec<RawTensor> = buffers
                    .iter()
                    .filter_map(|(name, _)| s.buffers.remove(name))
                    .collect();
                let result = p.update_data(|x| {
                    let mut state: Vec<&mut RawTensor> =
                        std::iter::once(x).chain(bufs.iter_mut()).collect();
                    call_in_place(&update, &mut state, &[&g])
                });
                for (&(name, _), t) in buffers.iter().zip(bufs) {
                    s.buffers.insert(name, t);
                }
                result.map_err(|e| match e {
                    Error::Invalid { msg, .. } => Error::invalid(R::NAME, msg),
                    other => other,
                })?;
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
