//! The GPT: shapes, names, tied embeddings, initialisation, state dicts,
//! training.

use chapter_02::Tensor as RawTensor;
use chapter_03::{gradcheck, DType, Device, GradcheckOptions, Tensor};
use chapter_04::prelude::*;
use chapter_05::{GeluApproximation, Module, ModuleExt, StateDictExt};
use chapter_06::{AdamConfig, AdamW, Optimizer};
use chapter_08::gpt::{language_model_loss, next_token_loss};
use chapter_08::{Gpt, GptConfig};
use proptest::prelude::*;

fn config(vocab: usize, context: usize, layers: usize, heads: usize, width: usize) -> GptConfig {
    GptConfig {
        vocab_size: vocab,
        context_length: context,
        n_layer: layers,
        n_head: heads,
        n_embd: width,
        n_inner: None,
        dropout: 0.0,
        bias: true,
        layer_norm_eps: 1e-5,
        activation: GeluApproximation::Tanh,
    }
}

fn ids(rows: &[Vec<i64>]) -> Tensor {
    let t = rows[0].len();
    Tensor::from_vec(rows.concat(), vec![rows.len(), t], &Device::cpu()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn gpt_logits_have_shape_batch_time_vocab(
        b in 1usize..3, t in 1usize..7, layers in 0usize..3, heads in 1usize..3, v in 2usize..20, seed in 0u64..100,
    ) {
        let model = Gpt::new(&config(v, 8, layers, heads, 4 * heads), DType::F32, &Device::cpu(), seed).unwrap();
        let tokens: Vec<i64> = (0..b * t).map(|i| ((i as u64 * 7 + seed) % v as u64) as i64).collect();
        let x = Tensor::from_vec(tokens, vec![b, t], &Device::cpu()).unwrap();
        let out = model.forward_with(&x, None, true).unwrap();
        prop_assert_eq!(out.logits.dims(), vec![b, t, v]);
        prop_assert_eq!(out.hidden_states.len(), layers + 1);
        for h in &out.hidden_states {
            prop_assert_eq!(h.dims(), vec![b, t, 4 * heads]);
        }
    }
}

#[test]
fn gpt_parameters_have_gpt2_names() {
    let model = Gpt::new(&config(10, 8, 2, 2, 8), DType::F32, &Device::cpu(), 0).unwrap();
    let names: Vec<String> = model
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names.len(), 2 + 12 * 2 + 2);
    for expected in [
        "transformer.wte.weight",
        "transformer.wpe.weight",
        "transformer.h.0.ln_1.weight",
        "transformer.h.0.attn.c_attn.weight",
        "transformer.h.1.mlp.c_proj.bias",
        "transformer.ln_f.bias",
    ] {
        assert!(
            names.iter().any(|n| n == expected),
            "{expected} missing from {names:?}"
        );
    }
    assert!(
        !names.iter().any(|n| n.contains("lm_head")),
        "the head is the embedding, not a copy"
    );
    let c = model
        .named_parameters()
        .into_iter()
        .find(|(n, _)| n == "transformer.h.0.attn.c_attn.weight")
        .unwrap()
        .1;
    assert_eq!(
        c.dims(),
        [8, 24],
        "projections are stored [in, out] like GPT-2's Conv1D"
    );
}

#[test]
fn gpt_without_bias_has_no_bias_parameters() {
    let model = Gpt::new(
        &GptConfig {
            bias: false,
            ..config(10, 8, 1, 2, 8)
        },
        DType::F32,
        &Device::cpu(),
        0,
    )
    .unwrap();
    assert!(model
        .named_parameters()
        .iter()
        .all(|(n, _)| !n.ends_with(".bias")));
    assert_eq!(
        model.num_parameters(),
        10 * 8 + 8 * 8 + (2 * 8 + 8 * 24 + 8 * 8 + 2 * 8 * 32) + 8
    );
}

#[test]
fn tied_embedding_gradient_adds_both_uses() {
    // The logits read every row of wte (the head); only the input tokens'
    // rows are read by the embedding. gradcheck on wte checks the sum.
    let cfg = config(6, 4, 1, 2, 4);
    let x = ids(&[vec![1, 3, 3]]);
    let wte = Gpt::new(&cfg, DType::F64, &Device::cpu(), 1)
        .unwrap()
        .transformer
        .wte
        .weight
        .data()
        .affine(10.0, 0.0)
        .unwrap();
    gradcheck(
        |t| {
            let mut model = Gpt::new(&cfg, DType::F64, &Device::cpu(), 1)?;
            model.transformer.wte.weight = t[0].clone();
            model.forward(&x)
        },
        &[wte],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn gpt_gradients_pass_gradcheck() {
    let cfg = config(5, 4, 1, 2, 4);
    let x = ids(&[vec![0, 4, 2], vec![1, 1, 3]]);
    let targets = ids(&[vec![4, 2, 0], vec![1, 3, 3]]);
    let base = Gpt::new(&cfg, DType::F64, &Device::cpu(), 2).unwrap();
    let names: Vec<String> = base
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names.len(), 16, "every parameter below is swapped in");
    let inputs: Vec<RawTensor> = base
        .parameters()
        .iter()
        .map(|p| p.data().affine(10.0, 0.05).unwrap())
        .collect();
    gradcheck(
        |t| {
            // The same model, its parameters swapped for gradcheck's inputs.
            let mut model = Gpt::new(&cfg, DType::F64, &Device::cpu(), 2)?;
            let find = |n: &str| t[names.iter().position(|x| x == n).unwrap()].clone();
            model.transformer.wte.weight = find("transformer.wte.weight");
            model.transformer.wpe.weight = find("transformer.wpe.weight");
            let b = &mut model.transformer.h[0];
            b.ln_1.weight = Some(find("transformer.h.0.ln_1.weight"));
            b.ln_1.bias = Some(find("transformer.h.0.ln_1.bias"));
            b.attn.c_attn.weight = find("transformer.h.0.attn.c_attn.weight");
            b.attn.c_attn.bias = Some(find("transformer.h.0.attn.c_attn.bias"));
            b.attn.c_proj.weight = find("transformer.h.0.attn.c_proj.weight");
            b.attn.c_proj.bias = Some(find("transformer.h.0.attn.c_proj.bias"));
            b.ln_2.weight = Some(find("transformer.h.0.ln_2.weight"));
            b.ln_2.bias = Some(find("transformer.h.0.ln_2.bias"));
            b.mlp.c_fc.weight = find("transformer.h.0.mlp.c_fc.weight");
            b.mlp.c_fc.bias = Some(find("transformer.h.0.mlp.c_fc.bias"));
            b.mlp.c_proj.weight = find("transformer.h.0.mlp.c_proj.weight");
            b.mlp.c_proj.bias = Some(find("transformer.h.0.mlp.c_proj.bias"));
            model.transformer.ln_f.weight = Some(find("transformer.ln_f.weight"));
            model.transformer.ln_f.bias = Some(find("transformer.ln_f.bias"));
            Ok(model.forward_loss(&x, &targets)?.1)
        },
        &inputs,
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn gpt_init_follows_nanogpt() {
    let cfg = config(512, 64, 4, 4, 64);
    let model = Gpt::new(&cfg, DType::F64, &Device::cpu(), 3).unwrap();
    let std = |t: &Tensor| {
        let v = t.to_vec_f64().unwrap();
        let mean = v.iter().sum::<f64>() / v.len() as f64;
        (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64).sqrt()
    };
    for (name, p) in model.named_parameters() {
        let s = std(&p);
        if name.ends_with("c_proj.weight") {
            let expected = 0.02 / (8f64).sqrt();
            assert!(
                (s / expected - 1.0).abs() < 0.1,
                "{name}: std {s}, expected {expected}"
            );
        } else if name.ends_with(".weight") && !name.contains("ln_") {
            assert!((s / 0.02 - 1.0).abs() < 0.1, "{name}: std {s}");
        } else if name.contains("ln_") && name.ends_with(".weight") {
            assert!(p.to_vec_f64().unwrap().iter().all(|&x| x == 1.0), "{name}");
        } else {
            assert!(p.to_vec_f64().unwrap().iter().all(|&x| x == 0.0), "{name}");
        }
    }
    let same = Gpt::new(&cfg, DType::F64, &Device::cpu(), 3).unwrap();
    let other = Gpt::new(&cfg, DType::F64, &Device::cpu(), 4).unwrap();
    let w = |m: &Gpt| m.transformer.h[3].mlp.c_fc.weight.to_vec_f64().unwrap();
    assert_eq!(w(&model), w(&same), "the seed decides the model");
    assert_ne!(w(&model), w(&other));
}

#[test]
fn gpt_state_dict_round_trips_through_a_file() {
    let cfg = config(16, 8, 2, 2, 8);
    let model = Gpt::new(&cfg, DType::F32, &Device::cpu(), 5).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gpt.safetensors");
    model.save(&path).unwrap();
    let loaded = Gpt::new(&cfg, DType::F32, &Device::cpu(), 6).unwrap();
    loaded.load(&path).unwrap();
    let x = ids(&[vec![1, 2, 3, 15]]);
    assert_eq!(
        model.forward(&x).unwrap().to_vec_f64().unwrap(),
        loaded.forward(&x).unwrap().to_vec_f64().unwrap()
    );
}

#[test]
fn language_model_loss_shifts_by_one() {
    let model = Gpt::new(&config(8, 8, 1, 1, 4), DType::F64, &Device::cpu(), 6).unwrap();
    let x = ids(&[vec![1, 2, 3, 4, 5]]);
    let logits = model.forward(&x).unwrap();
    let shifted = language_model_loss(&logits, &x).unwrap();
    let direct = next_token_loss(
        &logits.narrow(1, 0, 4).unwrap(),
        &x.narrow(1, 1, 4).unwrap(),
    )
    .unwrap();
    assert_eq!(shifted.item().unwrap(), direct.item().unwrap());
    // An untrained model is close to uniform: loss ≈ ln V.
    assert!((shifted.item().unwrap() - 8f64.ln()).abs() < 0.1);
}

#[test]
fn gpt_learns_to_continue_a_sequence() {
    // A few AdamW steps on one repeated pattern drive its loss down.
    let model = Gpt::new(&config(12, 16, 2, 2, 16), DType::F32, &Device::cpu(), 7).unwrap();
    let pattern: Vec<i64> = (0..13).map(|i| (i * 5 % 12) as i64).collect();
    let (x, y) = (
        ids(&[pattern[..12].to_vec()]),
        ids(&[pattern[1..].to_vec()]),
    );
    let mut opt = AdamW::new(model.parameters(), AdamConfig::adamw(1e-2)).unwrap();
    let first = model.forward_loss(&x, &y).unwrap().1.item().unwrap();
    let mut last = first;
    for _ in 0..40 {
        opt.zero_grad();
        let (_, loss) = model.forward_loss(&x, &y).unwrap();
        loss.backward().unwrap();
        opt.step().unwrap();
        last = loss.item().unwrap();
    }
    assert!(last < 0.2 * first, "loss went from {first} to {last}");
}

#[test]
fn gpt_dropout_is_active_only_in_training() {
    let model = Gpt::new(
        &GptConfig {
            dropout: 0.5,
            ..config(10, 8, 1, 2, 8)
        },
        DType::F32,
        &Device::cpu(),
        8,
    )
    .unwrap();
    let x = ids(&[vec![1, 2, 3]]);
    let a = model.forward(&x).unwrap().to_vec_f64().unwrap();
    let b = model.forward(&x).unwrap().to_vec_f64().unwrap();
    assert_ne!(a, b, "training mode draws new dropout masks");
    model.eval();
    let c = model.forward(&x).unwrap().to_vec_f64().unwrap();
    assert_eq!(c, model.forward(&x).unwrap().to_vec_f64().unwrap());
}

#[test]
fn gpt_refuses_bad_token_ids() {
    let model = Gpt::new(&config(10, 4, 1, 1, 4), DType::F32, &Device::cpu(), 9).unwrap();
    let too_long = ids(&[vec![1, 2, 3, 4, 5]]);
    assert!(model
        .forward(&too_long)
        .unwrap_err()
        .to_string()
        .contains("context length 4"));
    let floats = Tensor::zeros(vec![1, 2], DType::F32, &Device::cpu()).unwrap();
    assert!(model
        .forward(&floats)
        .unwrap_err()
        .to_string()
        .contains("i64"));
    let flat = Tensor::from_vec(vec![1i64, 2], vec![2], &Device::cpu()).unwrap();
    assert!(model.forward(&flat).is_err());
    assert!(
        Gpt::new(&config(10, 4, 1, 3, 4), DType::F32, &Device::cpu(), 0).is_err(),
        "4 is not a multiple of 3 heads"
    );
}
