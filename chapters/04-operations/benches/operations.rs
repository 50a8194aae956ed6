//! Chapter 04 benchmarks: what an operation costs, from the fixed price of
//! recording it on the tape to the bandwidth and FLOP rate of the kernels.
//!
//! ```text
//! cargo bench -p chapter-04
//! ```
//!
//! Four workloads, the same ones `bench/pytorch_ops.py` runs in PyTorch
//! (`bench/compare_ops.sh` prints the two side by side):
//!
//! 1. autograd overhead: forward and backward of a chain of 1 000 tiny ops;
//! 2. memory-bound kernels: broadcast add and a last-dim softmax on 1M floats
//!    (the softmax also in rows of 1000 and of 10, forward and forward +
//!    backward, through the fused kernel and through its composite);
//! 3. compute-bound kernel: a batched matrix product;
//! 4. a whole training step: MLP 784-256-10 with cross-entropy, batch 128.
//!
//! Criterion prints its usual report (mean and confidence interval); at the
//! end each result is printed again as one plain line
//! (`autograd overhead: 0.85 µs/op`) for scripts to read, from the best of
//! criterion's samples.

use chapter_02::dispatch::{register_kernel, unregister_kernel};
use chapter_02::{DeviceKind, DispatchPath};
use chapter_03::{DType, Device, Result, Tensor};
use chapter_04::prelude::*;
use chapter_04::softmax_kernels;
use criterion::{black_box, Criterion, Throughput};
use std::cell::RefCell;
use std::time::{Duration, Instant};

/// Ops in the autograd-overhead chain.
const CHAIN_OPS: usize = 1_000;
const SIDE: usize = 1024;
const BMM: (usize, usize, usize, usize) = (64, 128, 64, 128); // batch, m, k, n
const MLP: (usize, usize, usize, usize) = (128, 784, 256, 10); // batch, in, hidden, classes

/// Times `f` with criterion under `name` and returns the best (lowest)
/// seconds per call over criterion's samples: on a machine shared with other
/// work the minimum is the least disturbed estimate of what `f` costs.
/// `None` when the benchmark was filtered out on the command line.
fn measure(
    c: &mut Criterion,
    group: &str,
    name: &str,
    throughput: Option<Throughput>,
    mut f: impl FnMut(),
) -> Option<f64> {
    let samples: RefCell<Vec<f64>> = RefCell::new(Vec::new());
    let mut g = c.benchmark_group(group);
    if let Some(t) = throughput {
        g.throughput(t);
    }
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                f();
            }
            let elapsed = start.elapsed();
            samples
                .borrow_mut()
                .push(elapsed.as_secs_f64() / iters as f64);
            elapsed
        })
    });
    g.finish();
    samples.into_inner().into_iter().reduce(f64::min)
}

fn randn(shape: &[usize], std: f64) -> Tensor {
    Tensor::randn(0.0, std, shape.to_vec(), DType::F32, &Device::cpu()).expect("randn")
}

/// Runs `f` with the CPU's softmax operators dispatching to `path`: the
/// fused kernels, or (with the kernels withdrawn) the composites.
fn with_softmax_path(path: DispatchPath, f: impl FnOnce()) {
    if path == DispatchPath::Composite {
        unregister_kernel::<SoftmaxLastDim>(DeviceKind::CPU).expect("registry");
        unregister_kernel::<SoftmaxBackward>(DeviceKind::CPU).expect("registry");
    }
    f();
    register_kernel::<SoftmaxLastDim>(DeviceKind::CPU, softmax_kernels::softmax_cpu)
        .expect("registry");
    register_kernel::<SoftmaxBackward>(DeviceKind::CPU, softmax_kernels::softmax_backward_cpu)
        .expect("registry");
}

/// Forward and backward through `CHAIN_OPS` elementwise ops on 4 floats:
/// the arithmetic is nothing, so the time is the per-op bookkeeping (graph
/// node, allocation, backward closure, gradient accumulation).
fn autograd_chain(x: &Tensor, c: &Tensor, d: &Tensor) -> Result<()> {
    let mut y = x.clone();
    for _ in 0..CHAIN_OPS / 2 {
        y = y.mul(c)?.add(d)?;
    }
    y.sum_all()?.backward()?;
    x.zero_grad();
    Ok(())
}

/// The MLP's parameters, `[in, out]` weights so that `y = x W + b`.
struct Mlp {
    w1: Tensor,
    b1: Tensor,
    w2: Tensor,
    b2: Tensor,
}

impl Mlp {
    fn new() -> Result<Mlp> {
        let (_, inp, hidden, classes) = MLP;
        Ok(Mlp {
            w1: randn(&[inp, hidden], (1.0 / inp as f64).sqrt()).requires_grad_()?,
            b1: Tensor::zeros(hidden, DType::F32, &Device::cpu())?.requires_grad_()?,
            w2: randn(&[hidden, classes], (1.0 / hidden as f64).sqrt()).requires_grad_()?,
            b2: Tensor::zeros(classes, DType::F32, &Device::cpu())?.requires_grad_()?,
        })
    }

    /// One training step without the update: cross-entropy as
    /// `-mean(log_softmax(logits)[i, target_i])`, then backward.
    fn step(&self, x: &Tensor, targets: &Tensor) -> Result<f64> {
        let h = x.matmul(&self.w1)?.add(&self.b1)?.relu()?;
        let logits = h.matmul(&self.w2)?.add(&self.b2)?;
        let picked = logits.log_softmax(-1)?.gather(targets, 1)?;
        let loss = picked.mean_all()?.neg()?;
        loss.backward()?;
        for p in [&self.w1, &self.b1, &self.w2, &self.b2] {
            p.zero_grad();
        }
        loss.item()
    }
}

fn main() -> Result<()> {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let dev = Device::cpu();
    let mut lines = Vec::new();

    // (1) Autograd overhead.
    let x = Tensor::from_vec(vec![1.0f32; 4], 4, &dev)?.requires_grad_()?;
    let cst = Tensor::from_vec(vec![1.0001f32; 4], 4, &dev)?;
    let dst = Tensor::from_vec(vec![1e-4f32; 4], 4, &dev)?;
    if let Some(t) = measure(
        &mut c,
        "autograd",
        "chain_1000_ops_fwd_bwd",
        Some(Throughput::Elements(CHAIN_OPS as u64)),
        || autograd_chain(&x, &cst, &dst).expect("chain"),
    ) {
        lines.push(format!(
            "autograd overhead: {:.2} µs/op",
            t / CHAIN_OPS as f64 * 1e6
        ));
    }

    // (2) Memory-bound kernels on 1M floats: bytes read + written.
    let a = randn(&[SIDE, SIDE], 1.0);
    let row = randn(&[SIDE], 1.0);
    let bytes = (2 * SIDE * SIDE + SIDE) * 4;
    if let Some(t) = measure(
        &mut c,
        "bandwidth",
        "broadcast_add_1024x1024_plus_1024",
        Some(Throughput::Bytes(bytes as u64)),
        || {
            black_box(a.add(&row).expect("add"));
        },
    ) {
        lines.push(format!(
            "broadcast add [1024,1024]+[1024]: {:.2} GB/s",
            bytes as f64 / t / 1e9
        ));
    }
    let bytes = 2 * SIDE * SIDE * 4;
    if let Some(t) = measure(
        &mut c,
        "bandwidth",
        "softmax_1024x1024_last_dim",
        Some(Throughput::Bytes(bytes as u64)),
        || {
            black_box(a.softmax(-1).expect("softmax"));
        },
    ) {
        lines.push(format!(
            "softmax [1024,1024] last dim: {:.2} GB/s",
            bytes as f64 / t / 1e9
        ));
    }

    // (2b) The softmax kernel against its composite, on 1M floats in rows
    // of 1000 and in rows of 10 (the MNIST logits' shape), forward alone
    // and forward + backward. The composite is what every device without a
    // kernel runs, and what the CPU ran before the kernel existed; it is
    // measured here by withdrawing the kernel for a moment.
    for (rows, n) in [(1000usize, 1000usize), (100_000, 10)] {
        let x = randn(&[rows, n], 1.0);
        let xg = x.detach().requires_grad_()?;
        let w = randn(&[rows, n], 1.0);
        for path in [DispatchPath::Kernel, DispatchPath::Composite] {
            let (id, label) = match path {
                DispatchPath::Kernel => ("kernel", ""),
                DispatchPath::Composite => ("composite", " (composite)"),
            };
            with_softmax_path(path, || {
                if let Some(t) = measure(
                    &mut c,
                    "softmax",
                    &format!("softmax_{rows}x{n}_{id}"),
                    None,
                    || {
                        black_box(x.softmax(-1).expect("softmax"));
                    },
                ) {
                    lines.push(format!(
                        "softmax [{rows},{n}] forward{label}: {:.3} ms",
                        t * 1e3
                    ));
                }
                if let Some(t) = measure(
                    &mut c,
                    "softmax",
                    &format!("softmax_{rows}x{n}_fwd_bwd_{id}"),
                    None,
                    || {
                        let y = xg.softmax(-1).expect("softmax");
                        y.mul(&w)
                            .and_then(|l| l.sum_all())
                            .and_then(|l| l.backward())
                            .expect("backward");
                        xg.zero_grad();
                    },
                ) {
                    lines.push(format!(
                        "softmax [{rows},{n}] forward+backward{label}: {:.3} ms",
                        t * 1e3
                    ));
                }
            });
        }
    }

    // (2c) What splitting a kernel over threads costs (starting a scoped
    // thread that does nothing, and joining it) against what the kernel
    // costs per element on one thread, in long and in short rows: the
    // basis of `row_kernels::PARALLEL_MIN_WORK`.
    if let Some(t) = measure(
        &mut c,
        "threads",
        "softmax_threads_spawn_join",
        None,
        || {
            std::thread::scope(|s| {
                s.spawn(|| black_box(1));
            })
        },
    ) {
        lines.push(format!("thread spawn + join: {:.2} µs", t * 1e6));
    }
    for (rows, n) in [(60usize, 1000usize), (400, 10)] {
        let x = randn(&[rows, n], 1.0);
        if let Some(t) = measure(
            &mut c,
            "threads",
            &format!("softmax_threads_one_thread_{rows}x{n}"),
            None,
            || {
                black_box(x.softmax(-1).expect("softmax"));
            },
        ) {
            lines.push(format!(
                "softmax kernel on one thread, rows of {n}: {:.2} ns/element",
                t * 1e9 / x.elem_count() as f64
            ));
        }
    }

    // (3) Batched matmul: 2·m·k·n FLOPs per matrix.
    let (batch, m, k, n) = BMM;
    let lhs = randn(&[batch, m, k], 1.0);
    let rhs = randn(&[batch, k, n], 1.0);
    let flops = 2 * batch * m * k * n;
    if let Some(t) = measure(
        &mut c,
        "matmul",
        "bmm_64x128x64_times_64x64x128",
        Some(Throughput::Elements(flops as u64)),
        || {
            black_box(bmm(&lhs, &rhs).expect("bmm"));
        },
    ) {
        lines.push(format!(
            "bmm 64x(128x64 @ 64x128): {:.2} GFLOP/s",
            flops as f64 / t / 1e9
        ));
    }

    // (4) MLP training step (forward + backward).
    let (batch, inp, _, classes) = MLP;
    let mlp = Mlp::new()?;
    let input = randn(&[batch, inp], 1.0);
    let targets: Vec<i64> = (0..batch).map(|i| ((i * 7) % classes) as i64).collect();
    let targets = Tensor::from_vec(targets, (batch, 1), &dev)?;
    if let Some(t) = measure(
        &mut c,
        "mlp",
        "mlp_784_256_10_batch128_fwd_bwd",
        None,
        || {
            black_box(mlp.step(&input, &targets).expect("mlp step"));
        },
    ) {
        lines.push(format!(
            "mlp 784-256-10 batch 128 fwd+bwd: {:.3} ms/step",
            t * 1e3
        ));
    }

    c.final_summary();
    println!("\nchapter-04 operations (best of criterion's samples):");
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
