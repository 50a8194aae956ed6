//! Lessons: exact GELU through chapter 02's kernel registry. On the CPU the
//! forward and the backward are each one fused pass with a vectorised
//! `erf`; on a device without kernels (a `CountingDevice`, which forwards
//! primitives to the CPU) the composites made of primitives run. Both must
//! give the same numbers, and the gradient must stay right, including under
//! `create_graph`. `cargo test -p chapter-04 --test gelu_kernels`.

use chapter_02::dispatch::{call, dispatch_path};
use chapter_02::{CountingDevice, Device, DeviceKind, DispatchPath, Generator, Operator};
use chapter_03::{gradcheck, DType, GradcheckOptions, RawTensor};
use chapter_04::elementwise::{GeluBackward, GeluForward};
use chapter_04::gelu_kernels::erf_f32;
use chapter_04::prelude::*;
use chapter_04::row_kernels::set_simd_enabled;

/// Seeded normal values of `dtype` (standard deviation `std`).
fn randn(n: usize, std: f64, seed: u64, dtype: DType) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        std,
        n,
        dtype,
        &Device::cpu(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

/// The one output of `op`, by the CPU kernel and by the composite (run on
/// a counting device, which has no kernels), as `f64` values.
fn kernel_and_composite<O: Operator>(op: &O, inputs: &[&RawTensor]) -> (Vec<f64>, Vec<f64>) {
    let counter = CountingDevice::new(Device::cpu());
    let elsewhere: Vec<RawTensor> = inputs
        .iter()
        .map(|t| t.to_device(counter.device()).unwrap())
        .collect();
    let run = |ts: &[&RawTensor]| {
        let out = call(op, ts).unwrap().remove(0);
        assert_eq!(out.dtype(), ts[0].dtype(), "{}", op.name());
        assert_eq!(out.shape(), ts[0].shape(), "{}", op.name());
        out.to_vec_f64().unwrap()
    };
    let refs: Vec<&RawTensor> = elsewhere.iter().collect();
    (run(inputs), run(&refs))
}

/// `|k − c| ≤ tol·(1 + |c|)` elementwise.
fn assert_agree(kernel: &[f64], composite: &[f64], tol: f64, what: &str) {
    assert_eq!(kernel.len(), composite.len());
    for (i, (&k, &c)) in kernel.iter().zip(composite).enumerate() {
        let same = (k.is_nan() && c.is_nan()) || k == c || (k - c).abs() <= tol * (1.0 + c.abs());
        assert!(same, "{what}: element {i}: kernel {k} vs composite {c}");
    }
}

#[test]
fn gelu_kernels_erf_f32_is_within_two_ulp() {
    // Every 101st f32 in [-10, 10] (about 21 million values, tiny ones
    // included), against the correctly rounded erf, with fused
    // multiply-adds and without.
    for (fused, erf) in [
        (true, erf_f32::<true> as fn(f32) -> f32),
        (false, erf_f32::<false>),
    ] {
        let mut worst = (0u64, 0.0f32);
        for sign in [1.0f32, -1.0] {
            let mut bits = 0u32;
            while f32::from_bits(bits) <= 10.0 {
                let x = sign * f32::from_bits(bits);
                let want = libm::erf(x as f64) as f32;
                let err = (erf(x).to_bits() as i64 - want.to_bits() as i64).unsigned_abs();
                if err > worst.0 {
                    worst = (err, x);
                }
                bits += 101;
            }
        }
        assert!(
            worst.0 <= 2,
            "fma {fused}: {} ulp at x = {}",
            worst.0,
            worst.1
        );
        assert_eq!(erf(0.0), 0.0);
        assert_eq!(erf(f32::INFINITY), 1.0);
        assert_eq!(erf(f32::NEG_INFINITY), -1.0);
        assert_eq!(erf(1e30), 1.0);
        assert!(erf(f32::NAN).is_nan());
    }
}

#[test]
fn gelu_kernels_run_on_the_cpu_and_composites_elsewhere() {
    let counter = CountingDevice::new(Device::cpu());
    assert_eq!(
        dispatch_path::<GeluForward>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<GeluBackward>(counter.device().kind()).unwrap(),
        DispatchPath::Composite
    );
}

#[test]
fn gelu_kernels_match_the_composites_in_every_float_dtype() {
    // Lengths around the 8 lanes, and one above the size at which the
    // kernel splits the work between threads (with a ragged end).
    for (dtype, tol) in [
        (DType::F64, 1e-14),
        (DType::F32, 1e-6),
        (DType::F16, 4e-3),
        (DType::BF16, 3e-2),
    ] {
        for (k, n) in [1usize, 7, 8, 9, 100, 70_003].into_iter().enumerate() {
            let x = randn(n, 3.0, 10 + k as u64, dtype);
            let g = randn(n, 1.0, 20 + k as u64, dtype);
            let (kern, comp) = kernel_and_composite(&GeluForward, &[&x]);
            assert_agree(&kern, &comp, tol, &format!("gelu {dtype:?} n={n}"));
            let (kern, comp) = kernel_and_composite(&GeluBackward, &[&x, &g]);
            assert_agree(&kern, &comp, tol, &format!("gelu_backward {dtype:?} n={n}"));
        }
    }
}

#[test]
fn gelu_kernels_baseline_and_avx2_copies_agree() {
    let x = randn(1000, 4.0, 3, DType::F32);
    let g = randn(1000, 1.0, 4, DType::F32);
    let run = || {
        let y = call(&GeluForward, &[&x]).unwrap().remove(0);
        let d = call(&GeluBackward, &[&x, &g]).unwrap().remove(0);
        (y.to_vec_f64().unwrap(), d.to_vec_f64().unwrap())
    };
    let fast = run();
    set_simd_enabled(false);
    let base = run();
    set_simd_enabled(true);
    assert_agree(&fast.0, &base.0, 1e-6, "gelu");
    assert_agree(&fast.1, &base.1, 1e-6, "gelu_backward");
}

#[test]
fn gelu_kernels_read_strided_inputs_and_extreme_values() {
    // A transposed view goes through a contiguous copy; infinities and NaN
    // behave as in the composite (gelu(−∞) = −∞·0 is NaN there too).
    let x = RawTensor::from_vec(
        vec![
            -1e4f32,
            -8.0,
            -0.5,
            -1e-30,
            0.0,
            1e-30,
            0.7,
            2.5,
            9.0,
            1e4,
            f32::INFINITY,
            f32::NAN,
        ],
        (3, 4),
        &Device::cpu(),
    )
    .unwrap()
    .t()
    .unwrap();
    let g = RawTensor::ones((4, 3), DType::F32, &Device::cpu()).unwrap();
    let (kern, comp) = kernel_and_composite(&GeluForward, &[&x]);
    assert_agree(&kern, &comp, 1e-6, "gelu");
    let (kern, comp) = kernel_and_composite(&GeluBackward, &[&x, &g]);
    assert_agree(&kern, &comp, 1e-6, "gelu_backward");
}

#[test]
fn gelu_kernels_keep_the_gradient() {
    // The fused backward, checked in f64 by finite differences over a wide
    // range (the second-order check, through the autograd formula, is in
    // tests/elementwise.rs).
    let x = randn(41, 3.0, 7, DType::F64);
    gradcheck(|xs| xs[0].gelu(), &[x], GradcheckOptions::default()).unwrap();
}

#[test]
fn gelu_operators_refuse_mismatched_inputs() {
    let x = randn(4, 1.0, 1, DType::F32);
    let g = randn(5, 1.0, 2, DType::F32);
    let err = call(&GeluBackward, &[&x, &g]).unwrap_err().to_string();
    assert!(err.contains("gelu_backward"), "{err}");
    let ints = RawTensor::from_vec(vec![1i64, 2], 2, &Device::cpu()).unwrap();
    let err = call(&GeluForward, &[&ints]).unwrap_err().to_string();
    assert!(err.contains("gelu"), "{err}");
}
