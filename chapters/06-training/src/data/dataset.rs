//! The `Dataset` trait and a dataset held in memory as one matrix.
//!
//! PyTorch's map-style `Dataset` returns one example at a time and a collate
//! function stacks them into a batch. That is a good interface for images
//! decoded from disk, but for data that fits in memory it costs an allocation
//! and a small tensor per example. Here the unit of work is the batch: a
//! dataset copies the rows a batch needs straight into the batch's buffer.
//! For MNIST (60000 x 784 `f32`, 188 MB) a batch of 128 is 128 row copies of
//! 3 KB each, a few tens of microseconds.

use super::{DataError, Result};
use chapter_02::Generator;
use std::collections::BTreeMap;

// ANCHOR: dataset
/// A collection of labelled examples with the same feature shape.
///
/// `Send + Sync` so a [`DataLoader`](super::DataLoader) can assemble batches
/// on a background thread while the model trains on the previous one.
pub trait Dataset: Send + Sync {
    /// Number of examples.
    fn len(&self) -> usize;

    /// Shape of one example's features, without the batch dimension
    /// (`[784]` for flattened MNIST, `[1, 28, 28]` as an image).
    fn feature_shape(&self) -> &[usize];

    /// Appends the features of the examples `indices`, in that order, to
    /// `inputs` (one row of `feature_len()` values each) and their labels to
    /// `targets`. Fails on an index `>= len()`.
    fn get_batch(
        &self,
        indices: &[usize],
        inputs: &mut Vec<f32>,
        targets: &mut Vec<i64>,
    ) -> Result<()>;

    /// Whether there are no examples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of `f32` values per example (the product of `feature_shape`).
    fn feature_len(&self) -> usize {
        self.feature_shape().iter().product()
    }

    /// One example (a batch of one).
    fn get(&self, index: usize) -> Result<Example> {
        let mut features = Vec::with_capacity(self.feature_len());
        let mut labels = Vec::with_capacity(1);
        self.get_batch(&[index], &mut features, &mut labels)?;
        let label = labels.first().copied().ok_or_else(|| {
            DataError::invalid(
                "Dataset::get",
                format!("get_batch returned no label for index {index}"),
            )
        })?;
        Ok(Example { features, label })
    }
}
// ANCHOR_END: dataset

/// One example: its features (row-major, `feature_shape` of its dataset) and label.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub features: Vec<f32>,
    pub label: i64,
}

// ANCHOR: in_memory
/// A dataset held in memory: an `[N, features...]` matrix of `f32` stored
/// contiguously, row after row, and `N` labels.
#[derive(Debug, Clone, PartialEq)]
pub struct InMemoryDataset {
    features: Vec<f32>,
    feature_shape: Vec<usize>,
    labels: Vec<i64>,
}

impl Dataset for InMemoryDataset {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn feature_shape(&self) -> &[usize] {
        &self.feature_shape
    }

    fn get_batch(
        &self,
        indices: &[usize],
        inputs: &mut Vec<f32>,
        targets: &mut Vec<i64>,
    ) -> Result<()> {
        let f = self.feature_len();
        inputs.reserve(indices.len() * f);
        targets.reserve(indices.len());
        for &i in indices {
            let Some(&label) = self.labels.get(i) else {
                return Err(DataError::invalid(
                    "get_batch",
                    format!(
                        "index {i} is out of range for a dataset of {} examples",
                        self.len()
                    ),
                ));
            };
            // Row i is features[i*f .. (i+1)*f]: one memcpy.
            inputs.extend_from_slice(&self.features[i * f..(i + 1) * f]);
            targets.push(label);
        }
        Ok(())
    }
}
// ANCHOR_END: in_memory

impl InMemoryDataset {
    /// A dataset of `labels.len()` examples whose features, each of shape
    /// `feature_shape`, are stored one after the other in `features`.
    pub fn new(features: Vec<f32>, feature_shape: &[usize], labels: Vec<i64>) -> Result<Self> {
        let f = feature_shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| {
                DataError::invalid(
                    "InMemoryDataset::new",
                    format!("feature shape {feature_shape:?} overflows"),
                )
            })?;
        if labels.len().checked_mul(f) != Some(features.len()) {
            return Err(DataError::invalid(
                "InMemoryDataset::new",
                format!(
                    "{} feature values do not make {} examples of shape {feature_shape:?} ({f} values each)",
                    features.len(),
                    labels.len()
                ),
            ));
        }
        Ok(InMemoryDataset {
            features,
            feature_shape: feature_shape.to_vec(),
            labels,
        })
    }

    /// All features, row-major `[N, features...]`.
    pub fn features(&self) -> &[f32] {
        &self.features
    }

    /// All labels, `[N]`.
    pub fn labels(&self) -> &[i64] {
        &self.labels
    }

    /// The features of example `i` (`None` when out of range).
    pub fn row(&self, i: usize) -> Option<&[f32]> {
        let f = self.feature_len();
        (i < self.len()).then(|| &self.features[i * f..(i + 1) * f])
    }

    /// Applies `f` to every feature value (e.g. to normalise once, up front,
    /// instead of in every batch).
    pub fn map_features(mut self, f: impl Fn(f32) -> f32) -> Self {
        self.features.iter_mut().for_each(|x| *x = f(*x));
        self
    }

    /// Number of classes, taken as the largest label plus one (0 when empty).
    pub fn num_classes(&self) -> usize {
        self.labels
            .iter()
            .max()
            .map_or(0, |&m| (m.max(-1) + 1) as usize)
    }

    /// How many examples each label has, in label order.
    pub fn class_counts(&self) -> BTreeMap<i64, usize> {
        let mut counts = BTreeMap::new();
        for &l in &self.labels {
            *counts.entry(l).or_insert(0) += 1;
        }
        counts
    }

    /// The same data viewed with another feature shape of the same size, e.g.
    /// MNIST's `[784]` as `[1, 28, 28]` for image transforms and convolutions.
    pub fn with_feature_shape(mut self, feature_shape: &[usize]) -> Result<Self> {
        let new_len: Option<usize> = feature_shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d));
        if new_len != Some(self.feature_len()) {
            return Err(DataError::invalid(
                "with_feature_shape",
                format!(
                    "cannot view features of shape {:?} ({} values) as {feature_shape:?}",
                    self.feature_shape,
                    self.feature_len()
                ),
            ));
        }
        self.feature_shape = feature_shape.to_vec();
        Ok(self)
    }

    /// A new dataset of the examples `indices` (in that order; repeats allowed).
    pub fn subset(&self, indices: &[usize]) -> Result<Self> {
        let mut features = Vec::new();
        let mut labels = Vec::new();
        self.get_batch(indices, &mut features, &mut labels)?;
        Ok(InMemoryDataset {
            features,
            feature_shape: self.feature_shape.clone(),
            labels,
        })
    }

    // ANCHOR: split
    /// Splits into `(train, test)` with `round(test_fraction * N)` random
    /// examples in `test`. Both keep the original order of their examples.
    pub fn shuffled_split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        check_fraction(test_fraction)?;
        let order = Generator::new(seed).permutation(self.len());
        let n_test = (test_fraction * self.len() as f64).round() as usize;
        let (test, train) = order.split_at(n_test);
        self.split_by(train.to_vec(), test.to_vec())
    }

    /// Splits into `(train, test)` so that each class is divided in the same
    /// proportion: `round(test_fraction * n_c)` of the `n_c` examples of class
    /// `c` go to `test`. With few examples per class this keeps rare classes
    /// from vanishing from the test set by bad luck.
    pub fn stratified_split(&self, test_fraction: f64, seed: u64) -> Result<(Self, Self)> {
        check_fraction(test_fraction)?;
        let mut by_class: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
        for (i, &l) in self.labels.iter().enumerate() {
            by_class.entry(l).or_default().push(i);
        }
        let mut rng = Generator::new(seed);
        let (mut train, mut test) = (Vec::new(), Vec::new());
        for members in by_class.values() {
            let order = rng.permutation(members.len());
            let n_test = (test_fraction * members.len() as f64).round() as usize;
            test.extend(order[..n_test].iter().map(|&k| members[k]));
            train.extend(order[n_test..].iter().map(|&k| members[k]));
        }
        self.split_by(train, test)
    }
    // ANCHOR_END: split

    fn split_by(&self, mut train: Vec<usize>, mut test: Vec<usize>) -> Result<(Self, Self)> {
        train.sort_unstable();
        test.sort_unstable();
        Ok((self.subset(&train)?, self.subset(&test)?))
    }
}

fn check_fraction(test_fraction: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&test_fraction) {
        return Err(DataError::invalid(
            "split",
            format!("test fraction {test_fraction} is not in [0, 1]"),
        ));
    }
    Ok(())
}
