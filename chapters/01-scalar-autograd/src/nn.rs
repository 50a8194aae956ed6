//! A multi-layer perceptron made of scalar [`Value`]s: a `Neuron` is a
//! weighted sum plus a bias followed by a nonlinearity, a `Layer` is several
//! neurons reading the same inputs, an `Mlp` is layers in sequence.

use crate::Value;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// What a neuron applies to its weighted sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    /// max(0, x): the hidden layers.
    Relu,
    /// tanh x.
    Tanh,
    /// The identity: the output layer, whose raw score the loss reads.
    Linear,
}

// ANCHOR: init
/// How the weights of a fresh network are drawn. The scale matters: each
/// layer multiplies the size of the signal by roughly √(nin·Var(w)), and
/// over several layers that factor compounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    /// Weights and biases uniform on [−1, 1], whatever the layer width (what
    /// micrograd does).
    Unit,
    /// Weights and biases uniform on [−1/√nin, 1/√nin], PyTorch's default
    /// for `nn.Linear`. Var(w) = 1/(3·nin): with ReLU halving the signal's
    /// second moment, it shrinks about 6× per layer.
    PyTorch,
    /// He (Kaiming) initialisation: weights uniform on [−√(6/nin), √(6/nin)],
    /// so Var(w) = 2/nin, which exactly offsets ReLU zeroing half of its
    /// inputs; biases 0. He et al., "Delving Deep into Rectifiers", 2015.
    He,
}

impl Init {
    /// (bound of the weights, bound of the biases) for a neuron with `nin`
    /// inputs; both are drawn uniformly from [−bound, bound].
    pub fn bounds(self, nin: usize) -> (f64, f64) {
        let n = nin.max(1) as f64;
        match self {
            Init::Unit => (1.0, 1.0),
            Init::PyTorch => (1.0 / n.sqrt(), 1.0 / n.sqrt()),
            Init::He => ((6.0 / n).sqrt(), 0.0),
        }
    }
}
// ANCHOR_END: init

/// Sets every gradient in `params` to zero (before the next `backward`).
pub fn zero_grad(params: &[Value]) {
    for p in params {
        p.zero_grad();
    }
}

// ANCHOR: neuron
/// One neuron: out = φ(Σᵢ wᵢxᵢ + b).
#[derive(Debug, Clone)]
pub struct Neuron {
    /// One weight per input.
    pub weights: Vec<Value>,
    /// The bias.
    pub bias: Value,
    /// φ.
    pub activation: Activation,
}

impl Neuron {
    /// A neuron with `nin` inputs and random parameters drawn as `init` says.
    pub fn new(nin: usize, activation: Activation, init: Init, rng: &mut impl Rng) -> Neuron {
        let (w_bound, b_bound) = init.bounds(nin);
        let mut uniform = |bound: f64| Value::new(rng.random_range(-bound..=bound));
        let weights = (0..nin).map(|_| uniform(w_bound)).collect();
        Neuron {
            weights,
            bias: uniform(b_bound),
            activation,
        }
    }

    /// φ(w · x + b) for one input vector (`x.len()` must equal the number of
    /// weights).
    pub fn forward(&self, x: &[Value]) -> Value {
        assert_eq!(
            x.len(),
            self.weights.len(),
            "Neuron::forward: {} inputs for a neuron with {} weights",
            x.len(),
            self.weights.len()
        );
        let products: Vec<Value> = self.weights.iter().zip(x).map(|(w, xi)| w * xi).collect();
        let sum: Value = products.iter().chain([&self.bias]).sum();
        match self.activation {
            Activation::Relu => sum.relu(),
            Activation::Tanh => sum.tanh(),
            Activation::Linear => sum,
        }
    }

    /// The weights, then the bias.
    pub fn parameters(&self) -> Vec<Value> {
        self.weights.iter().chain([&self.bias]).cloned().collect()
    }

    /// Zeroes the gradient of every parameter.
    pub fn zero_grad(&self) {
        zero_grad(&self.parameters());
    }
}
// ANCHOR_END: neuron

// ANCHOR: layer
/// `nout` neurons that all read the same `nin` inputs.
#[derive(Debug, Clone)]
pub struct Layer {
    /// The neurons, one per output.
    pub neurons: Vec<Neuron>,
}

impl Layer {
    /// A layer of `nout` fresh neurons with `nin` inputs each.
    pub fn new(
        nin: usize,
        nout: usize,
        activation: Activation,
        init: Init,
        rng: &mut impl Rng,
    ) -> Layer {
        Layer {
            neurons: (0..nout)
                .map(|_| Neuron::new(nin, activation, init, rng))
                .collect(),
        }
    }

    /// One output per neuron.
    pub fn forward(&self, x: &[Value]) -> Vec<Value> {
        self.neurons.iter().map(|n| n.forward(x)).collect()
    }

    /// All neurons' parameters, in order.
    pub fn parameters(&self) -> Vec<Value> {
        self.neurons.iter().flat_map(Neuron::parameters).collect()
    }

    /// Zeroes the gradient of every parameter.
    pub fn zero_grad(&self) {
        zero_grad(&self.parameters());
    }
}
// ANCHOR_END: layer

// ANCHOR: mlp
/// A multi-layer perceptron: ReLU layers, then a linear output layer.
/// `Mlp::new(2, &[16, 16, 1], rng)` maps a point of the plane to one score
/// through two hidden layers of 16 neurons.
#[derive(Debug, Clone)]
pub struct Mlp {
    /// The layers, input side first.
    pub layers: Vec<Layer>,
}

impl Mlp {
    /// `nin` inputs, then one layer per entry of `sizes`, He-initialised.
    pub fn new(nin: usize, sizes: &[usize], rng: &mut impl Rng) -> Mlp {
        Mlp::with_init(nin, sizes, Init::He, rng)
    }

    /// Like [`Mlp::new`] with another initialisation.
    pub fn with_init(nin: usize, sizes: &[usize], init: Init, rng: &mut impl Rng) -> Mlp {
        let mut layers = Vec::with_capacity(sizes.len());
        let mut fan_in = nin;
        for (i, &nout) in sizes.iter().enumerate() {
            let last = i + 1 == sizes.len();
            let activation = if last {
                Activation::Linear
            } else {
                Activation::Relu
            };
            layers.push(Layer::new(fan_in, nout, activation, init, rng));
            fan_in = nout;
        }
        Mlp { layers }
    }

    /// Like [`Mlp::with_init`], drawing the parameters from a ChaCha8
    /// generator seeded with `seed`: the same seed gives the same network on
    /// every machine.
    pub fn seeded(nin: usize, sizes: &[usize], init: Init, seed: u64) -> Mlp {
        Mlp::with_init(nin, sizes, init, &mut ChaCha8Rng::seed_from_u64(seed))
    }

    /// Runs the layers in sequence.
    pub fn forward(&self, x: &[Value]) -> Vec<Value> {
        let mut activations = x.to_vec();
        for layer in &self.layers {
            activations = layer.forward(&activations);
        }
        activations
    }

    /// The first output for plain numbers (what the classifier calls the
    /// score: its sign is the predicted class). Builds a throw-away graph.
    pub fn score(&self, x: &[f64]) -> f64 {
        let inputs: Vec<Value> = x.iter().map(|&xi| Value::new(xi)).collect();
        self.forward(&inputs)[0].data()
    }

    /// Every weight and bias, layer by layer.
    pub fn parameters(&self) -> Vec<Value> {
        self.layers.iter().flat_map(Layer::parameters).collect()
    }

    /// Zeroes the gradient of every parameter.
    pub fn zero_grad(&self) {
        zero_grad(&self.parameters());
    }
}
// ANCHOR_END: mlp
