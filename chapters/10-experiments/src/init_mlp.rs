//! The network every initialisation experiment measures: a stack of
//! linear layers with zero biases, each but the last followed by a ReLU
//! (or by nothing, for the linear control), its weights drawn by Xavier or
//! Kaiming; and the small batch of digits it is trained on.

use chapter_02::{manual_seed, Error, Generator};
use chapter_03::{DType, Device, RawTensor, Result, Tensor};
use chapter_04::prelude::*;
use chapter_05::init::{kaiming_normal, xavier_normal, FanMode, Nonlinearity};
use chapter_06::data::{default_data_dir, load_digits};

// ANCHOR: init
/// How the weights of a layer with `fan_in` inputs and `fan_out` outputs
/// are drawn (both normal, zero mean).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Init {
    /// Glorot & Bengio (2010): `Var[w] = 2 / (fan_in + fan_out)`, which keeps
    /// the variance of a *linear* layer's output and of its gradient equal
    /// to its input's when `fan_in = fan_out`.
    Xavier,
    /// He et al. (2015): `Var[w] = 2 / fan_in`, twice as much, to make up
    /// for the ReLU that zeroes half of every layer's inputs.
    Kaiming,
}

impl Init {
    pub const BOTH: [Init; 2] = [Init::Xavier, Init::Kaiming];

    pub fn name(self) -> &'static str {
        match self {
            Init::Xavier => "Xavier",
            Init::Kaiming => "Kaiming",
        }
    }

    /// `Var[w]` for a layer of this shape.
    pub fn variance(self, fan_in: usize, fan_out: usize) -> f64 {
        match self {
            Init::Xavier => 2.0 / (fan_in + fan_out) as f64,
            Init::Kaiming => 2.0 / fan_in as f64,
        }
    }

    /// A `[fan_out, fan_in]` weight, from chapter 05's initialisers.
    pub fn weight(
        self,
        fan_in: usize,
        fan_out: usize,
        dtype: DType,
        device: &Device,
    ) -> Result<RawTensor> {
        match self {
            Init::Xavier => xavier_normal((fan_out, fan_in), 1.0, dtype, device),
            Init::Kaiming => kaiming_normal(
                (fan_out, fan_in),
                FanMode::FanIn,
                Nonlinearity::Relu,
                dtype,
                device,
            ),
        }
    }
}
// ANCHOR_END: init

// ANCHOR: mlp
/// `sizes[0] → sizes[1] → … → sizes[L]`: `L` linear layers (the *depth*),
/// a ReLU after each but the last when `relu` is set, zero biases.
#[derive(Debug, Clone)]
pub struct StackMlp {
    /// `(weight [out, in], bias [out])` of each layer.
    pub layers: Vec<(Tensor, Tensor)>,
    pub relu: bool,
}

impl StackMlp {
    /// Draws the weights with `init` from the seeded default generator.
    pub fn new(
        sizes: &[usize],
        init: Init,
        relu: bool,
        seed: u64,
        device: &Device,
    ) -> Result<Self> {
        if sizes.len() < 2 {
            return Err(Error::invalid(
                "StackMlp",
                format!("needs at least an input and an output size, got {sizes:?}"),
            ));
        }
        manual_seed(seed);
        let mut layers = Vec::new();
        for pair in sizes.windows(2) {
            let (fan_in, fan_out) = (pair[0], pair[1]);
            let w = Tensor::param(init.weight(fan_in, fan_out, DType::F32, device)?)?;
            let b = Tensor::param(RawTensor::zeros(fan_out, DType::F32, device)?)?;
            layers.push((w, b));
        }
        Ok(StackMlp { layers, relu })
    }

    /// `input`, `depth − 1` hidden layers of `width`, then `output`.
    pub fn sizes(input: usize, width: usize, depth: usize, output: usize) -> Vec<usize> {
        let mut sizes = vec![input];
        sizes.extend(std::iter::repeat_n(width, depth.saturating_sub(1)));
        sizes.push(output);
        sizes
    }

    /// The output (logits) for `x: [N, in]`; `observe(l, z)` sees each
    /// layer's pre-activation `z = h W_lᵀ + b_l: [N, out]`, `l = 1, 2, …`.
    pub fn forward_observed(
        &self,
        x: &Tensor,
        mut observe: impl FnMut(usize, &Tensor) -> Result<()>,
    ) -> Result<Tensor> {
        let mut h = x.clone();
        let last = self.layers.len() - 1;
        for (l, (w, b)) in self.layers.iter().enumerate() {
            let z = h.matmul(&w.t()?)?.add(b)?;
            observe(l + 1, &z)?;
            h = if self.relu && l < last { z.relu()? } else { z };
        }
        Ok(h)
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_observed(x, |_, _| Ok(()))
    }

    pub fn parameters(&self) -> Vec<Tensor> {
        self.layers
            .iter()
            .flat_map(|(w, b)| [w.clone(), b.clone()])
            .collect()
    }

    /// `‖∂L/∂W₁‖²`, the squared norm of the first layer's weight gradient
    /// (after a `backward`).
    pub fn first_layer_grad_sq(&self) -> Result<f64> {
        let g = self.layers[0].0.grad()?.to_vec_f64()?;
        Ok(g.iter().map(|v| v * v).sum())
    }
}
// ANCHOR_END: mlp

/// The mean and the (population) standard deviation of a tensor's values.
pub fn mean_std(t: &Tensor) -> Result<(f64, f64)> {
    let v = t.to_vec_f64()?;
    let n = v.len().max(1) as f64;
    let mean = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n;
    Ok((mean, var.sqrt()))
}

/// `n` of the 8 × 8 digits drawn by a seeded permutation, as `x: [n, 64]`
/// with every pixel standardised over the batch (mean 0, variance 1; a pixel
/// that is always blank stays 0), and `labels: [n]`. Standardised inputs
/// have the unit variance the variance argument starts from.
pub fn digits_batch(n: usize, seed: u64, device: &Device) -> Result<(Tensor, Tensor)> {
    let path = default_data_dir().join("digits/digits.csv.gz");
    let data = load_digits(&path)
        .map_err(|e| Error::invalid("digits_batch", format!("{}: {e}", path.display())))?;
    let rows = data.labels().len();
    if n == 0 || n > rows {
        return Err(Error::invalid(
            "digits_batch",
            format!("cannot draw {n} examples from the {rows} digits"),
        ));
    }
    let features = data.features().len() / rows;
    let order = Generator::new(seed).permutation(rows);
    let mut x = vec![0.0f64; n * features];
    let mut labels = Vec::with_capacity(n);
    for (r, &i) in order[..n].iter().enumerate() {
        for f in 0..features {
            x[r * features + f] = data.features()[i * features + f] as f64;
        }
        labels.push(data.labels()[i]);
    }
    for f in 0..features {
        let column: Vec<f64> = (0..n).map(|r| x[r * features + f]).collect();
        let mean = column.iter().sum::<f64>() / n as f64;
        let var = column.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
        let scale = if var > 1e-12 { 1.0 / var.sqrt() } else { 0.0 };
        for r in 0..n {
            x[r * features + f] = (x[r * features + f] - mean) * scale;
        }
    }
    Ok((
        Tensor::from_raw(RawTensor::from_f64_vec(
            x,
            vec![n, features],
            DType::F32,
            device,
        )?),
        Tensor::from_raw(RawTensor::from_vec(labels, vec![n], device)?),
    ))
}
