//! How fast are the CPU backend's two workhorses?
//!
//! - SGEMM (`f32` matmul) of square matrices, in GFLOP/s: an `n x n` product
//!   is `2 n³` floating-point operations (a multiply and an add per term).
//!   Criterion reports it as `thrpt: … Gelem/s`, where one "element" is one
//!   FLOP.
//! - Elementwise `add`, in GB/s: `a + b` reads two arrays and writes one, so
//!   it moves `3 · n · 4` bytes. It is limited by memory, not arithmetic.
//! - A few view-heavy operations (broadcast add, a transposed copy, a row
//!   sum) to show what strides cost.
//!
//! `cargo bench -p chapter-02` runs criterion (short: 10 samples, 3 s each),
//! then times the same operations with a plain loop and prints one readable
//! line each, such as `sgemm 1024: 117.3 GFLOP/s (best 119.0)` (median and
//! best of the loop). The gemm crate runs on rayon's pool, one thread per
//! core unless `RAYON_NUM_THREADS` says otherwise. A filter works as
//! usual: `cargo bench -p chapter-02 -- sgemm`.

use chapter_02::{DType, Device, Generator, Tensor};
use criterion::{BenchmarkId, Criterion, Throughput};
use std::hint::black_box;
use std::time::{Duration, Instant};

const SGEMM_SIZES: [usize; 3] = [256, 512, 1024];
const ADD_SIZES: [(usize, &str); 2] = [(1 << 20, "1M"), (1 << 24, "16M")];

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut g = Generator::new(seed);
    Tensor::randn_with(0.0, 1.0, shape, DType::F32, &Device::cpu(), &mut g).unwrap()
}

fn bench_sgemm(c: &mut Criterion) {
    let mut group = c.benchmark_group("sgemm");
    for n in SGEMM_SIZES {
        let (a, b) = (random(&[n, n], 1), random(&[n, n], 2));
        group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| black_box(a.matmul(&b).unwrap()))
        });
    }
    // The same product with a transposed left operand: no copy, so (almost)
    // the same speed.
    let n = 1024;
    let (a, b) = (random(&[n, n], 1).t().unwrap(), random(&[n, n], 2));
    group.throughput(Throughput::Elements(2 * (n as u64).pow(3)));
    group.bench_function("1024_transposed_lhs", |bench| {
        bench.iter(|| black_box(a.matmul(&b).unwrap()))
    });
    // The MNIST MLP's two large products (batch 128, 784 → 256).
    for (name, a, b) in mlp_products() {
        group.throughput(Throughput::Elements(flops(&a, &b)));
        group.bench_function(name, |bench| {
            bench.iter(|| black_box(a.matmul(&b).unwrap()))
        });
    }
    group.finish();
}

/// The MNIST MLP's first-layer products: the forward `x · Wᵀ` (a
/// transposed right operand, repacked row-major before the product) and
/// the weight gradient `dhᵀ · x` (a transposed left operand, used as is).
fn mlp_products() -> [(&'static str, Tensor, Tensor); 2] {
    [
        (
            "mlp_forward_128x784x256",
            random(&[128, 784], 5),
            random(&[256, 784], 6).t().unwrap(),
        ),
        (
            "mlp_weight_grad_256x128x784",
            random(&[128, 256], 7).t().unwrap(),
            random(&[128, 784], 8),
        ),
    ]
}

/// Floating-point operations of `a · b`.
fn flops(a: &Tensor, b: &Tensor) -> u64 {
    let (m, k) = (a.dims()[0], a.dims()[1]);
    2 * (m * k * b.dims()[1]) as u64
}

fn bench_elementwise(c: &mut Criterion) {
    let mut group = c.benchmark_group("add");
    for (n, label) in ADD_SIZES {
        let (a, b) = (random(&[n], 3), random(&[n], 4));
        group.throughput(Throughput::Bytes(3 * n as u64 * 4));
        group.bench_function(label, |bench| bench.iter(|| black_box(a.add(&b).unwrap())));
    }
    // A bias row broadcast over 4096 rows: the right operand has stride 0.
    let (x, bias) = (random(&[4096, 1024], 5), random(&[1024], 6));
    group.throughput(Throughput::Bytes(2 * 4096 * 1024 * 4));
    group.bench_function("broadcast_row_4096x1024", |bench| {
        bench.iter(|| black_box(x.add(&bias).unwrap()))
    });
    group.finish();

    let mut group = c.benchmark_group("views");
    let m = random(&[2048, 2048], 7);
    group.throughput(Throughput::Bytes(2 * 2048 * 2048 * 4));
    group.bench_function("transpose_contiguous_2048", |bench| {
        bench.iter(|| black_box(m.t().unwrap().contiguous().unwrap()))
    });
    group.throughput(Throughput::Bytes(2048 * 2048 * 4));
    group.bench_function("sum_rows_2048", |bench| {
        bench.iter(|| black_box(m.sum([1], false).unwrap()))
    });
    group.finish();
}

/// Median and best (shortest) seconds per call of `f`, from samples taken
/// for about `budget`. On a machine shared with other work the best time is
/// the closer estimate of what the code can do.
fn seconds_per_call(mut f: impl FnMut(), budget: Duration) -> (f64, f64) {
    f(); // warm up: page in the inputs, start the gemm crate's threads (rayon's pool)
    let started = Instant::now();
    let mut samples = Vec::new();
    while started.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        f();
        samples.push(t.elapsed().as_secs_f64());
    }
    samples.sort_by(f64::total_cmp);
    (samples[samples.len() / 2], samples[0])
}

/// One plain line per benchmark, from our own timing loop.
fn plain_report(wanted: impl Fn(&str) -> bool) {
    println!();
    println!(
        "Plain timings (median and best of a 2 s loop; RAYON_NUM_THREADS={}, {} CPUs available):",
        std::env::var("RAYON_NUM_THREADS").unwrap_or_else(|_| "unset".into()),
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let budget = Duration::from_secs(2);
    let squares = SGEMM_SIZES
        .iter()
        .map(|&n| (n.to_string(), random(&[n, n], 1), random(&[n, n], 2)));
    let mlp = mlp_products()
        .into_iter()
        .map(|(name, a, b)| (name.to_string(), a, b));
    for (name, a, b) in squares.chain(mlp) {
        let name = format!("sgemm {name}");
        if !wanted(&name) {
            continue;
        }
        let (median, best) = seconds_per_call(|| drop(black_box(a.matmul(&b).unwrap())), budget);
        let gflops = |s: f64| flops(&a, &b) as f64 / s / 1e9;
        println!(
            "{name}: {:.1} GFLOP/s (best {:.1})",
            gflops(median),
            gflops(best)
        );
    }
    for (n, label) in ADD_SIZES {
        let name = format!("add {label}");
        if !wanted(&name) {
            continue;
        }
        let (a, b) = (random(&[n], 3), random(&[n], 4));
        let (median, best) = seconds_per_call(|| drop(black_box(a.add(&b).unwrap())), budget);
        let gbs = |s: f64| 3.0 * n as f64 * 4.0 / s / 1e9;
        println!("{name}: {:.1} GB/s (best {:.1})", gbs(median), gbs(best));
    }
}

fn main() {
    // As the `candle` command does: this thread is one of the kernels'.
    if let Err(e) = chapter_02::join_kernel_threads() {
        eprintln!("warning: {e}");
    }
    let mut criterion = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    bench_sgemm(&mut criterion);
    bench_elementwise(&mut criterion);
    criterion.final_summary();

    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // then criterion only checks that each benchmark runs once.
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--bench") {
        let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
        plain_report(|name| {
            filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
        });
    }
}
