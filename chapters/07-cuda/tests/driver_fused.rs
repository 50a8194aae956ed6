//! Generated fused kernels on a real GPU: allocated through the caching
//! allocator, launched through the driver, compared with the CPU backend.
//!
//! The PTX comes from NVRTC when the GPU machine has it, else from
//! `$CANDLE_FUSED_PTX_DIR`, where `tests/codegen.rs` writes it on a machine
//! with NVRTC (see `scripts/gpu-check.sh`). Without a GPU: one line.

use chapter_02::{Backend, BackendStorage, CpuBackend, CpuStorage, DType, Layout, Shape};
use chapter_07::allocator::CachingAllocator;
use chapter_07::codegen::{generate, launch_fused, FusedArgs, FusedKernel, InputPattern};
use chapter_07::driver::{device_count, driver_library_present, Driver};
use chapter_07::{nvrtc, Runtime};
use std::sync::Arc;

#[path = "codegen-common/programs.rs"]
mod programs;
use programs::sigmoid_tanh as program;

fn gpu() -> Option<Arc<Driver>> {
    if !driver_library_present() || !device_count().is_ok_and(|n| n > 0) {
        println!("skipped: no GPU");
        return None;
    }
    Some(Arc::new(Driver::open(0).unwrap()))
}

/// Makes kernel `k` launchable: compiled by NVRTC on this machine when
/// it has NVRTC, else loaded from the PTX the codegen test wrote. `false`
/// (with a line) when neither is there.
fn load(d: &Driver, k: &FusedKernel) -> bool {
    if nvrtc::nvrtc_available() {
        d.load_fused(k).unwrap();
        return true;
    }
    let (ma, mi) = d.compute_capability();
    let arch = if ma * 10 + mi >= 90 { 90 } else { 80 };
    let Some(dir) = std::env::var_os("CANDLE_FUSED_PTX_DIR") else {
        println!("skipped {}: no NVRTC and no CANDLE_FUSED_PTX_DIR", k.name);
        return false;
    };
    let path = std::path::Path::new(&dir).join(format!("{}.sm_{arch}.ptx", k.name));
    match std::fs::read_to_string(&path) {
        Ok(p) => {
            d.load_ptx(&k.name, &p).unwrap();
            true
        }
        Err(_) => {
            println!("skipped {}: no NVRTC and no {}", k.name, path.display());
            false
        }
    }
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
        if !load(&d, &k) {
            continue;
        }

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
        launch_fused(d.as_ref(), &k, &mut args).unwrap();
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
