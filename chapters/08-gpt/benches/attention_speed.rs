//! One training step's attention (forward and backward) at the Shakespeare
//! GPT's sizes, two ways: the chain of tensor operations
//! (`scaled_dot_product_attention` on the split heads, then the merge) and
//! the packed operation (`causal_attention_packed`), alternated in one run.
//!
//! ```text
//! cargo bench -p chapter-08 --bench attention_speed -- [--repeats N] [--batch B] [--t T]
//! ```
//!
//! Prints the best time of `N` runs of each (12 sequences of 64 tokens,
//! 4 heads of 32 by default, `f32`) and their ratio.

use chapter_02::Generator;
use chapter_03::{grad, BackwardOptions, DType, Device, RawTensor, Tensor};
use chapter_04::prelude::*;
use chapter_08::attention::{causal_attention_packed, merge_heads, split_heads, AttentionOptions};
use chapter_08::scaled_dot_product_attention;
use std::time::Instant;

/// The best time of `repeats` runs of `f`, in seconds.
fn best_of(repeats: usize, mut f: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn arg(args: &[String], name: &str, default: usize) -> usize {
    match args.iter().position(|a| a == name) {
        None => default,
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .unwrap_or_else(|| {
                eprintln!("attention_speed: {name} needs a whole number ≥ 1");
                std::process::exit(2)
            }),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let repeats = arg(&args, "--repeats", 50);
    let (b, t, h, d) = (arg(&args, "--batch", 12), arg(&args, "--t", 64), 4, 32);
    let c = h * d;
    let raw = RawTensor::randn_with(
        0.0,
        1.0,
        vec![b, t, 3 * c],
        DType::F32,
        &Device::cpu(),
        &mut Generator::new(1),
    )
    .unwrap();
    let qkv = Tensor::param(raw).unwrap();
    let w = Tensor::from_raw(
        RawTensor::randn_with(
            0.0,
            1.0,
            vec![b, t, c],
            DType::F32,
            &Device::cpu(),
            &mut Generator::new(2),
        )
        .unwrap(),
    );
    let step = |y: Tensor| {
        let loss = y.mul(&w).unwrap().sum_all().unwrap();
        grad(&loss, &[&qkv], None, BackwardOptions::default()).unwrap();
    };
    let chain = || {
        let heads = |at: usize| split_heads(&qkv.narrow(2, at, c).unwrap(), h).unwrap();
        let opts = AttentionOptions {
            causal: true,
            ..Default::default()
        };
        let y = scaled_dot_product_attention(&heads(0), &heads(c), &heads(2 * c), &opts).unwrap();
        step(merge_heads(&y).unwrap())
    };
    let packed = || step(causal_attention_packed(&qkv, h).unwrap());
    let (mut best_chain, mut best_packed) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..repeats.div_ceil(10) {
        best_chain = best_chain.min(best_of(10, chain));
        best_packed = best_packed.min(best_of(10, packed));
    }
    println!("attention forward + backward, B={b} T={t} H={h} d={d}, f32, best of {repeats}:");
    println!("  chain of operations  {:8.3} ms", best_chain * 1e3);
    println!("  packed operation     {:8.3} ms", best_packed * 1e3);
    println!("  ratio (packed/chain) {:8.3}", best_packed / best_chain);
}
