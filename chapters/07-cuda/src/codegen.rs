//! Fused elementwise programs as one CUDA kernel.
//!
//! Chapter 02's [`Program`] is a straight line of elementwise instructions
//! (an optimiser update, a GELU, a residual add and scale). Run one
//! primitive at a time, each instruction reads and writes all of memory
//! once; fused, the whole program is one pass: each thread loads its
//! element of every input, runs the instructions in registers, and stores
//! its element of every output. For memory-bound work, time is bytes
//! moved, so a program of `k` instructions runs up to `k` times faster.
//!
//! A GPU cannot interpret a program per element at full speed, so we
//! *generate* the kernel: one CUDA C function per program shape, compiled
//! at run time by NVRTC ([`crate::nvrtc`]) and cached by
//! [`FusedKernel::cache_key`] (the program, the dtype, and which inputs
//! are strided). Runtime scalars (a learning rate) are kernel arguments,
//! so one kernel serves every training step.
//!
//! The kernel gives the same numbers as the CPU backend's `fused`:
//! - the maths is done in the program's dtype (`f32`, `f64`), with each
//!   op written as the CPU writes it (sigmoid split at 0, NaN-propagating
//!   maximum, `x · mul + add` as two roundings: NVRTC is told
//!   `--fmad=false`, so it never fuses a multiply and an add into one
//!   `fma` with one rounding);
//! - `f16` and `bf16` are loaded into `f32`, computed in `f32`, and rounded
//!   once per output on the store, as the CPU's fused path does. Running
//!   the program one primitive at a time (`Program::run_unfused`) instead
//!   rounds after every instruction; [`HalfRounding::PerInstruction`]
//!   generates a kernel that does that, bit for bit;
//! - transcendental functions (`exp`, `log`, `tanh`, `erf`, `pow`...)
//!   come from each side's maths library, which may differ in the last
//!   bit or two.
//!
//! The same source also compiles with a host C++ compiler and a tiny shim
//! (see this crate's `tests/codegen.rs`), which is how it is tested on a
//! machine without a GPU.

use crate::runtime::{DevicePtr, LaunchConfig, Runtime};
use chapter_02::backend::{BinaryOp, Instr, Program, UnaryOp};
use chapter_02::{DType, Error, Layout, Result};
use std::ffi::c_void;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};

/// The highest rank a strided input may have.
pub const MAX_RANK: usize = 8;

/// NVRTC options a fused kernel must be compiled with: no contraction of
/// `a * b + c` into one `fma` (the CPU rounds twice), precise division
/// and square root (NVRTC's default, stated for the reader).
pub const NVRTC_OPTIONS: &[&str] = &["--fmad=false", "--prec-div=true", "--prec-sqrt=true"];

// ANCHOR: pattern
/// How a kernel reads one input: what the generated code depends on, so
/// part of the cache key. Shapes and strides are not: they are arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InputPattern {
    /// Element `i` is at `ptr[i]` (the layout's offset is added to the
    /// pointer before the launch).
    Contiguous,
    /// Element `i` is found through its multi-index: strides of `rank`
    /// dimensions, any of them 0 (broadcast) or permuted (a transpose).
    Strided { rank: usize },
}

impl InputPattern {
    /// The pattern of an input viewed through `layout`.
    pub fn of(layout: &Layout) -> Result<InputPattern> {
        if layout.is_contiguous() {
            return Ok(InputPattern::Contiguous);
        }
        let rank = layout.rank();
        if rank > MAX_RANK {
            return Err(Error::invalid(
                "fused",
                format!("a strided input of rank {rank}: the CUDA kernel takes rank ≤ {MAX_RANK}"),
            ));
        }
        Ok(InputPattern::Strided { rank })
    }

    fn tag(self) -> String {
        match self {
            InputPattern::Contiguous => "c".into(),
            InputPattern::Strided { rank } => format!("s{rank}"),
        }
    }
}
// ANCHOR_END: pattern

/// Shapes and strides as a kernel argument passed by value:
/// `struct cd_dims { unsigned long long d[8]; }` on the device. Unused
/// trailing entries are 0.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KernelDims {
    pub d: [u64; MAX_RANK],
}

impl KernelDims {
    fn from_slice(v: &[usize]) -> KernelDims {
        let mut d = [0u64; MAX_RANK];
        for (o, &x) in d.iter_mut().zip(v) {
            *o = x as u64;
        }
        KernelDims { d }
    }
}

/// One kernel parameter, in order: what the launch passes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// Output `i`: a pointer to contiguous storage.
    Output(usize),
    /// Input `i`: a pointer (offset included).
    Input(usize),
    /// Runtime scalar `i`, as a `double`.
    Scalar(usize),
    /// The element count, `unsigned long long`.
    Len,
    /// The common shape, [`KernelDims`] (when some input is strided).
    Shape,
    /// The strides of input `i`, [`KernelDims`].
    Strides(usize),
}

/// A generated kernel: its name, CUDA C source and how to call it.
#[derive(Debug, Clone, PartialEq)]
pub struct FusedKernel {
    /// `fused_<16 hex digits of the key's hash>`.
    pub name: String,
    pub source: String,
    pub cache_key: String,
    pub dtype: DType,
    pub patterns: Vec<InputPattern>,
    pub params: Vec<Param>,
    pub n_outputs: usize,
    pub n_scalars: usize,
}

/// When `f16` and `bf16` results are rounded to their 16 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HalfRounding {
    /// Compute the whole program in `f32` and round each output once, as
    /// the CPU backend's `fused` does: the more accurate choice, and the
    /// one [`generate`] makes.
    #[default]
    PerOutput,
    /// Round every instruction's result (and every scalar and constant),
    /// as running the program one primitive at a time does
    /// (`Program::run_unfused`).
    PerInstruction,
}

/// The key under which a program's kernel is cached: equal keys, same
/// kernel source.
pub fn cache_key(program: &Program, dtype: DType, patterns: &[InputPattern]) -> String {
    cache_key_with(program, dtype, patterns, HalfRounding::PerOutput)
}

/// [`cache_key`] for a choice of [`HalfRounding`].
pub fn cache_key_with(
    program: &Program,
    dtype: DType,
    patterns: &[InputPattern],
    rounding: HalfRounding,
) -> String {
    let tags: Vec<String> = patterns.iter().map(|p| p.tag()).collect();
    let round = match (rounding, dtype.is_half()) {
        (HalfRounding::PerInstruction, true) => "|round-each",
        _ => "",
    };
    format!(
        "{}|{dtype:?}|{}{round}",
        program.cache_key(),
        tags.join(",")
    )
}

/// The C types of a dtype: how elements are stored, and what the maths is
/// done in.
struct Types {
    storage: &'static str,
    compute: &'static str,
    load: &'static str,
    store: &'static str,
    /// Suffix of the maths functions: `f` for `expf`, none for `exp`.
    fsuffix: &'static str,
}

fn types(dtype: DType) -> Result<Types> {
    Ok(match dtype {
        DType::F32 => Types {
            storage: "float",
            compute: "float",
            load: "",
            store: "",
            fsuffix: "f",
        },
        DType::F64 => Types {
            storage: "double",
            compute: "double",
            load: "",
            store: "",
            fsuffix: "",
        },
        DType::F16 => Types {
            storage: "unsigned short",
            compute: "float",
            load: "cd_h2f",
            store: "cd_f2h",
            fsuffix: "f",
        },
        DType::BF16 => Types {
            storage: "unsigned short",
            compute: "float",
            load: "cd_bf2f",
            store: "cd_f2bf",
            fsuffix: "f",
        },
        other => {
            return Err(Error::invalid(
                "fused",
                format!("fused programs run on float tensors, not {other:?}"),
            ))
        }
    })
}

/// The helpers every fused kernel starts with: bit casts, the half-type
/// conversions (written out, so no CUDA header is needed and the host
/// compiler runs the very same code), and the shape argument type.
const PRELUDE: &str = r#"// Generated by chapter 07's codegen from a fused elementwise program.
#ifndef CD_FUSED_PRELUDE
#define CD_FUSED_PRELUDE
struct cd_dims { unsigned long long d[8]; };
union cd_f32_bits { float f; unsigned int u; };
union cd_f64_bits { double f; unsigned long long u; };
__device__ __forceinline__ double cd_f64_from_bits(unsigned long long u) {
    cd_f64_bits b; b.u = u; return b.f;
}
// f16 -> f32 is exact.
__device__ __forceinline__ float cd_h2f(unsigned short h) {
    unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
    unsigned int e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    cd_f32_bits b;
    if (e == 0x1fu) { b.u = sign | 0x7f800000u | (m << 13); }
    else if (e != 0u) { b.u = sign | ((e + 112u) << 23) | (m << 13); }
    else { b.f = (float)m * 5.9604644775390625e-8f; b.u |= sign; }
    return b.f;
}
// f32 -> f16, round to nearest even; overflow gives infinity.
__device__ __forceinline__ unsigned short cd_f2h(float x) {
    cd_f32_bits b; b.f = x;
    unsigned int sign = b.u & 0x80000000u;
    b.u ^= sign;
    unsigned int o;
    if (b.u >= 0x47800000u) {                  // |x| >= 65536, inf or NaN
        o = b.u > 0x7f800000u ? 0x7e00u : 0x7c00u;
    } else if (b.u < 0x38800000u) {            // below 2^-14: subnormal
        cd_f32_bits magic; magic.u = 126u << 23;  // 0.5: aligns the ulp of f16 subnormals
        b.f += magic.f;                         // the float adder rounds to nearest even
        o = b.u - magic.u;
    } else {
        unsigned int odd = (b.u >> 13) & 1u;
        b.u += 0xc8000fffu + odd;               // rebias 127 -> 15, round half to even
        o = b.u >> 13;
    }
    return (unsigned short)(o | (sign >> 16));
}
__device__ __forceinline__ float cd_bf2f(unsigned short h) {
    cd_f32_bits b; b.u = (unsigned int)h << 16; return b.f;
}
// f32 -> bf16, round to nearest even; NaN stays NaN.
__device__ __forceinline__ unsigned short cd_f2bf(float x) {
    cd_f32_bits b; b.f = x;
    if ((b.u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((b.u >> 16) | 0x40u);
    return (unsigned short)((b.u + 0x7fffu + ((b.u >> 16) & 1u)) >> 16);
}
// The sigmoid of the CPU: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below, so
// e^-x never overflows.
__device__ __forceinline__ float cd_sigmoid(float v) {
    if (v >= 0.0f) return 1.0f / (1.0f + expf(-v));
    float e = expf(v);
    return e / (1.0f + e);
}
__device__ __forceinline__ double cd_sigmoid(double v) {
    if (v >= 0.0) return 1.0 / (1.0 + exp(-v));
    double e = exp(v);
    return e / (1.0 + e);
}
#endif
"#;

/// A constant of the program as C: the shortest decimal that reads back
/// as the same `f64`, or its bits for infinities and NaN.
fn literal(v: f64) -> String {
    if v.is_finite() {
        let s = format!("{v:?}");
        if s.contains(['.', 'e', 'E']) {
            s
        } else {
            format!("{s}.0")
        }
    } else {
        format!("cd_f64_from_bits({:#x}ull)", v.to_bits())
    }
}

// ANCHOR: codegen_ops
/// The C expression of a unary op on `a`, in compute type `c` with maths
/// suffix `f`, written as the CPU backend computes it.
fn unary_expr(op: UnaryOp, a: &str, c: &str, f: &str) -> String {
    let k = |v: f64| format!("(({c}){})", literal(v));
    match op {
        UnaryOp::Neg => format!("-{a}"),
        UnaryOp::Recip => format!("({c})1 / {a}"),
        UnaryOp::Sqr => format!("{a} * {a}"),
        UnaryOp::Sqrt => format!("sqrt{f}({a})"),
        UnaryOp::Exp => format!("exp{f}({a})"),
        UnaryOp::Log => format!("log{f}({a})"),
        UnaryOp::Abs => format!("fabs{f}({a})"),
        // Keeps 0, -0 and NaN.
        UnaryOp::Sign => format!("({a} > ({c})0 ? ({c})1 : ({a} < ({c})0 ? ({c})-1 : {a}))"),
        UnaryOp::Sin => format!("sin{f}({a})"),
        UnaryOp::Cos => format!("cos{f}({a})"),
        UnaryOp::Tanh => format!("tanh{f}({a})"),
        UnaryOp::Sigmoid => format!("cd_sigmoid({a})"),
        UnaryOp::Relu => format!("({a} > ({c})0 ? {a} : ({c})0)"),
        UnaryOp::Erf => format!("erf{f}({a})"),
        UnaryOp::Affine { mul, add } => format!("{a} * {} + {}", k(mul), k(add)),
        UnaryOp::Powf(e) => format!("pow{f}({a}, {})", k(e)),
        UnaryOp::Clamp { min, max } => {
            let (lo, hi) = (k(min), k(max));
            format!("({a} < {lo} ? {lo} : ({a} > {hi} ? {hi} : {a}))")
        }
        UnaryOp::LeakyRelu(s) => format!("({a} > ({c})0 ? {a} : {a} * {})", k(s)),
    }
}

/// The C expression of a binary op. `x != x` is NaN's test: maximum and
/// minimum propagate a NaN, as `torch.maximum` does.
fn binary_expr(op: BinaryOp, a: &str, b: &str, f: &str) -> String {
    match op {
        BinaryOp::Add => format!("{a} + {b}"),
        BinaryOp::Sub => format!("{a} - {b}"),
        BinaryOp::Mul => format!("{a} * {b}"),
        BinaryOp::Div => format!("{a} / {b}"),
        BinaryOp::Pow => format!("pow{f}({a}, {b})"),
        BinaryOp::Maximum => format!("(({a} != {a}) || {a} > {b} ? {a} : {b})"),
        BinaryOp::Minimum => format!("(({a} != {a}) || {a} < {b} ? {a} : {b})"),
    }
}
// ANCHOR_END: codegen_ops

/// Which registers the outputs need (instructions no output depends on
/// are not generated: a compiler would warn about them).
fn live_registers(program: &Program) -> Vec<bool> {
    let mut live = vec![false; program.instrs.len()];
    for &o in &program.outputs {
        live[o] = true;
    }
    for k in (0..program.instrs.len()).rev() {
        if !live[k] {
            continue;
        }
        match program.instrs[k] {
            Instr::Unary(_, a) => live[a] = true,
            Instr::Binary(_, a, b) => {
                live[a] = true;
                live[b] = true;
            }
            _ => {}
        }
    }
    live
}

// ANCHOR: generate
/// The CUDA C source of one kernel running `program` over `dtype` inputs
/// read as `patterns` (one per input), one thread per element in a
/// grid-stride loop:
///
/// ```text
/// for (i = blockIdx.x·blockDim.x + threadIdx.x; i < n; i += blockDim.x·gridDim.x)
///     r_k = <instruction k>(r_a, r_b)          for each live instruction
///     out_j[i] = r_{outputs[j]}
/// ```
///
/// A strided input's element is found from `i`'s multi-index
/// `(c_0, …, c_{r−1})` in the common shape: `offset = Σ_d c_d · stride_d`,
/// the multi-index computed once per element for all strided inputs.
pub fn generate(program: &Program, dtype: DType, patterns: &[InputPattern]) -> Result<FusedKernel> {
    generate_with(program, dtype, patterns, HalfRounding::PerOutput)
}

/// [`generate`] with a choice of when half results are rounded.
pub fn generate_with(
    program: &Program,
    dtype: DType,
    patterns: &[InputPattern],
    rounding: HalfRounding,
) -> Result<FusedKernel> {
    let n_scalars = program
        .instrs
        .iter()
        .filter_map(|i| match *i {
            Instr::Scalar(s) => Some(s + 1),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    program.validate(patterns.len(), n_scalars)?;
    let ranks: Vec<usize> = patterns
        .iter()
        .filter_map(|p| match *p {
            InputPattern::Strided { rank } => Some(rank),
            InputPattern::Contiguous => None,
        })
        .collect();
    if ranks.windows(2).any(|w| w[0] != w[1]) || ranks.iter().any(|&r| r > MAX_RANK) {
        return Err(Error::invalid(
            "fused",
            format!("strided inputs must share one rank ≤ {MAX_RANK}: {patterns:?}"),
        ));
    }
    let rank = ranks.first().copied();
    let t = types(dtype)?;
    let (c, f) = (t.compute, t.fsuffix);
    let key = cache_key_with(program, dtype, patterns, rounding);
    // Rounding every value to the half type and back, when asked to.
    let round_each = rounding == HalfRounding::PerInstruction && dtype.is_half();
    let rounded = |e: String| {
        if round_each {
            format!("{}({}({e}))", t.load, t.store)
        } else {
            e
        }
    };
    let name = format!("fused_{}", &short_hash(&key));

    // Parameters: outputs, inputs, scalars, n, then shape and strides.
    let mut params: Vec<Param> = (0..program.outputs.len()).map(Param::Output).collect();
    params.extend((0..patterns.len()).map(Param::Input));
    params.extend((0..n_scalars).map(Param::Scalar));
    params.push(Param::Len);
    if rank.is_some() {
        params.push(Param::Shape);
        for (i, p) in patterns.iter().enumerate() {
            if matches!(p, InputPattern::Strided { .. }) {
                params.push(Param::Strides(i));
            }
        }
    }
    let decl = |p: &Param| match *p {
        Param::Output(i) => format!("{} *__restrict__ out{i}", t.storage),
        Param::Input(i) => format!("const {} *__restrict__ in{i}", t.storage),
        Param::Scalar(i) => format!("double s{i}"),
        Param::Len => "unsigned long long n".to_string(),
        Param::Shape => "cd_dims shape".to_string(),
        Param::Strides(i) => format!("cd_dims st{i}"),
    };

    let mut src = String::from(PRELUDE);
    writeln!(src, "// key: {key}").unwrap();
    let decls: Vec<String> = params.iter().map(decl).collect();
    writeln!(
        src,
        "extern \"C\" __global__ void {name}(\n    {}) {{",
        decls.join(",\n    ")
    )
    .unwrap();
    writeln!(
        src,
        "    const unsigned long long step = (unsigned long long)blockDim.x * gridDim.x;\n    \
         for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; \
         i < n; i += step) {{"
    )
    .unwrap();

    let live = live_registers(program);
    let strided_live = program.instrs.iter().enumerate().any(|(k, ins)| {
        live[k] && matches!(ins, Instr::Input(i) if matches!(patterns[*i], InputPattern::Strided { .. }))
    });
    if let (Some(r), true) = (rank, strided_live) {
        // The multi-index of i, last dimension fastest.
        writeln!(src, "        unsigned long long rem = i;").unwrap();
        for d in (0..r).rev() {
            if d == 0 {
                writeln!(src, "        unsigned long long c0 = rem;").unwrap();
            } else {
                writeln!(
                    src,
                    "        unsigned long long c{d} = rem % shape.d[{d}]; rem /= shape.d[{d}];"
                )
                .unwrap();
            }
        }
    }
    for (k, ins) in program.instrs.iter().enumerate() {
        if !live[k] {
            continue;
        }
        let r = |a: usize| format!("r{a}");
        let expr = match *ins {
            Instr::Input(i) => {
                let at = match patterns[i] {
                    InputPattern::Contiguous => "i".to_string(),
                    InputPattern::Strided { rank } => (0..rank)
                        .map(|d| format!("c{d} * st{i}.d[{d}]"))
                        .collect::<Vec<_>>()
                        .join(" + "),
                };
                let at = if at.is_empty() { "0".to_string() } else { at };
                format!("{}(in{i}[{at}])", t.load)
            }
            Instr::Scalar(s) => rounded(format!("({c})s{s}")),
            Instr::Const(v) => rounded(format!("({c}){}", literal(v))),
            Instr::Unary(op, a) => rounded(unary_expr(op, &r(a), c, f)),
            Instr::Binary(op, a, b) => rounded(binary_expr(op, &r(a), &r(b), f)),
        };
        writeln!(src, "        const {c} r{k} = {expr};").unwrap();
    }
    for (j, &o) in program.outputs.iter().enumerate() {
        writeln!(src, "        out{j}[i] = {}(r{o});", t.store).unwrap();
    }
    src.push_str("    }\n}\n");
    Ok(FusedKernel {
        name,
        source: src,
        cache_key: key,
        dtype,
        patterns: patterns.to_vec(),
        params,
        n_outputs: program.outputs.len(),
        n_scalars,
    })
}
// ANCHOR_END: generate

/// 16 hex digits of the SHA-256 of `s`: a kernel name unique per key.
fn short_hash(s: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes())[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl FusedKernel {
    /// A C++ function `void {name}_host(void** params, unsigned grid,
    /// unsigned block)` that runs the kernel on the host, one simulated
    /// thread after another, taking its arguments from a `cuLaunchKernel`
    /// parameter array. Compiled with a shim that defines `__global__`,
    /// `threadIdx` and friends, it tests the generated code and the
    /// argument array ([`FusedArgs`]) without a GPU.
    pub fn host_entry_source(&self) -> String {
        let storage = types(self.dtype).map(|t| t.storage).unwrap_or("float");
        let args: Vec<String> = self
            .params
            .iter()
            .enumerate()
            .map(|(k, p)| match p {
                Param::Output(_) => format!("*({storage}**)p[{k}]"),
                Param::Input(_) => format!("*(const {storage}**)p[{k}]"),
                Param::Scalar(_) => format!("*(double*)p[{k}]"),
                Param::Len => format!("*(unsigned long long*)p[{k}]"),
                Param::Shape | Param::Strides(_) => format!("*(cd_dims*)p[{k}]"),
            })
            .collect();
        format!(
            "extern \"C\" void {name}_host(void** p, unsigned grid, unsigned block) {{\n    \
             gridDim.x = grid; blockDim.x = block;\n    \
             for (unsigned b = 0; b < grid; ++b) for (unsigned t = 0; t < block; ++t) {{\n        \
             blockIdx.x = b; threadIdx.x = t;\n        {name}({});\n    }}\n}}\n",
            args.join(", "),
            name = self.name
        )
    }
}

// ANCHOR: args
/// The arguments of one launch of a [`FusedKernel`], laid out so that
/// [`FusedArgs::params`] gives the `void*` array `cuLaunchKernel` takes:
/// one pointer per parameter, pointing at its value.
#[derive(Debug, Clone)]
pub struct FusedArgs {
    outputs: Vec<DevicePtr>,
    inputs: Vec<DevicePtr>,
    scalars: Vec<f64>,
    n: u64,
    shape: KernelDims,
    strides: Vec<KernelDims>,
    params: Vec<Param>,
}

impl FusedArgs {
    /// `outputs`: one contiguous block per output, `n` elements each.
    /// `inputs`: each input's block (its start, element 0 of the storage)
    /// and the layout it is read through; the layout's offset is added to
    /// the pointer here.
    pub fn new(
        kernel: &FusedKernel,
        outputs: &[DevicePtr],
        inputs: &[(DevicePtr, &Layout)],
        scalars: &[f64],
    ) -> Result<FusedArgs> {
        if outputs.len() != kernel.n_outputs
            || inputs.len() != kernel.patterns.len()
            || scalars.len() < kernel.n_scalars
        {
            return Err(Error::invalid(
                "fused",
                format!(
                    "kernel {} takes {} outputs, {} inputs, {} scalars; given {}, {}, {}",
                    kernel.name,
                    kernel.n_outputs,
                    kernel.patterns.len(),
                    kernel.n_scalars,
                    outputs.len(),
                    inputs.len(),
                    scalars.len()
                ),
            ));
        }
        let elem = kernel.dtype.size_in_bytes() as u64;
        let first = inputs.first().map(|i| i.1);
        let n = first.map_or(0, |l| l.elem_count()) as u64;
        let shape = first.map_or_else(KernelDims::default, |l| KernelDims::from_slice(l.dims()));
        let mut strides = vec![KernelDims::default(); inputs.len()];
        for (k, ((_, layout), pattern)) in inputs.iter().zip(&kernel.patterns).enumerate() {
            // A contiguous layout read as strided is fine; the reverse is not.
            if *pattern == InputPattern::Contiguous && !layout.is_contiguous() {
                return Err(Error::invalid(
                    "fused",
                    format!("input {k} is strided but the kernel reads it as contiguous"),
                ));
            }
            if layout.elem_count() as u64 != n {
                return Err(Error::invalid("fused", "inputs of different shapes"));
            }
            strides[k] = KernelDims::from_slice(layout.strides());
        }
        Ok(FusedArgs {
            outputs: outputs.to_vec(),
            inputs: inputs
                .iter()
                .map(|(p, l)| p + l.offset() as u64 * elem)
                .collect(),
            scalars: scalars.to_vec(),
            n,
            shape,
            strides,
            params: kernel.params.clone(),
        })
    }

    /// Elements to compute.
    pub fn len(&self) -> usize {
        self.n as usize
    }
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The `cuLaunchKernel` parameter array. The pointers point into
    /// `self`, which must stay alive (and unmoved) until the launch call
    /// returns; the driver copies the values then.
    pub fn params(&mut self) -> Vec<*mut c_void> {
        let mut out = Vec::with_capacity(self.params.len());
        for p in &self.params {
            let ptr: *mut c_void = match *p {
                Param::Output(i) => &mut self.outputs[i] as *mut DevicePtr as *mut c_void,
                Param::Input(i) => &mut self.inputs[i] as *mut DevicePtr as *mut c_void,
                Param::Scalar(i) => &mut self.scalars[i] as *mut f64 as *mut c_void,
                Param::Len => &mut self.n as *mut u64 as *mut c_void,
                Param::Shape => &mut self.shape as *mut KernelDims as *mut c_void,
                Param::Strides(i) => &mut self.strides[i] as *mut KernelDims as *mut c_void,
            };
            out.push(ptr);
        }
        out
    }
}
// ANCHOR_END: args

/// Launches a fused kernel on any runtime: 256 threads a block, one
/// thread per element up to 2^24 elements (65,536 blocks, hundreds per
/// multiprocessor), beyond which the grid-stride loop gives each thread
/// several elements. An empty launch does nothing.
pub fn launch_fused<R: Runtime + ?Sized>(
    runtime: &R,
    kernel: &FusedKernel,
    args: &mut FusedArgs,
) -> Result<()> {
    if args.is_empty() {
        return Ok(());
    }
    let cfg = LaunchConfig::for_elements(args.len().min(1 << 24), 256);
    let mut params = args.params();
    runtime.launch(&kernel.name, cfg, &mut params)
}

// ANCHOR: say_once
/// A message printed at most once per process: a fallback worth knowing
/// about, not worth repeating at every step.
#[derive(Debug, Default)]
pub struct SayOnce(AtomicBool);

impl SayOnce {
    pub const fn new() -> Self {
        SayOnce(AtomicBool::new(false))
    }
    /// Prints `message` to standard error the first time; returns whether
    /// it printed.
    pub fn say(&self, message: impl FnOnce() -> String) -> bool {
        if self.0.swap(true, Ordering::Relaxed) {
            return false;
        }
        eprintln!("{}", message());
        true
    }
    /// Has the message been printed?
    pub fn said(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

static UNFUSED_FALLBACK: SayOnce = SayOnce::new();

/// Called by the CUDA backend when it cannot compile fused programs (no
/// NVRTC) and runs them one primitive at a time instead: says so once.
pub fn note_unfused_fallback(reason: &str) -> bool {
    UNFUSED_FALLBACK
        .say(|| format!("candle: cuda runs fused elementwise programs unfused (slower): {reason}"))
}
// ANCHOR_END: say_once
