//! Lesson: the matrix product. 2-D, batched, with broadcast batch
//! dimensions, with 1-D operands, and on transposed views that are never
//! copied. `cargo test -p chapter-02 matmul` runs these.

mod common;

use chapter_02::{DType, Generator, Tensor};
use common::*;
use proptest::prelude::*;

/// `out[.., i, j] = Σ_k a[.., i, k] · b[.., k, j]`, the batch dimensions
/// broadcast by the naive rule: the triple loop of the definition.
fn naive_matmul(a: &Naive, b: &Naive) -> Naive {
    let (ra, rb) = (a.shape.len(), b.shape.len());
    let (m, k, n) = (a.shape[ra - 2], a.shape[ra - 1], b.shape[rb - 1]);
    assert_eq!(k, b.shape[rb - 2]);
    let batch = naive_broadcast_shape(&a.shape[..ra - 2], &b.shape[..rb - 2]).unwrap();
    let mut out_shape = batch.clone();
    out_shape.extend([m, n]);
    // The index into an operand's batch dims for an output batch index.
    let pick = |shape: &[usize], out: &[usize]| -> Vec<usize> {
        let added = batch.len() - (shape.len() - 2);
        (0..shape.len() - 2)
            .map(|d| if shape[d] == 1 { 0 } else { out[d + added] })
            .collect()
    };
    Naive::from_fn(&out_shape, |idx| {
        let bi = &idx[..batch.len()];
        let (i, j) = (idx[batch.len()], idx[batch.len() + 1]);
        let (mut ia, mut ib) = (pick(&a.shape, bi), pick(&b.shape, bi));
        ia.extend([i, 0]);
        ib.extend([0, j]);
        (0..k)
            .map(|kk| {
                ia[ra - 1] = kk;
                ib[rb - 2] = kk;
                a.at(&ia) * b.at(&ib)
            })
            .sum()
    })
}

// ANCHOR: matmul_lesson
#[test]
fn matmul_of_two_matrices() {
    // [[1, 2, 3],   [[ 7,  8],     [[ 58,  64],
    //  [4, 5, 6]] @  [ 9, 10],  =   [139, 154]]
    //                [11, 12]]
    let a = tensor(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let b = tensor(&[7.0f32, 8.0, 9.0, 10.0, 11.0, 12.0], (3, 2));
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.to_vec2::<f32>().unwrap(), [[58.0, 64.0], [139.0, 154.0]]);
    // A transposed view goes straight to the kernel with swapped strides.
    let bt = tensor(&[7.0f32, 9.0, 11.0, 8.0, 10.0, 12.0], (2, 3))
        .t()
        .unwrap();
    assert!(!bt.is_contiguous());
    assert_eq!(values(&a.matmul(&bt).unwrap()), values(&c));
}
// ANCHOR_END: matmul_lesson

#[test]
fn matmul_batched_matches_each_matrix_product() {
    let a = iota(&[2, 2, 3], DType::F64);
    let b = iota(&[2, 3, 2], DType::F64);
    let c = a.matmul(&b).unwrap();
    assert_eq!(c.dims(), &[2, 2, 2]);
    for i in 0..2 {
        let ai = a.narrow(0, i, 1).unwrap().squeeze(0).unwrap();
        let bi = b.narrow(0, i, 1).unwrap().squeeze(0).unwrap();
        let ci = c.narrow(0, i, 1).unwrap().squeeze(0).unwrap();
        assert_eq!(values(&ai.matmul(&bi).unwrap()), values(&ci));
    }
    assert_eq!(
        values(&c),
        naive_matmul(&Naive::iota(&[2, 2, 3]), &Naive::iota(&[2, 3, 2])).data
    );
}

#[test]
fn matmul_broadcasts_batch_dimensions() {
    // [3, 1, 2, 4] @ [1, 5, 4, 6] -> [3, 5, 2, 6]: batch [3, 1] with [1, 5].
    let (na, nb) = (Naive::iota(&[3, 1, 2, 4]), Naive::iota(&[1, 5, 4, 6]));
    let c = na
        .tensor(DType::F64)
        .matmul(&nb.tensor(DType::F64))
        .unwrap();
    assert_eq!(c.dims(), &[3, 5, 2, 6]);
    assert_eq!(values(&c), naive_matmul(&na, &nb).data);
    // A plain matrix on one side is shared by every batch entry.
    let w = iota(&[4, 6], DType::F64);
    let c = na.tensor(DType::F64).matmul(&w).unwrap();
    assert_eq!(c.dims(), &[3, 1, 2, 6]);
    assert_eq!(values(&c), naive_matmul(&na, &Naive::iota(&[4, 6])).data);
}

// ANCHOR: matmul_vectors
#[test]
fn matmul_with_vectors_adds_then_removes_a_dimension() {
    let v = tensor(&[1.0f64, 2.0, 3.0], 3);
    let w = tensor(&[4.0f64, 5.0, 6.0], 3);
    let dot = v.matmul(&w).unwrap(); // [3] @ [3] -> [] (the dot product)
    assert_eq!((dot.rank(), dot.item().unwrap()), (0, 32.0));
    let m = iota(&[3, 2], DType::F64); // [[0, 1], [2, 3], [4, 5]]
    let vm = v.matmul(&m).unwrap(); // [3] @ [3, 2] -> [2]
    assert_eq!((vm.dims(), values(&vm)), (&[2][..], vec![16.0, 22.0]));
    let mv = m.t().unwrap().matmul(&v).unwrap(); // [2, 3] @ [3] -> [2]
    assert_eq!(values(&mv), [16.0, 22.0]);
    let batch = iota(&[4, 3, 2], DType::F64);
    assert_eq!(v.matmul(&batch).unwrap().dims(), &[4, 2]); // [3] @ [4, 3, 2]
    assert_eq!(batch.t().unwrap().matmul(&v).unwrap().dims(), &[4, 2]); // [4, 2, 3] @ [3]
}
// ANCHOR_END: matmul_vectors

#[test]
fn matmul_reads_broadcast_and_sliced_operands_in_place() {
    // Every row of `a` is the same stored row (row stride 0).
    let row = tensor(&[1.0f32, 2.0, 3.0], (1, 3));
    let a = row.broadcast_to((4, 3)).unwrap();
    let b = iota(&[3, 5], DType::F32);
    let c = a.matmul(&b).unwrap();
    let expected: Vec<f64> = naive_matmul(
        &Naive {
            shape: vec![1, 3],
            data: vec![1.0, 2.0, 3.0],
        },
        &Naive::iota(&[3, 5]),
    )
    .data;
    for r in 0..4 {
        assert_eq!(values(&c.narrow(0, r, 1).unwrap()), expected);
    }
    // Every other column of a wider matrix.
    let wide = iota(&[3, 10], DType::F32);
    let b2 = wide.slice(1, 0, 10, 2).unwrap();
    let c2 = a.matmul(&b2).unwrap();
    assert_eq!(
        values(&c2),
        values(&a.matmul(&b2.contiguous().unwrap()).unwrap())
    );
}

#[test]
fn matmul_with_empty_dimensions() {
    // k = 0: a sum of nothing, so zeros.
    let a = Tensor::zeros((2, 0), DType::F32, &dev()).unwrap();
    let b = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    let c = a.matmul(&b).unwrap();
    assert_eq!((c.dims(), values(&c)), (&[2, 3][..], vec![0.0; 6]));
    let a = Tensor::zeros((0, 4), DType::F64, &dev()).unwrap();
    assert_eq!(
        a.matmul(&iota(&[4, 3], DType::F64)).unwrap().dims(),
        &[0, 3]
    );
}

#[test]
fn matmul_errors_name_both_shapes() {
    let a = Tensor::zeros((2, 3), DType::F32, &dev()).unwrap();
    let b = Tensor::zeros((4, 5), DType::F32, &dev()).unwrap();
    assert_eq!(
        a.matmul(&b).unwrap_err().to_string(),
        "matmul: shape mismatch [2, 3] vs [4, 5] (inner dimensions 3 and 4 differ)"
    );
    let a3 = Tensor::zeros((2, 2, 3), DType::F32, &dev()).unwrap();
    let b3 = Tensor::zeros((5, 3, 4), DType::F32, &dev()).unwrap();
    assert_eq!(
        a3.matmul(&b3).unwrap_err().to_string(),
        "matmul: cannot broadcast [2, 2, 3] with [5, 3, 4]"
    );
    let i = Tensor::zeros((2, 2), DType::I64, &dev()).unwrap();
    assert_eq!(
        i.matmul(&i).unwrap_err().to_string(),
        "matmul: not supported for dtype i64"
    );
    let d = Tensor::zeros((3, 2), DType::F64, &dev()).unwrap();
    assert_eq!(
        a.matmul(&d).unwrap_err().to_string(),
        "matmul: dtype mismatch f32 vs f64"
    );
    let s = Tensor::scalar(1.0f32, &dev()).unwrap();
    assert_eq!(
        s.matmul(&a).unwrap_err().to_string(),
        "matmul: both arguments need at least 1 dimension, got [] and [2, 3]"
    );
}

#[test]
fn matmul_large_enough_to_use_the_blocked_kernel() {
    // Big enough for gemm's packing and (with threads) several
    // threads: 130 is not a multiple of any kernel tile.
    let mut g = Generator::new(3);
    let a = Tensor::randn_with(0.0, 1.0, (130, 70), DType::F64, &dev(), &mut g).unwrap();
    let b = Tensor::randn_with(0.0, 1.0, (70, 130), DType::F64, &dev(), &mut g).unwrap();
    let na = Naive {
        shape: vec![130, 70],
        data: values(&a),
    };
    let nb = Naive {
        shape: vec![70, 130],
        data: values(&b),
    };
    assert_close(
        &values(&a.matmul(&b).unwrap()),
        &naive_matmul(&na, &nb).data,
        1e-12,
    );
    let a32 = a.to_dtype(DType::F32).unwrap();
    let b32 = b.to_dtype(DType::F32).unwrap();
    assert_close(
        &values(&a32.matmul(&b32).unwrap()),
        &naive_matmul(&na, &nb).data,
        1e-4,
    );
}

#[test]
fn matmul_transposed_right_operand_is_repacked_exactly() {
    // `x · Wᵀ`, as a linear layer computes it: a column-major right operand,
    // large enough to be copied row-major first (m ≥ 32, k·n ≥ 4096), with
    // sizes that leave ragged 16 × 16 tiles and two halves of rows on two
    // threads. Small integers make every sum exact in f32 and f64.
    for dtype in [DType::F32, DType::F64] {
        for (m, k, n) in [(32, 64, 64), (45, 300, 257), (33, 17, 400)] {
            let (nx, nw) = (Naive::random(&[m, k], 1), Naive::random(&[n, k], 2));
            let x = nx.tensor(dtype);
            let w = nw.tensor(dtype);
            let expected = naive_matmul(&nx, &nw.transpose(0, 1));
            let got = x.matmul(&w.t().unwrap()).unwrap();
            assert_eq!(values(&got), expected.data, "{m}x{k}x{n} {dtype:?}");
        }
        // Batched, with the transposed weight broadcast over the batch (a
        // batch stride of 0) and read at an offset (a narrowed view).
        let nx = Naive::random(&[3, 40, 96], 3);
        let nw = Naive::random(&[70, 96], 4);
        let w = nw.tensor(dtype).narrow(0, 5, 64).unwrap().t().unwrap();
        let nw_view = Naive::from_fn(&[96, 64], |i| nw.at(&[i[1] + 5, i[0]]));
        let expected = naive_matmul(&nx, &nw_view);
        let got = nx.tensor(dtype).matmul(&w).unwrap();
        assert_eq!(values(&got), expected.data, "batched {dtype:?}");
    }
}

/// A stack of products each too small to split over threads, but large
/// together (attention's heads: here 48 of 64 × 32 × 64), goes to the
/// threads a matrix at a time. Each product still runs whole on one
/// thread, so the result is the same bit for bit on one thread or two, and
/// equal to each matrix multiplied alone; with a transposed right operand
/// (`Q·Kᵀ`) and with one matrix broadcast over the batch (which the
/// kernel turns into one taller product, below). (A lesson about
/// the CPU's threads: it runs on the CPU whatever `CANDLE_DEVICE` says.)
#[test]
fn matmul_stack_of_small_products_splits_by_matrix_without_changing_a_bit() {
    let cpu = chapter_02::Device::cpu();
    let mut g = Generator::new(7);
    let q = Tensor::randn_with(0.0, 1.0, (48, 64, 32), DType::F32, &cpu, &mut g).unwrap();
    let k = Tensor::randn_with(0.0, 1.0, (48, 64, 32), DType::F32, &cpu, &mut g).unwrap();
    let w = Tensor::randn_with(0.0, 1.0, (32, 64), DType::F32, &cpu, &mut g).unwrap();
    let run = |threads: usize| {
        on_threads(threads, || {
            let s = q.matmul(&k.t().unwrap()).unwrap();
            let shared = q.matmul(&w).unwrap();
            (values(&s), values(&shared))
        })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one, two, "the number of threads changed a product");
    let (s, shared) = two;
    for i in 0..48 {
        let qi = q.narrow(0, i, 1).unwrap().squeeze(0).unwrap();
        let ki = k.narrow(0, i, 1).unwrap().squeeze(0).unwrap();
        let alone = values(&qi.matmul(&ki.t().unwrap()).unwrap());
        assert_eq!(&s[i * 64 * 64..(i + 1) * 64 * 64], &alone[..], "head {i}");
        let alone = values(&qi.matmul(&w).unwrap());
        assert_eq!(
            &shared[i * 64 * 64..(i + 1) * 64 * 64],
            &alone[..],
            "shared, {i}"
        );
    }
}

/// A weight shared by every sequence of a `[batch, time, features]`
/// activation, the product every linear layer of chapter 08 runs. When the
/// sequences lie one after another in memory the kernel treats the stack as
/// one product with `batch · time` rows; when they do not (a transposed or
/// narrowed activation) it must fall back to one product per sequence. Both
/// give the definition's answer, here exactly, with small integers.
// ANCHOR: matmul_fold
#[test]
fn matmul_weight_shared_by_a_batch_is_one_taller_product() {
    for dtype in [DType::F32, DType::F64] {
        let x = Naive::random(&[5, 7, 6], 40);
        let w = Naive::random(&[6, 3], 41);
        let wt = operand(&w, dtype, 1); // stored transposed, like `Wᵀ`
        let cases: Vec<(&str, Naive, Tensor)> = vec![
            ("contiguous", x.clone(), x.tensor(dtype)),
            // [7, 5, 6] stored, read as [5, 7, 6]: sequences interleaved.
            (
                "transposed",
                x.clone(),
                x.transpose(0, 1).tensor(dtype).transpose(0, 1).unwrap(),
            ),
            // Every sequence shortened by one step: a gap between them.
            (
                "narrowed",
                x.slice(1, 0, 6, 1),
                x.tensor(dtype).narrow(1, 0, 6).unwrap(),
            ),
            // Every other sequence: a gap of a whole sequence.
            (
                "strided",
                x.slice(0, 0, 5, 2),
                x.tensor(dtype).slice(0, 0, 5, 2).unwrap(),
            ),
        ];
        for (name, naive, a) in cases {
            let expected = naive_matmul(&naive, &w).data;
            for b in [w.tensor(dtype), wt.clone()] {
                let c = a.matmul(&b).unwrap();
                assert_eq!(c.dims(), &naive_matmul(&naive, &w).shape[..], "{name}");
                assert_eq!(values(&c), expected, "{name}, {dtype:?}");
                // The same numbers as one sequence at a time.
                let alone: Vec<f64> = (0..naive.shape[0])
                    .flat_map(|i| {
                        values(
                            &a.narrow(0, i, 1)
                                .unwrap()
                                .squeeze(0)
                                .unwrap()
                                .matmul(&b)
                                .unwrap(),
                        )
                    })
                    .collect();
                assert_eq!(alone, expected, "{name}, one at a time");
            }
        }
    }
}
// ANCHOR_END: matmul_fold

/// An operand with the given logical values, stored one of three ways:
/// row-major, as the transpose of its last two dims, or scrambled.
fn operand(n: &Naive, dtype: DType, storage: u8) -> Tensor {
    let r = n.shape.len();
    match storage % 3 {
        0 => n.tensor(dtype),
        1 => n
            .transpose(r - 2, r - 1)
            .tensor(dtype)
            .transpose(-2, -1)
            .unwrap(),
        _ => scrambled(&n.data, &n.shape, dtype),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    // ANCHOR: matmul_property
    /// Random sizes (not multiples of the kernel's tiles), random broadcast
    /// batch shapes, operands stored transposed or scrambled: the product
    /// equals the triple loop, exactly, because small integers add exactly
    /// in any order.
    #[test]
    fn matmul_matches_naive_triple_loop(
        (m, k, n) in (1usize..=33, 0usize..=33, 1usize..=33),
        (batch_a, batch_b) in broadcastable_pair(),
        storage in (any::<u8>(), any::<u8>()),
        seed in any::<u64>(),
    ) {
        // Keep the batch small: at most its last two dims (which still
        // broadcast, since the rule works from the right).
        let last_two = |s: &[usize]| s[s.len().saturating_sub(2)..].to_vec();
        let (batch_a, batch_b) = (last_two(&batch_a), last_two(&batch_b));
        let mut sa = batch_a.clone();
        sa.extend([m, k]);
        let mut sb = batch_b.clone();
        sb.extend([k, n]);
        let na = Naive::random(&sa, seed);
        let nb = Naive::random(&sb, !seed);
        let expected = naive_matmul(&na, &nb);
        for dtype in [DType::F32, DType::F64] {
            let c = operand(&na, dtype, storage.0).matmul(&operand(&nb, dtype, storage.1)).unwrap();
            prop_assert_eq!(c.dims(), expected.shape.as_slice());
            prop_assert_eq!(values(&c), expected.data.clone());
        }
    }
    // ANCHOR_END: matmul_property

    /// With real random floats the order of additions matters, so compare
    /// with a tolerance that grows with k.
    #[test]
    fn matmul_of_random_floats_is_close_to_naive(
        (m, k, n) in (1usize..=48, 1usize..=96, 1usize..=48),
        storage in (any::<u8>(), any::<u8>()),
        seed in any::<u64>(),
    ) {
        let mut g = Generator::new(seed);
        let na = Naive::from_fn(&[m, k], |_| g.normal(0.0, 1.0));
        let nb = Naive::from_fn(&[k, n], |_| g.normal(0.0, 1.0));
        let expected = naive_matmul(&na, &nb).data;
        let (a, b) = (operand(&na, DType::F64, storage.0), operand(&nb, DType::F64, storage.1));
        let c64 = a.matmul(&b).unwrap();
        assert_close(&values(&c64), &expected, 1e-12 * k as f64);
        let (a, b) = (operand(&na, DType::F32, storage.0), operand(&nb, DType::F32, storage.1));
        let c32 = a.matmul(&b).unwrap();
        assert_close(&values(&c32), &expected, 1e-6 * k as f64);
    }
}
