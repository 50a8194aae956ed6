//! Data parallelism across the cores of one machine: the batch is split
//! into shards, and each core runs the whole forward and backward pass of
//! one shard.
//!
//! Until now a step used the cores *inside* each operation: a matrix
//! product, a layer norm or a softmax splits its rows over the threads,
//! and the threads meet again before the next operation starts. For a big
//! model that is the right way round. For a small one (chapter 08's GPT
//! has products of 768 × 128 by 128 × 384) each operation is so short that
//! the meeting points cost as much as the work: a step runs about a
//! thousand operations, every one ends with a thread waiting for the other,
//! and the products, cut in two, run further from the core's peak than
//! whole ones.
//!
//! Splitting the *batch* instead is the other classic answer, what
//! PyTorch's `DistributedDataParallel` does across machines. Replica `i`
//! computes the loss `Lᵢ` of its `nᵢ` examples on one thread of its own,
//! with every operation single-threaded and no meeting point until the
//! end. The step's loss is the batch mean, so
//!
//! ```text
//! L = Σᵢ (nᵢ / n) · Lᵢ        ∂L/∂θ = Σᵢ (nᵢ / n) · ∂Lᵢ/∂θ
//! ```
//!
//! and each replica seeds its backward pass with its weight `nᵢ / n`. The
//! gradients are then summed in shard order on the calling thread, so the
//! result does not depend on which replica finished first: a run is
//! reproducible bit for bit for a given number of replicas. Another number
//! of replicas adds the same numbers in another order, which changes the
//! last bits; that is why a training run records it.
//!
//! What this does *not* fit: a model whose layers look across the batch.
//! Batch normalisation in training mode would see each shard's statistics
//! instead of the batch's, a different model (PyTorch needs `SyncBatchNorm`
//! for the same reason). The language models of chapter 08 treat every
//! window on its own, so for them the split changes nothing but rounding.

use chapter_02::{with_default_generator, Device, Error, Generator, Result};
use chapter_03::{
    detect_anomaly, grad, is_anomaly_enabled, is_grad_enabled, no_grad, set_grad_enabled,
    BackwardOptions, Tensor,
};
use std::ops::Range;

/// The most replicas [`DataParallel::new`] accepts (a thread each).
pub const MAX_REPLICAS: usize = 256;

// ANCHOR: data_parallel
/// Runs a training step's forward and backward passes as `replicas`
/// copies, each on one thread of its own, over consecutive shards of the
/// batch. Parameters are shared, not copied: every replica reads the same
/// weights, and only the gradients are combined.
pub struct DataParallel {
    /// One single-thread pool per replica: every operation a replica runs,
    /// including the CPU kernels' own parallel loops, stays on its thread.
    pools: Vec<rayon::ThreadPool>,
}

/// What [`DataParallel::backward`] returns.
pub struct ShardedStep<T> {
    /// The loss of the whole batch, `Σᵢ (nᵢ / n) · Lᵢ`, detached.
    pub loss: Tensor,
    /// What each shard's step returned besides its loss, in shard order.
    pub outputs: Vec<T>,
}

impl DataParallel {
    /// `replicas` replicas (1 to [`MAX_REPLICAS`]). One replica is the
    /// ordinary step on the calling thread, with its threads used inside
    /// each operation as before.
    pub fn new(replicas: usize) -> Result<Self> {
        if replicas == 0 || replicas > MAX_REPLICAS {
            return Err(Error::invalid(
                "DataParallel",
                format!("replicas = {replicas}: it must be 1 to {MAX_REPLICAS}"),
            ));
        }
        let pools = if replicas == 1 {
            Vec::new()
        } else {
            (0..replicas)
                .map(|i| {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .thread_name(move |_| format!("candle-replica-{i}"))
                        .build()
                        .map_err(|e| Error::device("DataParallel", "cpu", e.to_string()))
                })
                .collect::<Result<_>>()?
        };
        Ok(DataParallel { pools })
    }

    /// The number of replicas.
    pub fn replicas(&self) -> usize {
        self.pools.len().max(1)
    }

    /// How a batch of `batch` examples is split: consecutive shards whose
    /// sizes differ by at most one, the larger ones first. A batch smaller
    /// than the number of replicas leaves the rest idle.
    pub fn shards(&self, batch: usize) -> Vec<Range<usize>> {
        let k = self.replicas().min(batch).max(1);
        let (base, extra) = (batch / k, batch % k);
        let mut start = 0;
        (0..k)
            .map(|i| {
                let len = base + usize::from(i < extra);
                let range = start..start + len;
                start += len;
                range
            })
            .collect()
    }

    /// One training step's gradients: `step(shard)` builds the loss (a
    /// scalar, the mean over the shard's examples) and anything else the
    /// caller wants back (logits for an accuracy, say). The gradient of the
    /// batch's loss with respect to every parameter in `params` that
    /// requires grad is *added* to its `.grad`, as `loss.backward()` would.
    ///
    /// With one shard this is exactly `step(0..batch)` and `backward()` on
    /// the calling thread. Otherwise each replica starts with its own
    /// default generator (for dropout), seeded from one draw of the calling
    /// thread's, so a seeded run stays seeded; and the calling thread's
    /// grad and anomaly modes apply in every replica.
    pub fn backward<T, F>(&self, batch: usize, params: &[Tensor], step: F) -> Result<ShardedStep<T>>
    where
        T: Send,
        F: Fn(Range<usize>) -> Result<(Tensor, T)> + Sync,
    {
        if batch == 0 {
            return Err(Error::invalid(
                "DataParallel::backward",
                "the batch is empty",
            ));
        }
        let shards = self.shards(batch);
        if shards.len() == 1 {
            let (loss, out) = step(0..batch)?;
            loss.backward()?;
            return Ok(ShardedStep {
                loss: loss.detach(),
                outputs: vec![out],
            });
        }
        let trainable: Vec<&Tensor> = params.iter().filter(|p| p.requires_grad()).collect();
        let grad_mode = is_grad_enabled();
        let anomaly = is_anomaly_enabled();
        let base_seed =
            with_default_generator(|g| (u64::from(g.next_word()) << 32) | u64::from(g.next_word()));
        let replica = |i: usize, shard: Range<usize>| -> Result<ReplicaResult<T>> {
            let _grad_mode = set_grad_enabled(grad_mode);
            let _anomaly = anomaly.then(detect_anomaly);
            chapter_02::set_default_generator_state(
                &Generator::new(replica_seed(base_seed, i)).state(),
            );
            let weight = shard.len() as f64 / batch as f64;
            let (loss, out) = step(shard)?;
            let seed = Tensor::full(weight, loss.shape(), loss.dtype(), &loss.device())?;
            let grads = if trainable.is_empty() {
                Vec::new()
            } else {
                grad(&loss, &trainable, Some(&seed), BackwardOptions::default())?
            };
            let weighted = {
                let _off = no_grad();
                loss.detach().mul(&seed)?
            };
            Ok((weighted, out, grads))
        };
        let results: Vec<Result<ReplicaResult<T>>> = std::thread::scope(|s| {
            let handles: Vec<_> = shards
                .iter()
                .cloned()
                .enumerate()
                .map(|(i, shard)| {
                    let pool = &self.pools[i];
                    let replica = &replica;
                    s.spawn(move || pool.install(|| replica(i, shard)))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        // Sum in shard order, on this thread, whatever order they finished in.
        let _off = no_grad();
        let mut loss: Option<Tensor> = None;
        let mut outputs = Vec::with_capacity(results.len());
        let mut sums: Vec<Option<Tensor>> = vec![None; trainable.len()];
        for result in results {
            let (l, out, grads) = result?;
            loss = Some(match loss {
                Some(total) => total.add(&l)?,
                None => l,
            });
            outputs.push(out);
            for (sum, g) in sums.iter_mut().zip(grads) {
                if let Some(g) = g {
                    *sum = Some(match sum.take() {
                        Some(total) => total.add(&g)?,
                        None => g,
                    });
                }
            }
        }
        for (p, sum) in trainable.iter().zip(sums) {
            if let Some(g) = sum {
                let total = match p.grad_opt() {
                    Some(prev) => prev.add(&g)?,
                    None => g,
                };
                p.set_grad(Some(total));
            }
        }
        Ok(ShardedStep {
            loss: loss.expect("at least two shards"),
            outputs,
        })
    }
}
// ANCHOR_END: data_parallel

/// What one replica hands back: its weighted loss, the step's output, and
/// its weighted gradient for each trainable parameter.
type ReplicaResult<T> = (Tensor, T, Vec<Option<Tensor>>);

/// The default replica count for `device`: one per core on the CPU (rayon's
/// thread count, so `RAYON_NUM_THREADS` applies), at most `batch`; one on
/// any other device, which has its own parallelism.
pub fn default_replicas(device: &Device, batch: usize) -> usize {
    if device.is_cpu() {
        rayon::current_num_threads().min(batch).max(1)
    } else {
        1
    }
}

/// Replica `i`'s generator seed: SplitMix64 of the step's draw and `i`, so
/// replicas get unrelated Philox streams.
fn replica_seed(base: u64, i: usize) -> u64 {
    let mut z = base.wrapping_add((i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
