//! The GPT training loop, on a model small enough to train in a blink: a
//! bigram table (an `Embedding` whose rows are next-token logits). The loop
//! does not care what the model is, so its lessons (the loss falls, resume
//! is exact, a changed seed is refused) hold for the GPT too.

use chapter_02::{manual_seed, Device};
use chapter_05::{Embedding, ModuleExt};
use chapter_06::run_dir::RunDir;
use chapter_06::{Checkpoint, OnResume};
use chapter_08::char_data::{CharVocab, TextSplits};
use chapter_08::training::{train_gpt, GptTrainConfig};

fn corpus() -> (CharVocab, TextSplits) {
    let text = "the cat sat on the mat. the dog sat on the log. ".repeat(40);
    let vocab = CharVocab::from_text(&text);
    let splits = TextSplits::new(vocab.encode(&text).unwrap(), 0.9, 16).unwrap();
    (vocab, splits)
}

fn config(iters: usize) -> GptTrainConfig {
    GptTrainConfig {
        iters,
        batch_size: 4,
        lr: 0.1,
        min_lr: 0.01,
        warmup_iters: 2,
        lr_decay_iters: iters.max(3),
        eval_interval: 10,
        eval_iters: 4,
        log_every: 5,
        ..GptTrainConfig::default()
    }
}

fn bigram(vocab: usize) -> Embedding {
    manual_seed(7);
    Embedding::new(vocab, vocab).unwrap()
}

fn run_dir(path: &std::path::Path) -> RunDir {
    RunDir::new(path).setting("dataset", "cats", OnResume::Fixed("the data"))
}

#[test]
fn training_lowers_the_validation_loss() {
    let (vocab, data) = corpus();
    let model = bigram(vocab.len());
    let dir = tempfile::tempdir().unwrap();
    let first = train_gpt(
        &model,
        &data,
        &config(1),
        &run_dir(&dir.path().join("a")),
        false,
        false,
    )
    .unwrap();
    let model = bigram(vocab.len());
    let last = train_gpt(
        &model,
        &data,
        &config(60),
        &run_dir(&dir.path().join("b")),
        false,
        false,
    )
    .unwrap();
    assert!(
        last.val_loss < first.val_loss - 0.5,
        "validation loss {} → {}",
        first.val_loss,
        last.val_loss
    );
    assert_eq!((last.steps_run, last.step), (60, 60));
    let metrics = std::fs::read_to_string(dir.path().join("b/metrics.jsonl")).unwrap();
    // Estimates at 0, 10, ..., 60 and a train line every 5 steps.
    assert_eq!(metrics.matches("\"kind\":\"eval\"").count(), 7);
    assert_eq!(metrics.matches("\"kind\":\"train\"").count(), 12);
}

/// The final weights of a run of `iters` steps with `replicas` replicas,
/// straight through or stopped every `stop` steps and resumed.
fn final_weights(
    dir: &std::path::Path,
    replicas: usize,
    stop: Option<usize>,
) -> Vec<(String, Vec<f64>)> {
    let (vocab, data) = corpus();
    let cfg = GptTrainConfig {
        replicas,
        stop_after_iters: stop,
        ..config(30)
    };
    let model = bigram(vocab.len());
    train_gpt(&model, &data, &cfg, &run_dir(dir), false, false).unwrap();
    if let Some(stop) = stop {
        for _ in 1..30 / stop {
            let fresh = bigram(vocab.len());
            train_gpt(&fresh, &data, &cfg, &run_dir(dir), true, false).unwrap();
        }
    }
    let ckpt = Checkpoint::load(dir.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ckpt.global_step, 30);
    let mut weights: Vec<(String, Vec<f64>)> = ckpt
        .model
        .iter()
        .map(|(name, t)| (name.clone(), t.to_vec_f64().unwrap()))
        .collect();
    weights.sort_by(|a, b| a.0.cmp(&b.0));
    weights
}

#[test]
fn resume_continues_exactly() {
    let dir = tempfile::tempdir().unwrap();
    // For one replica and for two: one run straight through, and one
    // stopped after 10 steps and resumed twice, end on the same bits.
    for replicas in [1, 2] {
        let straight = dir.path().join(format!("straight-{replicas}"));
        let parts = dir.path().join(format!("parts-{replicas}"));
        assert_eq!(
            final_weights(&straight, replicas, None),
            final_weights(&parts, replicas, Some(10)),
            "{replicas} replicas: the weights differ after resuming"
        );
        let a = Checkpoint::load(straight.join("checkpoint.safetensors")).unwrap();
        let b = Checkpoint::load(parts.join("checkpoint.safetensors")).unwrap();
        assert_eq!(a.extra["batch_rng"], b.extra["batch_rng"]);
        // The metrics hold each estimate once.
        let metrics = std::fs::read_to_string(parts.join("metrics.jsonl")).unwrap();
        assert_eq!(metrics.matches("\"kind\":\"eval\"").count(), 4);
    }
}

/// Shards of the batch on two cores follow the path of the whole batch on
/// one, up to rounding: 30 steps later the weights agree to 1e-4.
#[test]
fn training_with_replicas_follows_the_same_path() {
    let dir = tempfile::tempdir().unwrap();
    let one = final_weights(&dir.path().join("one"), 1, None);
    let two = final_weights(&dir.path().join("two"), 2, None);
    for ((name, a), (_, b)) in one.iter().zip(&two) {
        for (x, y) in a.iter().zip(b) {
            assert!((x - y).abs() <= 1e-4, "{name}: {x} vs {y}");
        }
    }
}

#[test]
fn resume_with_another_replica_count_needs_force() {
    let (vocab, data) = corpus();
    let dir = tempfile::tempdir().unwrap();
    let model = bigram(vocab.len());
    let cfg = |replicas, iters| GptTrainConfig {
        replicas,
        ..config(iters)
    };
    train_gpt(
        &model,
        &data,
        &cfg(2, 5),
        &run_dir(dir.path()),
        false,
        false,
    )
    .unwrap();
    let err = train_gpt(
        &model,
        &data,
        &cfg(3, 10),
        &run_dir(dir.path()),
        true,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("replicas") && err.contains("--force"), "{err}");
    // Forced, it goes on with three.
    let forced = run_dir(dir.path()).force(true);
    let done = train_gpt(&model, &data, &cfg(3, 10), &forced, true, false).unwrap();
    assert_eq!(done.step, 10);
    // And a count of zero or above the limit is refused before anything runs.
    for bad in [0, 257] {
        let err = train_gpt(
            &model,
            &data,
            &cfg(bad, 5),
            &run_dir(&dir.path().join(format!("bad-{bad}"))),
            false,
            false,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("replicas"), "{err}");
        assert!(!dir.path().join(format!("bad-{bad}")).exists());
    }
}

#[test]
fn resume_with_another_seed_is_refused() {
    let (vocab, data) = corpus();
    let dir = tempfile::tempdir().unwrap();
    let model = bigram(vocab.len());
    train_gpt(
        &model,
        &data,
        &config(5),
        &run_dir(dir.path()),
        false,
        false,
    )
    .unwrap();
    let other = GptTrainConfig {
        seed: 1,
        ..config(5)
    };
    let err = train_gpt(&model, &data, &other, &run_dir(dir.path()), true, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--seed") && err.contains("cannot change"),
        "{err}"
    );
    // A new run over the old one needs --force.
    let err = train_gpt(
        &model,
        &data,
        &config(5),
        &run_dir(dir.path()),
        false,
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("already holds a run"), "{err}");
    assert_eq!(model.num_parameters(), vocab.len() * vocab.len());
    let _ = Device::cpu();
}
