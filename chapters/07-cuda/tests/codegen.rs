//! Fused programs as generated CUDA C: the kernels compute what the CPU
//! backend computes, checked without a GPU by compiling the very same
//! source with the host's C++ compiler and a shim that runs a grid of
//! threads as a loop; and they compile cleanly with NVRTC (when present).

use chapter_02::backend::{BinaryOp, Program, UnaryOp};
use chapter_02::{
    bf16, f16, Backend, BackendStorage, CpuBackend, CpuStorage, DType, Layout, Shape,
};
use chapter_07::codegen::{
    cache_key, generate, generate_with, FusedArgs, FusedKernel, HalfRounding, InputPattern,
    SayOnce, NVRTC_OPTIONS,
};
use chapter_07::nvrtc;
use std::ffi::{c_char, c_int, c_void, CString};
use std::path::PathBuf;
use std::process::Command;

#[path = "codegen-common/programs.rs"]
mod programs;

// ---------------------------------------------------------------------
// Loading a host-compiled kernel library.

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}
const RTLD_NOW: c_int = 2;

/// What a GPU provides, for the host compiler: the kernel qualifiers
/// mean nothing, and the thread coordinates are globals the generated
/// `*_host` entry sets before each simulated thread.
const HOST_SHIM: &str = r#"
#include <math.h>
struct cd_dim3 { unsigned x, y, z; };
static cd_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
"#;

type HostEntry = unsafe extern "C" fn(*mut *mut c_void, u32, u32);

/// Kernels compiled for the host, one shared library for all of them.
struct HostKernels {
    handle: *mut c_void,
}

impl HostKernels {
    /// `None` (with one line saying why) when there is no C++ compiler.
    fn build(kernels: &[FusedKernel]) -> Option<HostKernels> {
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        if Command::new(&cxx).arg("--version").output().is_err() {
            println!("skipped: no host C++ compiler (`{cxx}`) to run generated kernels on");
            return None;
        }
        // A fresh path per library: dlopen returns the loaded copy for a
        // path it has seen.
        static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let build = BUILDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("candle-codegen-{}-{build}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut src = String::from(HOST_SHIM);
        let mut seen = std::collections::HashSet::new();
        for k in kernels {
            if seen.insert(k.name.clone()) {
                src.push_str(&k.source);
                src.push_str(&k.host_entry_source());
            }
        }
        let cpp = dir.join("kernels.cpp");
        let so = dir.join("kernels.so");
        std::fs::write(&cpp, &src).unwrap();
        // No fused multiply-add and no fast maths: the CPU backend rounds
        // each multiply and each add.
        let out = Command::new(&cxx)
            .args([
                "-std=c++17",
                "-O1",
                "-ffp-contract=off",
                "-fno-fast-math",
                "-fPIC",
                "-shared",
            ])
            .args(["-Wall", "-Werror", "-Wno-unused-function"])
            .arg("-o")
            .arg(&so)
            .arg(&cpp)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "host compile of generated kernels failed:\n{}\nsource in {}",
            String::from_utf8_lossy(&out.stderr),
            cpp.display()
        );
        let path = CString::new(so.to_str().unwrap()).unwrap();
        // SAFETY: a library we just built; its initialisers do nothing.
        let handle = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
        assert!(!handle.is_null(), "dlopen {}", so.display());
        // The loaded library stays mapped after its file is removed.
        let _ = std::fs::remove_dir_all(&dir);
        Some(HostKernels { handle })
    }

    fn entry(&self, k: &FusedKernel) -> HostEntry {
        let sym = CString::new(format!("{}_host", k.name)).unwrap();
        // SAFETY: the symbol is a function of this signature (generated).
        unsafe {
            let p = dlsym(self.handle, sym.as_ptr());
            assert!(!p.is_null(), "no symbol {}_host", k.name);
            std::mem::transmute::<*mut c_void, HostEntry>(p)
        }
    }
}

// ---------------------------------------------------------------------
// Test data.

/// A host buffer of `dtype` elements made from `f64`s.
fn storage(dtype: DType, v: &[f64]) -> CpuStorage {
    match dtype {
        DType::F32 => CpuStorage::F32(v.iter().map(|&x| x as f32).collect()),
        DType::F64 => CpuStorage::F64(v.to_vec()),
        DType::F16 => CpuStorage::F16(v.iter().map(|&x| f16::from_f64(x)).collect()),
        DType::BF16 => CpuStorage::BF16(v.iter().map(|&x| bf16::from_f64(x)).collect()),
        _ => unreachable!(),
    }
}

fn address(s: &CpuStorage) -> u64 {
    match s {
        CpuStorage::F32(v) => v.as_ptr() as u64,
        CpuStorage::F64(v) => v.as_ptr() as u64,
        CpuStorage::F16(v) => v.as_ptr() as u64,
        CpuStorage::BF16(v) => v.as_ptr() as u64,
        _ => unreachable!(),
    }
}

/// Element `i` of raw output bytes, widened to `f64`.
fn read(dtype: DType, bytes: &[u8], i: usize) -> f64 {
    let at = |w: usize| &bytes[i * w..(i + 1) * w];
    match dtype {
        DType::F32 => f32::from_le_bytes(at(4).try_into().unwrap()) as f64,
        DType::F64 => f64::from_le_bytes(at(8).try_into().unwrap()),
        DType::F16 => f16::from_bits(u16::from_le_bytes(at(2).try_into().unwrap())).to_f64(),
        DType::BF16 => bf16::from_bits(u16::from_le_bytes(at(2).try_into().unwrap())).to_f64(),
        _ => unreachable!(),
    }
}

/// Deterministic values with the awkward ones first: zeros of both signs,
/// infinities, NaN, tiny and huge numbers, then a spread.
fn values(n: usize, seed: u64) -> Vec<f64> {
    let special = [
        0.0,
        -0.0,
        1.0,
        -1.0,
        0.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        1e-30,
        -3e4,
        7.25,
        -0.375,
    ];
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|i| {
            if i < special.len() {
                special[(i + 5 * seed as usize) % special.len()]
            } else {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let u = (s >> 11) as f64 / (1u64 << 53) as f64;
                (u - 0.5) * 8.0
            }
        })
        .collect()
}

/// How close the kernel's answer must be to the CPU's.
#[derive(Clone, Copy, Debug)]
enum Tolerance {
    /// The same bits (NaNs of any payload match; zeros must match in sign).
    Exact,
    /// Within this many units of the dtype's machine epsilon, relatively.
    Eps(f64),
}

fn close(a: f64, b: f64, dtype: DType, tol: Tolerance) -> bool {
    if a.is_nan() || b.is_nan() {
        return a.is_nan() && b.is_nan();
    }
    match tol {
        Tolerance::Exact => a.to_bits() == b.to_bits(),
        Tolerance::Eps(k) => {
            if a == b {
                return true;
            }
            let eps = match dtype {
                DType::F32 => f32::EPSILON as f64,
                DType::F64 => f64::EPSILON,
                DType::F16 => 9.77e-4,
                _ => 7.82e-3,
            };
            (a - b).abs() <= k * eps * a.abs().max(b.abs()) + 1e-300
        }
    }
}

/// One test case: a program, input layouts over a shape, scalars.
struct Case {
    what: String,
    program: Program,
    shape: Vec<usize>,
    /// Per input: `None` for contiguous, or `(strides, offset, storage len)`.
    layouts: Vec<Option<(Vec<usize>, usize, usize)>>,
    scalars: Vec<f64>,
    tol: Tolerance,
}

impl Case {
    fn contiguous(what: &str, program: Program, n_inputs: usize, tol: Tolerance) -> Case {
        Case {
            what: what.into(),
            program,
            shape: vec![5, 13],
            layouts: vec![None; n_inputs],
            scalars: vec![],
            tol,
        }
    }
    fn layout(&self, i: usize) -> (Layout, usize) {
        let shape = Shape::from(self.shape.clone());
        match &self.layouts[i] {
            None => {
                let l = Layout::contiguous(shape);
                let n = l.elem_count();
                (l, n)
            }
            Some((strides, offset, len)) => (Layout::new(shape, strides.clone(), *offset), *len),
        }
    }
    fn patterns(&self) -> Vec<InputPattern> {
        (0..self.layouts.len())
            .map(|i| InputPattern::of(&self.layout(i).0).unwrap())
            .collect()
    }
}

fn unary_ops() -> Vec<(UnaryOp, Tolerance)> {
    use Tolerance::*;
    vec![
        (UnaryOp::Neg, Exact),
        (UnaryOp::Recip, Exact),
        (UnaryOp::Sqr, Exact),
        (UnaryOp::Sqrt, Exact),
        (UnaryOp::Exp, Eps(4.0)),
        (UnaryOp::Log, Eps(4.0)),
        (UnaryOp::Abs, Exact),
        (UnaryOp::Sign, Exact),
        (UnaryOp::Sin, Eps(4.0)),
        (UnaryOp::Cos, Eps(4.0)),
        (UnaryOp::Tanh, Eps(4.0)),
        (UnaryOp::Sigmoid, Eps(4.0)),
        (UnaryOp::Relu, Exact),
        (UnaryOp::Erf, Eps(4.0)),
        (
            UnaryOp::Affine {
                mul: 0.1,
                add: -2.5,
            },
            Exact,
        ),
        (UnaryOp::Powf(1.5), Eps(4.0)),
        (
            UnaryOp::Clamp {
                min: -1.0,
                max: 2.0,
            },
            Exact,
        ),
        (UnaryOp::LeakyRelu(0.01), Exact),
    ]
}

fn binary_ops() -> Vec<(BinaryOp, Tolerance)> {
    use Tolerance::*;
    vec![
        (BinaryOp::Add, Exact),
        (BinaryOp::Sub, Exact),
        (BinaryOp::Mul, Exact),
        (BinaryOp::Div, Exact),
        (BinaryOp::Pow, Eps(4.0)),
        (BinaryOp::Maximum, Exact),
        (BinaryOp::Minimum, Exact),
    ]
}

/// An Adam step as a program: `(p, g, m, v) -> (p', m', v')` with the
/// learning rate and bias corrections as runtime scalars.
fn adam() -> Program {
    let mut p = Program::new();
    let (w, g, m, v) = (p.input(0), p.input(1), p.input(2), p.input(3));
    let (lr, bc1, bc2) = (p.scalar(0), p.scalar(1), p.scalar(2));
    let b1 = p.constant(0.9);
    let one_b1 = p.constant(0.1);
    let m1 = p.binary(BinaryOp::Mul, m, b1);
    let m2 = p.binary(BinaryOp::Mul, g, one_b1);
    let m_new = p.binary(BinaryOp::Add, m1, m2);
    let g2 = p.unary(UnaryOp::Sqr, g);
    let v1 = p.unary(
        UnaryOp::Affine {
            mul: 0.999,
            add: 0.0,
        },
        v,
    );
    let v2 = p.unary(
        UnaryOp::Affine {
            mul: 0.001,
            add: 0.0,
        },
        g2,
    );
    let v_new = p.binary(BinaryOp::Add, v1, v2);
    let mh = p.binary(BinaryOp::Div, m_new, bc1);
    let vh = p.binary(BinaryOp::Div, v_new, bc2);
    let sq = p.unary(UnaryOp::Sqrt, vh);
    let den = p.unary(
        UnaryOp::Affine {
            mul: 1.0,
            add: 1e-8,
        },
        sq,
    );
    let upd = p.binary(BinaryOp::Div, mh, den);
    let step = p.binary(BinaryOp::Mul, upd, lr);
    let w_new = p.binary(BinaryOp::Sub, w, step);
    // Dead code: never generated (and must not make a warning).
    let _dead = p.unary(UnaryOp::Exp, g);
    p.output(w_new);
    p.output(m_new);
    p.output(v_new);
    p
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    for (op, tol) in unary_ops() {
        let mut p = Program::new();
        let x = p.input(0);
        let y = p.unary(op, x);
        p.output(y);
        out.push(Case::contiguous(&format!("unary {op:?}"), p, 1, tol));
    }
    for (op, tol) in binary_ops() {
        let mut p = Program::new();
        let (x, y) = (p.input(0), p.input(1));
        let z = p.binary(op, x, y);
        p.output(z);
        out.push(Case::contiguous(&format!("binary {op:?}"), p, 2, tol));
    }
    // Scalars, constants, an output that is an input, one returned twice,
    // one that is a constant.
    {
        let mut p = Program::new();
        let x = p.input(0);
        let s = p.scalar(0);
        let c = p.constant(f64::INFINITY);
        let xs = p.binary(BinaryOp::Mul, x, s);
        let m = p.binary(BinaryOp::Minimum, xs, c);
        let k = p.constant(-0.0);
        p.output(m);
        p.output(x);
        p.output(m);
        p.output(k);
        let mut case = Case::contiguous(
            "scalars, constants, repeated outputs",
            p,
            1,
            Tolerance::Exact,
        );
        case.scalars = vec![0.3];
        out.push(case);
    }
    // Adam over contiguous inputs.
    {
        let mut case = Case::contiguous("adam step", adam(), 4, Tolerance::Exact);
        case.scalars = vec![1e-3, 0.19, 0.0019];
        out.push(case);
    }
    // Strided: a transposed input, a broadcast row, and a view with an
    // offset, shape [3, 4, 5].
    {
        let mut p = Program::new();
        let (a, b, c) = (p.input(0), p.input(1), p.input(2));
        let ab = p.binary(BinaryOp::Mul, a, b);
        let t = p.unary(UnaryOp::Tanh, c);
        let r = p.binary(BinaryOp::Add, ab, t);
        p.output(r);
        out.push(Case {
            what: "transposed, broadcast and offset inputs".into(),
            program: p,
            shape: vec![3, 4, 5],
            layouts: vec![
                // [5, 4, 3] storage read as its transpose.
                Some((vec![1, 3, 12], 0, 60)),
                // One row of 5 broadcast over [3, 4].
                Some((vec![0, 0, 1], 0, 5)),
                // Every other element of a bigger buffer, from element 7.
                Some((vec![40, 10, 2], 7, 7 + 120)),
            ],
            scalars: vec![],
            tol: Tolerance::Eps(4.0),
        });
    }
    // The GPU test's program (`driver_fused.rs`): a row broadcast down
    // the rows, and two outputs.
    out.push(Case {
        what: "sigmoid, tanh and a broadcast row".into(),
        program: programs::sigmoid_tanh(),
        shape: vec![6, 11],
        layouts: vec![None, Some((vec![0, 1], 0, 11))],
        scalars: vec![],
        tol: Tolerance::Eps(4.0),
    });
    // A strided view mixed with a contiguous input, rank 1.
    {
        let mut p = Program::new();
        let (a, b) = (p.input(0), p.input(1));
        let r = p.binary(BinaryOp::Sub, a, b);
        p.output(r);
        out.push(Case {
            what: "rank-1 strided minus contiguous".into(),
            program: p,
            shape: vec![37],
            layouts: vec![Some((vec![3], 1, 112)), None],
            scalars: vec![],
            tol: Tolerance::Exact,
        });
    }
    out
}

/// The CPU backend's answer for `case` in `dtype`, and the inputs it read.
fn run_cpu(case: &Case, dtype: DType) -> (Vec<CpuStorage>, Vec<Vec<f64>>) {
    let inputs: Vec<CpuStorage> = (0..case.layouts.len())
        .map(|i| {
            let (_, len) = case.layout(i);
            storage(dtype, &values(len, i as u64 * 2 + (dtype as u64 % 2)))
        })
        .collect();
    let layouts: Vec<Layout> = (0..case.layouts.len()).map(|i| case.layout(i).0).collect();
    let args: Vec<(&dyn BackendStorage, &Layout)> = inputs
        .iter()
        .zip(&layouts)
        .map(|(s, l)| (s as &dyn BackendStorage, l))
        .collect();
    let outs = CpuBackend
        .fused(&case.program, &args, &case.scalars)
        .unwrap();
    let outs = outs
        .iter()
        .map(|s| {
            let s = s.as_any().downcast_ref::<CpuStorage>().unwrap();
            (0..s.len()).map(|i| s.get_f64(i)).collect()
        })
        .collect();
    (inputs, outs)
}

/// Runs the host-compiled kernel on the same inputs; returns each output
/// as raw bytes.
fn run_host(
    kernels: &HostKernels,
    kernel: &FusedKernel,
    case: &Case,
    inputs: &[CpuStorage],
) -> Vec<Vec<u8>> {
    let dtype = kernel.dtype;
    let layouts: Vec<Layout> = (0..case.layouts.len()).map(|i| case.layout(i).0).collect();
    let n = layouts[0].elem_count();
    let mut outs: Vec<Vec<u8>> = (0..kernel.n_outputs)
        .map(|_| vec![0xAB; n * dtype.size_in_bytes()])
        .collect();
    let out_ptrs: Vec<u64> = outs.iter_mut().map(|o| o.as_mut_ptr() as u64).collect();
    let in_ptrs: Vec<(u64, &Layout)> = inputs
        .iter()
        .zip(&layouts)
        .map(|(s, l)| (address(s), l))
        .collect();
    let mut args = FusedArgs::new(kernel, &out_ptrs, &in_ptrs, &case.scalars).unwrap();
    let mut params = args.params();
    // A small grid, so the grid-stride loop goes round several times.
    // SAFETY: every pointer in `params` is alive until the call returns.
    unsafe { kernels.entry(kernel)(params.as_mut_ptr(), 3, 4) };
    outs
}

fn compare(case: &Case, dtype: DType, cpu: &[Vec<f64>], host: &[Vec<u8>]) {
    let tol = match (case.tol, dtype) {
        // Halves are rounded at the end: a one-bit difference in f32
        // can become one half-ulp.
        (Tolerance::Eps(_), DType::F16 | DType::BF16) => Tolerance::Eps(1.0),
        (t, _) => t,
    };
    for (j, (c, h)) in cpu.iter().zip(host).enumerate() {
        for (i, &want) in c.iter().enumerate() {
            let got = read(dtype, h, i);
            assert!(
                close(got, want, dtype, tol),
                "{} ({dtype:?}), output {j}, element {i}: kernel {got:e}, CPU {want:e}",
                case.what
            );
        }
    }
}

#[test]
fn codegen_fused_kernels_match_the_cpu_backend_on_the_host() {
    let dtypes = [DType::F32, DType::F64, DType::F16, DType::BF16];
    let cases = cases();
    let mut kernels = Vec::new();
    for case in &cases {
        for dtype in dtypes {
            kernels.push(generate(&case.program, dtype, &case.patterns()).unwrap());
        }
    }
    let Some(lib) = HostKernels::build(&kernels) else {
        return;
    };
    let mut k = kernels.iter();
    for case in &cases {
        for dtype in dtypes {
            let kernel = k.next().unwrap();
            let (inputs, cpu) = run_cpu(case, dtype);
            let host = run_host(&lib, kernel, case, &inputs);
            compare(case, dtype, &cpu, &host);
        }
    }
}

#[test]
fn codegen_matches_run_unfused_for_f32_and_f64() {
    // For f32 and f64 the CPU's fused and unfused paths agree; check the
    // kernel against the reference semantics directly too.
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| matches!(c.tol, Tolerance::Exact))
        .collect();
    let mut kernels = Vec::new();
    for case in &cases {
        for dtype in [DType::F32, DType::F64] {
            kernels.push(generate(&case.program, dtype, &case.patterns()).unwrap());
        }
    }
    let Some(lib) = HostKernels::build(&kernels) else {
        return;
    };
    let mut k = kernels.iter();
    for case in &cases {
        for dtype in [DType::F32, DType::F64] {
            let kernel = k.next().unwrap();
            let (inputs, _) = run_cpu(case, dtype);
            let layouts: Vec<Layout> = (0..case.layouts.len()).map(|i| case.layout(i).0).collect();
            let args: Vec<(&dyn BackendStorage, &Layout)> = inputs
                .iter()
                .zip(&layouts)
                .map(|(s, l)| (s as &dyn BackendStorage, l))
                .collect();
            let unfused = case
                .program
                .run_unfused(&CpuBackend, &args, &case.scalars)
                .unwrap();
            let unfused: Vec<Vec<f64>> = unfused
                .iter()
                .map(|s| {
                    let s = s.as_any().downcast_ref::<CpuStorage>().unwrap();
                    (0..s.len()).map(|i| s.get_f64(i)).collect()
                })
                .collect();
            let host = run_host(&lib, kernel, case, &inputs);
            compare(case, dtype, &unfused, &host);
        }
    }
}

#[test]
fn codegen_half_conversions_round_like_the_half_crate() {
    // The kernel's own f32 -> f16/bf16 rounding, checked on every f16 and
    // bf16 value, the midpoints between them and out-of-range numbers.
    let mut p = Program::new();
    let x = p.input(0);
    p.output(x);
    let k16 = generate(&p, DType::F16, &[InputPattern::Contiguous]).unwrap();
    let kb = generate(&p, DType::BF16, &[InputPattern::Contiguous]).unwrap();
    let Some(lib) = HostKernels::build(&[k16.clone(), kb.clone()]) else {
        return;
    };
    // Identity program: load (widen) then store (round) must give back
    // every one of the 65536 bit patterns (NaNs stay NaN).
    for (kernel, dtype) in [(&k16, DType::F16), (&kb, DType::BF16)] {
        let bits: Vec<u16> = (0..=u16::MAX).collect();
        let input = match dtype {
            DType::F16 => CpuStorage::F16(bits.iter().map(|&b| f16::from_bits(b)).collect()),
            _ => CpuStorage::BF16(bits.iter().map(|&b| bf16::from_bits(b)).collect()),
        };
        let case = Case {
            what: format!("{dtype:?} identity"),
            program: p.clone(),
            shape: vec![65536],
            layouts: vec![None],
            scalars: vec![],
            tol: Tolerance::Exact,
        };
        let out = run_host(&lib, kernel, &case, &[input]);
        for (i, &b) in bits.iter().enumerate() {
            let got = u16::from_le_bytes([out[0][2 * i], out[0][2 * i + 1]]);
            let nan = match dtype {
                DType::F16 => f16::from_bits(b).is_nan(),
                _ => bf16::from_bits(b).is_nan(),
            };
            if nan {
                let still_nan = match dtype {
                    DType::F16 => f16::from_bits(got).is_nan(),
                    _ => bf16::from_bits(got).is_nan(),
                };
                assert!(still_nan, "{dtype:?} NaN {b:#06x} came back as {got:#06x}");
            } else {
                assert_eq!(got, b, "{dtype:?} bits {b:#06x} came back as {got:#06x}");
            }
        }
    }
    // Rounding from f32: an f32 program whose result is stored as f16.
    // Compare the kernel's store with the half crate on many f32s through
    // `x * 1` (computed in f32, rounded on the store).
    let mut p = Program::new();
    let x = p.input(0);
    let one = p.constant(1.0);
    let y = p.binary(BinaryOp::Mul, x, one);
    p.output(y);
    for dtype in [DType::F16, DType::BF16] {
        let kernel = generate(&p, dtype, &[InputPattern::Contiguous]).unwrap();
        let lib = HostKernels::build(std::slice::from_ref(&kernel)).unwrap();
        let vals = values(4096, 11);
        let case = Case {
            what: format!("{dtype:?} rounding"),
            program: p.clone(),
            shape: vec![vals.len()],
            layouts: vec![None],
            scalars: vec![],
            tol: Tolerance::Exact,
        };
        let input = storage(dtype, &vals);
        let (_, cpu) = {
            let l = Layout::contiguous(Shape::from(vec![vals.len()]));
            let outs = CpuBackend
                .fused(&p, &[(&input as &dyn BackendStorage, &l)], &[])
                .unwrap();
            let s = outs[0]
                .as_any()
                .downcast_ref::<CpuStorage>()
                .unwrap()
                .clone();
            (
                (),
                vec![(0..s.len()).map(|i| s.get_f64(i)).collect::<Vec<_>>()],
            )
        };
        let host = run_host(&lib, &kernel, &case, &[input]);
        compare(&case, dtype, &cpu, &host);
    }
}

#[test]
fn codegen_cache_key_names_program_dtype_and_layout_pattern() {
    let p = adam();
    let c4 = vec![InputPattern::Contiguous; 4];
    let mut s4 = c4.clone();
    s4[1] = InputPattern::Strided { rank: 2 };
    let k1 = generate(&p, DType::F32, &c4).unwrap();
    let k2 = generate(&p, DType::F32, &c4).unwrap();
    assert_eq!(k1, k2, "generation is deterministic");
    assert_eq!(k1.cache_key, cache_key(&p, DType::F32, &c4));
    let others = [
        generate(&p, DType::F64, &c4).unwrap(),
        generate(&p, DType::F32, &s4).unwrap(),
        generate(&adam_with_other_constant(), DType::F32, &c4).unwrap(),
    ];
    for o in &others {
        assert_ne!(o.cache_key, k1.cache_key);
        assert_ne!(o.name, k1.name);
    }
    // Scalars are arguments, not part of the source.
    assert!(!k1.source.contains("0.0019"));
    assert!(k1.source.contains("double s0"));
}

fn adam_with_other_constant() -> Program {
    let mut p = adam();
    p.instrs[7] = chapter_02::backend::Instr::Const(0.95);
    p
}

#[test]
fn codegen_rejects_what_it_cannot_generate() {
    let mut p = Program::new();
    let x = p.input(0);
    p.output(x);
    assert!(generate(&p, DType::I64, &[InputPattern::Contiguous]).is_err());
    assert!(
        generate(&p, DType::F32, &[]).is_err(),
        "program reads a missing input"
    );
    let l = Layout::new(Shape::from(vec![1usize; 9]), vec![2; 9], 0);
    assert!(
        InputPattern::of(&l).is_err() || l.is_contiguous(),
        "rank 9 strided"
    );
}

#[test]
fn codegen_say_once_says_once() {
    let once = SayOnce::new();
    assert!(!once.said());
    assert!(once.say(|| "candle: test message (expected in test output)".into()));
    assert!(!once.say(|| unreachable!("formatted only the first time")));
    assert!(once.said());
}

/// The generated source of several programs compiles with NVRTC, for
/// sm_80 and sm_90, without a warning. With `CANDLE_FUSED_PTX_DIR` set,
/// the PTX is written there (for a GPU machine without NVRTC to load).
#[test]
fn codegen_kernels_compile_with_nvrtc() {
    if let Some(why) = nvrtc::nvrtc_unavailable_reason() {
        println!("skipped: {why}");
        return;
    }
    let out_dir = std::env::var_os("CANDLE_FUSED_PTX_DIR").map(PathBuf::from);
    for case in cases() {
        for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
            let k = generate(&case.program, dtype, &case.patterns()).unwrap();
            for arch in [80, 90] {
                let c = nvrtc::compile_ptx(&k.name, &k.source, &[], arch, NVRTC_OPTIONS)
                    .unwrap_or_else(|e| panic!("{} ({dtype:?}): {e}\n{}", case.what, k.source));
                assert!(
                    c.log.is_empty(),
                    "{} ({dtype:?}) warns:\n{}\n{}",
                    case.what,
                    c.log,
                    k.source
                );
                assert!(c.ptx.contains(&format!(".entry {}", k.name)));
                if arch == 90 && dtype == DType::F32 {
                    // What `Driver::load_fused` asks for: a cubin for the GPU.
                    let cubin =
                        nvrtc::compile_cubin(&k.name, &k.source, &[], arch, NVRTC_OPTIONS).unwrap();
                    assert!(cubin.log.is_empty(), "{}", cubin.log);
                }
                if let Some(dir) = &out_dir {
                    std::fs::create_dir_all(dir).unwrap();
                    std::fs::write(dir.join(format!("{}.sm_{arch}.ptx", k.name)), &c.ptx).unwrap();
                }
            }
        }
    }
}

/// The per-instruction rounding of halves gives what the CPU gives one
/// primitive at a time.
#[test]
fn codegen_per_instruction_rounding_matches_run_unfused_for_halves() {
    let cases = cases();
    let dtypes = [DType::F16, DType::BF16];
    let mut kernels = Vec::new();
    for case in &cases {
        for dtype in dtypes {
            let k = generate_with(
                &case.program,
                dtype,
                &case.patterns(),
                HalfRounding::PerInstruction,
            )
            .unwrap();
            kernels.push(k);
        }
    }
    let Some(lib) = HostKernels::build(&kernels) else {
        return;
    };
    let mut k = kernels.iter();
    for case in &cases {
        for dtype in dtypes {
            let kernel = k.next().unwrap();
            assert!(kernel.cache_key.ends_with("round-each"));
            let (inputs, _) = run_cpu(case, dtype);
            let layouts: Vec<Layout> = (0..case.layouts.len()).map(|i| case.layout(i).0).collect();
            let args: Vec<(&dyn BackendStorage, &Layout)> = inputs
                .iter()
                .zip(&layouts)
                .map(|(s, l)| (s as &dyn BackendStorage, l))
                .collect();
            let unfused = case
                .program
                .run_unfused(&CpuBackend, &args, &case.scalars)
                .unwrap();
            let unfused: Vec<Vec<f64>> = unfused
                .iter()
                .map(|s| {
                    let s = s.as_any().downcast_ref::<CpuStorage>().unwrap();
                    (0..s.len()).map(|i| s.get_f64(i)).collect()
                })
                .collect();
            let host = run_host(&lib, kernel, case, &inputs);
            compare(case, dtype, &unfused, &host);
        }
    }
}

#[test]
fn codegen_args_check_what_they_are_given() {
    let mut p = Program::new();
    let (a, b) = (p.input(0), p.input(1));
    let s = p.scalar(0);
    let ab = p.binary(BinaryOp::Add, a, b);
    let r = p.binary(BinaryOp::Mul, ab, s);
    p.output(r);
    let contiguous = Layout::contiguous(Shape::from(vec![2, 3]));
    let transposed = Layout::new(Shape::from(vec![2, 3]), vec![1, 2], 0);
    let other_shape = Layout::contiguous(Shape::from(vec![3, 3]));
    let k = generate(&p, DType::F32, &[InputPattern::Contiguous; 2]).unwrap();
    assert_eq!(k.n_scalars, 1);
    let ok = FusedArgs::new(
        &k,
        &[0x100],
        &[(0x200, &contiguous), (0x300, &contiguous)],
        &[1.0],
    );
    assert_eq!(ok.unwrap().len(), 6);
    // A strided input for a kernel that reads it as contiguous.
    assert!(FusedArgs::new(
        &k,
        &[0x100],
        &[(0x200, &contiguous), (0x300, &transposed)],
        &[1.0]
    )
    .is_err());
    // Inputs of different sizes, a missing scalar, a missing output.
    assert!(FusedArgs::new(
        &k,
        &[0x100],
        &[(0x200, &contiguous), (0x300, &other_shape)],
        &[1.0]
    )
    .is_err());
    assert!(FusedArgs::new(
        &k,
        &[0x100],
        &[(0x200, &contiguous), (0x300, &contiguous)],
        &[]
    )
    .is_err());
    assert!(FusedArgs::new(
        &k,
        &[],
        &[(0x200, &contiguous), (0x300, &contiguous)],
        &[1.0]
    )
    .is_err());
    // A contiguous input may be read by a strided kernel; the offset is
    // added to the pointer (in bytes).
    let ks = generate(
        &p,
        DType::F32,
        &[InputPattern::Contiguous, InputPattern::Strided { rank: 2 }],
    )
    .unwrap();
    let shifted = Layout::new(Shape::from(vec![2, 3]), vec![3, 1], 5);
    let mut args = FusedArgs::new(
        &ks,
        &[0x100],
        &[(0x200, &shifted), (0x300, &contiguous)],
        &[1.0],
    )
    .unwrap();
    let params = args.params();
    assert_eq!(params.len(), ks.params.len());
    // SAFETY: parameter 1 is input 0's pointer, a u64 inside `args`.
    assert_eq!(unsafe { *(params[1] as *const u64) }, 0x200 + 5 * 4);
}
