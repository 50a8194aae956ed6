//! Initialisers: `cargo test -p chapter-05 init`.

use chapter_02::{manual_seed, DType, Device, Shape, Tensor as RawTensor};
use chapter_05::init::{
    calculate_gain, fan_in_fan_out, kaiming_normal, kaiming_uniform, normal, ones, uniform,
    xavier_normal, xavier_uniform, zeros, FanMode, Nonlinearity,
};

/// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

/// Mean, standard deviation, min and max of a tensor's elements.
fn stats(t: &RawTensor) -> (f64, f64, f64, f64) {
    let v = t.to_vec_f64().unwrap();
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    let std = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
    let min = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let max = v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    (mean, std, min, max)
}

/// Checks a uniform sample on `[-bound, bound)`: inside the bounds, close to
/// them at both ends, mean 0, standard deviation `bound/√3`.
fn assert_uniform(t: &RawTensor, bound: f64) {
    let (mean, std, min, max) = stats(t);
    assert!(
        min >= -bound && max <= bound,
        "[{min}, {max}] outside ±{bound}"
    );
    assert!(
        min < -0.99 * bound && max > 0.99 * bound,
        "[{min}, {max}] does not fill ±{bound}"
    );
    // Four standard errors: the sample mean has standard error σ/√n, and
    // for a uniform sample the standard deviation's relative standard
    // error is √(0.8/n)/2 (its kurtosis is 1.8).
    let n = t.elem_count() as f64;
    let want_std = bound / 3f64.sqrt();
    assert!(mean.abs() < 4.0 * want_std / n.sqrt(), "mean {mean}");
    assert!(
        (std / want_std - 1.0).abs() < 4.0 * (0.8 / n).sqrt() / 2.0,
        "std {std} for bound {bound}"
    );
}

/// A normal sample's mean and standard deviation, within four standard
/// errors (`σ/√n` for the mean, `1/√(2n)` relative for the deviation).
fn assert_normal(t: &RawTensor, want_std: f64) {
    let (mean, std, _, _) = stats(t);
    let n = t.elem_count() as f64;
    assert!(mean.abs() < 4.0 * want_std / n.sqrt(), "mean {mean}");
    assert!(
        (std / want_std - 1.0).abs() < 4.0 / (2.0 * n).sqrt(),
        "std {std}, want {want_std}"
    );
}

#[test]
fn init_uniform_and_normal_have_the_requested_statistics() {
    manual_seed(0);
    let u = uniform(200_000, 2.0, 6.0, DType::F64, &dev()).unwrap();
    let (mean, std, min, max) = stats(&u);
    assert!((mean - 4.0).abs() < 0.01 && (std - 2.0 / 3f64.sqrt()).abs() < 0.01);
    assert!(min >= 2.0 && max < 6.0);
    let n = normal((400, 500), -1.0, 3.0, DType::F32, &dev()).unwrap();
    assert_eq!(n.dtype(), DType::F32);
    let (mean, std, _, _) = stats(&n);
    assert!(
        (mean + 1.0).abs() < 0.02 && (std - 3.0).abs() < 0.02,
        "{mean} {std}"
    );
    assert!(zeros((2, 3), DType::F32, &dev())
        .unwrap()
        .to_vec_f64()
        .unwrap()
        .iter()
        .all(|&v| v == 0.0));
    assert!(ones(4, DType::F64, &dev())
        .unwrap()
        .to_vec_f64()
        .unwrap()
        .iter()
        .all(|&v| v == 1.0));
}

#[test]
fn init_gains_match_pytorchs_calculate_gain() {
    assert_eq!(calculate_gain(Nonlinearity::Linear), 1.0);
    assert_eq!(calculate_gain(Nonlinearity::Sigmoid), 1.0);
    assert_eq!(calculate_gain(Nonlinearity::Tanh), 5.0 / 3.0);
    assert_eq!(calculate_gain(Nonlinearity::Relu), 2f64.sqrt());
    assert!(
        (calculate_gain(Nonlinearity::LeakyRelu(0.01)) - (2.0f64 / 1.0001).sqrt()).abs() < 1e-15
    );
    // a = √5, Linear's default: gain √(2/6) = 1/√3.
    assert!(
        (calculate_gain(Nonlinearity::LeakyRelu(5f64.sqrt())) - (1.0f64 / 3.0).sqrt()).abs()
            < 1e-15
    );
    assert_eq!(calculate_gain(Nonlinearity::Selu), 0.75);
}

#[test]
fn init_fans_count_the_receptive_field_of_conv_weights() {
    let fans = |dims: &[usize]| fan_in_fan_out(&Shape::from(dims)).unwrap();
    assert_eq!(fans(&[20, 30]), (30, 20));
    assert_eq!(fans(&[64, 3, 5, 5]), (3 * 25, 64 * 25));
    assert_eq!(fans(&[8, 4, 3]), (12, 24));
    let err = fan_in_fan_out(&Shape::from(&[7])).unwrap_err().to_string();
    assert!(err.contains("[7]"), "{err}");
    assert!(xavier_uniform(5, 1.0, DType::F32, &dev()).is_err());
}

#[test]
fn init_xavier_keeps_two_over_fan_in_plus_fan_out() {
    manual_seed(1);
    let (fan_in, fan_out) = (300.0, 200.0);
    let w = xavier_uniform((200, 300), 1.0, DType::F64, &dev()).unwrap();
    assert_uniform(&w, (6.0f64 / (fan_in + fan_out)).sqrt());
    let gain = calculate_gain(Nonlinearity::Tanh);
    let w = xavier_uniform((200, 300), gain, DType::F64, &dev()).unwrap();
    assert_uniform(&w, gain * (6.0f64 / (fan_in + fan_out)).sqrt());
    let w = xavier_normal((200, 300), 1.0, DType::F64, &dev()).unwrap();
    assert_normal(&w, (2.0f64 / (fan_in + fan_out)).sqrt());
    // Conv-shaped: fans include the 3×3 receptive field.
    let w = xavier_normal((64, 32, 3, 3), 2.0, DType::F64, &dev()).unwrap();
    assert_normal(&w, 2.0 * (2.0f64 / (32.0 * 9.0 + 64.0 * 9.0)).sqrt());
}

#[test]
fn init_kaiming_keeps_gain_squared_over_fan() {
    manual_seed(2);
    let relu = Nonlinearity::Relu;
    let w = kaiming_uniform((256, 512), FanMode::FanIn, relu, DType::F64, &dev()).unwrap();
    assert_uniform(&w, 3f64.sqrt() * 2f64.sqrt() / 512f64.sqrt());
    let w = kaiming_uniform((256, 512), FanMode::FanOut, relu, DType::F64, &dev()).unwrap();
    assert_uniform(&w, 3f64.sqrt() * 2f64.sqrt() / 256f64.sqrt());
    let w = kaiming_normal((128, 16, 3, 3), FanMode::FanIn, relu, DType::F64, &dev()).unwrap();
    assert_normal(&w, 2f64.sqrt() / (16.0f64 * 9.0).sqrt());
    let w = kaiming_normal(
        (128, 16, 3, 3),
        FanMode::FanOut,
        Nonlinearity::Linear,
        DType::F64,
        &dev(),
    )
    .unwrap();
    assert_normal(&w, 1.0 / (128.0f64 * 9.0).sqrt());
}

#[test]
fn init_linear_default_a_sqrt5_is_one_over_sqrt_fan_in() {
    manual_seed(3);
    let a = Nonlinearity::LeakyRelu(5f64.sqrt());
    let w = kaiming_uniform((300, 250), FanMode::FanIn, a, DType::F64, &dev()).unwrap();
    assert_uniform(&w, 1.0 / 250f64.sqrt());
}

#[test]
fn init_is_reproducible_with_manual_seed() {
    manual_seed(9);
    let a = xavier_uniform((4, 4), 1.0, DType::F32, &dev())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    manual_seed(9);
    let b = xavier_uniform((4, 4), 1.0, DType::F32, &dev())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_eq!(a, b);
    let c = xavier_uniform((4, 4), 1.0, DType::F32, &dev())
        .unwrap()
        .to_vec::<f32>()
        .unwrap();
    assert_ne!(a, c);
}
