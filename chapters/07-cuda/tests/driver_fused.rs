//! Generated fused kernels on a real GPU: allocated through the caching
//! allocator, launched through the driver, compared with the CPU backend.
//!
//! The PTX comes from NVRTC when the GPU machine has it, else from
//! `$CANDLE_FUSED_PTX_DIR`, where `tests/codegen.rs` writes it on a machine
//! with NVRTC (see `scripts/gpu-check-driver.sh`). Without a GPU: one line.

use chapter_02::backend::{BinaryOp, Program, UnaryOp};
use chapter_02::{Backend, BackendStorage, CpuBackend, CpuStorage, DType, Layout, Shape};
use chapter_07::allocator::CachingAllocator;
use chapter_07::codegen::{generate, FusedArgs, InputPattern, NVRTC_OPTIONS};
use chapter_07::driver::{device_count, driver_library_present, Driver};
use chapter_07::{nvrtc, LaunchConfig, Runtime};
use std::sync::Arc;

fn gpu() -> Option<Arc<Driver>> {
    if !driver_library_present() || !device_count().is_ok_and(|n| n > 0) {
        println!("skipped: no GPU");
        return None;
    }
    Some(Arc::new(Driver::open(0).unwrap()))
}

/// The PTX of a generated kernel for this GPU, or `None` (with a line).
fn ptx_for(name: &str, source: &str, cc: u32) -> Option<String> {
    let arch = if cc >= 90 { 90 } else { 80 };
    if nvrtc::nvrtc_available() {
        let c = nvrtc::compile_ptx(name, source, &[], arch, NVRTC_OPTIONS).unwrap();
        return Some(c.ptx);
    }
    let dir = std::env::var_os("CANDLE_FUSED_PTX_DIR")?;
    let path = std::path::Path::new(&dir).join(format!("{name}.sm_{arch}.ptx"));
    match std::fs::read_to_string(&path) {
        Ok(p) => Some(p),
        Err(_) => {
            println!("skipped {name}: no NVRTC and no {}", path.display());
            None
        }
    }
}

/// `out = sigmoid(a) * b + tanh(a)` over `[64, 1000]`, with `b` a row
/// broadcast down the rows (stride 0): the cases the CPU comparison in
/// `codegen.rs` covers, now on the device.
fn program() -> Program {
    let mut p = Program::new();
    let (a, b) = (p.input(0), p.input(1));
    let s = p.unary(UnaryOp::Sigmoid, a);
    let sb = p.binary(BinaryOp::Mul, s, b);
    let t = p.unary(UnaryOp::Tanh, a);
    let r = p.binary(BinaryOp::Add, sb, t);
    let q = p.unary(UnaryOp::Affine { mul: 0.5, add: 1.0 }, r);
    p.output(r);
    p.output(q);
    p
}

fn bytes_of(s: &CpuStorage) -> Vec<u8> {
    match s {
        CpuStorage::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        CpuStorage::F64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        _ => unreachable!(),
    }
}

#[test]
fn driver_runs_a_generated_fused_kernel_like_the_cpu() {
    let Some(d) = gpu() else { return };
    let (ma, mi) = d.compute_capability();
    let alloc = CachingAllocator::new(d.clone());
    let p = program();
    for dtype in [DType::F32, DType::F64] {
        let (rows, cols) = (64usize, 1000usize);
        let a_l = Layout::contiguous(Shape::from(vec![rows, cols]));
        let b_l = Layout::new(Shape::from(vec![rows, cols]), vec![0, 1], 0);
        let av: Vec<f64> = (0..rows * cols)
            .map(|i| ((i % 97) as f64 - 48.0) / 7.0)
            .collect();
        let bv: Vec<f64> = (0..cols).map(|i| (i as f64).sin()).collect();
        let (a, b) = match dtype {
            DType::F32 => (
                CpuStorage::F32(av.iter().map(|&x| x as f32).collect()),
                CpuStorage::F32(bv.iter().map(|&x| x as f32).collect()),
            ),
            _ => (CpuStorage::F64(av.clone()), CpuStorage::F64(bv.clone())),
        };
        let patterns = [
            InputPattern::of(&a_l).unwrap(),
            InputPattern::of(&b_l).unwrap(),
        ];
        let k = generate(&p, dtype, &patterns).unwrap();
        let Some(ptx) = ptx_for(&k.name, &k.source, ma * 10 + mi) else {
            continue;
        };
        d.load_ptx(&k.name, &ptx).unwrap();

        let elem = dtype.size_in_bytes();
        let da = alloc.alloc(a.len() * elem).unwrap();
        let db = alloc.alloc(b.len() * elem).unwrap();
        d.copy_htod(da.ptr(), &bytes_of(&a)).unwrap();
        d.copy_htod(db.ptr(), &bytes_of(&b)).unwrap();
        let outs: Vec<_> = (0..2)
            .map(|_| alloc.alloc(rows * cols * elem).unwrap())
            .collect();
        let out_ptrs: Vec<u64> = outs.iter().map(|o| o.ptr()).collect();
        let mut args =
            FusedArgs::new(&k, &out_ptrs, &[(da.ptr(), &a_l), (db.ptr(), &b_l)], &[]).unwrap();
        let mut params = args.params();
        let cfg = LaunchConfig::for_elements(args.len().min(256 * 1024), 256);
        d.launch(&k.name, cfg, &mut params).unwrap();
        d.synchronize().unwrap();

        let cpu = CpuBackend
            .fused(
                &p,
                &[
                    (&a as &dyn BackendStorage, &a_l),
                    (&b as &dyn BackendStorage, &b_l),
                ],
                &[],
            )
            .unwrap();
        for (j, o) in outs.iter().enumerate() {
            let mut back = vec![0u8; rows * cols * elem];
            d.copy_dtoh(&mut back, o.ptr()).unwrap();
            let want = cpu[j].as_any().downcast_ref::<CpuStorage>().unwrap();
            for i in 0..rows * cols {
                let got = match dtype {
                    DType::F32 => {
                        f32::from_le_bytes(back[4 * i..4 * i + 4].try_into().unwrap()) as f64
                    }
                    _ => f64::from_le_bytes(back[8 * i..8 * i + 8].try_into().unwrap()),
                };
                let w = want.get_f64(i);
                let eps = if dtype == DType::F32 {
                    f32::EPSILON as f64
                } else {
                    f64::EPSILON
                };
                assert!(
                    (got - w).abs() <= 8.0 * eps * w.abs().max(1.0),
                    "{dtype:?} output {j} element {i}: GPU {got}, CPU {w}"
                );
            }
        }
        println!("{} ({dtype:?}) matches the CPU on {}", k.name, d.describe());
    }
    let s = alloc.stats();
    println!("allocator: {s:?}");
    assert_eq!(s.allocated_bytes, 0);
}
