//! Exercises for chapter 05. Each one is a stub below (a `todo!()`) and an
//! ignored test that checks it. Implement the stub, then run
//!
//! ```text
//! cargo test -p chapter-05 --test exercises -- --ignored
//! ```
//!
//! (or one of them: `... -- --ignored group_norm`).

mod common;

use chapter_02::{manual_seed, DType, Tensor as RawTensor};
use chapter_03::{Result, Tensor};
use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
use chapter_05::{layer_norm, Linear, Module, ModuleExt, StateDict};
use common::*;

// ---------------------------------------------------------------------------
// Exercise 1: GroupNorm (Wu & He, 2018).
//
// Split the C channels of `x: [N, C, *]` into `num_groups` groups of C/G
// channels, normalise each (sample, group) over its channels and positions
// (biased variance, like LayerNorm), then scale and shift per channel with
// `weight`/`bias` of shape [C]. One group is LayerNorm over [C, *]; C groups
// is InstanceNorm. Hint: reshape to [N, G, C/G·L] and reuse `layer_norm`.

// ANCHOR: exercise_group_norm
#[derive(Module)]
pub struct GroupNorm {
    pub num_groups: usize,
    pub weight: Tensor,
    pub bias: Tensor,
    pub eps: f64,
}

impl GroupNorm {
    pub fn new(num_groups: usize, num_channels: usize, dtype: DType) -> Result<Self> {
        let _ = (num_groups, num_channels, dtype);
        todo!("exercise: build GroupNorm with weight = ones([C]), bias = zeros([C]), eps = 1e-5")
    }
}

impl Module for GroupNorm {
    fn forward(&self, _x: &Tensor) -> Result<Tensor> {
        todo!("exercise: normalise over each group of channels, then scale and shift per channel")
    }
}
// ANCHOR_END: exercise_group_norm

#[test]
#[ignore = "exercise: implement GroupNorm"]
fn exercise_group_norm_with_one_group_is_layer_norm_over_channels_and_positions() {
    manual_seed(1);
    let gn = GroupNorm::new(1, 4, DType::F64).unwrap();
    assert_eq!(gn.named_parameters().len(), 2);
    let x = Tensor::from_raw(randn((2, 4, 3)));
    let expected = layer_norm(&x, &[4, 3], None, None, 1e-5).unwrap();
    assert_tensors_close(&gn.forward(&x).unwrap(), &expected, 1e-12);
    let gn2 = GroupNorm::new(2, 4, DType::F64).unwrap();
    check_gradients(
        |t| {
            GroupNorm {
                num_groups: 2,
                weight: t[1].clone(),
                bias: t[2].clone(),
                eps: gn2.eps,
            }
            .forward(&t[0])
        },
        &[randn((2, 4, 3)), randn(4), randn(4)],
    );
}

// ---------------------------------------------------------------------------
// Exercise 2: a residual connection, `y = x + f(x)`, the trick that makes
// networks hundreds of layers deep trainable: the identity path carries the
// gradient past `f` unchanged. As a generic module, its parameters are the
// inner module's, named `inner.*`.

// ANCHOR: exercise_residual
#[derive(Module)]
pub struct Residual<M: Module> {
    pub inner: M,
}

impl<M: Module> Module for Residual<M> {
    fn forward(&self, _x: &Tensor) -> Result<Tensor> {
        todo!("exercise: x + inner(x)")
    }
}
// ANCHOR_END: exercise_residual

#[test]
#[ignore = "exercise: implement Residual"]
fn exercise_residual_adds_the_input_to_the_inner_output() {
    let zero = Linear::from_weights(tensor(&[0.0; 4], (2, 2)), None);
    let r = Residual { inner: zero };
    let x = param(randn((3, 2)));
    let y = r.forward(&x).unwrap();
    assert_eq!(
        values(&y),
        values(&x),
        "with f = 0 the block is the identity"
    );
    y.sum_all().unwrap().backward().unwrap();
    assert!(
        values(&x.grad().unwrap()).iter().all(|&g| g == 1.0),
        "the gradient passes straight through"
    );
    let names: Vec<String> = r.named_parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["inner.weight"]);
}

// ---------------------------------------------------------------------------
// Exercise 3: focal loss (Lin et al., 2017) for logits [N, C] and class
// indices [N]: `FL = −(1 − p_t)^γ · log p_t`, where `p_t` is the softmax
// probability of the target class, averaged over the batch. Easy examples
// (p_t near 1) are down-weighted; with γ = 0 it is cross entropy.

// ANCHOR: exercise_focal_loss
pub fn focal_loss(_logits: &Tensor, _target: &Tensor, _gamma: f64) -> Result<Tensor> {
    todo!("exercise: −(1 − p_t)^γ · log p_t, averaged")
}
// ANCHOR_END: exercise_focal_loss

#[test]
#[ignore = "exercise: implement focal_loss"]
fn exercise_focal_loss_with_gamma_zero_is_cross_entropy() {
    manual_seed(3);
    let logits = Tensor::from_raw(randn((5, 4)));
    let target = ids(&[0, 3, 1, 1, 2], 5);
    let ce = cross_entropy(&logits, &target, &CrossEntropyOptions::default()).unwrap();
    assert_tensors_close(&focal_loss(&logits, &target, 0.0).unwrap(), &ce, 1e-12);
    // γ > 0 lowers the loss (every factor 1 − p_t is below 1).
    assert!(focal_loss(&logits, &target, 2.0).unwrap().item().unwrap() < ce.item().unwrap());
    check_gradients(|t| focal_loss(&t[0], &target, 2.0), &[randn((5, 4))]);
}

// ---------------------------------------------------------------------------
// Exercise 4: non-strict loading (PyTorch's `strict=False`), for fine-tuning
// a model whose head differs from the checkpoint's: copy every entry whose
// name and shape match, leave the rest of the model as it is, and return
// the names that were missing from the dict and the unexpected ones.

// ANCHOR: exercise_load_matching
pub fn load_matching(_model: &impl ModuleExt, _dict: &StateDict) -> (Vec<String>, Vec<String>) {
    todo!("exercise: visit the model, copy what matches, report the rest")
}
// ANCHOR_END: exercise_load_matching

#[test]
#[ignore = "exercise: implement load_matching"]
fn exercise_non_strict_loading_copies_what_matches() {
    let model = Linear::with_options(3, 2, true, DType::F64, &dev()).unwrap();
    let mut dict = StateDict::new();
    dict.insert(
        "weight".into(),
        RawTensor::ones((2, 3), DType::F64, &dev()).unwrap(),
    );
    dict.insert(
        "head.weight".into(),
        RawTensor::ones((5, 3), DType::F64, &dev()).unwrap(),
    );
    let bias_before = values(model.bias.as_ref().unwrap());
    let (missing, unexpected) = load_matching(&model, &dict);
    assert_eq!(missing, ["bias"]);
    assert_eq!(unexpected, ["head.weight"]);
    assert_eq!(values(&model.weight), [1.0; 6]);
    assert_eq!(values(model.bias.as_ref().unwrap()), bias_before);
}
