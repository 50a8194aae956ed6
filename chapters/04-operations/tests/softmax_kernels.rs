//! Lessons: softmax and log-softmax through chapter 02's kernel registry.
//! On the CPU a fused single-pass kernel runs; on a device without kernels
//! (here a `CountingDevice`, which forwards primitives to the CPU) the
//! composite made of primitives does. Both must give the same numbers, the
//! same NaN and infinity behaviour, and correct gradients.
//! `cargo test -p chapter-04 --test softmax_kernels`.

mod common;
use chapter_02::dispatch::{call, dispatch_path};
use chapter_02::{CountingDevice, Device, DeviceKind, DispatchPath, Generator, COUNTING};
use chapter_03::{
    grad, gradcheck, set_grad_enabled, BackwardOptions, DType, GradcheckOptions, RawTensor, Result,
    Tensor,
};
use chapter_04::prelude::*;
use chapter_04::row_kernels::{
    exp_f32, for_row_chunks, set_simd_enabled, PARALLEL_MIN_WORK, ROW_COST,
};
use common::*;

// ---------------------------------------------------------------- helpers

/// Seeded normal values of `dtype` on `device`.
fn randn_on(shape: &[usize], std: f64, seed: u64, dtype: DType, device: &Device) -> RawTensor {
    RawTensor::randn_with(0.0, std, shape, dtype, device, &mut Generator::new(seed)).unwrap()
}

/// A device with no registered kernels: every operator runs its composite
/// there, computed by the CPU's primitives.
fn composite_device() -> CountingDevice {
    CountingDevice::new(Device::cpu())
}

/// The one output of `op` on `inputs`, by the CPU kernel and by the
/// composite (on a counting device), as `f64` values.
fn kernel_and_composite<O: chapter_02::Operator>(
    op: &O,
    inputs: &[&RawTensor],
) -> (Vec<f64>, Vec<f64>) {
    let cpu: Vec<RawTensor> = inputs
        .iter()
        .map(|t| t.to_device(&Device::cpu()).unwrap())
        .collect();
    let counter = composite_device();
    let elsewhere: Vec<RawTensor> = inputs
        .iter()
        .map(|t| t.to_device(counter.device()).unwrap())
        .collect();
    let run = |ts: &[RawTensor]| {
        let refs: Vec<&RawTensor> = ts.iter().collect();
        let out = call(op, &refs).unwrap().remove(0);
        assert_eq!(out.dtype(), ts[0].dtype(), "{}", op.name());
        assert_eq!(out.shape(), ts[0].shape(), "{}", op.name());
        out.to_vec_f64().unwrap()
    };
    (run(&cpu), run(&elsewhere))
}

/// `|k − c| ≤ atol + rtol·|c|` elementwise, with NaN only where both are
/// NaN and infinities equal.
fn assert_agree(kernel: &[f64], composite: &[f64], rtol: f64, atol: f64, what: &str) {
    assert_eq!(kernel.len(), composite.len());
    for (i, (&k, &c)) in kernel.iter().zip(composite).enumerate() {
        let same = (k.is_nan() && c.is_nan()) || k == c || (k - c).abs() <= atol + rtol * c.abs();
        assert!(same, "{what}: element {i}: kernel {k} vs composite {c}");
    }
}

/// The tolerance of kernel against composite, relative to the size of the
/// terms involved: 64 units of the dtype's rounding error. The kernel
/// rounds once, at the end; the composite rounds after each of its
/// primitives (for the half types, `x − m` alone loses up to
/// `|x − m|·2⁻⁹` in bf16), and the two sum a row in different orders.
fn tolerance(dtype: DType) -> f64 {
    64.0 * match dtype {
        DType::F64 => f64::EPSILON,
        DType::F32 => f32::EPSILON as f64,
        DType::F16 => 9.765625e-4, // 2⁻¹⁰
        _ => 7.8125e-3,            // bf16: 2⁻⁷
    }
}

// ---------------------------------------------------------------- dispatch

// ANCHOR: dispatch
#[test]
fn softmax_operators_dispatch_to_the_fused_kernel_on_the_cpu() {
    assert_eq!(
        dispatch_path::<SoftmaxLastDim>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<LogSoftmaxLastDim>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<SoftmaxBackward>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    assert_eq!(
        dispatch_path::<LogSoftmaxBackward>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel
    );
    // A device kind nobody wrote a kernel for gets the composite.
    assert_eq!(
        dispatch_path::<SoftmaxLastDim>(COUNTING).unwrap(),
        DispatchPath::Composite
    );
}

#[test]
fn softmax_on_a_device_without_kernels_runs_the_composite_and_stays_there() {
    let counter = composite_device();
    let x = Tensor::from_raw(randn_on(&[4, 10], 1.0, 1, DType::F32, counter.device()))
        .requires_grad_()
        .unwrap();
    let w = Tensor::from_raw(randn_on(&[4, 10], 1.0, 2, DType::F32, counter.device()));
    counter.reset();
    let y = x.softmax(-1).unwrap();
    // The composite: max, sub, exp, sum, div.
    let counts = counter.counts();
    assert_eq!(counts.calls("reduce"), 2, "{counts:?}");
    assert_eq!(counts.calls("unary"), 1, "{counts:?}");
    y.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(x.grad().unwrap().dims(), [4, 10]);
    assert_eq!(counter.host_transfers(), 0, "no data left the device");
}
// ANCHOR_END: dispatch

// ---------------------------------------------------------------- kernel = composite

// ANCHOR: ragged
#[test]
fn softmax_kernels_match_the_composite_on_ragged_rows_in_every_float_dtype() {
    // Row lengths around the 8 lanes and the 64-element blocks of the
    // kernel, and the last two tensors large enough to be split over the
    // cores (`PARALLEL_MIN_WORK`).
    let shapes: [&[usize]; 9] = [
        &[3, 1],
        &[5, 7],
        &[4, 8],
        &[6, 9],
        &[2, 3, 65],
        &[7, 1000],
        &[3, 4097],
        &[300, 1000],
        &[4000, 9],
    ];
    for dtype in [DType::F64, DType::F32, DType::F16, DType::BF16] {
        let tol = tolerance(dtype);
        for (seed, shape) in shapes.iter().enumerate() {
            let x = randn_on(shape, 3.0, seed as u64, dtype, &Device::cpu());
            let g = randn_on(shape, 1.0, 100 + seed as u64, dtype, &Device::cpu());
            let what = |op: &str| format!("{op} {dtype} {shape:?}");
            // Probabilities: relative error (and an absolute one for the
            // tiniest, which f16 stores as subnormals).
            let (k, c) = kernel_and_composite(&SoftmaxLastDim, &[&x]);
            assert_agree(&k, &c, tol, tol * 1e-3, &what("softmax"));
            // Log-probabilities are differences of terms of size |x − m|
            // (up to about 20 here): absolute error on that scale.
            let (k, c) = kernel_and_composite(&LogSoftmaxLastDim, &[&x]);
            assert_agree(&k, &c, tol, 20.0 * tol, &what("log_softmax"));
            // The gradients are differences of terms of size about 1 (`g`
            // and `y·Σg`).
            let y = call(&SoftmaxLastDim, &[&x]).unwrap().remove(0);
            let (k, c) = kernel_and_composite(&SoftmaxBackward, &[&y, &g]);
            assert_agree(&k, &c, tol, tol, &what("softmax_backward"));
            let ly = call(&LogSoftmaxLastDim, &[&x]).unwrap().remove(0);
            let (k, c) = kernel_and_composite(&LogSoftmaxBackward, &[&ly, &g]);
            assert_agree(&k, &c, tol, tol, &what("log_softmax_backward"));
        }
    }
}
// ANCHOR_END: ragged

// ANCHOR: special_values
#[test]
fn softmax_kernels_keep_the_composites_nan_and_infinity_behaviour() {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    // Rows of 11 (one full lane group and a padded tail): a causal-mask
    // row, a fully masked row, a row with +∞, a row with NaN, and huge
    // finite values.
    let mut v = vec![0.0; 5 * 11];
    for (j, x) in v.iter_mut().enumerate() {
        *x = (j % 11) as f64 * 0.5 - 2.0;
    }
    v[2..11].fill(-inf); // row 0: only two positions visible
    v[11..22].fill(-inf); // row 1: everything masked
    v[25] = inf; // row 2
    v[40] = nan; // row 3
    for (j, x) in v[44..55].iter_mut().enumerate() {
        *x = 3e38 - j as f64 * 1e37; // row 4: near f32::MAX
    }
    for dtype in [DType::F64, DType::F32] {
        let x = RawTensor::from_f64_vec(v.clone(), (5, 11), dtype, &Device::cpu()).unwrap();
        for (name, (k, c)) in [
            ("softmax", kernel_and_composite(&SoftmaxLastDim, &[&x])),
            (
                "log_softmax",
                kernel_and_composite(&LogSoftmaxLastDim, &[&x]),
            ),
        ] {
            let tol = tolerance(dtype);
            assert_agree(&k, &c, tol, tol, &format!("{name} {dtype}"));
            // The masked row is NaN throughout, as in PyTorch; the row with
            // the two visible positions is finite.
            assert!(k[11..22].iter().all(|p| p.is_nan()), "{name}: {k:?}");
            assert!(k[22..33].iter().all(|p| p.is_nan()), "{name}: +∞ row");
            assert!(k[33..44].iter().all(|p| p.is_nan()), "{name}: NaN row");
            assert!(k[..2].iter().all(|p| p.is_finite()), "{name}: {k:?}");
            assert!(k[44..].iter().all(|p| p.is_finite()), "{name}: huge row");
        }
        let (k, _) = kernel_and_composite(&SoftmaxLastDim, &[&x]);
        assert_eq!(&k[2..11], &[0.0; 9], "masked positions get exactly 0");
        assert!((k[0] + k[1] - 1.0).abs() < 1e-6);
    }
}
// ANCHOR_END: special_values

#[test]
fn softmax_operators_check_their_inputs_once() {
    let x = randn_on(&[2, 3], 1.0, 1, DType::F64, &Device::cpu());
    let y = randn_on(&[3, 2], 1.0, 1, DType::F64, &Device::cpu());
    assert_eq!(
        err(call(&SoftmaxBackward, &[&x, &y])),
        "softmax_backward: shape mismatch [2, 3] vs [3, 2]"
    );
    let ids = RawTensor::from_vec(vec![1i64, 2], 2, &Device::cpu()).unwrap();
    assert_eq!(
        err(call(&SoftmaxLastDim, &[&ids])),
        "softmax: not supported for dtype i64"
    );
    let f32s = x.to_dtype(DType::F32).unwrap();
    assert!(err(call(&LogSoftmaxBackward, &[&x, &f32s])).starts_with("log_softmax_backward:"));
    // Empty rows and empty tensors give empty results on both paths.
    let empty = RawTensor::zeros((3, 0), DType::F32, &Device::cpu()).unwrap();
    let (k, c) = kernel_and_composite(&SoftmaxLastDim, &[&empty]);
    assert!(k.is_empty() && c.is_empty());
}

#[test]
fn softmax_kernels_give_the_same_results_with_and_without_avx2() {
    // The AVX2+FMA copy of each kernel and the baseline copy run the same
    // operations in the same order; only the f32 `exp` differs, where one
    // fuses its multiply-adds. So f64 results must agree to the bit and
    // f32 ones within a few ulp. (The only test of this binary that
    // switches SIMD off; the others would merely run slower meanwhile.)
    for dtype in [DType::F32, DType::F64] {
        let x = randn_on(&[9, 1000], 3.0, 1, dtype, &Device::cpu());
        let g = randn_on(&[9, 1000], 1.0, 2, dtype, &Device::cpu());
        let y = call(&SoftmaxLastDim, &[&x]).unwrap().remove(0);
        let ly = call(&LogSoftmaxLastDim, &[&x]).unwrap().remove(0);
        let run = |simd: bool| -> Vec<Vec<f64>> {
            set_simd_enabled(simd);
            let out = [
                call(&SoftmaxLastDim, &[&x]),
                call(&LogSoftmaxLastDim, &[&x]),
                call(&SoftmaxBackward, &[&y, &g]),
                call(&LogSoftmaxBackward, &[&ly, &g]),
            ];
            set_simd_enabled(true);
            out.into_iter()
                .map(|t| t.unwrap()[0].to_vec_f64().unwrap())
                .collect()
        };
        let (fast, baseline) = (run(true), run(false));
        for (f, b) in fast.iter().zip(&baseline) {
            match dtype {
                DType::F64 => assert!(f.iter().zip(b).all(|(f, b)| f.to_bits() == b.to_bits())),
                _ => assert_agree(
                    f,
                    b,
                    4.0 * f32::EPSILON as f64,
                    1e-6,
                    "f32 with and without FMA",
                ),
            }
        }
    }
}

// ---------------------------------------------------------------- gradients

/// Finite differences agree with backward for `f` applied to `x`.
fn check(x: RawTensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    gradcheck(|xs| f(&xs[0]), &[x], GradcheckOptions::default()).unwrap();
}

/// `gradcheck` of `x ↦ ∂(Σ f(x) ⊙ w)/∂x`: the backward, recorded with
/// `create_graph`, is itself correctly differentiable.
fn check_second_order(x: RawTensor, f: impl Fn(&Tensor) -> Result<Tensor>) {
    let w = Tensor::from_raw(randn_on(x.dims(), 1.0, 99, x.dtype(), x.device()));
    let df = |xs: &[Tensor]| -> Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let x = if xs[0].requires_grad() {
            xs[0].clone()
        } else {
            Tensor::param(xs[0].data())?
        };
        let y = f(&x)?.mul(&w)?.sum_all()?;
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        Ok(grad(&y, &[&x], None, opts)?
            .remove(0)
            .expect("f depends on x"))
    };
    gradcheck(df, &[x], GradcheckOptions::default()).unwrap();
}

const CASES: [(&[usize], i64); 7] = [
    (&[5], 0),
    (&[2, 3], 1),
    (&[2, 3], 0),
    (&[2, 3, 4], -1),
    (&[2, 3, 4], 1),
    (&[2, 3, 4], 0),
    (&[3, 19], -1),
];

// ANCHOR: gradcheck_paths
#[test]
fn softmax_gradcheck_through_the_cpu_kernels_over_dims_and_shapes() {
    for (seed, (shape, dim)) in CASES.into_iter().enumerate() {
        let x = randn_on(shape, 2.0, seed as u64, DType::F64, &Device::cpu());
        check(x.clone(), |x| x.softmax(dim));
        check(x, |x| x.log_softmax(dim));
    }
}

#[test]
fn softmax_gradcheck_through_the_composites_on_a_device_without_kernels() {
    let counter = composite_device();
    for (seed, (shape, dim)) in CASES.into_iter().enumerate() {
        let x = randn_on(shape, 2.0, seed as u64, DType::F64, counter.device());
        check(x.clone(), |x| x.softmax(dim));
        check(x, |x| x.log_softmax(dim));
    }
    assert!(counter.counts().calls("reduce") > 0, "the composite ran");
}

#[test]
fn softmax_second_order_gradcheck_on_both_paths() {
    let counter = composite_device();
    for device in [Device::cpu(), counter.device().clone()] {
        for (seed, (shape, dim)) in CASES.into_iter().enumerate().skip(1).step_by(2) {
            let x = randn_on(shape, 1.0, seed as u64, DType::F64, &device);
            check_second_order(x.clone(), |x| x.softmax(dim));
            check_second_order(x, |x| x.log_softmax(dim));
        }
    }
}
// ANCHOR_END: gradcheck_paths

#[test]
fn softmax_gradients_from_the_kernel_equal_the_composites() {
    // The same f64 logits and cotangent on both paths, along a middle dim
    // (moved last and back) and the last.
    let counter = composite_device();
    for dim in [1i64, 2] {
        let grads: Vec<Vec<f64>> = [Device::cpu(), counter.device().clone()]
            .iter()
            .map(|device| {
                let x = Tensor::from_raw(randn_on(&[3, 5, 9], 2.0, 7, DType::F64, device))
                    .requires_grad_()
                    .unwrap();
                let w = Tensor::from_raw(randn_on(&[3, 5, 9], 1.0, 8, DType::F64, device));
                let loss = x.softmax(dim).unwrap().mul(&w).unwrap();
                let loss = loss.add(&x.log_softmax(dim).unwrap().mul(&w).unwrap());
                loss.unwrap().sum_all().unwrap().backward().unwrap();
                values(&x.grad().unwrap())
            })
            .collect();
        assert_close(&grads[0], &grads[1], 1e-13);
    }
}

// ---------------------------------------------------------------- the tools

// ANCHOR: exp_accuracy
#[test]
fn softmax_row_kernels_exp_f32_is_within_two_ulp() {
    // Every 997th f32 in [-104, 89] (about 1.1 million values, subnormal
    // results included), against the correctly rounded exp, with fused
    // multiply-adds and without.
    fn worst(exp: fn(f32) -> f32) -> (u32, f32) {
        let ulp_error = |x: f32| -> u32 {
            let want = (x as f64).exp() as f32;
            (exp(x).to_bits() as i64 - want.to_bits() as i64).unsigned_abs() as u32
        };
        let mut worst = (0u32, 0.0f32);
        let mut see = |x: f32| {
            let e = ulp_error(x);
            if e > worst.0 {
                worst = (e, x);
            }
        };
        let mut bits = (-104.0f32).to_bits();
        while f32::from_bits(bits) < 0.0 {
            see(f32::from_bits(bits));
            bits -= 997;
        }
        let mut bits = 0u32;
        while f32::from_bits(bits) < 88.7 {
            see(f32::from_bits(bits));
            bits += 997;
        }
        worst
    }
    for (fused, exp) in [
        (true, exp_f32::<true> as fn(f32) -> f32),
        (false, exp_f32::<false>),
    ] {
        let (ulp, x) = worst(exp);
        assert!(ulp <= 2, "fma {fused}: {ulp} ulp at x = {x}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(f32::INFINITY), f32::INFINITY);
        assert_eq!(exp(89.0), f32::INFINITY);
        assert!(exp(f32::NAN).is_nan());
        assert_eq!(exp(0.0), 1.0);
    }
}
// ANCHOR_END: exp_accuracy

#[test]
fn softmax_row_kernels_split_only_large_tensors_over_threads() {
    // Below the threshold: one chunk with every row.
    let mut small = vec![0u32; (PARALLEL_MIN_WORK / (10 + ROW_COST) - 1) * 10];
    let chunks = for_row_chunks(&mut small, 10, |rows, chunk| {
        chunk.fill(rows.start as u32);
        rows
    });
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0], 0..small.len() / 10);
    // Above it: one chunk per core, in row order, covering every row once.
    let rows = PARALLEL_MIN_WORK / (10 + ROW_COST) + 1;
    let mut large = vec![u32::MAX; rows * 10];
    let chunks = for_row_chunks(&mut large, 10, |r, chunk| {
        for (i, row) in r.clone().zip(chunk.chunks_mut(10)) {
            row.fill(i as u32);
        }
        r
    });
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    assert_eq!(chunks.len(), cores.min(rows));
    assert_eq!(chunks.first().unwrap().start, 0);
    assert_eq!(chunks.last().unwrap().end, rows);
    for (i, row) in large.chunks(10).enumerate() {
        assert!(row.iter().all(|&v| v == i as u32), "row {i}");
    }
}
