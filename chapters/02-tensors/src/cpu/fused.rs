//! Fused elementwise programs on the CPU.
//!
//! The program runs over the elements in chunks small enough to stay in
//! the L1 cache: for each chunk, each instruction is one tight loop from
//! chunk buffers into a chunk buffer. Memory sees each input read once and
//! each output written once, whatever the number of instructions.

use super::elementwise::{binary_float, copy, unary_float, Float, IntoSlice, IntoSlice2};
use super::CpuStorage;
use crate::backend::{Instr, Program};
use crate::{Error, Layout, Result};

/// Elements per chunk: 512 `f32`s are 2 KiB, so a program with a dozen
/// registers stays well inside a 32 KiB L1 data cache.
const CHUNK: usize = 512;

// ANCHOR: run_fused
pub(crate) fn run_fused<T: Float + Default>(
    program: &Program,
    inputs: &[&[T]],
    scalars: &[f64],
    n: usize,
) -> Vec<Vec<T>> {
    let mut outs: Vec<Vec<T>> = program
        .outputs
        .iter()
        .map(|_| Vec::with_capacity(n))
        .collect();
    let mut regs: Vec<Vec<T>> = vec![vec![T::default(); CHUNK]; program.instrs.len()];
    let mut start = 0;
    while start < n {
        let len = CHUNK.min(n - start);
        for (k, ins) in program.instrs.iter().enumerate() {
            // Operands are earlier registers: split so we can read them
            // while writing register k.
            let (done, rest) = regs.split_at_mut(k);
            let dst = &mut rest[0][..len];
            match *ins {
                Instr::Input(i) => dst.copy_from_slice(&inputs[i][start..start + len]),
                Instr::Const(v) => dst.fill(T::from_f64c(v)),
                Instr::Scalar(i) => dst.fill(T::from_f64c(scalars[i])),
                Instr::Unary(op, a) => unary_float(op, IntoSlice(&done[a][..len], dst)),
                Instr::Binary(op, a, b) => {
                    binary_float(op, IntoSlice2(&done[a][..len], &done[b][..len], dst))
                }
            }
        }
        for (out, &r) in outs.iter_mut().zip(&program.outputs) {
            out.extend_from_slice(&regs[r][..len]);
        }
        start += len;
    }
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
    let copies: Vec<Option<CpuStorage>> = inputs
        .iter()
        .map(|&(s, l)| (!l.is_contiguous()).then(|| copy(s, l)))
        .collect();
    // (storage, offset, len) of each input, now contiguous.
    let views: Vec<(&CpuStorage, usize, usize)> = inputs
        .iter()
        .zip(&copies)
        .map(|(&(s, l), c)| match c {
            Some(c) => (c, 0, c.len()),
            None => (s, l.offset(), l.elem_count()),
        })
        .collect();
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
