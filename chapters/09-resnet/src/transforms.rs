//! `RandomAffine`: data augmentation by small random shifts and rotations,
//! a chapter 06 [`Transform`].
//!
//! A digit moved two pixels to the left or tilted by ten degrees is still
//! the same digit. Showing the network such copies teaches it that the
//! class does not depend on the exact position and angle, which a
//! convolution (equivariant to shifts, not to rotations) only half knows.

use chapter_02::Generator;
use chapter_06::data::{DataError, Result, Transform};

// ANCHOR: random_affine
/// Shifts an image by up to `±max_shift` pixels in each direction and
/// rotates it by up to `±max_degrees` about its centre, each drawn
/// uniformly per example. Pixels are read by bilinear interpolation;
/// where the source falls outside the image they are zero.
///
/// Output pixel `p = (x, y)` reads the input at
///
/// `R(−θ)·(p − c − t) + c`
///
/// with `c = ((W − 1)/2, (H − 1)/2)` the centre, `t = (dx, dy)` the shift
/// and `R` the rotation that turns the picture counter-clockwise on the
/// screen for `θ > 0` (as torchvision's `RandomAffine`; `y` points down).
/// Every channel of a `[C, H, W]` example moves together.
#[derive(Debug, Clone, PartialEq)]
pub struct RandomAffine {
    max_shift: f64,
    max_degrees: f64,
    integer_shift: bool,
}

impl RandomAffine {
    /// Both bounds must be finite and non-negative, `max_degrees` at most
    /// 180. Shifts are real numbers (sub-pixel, interpolated).
    pub fn new(max_shift: f64, max_degrees: f64) -> Result<Self> {
        if !(max_shift.is_finite() && max_shift >= 0.0) {
            return Err(DataError::invalid(
                "RandomAffine",
                format!("max_shift = {max_shift} is not a finite number of pixels ≥ 0"),
            ));
        }
        if !(max_degrees.is_finite() && (0.0..=180.0).contains(&max_degrees)) {
            return Err(DataError::invalid(
                "RandomAffine",
                format!("max_degrees = {max_degrees} is not an angle in [0, 180]"),
            ));
        }
        Ok(RandomAffine {
            max_shift,
            max_degrees,
            integer_shift: false,
        })
    }

    /// Rounds each drawn shift to whole pixels, so that without rotation the
    /// image moves exactly (no blur from interpolation).
    pub fn integer_shifts(mut self) -> Self {
        self.integer_shift = true;
        self
    }

    /// Applies the transform with a given shift `(dx, dy)` (pixels; `dx > 0`
    /// moves the picture right, `dy > 0` down) and angle (degrees,
    /// counter-clockwise). [`Transform::apply`] draws these and calls this.
    pub fn apply_with(
        &self,
        x: &mut [f32],
        shape: &[usize],
        dx: f64,
        dy: f64,
        degrees: f64,
    ) -> Result<()> {
        let (_, h, w) = image_dims(x, shape)?;
        if !(dx.is_finite() && dy.is_finite() && degrees.is_finite()) {
            return Err(DataError::invalid(
                "RandomAffine",
                format!("shift ({dx}, {dy}) and angle {degrees} must be finite"),
            ));
        }
        if (dx, dy, degrees) == (0.0, 0.0, 0.0) || h == 0 || w == 0 {
            return Ok(());
        }
        let (sin, cos) = degrees.to_radians().sin_cos();
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        for plane in x.chunks_mut(h * w) {
            let src = plane.to_vec();
            for (oy, row) in plane.chunks_mut(w).enumerate() {
                for (ox, out) in row.iter_mut().enumerate() {
                    // Undo the shift, then the rotation, about the centre.
                    let (u, v) = (ox as f64 - cx - dx, oy as f64 - cy - dy);
                    let sx = u * cos - v * sin + cx;
                    let sy = u * sin + v * cos + cy;
                    *out = bilinear(&src, h, w, sx, sy);
                }
            }
        }
        Ok(())
    }
}

/// The image at real coordinates `(sx, sy)`: the four pixels around it,
/// weighted by closeness, the ones outside the image counting as zero.
fn bilinear(src: &[f32], h: usize, w: usize, sx: f64, sy: f64) -> f32 {
    let (x0, y0) = (sx.floor(), sy.floor());
    let (fx, fy) = (sx - x0, sy - y0);
    let pixel = |x: f64, y: f64| -> f64 {
        if x < 0.0 || y < 0.0 || x >= w as f64 || y >= h as f64 {
            0.0
        } else {
            src[y as usize * w + x as usize] as f64
        }
    };
    let top = pixel(x0, y0) * (1.0 - fx) + pixel(x0 + 1.0, y0) * fx;
    let bottom = pixel(x0, y0 + 1.0) * (1.0 - fx) + pixel(x0 + 1.0, y0 + 1.0) * fx;
    (top * (1.0 - fy) + bottom * fy) as f32
}

impl Transform for RandomAffine {
    fn apply(&self, x: &mut [f32], shape: &[usize], rng: &mut Generator) -> Result<()> {
        // Always three draws, so the stream does not depend on the options.
        let shift = |rng: &mut Generator| {
            let s = rng.uniform(-self.max_shift, self.max_shift);
            if self.integer_shift {
                s.round()
            } else {
                s
            }
        };
        let dx = shift(rng);
        let dy = shift(rng);
        let degrees = rng.uniform(-self.max_degrees, self.max_degrees);
        self.apply_with(x, shape, dx, dy, degrees)
    }
}
// ANCHOR_END: random_affine

/// `(channels, height, width)` of an example of shape `[H, W]` or
/// `[C, H, W]` holding `x.len()` values.
fn image_dims(x: &[f32], shape: &[usize]) -> Result<(usize, usize, usize)> {
    let (c, h, w) = match *shape {
        [h, w] => (1, h, w),
        [c, h, w] => (c, h, w),
        _ => {
            return Err(DataError::invalid(
                "RandomAffine",
                format!(
                    "needs an image of shape [H, W] or [C, H, W], got {shape:?}; view the \
                     dataset as an image first, e.g. with_feature_shape(&[1, 28, 28])"
                ),
            ))
        }
    };
    if c * h * w != x.len() {
        return Err(DataError::invalid(
            "RandomAffine",
            format!(
                "{} values do not have shape {shape:?} ({} values)",
                x.len(),
                c * h * w
            ),
        ));
    }
    Ok((c, h, w))
}
