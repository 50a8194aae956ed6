//! The promise behind "data stays where it lives": a training step, from
//! the forward pass to the scheduler's step, makes no transfer between the
//! host and the device. Each test builds its model on a `CountingDevice`
//! (which forwards every primitive to the CPU and counts host↔device
//! copies), runs a warm-up step, then counts one full step.
//!
//! `cargo test -p candle-tests --test host_transfers -- --nocapture` prints
//! the counts.

use chapter_02::{manual_seed, CountingDevice, DType, Device, Tensor as RawTensor};
use chapter_03::{Result, Tensor};
use chapter_04::prelude::*;
use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
use chapter_05::{Dropout, Gelu, LayerNorm, Linear, Module, ModuleExt};
use chapter_06::{clip_grad_norm_, Adam, AdamConfig, Mlp, OneCycleLr, Optimizer, Scheduler};

/// Forward, loss, backward, gradient clipping, optimiser step, scheduler
/// step: one training step, as the trainer of chapter 06 does it.
fn train_step(
    model: &dyn Module,
    x: &Tensor,
    y: &Tensor,
    optimizer: &mut dyn Optimizer,
    scheduler: &mut Scheduler,
) -> Result<()> {
    let logits = model.forward(x)?;
    let loss = cross_entropy(&logits, y, &CrossEntropyOptions::default())?;
    optimizer.zero_grad();
    loss.backward()?;
    clip_grad_norm_(&model.parameters(), 1.0, 2.0)?;
    optimizer.step()?;
    scheduler.step(optimizer);
    Ok(())
}

/// Transfers made by the second of two training steps (the first creates
/// the optimiser's buffers).
fn transfers_in_a_step(
    counter: &CountingDevice,
    model: &dyn Module,
    x: &Tensor,
    y: &Tensor,
) -> Result<usize> {
    let mut optimizer = Adam::new(model.parameters(), AdamConfig::adamw(1e-3))?;
    let mut scheduler = Scheduler::new(OneCycleLr::new(1e-3, 100), &mut optimizer);
    model.train();
    train_step(model, x, y, &mut optimizer, &mut scheduler)?;
    counter.reset();
    train_step(model, x, y, &mut optimizer, &mut scheduler)?;
    Ok(counter.host_transfers())
}

/// Labels `0..n` modulo `classes`, uploaded before counting starts (the
/// data loader's one upload per batch is the input, not part of the step).
fn labels(shape: &[usize], classes: usize, device: &Device) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<i64> = (0..n).map(|i| (i * 7 % classes) as i64).collect();
    Tensor::from_vec(v, shape.to_vec(), device)
}

#[test]
fn an_mlp_training_step_makes_no_host_transfer() {
    let counter = CountingDevice::new(Device::cpu());
    let dev = counter.device().clone();
    manual_seed(0);
    let model = Mlp::new(&[784, 64, 10], 0.1, DType::F32, &dev).unwrap();
    let x = Tensor::from_raw(RawTensor::randn(0.0, 1.0, (32, 784), DType::F32, &dev).unwrap());
    let y = labels(&[32], 10, &dev).unwrap();
    let n = transfers_in_a_step(&counter, &model, &x, &y).unwrap();
    println!("host transfers in an MLP training step: {n}");
    assert_eq!(n, 0, "{:?}", counter.counts());
}

// ANCHOR: attention_block
/// A pre-norm transformer block with a classification head, built from
/// chapter 04-05 operations only: causal self-attention with attention
/// dropout, layer norm, a GELU MLP, residual connections.
#[derive(chapter_05::Module)]
struct AttentionBlock {
    #[module(skip)]
    heads: usize,
    ln1: LayerNorm,
    qkv: Linear,
    proj: Linear,
    ln2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    head: Linear,
    drop: Dropout,
    gelu: Gelu,
}

impl AttentionBlock {
    fn new(width: usize, heads: usize, classes: usize, device: &Device) -> Result<Self> {
        let linear = |i, o| Linear::with_options(i, o, true, DType::F32, device);
        let norm = || LayerNorm::with_options(width, 1e-5, true, DType::F32, device);
        Ok(AttentionBlock {
            heads,
            ln1: norm()?,
            qkv: linear(width, 3 * width)?,
            proj: linear(width, width)?,
            ln2: norm()?,
            fc1: linear(width, 4 * width)?,
            fc2: linear(4 * width, width)?,
            head: linear(width, classes)?,
            drop: Dropout::new(0.1)?,
            gelu: Gelu::default(),
        })
    }

    /// `[B, T, C]` → logits `[B·T, classes]`.
    fn logits(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims();
        let (b, t, c) = (dims[0], dims[1], dims[2]);
        let (h, d) = (self.heads, c / self.heads);
        let qkv = self.qkv.forward(&self.ln1.forward(x)?)?; // [B, T, 3C]
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)?
                .reshape(vec![b, t, h, d])?
                .transpose(1, 2) // [B, H, T, D]
        };
        let (q, k, v) = (split(0)?, split(1)?, split(2)?);
        let scores = q
            .matmul(&k.transpose(2, 3)?)?
            .affine(1.0 / (d as f64).sqrt(), 0.0)?;
        let mask = causal_mask(t, &x.device())?;
        let weights = scores.masked_fill(&mask, f64::NEG_INFINITY)?.softmax(-1)?;
        let attended = self.drop.forward(&weights)?.matmul(&v)?; // [B, H, T, D]
        let merged = attended.transpose(1, 2)?.reshape(vec![b, t, c])?;
        let x = x.add(&self.proj.forward(&merged)?)?;
        let hidden = self
            .gelu
            .forward(&self.fc1.forward(&self.ln2.forward(&x)?)?)?;
        let x = x.add(&self.drop.forward(&self.fc2.forward(&hidden)?)?)?;
        self.head
            .forward(&x)?
            .reshape(vec![b * t, self.head_classes()])
    }

    fn head_classes(&self) -> usize {
        self.head.weight.dims()[0]
    }
}
// ANCHOR_END: attention_block

impl Module for AttentionBlock {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.logits(x)
    }
}

#[test]
fn an_attention_block_training_step_makes_no_host_transfer() {
    let counter = CountingDevice::new(Device::cpu());
    let dev = counter.device().clone();
    manual_seed(0);
    let (b, t, c, classes) = (2, 8, 32, 11);
    let block = AttentionBlock::new(c, 4, classes, &dev).unwrap();
    let x = Tensor::from_raw(RawTensor::randn(0.0, 1.0, (b, t, c), DType::F32, &dev).unwrap());
    let y = labels(&[b * t], classes, &dev).unwrap();
    let n = transfers_in_a_step(&counter, &block, &x, &y).unwrap();
    println!("host transfers in an attention block training step: {n}");
    assert_eq!(n, 0, "{:?}", counter.counts());
}

#[test]
fn the_counter_sees_a_transfer_when_there_is_one() {
    // The instrument itself: reading a loss is one device→host transfer.
    let counter = CountingDevice::new(Device::cpu());
    let x = Tensor::from_raw(RawTensor::ones(3, DType::F32, counter.device()).unwrap());
    counter.reset();
    let total = x.sum_all().unwrap();
    assert_eq!(counter.host_transfers(), 0);
    assert_eq!(total.item().unwrap(), 3.0);
    assert_eq!(counter.counts().downloads, 1);
}
