//! Per-example transforms: normalisation and data augmentation.
//!
//! A transform rewrites one example's features in place. Random transforms
//! (crop, flip) draw from a [`Generator`] that the loader seeds from
//! `(seed, epoch, batch)`, so an augmented epoch is as reproducible as a
//! plain one, on the prefetch thread or not.
//!
//! Image transforms read the example's feature shape as `[H, W]` or
//! `[C, H, W]` (channels first, as in PyTorch).

use super::{DataError, Result};
use chapter_02::Generator;

// ANCHOR: transform
/// A function applied to each example of a batch.
pub trait Transform: Send + Sync {
    /// Transforms one example in place; `shape` is its feature shape and
    /// `x.len()` its product. Random transforms draw from `rng`.
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut Generator) -> Result<()>;
}

/// Several transforms applied one after the other.
#[derive(Default)]
pub struct Compose {
    transforms: Vec<Box<dyn Transform>>,
}

impl Compose {
    pub fn new() -> Self {
        Compose::default()
    }

    /// Adds `t` to the end of the chain.
    pub fn then(mut self, t: impl Transform + 'static) -> Self {
        self.transforms.push(Box::new(t));
        self
    }
}

impl Transform for Compose {
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut Generator) -> Result<()> {
        self.transforms
            .iter()
            .try_for_each(|t| t.apply(x, shape, rng))
    }
}
// ANCHOR_END: transform

fn check_len(op: &'static str, x: &[f32], shape: &[usize]) -> Result<()> {
    let n: usize = shape.iter().product();
    if n != x.len() {
        return Err(DataError::invalid(
            op,
            format!(
                "{} values do not have shape {shape:?} ({n} values)",
                x.len()
            ),
        ));
    }
    Ok(())
}

/// `(channels, height, width)` of an image of shape `[H, W]` or `[C, H, W]`.
fn image_dims(op: &'static str, x: &[f32], shape: &[usize]) -> Result<(usize, usize, usize)> {
    check_len(op, x, shape)?;
    match *shape {
        [h, w] => Ok((1, h, w)),
        [c, h, w] => Ok((c, h, w)),
        _ => Err(DataError::invalid(
            op,
            format!(
                "needs an image of shape [H, W] or [C, H, W], got {shape:?}; view the dataset as an image \
                 first, e.g. with_feature_shape(&[1, 28, 28])"
            ),
        )),
    }
}

// ANCHOR: normalize
/// `x <- (x - mean) / std`, with one `(mean, std)` for all values or one per
/// channel (the first dimension of the feature shape).
#[derive(Debug, Clone)]
pub struct Normalize {
    mean: Vec<f32>,
    inv_std: Vec<f32>,
}

impl Normalize {
    /// Per-channel statistics (`mean.len()` = number of channels), or global
    /// ones when both slices have one element.
    pub fn new(mean: &[f32], std: &[f32]) -> Result<Self> {
        if mean.is_empty() || mean.len() != std.len() {
            return Err(DataError::invalid(
                "Normalize",
                format!(
                    "needs as many means as standard deviations (at least one), got {} and {}",
                    mean.len(),
                    std.len()
                ),
            ));
        }
        if let Some(s) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(DataError::invalid(
                "Normalize",
                format!("standard deviation {s} is not positive"),
            ));
        }
        Ok(Normalize {
            mean: mean.to_vec(),
            inv_std: std.iter().map(|s| 1.0 / s).collect(),
        })
    }

    /// The same statistics for every value.
    pub fn global(mean: f32, std: f32) -> Result<Self> {
        Normalize::new(&[mean], &[std])
    }
}

impl Transform for Normalize {
    fn apply(&self, x: &mut [f32], shape: &[usize], _rng: &mut Generator) -> Result<()> {
        check_len("Normalize", x, shape)?;
        let channels = self.mean.len();
        if channels == 1 {
            let (m, s) = (self.mean[0], self.inv_std[0]);
            x.iter_mut().for_each(|v| *v = (*v - m) * s);
            return Ok(());
        }
        if shape.first() != Some(&channels) {
            return Err(DataError::invalid(
                "Normalize",
                format!(
                    "has statistics for {channels} channels but the example has shape {shape:?}"
                ),
            ));
        }
        let per_channel = x.len() / channels;
        for (c, plane) in x.chunks_mut(per_channel.max(1)).enumerate() {
            let (m, s) = (self.mean[c], self.inv_std[c]);
            plane.iter_mut().for_each(|v| *v = (*v - m) * s);
        }
        Ok(())
    }
}
// ANCHOR_END: normalize

// ANCHOR: flip
/// Mirrors an image left-to-right with probability `p`.
#[derive(Debug, Clone)]
pub struct RandomHorizontalFlip {
    p: f64,
}

impl RandomHorizontalFlip {
    pub fn new(p: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&p) {
            return Err(DataError::invalid(
                "RandomHorizontalFlip",
                format!("probability {p} is not in [0, 1]"),
            ));
        }
        Ok(RandomHorizontalFlip { p })
    }
}

impl Transform for RandomHorizontalFlip {
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut Generator) -> Result<()> {
        let (_, _, w) = image_dims("RandomHorizontalFlip", x, shape)?;
        // Always draw, so the number of draws does not depend on the outcome.
        if rng.uniform(0.0, 1.0) < self.p && w > 0 {
            x.chunks_mut(w).for_each(|row| row.reverse());
        }
        Ok(())
    }
}
// ANCHOR_END: flip

// ANCHOR: crop
/// Pads an image by `padding` pixels of `fill` on every side and cuts out a
/// window of the original size at a random position: the image moves by up
/// to `padding` pixels in each direction (torchvision's
/// `RandomCrop(size, padding)` with `size` = the input size).
#[derive(Debug, Clone)]
pub struct RandomCrop {
    padding: usize,
    fill: f32,
}

impl RandomCrop {
    /// Pads with zeros.
    pub fn new(padding: usize) -> Self {
        RandomCrop { padding, fill: 0.0 }
    }

    /// Pads with `fill` instead (e.g. the normalised value of a black pixel).
    pub fn with_fill(mut self, fill: f32) -> Self {
        self.fill = fill;
        self
    }

    /// The crop whose top-left corner is at `(dy, dx)` in the padded image,
    /// both in `0..=2 * padding`; `(padding, padding)` gives the image back.
    /// Output pixel `(y, x)` is input pixel `(y + dy - padding, x + dx - padding)`,
    /// or `fill` where that falls outside the input.
    pub fn crop_at(&self, x: &mut [f32], shape: &[usize], dy: usize, dx: usize) -> Result<()> {
        let (_, h, w) = image_dims("RandomCrop", x, shape)?;
        let p = self.padding;
        if dy > 2 * p || dx > 2 * p {
            return Err(DataError::invalid(
                "RandomCrop",
                format!(
                    "offset ({dy}, {dx}) is outside 0..={} for padding {p}",
                    2 * p
                ),
            ));
        }
        if (dy, dx) == (p, p) || h == 0 || w == 0 {
            return Ok(());
        }
        // Shift by (sy, sx) = (dy - p, dx - p): out[y][x] = in[y + sy][x + sx].
        let (sy, sx) = (dy as isize - p as isize, dx as isize - p as isize);
        // Columns of the output whose source column lies inside the image.
        let x0 = (-sx).clamp(0, w as isize) as usize;
        let x1 = (w as isize - sx).clamp(0, w as isize) as usize;
        for plane in x.chunks_mut(h * w) {
            let src = plane.to_vec();
            for (y, row) in plane.chunks_mut(w).enumerate() {
                let from = y as isize + sy;
                if from < 0 || from >= h as isize || x0 >= x1 {
                    row.fill(self.fill);
                    continue;
                }
                let src_row = &src[from as usize * w..(from as usize + 1) * w];
                row[..x0].fill(self.fill);
                let (a, b) = ((x0 as isize + sx) as usize, (x1 as isize + sx) as usize);
                row[x0..x1].copy_from_slice(&src_row[a..b]);
                row[x1..].fill(self.fill);
            }
        }
        Ok(())
    }
}

impl Transform for RandomCrop {
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut Generator) -> Result<()> {
        // Draw dy then dx, each uniform in 0..=2p.
        let dy = rng.below(2 * self.padding + 1);
        let dx = rng.below(2 * self.padding + 1);
        self.crop_at(x, shape, dy, dx)
    }
}
// ANCHOR_END: crop
