//! Training a classifier: a loss, gradient descent, and the loop around them.

use crate::{Mlp, Value};

/// How a score `s` for a point with label `y ∈ {−1, +1}` is turned into a loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// max(0, 1 − y·s), the support vector machine's loss: zero once the
    /// point is on the right side with margin 1, so well-classified points
    /// stop pulling on the weights.
    Hinge,
    /// ln(1 + e^(−y·s)), logistic regression's loss (the cross-entropy of
    /// σ(s) against the label): never exactly zero, always a little pull.
    Logistic,
}

impl Loss {
    /// The loss of one example. Written with the chapter's operations, so its
    /// gradient comes for free. (The logistic form overflows for y·s below
    /// about −700; the scores here stay far from that.)
    pub fn of(self, score: &Value, label: f64) -> Value {
        let margin = score * label;
        match self {
            Loss::Hinge => (1.0 - margin).relu(),
            Loss::Logistic => (1.0 + (-margin).exp()).ln(),
        }
    }
}

// ANCHOR: optimizer
/// Something that moves parameters against their gradients. Implement it to
/// try another update rule (see the momentum exercise).
pub trait Optimizer {
    /// Updates every parameter from its `grad()`; `step` counts from 0.
    fn step(&mut self, params: &[Value], step: usize);
}

/// Stochastic gradient descent with a learning rate that falls linearly from
/// `lr_start` at step 0 to `lr_end` at step `total_steps`:
/// p ← p − lr(t)·∂L/∂p.
#[derive(Debug, Clone, PartialEq)]
pub struct Sgd {
    /// Learning rate at step 0.
    pub lr_start: f64,
    /// Learning rate at the end of training.
    pub lr_end: f64,
    /// Number of steps the schedule spans.
    pub total_steps: usize,
}

impl Sgd {
    /// lr(t) = lr_start + (lr_end − lr_start)·t / total_steps.
    pub fn learning_rate(&self, step: usize) -> f64 {
        let progress = step as f64 / self.total_steps.max(1) as f64;
        self.lr_start + (self.lr_end - self.lr_start) * progress
    }
}

impl Optimizer for Sgd {
    fn step(&mut self, params: &[Value], step: usize) {
        let lr = self.learning_rate(step);
        for p in params {
            p.set_data(p.data() - lr * p.grad());
        }
    }
}
// ANCHOR_END: optimizer

/// What one step saw, measured *before* its update (so step 0 reports the
/// untrained network).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepReport {
    /// Step number, from 0.
    pub step: usize,
    /// `data_loss + reg_loss`, the number being minimised.
    pub loss: f64,
    /// Mean per-example loss.
    pub data_loss: f64,
    /// The L2 penalty α·Σp².
    pub reg_loss: f64,
    /// Fraction of points whose score has the sign of their label.
    pub accuracy: f64,
}

// ANCHOR: objective
/// The training objective on the whole data set and the accuracy:
/// L = (1/n)·Σᵢ loss(sᵢ, yᵢ) + α·Σₚ p², with sᵢ the model's score for point i.
/// The L2 term ("weight decay") prefers small weights, hence smoother
/// decision boundaries. Returns the loss as a `Value` to call `backward` on.
pub fn objective(
    model: &Mlp,
    data: &crate::Dataset,
    loss: Loss,
    alpha: f64,
) -> (Value, StepReport) {
    let mut per_example = Vec::with_capacity(data.len());
    let mut correct = 0;
    for (point, &label) in data.points.iter().zip(&data.labels) {
        let inputs = [Value::new(point[0]), Value::new(point[1])];
        let score = model.forward(&inputs).swap_remove(0);
        if (score.data() > 0.0) == (label > 0.0) {
            correct += 1;
        }
        per_example.push(loss.of(&score, label));
    }
    let data_loss = per_example.iter().sum::<Value>() / data.len() as f64;
    let params = model.parameters();
    let squares: Vec<Value> = params.iter().map(|p| p * p).collect();
    let reg_loss = alpha * squares.iter().sum::<Value>();
    let total = &data_loss + &reg_loss;
    let report = StepReport {
        step: 0,
        loss: total.data(),
        data_loss: data_loss.data(),
        reg_loss: reg_loss.data(),
        accuracy: correct as f64 / data.len() as f64,
    };
    (total, report)
}
// ANCHOR_END: objective

/// The settings of [`train`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// Number of gradient steps (each on the full data set).
    pub steps: usize,
    /// The per-example loss.
    pub loss: Loss,
    /// α, the weight of the L2 penalty.
    pub alpha: f64,
}

impl Default for TrainConfig {
    /// 100 steps of the hinge loss with α = 1e-4.
    fn default() -> TrainConfig {
        TrainConfig {
            steps: 100,
            loss: Loss::Hinge,
            alpha: 1e-4,
        }
    }
}

// ANCHOR: train
/// Full-batch training: each step builds the objective on all points,
/// zeroes the gradients, back-propagates, and lets the optimizer update the
/// parameters. `on_step` sees each step's report (for printing); all reports
/// are returned as well.
pub fn train(
    model: &Mlp,
    data: &crate::Dataset,
    config: &TrainConfig,
    optimizer: &mut impl Optimizer,
    mut on_step: impl FnMut(&StepReport),
) -> Vec<StepReport> {
    let params = model.parameters();
    let mut history = Vec::with_capacity(config.steps);
    for step in 0..config.steps {
        let (loss, mut report) = objective(model, data, config.loss, config.alpha);
        report.step = step;
        model.zero_grad();
        loss.backward();
        optimizer.step(&params, step);
        on_step(&report);
        history.push(report);
    }
    history
}
// ANCHOR_END: train
