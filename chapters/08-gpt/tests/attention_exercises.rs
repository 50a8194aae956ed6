//! Exercises for the attention page. Each exercise is a stub in this file
//! with a test marked `#[ignore]`: fill in the stub, then run
//! `cargo test -p chapter-08 --test attention_exercises -- --ignored`.

mod attention_exercises {
    use chapter_02::{manual_seed, Tensor as RawTensor};
    use chapter_03::{DType, Device, Result, Tensor};
    use chapter_04::prelude::*;
    use chapter_08::attention::AttentionOptions;
    use chapter_08::{scaled_dot_product_attention, GptConfig};

    // ANCHOR: exercise_multi_query
    /// Exercise 1 (multi-query attention, Shazeer 2019): every query head
    /// shares one head of keys and values, which shrinks the KV cache by
    /// the number of heads. `q: [B, H, T, d]`, `k`, `v: [B, 1, T, d]` →
    /// `[B, H, T, d]`, causal. Hint: a size-1 dimension can be expanded to
    /// `H` as a view.
    fn multi_query_attention(_q: &Tensor, _k: &Tensor, _v: &Tensor) -> Result<Tensor> {
        todo!("exercise: implement multi_query_attention")
    }
    // ANCHOR_END: exercise_multi_query

    // ANCHOR: exercise_window
    /// Exercise 2 (sliding-window attention, as in Mistral): a `u8` mask
    /// `[t, t]` that hides the future *and* every key more than `window − 1`
    /// positions back, so query `i` sees keys `i − window + 1 ..= i`.
    fn sliding_window_mask(_t: usize, _window: usize, _device: &Device) -> Result<Tensor> {
        todo!("exercise: implement sliding_window_mask")
    }
    // ANCHOR_END: exercise_window

    // ANCHOR: exercise_cache_bytes
    /// Exercise 3: how many bytes a full [`KvCache`](chapter_08::KvCache)
    /// for `config` holds, for `batch` sequences of `config.context_length`
    /// tokens in `dtype` (keys and values, every layer).
    fn kv_cache_bytes(_config: &GptConfig, _batch: usize, _dtype: DType) -> usize {
        todo!("exercise: implement kv_cache_bytes")
    }
    // ANCHOR_END: exercise_cache_bytes

    fn randn(dims: &[usize], seed: u64) -> Tensor {
        manual_seed(seed);
        Tensor::from_raw(
            RawTensor::randn(0.0, 1.0, dims.to_vec(), DType::F64, &Device::cpu()).unwrap(),
        )
    }

    #[test]
    #[ignore = "exercise: implement multi_query_attention in this file"]
    fn exercise_multi_query_attention_equals_repeated_heads() {
        let (q, k, v) = (
            randn(&[2, 4, 5, 3], 1),
            randn(&[2, 1, 5, 3], 2),
            randn(&[2, 1, 5, 3], 3),
        );
        let got = multi_query_attention(&q, &k, &v).unwrap();
        let opts = AttentionOptions {
            causal: true,
            ..Default::default()
        };
        let (k4, v4) = (
            k.repeat(&[1, 4, 1, 1]).unwrap(),
            v.repeat(&[1, 4, 1, 1]).unwrap(),
        );
        let expected = scaled_dot_product_attention(&q, &k4, &v4, &opts).unwrap();
        assert_eq!(got.dims(), [2, 4, 5, 3]);
        for (a, b) in got
            .to_vec_f64()
            .unwrap()
            .iter()
            .zip(expected.to_vec_f64().unwrap())
        {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    #[ignore = "exercise: implement sliding_window_mask in this file"]
    fn exercise_sliding_window_sees_only_recent_keys() {
        let (q, k, v) = (
            randn(&[1, 1, 6, 4], 4),
            randn(&[1, 1, 6, 4], 5),
            randn(&[1, 1, 6, 4], 6),
        );
        let mask = sliding_window_mask(6, 2, &Device::cpu()).unwrap();
        let opts = AttentionOptions {
            mask: Some(&mask),
            ..Default::default()
        };
        let out = scaled_dot_product_attention(&q, &k, &v, &opts).unwrap();
        // Query 4 sees keys 3 and 4 only.
        let one = |t: &Tensor, start, len| t.narrow(2, start, len).unwrap();
        let direct = scaled_dot_product_attention(
            &one(&q, 4, 1),
            &one(&k, 3, 2),
            &one(&v, 3, 2),
            &AttentionOptions::default(),
        )
        .unwrap();
        for (a, b) in one(&out, 4, 1)
            .to_vec_f64()
            .unwrap()
            .iter()
            .zip(direct.to_vec_f64().unwrap())
        {
            assert!((a - b).abs() < 1e-12);
        }
    }

    #[test]
    #[ignore = "exercise: implement kv_cache_bytes in this file"]
    fn exercise_gpt2_small_cache_holds_72_mebibytes() {
        assert_eq!(
            kv_cache_bytes(&GptConfig::gpt2_small(), 1, DType::F32),
            75_497_472
        );
        assert_eq!(
            kv_cache_bytes(&GptConfig::gpt2_small(), 4, DType::F64),
            8 * 75_497_472
        );
    }
}
