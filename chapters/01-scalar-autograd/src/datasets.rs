//! Two-dimensional toy data sets for binary classification, generated from a
//! seed so that every run (and every test) sees the same points.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::f64::consts::PI;

/// Points in the plane with labels −1 or +1.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// The inputs, one `[x, y]` per example.
    pub points: Vec<[f64; 2]>,
    /// The class of each point: −1.0 or +1.0 (the sign convention the hinge
    /// loss wants).
    pub labels: Vec<f64>,
}

impl Dataset {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// True if there are no examples.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The smallest box `([x_min, x_max], [y_min, y_max])` holding every
    /// point, widened by `margin` on each side (used to frame plots).
    pub fn bounds(&self, margin: f64) -> ([f64; 2], [f64; 2]) {
        let mut x = [f64::INFINITY, f64::NEG_INFINITY];
        let mut y = [f64::INFINITY, f64::NEG_INFINITY];
        for p in &self.points {
            x = [x[0].min(p[0]), x[1].max(p[0])];
            y = [y[0].min(p[1]), y[1].max(p[1])];
        }
        (
            [x[0] - margin, x[1] + margin],
            [y[0] - margin, y[1] + margin],
        )
    }
}

// ANCHOR: gaussian
/// A standard normal sample by the Box–Muller transform: if u₁, u₂ are
/// uniform on (0, 1], then √(−2 ln u₁)·cos(2πu₂) is distributed N(0, 1).
pub fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = 1.0 - rng.random::<f64>(); // in (0, 1], so ln(u1) is finite
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (2.0 * PI * u2).cos()
}
// ANCHOR_END: gaussian

// ANCHOR: moons
/// Two interleaving half circles ("moons"), the data set of scikit-learn's
/// `make_moons`: the first ⌈n/2⌉ points lie on the upper half of the unit
/// circle, (cos t, sin t), with label −1; the others on the lower half
/// circle shifted right and up, (1 − cos t, 0.5 − sin t), with label +1;
/// t runs evenly over [0, π]. Each coordinate then gets Gaussian noise with
/// standard deviation `noise`. No straight line separates the two classes.
pub fn moons(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_upper = n.div_ceil(2);
    let mut data = Dataset {
        points: Vec::with_capacity(n),
        labels: Vec::with_capacity(n),
    };
    for (count, label) in [(n_upper, -1.0), (n - n_upper, 1.0)] {
        for i in 0..count {
            let t = PI * i as f64 / (count.max(2) - 1) as f64;
            let (x, y) = if label < 0.0 {
                (t.cos(), t.sin())
            } else {
                (1.0 - t.cos(), 0.5 - t.sin())
            };
            let dx = noise * standard_normal(&mut rng);
            let dy = noise * standard_normal(&mut rng);
            data.points.push([x + dx, y + dy]);
            data.labels.push(label);
        }
    }
    data
}
// ANCHOR_END: moons

// ANCHOR: spirals
/// Two interleaved spirals, a much harder problem than the moons: each arm
/// turns 1.5 times around the origin. For s running evenly over [0, 1], arm
/// c ∈ {0, 1} has the point r·(cos θ, sin θ) with radius r = 0.2 + 1.8·s and
/// angle θ = 3π·s + c·π, so the second arm is the first turned by half a
/// revolution. Labels: −1 for arm 0, +1 for arm 1. Gaussian noise of
/// standard deviation `noise` is added to each coordinate.
pub fn spirals(n: usize, noise: f64, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let n_first = n.div_ceil(2);
    let mut data = Dataset {
        points: Vec::with_capacity(n),
        labels: Vec::with_capacity(n),
    };
    for (arm, count) in [(0, n_first), (1, n - n_first)] {
        for i in 0..count {
            let s = i as f64 / (count.max(2) - 1) as f64;
            let r = 0.2 + 1.8 * s;
            let theta = 3.0 * PI * s + arm as f64 * PI;
            let dx = noise * standard_normal(&mut rng);
            let dy = noise * standard_normal(&mut rng);
            data.points
                .push([r * theta.cos() + dx, r * theta.sin() + dy]);
            data.labels.push(if arm == 0 { -1.0 } else { 1.0 });
        }
    }
    data
}
// ANCHOR_END: spirals
