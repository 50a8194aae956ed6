//! Chapter 05 benchmark: layer norm, forward and forward + backward, through
//! the fused CPU kernels and through the composites they replace.
//!
//! ```text
//! cargo bench -p chapter-05 --bench norm
//! ```
//!
//! The workload is a transformer's: `[64·64, 128]` activations (a batch of
//! 64 sequences of 64 tokens, width 128), normalised over the last
//! dimension with a weight and a bias. `bench/pytorch_ops.py` runs the same
//! in PyTorch and `bench/compare_ops.sh` prints the two side by side.
//! At the end each result is printed as one plain line for scripts to read,
//! from the best of criterion's samples.

use chapter_02::dispatch::{register_kernel, unregister_kernel};
use chapter_02::{DeviceKind, DispatchPath};
use chapter_03::{DType, Device, Tensor};
use chapter_05::layer_norm;
use chapter_05::norm::{kernels, LayerNormBackward, LayerNormForward};
use criterion::{black_box, Criterion};
use std::cell::RefCell;
use std::time::{Duration, Instant};

const ROWS: usize = 64 * 64;
const WIDTH: usize = 128;

/// Times `f` with criterion and returns the best seconds per call over its
/// samples (the least disturbed estimate on a shared machine), or `None`
/// when filtered out on the command line.
fn measure(c: &mut Criterion, name: &str, mut f: impl FnMut()) -> Option<f64> {
    let samples: RefCell<Vec<f64>> = RefCell::new(Vec::new());
    let mut g = c.benchmark_group("layer_norm");
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

/// Runs `f` with the CPU's layer norm operators dispatching to `path`.
fn with_path(path: DispatchPath, f: impl FnOnce()) {
    if path == DispatchPath::Composite {
        unregister_kernel::<LayerNormForward>(DeviceKind::CPU).expect("registry");
        unregister_kernel::<LayerNormBackward>(DeviceKind::CPU).expect("registry");
    }
    f();
    register_kernel::<LayerNormForward>(DeviceKind::CPU, kernels::layer_norm_forward_cpu)
        .expect("registry");
    register_kernel::<LayerNormBackward>(DeviceKind::CPU, kernels::layer_norm_backward_cpu)
        .expect("registry");
}

fn main() {
    let mut c = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .configure_from_args();
    let dev = Device::cpu();
    let randn =
        |shape: Vec<usize>| Tensor::randn(0.0, 1.0, shape, DType::F32, &dev).expect("randn");
    let x = randn(vec![ROWS, WIDTH]).requires_grad_().expect("leaf");
    let w = randn(vec![WIDTH]).requires_grad_().expect("leaf");
    let b = randn(vec![WIDTH]).requires_grad_().expect("leaf");
    let v = randn(vec![ROWS, WIDTH]);
    let mut lines = Vec::new();
    for path in [DispatchPath::Kernel, DispatchPath::Composite] {
        let label = match path {
            DispatchPath::Kernel => "",
            DispatchPath::Composite => " (composite)",
        };
        with_path(path, || {
            let id = if label.is_empty() {
                "kernel"
            } else {
                "composite"
            };
            if let Some(t) = measure(&mut c, &format!("forward_{id}"), || {
                let _no_graph = chapter_03::no_grad();
                black_box(layer_norm(&x, &[WIDTH], Some(&w), Some(&b), 1e-5).expect("forward"));
            }) {
                lines.push(format!(
                    "layer norm [4096,128] forward{label}: {:.3} ms",
                    t * 1e3
                ));
            }
            if let Some(t) = measure(&mut c, &format!("forward_backward_{id}"), || {
                let y = layer_norm(&x, &[WIDTH], Some(&w), Some(&b), 1e-5).expect("forward");
                let loss = y.mul(&v).and_then(|l| l.sum_all()).expect("loss");
                loss.backward().expect("backward");
                for p in [&x, &w, &b] {
                    p.zero_grad();
                }
            }) {
                lines.push(format!(
                    "layer norm [4096,128] forward+backward{label}: {:.3} ms",
                    t * 1e3
                ));
            }
        });
    }
    c.final_summary();
    println!("\nchapter-05 norm (best of criterion's samples):");
    for line in lines {
        println!("{line}");
    }
}
