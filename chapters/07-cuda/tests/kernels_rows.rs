//! The row kernels: reductions (`kernels/reduce.cu`), softmax, layer norm
//! and cross entropy (`kernels/softmax.cu`) against chapters 02, 04 and
//! 05 on the CPU, at sizes with ragged edges (a row shorter than a block,
//! longer than one, not a multiple of 32) and several rows per block.

mod kernels_support;

use chapter_02::dispatch::call;
use chapter_02::{DType, ReduceOp, Tensor};
use chapter_04::softmax::{LogSoftmaxBackward, LogSoftmaxLastDim, SoftmaxBackward, SoftmaxLastDim};
use chapter_05::norm::{LayerNormBackward, LayerNormForward};
use chapter_07::emulator::RuntimeExt;
use chapter_07::{DevicePtr, Emulator, LaunchConfig, Runtime};
use kernels_support::*;

const FLOATS: [DType; 4] = [DType::F32, DType::F64, DType::F16, DType::BF16];
/// (rows, cols): one column, shorter than a warp, ragged, several blocks' worth.
const SHAPES: [(usize, usize); 4] = [(3, 1), (5, 19), (7, 333), (2, 1500)];

/// One block per row, capped so some blocks take several rows.
fn rows_cfg(rows: usize, threads: u32, shared: u32) -> LaunchConfig {
    LaunchConfig {
        grid: [(rows as u32).min(4), 1, 1],
        block: [threads, 1, 1],
        shared_mem_bytes: shared,
    }
}

/// Sums accumulate in another order than on the CPU; a half result may
/// then round the other way.
fn sum_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 2e-6,
        DType::F64 => 1e-13,
        DType::F16 => 2e-3,
        DType::BF16 => 1.6e-2,
        _ => 0.0,
    }
}

fn op_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
        ReduceOp::ArgMax => "argmax",
        ReduceOp::ArgMin => "argmin",
    }
}

fn reduce_on_emulator(
    e: &Emulator,
    kernel: &str,
    x: &Tensor,
    out_dtype: DType,
    threads: u32,
    shared: bool,
) -> Tensor {
    let (rows, cols) = (x.dims()[0], x.dims()[1]);
    let dx = upload_tensor(e, x);
    let dy = alloc(e, rows, out_dtype);
    let cfg = rows_cfg(rows, threads, if shared { threads * 16 } else { 0 });
    let got = under_all_schedules(e, |e| {
        e.launch_args(
            kernel,
            cfg,
            args().arg(rows as i64).arg(cols as i64).arg(dx).arg(dy),
        )
        .unwrap();
        bytes_of(&download_tensor(e, dy, &[rows], out_dtype))
    });
    let _ = got;
    let out = download_tensor(e, dy, &[rows], out_dtype);
    e.free(dx).unwrap();
    e.free(dy).unwrap();
    out
}

fn check_reductions(shared: bool) {
    let e = emu();
    let ops = [
        ReduceOp::Sum,
        ReduceOp::Max,
        ReduceOp::Min,
        ReduceOp::ArgMax,
        ReduceOp::ArgMin,
    ];
    for dtype in FLOATS.into_iter().chain([DType::I64, DType::U8]) {
        for (rows, cols) in SHAPES {
            let mut v: Vec<f64> = data(rows * cols, (rows * cols) as u64, 40.0);
            if dtype == DType::U8 {
                v.iter_mut().for_each(|x| *x = x.abs());
            }
            if dtype.is_float() && cols > 10 {
                v[cols + 7] = f64::NAN; // row 1 has a NaN: max, min and arg* find it
                v[cols + 9] = f64::NAN;
            }
            let x = tensor(&v, &[rows, cols], dtype);
            for op in ops {
                if dtype == DType::U8 && op == ReduceOp::Sum {
                    continue;
                }
                let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
                let out_dtype = if arg { DType::I64 } else { dtype };
                let kernel = format!(
                    "reduce_{}{}_{}",
                    op_name(op),
                    if shared { "_shared" } else { "" },
                    suffix(dtype)
                );
                for threads in [64, 256] {
                    let got = reduce_on_emulator(&e, &kernel, &x, out_dtype, threads, shared);
                    let want = x.reduce(op, &[1], false, "reduce").unwrap();
                    let tol = if op == ReduceOp::Sum {
                        sum_tolerance(dtype)
                    } else {
                        0.0
                    };
                    assert_close(
                        &got,
                        &want,
                        tol,
                        &format!("{kernel} {rows}x{cols} ({threads} threads)"),
                    );
                }
            }
        }
    }
}

#[test]
fn reduction_shared_memory_tree_matches_cpu() {
    check_reductions(true);
}

#[test]
fn reduction_warp_shuffle_matches_cpu() {
    check_reductions(false);
}

/// `[rows, cols]` logits in about [-8, 8].
fn logits(rows: usize, cols: usize, seed: u64, dtype: DType) -> Tensor {
    tensor(&data(rows * cols, seed, 8.0), &[rows, cols], dtype)
}

fn row_tolerance(dtype: DType) -> f64 {
    match dtype {
        DType::F32 => 1e-5,
        DType::F64 => 1e-12,
        DType::F16 => 4e-3,
        _ => 3e-2,
    }
}

/// Runs a row kernel `(rows, cols, in.., out)` under every schedule.
fn run_rows(e: &Emulator, kernel: &str, inputs: &[&Tensor], dtype: DType) -> Tensor {
    let (rows, cols) = (inputs[0].dims()[0], inputs[0].dims()[1]);
    let ptrs: Vec<DevicePtr> = inputs.iter().map(|t| upload_tensor(e, t)).collect();
    let dy = alloc(e, rows * cols, dtype);
    under_all_schedules(e, |e| {
        let mut a = args().arg(rows as i64).arg(cols as i64);
        for &p in &ptrs {
            a = a.arg(p);
        }
        e.launch_args(kernel, rows_cfg(rows, 128, 0), a.arg(dy))
            .unwrap();
        bytes_of(&download_tensor(e, dy, &[rows, cols], dtype))
    });
    let out = download_tensor(e, dy, &[rows, cols], dtype);
    for p in ptrs.into_iter().chain([dy]) {
        e.free(p).unwrap();
    }
    out
}

#[test]
fn softmax_online_normaliser_matches_chapter_04() {
    let e = emu();
    for dtype in FLOATS {
        for (rows, cols) in SHAPES {
            let x = logits(rows, cols, 21, dtype);
            for (name, want) in [
                ("softmax", call(&SoftmaxLastDim, &[&x]).unwrap().remove(0)),
                (
                    "log_softmax",
                    call(&LogSoftmaxLastDim, &[&x]).unwrap().remove(0),
                ),
            ] {
                let kernel = format!("{name}_{}", suffix(dtype));
                let got = run_rows(&e, &kernel, &[&x], dtype);
                assert_close(
                    &got,
                    &want,
                    row_tolerance(dtype),
                    &format!("{kernel} {rows}x{cols}"),
                );
            }
        }
    }
}

#[test]
fn softmax_backward_matches_chapter_04() {
    let e = emu();
    for dtype in FLOATS {
        for (rows, cols) in SHAPES {
            let x = logits(rows, cols, 22, dtype);
            let g = logits(rows, cols, 23, dtype);
            let y = call(&SoftmaxLastDim, &[&x]).unwrap().remove(0);
            let want = call(&SoftmaxBackward, &[&y, &g]).unwrap().remove(0);
            let kernel = format!("softmax_backward_{}", suffix(dtype));
            let got = run_rows(&e, &kernel, &[&y, &g], dtype);
            assert_close(&got, &want, row_tolerance(dtype) * 4.0, &kernel);

            let ly = call(&LogSoftmaxLastDim, &[&x]).unwrap().remove(0);
            let want = call(&LogSoftmaxBackward, &[&ly, &g]).unwrap().remove(0);
            let kernel = format!("log_softmax_backward_{}", suffix(dtype));
            let got = run_rows(&e, &kernel, &[&ly, &g], dtype);
            assert_close(&got, &want, row_tolerance(dtype) * 4.0, &kernel);
        }
    }
}

#[test]
fn layer_norm_forward_and_backward_match_chapter_05() {
    let e = emu();
    let eps = 1e-5;
    for dtype in FLOATS {
        for (rows, cols) in SHAPES {
            for affine in [false, true] {
                let x = logits(rows, cols, 31, dtype);
                let gamma = tensor(&data(cols, 32, 2.0), &[cols], dtype);
                let beta = tensor(&data(cols, 33, 2.0), &[cols], dtype);
                let g = logits(rows, cols, 34, dtype);
                let fwd = LayerNormForward {
                    eps,
                    weight: affine,
                    bias: affine,
                };
                let mut ins = vec![&x];
                if affine {
                    ins.extend([&gamma, &beta]);
                }
                let want = call(&fwd, &ins).unwrap();

                let (dx, dg, db) = (
                    upload_tensor(&e, &x),
                    upload_tensor(&e, &gamma),
                    upload_tensor(&e, &beta),
                );
                let (dy, dmean, drstd) = (
                    alloc(&e, rows * cols, dtype),
                    alloc(&e, rows, dtype),
                    alloc(&e, rows, dtype),
                );
                let (pg, pb): (DevicePtr, DevicePtr) = if affine { (dg, db) } else { (0, 0) };
                let kernel = format!("layer_norm_{}", suffix(dtype));
                e.launch_args(
                    &kernel,
                    rows_cfg(rows, 128, 0),
                    args()
                        .arg(rows as i64)
                        .arg(cols as i64)
                        .arg(dx)
                        .arg(pg)
                        .arg(pb)
                        .arg(dy)
                        .arg(dmean)
                        .arg(drstd)
                        .arg(eps),
                )
                .unwrap();
                let tol = row_tolerance(dtype) * 4.0;
                let what = format!("{kernel} {rows}x{cols} affine={affine}");
                assert_close(
                    &download_tensor(&e, dy, &[rows, cols], dtype),
                    &want[0],
                    tol,
                    &what,
                );
                assert_close(
                    &download_tensor(&e, dmean, &[rows], dtype),
                    &want[1],
                    tol,
                    &what,
                );
                assert_close(
                    &download_tensor(&e, drstd, &[rows], dtype),
                    &want[2],
                    tol,
                    &what,
                );

                // Backward, from the CPU's mean and rstd.
                let bwd = LayerNormBackward {
                    weight: affine,
                    bias: affine,
                };
                let mut ins = vec![&g, &x, &want[1], &want[2]];
                if affine {
                    ins.push(&gamma);
                }
                let want_b = call(&bwd, &ins).unwrap();
                let (dgrad, dm, dr) = (
                    upload_tensor(&e, &g),
                    upload_tensor(&e, &want[1]),
                    upload_tensor(&e, &want[2]),
                );
                let ddx = alloc(&e, rows * cols, dtype);
                let kernel = format!("layer_norm_backward_{}", suffix(dtype));
                e.launch_args(
                    &kernel,
                    rows_cfg(rows, 128, 0),
                    args()
                        .arg(rows as i64)
                        .arg(cols as i64)
                        .arg(dgrad)
                        .arg(dx)
                        .arg(dm)
                        .arg(dr)
                        .arg(pg)
                        .arg(ddx),
                )
                .unwrap();
                let tol_b = if dtype == DType::F32 { 1e-4 } else { tol * 4.0 };
                assert_close(
                    &download_tensor(&e, ddx, &[rows, cols], dtype),
                    &want_b[0],
                    tol_b,
                    &kernel,
                );
                if affine {
                    let (ddg, ddb) = (alloc(&e, cols, dtype), alloc(&e, cols, dtype));
                    let kernel = format!("layer_norm_backward_params_{}", suffix(dtype));
                    e.launch_args(
                        &kernel,
                        cfg1d(cols),
                        args()
                            .arg(rows as i64)
                            .arg(cols as i64)
                            .arg(dgrad)
                            .arg(dx)
                            .arg(dm)
                            .arg(dr)
                            .arg(ddg)
                            .arg(ddb),
                    )
                    .unwrap();
                    assert_close(
                        &download_tensor(&e, ddg, &[cols], dtype),
                        &want_b[1],
                        tol_b,
                        &kernel,
                    );
                    assert_close(
                        &download_tensor(&e, ddb, &[cols], dtype),
                        &want_b[2],
                        tol_b,
                        &kernel,
                    );
                }
            }
        }
    }
}

#[test]
fn cross_entropy_forward_and_backward_match_log_softmax() {
    let e = emu();
    for dtype in FLOATS {
        for (rows, cols) in [(6usize, 10usize), (9, 300)] {
            for smoothing in [0.0, 0.1] {
                let x = logits(rows, cols, 41, dtype);
                let labels: Vec<i64> = (0..rows as i64)
                    .map(|r| if r == 2 { -1 } else { (r * 7) % cols as i64 })
                    .collect();
                // The reference, in f64 from chapter 04's log-softmax.
                let lp = call(&LogSoftmaxLastDim, &[&x.to_dtype(DType::F64).unwrap()])
                    .unwrap()
                    .remove(0);
                let lp = lp.to_vec2::<f64>().unwrap();
                let want: Vec<f64> = (0..rows)
                    .map(|r| {
                        if labels[r] < 0 {
                            return 0.0;
                        }
                        let mean: f64 = lp[r].iter().sum::<f64>() / cols as f64;
                        -((1.0 - smoothing) * lp[r][labels[r] as usize] + smoothing * mean)
                    })
                    .collect();
                let want = tensor(&want, &[rows], DType::F64);

                let dx = upload_tensor(&e, &x);
                let dl = e.upload(&labels).unwrap();
                let compute = if dtype == DType::F64 {
                    DType::F64
                } else {
                    DType::F32
                };
                let (dloss, dlse) = (alloc(&e, rows, dtype), alloc(&e, rows, compute));
                let derr = e.upload(&[-1i64]).unwrap();
                let kernel = format!("cross_entropy_{}", suffix(dtype));
                e.launch_args(
                    &kernel,
                    rows_cfg(rows, 64, 0),
                    args()
                        .arg(rows as i64)
                        .arg(cols as i64)
                        .arg(dx)
                        .arg(dl)
                        .arg(smoothing)
                        .arg(dloss)
                        .arg(dlse)
                        .arg(derr),
                )
                .unwrap();
                assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![-1]);
                let got = download_tensor(&e, dloss, &[rows], dtype);
                assert_close(
                    &got.to_dtype(DType::F64).unwrap(),
                    &want,
                    row_tolerance(dtype) * 4.0,
                    &kernel,
                );

                // Backward with a per-row gradient: (p − target)·g, zero for the ignored row.
                let g: Vec<f64> = (0..rows).map(|r| 0.5 + r as f64 / 4.0).collect();
                let dg = upload_tensor(&e, &tensor(&g, &[rows], dtype));
                let ddx = alloc(&e, rows * cols, dtype);
                let kernel = format!("cross_entropy_backward_{}", suffix(dtype));
                e.launch_args(
                    &kernel,
                    rows_cfg(rows, 64, 0),
                    args()
                        .arg(rows as i64)
                        .arg(cols as i64)
                        .arg(dx)
                        .arg(dl)
                        .arg(dlse)
                        .arg(dg)
                        .arg(1i64)
                        .arg(smoothing)
                        .arg(ddx),
                )
                .unwrap();
                let got = download_tensor(&e, ddx, &[rows, cols], dtype)
                    .to_dtype(DType::F64)
                    .unwrap()
                    .to_vec2::<f64>()
                    .unwrap();
                for r in 0..rows {
                    for c in 0..cols {
                        let want = if labels[r] < 0 {
                            0.0
                        } else {
                            let t = smoothing / cols as f64
                                + if c as i64 == labels[r] {
                                    1.0 - smoothing
                                } else {
                                    0.0
                                };
                            (lp[r][c].exp() - t) * g[r]
                        };
                        let tol = row_tolerance(dtype) * 4.0;
                        assert!(
                            (got[r][c] - want).abs() <= tol,
                            "{kernel} [{r}][{c}]: {} vs {want}",
                            got[r][c]
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn cross_entropy_reports_a_label_out_of_range() {
    let e = emu();
    let x = logits(4, 5, 1, DType::F32);
    let dx = upload_tensor(&e, &x);
    let dl = e.upload(&[0i64, 5, 2, -1]).unwrap();
    let (dloss, dlse) = (alloc(&e, 4, DType::F32), alloc(&e, 4, DType::F32));
    let derr = e.upload(&[-1i64]).unwrap();
    e.launch_args(
        "cross_entropy_f32",
        rows_cfg(4, 32, 0),
        args()
            .arg(4i64)
            .arg(5i64)
            .arg(dx)
            .arg(dl)
            .arg(0.0f64)
            .arg(dloss)
            .arg(dlse)
            .arg(derr),
    )
    .unwrap();
    assert_eq!(e.download::<i64>(derr, 1).unwrap(), vec![5]);
    let loss = e.download::<f32>(dloss, 4).unwrap();
    assert!(loss[1].is_nan() && loss[3] == 0.0 && loss[0].is_finite());
}
