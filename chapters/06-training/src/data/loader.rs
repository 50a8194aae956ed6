//! Batches from a dataset: shuffling, augmentation, prefetching.
//!
//! Three decisions shape this loader.
//!
//! 1. **The shuffle of epoch `e` is a function of `(seed, e)` only.** We do
//!    not keep one generator running across epochs, whose state after epoch
//!    4 depends on everything drawn before. Instead each epoch seeds a fresh
//!    generator from [`derive_seed`]`(seed, [SHUFFLE, e])`. A run resumed from
//!    a checkpoint at epoch 5, batch 17 calls `epoch_from(5, 17)` and sees
//!    exactly the batches the uninterrupted run saw. Augmentation is seeded the
//!    same way, per batch, from `(seed, e, b)`.
//! 2. **A batch is a gather.** The loader hands the dataset the batch's
//!    indices and one buffer; see [`Dataset::get_batch`].
//! 3. **Prefetching is a thread and a bounded channel.** With `prefetch(k)`,
//!    a background thread assembles batches and pushes them into a
//!    `sync_channel(k)`. When the channel holds `k` batches the thread blocks,
//!    so memory stays bounded however slow training is; dropping the iterator
//!    closes the channel, which ends the thread. The thread produces plain
//!    vectors; tensors are built on the consumer's thread, on its device.

use super::{DataError, Dataset, Result, Transform};
use chapter_02::{default_device, Device, Generator};
use chapter_03::{RawTensor, Tensor};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Stream tags for [`derive_seed`], so the shuffle and the augmentation of
/// the same epoch draw from unrelated generators.
const SHUFFLE_STREAM: u64 = 0x5348_5546; // "SHUF"
const AUGMENT_STREAM: u64 = 0x4155_474d; // "AUGM"

// ANCHOR: derive_seed
/// SplitMix64's finaliser: a bijection on `u64` that scatters nearby inputs
/// (seeds 0, 1, 2...) to unrelated outputs.
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A seed for one purpose, derived from a base seed and a path of numbers,
/// e.g. `derive_seed(seed, &[SHUFFLE, epoch])`. Pure: the same inputs give
/// the same seed in every run, on every thread.
pub fn derive_seed(seed: u64, path: &[u64]) -> u64 {
    path.iter().fold(mix64(seed), |h, &p| {
        mix64(h ^ mix64(p.wrapping_add(0x9e37_79b9_7f4a_7c15)))
    })
}
// ANCHOR_END: derive_seed

// ANCHOR: loader
/// Cuts a [`Dataset`] into batches of chapter 03 tensors:
/// inputs `f32 [B, features...]` and targets `i64 [B]`.
#[derive(Clone)]
pub struct DataLoader {
    dataset: Arc<dyn Dataset>,
    batch_size: usize,
    shuffle: bool,
    seed: u64,
    drop_last: bool,
    prefetch: usize,
    transform: Option<Arc<dyn Transform>>,
    device: Device,
}
// ANCHOR_END: loader

impl DataLoader {
    /// A loader that yields the examples in order, `batch_size` at a time,
    /// keeping a short last batch, synchronously, on the CPU.
    pub fn new(dataset: Arc<dyn Dataset>, batch_size: usize) -> Result<Self> {
        if batch_size == 0 {
            return Err(DataError::invalid(
                "DataLoader::new",
                "batch size must be at least 1",
            ));
        }
        Ok(DataLoader {
            dataset,
            batch_size,
            shuffle: false,
            seed: 0,
            drop_last: false,
            prefetch: 0,
            transform: None,
            device: default_device()?,
        })
    }

    /// Shuffles every epoch, with orders derived from `seed` and the epoch.
    pub fn shuffle(mut self, seed: u64) -> Self {
        self.shuffle = true;
        self.seed = seed;
        self
    }

    /// Whether to drop the last batch when it is shorter than `batch_size`
    /// (so every step sees the same batch size).
    pub fn drop_last(mut self, drop_last: bool) -> Self {
        self.drop_last = drop_last;
        self
    }

    /// Assembles up to `depth` batches ahead on a background thread
    /// (0, the default, assembles each batch when it is asked for).
    pub fn prefetch(mut self, depth: usize) -> Self {
        self.prefetch = depth;
        self
    }

    /// Applies `transform` to every example of every batch. Its random draws
    /// are seeded from the loader's seed, the epoch and the batch index.
    pub fn transform(mut self, transform: impl Transform + 'static) -> Self {
        self.transform = Some(Arc::new(transform));
        self
    }

    /// The seed for augmentation when the loader does not shuffle (shuffling
    /// sets it too).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Puts the batches on `device`.
    pub fn device(mut self, device: &Device) -> Self {
        self.device = device.clone();
        self
    }

    pub fn dataset(&self) -> &Arc<dyn Dataset> {
        &self.dataset
    }

    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Number of batches in one epoch.
    pub fn num_batches(&self) -> usize {
        let n = self.dataset.len();
        if self.drop_last {
            n / self.batch_size
        } else {
            n.div_ceil(self.batch_size)
        }
    }

    // ANCHOR: epoch_order
    /// The order in which epoch `epoch` visits the examples: a permutation of
    /// `0..len` drawn from a generator seeded by `(seed, epoch)` alone, or
    /// `0..len` when not shuffling.
    pub fn epoch_order(&self, epoch: u64) -> Vec<usize> {
        let n = self.dataset.len();
        if self.shuffle {
            Generator::new(derive_seed(self.seed, &[SHUFFLE_STREAM, epoch])).permutation(n)
        } else {
            (0..n).collect()
        }
    }
    // ANCHOR_END: epoch_order

    /// The batches of epoch `epoch`.
    pub fn epoch(&self, epoch: u64) -> EpochBatches {
        self.epoch_from(epoch, 0)
    }

    // ANCHOR: epoch_from
    /// The batches of epoch `epoch` from batch `start` on: what a run resumed
    /// in the middle of an epoch iterates over.
    pub fn epoch_from(&self, epoch: u64, start: usize) -> EpochBatches {
        let job = Arc::new(self.job(epoch));
        let end = self.num_batches();
        let start = start.min(end);
        let source = if self.prefetch == 0 {
            Source::Inline { job, next: start }
        } else {
            let (tx, rx) = sync_channel(self.prefetch);
            let worker = std::thread::spawn(move || {
                for b in start..end {
                    let batch = job.assemble(b);
                    let failed = batch.is_err();
                    // A send error means the iterator was dropped: stop.
                    if tx.send(batch).is_err() || failed {
                        break;
                    }
                }
            });
            Source::Prefetch {
                rx: Some(rx),
                worker: Some(worker),
            }
        };
        EpochBatches {
            source,
            remaining: end - start,
            device: self.device.clone(),
        }
    }
    // ANCHOR_END: epoch_from

    /// Batch `index` of epoch `epoch`, assembled on this thread (random access;
    /// it recomputes the epoch's order, so prefer iterating).
    pub fn batch(&self, epoch: u64, index: usize) -> Result<(Tensor, Tensor)> {
        if index >= self.num_batches() {
            return Err(DataError::invalid(
                "DataLoader::batch",
                format!(
                    "batch {index} is out of range for an epoch of {} batches",
                    self.num_batches()
                ),
            ));
        }
        self.job(epoch).assemble(index)?.into_tensors(&self.device)
    }

    fn job(&self, epoch: u64) -> BatchJob {
        BatchJob {
            dataset: self.dataset.clone(),
            order: self.epoch_order(epoch),
            batch_size: self.batch_size,
            transform: self.transform.clone(),
            seed: self.seed,
            epoch,
        }
    }
}

/// Everything needed to assemble any batch of one epoch, shareable with the
/// prefetch thread.
struct BatchJob {
    dataset: Arc<dyn Dataset>,
    order: Vec<usize>,
    batch_size: usize,
    transform: Option<Arc<dyn Transform>>,
    seed: u64,
    epoch: u64,
}

/// A batch as plain vectors, before it becomes tensors.
struct RawBatch {
    inputs: Vec<f32>,
    targets: Vec<i64>,
    shape: Vec<usize>,
}

// ANCHOR: assemble
impl BatchJob {
    /// Gathers the rows of batch `b`, then transforms each example.
    fn assemble(&self, b: usize) -> Result<RawBatch> {
        let lo = b * self.batch_size;
        let hi = (lo + self.batch_size).min(self.order.len());
        let indices = &self.order[lo..hi];
        let feature_shape = self.dataset.feature_shape();
        let f = self.dataset.feature_len();
        let mut inputs = Vec::with_capacity(indices.len() * f);
        let mut targets = Vec::with_capacity(indices.len());
        self.dataset.get_batch(indices, &mut inputs, &mut targets)?;
        if let Some(t) = &self.transform {
            let mut rng = Generator::new(derive_seed(
                self.seed,
                &[AUGMENT_STREAM, self.epoch, b as u64],
            ));
            for example in inputs.chunks_mut(f.max(1)) {
                t.apply(example, feature_shape, &mut rng)?;
            }
        }
        let mut shape = vec![indices.len()];
        shape.extend_from_slice(feature_shape);
        Ok(RawBatch {
            inputs,
            targets,
            shape,
        })
    }
}

impl RawBatch {
    /// Inputs `f32 [B, features...]` and targets `i64 [B]` on `device`.
    fn into_tensors(self, device: &Device) -> Result<(Tensor, Tensor)> {
        let n = self.targets.len();
        let x = RawTensor::from_vec(self.inputs, self.shape, device)?;
        let y = RawTensor::from_vec(self.targets, n, device)?;
        Ok((Tensor::from_raw(x), Tensor::from_raw(y)))
    }
}
// ANCHOR_END: assemble

enum Source {
    Inline {
        job: Arc<BatchJob>,
        next: usize,
    },
    Prefetch {
        rx: Option<Receiver<Result<RawBatch>>>,
        worker: Option<JoinHandle<()>>,
    },
}

/// The batches of one epoch: an iterator of `Result<(inputs, targets)>`.
/// Iteration stops after the first error.
pub struct EpochBatches {
    source: Source,
    remaining: usize,
    device: Device,
}

// ANCHOR: iterator
impl Iterator for EpochBatches {
    type Item = Result<(Tensor, Tensor)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            return None;
        }
        let raw = match &mut self.source {
            Source::Inline { job, next } => {
                *next += 1;
                job.assemble(*next - 1)
            }
            Source::Prefetch { rx, .. } => match rx.as_ref()?.recv() {
                Ok(batch) => batch,
                Err(_) => Err(DataError::invalid(
                    "DataLoader",
                    "the prefetch thread stopped unexpectedly",
                )),
            },
        };
        let item = raw.and_then(|r| r.into_tensors(&self.device));
        self.remaining = if item.is_err() { 0 } else { self.remaining - 1 };
        Some(item)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for EpochBatches {}

impl Drop for EpochBatches {
    fn drop(&mut self) {
        if let Source::Prefetch { rx, worker } = &mut self.source {
            // Closing the channel first makes a blocked `send` fail, so the
            // worker stops before we wait for it.
            drop(rx.take());
            if let Some(w) = worker.take() {
                let _ = w.join();
            }
        }
    }
}
// ANCHOR_END: iterator
