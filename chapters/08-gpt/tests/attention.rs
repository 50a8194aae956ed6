//! Attention: the formula, the causal mask, heads, dropout, and gradients.

use chapter_02::{manual_seed, Tensor as RawTensor};
use chapter_03::{gradcheck, no_grad, DType, Device, GradcheckOptions, Tensor};
use chapter_04::prelude::*;
use chapter_05::{Linear, Module, ModuleExt};
use chapter_08::attention::{
    attention_weights, merge_heads, split_heads, AttentionOptions, CausalSelfAttention, WeightInit,
};
use chapter_08::{scaled_dot_product_attention, MultiheadAttention};

fn randn(dims: &[usize], dtype: DType, seed: u64) -> Tensor {
    manual_seed(seed);
    Tensor::from_raw(RawTensor::randn(0.0, 1.0, dims.to_vec(), dtype, &Device::cpu()).unwrap())
}

/// Attention written out with loops on the host: for each query, scores
/// against every allowed key, a softmax, and the weighted sum of values.
fn reference_attention(
    q: &[f64],
    k: &[f64],
    v: &[f64],
    tq: usize,
    tk: usize,
    d: usize,
    causal: bool,
) -> Vec<f64> {
    let mut out = vec![0.0; tq * d];
    for i in 0..tq {
        let visible = if causal { tk - tq + i + 1 } else { tk };
        let scores: Vec<f64> = (0..visible)
            .map(|j| (0..d).map(|c| q[i * d + c] * k[j * d + c]).sum::<f64>() / (d as f64).sqrt())
            .collect();
        let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
        let total: f64 = exps.iter().sum();
        for (j, e) in exps.iter().enumerate() {
            for c in 0..d {
                out[i * d + c] += e / total * v[j * d + c];
            }
        }
    }
    out
}

fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len());
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= tol, "element {i}: {x} vs {y}");
    }
}

#[test]
fn attention_matches_the_formula_written_out() {
    for causal in [false, true] {
        for (tq, tk) in [(5, 5), (2, 6)] {
            let (q, k, v) = (
                randn(&[1, 1, tq, 3], DType::F64, 1),
                randn(&[1, 1, tk, 3], DType::F64, 2),
                randn(&[1, 1, tk, 3], DType::F64, 3),
            );
            let opts = AttentionOptions {
                causal,
                ..Default::default()
            };
            let out = scaled_dot_product_attention(&q, &k, &v, &opts).unwrap();
            assert_eq!(out.dims(), [1, 1, tq, 3]);
            let expected = reference_attention(
                &q.to_vec_f64().unwrap(),
                &k.to_vec_f64().unwrap(),
                &v.to_vec_f64().unwrap(),
                tq,
                tk,
                3,
                causal,
            );
            assert_close(&out.to_vec_f64().unwrap(), &expected, 1e-12);
        }
    }
}

#[test]
fn causal_attention_cannot_see_the_future() {
    let (q, k, v) = (
        randn(&[2, 2, 6, 4], DType::F64, 4),
        randn(&[2, 2, 6, 4], DType::F64, 5),
        randn(&[2, 2, 6, 4], DType::F64, 6),
    );
    let opts = AttentionOptions {
        causal: true,
        ..Default::default()
    };
    let before = scaled_dot_product_attention(&q, &k, &v, &opts).unwrap();
    // Change the keys and values of the last two positions.
    let noise = randn(&[2, 2, 2, 4], DType::F64, 7);
    let k2 = k
        .data()
        .slice_assign(&[0..2, 0..2, 4..6, 0..4], &noise.data())
        .unwrap();
    let v2 = v
        .data()
        .slice_assign(&[0..2, 0..2, 4..6, 0..4], &noise.data())
        .unwrap();
    let after =
        scaled_dot_product_attention(&q, &Tensor::from_raw(k2), &Tensor::from_raw(v2), &opts)
            .unwrap();
    let first = |t: &Tensor| t.narrow(2, 0, 4).unwrap().to_vec_f64().unwrap();
    assert_eq!(
        first(&before),
        first(&after),
        "positions 0..4 must not depend on 4..6"
    );
    let last = |t: &Tensor| t.narrow(2, 4, 2).unwrap().to_vec_f64().unwrap();
    assert_ne!(last(&before), last(&after));
}

#[test]
fn causal_queries_are_the_last_positions_when_there_are_fewer_of_them() {
    // The KV cache's case: 2 new queries after 4 cached positions must give
    // the last 2 rows of attention over all 6.
    let (q, k, v) = (
        randn(&[1, 2, 6, 4], DType::F64, 8),
        randn(&[1, 2, 6, 4], DType::F64, 9),
        randn(&[1, 2, 6, 4], DType::F64, 10),
    );
    let opts = AttentionOptions {
        causal: true,
        ..Default::default()
    };
    let full = scaled_dot_product_attention(&q, &k, &v, &opts).unwrap();
    let tail = scaled_dot_product_attention(&q.narrow(2, 4, 2).unwrap(), &k, &v, &opts).unwrap();
    assert_close(
        &tail.to_vec_f64().unwrap(),
        &full.narrow(2, 4, 2).unwrap().to_vec_f64().unwrap(),
        1e-12,
    );
}

#[test]
fn attention_weights_are_a_distribution_over_visible_keys() {
    let (q, k) = (
        randn(&[1, 3, 5, 4], DType::F32, 11),
        randn(&[1, 3, 5, 4], DType::F32, 12),
    );
    let w = attention_weights(
        &q,
        &k,
        &AttentionOptions {
            causal: true,
            ..Default::default()
        },
    )
    .unwrap();
    let w = w.to_vec_f64().unwrap();
    for row in w.chunks(5).enumerate().map(|(r, row)| (r % 5, row)) {
        let (i, values) = row;
        assert!((values.iter().sum::<f64>() - 1.0).abs() < 1e-6);
        assert!(
            values[i + 1..].iter().all(|&x| x == 0.0),
            "row {i} looks ahead: {values:?}"
        );
    }
}

#[test]
fn a_custom_mask_hides_the_keys_it_marks() {
    let (q, k, v) = (
        randn(&[1, 1, 2, 4], DType::F64, 13),
        randn(&[1, 1, 3, 4], DType::F64, 14),
        randn(&[1, 1, 3, 4], DType::F64, 15),
    );
    // Hide key 1 from every query: the result is attention over keys 0 and 2.
    let mask = Tensor::from_vec(vec![0u8, 1, 0], vec![1, 3], &Device::cpu()).unwrap();
    let masked = scaled_dot_product_attention(
        &q,
        &k,
        &v,
        &AttentionOptions {
            mask: Some(&mask),
            ..Default::default()
        },
    )
    .unwrap();
    let keep = Tensor::from_vec(vec![0i64, 2], vec![2], &Device::cpu()).unwrap();
    let (k2, v2) = (
        k.index_select(&keep, 2).unwrap(),
        v.index_select(&keep, 2).unwrap(),
    );
    let direct = scaled_dot_product_attention(&q, &k2, &v2, &AttentionOptions::default()).unwrap();
    assert_close(
        &masked.to_vec_f64().unwrap(),
        &direct.to_vec_f64().unwrap(),
        1e-12,
    );
}

#[test]
fn attention_dropout_acts_only_in_training() {
    let (q, k, v) = (
        randn(&[1, 2, 8, 4], DType::F32, 16),
        randn(&[1, 2, 8, 4], DType::F32, 17),
        randn(&[1, 2, 8, 4], DType::F32, 18),
    );
    let plain = scaled_dot_product_attention(&q, &k, &v, &AttentionOptions::default()).unwrap();
    let eval = AttentionOptions {
        dropout_p: 0.5,
        training: false,
        ..Default::default()
    };
    assert_eq!(
        scaled_dot_product_attention(&q, &k, &v, &eval)
            .unwrap()
            .to_vec_f64()
            .unwrap(),
        plain.to_vec_f64().unwrap()
    );
    let train = AttentionOptions {
        dropout_p: 0.5,
        training: true,
        ..Default::default()
    };
    manual_seed(3);
    let a = scaled_dot_product_attention(&q, &k, &v, &train)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    assert_ne!(a, plain.to_vec_f64().unwrap());
    manual_seed(3);
    let b = scaled_dot_product_attention(&q, &k, &v, &train)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    assert_eq!(a, b, "the same seed draws the same dropout mask");
    let all = AttentionOptions {
        dropout_p: 1.0,
        training: true,
        ..Default::default()
    };
    let zero = scaled_dot_product_attention(&q, &k, &v, &all).unwrap();
    assert!(zero.to_vec_f64().unwrap().iter().all(|&x| x == 0.0));
}

#[test]
fn attention_refuses_mismatched_head_sizes() {
    let (q, k) = (
        randn(&[1, 1, 2, 4], DType::F32, 1),
        randn(&[1, 1, 2, 5], DType::F32, 2),
    );
    let err = scaled_dot_product_attention(&q, &k, &k, &AttentionOptions::default()).unwrap_err();
    assert!(err.to_string().contains("head size"), "{err}");
}

#[test]
fn heads_split_and_merge_back_to_the_same_tensor() {
    let x = randn(&[2, 3, 12], DType::F32, 19);
    let heads = split_heads(&x, 4).unwrap();
    assert_eq!(heads.dims(), [2, 4, 3, 3]);
    // Head 1 of position 2 is channels 3..6 of that position.
    let h = heads
        .narrow(1, 1, 1)
        .unwrap()
        .narrow(2, 2, 1)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    let c = x
        .narrow(1, 2, 1)
        .unwrap()
        .narrow(2, 3, 3)
        .unwrap()
        .to_vec_f64()
        .unwrap();
    assert_eq!(h, c);
    assert_eq!(
        merge_heads(&heads).unwrap().to_vec_f64().unwrap(),
        x.to_vec_f64().unwrap()
    );
}

#[test]
fn attention_gradients_pass_gradcheck() {
    let inputs = [[1usize, 2, 4, 3], [1, 2, 5, 3], [1, 2, 5, 3]];
    for causal in [false, true] {
        let raw: Vec<RawTensor> = inputs
            .iter()
            .enumerate()
            .map(|(i, d)| {
                randn(
                    if causal { &inputs[1] } else { d },
                    DType::F64,
                    20 + i as u64,
                )
                .data()
            })
            .collect();
        let opts = AttentionOptions {
            causal,
            ..Default::default()
        };
        gradcheck(
            |x| scaled_dot_product_attention(&x[0], &x[1], &x[2], &opts),
            &raw,
            GradcheckOptions::default(),
        )
        .unwrap_or_else(|e| panic!("causal = {causal}: {e}"));
    }
}

fn tiny_attention(dtype: DType, dropout: f64) -> CausalSelfAttention {
    let mut g = chapter_02::Generator::new(5);
    CausalSelfAttention::new(
        8,
        2,
        dropout,
        true,
        0.02,
        dtype,
        &Device::cpu(),
        &mut WeightInit::Normal(&mut g),
    )
    .unwrap()
}

#[test]
fn causal_self_attention_gradients_pass_gradcheck() {
    let attn = tiny_attention(DType::F64, 0.0);
    // Larger weights than GPT's 0.02 so the softmax is far from uniform.
    for (_, p) in attn.named_parameters() {
        p.set_data(p.data().affine(20.0, 0.1).unwrap()).unwrap();
    }
    let params: Vec<RawTensor> = attn.parameters().iter().map(|p| p.data()).collect();
    let x = randn(&[2, 4, 8], DType::F64, 30).data();
    let mut inputs = vec![x];
    inputs.extend(params);
    gradcheck(
        |t| {
            let layer = CausalSelfAttention {
                c_attn: chapter_08::LinearInOut::from_weights(t[1].clone(), Some(t[2].clone()))?,
                c_proj: chapter_08::LinearInOut::from_weights(t[3].clone(), Some(t[4].clone()))?,
                attn_dropout: chapter_05::Dropout::new(0.0)?,
                resid_dropout: chapter_05::Dropout::new(0.0)?,
                n_head: 2,
            };
            layer.forward(&t[0])
        },
        &inputs,
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn causal_self_attention_is_causal_and_keeps_its_shape() {
    let attn = tiny_attention(DType::F32, 0.0);
    let x = randn(&[2, 5, 8], DType::F32, 31);
    let y = attn.forward(&x).unwrap();
    assert_eq!(y.dims(), [2, 5, 8]);
    let prefix = attn.forward(&x.narrow(1, 0, 3).unwrap()).unwrap();
    assert_close(
        &prefix.to_vec_f64().unwrap(),
        &y.narrow(1, 0, 3).unwrap().to_vec_f64().unwrap(),
        1e-6,
    );
    let names: Vec<String> = attn
        .named_parameters()
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        [
            "c_attn.weight",
            "c_attn.bias",
            "c_proj.weight",
            "c_proj.bias"
        ]
    );
}

#[test]
fn multihead_attention_gradients_pass_gradcheck() {
    let x = randn(&[2, 3, 4], DType::F64, 40).data();
    let w = randn(&[12, 4], DType::F64, 41).data();
    let b = randn(&[12], DType::F64, 42).data();
    let ow = randn(&[4, 4], DType::F64, 43).data();
    let mask = chapter_04::shape::causal_mask(3, &Device::cpu()).unwrap();
    gradcheck(
        |t| {
            let mha = MultiheadAttention::from_weights(
                t[1].clone(),
                Some(t[2].clone()),
                Linear::from_weights(t[3].clone(), None),
                2,
                true,
            )?;
            let (out, weights) = mha.forward_attention(&t[0], &t[0], &t[0], Some(&mask), true)?;
            out.sum_all()?
                .add(&weights.unwrap().mul(&t[0].narrow(2, 0, 3)?)?.sum_all()?)
        },
        &[x, w, b, ow],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn multihead_attention_accepts_sequence_first_inputs() {
    let mha = MultiheadAttention::new(8, 2, true, 0.0, false, DType::F64, &Device::cpu()).unwrap();
    let x = randn(&[5, 2, 8], DType::F64, 44); // [T, B, E]
    let (out, weights) = mha.forward_attention(&x, &x, &x, None, true).unwrap();
    assert_eq!(out.dims(), [5, 2, 8]);
    assert_eq!(weights.unwrap().dims(), [2, 5, 5]);
    let batch_first = MultiheadAttention::from_weights(
        mha.in_proj_weight.clone(),
        mha.in_proj_bias.clone(),
        Linear::from_weights(mha.out_proj.weight.clone(), mha.out_proj.bias.clone()),
        2,
        true,
    )
    .unwrap();
    let _guard = no_grad();
    let y = batch_first.forward(&x.transpose(0, 1).unwrap()).unwrap();
    assert_close(
        &y.transpose(0, 1).unwrap().to_vec_f64().unwrap(),
        &out.to_vec_f64().unwrap(),
        1e-12,
    );
}
