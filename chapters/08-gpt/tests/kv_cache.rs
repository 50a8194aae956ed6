//! The KV cache: incremental decoding gives the full forward's logits,
//! written in place, with truncation and a clear error when full.

use chapter_03::{no_grad, DType, Device, Tensor};
use chapter_04::prelude::*;
use chapter_05::{GeluApproximation, Module};
use chapter_08::{Gpt, GptConfig, GptGenerator, KvCache, LanguageModel, RecomputingGenerator};
use std::sync::Arc;

fn tiny_config() -> GptConfig {
    GptConfig {
        vocab_size: 40,
        context_length: 12,
        n_layer: 2,
        n_head: 2,
        n_embd: 16,
        n_inner: None,
        dropout: 0.0,
        bias: true,
        layer_norm_eps: 1e-5,
        activation: GeluApproximation::Tanh,
    }
}

/// A model with weights large enough that every position matters.
fn tiny_gpt(dtype: DType) -> Gpt {
    let model = Gpt::new(&tiny_config(), dtype, &Device::cpu(), 7).unwrap();
    for (_, p) in chapter_05::ModuleExt::named_parameters(&model) {
        p.set_data(p.data().affine(15.0, 0.0).unwrap()).unwrap();
    }
    model
}

fn ids(tokens: &[u32]) -> Tensor {
    let v: Vec<i64> = tokens.iter().map(|&t| t as i64).collect();
    Tensor::from_vec(v, vec![1, tokens.len()], &Device::cpu()).unwrap()
}

/// The logits of a full forward pass, `[T, V]` row-major.
fn full_logits(model: &Gpt, tokens: &[u32]) -> Vec<f64> {
    let _g = no_grad();
    model.forward(&ids(tokens)).unwrap().to_vec_f64().unwrap()
}

/// The largest `|a − b| / (1 + |b|)`.
fn relative_error(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(a, b)| (a - b).abs() / (1.0 + b.abs()))
        .fold(0.0, f64::max)
}

const TOKENS: [u32; 10] = [3, 17, 17, 0, 39, 8, 21, 5, 5, 30];

#[test]
fn kv_cache_decoding_one_token_at_a_time_matches_the_full_forward() {
    // Logits come back as f32 (what a sampler reads), so even the f64
    // model's agree only to f32's relative precision.
    for (dtype, tol) in [(DType::F64, 1e-6), (DType::F32, 2e-4)] {
        let model = Arc::new(tiny_gpt(dtype));
        let expected = full_logits(&model, &TOKENS);
        let mut generator = GptGenerator::new(model).unwrap();
        let mut got = Vec::new();
        for &t in &TOKENS {
            got.extend(
                generator
                    .extend(&[t])
                    .unwrap()
                    .as_slice()
                    .iter()
                    .map(|&x| x as f64),
            );
        }
        assert_eq!(generator.cached_len(), TOKENS.len());
        let worst = relative_error(&got, &expected);
        assert!(
            worst <= tol,
            "{dtype}: incremental and full logits differ by {worst} (relative)"
        );
    }
}

#[test]
fn kv_cache_prefill_in_chunks_matches_the_full_forward() {
    let model = Arc::new(tiny_gpt(DType::F64));
    let expected = full_logits(&model, &TOKENS);
    let mut generator = GptGenerator::new(model).unwrap();
    let mut got = Vec::new();
    for chunk in [&TOKENS[..4], &TOKENS[4..5], &TOKENS[5..]] {
        got.extend(
            generator
                .extend(chunk)
                .unwrap()
                .as_slice()
                .iter()
                .map(|&x| x as f64),
        );
    }
    let worst = relative_error(&got, &expected);
    assert!(
        worst < 1e-6,
        "chunked prefill differs by {worst} (relative)"
    );
}

#[test]
fn kv_cache_is_written_in_place_without_growing() {
    let model = Arc::new(tiny_gpt(DType::F32));
    let mut generator = GptGenerator::new(model).unwrap();
    let capacity = generator.cache().capacity();
    for &t in &TOKENS {
        // Nothing else holds the buffers, so the write needs no copy...
        assert!(generator.cache().writes_in_place());
        generator.extend(&[t]).unwrap();
        // ...and the buffers keep their preallocated size.
        assert_eq!(generator.cache().capacity(), capacity);
    }
}

#[test]
fn kv_cache_appends_into_its_preallocated_buffer() {
    let mut cache = KvCache::new(1, 1, 2, 4, 3, DType::F32, &Device::cpu()).unwrap();
    let layer = cache.layer_mut(0).unwrap();
    let k = Tensor::ones(vec![1, 2, 1, 3], DType::F32, &Device::cpu()).unwrap();
    let (keys, values) = layer.append(&k, &k.affine(2.0, 0.0).unwrap()).unwrap();
    assert_eq!(keys.dims(), [1, 2, 1, 3]);
    assert_eq!(values.to_vec_f64().unwrap(), vec![2.0; 6]);
    // While these views live, a write would have to copy first...
    assert!(!layer.writes_in_place());
    drop((keys, values));
    // ...and once they are gone it goes straight into the buffer.
    assert!(layer.writes_in_place());
    let (keys, _) = layer.append(&k.affine(3.0, 0.0).unwrap(), &k).unwrap();
    assert_eq!(keys.dims(), [1, 2, 2, 3]);
    assert_eq!(
        keys.narrow(2, 1, 1).unwrap().to_vec_f64().unwrap(),
        vec![3.0; 6]
    );
    let wrong = Tensor::ones(vec![1, 3, 1, 3], DType::F32, &Device::cpu()).unwrap();
    assert!(
        layer.append(&wrong, &wrong).is_err(),
        "a shape that does not fit is refused"
    );
}

#[test]
fn kv_cache_refuses_tokens_past_the_context_length() {
    let model = Arc::new(tiny_gpt(DType::F32));
    let mut generator = GptGenerator::new(model).unwrap();
    generator.extend(&TOKENS).unwrap();
    let err = generator.extend(&[1, 2, 3]).unwrap_err().to_string();
    assert!(err.contains("context length 12"), "{err}");
    assert_eq!(
        generator.cached_len(),
        TOKENS.len(),
        "a refused extend changes nothing"
    );
    let mut cache = KvCache::new(1, 1, 1, 2, 1, DType::F32, &Device::cpu()).unwrap();
    let three = Tensor::ones(vec![1, 1, 3, 1], DType::F32, &Device::cpu()).unwrap();
    let err = cache
        .layer_mut(0)
        .unwrap()
        .append(&three, &three)
        .unwrap_err()
        .to_string();
    assert!(err.contains("full"), "{err}");
}

#[test]
fn kv_cache_truncate_rolls_back_to_an_earlier_position() {
    let model = Arc::new(tiny_gpt(DType::F64));
    let mut generator = GptGenerator::new(model.clone()).unwrap();
    generator.extend(&TOKENS[..6]).unwrap();
    generator.truncate(3).unwrap();
    assert_eq!(generator.cached_len(), 3);
    // Continue with other tokens: as if the sequence had been [0..3] + these.
    let other = [11u32, 12, 13];
    let got = generator.extend(&other).unwrap();
    let mut sequence = TOKENS[..3].to_vec();
    sequence.extend(other);
    let expected = full_logits(&model, &sequence);
    let tail = &expected[3 * 40..];
    let got: Vec<f64> = got.as_slice().iter().map(|&x| x as f64).collect();
    let worst = relative_error(&got, tail);
    assert!(
        worst < 1e-6,
        "after truncate the logits differ by {worst} (relative)"
    );
    assert!(
        generator.truncate(7).is_err(),
        "cannot keep more than it holds"
    );
    generator.reset().unwrap();
    assert_eq!(generator.cached_len(), 0);
}

#[test]
fn generator_refuses_tokens_outside_the_vocabulary() {
    let mut generator = GptGenerator::new(Arc::new(tiny_gpt(DType::F32))).unwrap();
    let err = generator.extend(&[40]).unwrap_err().to_string();
    assert!(err.contains("vocabulary"), "{err}");
    assert!(generator.extend(&[]).is_err());
    assert_eq!(generator.vocab_size(), 40);
    assert_eq!(generator.context_length(), 12);
}

#[test]
fn kv_cache_makes_generation_faster() {
    // 192 tokens, one at a time: with the cache each step runs one token;
    // without it each step runs the whole prefix again.
    let config = GptConfig {
        context_length: 200,
        n_embd: 64,
        n_head: 4,
        ..tiny_config()
    };
    let model = Arc::new(Gpt::new(&config, DType::F32, &Device::cpu(), 1).unwrap());
    let tokens: Vec<u32> = (0..192).map(|i| (i * 7 % 40) as u32).collect();
    let start = std::time::Instant::now();
    let mut generator = GptGenerator::new(model.clone()).unwrap();
    for &t in &tokens {
        generator.extend(&[t]).unwrap();
    }
    let cached = start.elapsed();
    let start = std::time::Instant::now();
    for n in 1..=tokens.len() {
        let _g = no_grad();
        model.forward(&ids(&tokens[..n])).unwrap();
    }
    let uncached = start.elapsed();
    println!(
        "192 tokens: {:.1} ms with the KV cache, {:.1} ms recomputing the prefix ({:.1}x)",
        cached.as_secs_f64() * 1e3,
        uncached.as_secs_f64() * 1e3,
        uncached.as_secs_f64() / cached.as_secs_f64()
    );
    assert!(
        uncached > 3 * cached,
        "the cache should save most of the work"
    );
}

#[test]
fn kv_cache_changes_the_cost_not_the_result() {
    // The model without a cache (every step recomputes the prefix) and the
    // model with one give the same logits for every fed token, whether the
    // tokens come one at a time or in a chunk, and after a truncation.
    let model = Arc::new(tiny_gpt(DType::F32));
    let mut cached = GptGenerator::new(model.clone()).unwrap();
    let mut recomputing = RecomputingGenerator::new(model.clone());
    let feeds: [&[u32]; 4] = [&TOKENS[..3], &TOKENS[3..4], &TOKENS[4..7], &TOKENS[7..8]];
    for feed in feeds {
        let a = cached.extend(feed).unwrap();
        let b = recomputing.extend(feed).unwrap();
        assert_eq!((a.len(), b.len()), (feed.len(), feed.len()));
        let widen = |l: &chapter_08::Logits| -> Vec<f64> {
            l.as_slice().iter().map(|&x| x as f64).collect()
        };
        let err = relative_error(&widen(&a), &widen(&b));
        assert!(err < 2e-4, "cached and recomputed logits differ by {err}");
    }
    assert_eq!(recomputing.cached_len(), 8);
    recomputing.truncate(5).unwrap();
    cached.truncate(5).unwrap();
    let a = cached.extend(&TOKENS[8..10]).unwrap();
    let b = recomputing.extend(&TOKENS[8..10]).unwrap();
    let widen =
        |l: &chapter_08::Logits| -> Vec<f64> { l.as_slice().iter().map(|&x| x as f64).collect() };
    assert!(relative_error(&widen(&a), &widen(&b)) < 2e-4);
    // The same checks as the cached model's: nothing to add, too far back,
    // past the context.
    assert!(recomputing.extend(&[]).is_err());
    assert!(recomputing.truncate(100).is_err());
    assert!(recomputing.extend(&[40]).is_err());
    assert!(recomputing.extend(&TOKENS[..6]).is_err());
    assert_eq!(
        recomputing.cached_len(),
        7,
        "a refused extend keeps the sequence"
    );
}

/// `forward_last`'s logits `[1, 1, V]` and the last row of `forward_with`'s
/// `[1, T, V]`, both in the model's dtype, read as f64.
fn last_row_both_ways(model: &Gpt, tokens: &[u32], cache: bool) -> (Vec<f64>, Vec<f64>) {
    let _g = no_grad();
    let mut c1 = model.new_cache(1).unwrap();
    let mut c2 = model.new_cache(1).unwrap();
    if cache {
        // Some positions already cached, so the rest attend to them.
        model
            .forward_with(&ids(&tokens[..3]), Some(&mut c1), false)
            .unwrap();
        model
            .forward_with(&ids(&tokens[..3]), Some(&mut c2), false)
            .unwrap();
    }
    let rest = if cache { &tokens[3..] } else { tokens };
    let last = model
        .forward_last(&ids(rest), cache.then_some(&mut c1))
        .unwrap();
    let full = model
        .forward_with(&ids(rest), cache.then_some(&mut c2), false)
        .unwrap()
        .logits;
    let vocab = tiny_config().vocab_size;
    assert_eq!(last.dims(), &[1, 1, vocab]);
    assert_eq!(full.dims(), &[1, rest.len(), vocab]);
    if cache {
        assert_eq!(c1.len(), tokens.len(), "forward_last fills the cache too");
    }
    let full = full.to_vec_f64().unwrap();
    (
        last.to_vec_f64().unwrap(),
        full[full.len() - vocab..].to_vec(),
    )
}

#[test]
fn forward_last_is_the_last_row_of_the_full_logits() {
    for dtype in [DType::F32, DType::F64] {
        let model = tiny_gpt(dtype);
        for cache in [false, true] {
            let (last, full) = last_row_both_ways(&model, &TOKENS, cache);
            let err = relative_error(&last, &full);
            assert!(
                err <= 1e-6,
                "{dtype:?}, cache {cache}: relative error {err}"
            );
            // The rows are not all alike: the last one is really the last.
            let (_, first) = last_row_both_ways(&model, &TOKENS[..4], cache);
            assert!(relative_error(&first, &full) > 1e-3);
        }
    }
}

#[test]
fn extend_last_gives_the_last_row_of_extend_and_the_same_cache() {
    let model = Arc::new(tiny_gpt(DType::F32));
    let mut all = GptGenerator::new(model.clone()).unwrap();
    let mut last = GptGenerator::new(model).unwrap();
    for chunk in [&TOKENS[..6], &TOKENS[6..7], &TOKENS[7..]] {
        let a = all.extend(chunk).unwrap();
        let l = last.extend_last(chunk).unwrap();
        assert_eq!((a.len(), l.len()), (chunk.len(), 1));
        let (a, l): (Vec<f64>, Vec<f64>) = (
            a.last().iter().map(|&x| x as f64).collect(),
            l.last().iter().map(|&x| x as f64).collect(),
        );
        assert!(relative_error(&l, &a) <= 1e-6);
        assert_eq!(all.cached_len(), last.cached_len());
    }
    assert!(last.extend_last(&[]).is_err());
    assert!(last.extend_last(&[40]).is_err());
    assert_eq!(
        last.cached_len(),
        TOKENS.len(),
        "a refused call adds nothing"
    );
}
