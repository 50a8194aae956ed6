//! Initialisers: how to choose the starting weights.
//!
//! The scale of the initial weights decides whether signals and gradients
//! keep their size through a deep network. Xavier (Glorot & Bengio, 2010)
//! keeps the variance of activations and gradients equal for linear or
//! tanh-like layers: `Var(w) = 2 / (fan_in + fan_out)`. Kaiming (He et al.,
//! 2015) accounts for ReLU zeroing half its inputs: `Var(w) = gain² /
//! fan_in` with `gain = √2`. Chapter 10 measures both.
//!
//! All draws come from the thread's default generator, so
//! `chapter_02::manual_seed(s)` makes model construction reproducible.

use chapter_02::{
    with_default_generator, DType, Device, Error, Result, Shape, Tensor as RawTensor,
};

/// The nonlinearity that follows a layer, for [`calculate_gain`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Nonlinearity {
    Linear,
    Sigmoid,
    Tanh,
    Relu,
    LeakyRelu(f64),
    Selu,
}

/// Which fan to preserve: `FanIn` keeps forward activations' variance,
/// `FanOut` keeps backward gradients' variance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FanMode {
    FanIn,
    FanOut,
}

// ANCHOR: gain
/// The factor by which a nonlinearity changes the standard deviation of
/// its input, as in `torch.nn.init.calculate_gain`.
pub fn calculate_gain(nonlinearity: Nonlinearity) -> f64 {
    match nonlinearity {
        Nonlinearity::Linear | Nonlinearity::Sigmoid => 1.0,
        Nonlinearity::Tanh => 5.0 / 3.0,
        Nonlinearity::Relu => 2f64.sqrt(),
        Nonlinearity::LeakyRelu(slope) => (2.0 / (1.0 + slope * slope)).sqrt(),
        Nonlinearity::Selu => 0.75,
    }
}

/// `(fan_in, fan_out)` of a weight: for `[out, in, k...]` it is
/// `(in · k..., out · k...)` (the receptive field counts).
pub fn fan_in_fan_out(shape: &Shape) -> Result<(usize, usize)> {
    let d = shape.dims();
    if d.len() < 2 {
        return Err(Error::invalid(
            "init",
            format!("fan in and fan out need at least 2 dimensions, got shape {shape}"),
        ));
    }
    let receptive: usize = d[2..].iter().product();
    Ok((d[1] * receptive, d[0] * receptive))
}
// ANCHOR_END: gain

/// Uniform in `[lo, hi)`.
pub fn uniform(
    shape: impl Into<Shape>,
    lo: f64,
    hi: f64,
    dtype: DType,
    device: &Device,
) -> Result<RawTensor> {
    RawTensor::rand(lo, hi, shape, dtype, device)
}

/// Normal with the given mean and standard deviation.
pub fn normal(
    shape: impl Into<Shape>,
    mean: f64,
    std: f64,
    dtype: DType,
    device: &Device,
) -> Result<RawTensor> {
    RawTensor::randn(mean, std, shape, dtype, device)
}

pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<RawTensor> {
    RawTensor::zeros(shape, dtype, device)
}

pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<RawTensor> {
    RawTensor::ones(shape, dtype, device)
}

// ANCHOR: xavier_kaiming
/// Xavier/Glorot uniform: `U(−b, b)` with `b = gain·√(6 / (fan_in + fan_out))`.
pub fn xavier_uniform(
    shape: impl Into<Shape>,
    gain: f64,
    dtype: DType,
    device: &Device,
) -> Result<RawTensor> {
    let shape = shape.into();
    let (fan_in, fan_out) = fan_in_fan_out(&shape)?;
    let bound = gain * (6.0 / (fan_in + fan_out) as f64).sqrt();
    uniform(shape, -bound, bound, dtype, device)
}

/// Xavier/Glorot normal: `N(0, σ²)` with `σ = gain·√(2 / (fan_in + fan_out))`.
pub fn xavier_normal(
    shape: impl Into<Shape>,
    gain: f64,
    dtype: DType,
    device: &Device,
) -> Result<RawTensor> {
    let shape = shape.into();
    let (fan_in, fan_out) = fan_in_fan_out(&shape)?;
    let std = gain * (2.0 / (fan_in + fan_out) as f64).sqrt();
    normal(shape, 0.0, std, dtype, device)
}

fn kaiming_std(shape: &Shape, mode: FanMode, nonlinearity: Nonlinearity) -> Result<f64> {
    let (fan_in, fan_out) = fan_in_fan_out(shape)?;
    let fan = match mode {
        FanMode::FanIn => fan_in,
        FanMode::FanOut => fan_out,
    };
    Ok(calculate_gain(nonlinearity) / (fan as f64).sqrt())
}

/// Kaiming/He uniform: `U(−b, b)` with `b = gain·√(3 / fan)`.
pub fn kaiming_uniform(
    shape: impl Into<Shape>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    dtype: DType,
    device: &Device,
) -> Result<RawTensor> {
    let shape = shape.into();
    let bound = 3f64.sqrt() * kaiming_std(&shape, mode, nonlinearity)?;
    uniform(shape, -bound, bound, dtype, device)
}

/// Kaiming/He normal: `N(0, σ²)` with `σ = gain / √fan`.
pub fn kaiming_normal(
    shape: impl Into<Shape>,
    mode: FanMode,
    nonlinearity: Nonlinearity,
    dtype: DType,
    device: &Device,
) -> Result<RawTensor> {
    let shape = shape.into();
    let std = kaiming_std(&shape, mode, nonlinearity)?;
    normal(shape, 0.0, std, dtype, device)
}
// ANCHOR_END: xavier_kaiming

/// A tensor filled by running `f` with the default generator (for custom
/// schemes: `with_generator(|g| ...)`).
pub fn with_generator<R>(f: impl FnOnce(&mut chapter_02::Generator) -> R) -> R {
    with_default_generator(f)
}
