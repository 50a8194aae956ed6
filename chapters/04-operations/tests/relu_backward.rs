//! Lessons: ReLU's backward as a registry operator. Outside `create_graph`
//! the gradient of `relu` is one fused CPU pass (`g` where `x > 0`, else
//! 0); the composite (compare, convert, multiply) runs on devices without
//! the kernel. `cargo test -p chapter-04 --test relu_backward`.

use chapter_02::dispatch::call;
use chapter_02::{CountingDevice, Device, Generator};
use chapter_03::{grad, gradcheck, BackwardOptions, DType, GradcheckOptions, RawTensor, Tensor};
use chapter_04::elementwise::ReluBackward;
use chapter_04::prelude::*;

fn randn(n: usize, seed: u64, dtype: DType) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        1.0,
        n,
        dtype,
        &Device::cpu(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

#[test]
fn relu_backward_kernel_matches_the_composite() {
    // Large enough to be split over the cores, a ragged length, in f32 and
    // f64; relu(z₁) − relu(z₂) is positive, negative, and exactly 0 for a
    // quarter of the elements.
    for dtype in [DType::F32, DType::F64] {
        let n = (1 << 17) + 13;
        let x = randn(n, 1, dtype).relu().unwrap();
        let x = x.sub(&randn(n, 3, dtype).relu().unwrap()).unwrap();
        let g = randn(n, 2, dtype);
        let kernel = call(&ReluBackward, &[&x, &g]).unwrap().remove(0);
        let counter = CountingDevice::new(Device::cpu());
        let on = |t: &RawTensor| t.to_device(counter.device()).unwrap();
        let composite = call(&ReluBackward, &[&on(&x), &on(&g)]).unwrap().remove(0);
        assert_eq!(kernel.shape(), composite.shape());
        assert_eq!(kernel.dtype(), dtype);
        let (k, c) = (
            kernel.to_vec_f64().unwrap(),
            composite.to_vec_f64().unwrap(),
        );
        let xs = x.to_vec_f64().unwrap();
        assert!(xs.iter().filter(|&&v| v == 0.0).count() > n / 5);
        assert!(
            k.iter().zip(&c).all(|(a, b)| a == b),
            "{dtype:?}: kernel and composite differ"
        );
        // Every element is either g or 0, by the sign of x.
        let gs = g.to_vec_f64().unwrap();
        for i in 0..n {
            let want = if xs[i] > 0.0 { gs[i] } else { 0.0 };
            assert_eq!(k[i], want, "element {i}: x = {}", xs[i]);
        }
    }
}

#[test]
fn relu_backward_takes_strided_inputs_and_refuses_mismatches() {
    let x = randn(12, 3, DType::F32)
        .reshape((3, 4))
        .unwrap()
        .t()
        .unwrap();
    let g = randn(12, 4, DType::F32).reshape((4, 3)).unwrap();
    let d = call(&ReluBackward, &[&x, &g]).unwrap().remove(0);
    let (xs, gs) = (x.to_vec_f64().unwrap(), g.to_vec_f64().unwrap());
    let want: Vec<f64> = xs
        .iter()
        .zip(&gs)
        .map(|(&x, &g)| if x > 0.0 { g } else { 0.0 })
        .collect();
    assert_eq!(d.to_vec_f64().unwrap(), want);
    let wrong = randn(5, 5, DType::F32);
    let err = call(&ReluBackward, &[&x, &wrong]).unwrap_err().to_string();
    assert!(err.contains("relu_backward"), "{err}");
    let f64s = randn(12, 6, DType::F64).reshape((4, 3)).unwrap();
    assert!(call(&ReluBackward, &[&x, &f64s]).is_err());
}

#[test]
fn relu_gradient_is_right_with_and_without_create_graph() {
    // On the device CANDLE_DEVICE names (the CPU by default): the fused
    // kernel where the device has it, the composite elsewhere.
    let device = chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"));
    let x = randn(64, 7, DType::F64).to_device(&device).unwrap();
    gradcheck(
        |xs| xs[0].relu(),
        std::slice::from_ref(&x),
        GradcheckOptions::default(),
    )
    .unwrap();
    // Second order, through the differentiable path that create_graph
    // keeps (the fused kernel's result is a constant).
    let xt = Tensor::param(x.clone()).unwrap();
    let y = xt.relu().unwrap().mul(&xt).unwrap().sum_all().unwrap();
    let keep = BackwardOptions {
        create_graph: true,
        ..BackwardOptions::default()
    };
    let g1 = grad(&y, &[&xt], None, keep).unwrap().remove(0).unwrap();
    let g2 = grad(
        &g1.sum_all().unwrap(),
        &[&xt],
        None,
        BackwardOptions::default(),
    )
    .unwrap()
    .remove(0)
    .unwrap();
    // y = Σ relu(x)·x: dy/dx = 2x·1[x>0], d²/dx² (summed) = 2·1[x>0].
    let xs = x.to_vec_f64().unwrap();
    let want1: Vec<f64> = xs
        .iter()
        .map(|&v| if v > 0.0 { 2.0 * v } else { 0.0 })
        .collect();
    let want2: Vec<f64> = xs
        .iter()
        .map(|&v| if v > 0.0 { 2.0 } else { 0.0 })
        .collect();
    assert_eq!(g1.data().to_vec_f64().unwrap(), want1);
    assert_eq!(g2.data().to_vec_f64().unwrap(), want2);
}
