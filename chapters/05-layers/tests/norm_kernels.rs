//! Lessons: layer norm through chapter 02's kernel registry, and a batch
//! norm that keeps its counter on the device. On the CPU the fused kernels
//! run; on a device without kernels (a `CountingDevice` forwarding to the
//! CPU) the composites do, and both give the same numbers and gradients.
//! `cargo test -p chapter-05 --test norm_kernels`.

mod common;

use chapter_02::dispatch::{call, dispatch_path};
use chapter_02::{
    CountingDevice, DType, Device, DeviceKind, DispatchPath, Generator, Operator,
    Tensor as RawTensor, COUNTING,
};
use chapter_03::{grad, gradcheck, BackwardOptions, GradcheckOptions, Result, Tensor};
use chapter_05::norm::{LayerNormBackward, LayerNormForward};
use chapter_05::{layer_norm, BatchNorm1d, BatchNormConfig, Module};
use common::*;

// ---------------------------------------------------------------- helpers

fn randn_on(shape: &[usize], seed: u64, dtype: DType, device: &Device) -> RawTensor {
    RawTensor::randn_with(0.0, 1.0, shape, dtype, device, &mut Generator::new(seed)).unwrap()
}

/// A device with no registered kernels: operators run their composites.
fn composite_device() -> CountingDevice {
    CountingDevice::new(Device::cpu())
}

/// Every output of `op`, by the CPU kernel and by the composite (on a
/// counting device), as `f64` values.
fn kernel_and_composite<O: Operator>(
    op: &O,
    inputs: &[&RawTensor],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    let counter = composite_device();
    let run = |device: &Device| {
        let moved: Vec<RawTensor> = inputs
            .iter()
            .map(|t| t.to_device(device).unwrap())
            .collect();
        let refs: Vec<&RawTensor> = moved.iter().collect();
        call(op, &refs)
            .unwrap()
            .iter()
            .map(|t| {
                assert_eq!(t.dtype(), inputs[0].dtype(), "{}", op.name());
                t.to_vec_f64().unwrap()
            })
            .collect::<Vec<_>>()
    };
    (run(&Device::cpu()), run(counter.device()))
}

/// 64 units of the dtype's rounding error (the composite rounds after each
/// of its primitives, the kernel once).
fn tolerance(dtype: DType) -> f64 {
    64.0 * match dtype {
        DType::F64 => f64::EPSILON,
        DType::F32 => f32::EPSILON as f64,
        DType::F16 => 9.765625e-4,
        _ => 7.8125e-3,
    }
}

// ---------------------------------------------------------------- dispatch

#[test]
fn layer_norm_operators_dispatch_to_the_fused_kernel_on_the_cpu() {
    assert_eq!(
        dispatch_path::<LayerNormForward>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<LayerNormBackward>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<LayerNormForward>(COUNTING).unwrap(),
        DispatchPath::Composite
    );
}

#[test]
fn layer_norm_is_one_node_with_three_gradients() {
    let x = param(randn_on(&[4, 6], 1, DType::F64, &dev()));
    let (w, b) = (
        param(randn_on(&[6], 2, DType::F64, &dev())),
        param(randn_on(&[6], 3, DType::F64, &dev())),
    );
    let y = layer_norm(&x, &[6], Some(&w), Some(&b), 0.0).unwrap();
    assert_eq!(y.op_name(), Some("layer_norm"));
    let v = Tensor::from_raw(randn_on(&[4, 6], 4, DType::F64, &dev()));
    y.mul(&v).unwrap().sum_all().unwrap().backward().unwrap();
    // L = Σ v ⊙ (x̂·γ + β): ∂L/∂β = Σ_rows v, ∂L/∂γ = Σ_rows v ⊙ x̂.
    let (xs, vs) = (values(&x), values(&v));
    let mut x_hat = Vec::new();
    for row in xs.chunks(6) {
        let (mean, var) = mean_var(row);
        x_hat.extend(row.iter().map(|x| (x - mean) / var.sqrt()));
    }
    let column_sum = |f: &dyn Fn(usize) -> f64| -> Vec<f64> {
        (0..6).map(|j| (0..4).map(|i| f(i * 6 + j)).sum()).collect()
    };
    assert_close(
        &values(&b.grad().unwrap()),
        &column_sum(&|k| vs[k]),
        1e-14,
        1e-12,
    );
    assert_close(
        &values(&w.grad().unwrap()),
        &column_sum(&|k| vs[k] * x_hat[k]),
        1e-12,
        1e-10,
    );
    // ∂L/∂x has zero mean along each row and (with ε = 0) is orthogonal to
    // x̂: shifting or stretching a row changes nothing.
    let dx = values(&x.grad().unwrap());
    for (d, h) in dx.chunks(6).zip(x_hat.chunks(6)) {
        assert!(d.iter().sum::<f64>().abs() < 1e-12, "{d:?}");
        assert!(d.iter().zip(h).map(|(d, h)| d * h).sum::<f64>().abs() < 1e-12);
    }
}

// ---------------------------------------------------------------- kernel = composite

// ANCHOR: ragged
#[test]
fn layer_norm_kernels_match_the_composite_on_ragged_rows_in_every_float_dtype() {
    let cpu = Device::cpu();
    for dtype in [DType::F64, DType::F32, DType::F16, DType::BF16] {
        let tol = tolerance(dtype);
        for (seed, &(rows, n)) in [
            (3, 1),
            (5, 7),
            (4, 8),
            (6, 9),
            (7, 1000),
            (3, 4097),
            (150, 2000), // large enough to be split over the cores
        ]
        .iter()
        .enumerate()
        {
            let seed = seed as u64 * 10;
            // A mean of 3 and a spread of 2, so that centring matters.
            let x = randn_on(&[rows, n], seed, dtype, &cpu)
                .affine(2.0, 3.0)
                .unwrap();
            let w = randn_on(&[n], seed + 1, dtype, &cpu);
            let b = randn_on(&[n], seed + 2, dtype, &cpu);
            let g = randn_on(&[rows, n], seed + 3, dtype, &cpu);
            for (weight, bias) in [(true, true), (true, false), (false, true), (false, false)] {
                let what = format!("{dtype} [{rows}, {n}] weight {weight} bias {bias}");
                let fwd = LayerNormForward {
                    eps: 1e-5,
                    weight,
                    bias,
                };
                let mut inputs = vec![&x];
                inputs.extend(weight.then_some(&w));
                inputs.extend(bias.then_some(&b));
                let (k, c) = kernel_and_composite(&fwd, &inputs);
                assert_eq!(k.len(), 3);
                // y is O(|γ|·|x̂| + |β|): compare on that scale.
                for (out, (k, c)) in ["y", "mean", "rstd"].iter().zip(k.iter().zip(&c)) {
                    assert_close(k, c, 4.0 * tol, tol);
                    assert!(!k.is_empty(), "{what} {out}");
                }
                // The backward from the kernel's own statistics.
                let stats = call(&fwd, &inputs).unwrap();
                let bwd = LayerNormBackward { weight, bias };
                let mut inputs = vec![&g, &x, &stats[1], &stats[2]];
                inputs.extend(weight.then_some(&w));
                let (k, c) = kernel_and_composite(&bwd, &inputs);
                assert_eq!(k.len(), 1 + weight as usize + bias as usize, "{what}");
                for (k, c) in k.iter().zip(&c) {
                    // dγ and dβ are sums over `rows` terms of size O(1).
                    let scale = (rows as f64).sqrt();
                    assert_close(k, c, 4.0 * tol * scale, tol);
                }
            }
        }
    }
}
// ANCHOR_END: ragged

#[test]
fn layer_norm_kernels_give_the_same_bits_with_and_without_avx2() {
    // The only test of this binary that switches SIMD off.
    let cpu = Device::cpu();
    for dtype in [DType::F32, DType::F64] {
        let x = randn_on(&[9, 300], 1, dtype, &cpu);
        let w = randn_on(&[300], 2, dtype, &cpu);
        let b = randn_on(&[300], 3, dtype, &cpu);
        let g = randn_on(&[9, 300], 4, dtype, &cpu);
        let run = |simd: bool| -> Vec<Vec<u64>> {
            chapter_04::row_kernels::set_simd_enabled(simd);
            let fwd = LayerNormForward {
                eps: 1e-5,
                weight: true,
                bias: true,
            };
            let mut out = call(&fwd, &[&x, &w, &b]).unwrap();
            let bwd = LayerNormBackward {
                weight: true,
                bias: true,
            };
            out.extend(call(&bwd, &[&g, &x, &out[1], &out[2], &w]).unwrap());
            chapter_04::row_kernels::set_simd_enabled(true);
            out.iter()
                .map(|t| {
                    t.to_vec_f64()
                        .unwrap()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                })
                .collect()
        };
        assert_eq!(run(true), run(false), "{dtype}");
    }
}

// ANCHOR: numerics
#[test]
fn layer_norm_kernel_centres_before_squaring() {
    // Rows with mean 10 000 and spread 1, in f32. Through E[x²] − E[x]²
    // the variance would be the difference of two numbers near 10⁸, whose
    // f32 rounding error (about 8) is larger than the variance itself. The
    // kernel squares x − μ instead.
    let x32 = randn_on(&[8, 512], 5, DType::F32, &Device::cpu())
        .add_scalar(1e4)
        .unwrap();
    let y = call(
        &LayerNormForward {
            eps: 0.0,
            weight: false,
            bias: false,
        },
        &[&x32],
    )
    .unwrap();
    // The reference: the same f32 inputs, normalised in f64.
    let x = x32.to_vec_f64().unwrap();
    let mut want = Vec::new();
    for row in x.chunks(512) {
        let (mean, var) = mean_var(row);
        want.extend(row.iter().map(|v| (v - mean) / var.sqrt()));
    }
    assert_close(&y[0].to_vec_f64().unwrap(), &want, 2e-3, 0.0);
    let var_rel_err = |r: usize| {
        let (_, var) = mean_var(&x[r * 512..(r + 1) * 512]);
        let rstd = y[2].to_vec_f64().unwrap()[r];
        (1.0 / (rstd * rstd) - var).abs() / var
    };
    assert!((0..8).all(|r| var_rel_err(r) < 1e-3));
}
// ANCHOR_END: numerics

#[test]
fn layer_norm_operators_check_their_inputs_once() {
    let cpu = Device::cpu();
    let x = randn_on(&[2, 3], 1, DType::F64, &cpu);
    let w = randn_on(&[4], 1, DType::F64, &cpu);
    let fwd = LayerNormForward {
        eps: 1e-5,
        weight: true,
        bias: false,
    };
    let e = call(&fwd, &[&x, &w]).unwrap_err().to_string();
    assert!(
        e.starts_with("layer_norm: shape mismatch [2, 3] vs [4]"),
        "{e}"
    );
    let e = call(&fwd, &[&x]).unwrap_err().to_string();
    assert_eq!(e, "layer_norm: takes 2 tensors, got 1");
    let e = call(
        &LayerNormBackward {
            weight: false,
            bias: false,
        },
        &[&x, &x, &x, &x],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.starts_with("layer_norm_backward: shape mismatch [2, 3] vs [2, 3]"),
        "{e}"
    );
    // Through the autograd function: a weight of the wrong shape is named.
    let bad = Tensor::from_raw(randn_on(&[3, 1], 1, DType::F64, &cpu));
    let e = layer_norm(&Tensor::from_raw(x), &[3], Some(&bad), None, 1e-5)
        .unwrap_err()
        .to_string();
    assert!(e.contains("[3, 1]") && e.contains("[3]"), "{e}");
}

// ---------------------------------------------------------------- gradients

/// `layer_norm` over the trailing `normalized` dims of `inputs[0]`, with
/// the weight and the bias that follow it, if any.
fn ln(
    normalized: &'static [usize],
    weight: bool,
    bias: bool,
) -> impl Fn(&[Tensor]) -> Result<Tensor> {
    move |t: &[Tensor]| {
        let w = weight.then(|| &t[1]);
        let b = bias.then(|| &t[weight as usize + 1]);
        layer_norm(&t[0], normalized, w, b, 1e-5)
    }
}

/// Gradient checks of every affine combination on `device`.
fn gradcheck_layer_norm_on(device: &Device) {
    let cases: [(&[usize], &'static [usize]); 3] =
        [(&[3, 5], &[5]), (&[2, 3, 4], &[3, 4]), (&[4, 9], &[9])];
    for (seed, (shape, normalized)) in cases.into_iter().enumerate() {
        let seed = seed as u64 * 10;
        for (weight, bias) in [(true, true), (true, false), (false, true), (false, false)] {
            let mut inputs = vec![randn_on(shape, seed, DType::F64, device)];
            if weight {
                inputs.push(randn_on(normalized, seed + 1, DType::F64, device));
            }
            if bias {
                inputs.push(randn_on(normalized, seed + 2, DType::F64, device));
            }
            gradcheck(
                ln(normalized, weight, bias),
                &inputs,
                GradcheckOptions::default(),
            )
            .unwrap_or_else(|e| panic!("{shape:?} weight {weight} bias {bias}: {e}"));
        }
    }
}

// ANCHOR: gradcheck_paths
#[test]
fn layer_norm_gradcheck_through_the_cpu_kernels_with_and_without_affine() {
    gradcheck_layer_norm_on(&Device::cpu());
}

#[test]
fn layer_norm_gradcheck_through_the_composites_on_a_device_without_kernels() {
    let counter = composite_device();
    gradcheck_layer_norm_on(counter.device());
    assert!(counter.counts().calls("reduce") > 0, "the composite ran");
}

#[test]
fn layer_norm_second_order_gradcheck_on_both_paths() {
    // x, γ, β ↦ ∂(Σ y ⊙ v)/∂x and ↦ ∂(Σ y ⊙ v)/∂γ, recorded with
    // create_graph, are themselves checked against finite differences.
    let counter = composite_device();
    for device in [Device::cpu(), counter.device().clone()] {
        let v = Tensor::from_raw(randn_on(&[3, 6], 9, DType::F64, &device));
        for wrt in [0, 1] {
            let df = |t: &[Tensor]| -> Result<Tensor> {
                let _recording = chapter_03::set_grad_enabled(true);
                let leaves: Vec<Tensor> = t
                    .iter()
                    .map(|t| match t.requires_grad() {
                        true => Ok(t.clone()),
                        false => Tensor::param(t.data()),
                    })
                    .collect::<Result<_>>()?;
                let y = layer_norm(&leaves[0], &[6], Some(&leaves[1]), Some(&leaves[2]), 1e-5)?;
                let opts = BackwardOptions {
                    retain_graph: true,
                    create_graph: true,
                };
                let loss = y.mul(&v)?.sum_all()?;
                Ok(grad(&loss, &[&leaves[wrt]], None, opts)?
                    .remove(0)
                    .expect("depends on it"))
            };
            let inputs = [
                randn_on(&[3, 6], 1, DType::F64, &device),
                randn_on(&[6], 2, DType::F64, &device),
                randn_on(&[6], 3, DType::F64, &device),
            ];
            gradcheck(df, &inputs, GradcheckOptions::default())
                .unwrap_or_else(|e| panic!("{device} wrt input {wrt}: {e}"));
        }
    }
}
// ANCHOR_END: gradcheck_paths

#[test]
fn layer_norm_gradients_from_the_kernel_equal_the_composites() {
    let counter = composite_device();
    let grads: Vec<Vec<Vec<f64>>> = [Device::cpu(), counter.device().clone()]
        .iter()
        .map(|device| {
            let x = param(randn_on(&[5, 2, 8], 1, DType::F64, device));
            let w = param(randn_on(&[2, 8], 2, DType::F64, device));
            let b = param(randn_on(&[2, 8], 3, DType::F64, device));
            let v = Tensor::from_raw(randn_on(&[5, 2, 8], 4, DType::F64, device));
            let y = layer_norm(&x, &[2, 8], Some(&w), Some(&b), 1e-5).unwrap();
            y.mul(&v).unwrap().sum_all().unwrap().backward().unwrap();
            [x, w, b]
                .iter()
                .map(|t| values(&t.grad().unwrap()))
                .collect()
        })
        .collect();
    for (k, c) in grads[0].iter().zip(&grads[1]) {
        assert_close(k, c, 1e-13, 1e-12);
    }
}

// ---------------------------------------------------------------- no host transfers

// ANCHOR: no_transfers
#[test]
fn batch_norm_and_layer_norm_training_steps_make_no_host_transfers() {
    for momentum in [Some(0.1), None] {
        let counter = composite_device();
        let device = counter.device();
        let config = BatchNormConfig {
            momentum,
            ..BatchNormConfig::default()
        };
        let bn = BatchNorm1d::with_options(3, config, DType::F32, device).unwrap();
        let x = param(randn_on(&[8, 3], 1, DType::F32, device));
        let w = param(RawTensor::ones(3, DType::F32, device).unwrap());
        counter.reset();
        for _ in 0..3 {
            let y = bn.forward(&x).unwrap();
            let y = layer_norm(&y, &[3], Some(&w), None, 1e-5).unwrap();
            y.mul(&y).unwrap().sum_all().unwrap().backward().unwrap();
        }
        assert_eq!(
            counter.host_transfers(),
            0,
            "momentum {momentum:?}: {:?}",
            counter.counts()
        );
        // The counter and the cumulative average were kept on the device.
        assert_eq!(bn.num_batches_tracked.get().to_vec::<i64>().unwrap(), [3]);
        let mean = x.data().mean([0], false).unwrap().to_vec_f64().unwrap();
        let running = bn.running_mean.get().to_vec_f64().unwrap();
        let expected: Vec<f64> = match momentum {
            // Three updates toward the same batch mean: 1 − 0.9³ of it.
            Some(m) => mean.iter().map(|v| v * (1.0 - (1.0 - m).powi(3))).collect(),
            // The average of three identical batch means.
            None => mean,
        };
        assert_close(&running, &expected, 1e-6, 1e-5);
    }
}
// ANCHOR_END: no_transfers
