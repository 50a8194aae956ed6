//! The layers that are not normalisations: `cargo test -p chapter-05 linear`,
//! `embedding`, `dropout`, `activation`, `flatten`, `sequential`.

mod common;

use chapter_02::{manual_seed, DType, Tensor as RawTensor};
use chapter_03::Tensor;
use chapter_04::prelude::*;
use chapter_05::{
    Dropout, Embedding, Flatten, Gelu, GeluApproximation, LeakyRelu, Linear, Module, ModuleExt,
    Relu, Sequential, Sigmoid, Silu, Softmax, Softplus, Tanh,
};
use common::*;

#[test]
fn linear_default_init_is_uniform_within_one_over_sqrt_fan_in() {
    manual_seed(0);
    let layer = Linear::new(400, 300, true).unwrap();
    let bound = 1.0 / 400f64.sqrt();
    for (name, p) in layer.named_parameters() {
        let v = values(&p);
        assert!(
            v.iter().all(|x| x.abs() <= bound),
            "{name} exceeds the bound"
        );
        // U(−b, b) has variance b²/3: check the spread really fills the interval.
        let (mean, var) = mean_var(&v);
        assert!(mean.abs() < 0.05 * bound, "{name} mean {mean}");
        let tol = if name == "weight" { 0.03 } else { 0.3 };
        assert!(
            (var / (bound * bound / 3.0) - 1.0).abs() < tol,
            "{name} variance {var}"
        );
        assert!(p.requires_grad() && p.dtype() == DType::F32);
    }
    assert_eq!(layer.weight.dims(), [300, 400]);
    assert_eq!(layer.num_parameters(), 300 * 400 + 300);
    assert!(Linear::new(3, 2, false).unwrap().bias.is_none());
}

#[test]
fn linear_computes_x_times_w_transposed_plus_b_over_leading_dims() {
    let w = tensor(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let b = tensor(&[0.5, -0.5], 2);
    let layer = Linear::from_weights(w, Some(b));
    let x = tensor(
        &[1.0, 0.0, -1.0, 2.0, 1.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0],
        (2, 2, 3),
    );
    let y = layer.forward(&x).unwrap();
    assert_eq!(y.dims(), [2, 2, 2]);
    assert_eq!(values(&y), [-1.5, -2.5, 4.5, 12.5, 3.5, 5.5, 6.5, 14.5]);
}

#[test]
fn linear_gradcheck_f64() {
    manual_seed(1);
    check_gradients(
        |t| Linear::from_weights(t[1].clone(), Some(t[2].clone())).forward(&t[0]),
        &[randn((2, 3, 4)), randn((5, 4)), randn(5)],
    );
}

#[test]
fn embedding_looks_up_rows_for_ids_of_any_shape() {
    let weight = tensor(&[0.0, 0.1, 1.0, 1.1, 2.0, 2.1, 3.0, 3.1], (4, 2));
    let emb = Embedding::from_weights(weight, None).unwrap();
    let out = emb.forward(&ids(&[3, 0, 3, 1, 2, 2], (2, 3))).unwrap();
    assert_eq!(out.dims(), [2, 3, 2]);
    assert_eq!(
        values(&out),
        [3.0, 3.1, 0.0, 0.1, 3.0, 3.1, 1.0, 1.1, 2.0, 2.1, 2.0, 2.1]
    );
    let scalar = emb.forward(&ids(&[1], ())).unwrap();
    assert_eq!(scalar.dims(), [2]);
    assert_eq!((emb.num_embeddings(), emb.embedding_dim()), (4, 2));
}

#[test]
fn embedding_gradient_accumulates_repeated_ids_and_skips_unused_rows() {
    let weight = param(RawTensor::zeros((4, 2), DType::F64, &dev()).unwrap());
    let emb = Embedding::from_weights(weight.clone(), None).unwrap();
    let out = emb.forward(&ids(&[3, 1, 3], 3)).unwrap();
    let w = tensor(&[1.0, 2.0, 10.0, 20.0, 100.0, 200.0], (3, 2));
    out.mul(&w).unwrap().sum_all().unwrap().backward().unwrap();
    assert_eq!(
        values(&weight.grad().unwrap()),
        [0.0, 0.0, 10.0, 20.0, 0.0, 0.0, 101.0, 202.0]
    );
}

#[test]
fn embedding_default_init_is_standard_normal_with_a_zero_padding_row() {
    manual_seed(2);
    let emb = Embedding::new(1000, 64).unwrap();
    let (mean, var) = mean_var(&values(&emb.weight));
    assert!(
        mean.abs() < 0.01 && (var - 1.0).abs() < 0.02,
        "{mean} {var}"
    );
    assert_eq!(emb.named_parameters()[0].0, "weight");
    let padded = Embedding::with_options(5, 3, Some(2), DType::F64, &dev()).unwrap();
    let w = values(&padded.weight);
    assert_eq!(&w[6..9], [0.0, 0.0, 0.0]);
    assert!(w[..6].iter().all(|&v| v != 0.0));
    assert!(Embedding::with_options(5, 3, Some(5), DType::F32, &dev()).is_err());
}

#[test]
fn embedding_padding_idx_row_never_receives_a_gradient() {
    manual_seed(3);
    let emb = Embedding::with_options(4, 2, Some(0), DType::F64, &dev()).unwrap();
    let out = emb.forward(&ids(&[0, 2, 0, 1], 4)).unwrap();
    out.sum_all().unwrap().backward().unwrap();
    assert_eq!(
        values(&emb.weight.grad().unwrap()),
        [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]
    );
}

#[test]
fn embedding_gradcheck_f64_and_errors() {
    manual_seed(4);
    let id = ids(&[1, 4, 1, 0, 2, 2], (3, 2));
    // (Without padding_idx: its zero gradient is a rule, not the derivative.)
    check_gradients(
        |t| Embedding::from_weights(t[0].clone(), None)?.forward(&id),
        &[randn((5, 3))],
    );
    let emb = Embedding::new(3, 2).unwrap();
    let err = emb.forward(&ids(&[0, 3], 2)).unwrap_err().to_string();
    assert!(err.contains("out of range"), "{err}");
    let float_ids = Tensor::zeros(2, DType::F32, &dev()).unwrap();
    assert!(emb.forward(&float_ids).is_err());
}

#[test]
fn dropout_in_eval_mode_and_with_p_zero_is_the_identity() {
    let x = Tensor::from_raw(randn((10, 10)));
    let d = Dropout::new(0.5).unwrap();
    d.eval();
    assert_eq!(values(&d.forward(&x).unwrap()), values(&x));
    let d0 = Dropout::new(0.0).unwrap();
    assert_eq!(values(&d0.forward(&x).unwrap()), values(&x));
    assert!(Dropout::new(1.5).is_err() && Dropout::new(-0.1).is_err());
}

#[test]
fn dropout_zeroes_a_fraction_p_and_scales_the_rest_by_one_over_one_minus_p() {
    manual_seed(5);
    let x = Tensor::ones((100, 100), DType::F32, &dev()).unwrap();
    let d = Dropout::new(0.3).unwrap();
    let y = values(&d.forward(&x).unwrap());
    let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    assert!((zeros - 0.3).abs() < 0.02, "dropped fraction {zeros}");
    let scale = (1.0f32 / 0.7) as f64;
    assert!(y.iter().all(|&v| v == 0.0 || (v - scale).abs() < 1e-6));
    // Inverted dropout keeps the expectation.
    let mean = y.iter().sum::<f64>() / y.len() as f64;
    assert!((mean - 1.0).abs() < 0.03, "mean {mean}");
    // p = 1 drops everything (no 0/0).
    assert!(values(&Dropout::new(1.0).unwrap().forward(&x).unwrap())
        .iter()
        .all(|&v| v == 0.0));
}

#[test]
fn dropout_is_reproducible_with_manual_seed_and_its_gradient_is_the_mask() {
    let x = param(randn((4, 6)));
    let d = Dropout::new(0.5).unwrap();
    manual_seed(42);
    let a = d.forward(&x).unwrap();
    manual_seed(42);
    let b = d.forward(&x).unwrap();
    assert_eq!(values(&a), values(&b));
    a.sum_all().unwrap().backward().unwrap();
    let g = values(&x.grad().unwrap());
    for ((gi, ai), xi) in g.iter().zip(values(&a)).zip(values(&x)) {
        assert!(
            *gi == 0.0 && ai == 0.0 || (*gi - 2.0).abs() < 1e-15 && (ai - 2.0 * xi).abs() < 1e-15
        );
    }
}

#[test]
fn dropout_gradcheck_f64_with_a_fixed_mask() {
    // Reseeding inside `f` draws the same mask for every evaluation.
    let d = Dropout::new(0.5).unwrap();
    check_gradients(
        |t| {
            manual_seed(7);
            d.forward(&t[0])
        },
        &[randn((3, 5))],
    );
}

#[test]
fn activation_modules_forward_to_the_chapter_04_ops() {
    manual_seed(6);
    let x = Tensor::from_raw(randn((3, 4)));
    let same = |a: Tensor, b: Tensor| assert_eq!(values(&a), values(&b));
    same(Relu.forward(&x).unwrap(), x.relu().unwrap());
    same(
        LeakyRelu::default().forward(&x).unwrap(),
        x.leaky_relu(0.01).unwrap(),
    );
    same(
        LeakyRelu(0.2).forward(&x).unwrap(),
        x.leaky_relu(0.2).unwrap(),
    );
    same(Sigmoid.forward(&x).unwrap(), x.sigmoid().unwrap());
    same(Tanh.forward(&x).unwrap(), x.tanh().unwrap());
    same(Gelu::default().forward(&x).unwrap(), x.gelu().unwrap());
    same(
        Gelu::new(GeluApproximation::Tanh).forward(&x).unwrap(),
        x.gelu_tanh().unwrap(),
    );
    same(Silu.forward(&x).unwrap(), x.silu().unwrap());
    same(
        Softplus::default().forward(&x).unwrap(),
        x.softplus(1.0, 20.0).unwrap(),
    );
    same(Softmax(-1).forward(&x).unwrap(), x.softmax(1).unwrap());
    same(
        Softplus(2.0, 5.0).forward(&x).unwrap(),
        x.softplus(2.0, 5.0).unwrap(),
    );
    assert_eq!(Gelu::default().approximate(), GeluApproximation::None);
    assert_eq!(Gelu::tanh().0, "tanh".parse::<GeluApproximation>().unwrap());
    assert_eq!(
        (Softplus::default().beta(), Softplus::default().threshold()),
        (1.0, 20.0)
    );
    assert!(Relu.named_parameters().is_empty() && Gelu::default().named_parameters().is_empty());
}

#[test]
fn activation_gradcheck_f64() {
    manual_seed(7);
    let modules: Vec<Box<dyn Module>> = vec![
        Box::new(LeakyRelu::new(0.1)),
        Box::new(Sigmoid),
        Box::new(Tanh),
        Box::new(Gelu::new(GeluApproximation::None)),
        Box::new(Gelu::new(GeluApproximation::Tanh)),
        Box::new(Silu),
        Box::new(Softplus::new(2.0, 5.0)),
        Box::new(Softmax::new(0)),
    ];
    for m in &modules {
        check_gradients(|t| m.forward(&t[0]), &[randn((3, 4))]);
    }
    // ReLU away from its kink.
    let x = randn((3, 4))
        .abs()
        .unwrap()
        .add_scalar(0.1)
        .unwrap()
        .mul(&randn((3, 4)).sign().unwrap())
        .unwrap();
    check_gradients(|t| Relu.forward(&t[0]), &[x]);
}

#[test]
fn flatten_merges_dims_from_one_to_the_end_by_default() {
    let x = Tensor::zeros((2, 3, 4, 5), DType::F32, &dev()).unwrap();
    assert_eq!(Flatten::default().forward(&x).unwrap().dims(), [2, 60]);
    assert_eq!(Flatten::new(1, 2).forward(&x).unwrap().dims(), [2, 12, 5]);
    assert_eq!(Flatten::new(0, -1).forward(&x).unwrap().dims(), [120]);
}

#[test]
fn flatten_gradcheck_f64() {
    check_gradients(|t| Flatten::default().forward(&t[0]), &[randn((2, 2, 3))]);
}

#[test]
fn sequential_applies_layers_in_order_and_names_them_by_position() {
    manual_seed(8);
    let model = Sequential::new()
        .add_layer(Linear::with_options(4, 8, true, DType::F64, &dev()).unwrap())
        .add_layer(Relu)
        .add_layer(Dropout::new(0.5).unwrap())
        .add_layer(Linear::with_options(8, 2, false, DType::F64, &dev()).unwrap());
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["0.weight", "0.bias", "3.weight"]);
    model.eval();
    let x = Tensor::from_raw(randn((5, 4)));
    let y = model.forward(&x).unwrap();
    assert_eq!(y.dims(), [5, 2]);
    assert_eq!(model.len(), 4);
    let params = model.parameters();
    check_gradients(
        |t| {
            let first = Linear::from_weights(params[0].clone(), Some(params[1].clone()));
            let last = Linear::from_weights(params[2].clone(), None);
            last.forward(&first.forward(&t[0])?.relu()?)
        },
        &[randn((2, 4))],
    );
}

#[test]
fn linear_weight_gradient_is_laid_out_like_the_weight() {
    // `x @ w.t()`: the transposes cancel on the way back, so the weight's
    // gradient is row-major like the weight, and the optimiser's fused
    // update reads it without a copy. Also with batch dimensions.
    for x_dims in [vec![4, 3], vec![2, 4, 3]] {
        let layer = Linear::with_options(3, 5, true, DType::F64, &dev()).unwrap();
        let x = Tensor::from_raw(RawTensor::randn(0.0, 1.0, x_dims, DType::F64, &dev()).unwrap());
        layer
            .forward(&x)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = layer.weight.grad().unwrap().data();
        assert_eq!(g.dims(), &[5, 3]);
        assert!(g.is_contiguous(), "strides {:?}", g.layout().strides());
    }
}
