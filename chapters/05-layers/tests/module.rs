//! Modules as trees: `cargo test -p chapter-05 derive`, `train_eval`,
//! `module`.

mod common;

use chapter_02::{manual_seed, DType, Tensor as RawTensor};
use chapter_03::{Result, Tensor};
use chapter_05::{
    BatchNorm1d, Buffer, Dropout, LayerNorm, Linear, Module, ModuleExt, ModuleList, ParameterList,
    Relu, Sequential, Slot, StateDictExt, TrainingFlag, Visit,
};
use common::*;
use std::sync::Arc;

fn linear(i: usize, o: usize) -> Linear {
    Linear::with_options(i, o, true, DType::F64, &dev()).unwrap()
}

#[derive(Module)]
struct Block {
    fc: Linear,
    norm: LayerNorm,
    drop: Dropout,
}

#[derive(Module)]
struct Model {
    layers: Vec<Block>,
    head: Option<Linear>,
    extra: Option<Linear>,
    #[module(skip)]
    cache: Tensor,
    #[module(skip)]
    name: String,
}

fn model() -> Model {
    let block = |d| Block {
        fc: linear(d, d),
        norm: LayerNorm::with_options(d, 1e-5, true, DType::F64, &dev()).unwrap(),
        drop: Dropout::new(0.1).unwrap(),
    };
    Model {
        layers: vec![block(4), block(4)],
        head: Some(linear(4, 2)),
        extra: None,
        cache: Tensor::param(RawTensor::zeros(3, DType::F64, &dev()).unwrap()).unwrap(),
        name: "demo".into(),
    }
}

impl Module for Model {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut h = x.clone();
        for b in &self.layers {
            h = b.drop.forward(&b.norm.forward(&b.fc.forward(&h)?)?)?;
        }
        match &self.head {
            Some(head) => head.forward(&h),
            None => Ok(h),
        }
    }
}

fn names(m: &impl Visit) -> Vec<String> {
    m.named_parameters().into_iter().map(|(n, _)| n).collect()
}

#[test]
fn derive_names_nested_fields_and_vec_items_with_dots() {
    let m = model();
    assert_eq!(
        names(&m),
        [
            "layers.0.fc.weight",
            "layers.0.fc.bias",
            "layers.0.norm.weight",
            "layers.0.norm.bias",
            "layers.1.fc.weight",
            "layers.1.fc.bias",
            "layers.1.norm.weight",
            "layers.1.norm.bias",
            "head.weight",
            "head.bias",
        ]
    );
    assert_eq!(m.num_parameters(), 2 * (20 + 8) + 10);
    assert_eq!(m.name, "demo");
}

#[test]
fn derive_skips_none_options_and_module_skip_fields() {
    let m = model();
    let all = names(&m);
    assert!(!all
        .iter()
        .any(|n| n.starts_with("extra") || n.starts_with("cache") || n.starts_with("name")));
    assert!(
        m.cache.requires_grad(),
        "a skipped tensor is still a tensor, just not registered"
    );
    let with_extra = Model {
        extra: Some(linear(2, 2)),
        ..model()
    };
    assert!(names(&with_extra).contains(&"extra.weight".to_string()));
}

#[derive(Module)]
struct Pair(Linear, #[module(skip)] Linear, Linear);

#[test]
fn derive_names_tuple_struct_fields_by_position() {
    let p = Pair(linear(2, 3), linear(3, 3), linear(3, 1));
    assert_eq!(names(&p), ["0.weight", "0.bias", "2.weight", "2.bias"]);
    assert_eq!(
        p.1.weight.dims(),
        [3, 3],
        "the skipped field is still there"
    );
}

#[derive(Module)]
struct Wrapper<M: Module> {
    inner: M,
    scale: Tensor,
}

#[derive(Module)]
struct Stateless;

#[test]
fn derive_works_for_generic_and_unit_structs() {
    let w = Wrapper {
        inner: linear(2, 2),
        scale: param(RawTensor::ones(1, DType::F64, &dev()).unwrap()),
    };
    assert_eq!(names(&w), ["inner.weight", "inner.bias", "scale"]);
    assert!(names(&Stateless).is_empty());
}

#[derive(Module)]
struct Stats {
    weight: Tensor,
    running: Buffer,
    flag: TrainingFlag,
    shared: Arc<Linear>,
    boxed: Box<dyn Module + Send + Sync>,
}

#[test]
fn derive_sorts_what_it_finds_into_parameters_buffers_and_flags() {
    let s = Stats {
        weight: param(RawTensor::ones(2, DType::F64, &dev()).unwrap()),
        running: Buffer::new(RawTensor::zeros(2, DType::F64, &dev()).unwrap()),
        flag: TrainingFlag::new(),
        shared: Arc::new(linear(1, 1)),
        boxed: Box::new(linear(1, 2)),
    };
    let mut seen = Vec::new();
    s.visit("root", &mut |name, slot| {
        let kind = match slot {
            Slot::Param(_) => "param",
            Slot::Buffer(_) => "buffer",
            Slot::Training(_) => "flag",
        };
        seen.push(format!("{kind} {name}"));
    });
    assert_eq!(
        seen,
        [
            "param root.weight",
            "buffer root.running",
            "flag root.flag",
            "param root.shared.weight",
            "param root.shared.bias",
            "param root.boxed.weight",
            "param root.boxed.bias",
        ]
    );
    let buffers: Vec<String> = s.named_buffers().into_iter().map(|(n, _)| n).collect();
    assert_eq!(buffers, ["running"]);
    let keys: Vec<String> = s.state_dict().into_keys().collect();
    assert_eq!(
        keys,
        [
            "boxed.bias",
            "boxed.weight",
            "running",
            "shared.bias",
            "shared.weight",
            "weight"
        ]
    );
}

#[derive(Module)]
struct Net {
    features: Sequential,
    blocks: ModuleList<Block>,
    bn: BatchNorm1d,
}

fn net() -> Net {
    Net {
        features: Sequential::new()
            .add_layer(linear(3, 3))
            .add_layer(Dropout::new(0.5).unwrap())
            .add_layer(Relu),
        blocks: ModuleList::new(vec![model().layers.remove(0)]),
        bn: BatchNorm1d::new(3).unwrap(),
    }
}

fn flags(m: &impl Visit) -> Vec<(String, bool)> {
    let mut out = Vec::new();
    m.visit("", &mut |name, slot| {
        if let Slot::Training(f) = slot {
            out.push((name.to_string(), f.get()));
        }
    });
    out
}

#[test]
fn train_eval_reaches_every_nested_dropout_and_batch_norm() {
    let n = net();
    let expected_names = [
        "features.1.training",
        "blocks.0.drop.training",
        "bn.training",
    ];
    let all = flags(&n);
    assert_eq!(
        all.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        expected_names
    );
    assert!(
        all.iter().all(|(_, on)| *on),
        "modules start in training mode"
    );
    n.eval();
    assert!(flags(&n).iter().all(|(_, on)| !on));
    assert!(!n.bn.training.get() && !n.blocks[0].drop.training.get());
    n.train();
    assert!(flags(&n).iter().all(|(_, on)| *on));
    n.set_training(false);
    assert!(flags(&n).iter().all(|(_, on)| !on));
}

#[test]
fn train_eval_changes_what_dropout_and_batch_norm_compute() {
    manual_seed(1);
    let m = model();
    let x = Tensor::from_raw(randn((8, 4)));
    m.eval();
    let a = values(&m.forward(&x).unwrap());
    let b = values(&m.forward(&x).unwrap());
    assert_eq!(a, b, "evaluation is deterministic");
    m.train();
    let c = values(&m.forward(&x).unwrap());
    assert_ne!(a, c, "training mode drops units");
}

#[test]
fn module_zero_grad_forgets_every_gradient() {
    manual_seed(2);
    let m = model();
    let x = Tensor::from_raw(randn((3, 4)));
    m.forward(&x)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert!(m.parameters().iter().all(|p| p.grad_opt().is_some()));
    m.zero_grad();
    assert!(m.parameters().iter().all(|p| p.grad_opt().is_none()));
}

#[test]
fn module_list_and_parameter_list_name_items_by_position() {
    let list = ModuleList::new(vec![linear(1, 1), linear(1, 1)]);
    assert_eq!(names(&list), ["0.weight", "0.bias", "1.weight", "1.bias"]);
    assert_eq!(list.len(), 2);
    let params = ParameterList::new(vec![
        param(RawTensor::ones(1, DType::F64, &dev()).unwrap());
        3
    ]);
    assert_eq!(names(&params), ["0", "1", "2"]);
}
