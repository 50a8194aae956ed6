//! The convolutions of ResNet14 on a batch of MNIST-shaped images, one at a
//! time: the forward pass and the two gradients (input and weight) of each
//! distinct layer shape, timed separately (median of `REPS` calls).
//!
//! ```text
//! cargo run --release -p chapter-09 --example conv_layers [REPS] [BATCH] [no-direct] [no-winograd] [portable]
//! ```
//!
//! With `no-direct`, 3 × 3 stride-1 layers skip the direct AVX-512 or AVX2
//! kernels (`chapter_09::conv::set_direct_enabled`) for Winograd's method;
//! with `no-winograd`, 3 × 3 stride-1 layers take the lowering to a matrix
//! product instead of Winograd's method, for comparing the two; with
//! `portable`, none of the hand-written register kernels runs (Winograd's
//! transforms take their portable loops, and the direct kernels are off).
//!
//! `bench/conv_layers.sh` runs it beside `bench/pytorch_conv_layers.py`,
//! which times the same calls in PyTorch, and prints the ratio per layer.
use chapter_02::dispatch::call;
use chapter_02::{DType, Tensor as RawTensor};
use chapter_09::conv::{Conv2dOptions, ConvForward, ConvGeometry, ConvInputGrad, ConvWeightGrad};
use std::error::Error;
use std::time::Instant;

/// `(in, out, kernel, stride, size, how many in ResNet14)`.
const LAYERS: [(usize, usize, usize, usize, usize, usize); 8] = [
    (1, 16, 3, 1, 28, 1),
    (16, 16, 3, 1, 28, 4),
    (16, 32, 3, 2, 28, 1),
    (16, 32, 1, 2, 28, 1),
    (32, 32, 3, 1, 14, 3),
    (32, 64, 3, 2, 14, 1),
    (32, 64, 1, 2, 14, 1),
    (64, 64, 3, 1, 7, 3),
];

fn median_ms(
    reps: usize,
    mut f: impl FnMut() -> chapter_02::Result<()>,
) -> chapter_02::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(reps);
    for _ in 0..reps {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    Ok(times[reps / 2])
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let reps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(20);
    let batch: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(128);
    if reps == 0 || batch == 0 {
        return Err("REPS and BATCH must be at least 1".into());
    }
    for option in args {
        match option.as_str() {
            "no-direct" => chapter_09::conv::set_direct_enabled(false),
            "no-winograd" => chapter_09::conv::set_winograd_enabled(false),
            "portable" => {
                chapter_09::conv::set_avx512_enabled(false);
                chapter_09::conv::set_direct_enabled(false);
            }
            other => {
                return Err(format!(
                    "unknown option {other:?} (expected no-direct, no-winograd or portable)"
                )
                .into())
            }
        }
    }
    chapter_02::join_kernel_threads()?;
    let device = chapter_02::default_device()?;
    let mut total = 0.0;
    println!("layer (in,out,k,s,size) x count: forward / input grad / weight grad ms");
    for (c, o, k, s, size, count) in LAYERS {
        let opts = Conv2dOptions::default().stride(s).padding(k / 2);
        let geom = ConvGeometry::conv2d(&[batch, c, size, size], &[o, c, k, k], None, &opts)?;
        let x = RawTensor::randn(0.0, 1.0, geom.input_shape(), DType::F32, &device)?;
        let w = RawTensor::randn(0.0, 0.1, geom.weight_shape(), DType::F32, &device)?;
        let dy = RawTensor::randn(0.0, 1.0, geom.output_shape(), DType::F32, &device)?;
        let fwd = median_ms(reps, || call(&ConvForward(geom), &[&x, &w]).map(drop))?;
        let dx = if c == 1 {
            0.0 // the stem's input needs no gradient
        } else {
            median_ms(reps, || call(&ConvInputGrad(geom), &[&dy, &w]).map(drop))?
        };
        let dw = median_ms(reps, || call(&ConvWeightGrad(geom), &[&x, &dy]).map(drop))?;
        total += (fwd + dx + dw) * count as f64;
        println!("conv ({c},{o},{k},{s},{size}) x{count}: {fwd:.2} / {dx:.2} / {dw:.2}");
    }
    println!("all convolutions of one step: {total:.1} ms");
    Ok(())
}
