//! Depth in transformers: where the layer norm sits.
//!
//! Chapter 08's GPT normalises the *input* of each branch and adds the
//! branch to an untouched residual stream (pre-norm, GPT-2's choice):
//!
//! ```text
//! pre-norm    x ← x + attn(ln₁(x))        x ← x + mlp(ln₂(x))
//! post-norm   x ← ln₁(x + attn(x))        x ← ln₂(x + mlp(x))
//! no skips    x ← attn(ln₁(x))            x ← mlp(ln₂(x))
//! ```
//!
//! The original transformer (Vaswani et al. 2017) normalised *after* the
//! sum (post-norm). This module runs the three arrangements through the
//! very same modules of a chapter 08 [`Gpt`] (its embeddings, blocks and
//! final norm, built and initialised by chapter 08's own code) and measures
//! what reaches each block: the gradient of its weights, the size of the
//! residual stream it reads, and how training goes at a fixed learning rate
//! without warm-up.

use crate::figure::{num, Csv, LineFigure, Panel, Series, BLUE, GREY, PURPLE, VERMILION};
use crate::grad_norm::summary;
use crate::{FigureError, Progress};
use chapter_02::{Generator, Result, Tensor as RawTensor};
use chapter_03::{DType, Device, Tensor};
use chapter_04::prelude::*;
use chapter_05::{Module, ModuleExt};
use chapter_06::{Adam, AdamConfig, Optimizer};
use chapter_08::char_data::{CharVocab, Split, TextSplits};
use chapter_08::{next_token_loss, Gpt, GptConfig};
use std::path::Path;

// ANCHOR: arrangement
/// Where each block's layer norms sit, and whether the block has skips.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrangement {
    /// `x ← x + f(ln(x))`: chapter 08's block (GPT-2).
    PreNorm,
    /// `x ← ln(x + f(x))`: the original transformer's block.
    PostNorm,
    /// `x ← f(ln(x))`: pre-norm with the skip connections removed.
    NoSkips,
}

impl Arrangement {
    pub const ALL: [Arrangement; 3] = [
        Arrangement::PreNorm,
        Arrangement::PostNorm,
        Arrangement::NoSkips,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Arrangement::PreNorm => "pre-norm",
            Arrangement::PostNorm => "post-norm",
            Arrangement::NoSkips => "no skips",
        }
    }

    fn color(self) -> plotters::style::RGBColor {
        match self {
            Arrangement::PreNorm => BLUE,
            Arrangement::PostNorm => VERMILION,
            Arrangement::NoSkips => GREY,
        }
    }
}

/// The logits `[B, T, V]` of `gpt` on `ids: [B, T]` with its blocks
/// arranged as `arrangement`, and the residual stream after each block
/// (`n_layer` tensors `[B, T, C]`). With [`Arrangement::PreNorm`] the logits
/// are exactly [`Gpt::forward`]'s. The final norm `ln_f` is applied in all
/// three (in post-norm it renormalises a normalised stream, which at
/// `γ = 1, β = 0` changes nothing).
pub fn forward(gpt: &Gpt, ids: &Tensor, arrangement: Arrangement) -> Result<(Tensor, Vec<Tensor>)> {
    let tr = &gpt.transformer;
    let t = ids.dims()[1];
    let mut x = tr.wte.forward(ids)?.add(&tr.wpe.weight.narrow(0, 0, t)?)?;
    let mut stream = Vec::with_capacity(tr.h.len());
    for b in &tr.h {
        x = match arrangement {
            Arrangement::PreNorm => {
                let x = x.add(&b.attn.forward(&b.ln_1.forward(&x)?)?)?;
                x.add(&b.mlp.forward(&b.ln_2.forward(&x)?)?)?
            }
            Arrangement::PostNorm => {
                let x = b.ln_1.forward(&x.add(&b.attn.forward(&x)?)?)?;
                b.ln_2.forward(&x.add(&b.mlp.forward(&x)?)?)?
            }
            Arrangement::NoSkips => {
                let x = b.attn.forward(&b.ln_1.forward(&x)?)?;
                b.mlp.forward(&b.ln_2.forward(&x)?)?
            }
        };
        stream.push(x.clone());
    }
    let x = tr.ln_f.forward(&x)?;
    Ok((x.matmul(&tr.wte.weight.t()?)?, stream))
}
// ANCHOR_END: arrangement

/// `√(Σ g²)` over every parameter of `module` that has a gradient:
/// chapter 06's [`grad_norm`](chapter_06::grad_norm), the norm that
/// gradient clipping logs, read back as a number.
pub fn grad_norm(module: &impl Module) -> Result<f64> {
    Ok(chapter_06::grad_norm(&module.parameters())?.to_vec_f64()?[0])
}

/// The root mean square of a tensor's values.
pub fn rms(t: &Tensor) -> Result<f64> {
    let v = t.to_vec_f64()?;
    Ok((v.iter().map(|x| x * x).sum::<f64>() / v.len().max(1) as f64).sqrt())
}

// ANCHOR: init
/// How the blocks' matrices start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockInit {
    /// Chapter 08's (GPT-2's): `N(0, 0.02²)`, and the two projections that
    /// end a branch `N(0, (0.02/√(2L))²)`, so that each branch adds little
    /// to the stream at first.
    Gpt2,
    /// Glorot's `N(0, 2/(fan_in + fan_out))` for every matrix of every
    /// block, as the original transformer did: each branch's output is
    /// about as large as its input.
    Xavier,
}

impl BlockInit {
    pub const BOTH: [BlockInit; 2] = [BlockInit::Gpt2, BlockInit::Xavier];

    pub fn name(self) -> &'static str {
        match self {
            BlockInit::Gpt2 => "GPT-2 init",
            BlockInit::Xavier => "Xavier init",
        }
    }

    /// The stem of this init's figure and data files.
    pub fn stem(self) -> &'static str {
        match self {
            BlockInit::Gpt2 => "10-gpt-norm-placement",
            BlockInit::Xavier => "10-gpt-norm-placement-xavier",
        }
    }
}

/// Redraws every matrix of `gpt`'s blocks as `init` says (chapter 08 drew
/// them the GPT-2 way, so [`BlockInit::Gpt2`] leaves them alone). The
/// embeddings and the layer norms are not touched.
pub fn reinitialise(gpt: &Gpt, init: BlockInit, seed: u64) -> Result<()> {
    if init == BlockInit::Gpt2 {
        return Ok(());
    }
    let mut generator = Generator::new(seed);
    for block in &gpt.transformer.h {
        for p in block.parameters() {
            let dims = p.dims().to_vec();
            if let [fan_in, fan_out] = dims[..] {
                let std = (2.0 / (fan_in + fan_out) as f64).sqrt();
                let w =
                    RawTensor::randn_with(0.0, std, dims, p.dtype(), &p.device(), &mut generator)?;
                p.set_data(w)?;
            }
        }
    }
    Ok(())
}
// ANCHOR_END: init

// ANCHOR: sweep
/// What the experiment measures, and on what.
#[derive(Debug, Clone, PartialEq)]
pub struct NormPlacementSweep {
    /// How the blocks' matrices start.
    pub init: BlockInit,
    /// Blocks of the networks whose gradients are measured at
    /// initialisation.
    pub depths: Vec<usize>,
    /// The depth at which the per-block profiles are drawn and the
    /// training runs are made.
    pub profile_depth: usize,
    /// Width of the residual stream, and attention heads.
    pub width: usize,
    pub heads: usize,
    /// Characters per sequence, and sequences per batch.
    pub context: usize,
    pub batch: usize,
    /// Models per (arrangement, depth), seeded `0..seeds`.
    pub seeds: usize,
    /// Adam steps at a constant learning rate `lr` (no warm-up).
    pub steps: usize,
    pub lr: f64,
    /// Steps of the linear warm-up (from `lr/warmup` to `lr`) of one more
    /// post-norm run: the remedy the original transformer used.
    pub warmup: usize,
}

impl NormPlacementSweep {
    /// The book's size: width 64, 4 heads, depths 2–32 at initialisation,
    /// profiles and training at depth 12, 3 seeds, 200 Adam steps at
    /// learning rate 3·10⁻³ on batches of 8 × 64 characters (and a post-norm
    /// run with 50 steps of warm-up).
    pub fn book() -> NormPlacementSweep {
        NormPlacementSweep {
            init: BlockInit::Gpt2,
            depths: vec![2, 4, 8, 16, 32],
            profile_depth: 12,
            width: 64,
            heads: 4,
            context: 64,
            batch: 8,
            seeds: 3,
            steps: 200,
            lr: 3e-3,
            warmup: 50,
        }
    }

    /// A small size for tests: the same code in seconds.
    pub fn quick() -> NormPlacementSweep {
        NormPlacementSweep {
            init: BlockInit::Gpt2,
            depths: vec![2, 8],
            profile_depth: 6,
            width: 32,
            heads: 2,
            context: 16,
            batch: 4,
            seeds: 2,
            steps: 4,
            lr: 3e-3,
            warmup: 2,
        }
    }

    /// Chapter 08's GPT of this sweep's shape at `depth`, its blocks
    /// initialised as [`init`](Self::init) says.
    pub fn model(&self, vocab: usize, depth: usize, seed: u64, device: &Device) -> Result<Gpt> {
        let config = GptConfig {
            vocab_size: vocab,
            context_length: self.context,
            n_layer: depth,
            n_head: self.heads,
            n_embd: self.width,
            n_inner: None,
            dropout: 0.0,
            bias: false,
            layer_norm_eps: 1e-5,
            activation: chapter_05::GeluApproximation::None,
        };
        let gpt = Gpt::new(&config, DType::F32, device, seed)?;
        reinitialise(&gpt, self.init, 7919 + seed)?;
        Ok(gpt)
    }
}
// ANCHOR_END: sweep

/// What one model shows at initialisation.
#[derive(Debug, Clone, PartialEq)]
pub struct InitProfile {
    /// `‖∂L/∂θ_ℓ‖` of each block's parameters, first block first.
    pub block_grad: Vec<f64>,
    /// RMS of the residual stream after each block.
    pub stream_rms: Vec<f64>,
    /// The loss at initialisation.
    pub loss: f64,
}

// ANCHOR: profile
/// One forward and backward pass of `gpt`, arranged as `arrangement`, on
/// the batch `(ids, targets)`: every block's gradient norm and the size of
/// the stream it writes.
pub fn init_profile(
    gpt: &Gpt,
    arrangement: Arrangement,
    ids: &Tensor,
    targets: &Tensor,
) -> Result<InitProfile> {
    gpt.zero_grad();
    let (logits, stream) = forward(gpt, ids, arrangement)?;
    let loss = next_token_loss(&logits, targets)?;
    loss.backward()?;
    Ok(InitProfile {
        block_grad: gpt
            .transformer
            .h
            .iter()
            .map(grad_norm)
            .collect::<Result<_>>()?,
        stream_rms: stream.iter().map(rms).collect::<Result<_>>()?,
        loss: loss.to_vec_f64()?[0],
    })
}
// ANCHOR_END: profile

/// The Shakespeare text of chapter 08, its characters as tokens, split
/// 90/10.
pub fn shakespeare(context: usize) -> std::result::Result<(CharVocab, TextSplits), FigureError> {
    let path = chapter_06::data::default_data_dir().join("shakespeare/shakespeare_small.txt");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let vocab = CharVocab::from_text(&text);
    let splits = TextSplits::new(vocab.encode(&text)?, 0.9, context)?;
    Ok((vocab, splits))
}

/// Everything the experiment measured.
#[derive(Debug, Clone)]
pub struct NormPlacementResult {
    /// `[arrangement][depth][seed]`: the first block's gradient norm at
    /// initialisation.
    pub first_block_grad: Vec<Vec<Vec<f64>>>,
    /// `[arrangement][seed]`: the profiles at `profile_depth`.
    pub profiles: Vec<Vec<InitProfile>>,
    /// `[arrangement][seed][step]`: training loss (the batch's loss before
    /// each step's update).
    pub train_loss: Vec<Vec<Vec<f64>>>,
    /// `[seed][step]`: post-norm's, with warm-up.
    pub post_norm_warmup_loss: Vec<Vec<f64>>,
}

// ANCHOR: run
impl NormPlacementSweep {
    /// Runs every measurement: profiles and first-block gradients at
    /// initialisation on one fixed batch, then `steps` of Adam on fresh
    /// batches (the same batches, in the same order, for every
    /// arrangement).
    pub fn run(
        &self,
        vocab: &CharVocab,
        splits: &TextSplits,
        device: &Device,
        progress: &mut Progress,
    ) -> Result<NormPlacementResult> {
        let (ids, targets) =
            splits.batch(Split::Train, self.batch, &mut Generator::new(0), device)?;
        let arrangements = Arrangement::ALL.len();
        progress.start(arrangements * self.seeds * (self.depths.len() + 2) + self.seeds);
        let mut result = NormPlacementResult {
            first_block_grad: vec![vec![Vec::new(); self.depths.len()]; arrangements],
            profiles: vec![Vec::new(); arrangements],
            train_loss: vec![Vec::new(); arrangements],
            post_norm_warmup_loss: Vec::new(),
        };
        for (a, &arrangement) in Arrangement::ALL.iter().enumerate() {
            for (d, &depth) in self.depths.iter().enumerate() {
                for seed in 0..self.seeds as u64 {
                    let gpt = self.model(vocab.len(), depth, seed, device)?;
                    let p = init_profile(&gpt, arrangement, &ids, &targets)?;
                    result.first_block_grad[a][d].push(p.block_grad[0]);
                    progress.advance(&format!("{} depth {depth}", arrangement.name()));
                }
            }
            for seed in 0..self.seeds as u64 {
                let gpt = self.model(vocab.len(), self.profile_depth, seed, device)?;
                result.profiles[a].push(init_profile(&gpt, arrangement, &ids, &targets)?);
                progress.advance(&format!("{} profile", arrangement.name()));
                result.train_loss[a].push(self.train(
                    &gpt,
                    arrangement,
                    0,
                    splits,
                    seed,
                    device,
                )?);
                progress.advance(&format!("{} training", arrangement.name()));
            }
        }
        for seed in 0..self.seeds as u64 {
            let gpt = self.model(vocab.len(), self.profile_depth, seed, device)?;
            let post = Arrangement::PostNorm;
            let losses = self.train(&gpt, post, self.warmup, splits, seed, device)?;
            result.post_norm_warmup_loss.push(losses);
            progress.advance("post-norm training with warm-up");
        }
        Ok(result)
    }

    /// `steps` Adam updates at learning rate `lr`, reached linearly over the
    /// first `warmup` steps (none for 0); the loss of each step's batch.
    fn train(
        &self,
        gpt: &Gpt,
        arrangement: Arrangement,
        warmup: usize,
        splits: &TextSplits,
        seed: u64,
        device: &Device,
    ) -> Result<Vec<f64>> {
        let mut opt = Adam::new(gpt.parameters(), AdamConfig::adam(self.lr))?;
        let mut batches = Generator::new(1000 + seed);
        let mut losses = Vec::with_capacity(self.steps);
        for step in 0..self.steps {
            if warmup > 0 {
                let lr = self.lr * ((step + 1) as f64 / warmup as f64).min(1.0);
                opt.set_learning_rates(&[lr]);
            }
            let (ids, targets) = splits.batch(Split::Train, self.batch, &mut batches, device)?;
            opt.zero_grad();
            let (logits, _) = forward(gpt, &ids, arrangement)?;
            let loss = next_token_loss(&logits, &targets)?;
            losses.push(loss.to_vec_f64()?[0]);
            loss.backward()?;
            opt.step()?;
        }
        Ok(losses)
    }
}
// ANCHOR_END: run

/// Mean over seeds of a per-seed series, point by point.
fn mean_series(per_seed: &[Vec<f64>]) -> Vec<f64> {
    let n = per_seed.iter().map(Vec::len).min().unwrap_or(0);
    (0..n)
        .map(|i| summary(&per_seed.iter().map(|s| s[i]).collect::<Vec<_>>()).0)
        .collect()
}

/// The data behind the figure: one row per (measurement, arrangement,
/// x) with the mean and every seed's value.
pub fn csv(sweep: &NormPlacementSweep, r: &NormPlacementResult) -> Csv {
    let mut csv = Csv::new(&["measurement", "arrangement", "x", "mean", "per_seed"]);
    let mut row = |what: &str, a: Arrangement, x: usize, values: Vec<f64>| {
        let seeds: Vec<String> = values.iter().map(|&v| num(v)).collect();
        csv.row(&[
            what.into(),
            a.name().into(),
            x.to_string(),
            num(summary(&values).0),
            seeds.join(";"),
        ]);
    };
    for (ai, &a) in Arrangement::ALL.iter().enumerate() {
        for (d, &depth) in sweep.depths.iter().enumerate() {
            row(
                "first_block_grad_norm_by_depth",
                a,
                depth,
                r.first_block_grad[ai][d].clone(),
            );
        }
        for layer in 0..sweep.profile_depth {
            let at = |f: fn(&InitProfile) -> &Vec<f64>| {
                r.profiles[ai]
                    .iter()
                    .map(|p| f(p)[layer])
                    .collect::<Vec<_>>()
            };
            row(
                "block_grad_norm_by_block",
                a,
                layer + 1,
                at(|p| &p.block_grad),
            );
            row("stream_rms_by_block", a, layer + 1, at(|p| &p.stream_rms));
        }
        for step in 0..sweep.steps {
            let losses = r.train_loss[ai].iter().map(|s| s[step]).collect();
            row("train_loss_by_step", a, step + 1, losses);
        }
    }
    for step in 0..sweep.steps {
        let losses = r.post_norm_warmup_loss.iter().map(|s| s[step]).collect();
        row(
            "train_loss_by_step_warmup",
            Arrangement::PostNorm,
            step + 1,
            losses,
        );
    }
    csv
}

/// Four panels: the first block's gradient against depth; each block's
/// gradient and the stream's size at `profile_depth`; the training loss.
pub fn figure(sweep: &NormPlacementSweep, r: &NormPlacementResult) -> LineFigure {
    let mut panels = vec![
        Panel::new(
            format!(
                "first block's gradient at initialisation, {}",
                sweep.init.name()
            ),
            "blocks",
            "‖∂L/∂θ₁‖",
        )
        .log_x()
        .log_y(),
        Panel::new(
            format!("each block's gradient, depth {}", sweep.profile_depth),
            "block",
            "‖∂L/∂θ‖ of the block",
        )
        .log_y(),
        Panel::new(
            format!("residual stream, depth {}", sweep.profile_depth),
            "block",
            "RMS after the block",
        )
        .log_y(),
        Panel::new(
            format!(
                "training, depth {}, Adam at {}",
                sweep.profile_depth, sweep.lr
            ),
            "step",
            "training loss (nats/char)",
        ),
    ];
    // No skips first, so that the others are drawn over it.
    for (ai, &a) in Arrangement::ALL.iter().enumerate().rev() {
        let first: Vec<(f64, f64)> = sweep
            .depths
            .iter()
            .zip(&r.first_block_grad[ai])
            .map(|(&d, v)| (d as f64, summary(v).0))
            .collect();
        panels[0]
            .series
            .push(Series::line(a.name(), a.color(), first).with_markers());
        let profile = |f: fn(&InitProfile) -> &Vec<f64>| {
            let per_seed: Vec<Vec<f64>> = r.profiles[ai].iter().map(|p| f(p).clone()).collect();
            mean_series(&per_seed)
                .into_iter()
                .enumerate()
                .map(|(i, v)| ((i + 1) as f64, v))
                .collect::<Vec<_>>()
        };
        panels[1]
            .series
            .push(Series::line(a.name(), a.color(), profile(|p| &p.block_grad)).with_markers());
        panels[2]
            .series
            .push(Series::line(a.name(), a.color(), profile(|p| &p.stream_rms)).with_markers());
        let loss = mean_series(&r.train_loss[ai])
            .into_iter()
            .enumerate()
            .map(|(i, v)| ((i + 1) as f64, v))
            .collect();
        panels[3]
            .series
            .push(Series::line(a.name(), a.color(), loss));
    }
    let warm = mean_series(&r.post_norm_warmup_loss)
        .into_iter()
        .enumerate()
        .map(|(i, v)| ((i + 1) as f64, v))
        .collect();
    let name = format!("post-norm, {}-step warm-up", sweep.warmup);
    panels[3]
        .series
        .push(Series::line(name, PURPLE, warm).dashed());
    LineFigure::new(panels, 2)
}

/// `candle experiment gpt-norm`: writes `10-gpt-norm-placement.{csv,svg,png}`
/// (chapter 08's init) and `10-gpt-norm-placement-xavier.{csv,svg,png}`.
pub fn run_norm_placement(
    out: &Path,
    size: crate::Size,
    progress: &mut Progress,
) -> std::result::Result<crate::Outcome, FigureError> {
    let mut outcome = crate::Outcome::default();
    for init in BlockInit::BOTH {
        let sweep = NormPlacementSweep {
            init,
            ..match size {
                crate::Size::Book => NormPlacementSweep::book(),
                crate::Size::Quick => NormPlacementSweep::quick(),
            }
        };
        let (vocab, splits) = shakespeare(sweep.context)?;
        let result = sweep.run(&vocab, &splits, &chapter_02::default_device()?, progress)?;
        outcome
            .files
            .push(csv(&sweep, &result).save(out, init.stem())?);
        outcome.files.extend(crate::figure::save_figure(
            out,
            init.stem(),
            &figure(&sweep, &result),
        )?);
        outcome.summary.extend(summary_lines(&sweep, &result));
    }
    Ok(outcome)
}

/// One line per arrangement: what the figure shows, in numbers.
fn summary_lines(sweep: &NormPlacementSweep, result: &NormPlacementResult) -> Vec<String> {
    let mut lines = Vec::new();
    for (ai, &a) in Arrangement::ALL.iter().enumerate() {
        let grads: Vec<String> = sweep
            .depths
            .iter()
            .zip(&result.first_block_grad[ai])
            .map(|(d, v)| format!("{d}: {:.3e}", summary(v).0))
            .collect();
        let profile = &result.profiles[ai];
        let last = sweep.profile_depth - 1;
        let mean =
            |f: &dyn Fn(&InitProfile) -> f64| summary(&profile.iter().map(f).collect::<Vec<_>>()).0;
        let loss = mean_series(&result.train_loss[ai]);
        lines.push(format!(
            "{}, {}: first block ‖∂L/∂θ₁‖ by depth {}; depth {}: block 1 {:.3e}, block {} {:.3e}, stream RMS {:.3} → {:.3}; loss {:.3} → {:.3}",
            sweep.init.name(),
            a.name(),
            grads.join(", "),
            sweep.profile_depth,
            mean(&|p| p.block_grad[0]),
            sweep.profile_depth,
            mean(&|p| p.block_grad[last]),
            mean(&|p| p.stream_rms[0]),
            mean(&|p| p.stream_rms[last]),
            loss.first().copied().unwrap_or(f64::NAN),
            loss.last().copied().unwrap_or(f64::NAN),
        ));
    }
    let warm = mean_series(&result.post_norm_warmup_loss);
    lines.push(format!(
        "{}, post-norm with {} warm-up steps: loss {:.3} → {:.3}",
        sweep.init.name(),
        sweep.warmup,
        warm.first().copied().unwrap_or(f64::NAN),
        warm.last().copied().unwrap_or(f64::NAN),
    ));
    lines
}
