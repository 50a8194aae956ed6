//! Fused elementwise programs on the CPU.
//!
//! The program runs over the elements in chunks small enough to stay in
//! the L1 cache: for each chunk, each instruction is one tight loop. Memory
//! sees each input read once and each output written once, whatever the
//! number of instructions.
//!
//! Before running, the program is *planned*: an input is read in place
//! rather than copied into a register, a scalar or constant stays one
//! number (so `lr · g` is a loop over `g` alone), and each computed value
//! gets a chunk buffer that is handed to a later instruction once its last
//! reader has run, so an optimiser's two dozen instructions touch a handful
//! of buffers. Large inputs are split between the cores.

use super::elementwise::{binary_float, copy, unary_float, Apply1, Apply2, Float};
use super::CpuStorage;
use crate::backend::{BinaryOp, Instr, Program, UnaryOp};
use crate::{Error, Layout, Result};

/// Elements per chunk: 512 `f32`s are 2 KiB, so the few live buffers of a
/// program stay well inside a 32 KiB L1 data cache.
const CHUNK: usize = 512;

/// Below this many elements one core runs the program: handing half of it
/// to another thread costs a few microseconds.
const PARALLEL_MIN: usize = 1 << 16;

// ANCHOR: plan
/// Where an instruction's value lives while a chunk is computed.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Value<T> {
    /// Input tensor `i`, read in place.
    Input(usize),
    /// One number for every element (a constant or a runtime scalar).
    Splat(T),
    /// A chunk buffer.
    Reg(usize),
}

/// One computing step of a planned program.
#[derive(Debug, Clone, Copy)]
enum Step<T> {
    Unary(UnaryOp, Value<T>, usize),
    Binary(BinaryOp, Value<T>, Value<T>, usize),
}

/// A program ready to run: the steps, what each output is, and how many
/// chunk buffers it needs.
struct Plan<T> {
    steps: Vec<Step<T>>,
    outputs: Vec<Value<T>>,
    registers: usize,
}

/// Assigns every instruction a [`Value`], folding operations on two
/// splats into a splat and reusing a buffer once its last reader has run.
fn plan<T: Float>(program: &Program, scalars: &[f64]) -> Plan<T> {
    let n = program.instrs.len();
    // The last instruction that reads each register (outputs live to the end).
    let mut last_use = vec![0usize; n];
    for (k, ins) in program.instrs.iter().enumerate() {
        match *ins {
            Instr::Unary(_, a) => last_use[a] = k,
            Instr::Binary(_, a, b) => {
                last_use[a] = k;
                last_use[b] = k;
            }
            _ => {}
        }
    }
    for &o in &program.outputs {
        last_use[o] = usize::MAX;
    }
    let mut values: Vec<Value<T>> = Vec::with_capacity(n);
    let mut steps = Vec::new();
    let (mut free, mut registers): (Vec<usize>, usize) = (Vec::new(), 0);
    for (k, ins) in program.instrs.iter().enumerate() {
        let mut new_reg = || {
            free.pop().unwrap_or_else(|| {
                registers += 1;
                registers - 1
            })
        };
        let value = match *ins {
            Instr::Input(i) => Value::Input(i),
            Instr::Const(v) => Value::Splat(T::from_f64c(v)),
            Instr::Scalar(i) => Value::Splat(T::from_f64c(scalars[i])),
            Instr::Unary(op, a) => match values[a] {
                Value::Splat(x) => Value::Splat(unary_float(op, One(x))),
                va => {
                    let r = new_reg();
                    steps.push(Step::Unary(op, va, r));
                    Value::Reg(r)
                }
            },
            Instr::Binary(op, a, b) => match (values[a], values[b]) {
                (Value::Splat(x), Value::Splat(y)) => Value::Splat(binary_float(op, Two(x, y))),
                (va, vb) => {
                    let r = new_reg();
                    steps.push(Step::Binary(op, va, vb, r));
                    Value::Reg(r)
                }
            },
        };
        values.push(value);
        // Registers read for the last time by instruction k are free again
        // for the instructions after it.
        let operands: &[usize] = match ins {
            Instr::Unary(_, a) => std::slice::from_ref(a),
            Instr::Binary(_, a, b) if a == b => std::slice::from_ref(a),
            Instr::Binary(_, a, b) => &[*a, *b][..],
            _ => &[],
        };
        for &o in operands {
            if let (Value::Reg(r), true) = (values[o], last_use[o] == k) {
                free.push(r);
            }
        }
    }
    Plan {
        steps,
        outputs: program.outputs.iter().map(|&o| values[o]).collect(),
        registers,
    }
}
// ANCHOR_END: plan

/// The appliers that fold operations on splats.
struct One<T>(T);
impl<T: Copy> Apply1<T> for One<T> {
    type Out = T;
    fn apply(self, f: impl Fn(T) -> T + Sync) -> T {
        f(self.0)
    }
}
struct Two<T>(T, T);
impl<T: Copy> Apply2<T> for Two<T> {
    type Out = T;
    fn apply(self, f: impl Fn(T, T) -> T + Sync) -> T {
        f(self.0, self.1)
    }
}

/// A chunk operand: a slice, or one number.
enum Src<'a, T> {
    Slice(&'a [T]),
    Splat(T),
}

/// `dst[i] = f(src[i])`.
struct MapInto<'a, T>(&'a [T], &'a mut [T]);
impl<T: Copy> Apply1<T> for MapInto<'_, T> {
    type Out = ();
    #[inline(always)]
    fn apply(self, f: impl Fn(T) -> T + Sync) {
        for (d, &s) in self.1.iter_mut().zip(self.0) {
            *d = f(s);
        }
    }
}

/// `dst[i] = f(a[i], b[i])`, with either operand possibly one number: each
/// combination is its own loop, so `x · lr` vectorises like `x · y`.
struct ZipInto<'a, T>(Src<'a, T>, Src<'a, T>, &'a mut [T]);
impl<T: Copy> Apply2<T> for ZipInto<'_, T> {
    type Out = ();
    #[inline(always)]
    fn apply(self, f: impl Fn(T, T) -> T + Sync) {
        let dst = self.2;
        match (self.0, self.1) {
            (Src::Slice(a), Src::Slice(b)) => {
                for ((d, &x), &y) in dst.iter_mut().zip(a).zip(b) {
                    *d = f(x, y);
                }
            }
            (Src::Slice(a), Src::Splat(y)) => {
                for (d, &x) in dst.iter_mut().zip(a) {
                    *d = f(x, y);
                }
            }
            (Src::Splat(x), Src::Slice(b)) => {
                for (d, &y) in dst.iter_mut().zip(b) {
                    *d = f(x, y);
                }
            }
            (Src::Splat(x), Src::Splat(y)) => dst.fill(f(x, y)),
        }
    }
}

// ANCHOR: run_fused
/// Runs a planned program over elements `[start, start + outs[0].len())`
/// of the inputs, writing `outs` (one slice per output).
///
/// Compiled twice: for the baseline x86-64 (128-bit SSE registers) and
/// for CPUs with AVX2 and FMA (256-bit registers, fused multiply-add),
/// chosen once at run time, so the same binary uses twice the vector width
/// where the CPU has it.
///
/// A register that holds an output is not a buffer at all: the step that
/// computes it writes straight into the output's chunk, and later steps
/// read it there, which saves copying every output once more.
#[multiversion::multiversion(targets("x86_64+avx2+fma"))]
fn run_range<T: Float>(plan: &Plan<T>, inputs: &[&[T]], start: usize, outs: &mut [&mut [T]]) {
    let n = outs.first().map_or(0, |o| o.len());
    // The output each register is written into, if any (the first, when
    // one value is returned twice).
    let mut home: Vec<Option<usize>> = vec![None; plan.registers];
    for (o, value) in plan.outputs.iter().enumerate() {
        if let Value::Reg(q) = *value {
            home[q].get_or_insert(o);
        }
    }
    let mut regs: Vec<Vec<T>> = (0..plan.registers)
        .map(|q| match home[q] {
            Some(_) => Vec::new(),
            None => vec![T::zero(); CHUNK],
        })
        .collect();
    let out_ptrs: Vec<*mut T> = outs.iter_mut().map(|o| o.as_mut_ptr()).collect();
    let mut done = 0;
    while done < n {
        let len = CHUNK.min(n - done);
        let at = start + done;
        // SAFETY: every output slice holds `n` elements and `done + len <=
        // n`; the plan gives each step a destination register distinct from
        // its operands, and no two registers share an output, so a chunk
        // written here is never read through another slice at the same time.
        let out_chunk = |o: usize| unsafe { out_ptrs[o].add(done) };
        for step in &plan.steps {
            // Take the destination buffer out, so the operands (other
            // buffers, or inputs) can be borrowed while it is written.
            let r = match *step {
                Step::Unary(_, _, r) | Step::Binary(_, _, _, r) => r,
            };
            let mut own = std::mem::take(&mut regs[r]);
            {
                let dst: &mut [T] = match home[r] {
                    Some(o) => unsafe { std::slice::from_raw_parts_mut(out_chunk(o), len) },
                    None => &mut own[..len],
                };
                let src = |v: Value<T>| match v {
                    Value::Input(i) => Src::Slice(&inputs[i][at..at + len]),
                    Value::Splat(x) => Src::Splat(x),
                    Value::Reg(q) => match home[q] {
                        Some(o) => {
                            Src::Slice(unsafe { std::slice::from_raw_parts(out_chunk(o), len) })
                        }
                        None => Src::Slice(&regs[q][..len]),
                    },
                };
                match *step {
                    Step::Unary(op, a, _) => match src(a) {
                        Src::Slice(x) => unary_float(op, MapInto(x, dst)),
                        Src::Splat(x) => dst.fill(unary_float(op, One(x))),
                    },
                    Step::Binary(op, a, b, _) => binary_float(op, ZipInto(src(a), src(b), dst)),
                }
            }
            regs[r] = own;
        }
        for (o, &value) in plan.outputs.iter().enumerate() {
            // SAFETY: as above; `home[q] != o` means the value lives in
            // another output (or a buffer), never in this one.
            let out = unsafe { std::slice::from_raw_parts_mut(out_chunk(o), len) };
            match value {
                Value::Input(i) => out.copy_from_slice(&inputs[i][at..at + len]),
                Value::Splat(x) => out.fill(x),
                Value::Reg(q) => match home[q] {
                    Some(h) if h == o => {}
                    Some(h) => out
                        .copy_from_slice(unsafe { std::slice::from_raw_parts(out_chunk(h), len) }),
                    None => out.copy_from_slice(&regs[q][..len]),
                },
            }
        }
        done += len;
    }
}

/// Runs `program` over `n` elements of contiguous inputs, on up to two
/// cores: each takes a half (cut at a chunk boundary) with buffers of its
/// own and writes its half of every output. The second half runs on the
/// pool of worker threads every CPU kernel shares (rayon's), started once
/// and parked between jobs, so a split costs microseconds, not a thread.
pub(crate) fn run_fused<T: Float>(
    program: &Program,
    inputs: &[&[T]],
    scalars: &[f64],
    n: usize,
) -> Vec<Vec<T>> {
    let plan = plan::<T>(program, scalars);
    // Every element of every output is written below.
    let mut outs: Vec<Vec<T>> = (0..program.outputs.len())
        .map(|_| super::pool::overwritten(n, T::zero()))
        .collect();
    let threads = super::threads().min(2);
    if threads < 2 || n < PARALLEL_MIN {
        let mut slices: Vec<&mut [T]> = outs.iter_mut().map(|o| o.as_mut_slice()).collect();
        run_range(&plan, inputs, 0, &mut slices);
        return outs;
    }
    let half = (n / 2).div_ceil(CHUNK) * CHUNK;
    let (mut first, mut second): (Vec<&mut [T]>, Vec<&mut [T]>) =
        outs.iter_mut().map(|o| o.split_at_mut(half)).unzip();
    let plan = &plan;
    rayon::join(
        || run_range(plan, inputs, 0, &mut first),
        || run_range(plan, inputs, half, &mut second),
    );
    outs
}
// ANCHOR_END: run_fused

/// Runs `program` over float inputs of one dtype (`f32` or `f64`; half
/// inputs arrive widened). A strided input (a transposed gradient, say) is
/// first copied to a contiguous buffer: one extra pass for that input only.
pub(crate) fn run(
    program: &Program,
    inputs: &[(&CpuStorage, &Layout)],
    scalars: &[f64],
) -> Result<Vec<CpuStorage>> {
    let copies = contiguous_copies(inputs);
    let views = views_of(inputs, &copies);
    let n = views.first().map_or(0, |v| v.2);
    if let Some(slices) = slices_of(&views, |s| match s {
        CpuStorage::F32(v) => Some(v.as_slice()),
        _ => None,
    }) {
        let outs = run_fused(program, &slices, scalars, n);
        return Ok(outs.into_iter().map(CpuStorage::F32).collect());
    }
    if let Some(slices) = slices_of(&views, |s| match s {
        CpuStorage::F64(v) => Some(v.as_slice()),
        _ => None,
    }) {
        let outs = run_fused(program, &slices, scalars, n);
        return Ok(outs.into_iter().map(CpuStorage::F64).collect());
    }
    Err(Error::invalid(
        "fused",
        "inputs must all be f32 or all be f64 (or one half type)",
    ))
}

// ANCHOR: run_in_place
/// Elements per block of an in-place run: 16 384 `f32`s (64 KiB) per state
/// buffer, so a block's copies stay in the L2 cache.
const BLOCK: usize = 32 * CHUNK;

/// Runs `program` over `state ++ others` and writes its outputs over
/// `state`, block by block: each block of every state buffer is first
/// copied to a scratch buffer (which the program reads), then overwritten
/// by the program's outputs. The copy is cheap (the block is read from
/// memory once, then stays in cache), and it makes reading and writing the
/// same elements safe without any aliasing. What it saves is a fresh
/// output buffer per state: no new pages, and no cache lines fetched from
/// memory just to be overwritten.
pub(crate) fn run_in_place<T: Float>(
    program: &Program,
    state: &mut [&mut [T]],
    others: &[&[T]],
    scalars: &[f64],
) {
    let plan = plan::<T>(program, scalars);
    let n = state.first().map_or(0, |s| s.len());
    let blocks = |state: &mut [&mut [T]], start: usize| {
        let mut scratch: Vec<Vec<T>> = state.iter().map(|_| vec![T::zero(); BLOCK]).collect();
        let len = state.first().map_or(0, |s| s.len());
        let mut done = 0;
        while done < len {
            let b = BLOCK.min(len - done);
            for (copy, s) in scratch.iter_mut().zip(state.iter()) {
                copy[..b].copy_from_slice(&s[done..done + b]);
            }
            let at = start + done;
            let inputs: Vec<&[T]> = scratch
                .iter()
                .map(|c| &c[..b])
                .chain(others.iter().map(|o| &o[at..at + b]))
                .collect();
            let mut outs: Vec<&mut [T]> =
                state.iter_mut().map(|s| &mut s[done..done + b]).collect();
            run_range(&plan, &inputs, 0, &mut outs);
            done += b;
        }
    };
    if super::threads() < 2 || n < PARALLEL_MIN {
        blocks(state, 0);
        return;
    }
    let half = (n / 2).div_ceil(CHUNK) * CHUNK;
    let (mut first, mut second): (Vec<&mut [T]>, Vec<&mut [T]>) =
        state.iter_mut().map(|s| s.split_at_mut(half)).unzip();
    rayon::join(|| blocks(&mut first, 0), || blocks(&mut second, half));
}

/// [`run_in_place`] on CPU storage: `f32` or `f64` state (inputs of the
/// same dtype, contiguous or copied so). `false` for other dtypes, which
/// take the generic path.
pub(crate) fn run_in_place_storage(
    program: &Program,
    state: &mut [&mut CpuStorage],
    inputs: &[(&CpuStorage, &Layout)],
    scalars: &[f64],
) -> bool {
    let copies = contiguous_copies(inputs);
    let views = views_of(inputs, &copies);
    macro_rules! typed {
        ($variant:ident) => {{
            let others = slices_of(&views, |s| match s {
                CpuStorage::$variant(v) => Some(v.as_slice()),
                _ => None,
            });
            let mut dsts: Option<Vec<&mut [_]>> = state
                .iter_mut()
                .map(|s| match &mut **s {
                    CpuStorage::$variant(v) => Some(v.as_mut_slice()),
                    _ => None,
                })
                .collect();
            if let (Some(others), Some(dsts)) = (others, dsts.as_mut()) {
                run_in_place(program, dsts, &others, scalars);
                return true;
            }
        }};
    }
    typed!(F32);
    typed!(F64);
    false
}
// ANCHOR_END: run_in_place

/// A contiguous copy of each strided input (`None` for the others): one
/// extra pass for that input only.
fn contiguous_copies(inputs: &[(&CpuStorage, &Layout)]) -> Vec<Option<CpuStorage>> {
    inputs
        .iter()
        .map(|&(s, l)| (!l.is_contiguous()).then(|| copy(s, l)))
        .collect()
}

/// `(storage, offset, len)` of each input, reading the copy where there is
/// one: every view is contiguous.
fn views_of<'a>(
    inputs: &[(&'a CpuStorage, &Layout)],
    copies: &'a [Option<CpuStorage>],
) -> Vec<(&'a CpuStorage, usize, usize)> {
    inputs
        .iter()
        .zip(copies)
        .map(|(&(s, l), c)| match c {
            Some(c) => (c, 0, c.len()),
            None => (s, l.offset(), l.elem_count()),
        })
        .collect()
}

/// The inputs as slices of one element type, if they all have it.
fn slices_of<'a, T>(
    views: &[(&'a CpuStorage, usize, usize)],
    as_type: impl Fn(&'a CpuStorage) -> Option<&'a [T]>,
) -> Option<Vec<&'a [T]>> {
    views
        .iter()
        .map(|&(s, o, len)| as_type(s).map(|v| &v[o..o + len]))
        .collect()
}
