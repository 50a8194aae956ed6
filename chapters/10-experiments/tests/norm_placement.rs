//! The transformer-depth experiment: its forward pass is chapter 08's where
//! it should be, and what the variance argument predicts for each
//! arrangement of the layer norms holds on the experiment's own code at a
//! small size (trends, not stored numbers).

use chapter_02::Generator;
use chapter_03::Device;
use chapter_05::Module;
use chapter_08::char_data::{CharVocab, Split, TextSplits};
use chapter_10::norm_placement::{
    forward, init_profile, shakespeare, Arrangement, BlockInit, InitProfile, NormPlacementSweep,
};

/// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

fn setup() -> (NormPlacementSweep, CharVocab, TextSplits, Device) {
    let sweep = NormPlacementSweep::quick();
    let (vocab, splits) = shakespeare(sweep.context).unwrap();
    (sweep, vocab, splits, dev())
}

/// The profile of one model of `depth` blocks, averaged over nothing: one
/// seed, one fixed batch.
fn profile(
    sweep: &NormPlacementSweep,
    init: BlockInit,
    arrangement: Arrangement,
    depth: usize,
    seed: u64,
) -> InitProfile {
    let (_, vocab, splits, device) = setup();
    let sweep = NormPlacementSweep {
        init,
        ..sweep.clone()
    };
    let gpt = sweep.model(vocab.len(), depth, seed, &device).unwrap();
    let (ids, targets) = splits
        .batch(Split::Train, sweep.batch, &mut Generator::new(0), &device)
        .unwrap();
    init_profile(&gpt, arrangement, &ids, &targets).unwrap()
}

#[test]
fn pre_norm_is_chapter_08s_forward() {
    let (sweep, vocab, splits, device) = setup();
    let gpt = sweep.model(vocab.len(), 3, 0, &device).unwrap();
    let (ids, _) = splits
        .batch(Split::Val, 2, &mut Generator::new(1), &device)
        .unwrap();
    let (ours, stream) = forward(&gpt, &ids, Arrangement::PreNorm).unwrap();
    let theirs = gpt.forward(&ids).unwrap();
    assert_eq!(stream.len(), 3);
    assert_eq!(ours.dims(), theirs.dims());
    assert_eq!(ours.to_vec_f64().unwrap(), theirs.to_vec_f64().unwrap());
    // The other two arrangements are different functions of the same weights.
    for other in [Arrangement::PostNorm, Arrangement::NoSkips] {
        let (logits, _) = forward(&gpt, &ids, other).unwrap();
        assert_ne!(logits.to_vec_f64().unwrap(), theirs.to_vec_f64().unwrap());
    }
}

// ANCHOR: stream_test
/// Post-norm: every block ends in a layer norm (γ = 1, β = 0 at
/// initialisation), so the stream leaves every block with RMS 1.
/// Pre-norm: each block adds two branches whose inputs are normalised, so
/// under Xavier (branch output about as large as its input) the stream's
/// variance grows with every block, like `ℓ`, and its RMS like `√ℓ`; under
/// GPT-2's init the branch ends are scaled by `1/√(2L)`, so all `2L`
/// branches together add a bounded variance, whatever the depth.
#[test]
fn the_stream_grows_as_the_variance_argument_says() {
    let (sweep, ..) = setup();
    let depth = sweep.profile_depth;
    for init in BlockInit::BOTH {
        let post = profile(&sweep, init, Arrangement::PostNorm, depth, 0);
        for (l, rms) in post.stream_rms.iter().enumerate() {
            assert!(
                (rms - 1.0).abs() < 1e-3,
                "{init:?} post-norm block {l}: RMS {rms}"
            );
        }
    }
    let xavier = profile(&sweep, BlockInit::Xavier, Arrangement::PreNorm, depth, 0);
    let rms = &xavier.stream_rms;
    for l in 1..depth {
        assert!(
            rms[l] > rms[l - 1],
            "Xavier pre-norm: the stream shrank at block {l}: {rms:?}"
        );
    }
    let growth = rms[depth - 1] / rms[0];
    eprintln!("Xavier pre-norm stream RMS by block: {rms:?}");
    assert!(
        growth > 0.5 * (depth as f64).sqrt(),
        "Xavier pre-norm: RMS grew {growth:.2}× over {depth} blocks, √{depth} predicted: {rms:?}"
    );
    for depth in [sweep.profile_depth, 4 * sweep.profile_depth] {
        let gpt2 = profile(&sweep, BlockInit::Gpt2, Arrangement::PreNorm, depth, 0);
        let growth = gpt2.stream_rms[depth - 1] / gpt2.stream_rms[0];
        eprintln!("GPT-2 init pre-norm, depth {depth}: RMS grew {growth:.3}×");
        assert!(
            growth < 2.0,
            "GPT-2 init pre-norm, depth {depth}: RMS grew {growth:.2}×: {:?}",
            gpt2.stream_rms
        );
    }
}
// ANCHOR_END: stream_test

// ANCHOR: gradient_test
/// The skip connections carry the loss's gradient to the first block
/// through an identity path, so in pre-norm its size does not depend on
/// how many blocks lie in between. And a layer norm divides the gradient
/// that flows through it by its input's standard deviation: under GPT-2's
/// init the pre-norm stream is tiny (the embeddings' `0.02·√2`) while the
/// post-norm stream has RMS 1, so pre-norm's block gradients are larger by
/// about `1/RMS`.
#[test]
fn the_gradient_reaches_the_first_block_as_predicted() {
    let (sweep, ..) = setup();
    for init in BlockInit::BOTH {
        let shallow = profile(&sweep, init, Arrangement::PreNorm, 2, 1).block_grad[0];
        let deep = profile(&sweep, init, Arrangement::PreNorm, 16, 1).block_grad[0];
        eprintln!(
            "{init:?} pre-norm first block gradient: depth 2 {shallow:.3e}, depth 16 {deep:.3e}"
        );
        assert!(
            deep / shallow > 0.5 && deep / shallow < 2.0,
            "{init:?} pre-norm: first block's gradient {shallow:.3e} at depth 2, {deep:.3e} at depth 16"
        );
    }
    let depth = sweep.profile_depth;
    let pre = profile(&sweep, BlockInit::Gpt2, Arrangement::PreNorm, depth, 0);
    let post = profile(&sweep, BlockInit::Gpt2, Arrangement::PostNorm, depth, 0);
    let ratio = pre.block_grad[0] / post.block_grad[0];
    let predicted = 1.0 / pre.stream_rms[0];
    eprintln!("pre/post first block gradient {ratio:.2}, 1/RMS {predicted:.2}");
    assert!(
        ratio > predicted / 3.0 && ratio < predicted * 3.0,
        "pre-norm's first block gradient is {ratio:.1}× post-norm's; 1/RMS = {predicted:.1}"
    );
}
// ANCHOR_END: gradient_test

/// The quick size runs end to end and writes both figures with their data.
#[test]
fn the_experiment_writes_both_figures() {
    let dir = tempfile::tempdir().unwrap();
    let outcome = chapter_10::run(
        "gpt-norm",
        dir.path(),
        chapter_10::Size::Quick,
        &mut chapter_10::Progress::silent(),
    )
    .unwrap();
    for init in BlockInit::BOTH {
        for ext in ["csv", "svg", "png"] {
            let path = dir.path().join(format!("{}.{ext}", init.stem()));
            assert!(
                outcome.files.contains(&path),
                "{} not reported",
                path.display()
            );
            assert!(std::fs::metadata(&path).unwrap().len() > 100);
        }
    }
    let csv = std::fs::read_to_string(dir.path().join("10-gpt-norm-placement.csv")).unwrap();
    assert!(csv.starts_with("measurement,arrangement,x,mean,per_seed"));
    assert!(csv.contains("train_loss_by_step_warmup,post-norm,"));
    assert_eq!(outcome.summary.len(), 8);
}
