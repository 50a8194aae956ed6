//! The GPT training loop, on a model small enough to train in a blink: a
//! bigram table (an `Embedding` whose rows are next-token logits). The loop
//! does not care what the model is, so its lessons (the loss falls, resume
//! is exact, a changed seed is refused) hold for the GPT too.

use chapter_02::{manual_seed, Device};
use chapter_05::{Embedding, ModuleExt, StateDictExt};
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

#[test]
fn resume_continues_exactly() {
    let (vocab, data) = corpus();
    let dir = tempfile::tempdir().unwrap();
    // One run straight through...
    let straight = dir.path().join("straight");
    let model = bigram(vocab.len());
    train_gpt(
        &model,
        &data,
        &config(30),
        &run_dir(&straight),
        false,
        false,
    )
    .unwrap();
    // ... and one stopped after 10 steps and resumed twice.
    let parts = dir.path().join("parts");
    let stop = |n| GptTrainConfig {
        stop_after_iters: Some(n),
        ..config(30)
    };
    let model = bigram(vocab.len());
    train_gpt(&model, &data, &stop(10), &run_dir(&parts), false, false).unwrap();
    for _ in 0..2 {
        let fresh = bigram(vocab.len());
        train_gpt(&fresh, &data, &stop(10), &run_dir(&parts), true, false).unwrap();
    }
    let a = Checkpoint::load(straight.join("checkpoint.safetensors")).unwrap();
    let b = Checkpoint::load(parts.join("checkpoint.safetensors")).unwrap();
    assert_eq!(a.global_step, 30);
    assert_eq!(b.global_step, 30);
    let (wa, wb) = (&a.model, &b.model);
    for (name, t) in wa.iter() {
        assert_eq!(
            t.to_vec_f64().unwrap(),
            wb[name].to_vec_f64().unwrap(),
            "{name} differs after resuming"
        );
    }
    assert_eq!(a.extra["batch_rng"], b.extra["batch_rng"]);
    // The metrics hold each estimate once.
    let metrics = std::fs::read_to_string(parts.join("metrics.jsonl")).unwrap();
    assert_eq!(metrics.matches("\"kind\":\"eval\"").count(), 4);
    let _ = model.state_dict();
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
