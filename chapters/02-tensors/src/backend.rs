//! The `Backend` trait: the few primitives a device must provide.
//!
//! Everything a tensor can do is built on top of the handful of methods
//! below. A new device (CUDA in chapter 07) implements this trait and its own
//! storage type, and every tensor operation, layer and model of the later
//! chapters runs on it unchanged.
//!
//! The primitives follow one convention: inputs arrive as *storage plus
//! layout* (so views are never copied just to be read), and outputs are fresh,
//! contiguous storage. Validation (shapes, dtypes, broadcasting, index
//! bounds where the indices are readable) is done once, in `Tensor`, before a
//! primitive is called: a backend only loops. What a backend can still
//! discover by itself (an out-of-range index read on the device, an
//! out-of-memory) it reports as [`Error::Device`](crate::Error::Device).

use crate::{CpuStorage, DType, DeviceId, Layout, Result, Shape};
use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

// ANCHOR: ops
/// Elementwise functions of one argument.
///
/// Parameterised ones (`Affine`, `Powf`, ...) carry their constants, so one
/// pass over memory does `x * mul + add` instead of two.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UnaryOp {
    Neg,
    Recip,
    Sqr,
    Sqrt,
    Exp,
    Log,
    Abs,
    Sign,
    Sin,
    Cos,
    Tanh,
    Sigmoid,
    Relu,
    Erf,
    /// `x * mul + add`
    Affine {
        mul: f64,
        add: f64,
    },
    /// `x ^ e`
    Powf(f64),
    /// `min(max(x, min), max)`
    Clamp {
        min: f64,
        max: f64,
    },
    /// `x` if `x > 0` else `slope * x`
    LeakyRelu(f64),
}

/// Elementwise functions of two arguments (of the same shape after broadcasting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Maximum,
    Minimum,
}

/// Comparisons; their result is a `u8` tensor of 0s and 1s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// Reductions over a set of axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Max,
    Min,
    /// Index (as `i64`) of the first maximum; one axis only.
    ArgMax,
    /// Index (as `i64`) of the first minimum; one axis only.
    ArgMin,
}

/// What a [`Backend::random`] call draws; see [`crate::philox`] for the
/// exact mapping from counter to value that every device reproduces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Distribution {
    /// Uniform in `[lo, hi)`.
    Uniform { lo: f64, hi: f64 },
    /// Normal with the given mean and standard deviation (Box–Muller).
    Normal { mean: f64, std: f64 },
    /// 1 with probability `p`, else 0: `uniform(0, 1) < p`.
    Bernoulli { p: f64 },
}
// ANCHOR_END: ops

// ANCHOR: backend_storage
/// A block of device memory holding elements of one dtype.
///
/// Each backend has its own storage type; the tensor holds it as a trait
/// object and hands it back to its backend, which downcasts it with `as_any`.
pub trait BackendStorage: Any + Send + Sync + Debug {
    fn dtype(&self) -> DType;
    /// Number of elements.
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    fn as_any(&self) -> &dyn Any;
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// Shared, reference-counted storage: views share it, `Clone` is cheap.
pub type Storage = Arc<dyn BackendStorage>;
// ANCHOR_END: backend_storage

/// Where a [`Backend::random`] draw starts in the Philox stream: the key
/// (`seed`) and the index of its first 32-bit word (`offset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RandomStream {
    pub seed: u64,
    pub offset: u64,
}

// ANCHOR: backend
/// A device: where storage lives and where the primitives run.
pub trait Backend: Send + Sync + Debug {
    /// The device's identity: kind and ordinal (`cpu`, `cuda:0`).
    fn id(&self) -> DeviceId;

    /// Waits until every operation queued on the device has finished (a
    /// no-op on the CPU, whose primitives are synchronous).
    fn synchronize(&self) -> Result<()> {
        Ok(())
    }

    /// The storage as host memory, when this device keeps its data in the
    /// host's own memory (the CPU does); `None` otherwise. The op layer
    /// uses it to validate index tensors for free where that costs no
    /// transfer.
    fn host_storage<'a>(&self, _storage: &'a dyn BackendStorage) -> Option<&'a CpuStorage> {
        None
    }

    /// [`host_storage`](Backend::host_storage), mutably: what an in-place
    /// host kernel (an optimiser's update) writes through.
    fn host_storage_mut<'a>(
        &self,
        _storage: &'a mut dyn BackendStorage,
    ) -> Option<&'a mut CpuStorage> {
        None
    }

    // Moving data.
    /// Copies host data (contiguous) onto the device: a host→device transfer.
    fn upload(&self, data: CpuStorage) -> Result<Storage>;
    /// Copies the elements of a view back to the host, in row-major order:
    /// a device→host transfer.
    fn to_cpu(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage>;
    /// A contiguous tensor of `shape` filled with `value`.
    fn full(&self, shape: &Shape, value: f64, dtype: DType) -> Result<Storage>;
    /// `start, start + step, ..., start + (len − 1)·step` (computed in `f64`).
    fn arange(&self, start: f64, step: f64, len: usize, dtype: DType) -> Result<Storage>;
    /// `shape` filled with draws from `dist`, starting at `stream` (see
    /// [`crate::philox`]); the caller advances its generator.
    fn random(
        &self,
        dist: Distribution,
        shape: &Shape,
        dtype: DType,
        stream: RandomStream,
    ) -> Result<Storage>;
    /// Makes a view contiguous (a copy in row-major order).
    fn copy(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage>;
    /// Writes `src` (viewed through `src_layout`) into the elements of `dst`
    /// that `dst_layout` selects; both layouts have the same shape. This one
    /// primitive gives `cat`, `pad` and slice assignment.
    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()>;
    /// Converts elements to another dtype.
    fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType) -> Result<Storage>;

    // Computing.
    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage>;
    /// `lhs` and `rhs` layouts have the same shape (already broadcast).
    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage>;
    fn cmp(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage>;
    /// `cond ? on_true : on_false`, elementwise; all three layouts have the
    /// same shape and `cond` is `u8`.
    fn where_cond(
        &self,
        cond: &dyn BackendStorage,
        cond_layout: &Layout,
        on_true: &dyn BackendStorage,
        true_layout: &Layout,
        on_false: &dyn BackendStorage,
        false_layout: &Layout,
    ) -> Result<Storage>;
    /// Reduces over the (sorted, distinct) `axes`. The result is contiguous,
    /// with the reduced axes kept as size 1.
    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<Storage>;
    /// Batched matrix product. `lhs` is `[batch.., m, k]`, `rhs` is
    /// `[batch.., k, n]` with identical batch dimensions (broadcast ones have
    /// stride 0); the result is contiguous `[batch.., m, n]`.
    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage>;

    // Indexing (indices are `i64`; an index outside its dimension is an
    // `Error::Device`).
    /// `out[.., i, ..] = src[.., ids[i], ..]` along `dim`; `ids` is 1-D.
    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// `out[i][j] = src[ids[i][j]][j]` for `dim = 0` (and likewise for other
    /// dims); `out` has the shape of `ids`.
    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// A copy of `base` where `out[ids[i][j]][j] += src[i][j]` (for
    /// `dim = 0`); `ids` and `src` have the same shape. The adjoint of `gather`.
    #[allow(clippy::too_many_arguments)]
    fn scatter_add(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// A copy of `base` where `out[.., ids[i], ..] += src[.., i, ..]` along
    /// `dim`; `ids` is 1-D. The adjoint of `index_select`.
    #[allow(clippy::too_many_arguments)]
    fn index_add(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
        dim: usize,
    ) -> Result<Storage>;
    /// For each row along the last dimension, the `i64` positions that sort
    /// it (stably: equal values keep their order; NaN sorts above every
    /// number, as in PyTorch).
    fn argsort(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        descending: bool,
    ) -> Result<Storage>;

    // ANCHOR: fused_default
    /// Runs a fused elementwise [`Program`] over inputs of one shape and
    /// returns its outputs (contiguous). `scalars` are the program's runtime
    /// numbers (a learning rate, a step's bias correction), passed the way a
    /// GPU passes kernel arguments, so one program serves every step. The
    /// default runs the program one instruction at a time with the
    /// primitives above, so every backend supports it; a backend overrides
    /// it to do the whole program in one pass over memory (the CPU backend
    /// does; a GPU backend generates one kernel per program).
    fn fused(
        &self,
        program: &Program,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<Vec<Storage>> {
        program.run_unfused(self, inputs, scalars)
    }
    // ANCHOR_END: fused_default

    // ANCHOR: fused_in_place_default
    /// Runs `program` over the inputs `state ++ inputs` (in that order) and
    /// writes its outputs *over* `state`: output `i` replaces `state[i]`, as
    /// if every input element were read before any output element is
    /// written. Every state buffer holds exactly the elements of `layout`
    /// (contiguous, offset 0). This is an optimiser's update: `(p, m, v)`
    /// are overwritten where they lie, and no fresh buffer is filled.
    ///
    /// The default runs [`fused`](Backend::fused) and copies each output
    /// over its state buffer, so every backend supports it; a backend
    /// overrides it to write in place (the CPU backend does).
    fn fused_in_place(
        &self,
        program: &Program,
        state: &mut [&mut dyn BackendStorage],
        layout: &Layout,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<()> {
        let outs = {
            let mut all: Vec<(&dyn BackendStorage, &Layout)> =
                state.iter().map(|s| (&**s, layout)).collect();
            all.extend_from_slice(inputs);
            self.fused(program, &all, scalars)?
        };
        for (dst, src) in state.iter_mut().zip(&outs) {
            self.copy_into(&mut **dst, layout, src.as_ref(), layout)?;
        }
        Ok(())
    }
    // ANCHOR_END: fused_in_place_default
}
// ANCHOR_END: backend

// ANCHOR: program
/// One step of a fused elementwise program. Operands name earlier steps
/// (registers) by index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Instr {
    /// The value of input tensor `i`.
    Input(usize),
    /// The value of runtime scalar `i` (the same for every element).
    Scalar(usize),
    /// A constant, part of the program itself.
    Const(f64),
    Unary(UnaryOp, usize),
    Binary(BinaryOp, usize, usize),
}

/// A straight-line elementwise computation with several inputs and
/// outputs, such as one optimiser update `(p, g, m, v) -> (p', m', v')`.
/// Running it fused reads each input once and writes each output once,
/// instead of making a full pass over memory (and a fresh allocation) per
/// operation.
///
/// Numbers that change from call to call (the learning rate, the step's
/// bias corrections) are [`Instr::Scalar`]s, supplied with each call, not
/// constants: the program itself stays the same at every step, so a device
/// that compiles programs compiles it once.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Program {
    pub instrs: Vec<Instr>,
    pub outputs: Vec<usize>,
}

impl Program {
    pub fn new() -> Self {
        Program::default()
    }
    fn push(&mut self, i: Instr) -> usize {
        self.instrs.push(i);
        self.instrs.len() - 1
    }
    /// Register holding input tensor `i`.
    pub fn input(&mut self, i: usize) -> usize {
        self.push(Instr::Input(i))
    }
    /// Register holding runtime scalar `i`.
    pub fn scalar(&mut self, i: usize) -> usize {
        self.push(Instr::Scalar(i))
    }
    /// Register holding a constant.
    pub fn constant(&mut self, v: f64) -> usize {
        self.push(Instr::Const(v))
    }
    pub fn unary(&mut self, op: UnaryOp, a: usize) -> usize {
        self.push(Instr::Unary(op, a))
    }
    pub fn binary(&mut self, op: BinaryOp, a: usize, b: usize) -> usize {
        self.push(Instr::Binary(op, a, b))
    }
    /// Marks a register as an output (in call order).
    pub fn output(&mut self, r: usize) {
        self.outputs.push(r);
    }

    /// The same program with its inputs renumbered: input `i` becomes input
    /// `map[i]`. An optimiser whose rule reads `(p, g, m, v)` runs it in
    /// place as `(p, m, v, g)`, state first (see
    /// [`Backend::fused_in_place`]).
    pub fn remap_inputs(&self, map: &[usize]) -> crate::Result<Program> {
        let instrs = self
            .instrs
            .iter()
            .map(|ins| match *ins {
                Instr::Input(i) => map.get(i).map(|&j| Instr::Input(j)).ok_or_else(|| {
                    crate::Error::invalid(
                        "remap_inputs",
                        format!("input {i} has no new number ({} given)", map.len()),
                    )
                }),
                other => Ok(other),
            })
            .collect::<crate::Result<_>>()?;
        Ok(Program {
            instrs,
            outputs: self.outputs.clone(),
        })
    }

    /// A key that is equal for equal programs (constants compared by their
    /// bits), for caches of compiled programs.
    pub fn cache_key(&self) -> String {
        format!("{:?}|{:?}", self.instrs, self.outputs)
    }

    /// Checks that every operand names an earlier register, every input
    /// and scalar index is in range, and there is at least one output.
    pub fn validate(&self, n_inputs: usize, n_scalars: usize) -> Result<()> {
        for (k, ins) in self.instrs.iter().enumerate() {
            let ok = match *ins {
                Instr::Input(i) => i < n_inputs,
                Instr::Scalar(i) => i < n_scalars,
                Instr::Const(_) => true,
                Instr::Unary(_, a) => a < k,
                Instr::Binary(_, a, b) => a < k && b < k,
            };
            if !ok {
                return Err(crate::Error::invalid(
                    "fused",
                    format!(
                        "instruction {k} ({ins:?}) refers to a later register, a missing \
                         input ({n_inputs} given) or a missing scalar ({n_scalars} given)"
                    ),
                ));
            }
        }
        if self.outputs.is_empty() || self.outputs.iter().any(|&o| o >= self.instrs.len()) {
            return Err(crate::Error::invalid(
                "fused",
                "a program needs at least one output, and every output must name a register",
            ));
        }
        Ok(())
    }

    /// The reference semantics: one primitive call per instruction.
    pub fn run_unfused<B: Backend + ?Sized>(
        &self,
        backend: &B,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<Vec<Storage>> {
        self.validate(inputs.len(), scalars.len())?;
        let (first, layout) = inputs
            .first()
            .ok_or_else(|| crate::Error::invalid("fused", "needs at least one input"))?;
        let shape = layout.shape().clone();
        let contiguous = Layout::contiguous(shape.clone());
        let mut regs: Vec<Storage> = Vec::with_capacity(self.instrs.len());
        for ins in &self.instrs {
            let r = match *ins {
                Instr::Input(i) => backend.copy(inputs[i].0, inputs[i].1)?,
                Instr::Scalar(i) => backend.full(&shape, scalars[i], first.dtype())?,
                Instr::Const(v) => backend.full(&shape, v, first.dtype())?,
                Instr::Unary(op, a) => backend.unary(op, regs[a].as_ref(), &contiguous)?,
                Instr::Binary(op, a, b) => backend.binary(
                    op,
                    regs[a].as_ref(),
                    &contiguous,
                    regs[b].as_ref(),
                    &contiguous,
                )?,
            };
            regs.push(r);
        }
        Ok(self.outputs.iter().map(|&o| regs[o].clone()).collect())
    }
}
// ANCHOR_END: program
