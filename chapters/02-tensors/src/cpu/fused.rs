//! Fused elementwise programs on the CPU.
//!
//! The program runs over the elements in chunks small enough to stay in
//! the L1 cache: for each chunk, each instruction is one tight loop from
//! chunk buffers into a chunk buffer. Memory sees each input read once and
//! each output written once, whatever the number of instructions.

use super::elementwise::{binary_float, unary_float, Float, IntoSlice, IntoSlice2};
use super::CpuStorage;
use crate::backend::{Instr, Program};

/// Elements per chunk: 512 `f32`s are 2 KiB, so a program with a dozen
/// registers stays well inside a 32 KiB L1 data cache.
const CHUNK: usize = 512;

// ANCHOR: run_fused
pub(crate) fn run_fused<T: Float + Default>(
    program: &Program,
    inputs: &[&[T]],
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

/// Runs `program` when every input is a contiguous float slice of one
/// dtype; `None` tells the caller to fall back to the unfused path.
pub(crate) fn try_fused(
    program: &Program,
    inputs: &[(&CpuStorage, usize, usize)],
) -> Option<Vec<CpuStorage>> {
    // (storage, offset, len) of each contiguous input.
    let n = inputs.first()?.2;
    if let Some(slices) = inputs
        .iter()
        .map(|(s, o, l)| match s {
            CpuStorage::F32(v) => Some(&v[*o..*o + *l]),
            _ => None,
        })
        .collect::<Option<Vec<&[f32]>>>()
    {
        return Some(
            run_fused(program, &slices, n)
                .into_iter()
                .map(CpuStorage::F32)
                .collect(),
        );
    }
    let slices = inputs
        .iter()
        .map(|(s, o, l)| match s {
            CpuStorage::F64(v) => Some(&v[*o..*o + *l]),
            _ => None,
        })
        .collect::<Option<Vec<&[f64]>>>()?;
    Some(
        run_fused(program, &slices, n)
            .into_iter()
            .map(CpuStorage::F64)
            .collect(),
    )
}
