//! The GEMM ladder of `kernels/gemm.cu`: every rung against the CPU
//! backend's matmul, at ragged sizes, and the rungs against each other
//! (same order of additions, so the same bits on the emulator).

mod kernels_support;

use chapter_02::{DType, Tensor};
use chapter_07::emulator::RuntimeExt;
use chapter_07::{Emulator, LaunchConfig, Runtime};
use kernels_support::*;

const SIZES: [(usize, usize, usize); 5] = [
    (1, 1, 1),
    (17, 23, 9),
    (64, 64, 64),
    (70, 33, 130),
    (5, 100, 16),
];

fn ladder_cfg(kernel: &str, m: usize, n: usize) -> LaunchConfig {
    let cdiv = |a: usize, b: usize| a.div_ceil(b) as u32;
    let (grid, block) = match kernel {
        "gemm_naive_f32" => ([cdiv(m, 16), cdiv(n, 16), 1], [16, 16, 1]),
        "gemm_coalesced_f32" | "gemm_tiled_f32" => ([cdiv(n, 16), cdiv(m, 16), 1], [16, 16, 1]),
        _ => ([cdiv(n, 64), cdiv(m, 64), 1], [256, 1, 1]),
    };
    LaunchConfig {
        grid,
        block,
        shared_mem_bytes: 0,
    }
}

fn run_gemm(e: &Emulator, kernel: &str, a: &Tensor, b: &Tensor) -> Vec<f32> {
    let (m, k, n) = (a.dims()[0], a.dims()[1], b.dims()[1]);
    let (da, db) = (upload_tensor(e, a), upload_tensor(e, b));
    let dc = e.alloc(m * n * 4).unwrap();
    let r = under_all_schedules(e, |e| {
        e.launch_args(
            kernel,
            ladder_cfg(kernel, m, n),
            args()
                .arg(m as i32)
                .arg(n as i32)
                .arg(k as i32)
                .arg(da)
                .arg(db)
                .arg(dc),
        )
        .unwrap();
        e.download::<f32>(dc, m * n).unwrap()
    });
    for p in [da, db, dc] {
        e.free(p).unwrap();
    }
    r
}

#[test]
fn gemm_ladder_every_rung_matches_cpu_matmul() {
    let e = emu();
    for (m, n, k) in SIZES {
        let a = tensor(&data(m * k, 1, 1.0), &[m, k], DType::F32);
        let b = tensor(&data(k * n, 2, 1.0), &[k, n], DType::F32);
        let want = a.matmul(&b).unwrap();
        let mut first: Option<Vec<f32>> = None;
        for kernel in [
            "gemm_naive_f32",
            "gemm_coalesced_f32",
            "gemm_tiled_f32",
            "gemm_regblock_f32",
        ] {
            let got = run_gemm(&e, kernel, &a, &b);
            let t = Tensor::from_vec(got.clone(), (m, n), &cpu()).unwrap();
            assert_close(&t, &want, 1e-5, &format!("{kernel} {m}x{n}x{k}"));
            match &first {
                None => first = Some(got),
                Some(f) => assert_eq!(f, &got, "{kernel} adds in another order"),
            }
        }
    }
}

#[test]
fn gemm_regblock_scalar_edge_path_handles_unaligned_operands() {
    // k and n not multiples of 4: no float4 loads; then an A that starts
    // one float into its allocation, so not 16-byte aligned.
    let e = emu();
    let (m, n, k) = (65, 67, 12);
    let a = tensor(&data(m * k + 1, 3, 1.0), &[m * k + 1], DType::F32);
    let b = tensor(&data(k * n, 4, 1.0), &[k, n], DType::F32);
    let a_view = a.narrow(0, 1, m * k).unwrap().reshape((m, k)).unwrap();
    let want = a_view.matmul(&b).unwrap();
    let (da, db) = (upload_tensor(&e, &a), upload_tensor(&e, &b));
    let dc = e.alloc(m * n * 4).unwrap();
    e.launch_args(
        "gemm_regblock_f32",
        ladder_cfg("gemm_regblock_f32", m, n),
        args()
            .arg(m as i32)
            .arg(n as i32)
            .arg(k as i32)
            .arg(da + 4)
            .arg(db)
            .arg(dc),
    )
    .unwrap();
    let got = Tensor::from_vec(e.download::<f32>(dc, m * n).unwrap(), (m, n), &cpu()).unwrap();
    assert_close(&got, &want, 1e-5, "regblock unaligned");
}

#[test]
fn gemm_batched_reads_transposed_and_broadcast_operands_for_every_float_dtype() {
    let e = emu();
    for dtype in [DType::F32, DType::F64, DType::F16, DType::BF16] {
        let (batch, m, n, k) = (3usize, 19usize, 21usize, 35usize);
        // A: [batch, m, k] stored as [batch, k, m] and transposed.
        let a_base = tensor(&data(batch * m * k, 5, 1.0), &[batch, k, m], dtype);
        let a = a_base.transpose(1, 2).unwrap();
        // B: one [k, n] matrix broadcast over the batch (batch stride 0).
        let b_base = tensor(&data(k * n, 6, 1.0), &[1, k, n], dtype);
        let b = b_base.broadcast_to((batch, k, n)).unwrap();
        let want = a.matmul(&b).unwrap();
        let (da, db) = (upload_tensor(&e, &a_base), upload_tensor(&e, &b_base));
        let dc = alloc(&e, batch * m * n, dtype);
        let (sa, sb) = (a.layout().strides(), b.layout().strides());
        let kernel = format!("gemm_batched_{}", suffix(dtype));
        let cfg = LaunchConfig {
            grid: [n.div_ceil(16) as u32, m.div_ceil(16) as u32, 2],
            block: [16, 16, 1],
            shared_mem_bytes: 0,
        };
        e.launch_args(
            &kernel,
            cfg,
            args()
                .arg(batch as i64)
                .arg(m as i32)
                .arg(n as i32)
                .arg(k as i32)
                .arg(da)
                .arg(sa[0] as i64)
                .arg(sa[1] as i64)
                .arg(sa[2] as i64)
                .arg(db)
                .arg(sb[0] as i64)
                .arg(sb[1] as i64)
                .arg(sb[2] as i64)
                .arg(dc),
        )
        .unwrap();
        let tol = match dtype {
            DType::F32 => 1e-5,
            DType::F64 => 1e-12,
            DType::F16 => 4e-3,
            _ => 3e-2,
        };
        assert_close(
            &download_tensor(&e, dc, &[batch, m, n], dtype),
            &want,
            tol,
            &kernel,
        );
    }
}
