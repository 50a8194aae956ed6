//! Where a training step's time goes: the MNIST MLP's step (784-256-10,
//! batch 128, Adam), split into its phases and timed in-process.
//!
//! `cargo bench -p chapter-06 --bench step` prints, per phase, the best
//! (over ROUNDS rounds, default 5) of the mean over STEPS steps (default
//! 200), in microseconds:
//!
//! ```text
//! step phases (µs, best of 5 rounds of 200 steps): forward 420, loss 35, backward 380, optimizer 270; total 1105
//! ```
//!
//! The best round is the one least disturbed by whatever else the machine
//! is doing. Multiply the total by 469 (the steps of an MNIST epoch) for
//! the epoch's training time, data loading aside.

use chapter_02::{manual_seed, DType, Device, Tensor as RawTensor};
use chapter_03::Tensor;
use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
use chapter_05::{Module, ModuleExt};
use chapter_06::{Adam, AdamConfig, Mlp, Optimizer};
use std::time::Instant;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() -> chapter_03::Result<()> {
    let (rounds, steps) = (env("ROUNDS", 5), env("STEPS", 200));
    // As the `candle` command does: this thread is one of the kernels'.
    chapter_02::join_kernel_threads()?;
    let dev = Device::cpu();
    manual_seed(0);
    let model = Mlp::new(&[784, 256, 10], 0.0, DType::F32, &dev)?;
    let x = Tensor::from_raw(RawTensor::randn(0.0, 1.0, (128, 784), DType::F32, &dev)?);
    let labels: Vec<i64> = (0..128).map(|i| (i % 10) as i64).collect();
    let y = Tensor::from_vec(labels, 128, &dev)?;
    let mut optimizer = Adam::new(model.parameters(), AdamConfig::adam(1e-3))?;
    let ce = CrossEntropyOptions::default();
    const PHASES: [&str; 4] = ["forward", "loss", "backward", "optimizer"];
    let mut best = [f64::MAX; 4];
    for _ in 0..rounds {
        let mut total = [0.0; 4];
        for _ in 0..steps {
            let t0 = Instant::now();
            let logits = model.forward(&x)?;
            let t1 = Instant::now();
            let loss = cross_entropy(&logits, &y, &ce)?;
            let t2 = Instant::now();
            optimizer.zero_grad();
            loss.backward()?;
            let t3 = Instant::now();
            optimizer.step()?;
            let t4 = Instant::now();
            for (k, (a, b)) in [(t0, t1), (t1, t2), (t2, t3), (t3, t4)].iter().enumerate() {
                total[k] += (*b - *a).as_secs_f64();
            }
        }
        for k in 0..4 {
            best[k] = best[k].min(total[k] / steps as f64 * 1e6);
        }
    }
    let parts: Vec<String> = PHASES
        .iter()
        .zip(best)
        .map(|(name, us)| format!("{name} {us:.0}"))
        .collect();
    println!(
        "step phases (µs, best of {rounds} rounds of {steps} steps): {}; total {:.0}",
        parts.join(", "),
        best.iter().sum::<f64>()
    );
    Ok(())
}
