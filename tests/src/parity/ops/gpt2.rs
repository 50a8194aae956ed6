//! Case `gpt2_tiny` (chapter 08): a tiny GPT-2 saved by Hugging Face's
//! `save_pretrained`, loaded from its `config.json` and `model.safetensors`
//! by [`load_gpt2_files`], must reproduce what `transformers` computed: the
//! logits, the language-model loss, every hidden state, the gradient of the
//! loss for every parameter, and greedy generation (run here through the
//! KV cache, one token at a time, where the fixture fed the whole sequence
//! each step).

use crate::parity::compare::{compare, Mismatch};
use crate::parity::manifest::{Tolerance, ToleranceSpec};
use crate::parity::runner::worst;
use crate::parity::{CaseEnv, Failure, Precision};
use chapter_02::default_device;
use chapter_03::{DType, Tensor};
use chapter_05::ModuleExt;
use chapter_08::gpt::{language_model_loss, GptGenerator};
use chapter_08::gpt2::load_gpt2_files;
use chapter_08::LanguageModel;
use serde::Deserialize;
use std::sync::Arc;

/// `generation.json`.
#[derive(Deserialize)]
struct Generation {
    prompt_ids: Vec<Vec<u32>>,
    max_new_tokens: usize,
    new_ids: Vec<Vec<u32>>,
}

/// The tolerance for one kind of result (`logits`, `loss`, `grads`): the
/// f32 tolerances are given per kind, the f64 one for everything.
fn tolerance(env: &CaseEnv<'_>, kind: &str) -> Result<Tolerance, Failure> {
    let spec = match env.precision {
        Precision::F32 => env.case.tol.as_ref(),
        Precision::F64 => env.case.tol_f64.as_ref(),
    };
    match spec {
        Some(ToleranceSpec::Bounds(t)) => Ok(*t),
        Some(ToleranceSpec::PerKind(map)) => map
            .get(kind)
            .copied()
            .ok_or_else(|| Failure::new(format!("the manifest gives no `{kind}` tolerance"))),
        _ => Err(Failure::new(
            "the manifest gives no tolerance for this case",
        )),
    }
}

/// A file the case names under `files.<role>`.
fn file<'a>(env: &'a CaseEnv<'_>, role: &str) -> Result<&'a str, Failure> {
    env.case
        .extra
        .get("files")
        .and_then(|f| f.get(role))
        .and_then(|v| v.as_str())
        .ok_or_else(|| Failure::new(format!("the manifest names no `files.{role}`")))
}

pub fn check(env: &CaseEnv<'_>) -> Result<(), Failure> {
    let dtype = match env.precision {
        Precision::F32 => DType::F32,
        Precision::F64 => DType::F64,
    };
    let device = default_device()?;
    let model = load_gpt2_files(
        env.dir.join(file(env, "config")?),
        env.dir.join(file(env, "weights")?),
        dtype,
        &device,
    )?;
    let io = env.load(file(
        env,
        match env.precision {
            Precision::F32 => "io",
            Precision::F64 => "io_f64",
        },
    )?)?;
    let get = |name: &str| -> Result<chapter_02::Tensor, Failure> {
        Ok(io.get(name)?.to_device(&device)?)
    };

    // Forward with every hidden state, HF's shifted loss, backward.
    let ids = Tensor::from_raw(get("input_ids")?);
    let out = model.forward_with(&ids, None, true)?;
    let loss = language_model_loss(&out.logits, &ids)?;
    loss.backward()?;

    let mut mismatches: Vec<Mismatch> = Vec::new();
    let logits_tol = tolerance(env, "logits")?;
    mismatches.extend(compare(
        "logits",
        &out.logits.data(),
        &get("logits")?,
        logits_tol,
    ));
    mismatches.extend(compare(
        "loss",
        &loss.data(),
        &get("loss")?,
        tolerance(env, "loss")?,
    ));
    let stored_hidden = (0..)
        .take_while(|i| io.get(&format!("hidden_states.{i}")).is_ok())
        .count();
    if stored_hidden != out.hidden_states.len() {
        return Err(Failure::new(format!(
            "{} hidden states, the fixture has {stored_hidden}",
            out.hidden_states.len()
        )));
    }
    for (i, h) in out.hidden_states.iter().enumerate() {
        let name = format!("hidden_states.{i}");
        mismatches.extend(compare(&name, &h.data(), &get(&name)?, logits_tol));
    }
    let grads_tol = tolerance(env, "grads")?;
    let params = model.named_parameters();
    for (name, p) in &params {
        let key = format!("grad.{name}");
        match p.grad_opt() {
            Some(g) => mismatches.extend(compare(&key, &g.data(), &get(&key)?, grads_tol)),
            None => return Err(Failure::new(format!("{key}: no gradient reached it"))),
        }
    }
    let stored_grads = env
        .case
        .extra
        .get("tensors_io")
        .and_then(|t| t.as_array())
        .map_or(0, |t| {
            t.iter()
                .filter(|s| s["name"].as_str().is_some_and(|n| n.starts_with("grad.")))
                .count()
        });
    if stored_grads != params.len() {
        return Err(Failure::new(format!(
            "the model has {} parameters, the fixture {stored_grads} gradients",
            params.len()
        )));
    }
    worst(mismatches)?;

    // Greedy generation through the KV cache.
    let path = env.dir.join(file(env, "generation")?);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let generation: Generation = serde_json::from_str(&text)
        .map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    let mut generator = GptGenerator::new(Arc::new(model))?;
    for (row, (prompt, expected)) in generation
        .prompt_ids
        .iter()
        .zip(&generation.new_ids)
        .enumerate()
    {
        generator.reset()?;
        let mut logits = generator.extend(prompt)?;
        let mut got = Vec::new();
        for _ in 0..generation.max_new_tokens {
            let next = argmax(logits.last());
            got.push(next);
            logits = generator.extend(&[next])?;
        }
        if &got != expected {
            return Err(Failure::new(format!(
                "greedy generation of prompt {row}: {got:?}, expected {expected:?}"
            )));
        }
    }
    Ok(())
}

/// The index of the largest value (the first, on ties).
fn argmax(row: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = i;
        }
    }
    best as u32
}
