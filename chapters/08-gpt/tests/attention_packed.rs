//! Causal self-attention as one operation straight from the fused QKV
//! projection (`causal_attention_packed`): its CPU kernels must give what
//! the chain of tensor operations gives (the operators' composites, run on
//! a device without kernels), its gradient must pass gradcheck, also to
//! second order, and `CausalSelfAttention` must compute the same thing
//! through it as through the KV-cache path.
//! `cargo test -p chapter-08 --test attention_packed`.

use chapter_02::dispatch::{call, dispatch_path};
use chapter_02::{CountingDevice, DeviceKind, DispatchPath, Generator, Operator};
use chapter_03::{
    grad, gradcheck, set_grad_enabled, BackwardOptions, DType, Device, GradcheckOptions, RawTensor,
    Tensor,
};
use chapter_04::prelude::*;
use chapter_05::Module;
use chapter_08::attention::{
    causal_attention_packed, merge_heads, split_heads, AttentionOptions, CausalSelfAttention,
    PackedAttention, PackedAttentionBackward, WeightInit,
};
use chapter_08::scaled_dot_product_attention;

fn randn(dims: &[usize], std: f64, dtype: DType, seed: u64) -> RawTensor {
    RawTensor::randn_with(
        0.0,
        std,
        dims.to_vec(),
        dtype,
        &Device::cpu(),
        &mut Generator::new(seed),
    )
    .unwrap()
}

fn values(t: &RawTensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

/// Every output of `op`, by the CPU kernel and by the composite (run on a
/// counting device, which has no kernels of its own).
fn kernel_and_composite<O: Operator>(
    op: &O,
    inputs: &[&RawTensor],
) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
    assert_eq!(
        dispatch_path::<O>(DeviceKind::CPU).unwrap(),
        DispatchPath::Kernel,
        "{} has a CPU kernel",
        op.name()
    );
    let counter = CountingDevice::new(Device::cpu());
    let elsewhere: Vec<RawTensor> = inputs
        .iter()
        .map(|t| t.to_device(counter.device()).unwrap())
        .collect();
    let refs: Vec<&RawTensor> = elsewhere.iter().collect();
    let run = |ts: &[&RawTensor]| -> Vec<Vec<f64>> {
        call(op, ts)
            .unwrap()
            .iter()
            .map(|out| {
                assert_eq!(out.dtype(), ts[0].dtype(), "{}", op.name());
                values(out)
            })
            .collect()
    };
    (run(inputs), run(&refs))
}

/// `|k − c| ≤ tol·(1 + |c|)` elementwise.
fn assert_agree(kernel: &[f64], composite: &[f64], tol: f64, what: &str) {
    assert_eq!(kernel.len(), composite.len(), "{what}");
    for (i, (&k, &c)) in kernel.iter().zip(composite).enumerate() {
        assert!(
            (k - c).abs() <= tol * (1.0 + c.abs()),
            "{what}: element {i}: kernel {k} vs composite {c}"
        );
    }
}

/// Batch, sequence length, heads, head size: ragged lengths, one head and
/// several, a batch larger than the number of cores.
const SHAPES: [(usize, usize, usize, usize); 5] = [
    (1, 1, 1, 4),
    (2, 7, 3, 5),
    (3, 13, 2, 8),
    (5, 33, 4, 3),
    (1, 64, 4, 32),
];

#[test]
fn packed_attention_kernels_match_their_composites() {
    for dtype in [DType::F64, DType::F32] {
        let tol = if dtype == DType::F64 { 1e-12 } else { 2e-5 };
        for (i, &(b, t, h, d)) in SHAPES.iter().enumerate() {
            let c = h * d;
            let scale = 1.0 / (d as f64).sqrt();
            // Scores of a few units, so the softmax is far from uniform.
            let qkv = randn(&[b, t, 3 * c], 1.5, dtype, 10 + i as u64);
            let what = format!("{dtype:?} B={b} T={t} H={h} d={d}");

            let fwd = PackedAttention { n_head: h, scale };
            let (kernel, composite) = kernel_and_composite(&fwd, &[&qkv]);
            assert_eq!(kernel.len(), 2, "y and P");
            assert_agree(&kernel[0], &composite[0], tol, &format!("y, {what}"));
            assert_agree(&kernel[1], &composite[1], tol, &format!("P, {what}"));

            let p = call(&fwd, &[&qkv]).unwrap().remove(1);
            let g = randn(&[b, t, c], 1.0, dtype, 50 + i as u64);
            let bwd = PackedAttentionBackward { n_head: h, scale };
            let (kernel, composite) = kernel_and_composite(&bwd, &[&qkv, &p, &g]);
            assert_agree(&kernel[0], &composite[0], tol, &format!("dqkv, {what}"));
        }
    }
}

#[test]
fn packed_attention_equals_sdpa_on_the_split_heads() {
    let (b, t, h, d) = (2, 9, 3, 4);
    let c = h * d;
    let qkv = Tensor::param(randn(&[b, t, 3 * c], 1.0, DType::F64, 3)).unwrap();
    let packed = causal_attention_packed(&qkv, h).unwrap();
    let heads = |at: usize| split_heads(&qkv.narrow(2, at, c).unwrap(), h).unwrap();
    let opts = AttentionOptions {
        causal: true,
        ..Default::default()
    };
    let chain = merge_heads(
        &scaled_dot_product_attention(&heads(0), &heads(c), &heads(2 * c), &opts).unwrap(),
    )
    .unwrap();
    assert_eq!(packed.dims(), vec![b, t, c]);
    assert_agree(&values(&packed.data()), &values(&chain.data()), 1e-13, "y");

    // The same gradient with respect to qkv, for a weighted sum of y.
    let w = Tensor::from_raw(randn(&[b, t, c], 1.0, DType::F64, 5));
    let grad_of = |y: &Tensor| {
        let loss = y.mul(&w).unwrap().sum_all().unwrap();
        grad(&loss, &[&qkv], None, BackwardOptions::default()).unwrap()[0]
            .clone()
            .unwrap()
            .data()
    };
    assert_agree(
        &values(&grad_of(&packed)),
        &values(&grad_of(&chain)),
        1e-13,
        "dqkv",
    );
}

#[test]
fn packed_attention_is_causal() {
    // Changing the last position's q, k and v leaves every earlier output
    // as it was.
    let (b, t, h, d) = (1, 6, 2, 3);
    let c = h * d;
    let qkv = randn(&[b, t, 3 * c], 1.0, DType::F64, 4);
    let mut changed = values(&qkv);
    for v in &mut changed[(t - 1) * 3 * c..] {
        *v += 1.0;
    }
    let changed = RawTensor::from_vec(changed, vec![b, t, 3 * c], &Device::cpu()).unwrap();
    let y0 = values(
        &causal_attention_packed(&Tensor::from_raw(qkv), h)
            .unwrap()
            .data(),
    );
    let y1 = values(
        &causal_attention_packed(&Tensor::from_raw(changed), h)
            .unwrap()
            .data(),
    );
    assert_eq!(y0[..(t - 1) * c], y1[..(t - 1) * c]);
    assert_ne!(y0[(t - 1) * c..], y1[(t - 1) * c..]);
}

#[test]
fn packed_attention_gradients_pass_gradcheck() {
    for &(b, t, h, d) in &SHAPES[..4] {
        let qkv = randn(&[b, t, 3 * h * d], 1.5, DType::F64, 7);
        gradcheck(
            |x| causal_attention_packed(&x[0], h),
            &[qkv],
            GradcheckOptions::default(),
        )
        .unwrap_or_else(|e| panic!("B={b} T={t} H={h} d={d}: {e}"));
    }
}

#[test]
fn packed_attention_second_order_gradcheck() {
    // The gradient of Σ (y ⊙ w) with respect to qkv, itself differentiated:
    // passes only if the create_graph backward is right.
    let (b, t, h, d) = (2, 5, 2, 3);
    let c = h * d;
    let w = Tensor::from_raw(randn(&[b, t, c], 1.0, DType::F64, 8));
    let df = |xs: &[Tensor]| -> chapter_02::Result<Tensor> {
        let _recording = set_grad_enabled(true);
        let x = if xs[0].requires_grad() {
            xs[0].clone()
        } else {
            Tensor::param(xs[0].data())?
        };
        let y = causal_attention_packed(&x, h)?.mul(&w)?.sum_all()?;
        let opts = BackwardOptions {
            retain_graph: true,
            create_graph: true,
        };
        Ok(grad(&y, &[&x], None, opts)?
            .remove(0)
            .expect("y depends on x"))
    };
    gradcheck(
        df,
        &[randn(&[b, t, 3 * c], 1.0, DType::F64, 9)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn packed_attention_refuses_a_width_that_is_not_three_heads() {
    let qkv = Tensor::from_raw(randn(&[1, 4, 10], 1.0, DType::F32, 1));
    let err = causal_attention_packed(&qkv, 2).unwrap_err().to_string();
    assert!(
        err.contains("causal_attention_packed") && err.contains("10"),
        "{err}"
    );
    let flat = Tensor::from_raw(randn(&[4, 12], 1.0, DType::F32, 1));
    let err = causal_attention_packed(&flat, 2).unwrap_err().to_string();
    assert!(err.contains("[4, 12]"), "{err}");
    let err = causal_attention_packed(&Tensor::from_raw(randn(&[1, 4, 12], 1.0, DType::F32, 1)), 0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("heads"), "{err}");
}

#[test]
fn causal_self_attention_gives_the_same_output_through_the_packed_op_and_the_cache_path() {
    // forward (packed) and forward_cached with an empty cache (the chain
    // of operations, keys and values written into the cache) agree.
    let mut g = Generator::new(5);
    let attn = CausalSelfAttention::new(
        12,
        3,
        0.0,
        true,
        0.5,
        DType::F64,
        &Device::cpu(),
        &mut WeightInit::Normal(&mut g),
    )
    .unwrap();
    let x = Tensor::from_raw(randn(&[2, 7, 12], 1.0, DType::F64, 11));
    let mut cache = chapter_08::KvCache::new(1, 2, 3, 16, 4, DType::F64, &Device::cpu()).unwrap();
    let cached = attn
        .forward_cached(&x, Some(cache.layer_mut(0).unwrap()))
        .unwrap();
    let packed = attn.forward(&x).unwrap();
    assert_agree(&values(&packed.data()), &values(&cached.data()), 1e-12, "y");
}
