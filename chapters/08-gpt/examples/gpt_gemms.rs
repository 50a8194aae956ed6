//! The matrix products of one training step of nanoGPT's Shakespeare recipe,
//! and nothing else: how long they take alone, and what that leaves for the
//! rest of the step.
//!
//! ```text
//! cargo run --release -p chapter-08 --example gpt_gemms [REPS [TOKENS]]
//! ```
//!
//! The recipe of `candle train shakespeare` (4 layers, width 128, 4 heads,
//! context 64, batch 12, 65 characters, no biases, tied embeddings) runs
//! these products per step, on `N = 12·64 = 768` token rows (`TOKENS`, a
//! multiple of the context; 384 is what each of two data-parallel replicas
//! runs):
//!
//! - each of the four linear layers of a block (`128 → 384` for the fused
//!   query/key/value projection, `128 → 128` after attention, `128 → 512`
//!   and `512 → 128` in the MLP) and the tied output layer (`128 → 65`) makes
//!   three: `y = x·Wᵀ` forward, `∂x = ∂y·W` and `∂W = ∂yᵀ·x` backward;
//! - attention makes two per head forward (`S = Q·Kᵀ` and `O = P·V`, 48
//!   heads of `64 × 64` and `64 × 32`) and four backward (`∂P = ∂O·Vᵀ`,
//!   `∂V = Pᵀ·∂O`, `∂Q = ∂S·K`, `∂K = ∂Sᵀ·Q`).
//!
//! Each product runs on operands laid out as the step has them (a weight
//! read transposed is a transposed view, not a copy), through the same
//! `matmul` the model uses. The example prints the fastest of `REPS` runs
//! (default 20) of the whole list, the floating-point operations it does
//! and the rate. `bench/gpt_gemms.sh` runs it beside the same list in
//! PyTorch: the products are most of a step's arithmetic, so their time is
//! a floor under any step time, ours or PyTorch's.

use chapter_02::{DType, Tensor};
use std::error::Error;
use std::time::Instant;

/// One product `a · b`, with `a` `[batch, m, k]` and `b` `[batch, k, n]`
/// (batch 1 for a plain matrix), each operand stored transposed or not.
struct Product {
    what: &'static str,
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
    a_transposed: bool,
    b_transposed: bool,
}

/// The products of one step, in the order the step runs them.
fn products(tokens: usize) -> Vec<Product> {
    let (width, heads, context, vocab, layers) = (128, 4, 64, 65, 4);
    let head = width / heads;
    let batch_heads = tokens / context * heads;
    let p = |what, batch, m, k, n, a_transposed, b_transposed| Product {
        what,
        batch,
        m,
        k,
        n,
        a_transposed,
        b_transposed,
    };
    let mut list = Vec::new();
    let linear = |list: &mut Vec<Product>, what, fan_in, fan_out| {
        // y = x·Wᵀ (W is [out, in]), ∂x = ∂y·W, ∂W = ∂yᵀ·x.
        list.push(p(what, 1, tokens, fan_in, fan_out, false, true));
        list.push(p(what, 1, tokens, fan_out, fan_in, false, false));
        list.push(p(what, 1, fan_out, tokens, fan_in, true, false));
    };
    for _ in 0..layers {
        linear(&mut list, "qkv", width, 3 * width);
        // S = Q·Kᵀ, O = P·V; ∂P = ∂O·Vᵀ, ∂V = Pᵀ·∂O, ∂Q = ∂S·K, ∂K = ∂Sᵀ·Q,
        // each `[context, k] · [k, n]` per head: (k, n, which operand is
        // read transposed).
        let attention = [
            (head, context, false, true),
            (context, head, false, false),
            (head, context, false, true),
            (context, head, true, false),
            (context, head, false, false),
            (context, head, true, false),
        ];
        for (k, n, a_t, b_t) in attention {
            list.push(p("attention", batch_heads, context, k, n, a_t, b_t));
        }
        linear(&mut list, "proj", width, width);
        linear(&mut list, "fc", width, 4 * width);
        linear(&mut list, "fc2", 4 * width, width);
    }
    linear(&mut list, "lm_head", width, vocab);
    list
}

/// A random `[batch, rows, cols]` operand, stored as its transpose when
/// `transposed` (so the product reads it through a strided view).
fn operand(
    batch: usize,
    rows: usize,
    cols: usize,
    transposed: bool,
) -> Result<Tensor, Box<dyn Error>> {
    let device = chapter_02::default_device()?;
    Ok(if transposed {
        Tensor::randn(0.0, 1.0, [batch, cols, rows], DType::F32, &device)?.t()?
    } else {
        Tensor::randn(0.0, 1.0, [batch, rows, cols], DType::F32, &device)?
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let reps: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(20);
    if reps == 0 {
        return Err("REPS must be at least 1".into());
    }
    let tokens: usize = std::env::args()
        .nth(2)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(768);
    if tokens == 0 || !tokens.is_multiple_of(64) || tokens > 65536 {
        return Err("TOKENS must be a multiple of the context, 64, up to 65536".into());
    }
    // As `candle train` does: the main thread is one of the kernels' threads.
    chapter_02::join_kernel_threads()?;
    chapter_02::manual_seed(0);
    let list = products(tokens);
    let operands = list
        .iter()
        .map(|p| {
            Ok((
                operand(p.batch, p.m, p.k, p.a_transposed)?,
                operand(p.batch, p.k, p.n, p.b_transposed)?,
            ))
        })
        .collect::<Result<Vec<_>, Box<dyn Error>>>()?;
    let flops: f64 = list
        .iter()
        .map(|p| 2.0 * (p.batch * p.m * p.k * p.n) as f64)
        .sum();
    let mut by_what: Vec<(&str, f64)> = Vec::new();
    let mut best = f64::INFINITY;
    for rep in 0..reps + 1 {
        let mut times = Vec::with_capacity(list.len());
        let started = Instant::now();
        for (a, b) in &operands {
            let t = Instant::now();
            let c = a.matmul(b)?;
            drop(c);
            times.push(t.elapsed().as_secs_f64());
        }
        let total = started.elapsed().as_secs_f64();
        // Rep 0 warms up the allocator and the thread pool.
        if rep > 0 && total < best {
            best = total;
            by_what.clear();
            for (p, t) in list.iter().zip(&times) {
                match by_what.iter_mut().find(|(w, _)| *w == p.what) {
                    Some((_, sum)) => *sum += t,
                    None => by_what.push((p.what, *t)),
                }
            }
        }
    }
    println!(
        "{} products, {:.3} GFLOP per step: fastest of {reps}: {:.2} ms ({:.1} GFLOP/s)",
        list.len(),
        flops / 1e9,
        best * 1e3,
        flops / best / 1e9
    );
    let parts: Vec<String> = by_what
        .iter()
        .map(|(w, t)| format!("{w} {:.2}", t * 1e3))
        .collect();
    println!("by layer, ms: {}", parts.join(", "));
    Ok(())
}
