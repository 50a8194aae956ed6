//! The emulator catches the mistakes CUDA kernels are made of: each test
//! launches a deliberately broken kernel (`emu/tests/broken.cu`) and checks
//! that the launch fails, naming the kernel, or that the result changes
//! with the schedule.

mod kernels_support;

use chapter_07::emulator::RuntimeExt;
use chapter_07::{Emulator, LaunchConfig, Runtime, Schedule};
use kernels_support::*;

fn block_cfg(blocks: u32, threads: u32, shared: u32) -> LaunchConfig {
    LaunchConfig {
        grid: [blocks, 1, 1],
        block: [threads, 1, 1],
        shared_mem_bytes: shared,
    }
}

fn block_sums(e: &Emulator, kernel: &str, x: &[f32], threads: usize) -> Vec<f32> {
    let blocks = x.len() / threads;
    let dx = e.upload(x).unwrap();
    let out = e.alloc(blocks * 4).unwrap();
    let cfg = block_cfg(blocks as u32, threads as u32, threads as u32 * 4);
    e.launch_args(kernel, cfg, args().arg(dx).arg(out)).unwrap();
    let r = e.download::<f32>(out, blocks).unwrap();
    e.free(dx).unwrap();
    e.free(out).unwrap();
    r
}

#[test]
fn emulator_lists_every_kernel_by_name() {
    let names: Vec<&str> = Emulator::kernels().collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
    for k in [
        "unary_exp_f32",
        "binary_add_bf16",
        "cast_f64_f16",
        "where_u8",
    ] {
        assert!(names.contains(&k), "{k} missing");
    }
    assert!(!names.contains(&"block_sum"), "test kernels are not listed");
}

#[test]
fn block_reduction_is_the_same_under_every_schedule() {
    let e = emu();
    let x: Vec<f32> = (0..8 * 64).map(|i| (i % 17) as f32).collect();
    let want: Vec<f32> = x.chunks(64).map(|c| c.iter().sum()).collect();
    let got = under_all_schedules(&e, |e| block_sums(e, "block_sum", &x, 64));
    assert_eq!(got, want);
}

#[test]
fn missing_syncthreads_changes_the_result_with_the_schedule() {
    let e = emu();
    let x: Vec<f32> = (0..4 * 64).map(|i| (i % 5) as f32 + 1.0).collect();
    let want: Vec<f32> = x.chunks(64).map(|c| c.iter().sum()).collect();
    let mut wrong = 0;
    for s in Schedule::ALL {
        e.set_schedule(s);
        let got = block_sums(&e, "broken_block_sum_no_sync", &x, 64);
        if got != want {
            wrong += 1;
        }
    }
    assert!(wrong > 0, "some schedule exposes the race");
}

#[test]
fn out_of_bounds_write_is_caught_by_the_guards() {
    let e = emu();
    let y = e.alloc(100 * 4).unwrap();
    let msg = device_error(e.launch_args(
        "broken_write_past_end",
        LaunchConfig::for_elements(100, 64),
        args().arg(100i64).arg(y),
    ));
    assert!(
        msg.contains("broken_write_past_end") && msg.contains("out-of-bounds write"),
        "{msg}"
    );
    // The guard is repaired: the next launch of a correct kernel passes.
    e.launch_args(
        "unary_neg_f32",
        LaunchConfig::for_elements(100, 64),
        args()
            .arg(100i64)
            .arg(chapter_07::emulator::Strided::contiguous(100))
            .arg(y)
            .arg(y)
            .arg(0.0f64)
            .arg(0.0f64),
    )
    .unwrap();
    e.free(y).unwrap();
}

#[test]
fn out_of_bounds_read_gives_nan() {
    let e = emu();
    let x = e.upload(&[1.0f32; 10]).unwrap();
    let y = e.alloc(10 * 4).unwrap();
    e.launch_args(
        "broken_read_past_end",
        LaunchConfig::for_elements(10, 32),
        args().arg(10i64).arg(x).arg(y),
    )
    .unwrap();
    let got = e.download::<f32>(y, 10).unwrap();
    assert!(got[..9].iter().all(|&v| v == 2.0));
    assert!(got[9].is_nan(), "the guard reads as NaN");
}

#[test]
fn fresh_memory_reads_as_nan() {
    let e = emu();
    let y = e.alloc(16).unwrap();
    assert!(e.download::<f32>(y, 4).unwrap().iter().all(|v| v.is_nan()));
}

#[test]
fn barrier_after_early_return_is_a_deadlock_error_not_a_hang() {
    let e = emu();
    let y = e.alloc(64 * 4).unwrap();
    let msg = device_error(e.launch_args(
        "broken_barrier_after_return",
        block_cfg(1, 64, 0),
        args().arg(y),
    ));
    assert!(
        msg.contains("broken_barrier_after_return") && msg.contains("deadlock"),
        "{msg}"
    );
}

#[test]
fn divergent_warp_shuffle_is_an_error() {
    let e = emu();
    let y = e.alloc(32 * 4).unwrap();
    let msg = device_error(e.launch_args(
        "broken_divergent_shuffle",
        block_cfg(1, 32, 0),
        args().arg(y),
    ));
    assert!(
        msg.contains("broken_divergent_shuffle") && msg.contains("__shfl_down_sync"),
        "{msg}"
    );
}

#[test]
fn trap_stops_the_launch_with_an_error() {
    let e = emu();
    let x = e.upload(&[1.0f32, 2.0, -3.0, 4.0]).unwrap();
    let msg = device_error(e.launch_args(
        "trap_on_negative",
        LaunchConfig::for_elements(4, 32),
        args().arg(4i64).arg(x),
    ));
    assert!(
        msg.contains("trap_on_negative") && msg.contains("__trap() in thread (2, 0, 0)"),
        "{msg}"
    );
    e.launch_args(
        "trap_on_negative",
        LaunchConfig::for_elements(2, 32),
        args().arg(2i64).arg(x),
    )
    .unwrap();
}

#[test]
fn shared_memory_overflow_is_caught() {
    let e = emu();
    let y = e.alloc(32 * 4).unwrap();
    let msg = device_error(e.launch_args(
        "broken_shared_overflow",
        block_cfg(1, 32, 32 * 4),
        args().arg(y),
    ));
    assert!(msg.contains("past the 128 bytes"), "{msg}");
}

#[test]
fn wrong_parameter_count_and_unknown_kernels_are_errors() {
    let e = emu();
    let msg = device_error(e.launch_args("block_sum", block_cfg(1, 32, 128), args().arg(0u64)));
    assert!(
        msg.contains("takes 2 parameters, the launch gave 1"),
        "{msg}"
    );
    let msg = device_error(e.launch_args("no_such_kernel", block_cfg(1, 32, 0), args()));
    assert!(msg.contains("no kernel named"), "{msg}");
    let msg = device_error(e.launch_args(
        "block_sum",
        block_cfg(1, 2048, 0),
        args().arg(0u64).arg(0u64),
    ));
    assert!(msg.contains("1 to 1024"), "{msg}");
}

#[test]
fn copies_outside_an_allocation_are_errors() {
    let e = emu();
    let p = e.alloc(8).unwrap();
    assert!(e.copy_htod(p, &[0u8; 9]).is_err());
    assert!(e.copy_htod(p + 4, &[0u8; 4]).is_ok());
    assert!(e.free(p + 1).is_err());
    e.free(p).unwrap();
    assert!(e.copy_htod(p, &[0u8; 1]).is_err());
}

#[test]
fn warp_shuffles_and_votes_follow_cuda_semantics() {
    let e = emu();
    let n = 64;
    let x: Vec<i32> = (0..n as i32).map(|i| (i * 7) % 11 - 2).collect();
    let dx = e.upload(&x).unwrap();
    let outs: Vec<_> = (0..5).map(|_| e.alloc(n * 4).unwrap()).collect();
    let got = under_all_schedules(&e, |e| {
        e.launch_args(
            "warp_demo",
            block_cfg(1, n as u32, 0),
            args()
                .arg(dx)
                .arg(outs[0])
                .arg(outs[1])
                .arg(outs[2])
                .arg(outs[3])
                .arg(outs[4]),
        )
        .unwrap();
        outs.iter()
            .map(|&o| e.download::<i32>(o, n).unwrap())
            .collect::<Vec<_>>()
    });
    for w in 0..2 {
        let lanes = &x[w * 32..w * 32 + 32];
        let sum: i32 = lanes.iter().sum();
        let ballot = lanes
            .iter()
            .enumerate()
            .fold(0u32, |b, (l, v)| b | (((v & 1) as u32) << l));
        for l in 0..32 {
            let i = w * 32 + l;
            assert_eq!(got[0][i], sum);
            assert_eq!(got[1][i], if l == 0 { x[i] } else { x[i - 1] });
            assert_eq!(got[2][i] as u32, ballot);
            assert_eq!(got[3][i], lanes.iter().any(|&v| v > 0) as i32);
            assert_eq!(got[4][i], lanes.iter().all(|&v| v > 0) as i32);
        }
    }
}

// ANCHOR: exercise
/// Exercise (see `emu/tests/exercise.cu`): write `transpose_tiled_f32`,
/// then run `cargo test -p chapter-07 exercise -- --ignored`.
#[test]
#[ignore = "exercise: write transpose_tiled_f32 in emu/tests/exercise.cu"]
fn exercise_transpose_tiled_matches_naive() {
    transpose_matches("transpose_tiled_f32");
}
// ANCHOR_END: exercise

#[test]
fn transpose_naive_is_correct() {
    transpose_matches("transpose_naive_f32");
}

fn transpose_matches(kernel: &str) {
    let e = emu();
    let (rows, cols) = (70usize, 45usize);
    let x: Vec<f32> = (0..rows * cols).map(|i| i as f32).collect();
    let dx = e.upload(&x).unwrap();
    let dy = e.alloc(rows * cols * 4).unwrap();
    let cfg = LaunchConfig {
        grid: [cols.div_ceil(32) as u32, rows.div_ceil(32) as u32, 1],
        block: [32, 8, 1],
        shared_mem_bytes: 0,
    };
    let got = under_all_schedules(&e, |e| {
        e.launch_args(
            kernel,
            cfg,
            args().arg(rows as i32).arg(cols as i32).arg(dx).arg(dy),
        )
        .unwrap();
        e.download::<u32>(dy, rows * cols).unwrap()
    });
    for r in 0..rows {
        for c in 0..cols {
            assert_eq!(
                got[c * rows + r],
                x[r * cols + c].to_bits(),
                "out[{c}][{r}]"
            );
        }
    }
}
