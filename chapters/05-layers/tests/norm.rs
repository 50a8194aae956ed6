//! Normalisation layers: `cargo test -p chapter-05 layer_norm`, `rms_norm`,
//! `batch_norm`.

mod common;

use chapter_02::{manual_seed, DType, Tensor as RawTensor};
use chapter_03::{grad, BackwardOptions, Tensor};
use chapter_04::prelude::*;
use chapter_05::{
    batch_norm, layer_norm, rms_norm, BatchNorm1d, BatchNormConfig, Buffer, LayerNorm, Module,
    ModuleExt, RmsNorm, StateDictExt,
};
use common::*;

/// LayerNorm written with plain autograd ops, the reference for the fused op.
fn layer_norm_reference(x: &Tensor, dims: &[i64], w: &Tensor, b: &Tensor, eps: f64) -> Tensor {
    let mean = x.mean(dims, true).unwrap();
    let centered = x.sub(&mean).unwrap();
    let var = centered.mul(&centered).unwrap().mean(dims, true).unwrap();
    let x_hat = centered
        .div(&var.add_scalar(eps).unwrap().sqrt().unwrap())
        .unwrap();
    x_hat.mul(w).unwrap().add(b).unwrap()
}

#[test]
fn layer_norm_gives_each_sample_zero_mean_and_unit_variance() {
    manual_seed(1);
    let x = Tensor::from_raw(randn((4, 32)).affine(3.0, 5.0).unwrap());
    let ln = LayerNorm::with_options(32, 1e-5, true, DType::F64, &dev()).unwrap();
    let y = values(&ln.forward(&x).unwrap());
    for row in y.chunks(32) {
        let (mean, var) = mean_var(row);
        assert!(mean.abs() < 1e-12, "mean {mean}");
        assert!((var - 1.0).abs() < 1e-5, "variance {var}");
    }
}

#[test]
fn layer_norm_defaults_are_pytorchs() {
    let ln = LayerNorm::new((3, 4)).unwrap();
    assert_eq!(ln.eps, 1e-5);
    assert_eq!(ln.normalized_shape, vec![3, 4]);
    let params = ln.named_parameters();
    let names: Vec<&str> = params.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["weight", "bias"]);
    assert!(values(&params[0].1).iter().all(|&v| v == 1.0));
    assert!(values(&params[1].1).iter().all(|&v| v == 0.0));
    assert_eq!(params[0].1.dtype(), DType::F32);
    let plain = LayerNorm::with_options(4, 1e-5, false, DType::F32, &dev()).unwrap();
    assert_eq!(plain.num_parameters(), 0);
}

#[test]
fn layer_norm_matches_the_formula_written_with_autograd_ops() {
    manual_seed(2);
    let x = param(randn((2, 3, 4)));
    let (w, b) = (param(randn((3, 4))), param(randn((3, 4))));
    let y = layer_norm(&x, &[3, 4], Some(&w), Some(&b), 1e-5).unwrap();
    let (x2, w2, b2) = (param(x.data()), param(w.data()), param(b.data()));
    let y2 = layer_norm_reference(&x2, &[-2, -1], &w2, &b2, 1e-5);
    assert_tensors_close(&y, &y2, 1e-12);
    let cot = Tensor::from_raw(randn((2, 3, 4)));
    y.mul(&cot).unwrap().sum_all().unwrap().backward().unwrap();
    y2.mul(&cot).unwrap().sum_all().unwrap().backward().unwrap();
    for (a, b) in [(&x, &x2), (&w, &w2), (&b, &b2)] {
        assert_tensors_close(&a.grad().unwrap(), &b.grad().unwrap(), 1e-12);
    }
}

#[test]
fn layer_norm_gradcheck_f64() {
    manual_seed(3);
    check_gradients(
        |t| layer_norm(&t[0], &[5], Some(&t[1]), Some(&t[2]), 1e-5),
        &[randn((3, 5)), randn(5), randn(5)],
    );
    // Two normalised dimensions, through the module, without affine.
    let ln = LayerNorm::with_options((2, 3), 1e-5, false, DType::F64, &dev()).unwrap();
    check_gradients(|t| ln.forward(&t[0]), &[randn((2, 2, 3))]);
}

#[test]
fn layer_norm_backward_is_differentiable_for_second_derivatives() {
    manual_seed(4);
    let opts = BackwardOptions {
        create_graph: true,
        retain_graph: true,
    };
    let x = param(randn((3, 6)));
    let x2 = param(x.data());
    let (w, b) = (Tensor::from_raw(randn(6)), Tensor::from_raw(randn(6)));
    let cot = Tensor::from_raw(randn((3, 6)));
    // s = ‖∂(y·cot)/∂x‖², differentiated once more with respect to x.
    let second = |x: &Tensor, y: Tensor| {
        let g = grad(&y.mul(&cot).unwrap().sum_all().unwrap(), &[x], None, opts).unwrap()[0]
            .clone()
            .unwrap();
        g.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        x.grad().unwrap()
    };
    let fused = second(&x, layer_norm(&x, &[6], Some(&w), Some(&b), 1e-5).unwrap());
    let composed = second(&x2, layer_norm_reference(&x2, &[-1], &w, &b, 1e-5));
    assert_tensors_close(&fused, &composed, 1e-9);
}

#[test]
fn layer_norm_ignores_a_shift_and_a_scale_of_its_input() {
    manual_seed(5);
    let x = Tensor::from_raw(randn((2, 8)));
    let ln = LayerNorm::with_options(8, 0.0, true, DType::F64, &dev()).unwrap();
    let y1 = ln.forward(&x).unwrap();
    let y2 = ln.forward(&x.affine(7.0, -3.0).unwrap()).unwrap();
    assert_tensors_close(&y1, &y2, 1e-12);
}

#[test]
fn layer_norm_rejects_an_input_whose_trailing_dims_differ() {
    let ln = LayerNorm::new(4).unwrap();
    let x = Tensor::zeros((2, 5), DType::F32, &dev()).unwrap();
    let err = ln.forward(&x).unwrap_err().to_string();
    assert!(
        err.contains("layer_norm") && err.contains("[2, 5]") && err.contains("[4]"),
        "{err}"
    );
}

#[test]
fn rms_norm_divides_by_the_root_mean_square() {
    let x = tensor(&[1.0, 2.0, 3.0, 4.0, -1.0, 0.0, 1.0, 0.0], (2, 4));
    let y = values(&rms_norm(&x, &[4], None, Some(0.0)).unwrap());
    let r0 = (30.0f64 / 4.0).sqrt();
    let r1 = (2.0f64 / 4.0).sqrt();
    let expected = [
        1.0 / r0,
        2.0 / r0,
        3.0 / r0,
        4.0 / r0,
        -1.0 / r1,
        0.0,
        1.0 / r1,
        0.0,
    ];
    assert_close(&y, &expected, 1e-15, 1e-14);
}

#[test]
fn rms_norm_default_eps_is_the_machine_epsilon_of_the_dtype() {
    let layer = RmsNorm::new(2).unwrap();
    assert_eq!(layer.eps, None);
    assert_eq!(
        chapter_05::norm::machine_epsilon(DType::F32),
        1.1920928955078125e-7
    );
    assert_eq!(
        chapter_05::norm::machine_epsilon(DType::F64),
        2.220446049250313e-16
    );
    // Tiny inputs, where ε matters: mean(x²) = 1e-8 against ε ≈ 1.2e-7.
    let x = Tensor::from_vec(vec![1e-4f32, -1e-4], (1, 2), &dev()).unwrap();
    let y = layer.forward(&x).unwrap().to_vec::<f32>().unwrap();
    let expected = 1e-4 / (1e-8 + f32::EPSILON as f64).sqrt();
    assert!(
        (y[0] as f64 - expected).abs() < 1e-6 * expected,
        "{} vs {expected}",
        y[0]
    );
    let x64 = Tensor::from_vec(vec![1e-4f64, -1e-4], (1, 2), &dev()).unwrap();
    let y64 = rms_norm(&x64, &[2], None, None).unwrap();
    let expected = 1e-4 / (1e-8 + f64::EPSILON).sqrt();
    assert!((values(&y64)[0] - expected).abs() < 1e-14);
}

#[test]
fn rms_norm_weight_starts_at_one_and_scales_the_output() {
    let layer = RmsNorm::with_options(3, Some(1e-6), true, DType::F64, &dev()).unwrap();
    assert_eq!(layer.named_parameters()[0].0, "weight");
    assert_eq!(values(layer.weight.as_ref().unwrap()), [1.0, 1.0, 1.0]);
    let x = tensor(&[1.0, -2.0, 2.0], 3);
    let w = tensor(&[1.0, 2.0, 3.0], 3);
    let y = values(&rms_norm(&x, &[3], Some(&w), Some(0.0)).unwrap());
    let r = 3f64.sqrt(); // mean(x²) = 9/3
    assert_close(&y, &[1.0 / r, -4.0 / r, 6.0 / r], 1e-15, 1e-14);
}

#[test]
fn rms_norm_gradcheck_f64() {
    manual_seed(6);
    check_gradients(
        |t| rms_norm(&t[0], &[4], Some(&t[1]), Some(1e-6)),
        &[randn((3, 4)), randn(4)],
    );
    check_gradients(
        |t| rms_norm(&t[0], &[2, 3], None, None),
        &[randn((2, 2, 3))],
    );
}

fn bn64(channels: usize, momentum: Option<f64>) -> BatchNorm1d {
    let config = BatchNormConfig {
        momentum,
        ..BatchNormConfig::default()
    };
    BatchNorm1d::with_options(channels, config, DType::F64, &dev()).unwrap()
}

fn column(v: &[f64], c: usize, channels: usize) -> Vec<f64> {
    v.iter().skip(c).step_by(channels).copied().collect()
}

#[test]
fn batch_norm_defaults_and_state_dict_names_are_pytorchs() {
    let bn = BatchNorm1d::new(3).unwrap();
    assert_eq!(
        bn.config,
        BatchNormConfig {
            eps: 1e-5,
            momentum: Some(0.1),
            affine: true,
            track_running_stats: true
        }
    );
    let keys: Vec<String> = bn.state_dict().into_keys().collect();
    assert_eq!(
        keys,
        [
            "bias",
            "num_batches_tracked",
            "running_mean",
            "running_var",
            "weight"
        ]
    );
    let buffers: Vec<String> = bn.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        buffers,
        ["running_mean", "running_var", "num_batches_tracked"]
    );
    assert_eq!(bn.named_buffers()[2].1.dtype(), DType::I64);
    assert_eq!(bn.running_var.get().to_vec_f64().unwrap(), [1.0; 3]);
    assert!(bn.training.get());
}

#[test]
fn batch_norm_in_training_normalises_each_channel_over_the_batch() {
    manual_seed(7);
    let x = Tensor::from_raw(randn((16, 3)).affine(2.0, 4.0).unwrap());
    let y = values(&bn64(3, Some(0.1)).forward(&x).unwrap());
    for c in 0..3 {
        let (mean, var) = mean_var(&column(&y, c, 3));
        assert!(
            mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-4,
            "channel {c}: {mean} {var}"
        );
    }
}

#[test]
fn batch_norm_updates_running_stats_with_the_unbiased_variance() {
    let x = tensor(&[1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 6.0, 60.0], (4, 2));
    let bn = bn64(2, Some(0.1));
    bn.forward(&x).unwrap();
    // Channel 0: mean 3, squared deviations 4+1+0+9 = 14, unbiased var 14/3.
    let rm = bn.running_mean.get().to_vec_f64().unwrap();
    let rv = bn.running_var.get().to_vec_f64().unwrap();
    assert_close(&rm, &[0.1 * 3.0, 0.1 * 30.0], 1e-15, 1e-12);
    assert_close(
        &rv,
        &[0.9 + 0.1 * 14.0 / 3.0, 0.9 + 0.1 * 1400.0 / 3.0],
        1e-15,
        1e-12,
    );
    let count = bn.num_batches_tracked.get().to_vec::<i64>().unwrap();
    assert_eq!(count, [1]);
    // The output itself used the biased variance 14/4.
    let y = values(&bn.forward(&x).unwrap());
    assert!((y[0] - (1.0 - 3.0) / (3.5f64 + 1e-5).sqrt()).abs() < 1e-12);
}

#[test]
fn batch_norm_in_eval_uses_the_running_stats_and_leaves_them_alone() {
    let bn = bn64(2, Some(0.1));
    bn.running_mean
        .set(RawTensor::new(&[1.0f64, -2.0]).unwrap())
        .unwrap();
    bn.running_var
        .set(RawTensor::new(&[4.0f64, 0.25]).unwrap())
        .unwrap();
    bn.eval();
    let x = tensor(&[3.0, -1.0, 5.0, -2.5], (2, 2));
    let y = values(&bn.forward(&x).unwrap());
    let s = |v: f64| (v + 1e-5).sqrt();
    assert_close(
        &y,
        &[2.0 / s(4.0), 1.0 / s(0.25), 4.0 / s(4.0), -0.5 / s(0.25)],
        1e-14,
        1e-12,
    );
    assert_eq!(bn.running_mean.get().to_vec_f64().unwrap(), [1.0, -2.0]);
    assert_eq!(bn.num_batches_tracked.get().to_vec::<i64>().unwrap(), [0]);
}

#[test]
fn batch_norm_with_momentum_none_keeps_a_cumulative_average() {
    let bn = bn64(1, None);
    for batch in [[1.0, 3.0], [5.0, 7.0], [9.0, 11.0]] {
        bn.forward(&tensor(&batch, (2, 1))).unwrap();
    }
    // The plain average of the three batch means 2, 6, 10.
    let rm = bn.running_mean.get().to_vec_f64().unwrap();
    assert_close(&rm, &[6.0], 1e-14, 1e-14);
    assert_eq!(bn.num_batches_tracked.get().to_vec::<i64>().unwrap(), [3]);
}

#[test]
fn batch_norm_1d_takes_n_c_l_inputs_and_rejects_other_shapes() {
    manual_seed(8);
    let bn = bn64(3, Some(0.1));
    let x = Tensor::from_raw(randn((4, 3, 5)));
    let y = bn.forward(&x).unwrap();
    assert_eq!(y.dims(), [4, 3, 5]);
    // Statistics over N and L together: 20 values per channel.
    let batch_mean = x.mean([0, 2], false).unwrap();
    let rm = bn.running_mean.get().to_vec_f64().unwrap();
    assert_close(
        &rm,
        &values(&batch_mean.affine(0.1, 0.0).unwrap()),
        1e-15,
        1e-12,
    );
    for bad in [vec![4, 2], vec![2, 3, 4, 5], vec![3]] {
        let x = Tensor::zeros(bad.clone(), DType::F64, &dev()).unwrap();
        assert!(bn.forward(&x).is_err(), "shape {bad:?} should be rejected");
    }
    let one = Tensor::zeros((1, 3), DType::F64, &dev()).unwrap();
    let err = bn.forward(&one).unwrap_err().to_string();
    assert!(err.contains("more than 1 value per channel"), "{err}");
}

#[test]
fn batch_norm_without_running_stats_uses_batch_stats_in_eval_too() {
    let config = BatchNormConfig {
        track_running_stats: false,
        affine: false,
        ..BatchNormConfig::default()
    };
    let bn = BatchNorm1d::with_options(2, config, DType::F64, &dev()).unwrap();
    assert!(bn.state_dict().is_empty());
    bn.eval();
    let y = values(&bn.forward(&tensor(&[1.0, 2.0, 3.0, 6.0], (2, 2))).unwrap());
    let a = 1.0 / (1.0f64 + 1e-5).sqrt();
    let b = 2.0 / (4.0f64 + 1e-5).sqrt();
    assert_close(&y, &[-a, -b, a, b], 1e-12, 1e-9);
}

#[test]
fn batch_norm_gradcheck_f64_in_training_and_eval() {
    manual_seed(9);
    let train = |t: &[Tensor]| {
        let mut bn = bn64(3, Some(0.1));
        bn.weight = Some(t[1].clone());
        bn.bias = Some(t[2].clone());
        bn.forward(&t[0])
    };
    check_gradients(train, &[randn((5, 3)), randn(3), randn(3)]);
    check_gradients(train, &[randn((2, 3, 4)), randn(3), randn(3)]);
    let (rm, rv) = (randn(3), randn(3).abs().unwrap().add_scalar(0.5).unwrap());
    let eval = |t: &[Tensor]| {
        let (m, v) = (Buffer::new(rm.clone()), Buffer::new(rv.clone()));
        batch_norm(
            &t[0],
            Some(&m),
            Some(&v),
            Some(&t[1]),
            Some(&t[2]),
            false,
            0.1,
            1e-5,
        )
    };
    check_gradients(eval, &[randn((4, 3, 2)), randn(3), randn(3)]);
}

#[test]
fn batch_norm_functional_handles_four_dimensional_inputs() {
    manual_seed(10);
    let x = Tensor::from_raw(randn((2, 3, 4, 4)));
    let (m, v) = (
        Buffer::new(RawTensor::zeros(3, DType::F64, &dev()).unwrap()),
        Buffer::new(RawTensor::ones(3, DType::F64, &dev()).unwrap()),
    );
    let y = batch_norm(&x, Some(&m), Some(&v), None, None, true, 0.1, 1e-5).unwrap();
    let per_channel = y.permute(&[1, 0, 2, 3]).unwrap().reshape((3, 32)).unwrap();
    for row in values(&per_channel).chunks(32) {
        let (mean, var) = mean_var(row);
        assert!(mean.abs() < 1e-12 && (var - 1.0).abs() < 1e-4);
    }
    let expected_mean = x.mean([0, 2, 3], false).unwrap().affine(0.1, 0.0).unwrap();
    assert_close(
        &m.get().to_vec_f64().unwrap(),
        &values(&expected_mean),
        1e-15,
        1e-12,
    );
}
