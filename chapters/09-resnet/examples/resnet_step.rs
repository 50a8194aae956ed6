//! Where a ResNet14 training step spends its time: the forward pass, the
//! backward pass and the optimiser update, timed separately over a few
//! steps on a random MNIST-shaped batch (128 × 1 × 28 × 28, the network of
//! `candle train mnist --model resnet14`, AdamW).
//!
//! ```text
//! cargo run --release -p chapter-09 --example resnet_step [STEPS] [BATCH] [portable | no-direct]
//! ```
//!
//! With `portable`, the convolutions take their portable loops instead of
//! the AVX-512 registers (`chapter_09::conv::set_avx512_enabled`) and the
//! direct kernels, for measuring what the registers are worth; with
//! `no-direct`, the 3 × 3 layers take Winograd's method and the lowering
//! instead of the direct AVX-512 or AVX2 kernels
//! (`chapter_09::conv::set_direct_enabled`). It prints the median of each
//! phase. `bench/resnet_mnist.sh` compares a
//! whole epoch with PyTorch; this example is for finding which phase to
//! make faster (run it under `perf record` to see which kernels).

use chapter_03::{DType, Tensor};
use chapter_05::{cross_entropy, CrossEntropyOptions, Module, ModuleExt};
use chapter_06::optim::{Adam, AdamConfig, Optimizer};
use chapter_09::resnet::{ResNet, ResNetConfig};
use std::error::Error;
use std::time::Instant;

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(10);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    if steps == 0 || batch == 0 {
        return Err("STEPS and BATCH must be at least 1".into());
    }
    match args.next().as_deref() {
        None => {}
        Some("portable") => {
            chapter_09::conv::set_avx512_enabled(false);
            chapter_09::conv::set_direct_enabled(false);
        }
        Some("no-direct") => chapter_09::conv::set_direct_enabled(false),
        Some(other) => {
            return Err(format!("unknown option {other:?} (expected portable or no-direct)").into())
        }
    }
    // As `candle train` does: the main thread is one of the kernels' threads.
    chapter_02::join_kernel_threads()?;
    let device = chapter_02::default_device()?;
    chapter_02::manual_seed(0);
    let model = ResNet::new(&ResNetConfig::resnet14_mnist(), DType::F32, &device)?;
    let mut opt = Adam::new(model.parameters(), AdamConfig::adamw(3e-3))?;
    let x = Tensor::randn(0.0, 1.0, [batch, 1, 28, 28], DType::F32, &device)?;
    let labels: Vec<i64> = (0..batch).map(|i| (i % 10) as i64).collect();
    let y = Tensor::from_vec(labels, batch, &device)?;
    let (mut fwd, mut bwd, mut upd) = (vec![], vec![], vec![]);
    for step in 0..steps + 1 {
        let t0 = Instant::now();
        let loss = cross_entropy(&model.forward(&x)?, &y, &CrossEntropyOptions::default())?;
        let loss_value = loss.item()?;
        let t1 = Instant::now();
        opt.zero_grad();
        loss.backward()?;
        let t2 = Instant::now();
        opt.step()?;
        let t3 = Instant::now();
        if step > 0 {
            // Step 0 warms up the allocator and the thread pool.
            fwd.push((t1 - t0).as_secs_f64());
            bwd.push((t2 - t1).as_secs_f64());
            upd.push((t3 - t2).as_secs_f64());
        }
        eprintln!("step {step}: loss {loss_value:.4}");
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2] * 1e3
    };
    let (f, b, u) = (median(&mut fwd), median(&mut bwd), median(&mut upd));
    println!("batch {batch}, {steps} steps, median ms: forward {f:.1}, backward {b:.1}, update {u:.1}, total {:.1}", f + b + u);
    println!(
        "an epoch of 60000 images at this speed: {:.1} s",
        (f + b + u) / 1e3 * 60000.0 / batch as f64
    );
    Ok(())
}
