//! Prints what a small model holds, as its visitor sees it, then takes one
//! gradient step on a batch of random data and round-trips the model
//! through a safetensors file.
//!
//! ```text
//! cargo run -p chapter-05 --example module_tree
//! ```

use chapter_02::{manual_seed, DType, Device, Tensor as RawTensor};
use chapter_03::{no_grad, Result, Tensor};
use chapter_05::loss::{cross_entropy, CrossEntropyOptions};
use chapter_05::{
    BatchNorm1d, Dropout, Embedding, LayerNorm, Linear, Module, ModuleExt, Relu, Sequential, Slot,
    StateDictExt, Visit,
};

// ANCHOR: model
/// A bag-of-tokens classifier: embed each token, average, then an MLP.
#[derive(Module)]
struct Classifier {
    embed: Embedding,
    norm: LayerNorm,
    mlp: Sequential,
    head: Linear,
}

impl Module for Classifier {
    /// `ids: [batch, tokens]` → logits `[batch, classes]`.
    fn forward(&self, ids: &Tensor) -> Result<Tensor> {
        let h = self.embed.forward(ids)?.mean([1], false)?;
        self.head
            .forward(&self.mlp.forward(&self.norm.forward(&h)?)?)
    }
}
// ANCHOR_END: model

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    manual_seed(0);
    let model = Classifier {
        embed: Embedding::new(100, 16)?,
        norm: LayerNorm::new(16)?,
        mlp: Sequential::new()
            .add_layer(Linear::new(16, 32, true)?)
            .add_layer(BatchNorm1d::new(32)?)
            .add_layer(Relu)
            .add_layer(Dropout::new(0.1)?),
        head: Linear::new(32, 4, true)?,
    };

    model.visit("", &mut |name, slot| {
        let (kind, shape) = match slot {
            Slot::Param(t) => ("param ", t.shape().to_string()),
            Slot::Buffer(b) => ("buffer", b.get().shape().to_string()),
            Slot::Training(f) => ("flag  ", format!("training = {}", f.get())),
        };
        println!("{kind}  {name:<26} {shape}");
    });
    println!("{} trainable parameters", model.num_parameters());

    // One step of plain gradient descent.
    let ids = Tensor::from_raw(
        RawTensor::rand(0.0, 100.0, (8, 5), DType::F32, &Device::cpu())?.to_dtype(DType::I64)?,
    );
    let labels = Tensor::from_vec(vec![0i64, 1, 2, 3, 0, 1, 2, 3], 8, &Device::cpu())?;
    let loss = cross_entropy(
        &model.forward(&ids)?,
        &labels,
        &CrossEntropyOptions::default(),
    )?;
    loss.backward()?;
    {
        let _guard = no_grad();
        for p in model.parameters() {
            p.set_data(p.data().sub(&p.grad()?.data().mul_scalar(0.1)?)?)?;
        }
    }
    let after = cross_entropy(
        &model.forward(&ids)?,
        &labels,
        &CrossEntropyOptions::default(),
    )?;
    println!(
        "loss {:.4} -> {:.4} after one step",
        loss.item()?,
        after.item()?
    );

    // Save, load into a fresh model, compare in evaluation mode.
    let path = std::env::temp_dir().join("chapter05-module-tree.safetensors");
    model.save(&path)?;
    let restored = Classifier {
        embed: Embedding::new(100, 16)?,
        norm: LayerNorm::new(16)?,
        mlp: Sequential::new()
            .add_layer(Linear::new(16, 32, true)?)
            .add_layer(BatchNorm1d::new(32)?)
            .add_layer(Relu)
            .add_layer(Dropout::new(0.1)?),
        head: Linear::new(32, 4, true)?,
    };
    restored.load(&path)?;
    model.eval();
    restored.eval();
    let same = model.forward(&ids)?.to_vec_f64()? == restored.forward(&ids)?.to_vec_f64()?;
    println!(
        "saved {} tensors to {}; reloaded model agrees: {same}",
        model.state_dict().len(),
        path.display()
    );
    std::fs::remove_file(&path)?;
    Ok(())
}
