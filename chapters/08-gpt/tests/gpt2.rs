//! GPT-2 from Hugging Face's files: the tiny fixture model must reproduce
//! `transformers`' logits, loss, hidden states, gradients and greedy
//! generation; broken files must give errors naming the file.

use chapter_02::Tensor as RawTensor;
use chapter_03::{DType, Device, Tensor};
use chapter_05::{load_safetensors, save_safetensors, ModuleExt, StateDict};
use chapter_08::gpt::language_model_loss;
use chapter_08::gpt2::{load_gpt2, Gpt2Config};
use chapter_08::{GptGenerator, LanguageModel};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `tests/fixtures/gpt2_tiny` of the workspace.
fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/gpt2_tiny")
}

fn stored(file: &StateDict, name: &str) -> RawTensor {
    file.get(name)
        .unwrap_or_else(|| panic!("the fixture has no {name}"))
        .clone()
}

/// Largest `|a − e| − (atol + rtol·|e|)` over the elements: ≤ 0 means close.
fn excess(actual: &RawTensor, expected: &RawTensor, rtol: f64, atol: f64) -> f64 {
    assert_eq!(actual.dims(), expected.dims());
    let (a, e) = (actual.to_vec_f64().unwrap(), expected.to_vec_f64().unwrap());
    a.iter()
        .zip(&e)
        .map(|(a, e)| (a - e).abs() - (atol + rtol * e.abs()))
        .fold(f64::NEG_INFINITY, f64::max)
}

fn max_abs_diff(a: &RawTensor, e: &RawTensor) -> f64 {
    let (a, e) = (a.to_vec_f64().unwrap(), e.to_vec_f64().unwrap());
    a.iter()
        .zip(&e)
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f64::max)
}

/// Loads the model in `dtype`, runs HF's forward and loss, and compares
/// everything with `io_file`. Tolerances: the manifest's for `gpt2_tiny`.
fn check_against_transformers(dtype: DType, io_file: &str, tol: [(f64, f64); 3]) {
    let [logits_tol, loss_tol, grads_tol] = tol;
    let model = load_gpt2(fixture_dir(), dtype, &Device::cpu()).unwrap();
    let io = load_safetensors(fixture_dir().join(io_file)).unwrap();
    let ids = Tensor::from_raw(stored(&io, "input_ids"));
    let out = model.forward_with(&ids, None, true).unwrap();
    let loss = language_model_loss(&out.logits, &ids).unwrap();
    loss.backward().unwrap();
    let mut checks = vec![
        (
            "logits".to_string(),
            excess(
                &out.logits.data(),
                &stored(&io, "logits"),
                logits_tol.0,
                logits_tol.1,
            ),
        ),
        (
            "loss".to_string(),
            excess(&loss.data(), &stored(&io, "loss"), loss_tol.0, loss_tol.1),
        ),
    ];
    assert_eq!(
        out.hidden_states.len(),
        3,
        "embeddings, block 0, ln_f(block 1)"
    );
    for (i, h) in out.hidden_states.iter().enumerate() {
        let name = format!("hidden_states.{i}");
        checks.push((
            name.clone(),
            excess(&h.data(), &stored(&io, &name), logits_tol.0, logits_tol.1),
        ));
    }
    let mut worst_grad = 0.0f64;
    let params = model.named_parameters();
    assert_eq!(
        params.len(),
        io.keys().filter(|k| k.starts_with("grad.")).count()
    );
    for (name, p) in params {
        let key = format!("grad.{name}");
        let g = p.grad().unwrap().data();
        worst_grad = worst_grad.max(max_abs_diff(&g, &stored(&io, &key)));
        checks.push((
            key.clone(),
            excess(&g, &stored(&io, &key), grads_tol.0, grads_tol.1),
        ));
    }
    println!("gpt2_tiny {dtype}: max |grad - transformers| over 28 parameters = {worst_grad:.3e}");
    let max_abs = max_abs_diff;
    println!(
        "gpt2_tiny {dtype}: max |logits - transformers| = {:.3e}, |loss - transformers| = {:.3e}",
        max_abs(&out.logits.data(), &stored(&io, "logits")),
        max_abs(&loss.data(), &stored(&io, "loss")),
    );
    let bad: Vec<_> = checks.iter().filter(|(_, e)| *e > 0.0).collect();
    assert!(bad.is_empty(), "{dtype}: outside tolerance: {bad:?}");
}

#[test]
fn gpt2_tiny_matches_transformers_in_f32() {
    check_against_transformers(
        DType::F32,
        "io.safetensors",
        [(1e-4, 1e-4), (1e-5, 1e-5), (1e-3, 1e-6)],
    );
}

#[test]
fn gpt2_tiny_matches_transformers_in_f64() {
    check_against_transformers(DType::F64, "io.f64.safetensors", [(1e-9, 1e-12); 3]);
}

#[test]
fn gpt2_tiny_greedy_generation_matches_transformers() {
    let text = std::fs::read_to_string(fixture_dir().join("generation.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = |key: &str| -> Vec<Vec<u32>> { serde_json::from_value(json[key].clone()).unwrap() };
    let steps = json["max_new_tokens"].as_u64().unwrap() as usize;
    for dtype in [DType::F32, DType::F64] {
        let model = Arc::new(load_gpt2(fixture_dir(), dtype, &Device::cpu()).unwrap());
        let mut generator = GptGenerator::new(model).unwrap();
        for (prompt, expected) in rows("prompt_ids").iter().zip(rows("new_ids")) {
            generator.reset().unwrap();
            let mut logits = generator.extend(prompt).unwrap();
            let mut got = Vec::new();
            for _ in 0..steps {
                let row = logits.last();
                let next = (0..row.len())
                    .fold(0, |best, i| if row[i] > row[best] { i } else { best })
                    as u32;
                got.push(next);
                logits = generator.extend(&[next]).unwrap();
            }
            assert_eq!(got, expected, "{dtype}");
        }
    }
}

/// The same, through the library's `generate`: its prompt goes through
/// `extend_last` (only the last position's logits), which must not change
/// a single token.
#[test]
fn gpt2_tiny_generate_with_last_position_prefill_matches_transformers() {
    use chapter_08::sampling::{generate, ContextPolicy, Sampler, StopConditions};
    let text = std::fs::read_to_string(fixture_dir().join("generation.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let rows = |key: &str| -> Vec<Vec<u32>> { serde_json::from_value(json[key].clone()).unwrap() };
    let steps = json["max_new_tokens"].as_u64().unwrap() as usize;
    for dtype in [DType::F32, DType::F64] {
        let model = Arc::new(load_gpt2(fixture_dir(), dtype, &Device::cpu()).unwrap());
        for (prompt, expected) in rows("prompt_ids").iter().zip(rows("new_ids")) {
            let mut generator = GptGenerator::new(model.clone()).unwrap();
            let g = generate(
                &mut generator,
                prompt,
                &mut Sampler::greedy(),
                &StopConditions::max_new_tokens(steps),
                None,
                ContextPolicy::Error,
                |_| {},
            )
            .unwrap();
            assert_eq!(g.tokens, expected, "{dtype}");
        }
    }
}

#[test]
fn gpt2_config_reads_huggingface_fields() {
    let config = Gpt2Config::from_file(fixture_dir().join("config.json")).unwrap();
    assert_eq!(
        (
            config.n_layer,
            config.n_head,
            config.n_embd,
            config.n_positions
        ),
        (2, 4, 64, 64)
    );
    let gpt = config.to_gpt_config().unwrap();
    assert_eq!(gpt.mlp_width(), 256);
    assert_eq!(gpt.activation, chapter_05::GeluApproximation::Tanh);
    let old = r#"{"vocab_size": 10, "n_ctx": 8, "n_embd": 4, "n_layer": 1, "n_head": 2}"#;
    let old = Gpt2Config::from_json(old, Path::new("config.json")).unwrap();
    assert_eq!(old.n_positions, 8, "n_ctx is the old name of n_positions");
    let relu = Gpt2Config {
        activation_function: "relu".into(),
        ..old
    };
    assert!(relu.to_gpt_config().unwrap_err().contains("relu"));
}

/// A copy of the fixture in a temporary folder, with `edit` applied to its
/// weights (`None`: leave them) and `config` replacing `config.json`.
fn broken_copy(edit: Option<&dyn Fn(&mut StateDict)>, config: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("model.safetensors");
    match edit {
        Some(edit) => {
            let mut dict = load_safetensors(fixture_dir().join("model.safetensors")).unwrap();
            edit(&mut dict);
            save_safetensors(&weights, &dict, None).unwrap();
        }
        None => {
            std::fs::copy(fixture_dir().join("model.safetensors"), &weights).unwrap();
        }
    }
    let config_text = match config {
        Some(c) => c.to_string(),
        None => std::fs::read_to_string(fixture_dir().join("config.json")).unwrap(),
    };
    std::fs::write(dir.path().join("config.json"), config_text).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    match load_gpt2(dir, DType::F32, &Device::cpu()) {
        Ok(_) => panic!("{} loaded", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn gpt2_loader_names_the_missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("cannot read"),
        "{err}"
    );
    let dir = broken_copy(None, None);
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = load_error(dir.path());
    assert!(
        err.contains("model.safetensors") && err.contains("cannot read"),
        "{err}"
    );
}

#[test]
fn gpt2_loader_refuses_a_corrupt_file() {
    let dir = broken_copy(None, None);
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
    std::fs::write(&path, b"not safetensors at all").unwrap();
    let err = load_error(dir.path());
    assert!(err.contains("model.safetensors"), "{err}");
    let dir = broken_copy(None, Some("{ \"n_layer\": "));
    let err = load_error(dir.path());
    assert!(
        err.contains("config.json") && err.contains("not a GPT-2 config"),
        "{err}"
    );
}

#[test]
fn gpt2_loader_refuses_weights_that_do_not_match_the_config() {
    let config = std::fs::read_to_string(fixture_dir().join("config.json")).unwrap();
    let three_layers = config.replace("\"n_layer\": 2", "\"n_layer\": 3");
    let err = load_error(broken_copy(None, Some(&three_layers)).path());
    assert!(
        err.contains("missing keys")
            && err.contains("transformer.h.2.ln_1.weight")
            && err.contains("config.json"),
        "{err}"
    );

    let drop = |d: &mut StateDict| {
        d.remove("transformer.h.1.mlp.c_fc.bias");
    };
    let err = load_error(broken_copy(Some(&drop), None).path());
    assert!(
        err.contains("model.safetensors") && err.contains("transformer.h.1.mlp.c_fc.bias"),
        "{err}"
    );

    let extra = |d: &mut StateDict| {
        d.insert(
            "transformer.h.0.attn.c_extra.weight".into(),
            RawTensor::zeros(vec![2], DType::F32, &Device::cpu()).unwrap(),
        );
    };
    let err = load_error(broken_copy(Some(&extra), None).path());
    assert!(
        err.contains("unexpected keys") && err.contains("c_extra"),
        "{err}"
    );

    let reshaped = |d: &mut StateDict| {
        let w = d["transformer.h.0.attn.c_attn.weight"].clone();
        d.insert(
            "transformer.h.0.attn.c_attn.weight".into(),
            w.reshape(vec![192, 64]).unwrap(),
        );
    };
    let err = load_error(broken_copy(Some(&reshaped), None).path());
    assert!(
        err.contains("size mismatch for transformer.h.0.attn.c_attn.weight"),
        "{err}"
    );

    let untied = |d: &mut StateDict| {
        let w = d["transformer.wte.weight"].affine(2.0, 0.0).unwrap();
        d.insert("lm_head.weight".into(), w);
    };
    let err = load_error(broken_copy(Some(&untied), None).path());
    assert!(err.contains("lm_head.weight"), "{err}");
}

#[test]
fn gpt2_loader_accepts_the_other_layouts_of_the_same_weights() {
    // Without the `transformer.` prefix, with the old mask buffers, and with
    // the tied head stored: the same model.
    let variant = |d: &mut StateDict| {
        let old = std::mem::take(d);
        for (name, t) in old {
            d.insert(name.trim_start_matches("transformer.").to_string(), t);
        }
        let mask = RawTensor::ones(vec![1, 1, 64, 64], DType::U8, &Device::cpu()).unwrap();
        d.insert("h.0.attn.bias".into(), mask.clone());
        d.insert(
            "h.1.attn.masked_bias".into(),
            RawTensor::zeros(vec![], DType::F32, &Device::cpu()).unwrap(),
        );
        d.insert("lm_head.weight".into(), d["wte.weight"].clone());
    };
    let dir = broken_copy(Some(&variant), None);
    let model = load_gpt2(dir.path(), DType::F64, &Device::cpu()).unwrap();
    let reference = load_gpt2(fixture_dir(), DType::F64, &Device::cpu()).unwrap();
    let ids = Tensor::from_vec(vec![1i64, 2, 3], vec![1, 3], &Device::cpu()).unwrap();
    use chapter_05::Module;
    assert_eq!(
        model.forward(&ids).unwrap().to_vec_f64().unwrap(),
        reference.forward(&ids).unwrap().to_vec_f64().unwrap()
    );
}
