//! Why skip connections help: the gradient that reaches the first layer of
//! a deep network, with and without them.
//!
//! We build basic-block networks of several depths at one width (so depth
//! is the only difference), once with skip connections and once without
//! ("plain"), and measure `‖∂L/∂W₁‖`, the norm of the gradient of the
//! cross-entropy on a fixed batch with respect to the stem convolution's
//! weight, at initialisation and after some steps of SGD on that batch. In
//! a residual network every block adds its output to its input, so
//! `∂y/∂x = I + ∂F/∂x` and the first layer always receives the gradient of
//! the last one plus corrections; in a plain network the gradient is a
//! product of one Jacobian per layer, free to shrink or grow with depth.

use crate::resnet::{ResNet, ResNetConfig};
use chapter_02::{manual_seed, Error, Generator};
use chapter_03::{DType, Device, RawTensor, Result, Tensor};
use chapter_05::{cross_entropy, CrossEntropyOptions, Module, ModuleExt};
use chapter_06::data::InMemoryDataset;
use chapter_06::{Optimizer, Sgd, SgdConfig};

// ANCHOR: grad_norm_config
/// What the experiment measures, and on what.
#[derive(Debug, Clone, PartialEq)]
pub struct GradNormExperiment {
    /// Depths, `2·blocks + 2` each (see [`ResNetConfig::with_depth_basic`]).
    pub depths: Vec<usize>,
    /// Channels of the stem and of every block.
    pub width: usize,
    /// SGD steps on the fixed batch; the norm is recorded before the first
    /// (at initialisation) and before step `steps` (after `steps` updates).
    pub steps: usize,
    /// One network per seed and variant; the reported norm is the mean.
    pub seeds: Vec<u64>,
    /// SGD with momentum 0.9 at this learning rate.
    pub lr: f64,
}

impl Default for GradNormExperiment {
    /// The book's figure: depths 14, 26 and 50, width 16, 50 steps at
    /// learning rate 0.05, three seeds.
    fn default() -> Self {
        GradNormExperiment {
            depths: vec![14, 26, 50],
            width: 16,
            steps: 50,
            seeds: vec![0, 1, 2],
            lr: 0.05,
        }
    }
}

/// One measurement: a depth, with or without skips, at a step, averaged
/// over the seeds.
#[derive(Debug, Clone, PartialEq)]
pub struct GradNormPoint {
    pub depth: usize,
    pub residual: bool,
    /// 0 (initialisation) or the experiment's `steps`.
    pub step: usize,
    /// `‖∂L/∂W₁‖` of the stem convolution, mean over the seeds.
    pub first_layer: f64,
    /// The norm for each seed, in the order of the experiment's seeds.
    pub per_seed: Vec<f64>,
    /// The training loss on the batch at that step, mean over the seeds.
    pub loss: f64,
}
// ANCHOR_END: grad_norm_config

// ANCHOR: grad_norm_run
impl GradNormExperiment {
    /// Runs every (depth, residual or plain, seed) on the batch `x: [N, C,
    /// H, W]`, `labels: [N]` (`i64`), calling `progress` after each network.
    /// Returns, per depth, the residual then the plain network's points at
    /// step 0 then at `steps`.
    pub fn run(
        &self,
        x: &Tensor,
        labels: &Tensor,
        num_classes: usize,
        mut progress: impl FnMut(&GradNormPoint),
    ) -> Result<Vec<GradNormPoint>> {
        if self.seeds.is_empty() || self.depths.is_empty() {
            return Err(Error::invalid(
                "GradNormExperiment",
                "needs at least one depth and one seed",
            ));
        }
        let in_channels = x.dims().get(1).copied().unwrap_or(0);
        let mut points = Vec::new();
        for &depth in &self.depths {
            for residual in [true, false] {
                let config =
                    ResNetConfig::with_depth_basic(depth, self.width, in_channels, num_classes)?
                        .with_residual(residual);
                // per_seed[k] = [(norm, loss) at step 0, at `steps`]
                let mut runs = Vec::new();
                for &seed in &self.seeds {
                    runs.push(self.train_one(&config, seed, x, labels)?);
                }
                for (k, step) in [0, self.steps].into_iter().enumerate() {
                    let per_seed: Vec<f64> = runs.iter().map(|r| r[k].0).collect();
                    let n = runs.len() as f64;
                    let point = GradNormPoint {
                        depth,
                        residual,
                        step,
                        first_layer: per_seed.iter().sum::<f64>() / n,
                        per_seed,
                        loss: runs.iter().map(|r| r[k].1).sum::<f64>() / n,
                    };
                    progress(&point);
                    points.push(point);
                }
            }
        }
        Ok(points)
    }

    /// Trains one network for `steps` steps; `(‖∂L/∂W₁‖, L)` at step 0 and
    /// at step `steps`.
    fn train_one(
        &self,
        config: &ResNetConfig,
        seed: u64,
        x: &Tensor,
        labels: &Tensor,
    ) -> Result<[(f64, f64); 2]> {
        manual_seed(seed);
        let model = ResNet::new(config, x.dtype(), &x.device())?;
        model.train();
        let sgd = SgdConfig {
            momentum: 0.9,
            ..SgdConfig::new(self.lr)
        };
        let mut opt = Sgd::new(model.parameters(), sgd)?;
        let mut out = [(0.0, 0.0); 2];
        for step in 0..=self.steps {
            opt.zero_grad();
            let loss = cross_entropy(&model.forward(x)?, labels, &CrossEntropyOptions::default())?;
            loss.backward()?;
            if step == 0 || step == self.steps {
                let g = model.conv1.weight.grad()?.to_vec_f64()?;
                let measured = (
                    g.iter().map(|v| v * v).sum::<f64>().sqrt(),
                    loss.to_vec_f64()?[0],
                );
                if step == 0 {
                    out[0] = measured;
                }
                if step == self.steps {
                    out[1] = measured;
                }
            }
            if step < self.steps {
                opt.step()?;
            }
        }
        Ok(out)
    }
}
// ANCHOR_END: grad_norm_run

/// `n` examples of `dataset` drawn without replacement by a seeded
/// permutation, as a batch `x: [n, 1, 8, 8]` (for the 8 × 8 digits; the
/// dataset's feature shape otherwise) and `labels: [n]`.
pub fn fixed_batch(
    dataset: &InMemoryDataset,
    n: usize,
    seed: u64,
    dtype: DType,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let rows = dataset.labels().len();
    if n == 0 || n > rows {
        return Err(Error::invalid(
            "fixed_batch",
            format!("cannot draw {n} examples from a dataset of {rows}"),
        ));
    }
    let features = dataset.features().len() / rows;
    let order = Generator::new(seed).permutation(rows);
    let mut x = Vec::with_capacity(n * features);
    let mut y = Vec::with_capacity(n);
    for &i in &order[..n] {
        x.extend(
            dataset.features()[i * features..(i + 1) * features]
                .iter()
                .map(|&v| v as f64),
        );
        y.push(dataset.labels()[i]);
    }
    let side = (features as f64).sqrt() as usize;
    let shape = if side * side == features {
        vec![n, 1, side, side]
    } else {
        vec![n, features]
    };
    Ok((
        Tensor::from_raw(RawTensor::from_f64_vec(x, shape, dtype, device)?),
        Tensor::from_raw(RawTensor::from_vec(y, vec![n], device)?),
    ))
}
