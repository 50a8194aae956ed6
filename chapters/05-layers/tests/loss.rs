//! Losses: `cargo test -p chapter-05 cross_entropy`, `nll_loss`, `mse_loss`,
//! `bce_with_logits`.

mod common;

use chapter_02::{manual_seed, DType};
use chapter_03::{grad, BackwardOptions, Tensor};
use chapter_04::prelude::*;
use chapter_05::loss::{
    binary_cross_entropy_with_logits, cross_entropy, mse_loss, nll_loss, CrossEntropyOptions,
    Reduction,
};
use common::*;

fn opts() -> CrossEntropyOptions {
    CrossEntropyOptions::default()
}

/// `−log softmax(x)[y]` for one row, computed directly in f64.
fn row_nll(row: &[f64], y: usize) -> f64 {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
    lse - row[y]
}

#[test]
fn cross_entropy_is_the_mean_negative_log_probability_of_the_target() {
    let logits = tensor(&[2.0, 1.0, 0.1, 0.5, 2.5, 0.3], (2, 3));
    let target = ids(&[0, 1], 2);
    let loss = cross_entropy(&logits, &target, &opts()).unwrap();
    assert_eq!(loss.dims(), Vec::<usize>::new());
    let expected = (row_nll(&[2.0, 1.0, 0.1], 0) + row_nll(&[0.5, 2.5, 0.3], 1)) / 2.0;
    assert!((loss.item().unwrap() - expected).abs() < 1e-15);
    // Uniform logits: log C.
    let flat = Tensor::zeros((4, 10), DType::F64, &dev()).unwrap();
    let loss = cross_entropy(&flat, &ids(&[3, 1, 4, 1], 4), &opts()).unwrap();
    assert!((loss.item().unwrap() - 10f64.ln()).abs() < 1e-15);
}

#[test]
fn cross_entropy_gradient_is_softmax_minus_onehot() {
    manual_seed(1);
    let logits = param(randn((4, 5)));
    let target = ids(&[0, 4, 2, 2], 4);
    cross_entropy(&logits, &target, &opts())
        .unwrap()
        .backward()
        .unwrap();
    let p = Tensor::from_raw(logits.data()).softmax(1).unwrap();
    let mut expected = values(&p);
    for (i, &y) in [0, 4, 2, 2].iter().enumerate() {
        expected[i * 5 + y] -= 1.0;
    }
    let expected: Vec<f64> = expected.iter().map(|v| v / 4.0).collect();
    assert_close(&values(&logits.grad().unwrap()), &expected, 1e-15, 1e-12);
    // One fused node in the graph, not a chain of ops.
    let loss = cross_entropy(&logits, &target, &opts()).unwrap();
    assert_eq!(loss.op_name(), Some("cross_entropy"));
}

#[test]
fn cross_entropy_matches_log_softmax_followed_by_nll_loss() {
    manual_seed(2);
    let x1 = param(randn((6, 4)));
    let x2 = param(x1.data());
    let target = ids(&[1, 0, 3, 3, 2, 0], 6);
    for reduction in [Reduction::Mean, Reduction::Sum, Reduction::None] {
        x1.zero_grad();
        x2.zero_grad();
        let o = CrossEntropyOptions {
            reduction,
            ..opts()
        };
        let fused = cross_entropy(&x1, &target, &o).unwrap();
        let composed =
            nll_loss(&x2.log_softmax(1).unwrap(), &target, reduction, Some(-100)).unwrap();
        assert_tensors_close(&fused, &composed, 1e-14);
        let w = Tensor::from_raw(randn(fused.dims()));
        fused
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        composed
            .mul(&w)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert_tensors_close(&x1.grad().unwrap(), &x2.grad().unwrap(), 1e-14);
    }
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let logits = param(tensor(&[1000.0, -1000.0, 999.0], (1, 3)).data());
    let loss = cross_entropy(&logits, &ids(&[2], 1), &opts()).unwrap();
    // lse − x₂ = 1000 + log(1 + e⁻¹) − 999.
    let exact = (1.0f64 + (-1.0f64).exp()).ln() + 1.0;
    assert!(
        (loss.item().unwrap() - exact).abs() < 1e-12,
        "{} vs {exact}",
        loss.item().unwrap()
    );
    loss.backward().unwrap();
    assert!(values(&logits.grad().unwrap())
        .iter()
        .all(|g| g.is_finite()));
    // f32, where the naive exp(1000) would be infinite.
    let x32 = Tensor::from_vec(vec![1000f32, -1000.0, 999.0], (1, 3), &dev()).unwrap();
    let l32 = cross_entropy(&x32, &ids(&[0], 1), &opts())
        .unwrap()
        .item()
        .unwrap();
    assert!(
        (l32 - (1.0f64 + (-1.0f64).exp()).ln()).abs() < 1e-6,
        "{l32}"
    );
}

#[test]
fn cross_entropy_ignores_masked_classes_with_minus_infinity_logits() {
    let logits = param(tensor(&[1.0, f64::NEG_INFINITY, 1.0], (1, 3)).data());
    let loss = cross_entropy(&logits, &ids(&[0], 1), &opts()).unwrap();
    assert!((loss.item().unwrap() - 2f64.ln()).abs() < 1e-15);
    loss.backward().unwrap();
    assert_close(
        &values(&logits.grad().unwrap()),
        &[-0.5, 0.0, 0.5],
        1e-15,
        1e-12,
    );
}

#[test]
fn cross_entropy_ignore_index_drops_targets_from_the_sum_and_the_count() {
    manual_seed(3);
    let logits = param(randn((4, 3)));
    let rows: Vec<Vec<f64>> = values(&logits).chunks(3).map(|r| r.to_vec()).collect();
    // Default ignore_index is PyTorch's -100.
    let loss = cross_entropy(&logits, &ids(&[2, -100, 0, -100], 4), &opts()).unwrap();
    let expected = (row_nll(&rows[0], 2) + row_nll(&rows[2], 0)) / 2.0;
    assert!((loss.item().unwrap() - expected).abs() < 1e-14);
    loss.backward().unwrap();
    let g = values(&logits.grad().unwrap());
    assert!(
        g[3..6].iter().chain(&g[9..12]).all(|&v| v == 0.0),
        "ignored rows get no gradient: {g:?}"
    );
    // An in-range ignore_index works the same way.
    let o = CrossEntropyOptions {
        ignore_index: Some(1),
        ..opts()
    };
    let loss = cross_entropy(&logits, &ids(&[1, 2, 1, 0], 4), &o).unwrap();
    let expected = (row_nll(&rows[1], 2) + row_nll(&rows[3], 0)) / 2.0;
    assert!((loss.item().unwrap() - expected).abs() < 1e-14);
    // Everything ignored: 0/0, as in PyTorch.
    assert!(cross_entropy(&logits, &ids(&[1, 1, 1, 1], 4), &o)
        .unwrap()
        .item()
        .unwrap()
        .is_nan());
}

#[test]
fn cross_entropy_label_smoothing_mixes_in_the_uniform_distribution() {
    manual_seed(4);
    let logits = param(randn((3, 5)));
    let rows: Vec<Vec<f64>> = values(&logits).chunks(5).map(|r| r.to_vec()).collect();
    let eps = 0.2;
    let o = CrossEntropyOptions {
        label_smoothing: eps,
        ignore_index: Some(-100),
        ..opts()
    };
    let target = [4usize, 0, 2];
    let loss = cross_entropy(&logits, &ids(&[4, -100, 2], 3), &o).unwrap();
    // (1 − ε)·nll + ε·mean over classes of −log p, over the two counted rows.
    let smoothed = |r: &[f64], y: usize| {
        (1.0 - eps) * row_nll(r, y) + eps * (0..5).map(|c| row_nll(r, c)).sum::<f64>() / 5.0
    };
    let expected = (smoothed(&rows[0], target[0]) + smoothed(&rows[2], target[2])) / 2.0;
    assert!((loss.item().unwrap() - expected).abs() < 1e-14);
    // Gradient: softmax − the smoothed target, for counted rows.
    loss.backward().unwrap();
    let p = values(&Tensor::from_raw(logits.data()).softmax(1).unwrap());
    let g = values(&logits.grad().unwrap());
    for (i, c) in [(0usize, 4usize), (2, 2)] {
        for j in 0..5 {
            let t = (1.0 - eps) * (j == c) as u8 as f64 + eps / 5.0;
            assert!((g[i * 5 + j] - (p[i * 5 + j] - t) / 2.0).abs() < 1e-14);
        }
    }
}

#[test]
fn cross_entropy_class_weights_scale_terms_and_the_mean_divisor() {
    manual_seed(5);
    let logits = param(randn((3, 3)));
    let rows: Vec<Vec<f64>> = values(&logits).chunks(3).map(|r| r.to_vec()).collect();
    let w = [0.5, 2.0, 1.5];
    let o = CrossEntropyOptions {
        weight: Some(tensor(&w, 3)),
        ..opts()
    };
    let target = [1usize, 2, 1];
    let loss = cross_entropy(&logits, &ids(&[1, 2, 1], 3), &o).unwrap();
    let num: f64 = (0..3)
        .map(|i| w[target[i]] * row_nll(&rows[i], target[i]))
        .sum();
    let den: f64 = target.iter().map(|&y| w[y]).sum();
    assert!((loss.item().unwrap() - num / den).abs() < 1e-14);
    // With smoothing too (PyTorch: smooth term weighted per class, same divisor).
    let eps = 0.1;
    let o = CrossEntropyOptions {
        weight: Some(tensor(&w, 3)),
        label_smoothing: eps,
        ..opts()
    };
    let loss = cross_entropy(&logits, &ids(&[1, 2, 1], 3), &o).unwrap();
    let smooth: f64 = (0..3)
        .map(|i| (0..3).map(|c| w[c] * row_nll(&rows[i], c)).sum::<f64>())
        .sum();
    let expected = (1.0 - eps) * num / den + eps / 3.0 * smooth / den;
    assert!((loss.item().unwrap() - expected).abs() < 1e-14);
}

#[test]
fn cross_entropy_takes_spatial_logits_n_c_d() {
    manual_seed(6);
    let logits = param(randn((2, 4, 3)));
    let target = ids(&[0, 3, 1, 2, 2, 0], (2, 3));
    let none = CrossEntropyOptions {
        reduction: Reduction::None,
        ..opts()
    };
    let per_position = cross_entropy(&logits, &target, &none).unwrap();
    assert_eq!(per_position.dims(), [2, 3]);
    let x = values(&logits);
    let t = [0usize, 3, 1, 2, 2, 0];
    for n in 0..2 {
        for d in 0..3 {
            let row: Vec<f64> = (0..4).map(|c| x[n * 12 + c * 3 + d]).collect();
            let got = values(&per_position)[n * 3 + d];
            assert!((got - row_nll(&row, t[n * 3 + d])).abs() < 1e-14);
        }
    }
    let mean = cross_entropy(&logits, &target, &opts()).unwrap();
    let avg = values(&per_position).iter().sum::<f64>() / 6.0;
    assert!((mean.item().unwrap() - avg).abs() < 1e-14);
}

#[test]
fn cross_entropy_accepts_probability_targets() {
    let logits = tensor(&[1.0, 2.0, 0.5, -1.0, 0.0, 3.0], (2, 3));
    let probs = tensor(&[0.2, 0.8, 0.0, 0.0, 0.5, 0.5], (2, 3));
    let loss = cross_entropy(&logits, &probs, &opts()).unwrap();
    let rows = [[1.0, 2.0, 0.5], [-1.0, 0.0, 3.0]];
    let expected = (0.2 * row_nll(&rows[0], 0)
        + 0.8 * row_nll(&rows[0], 1)
        + 0.5 * row_nll(&rows[1], 1)
        + 0.5 * row_nll(&rows[1], 2))
        / 2.0;
    assert!((loss.item().unwrap() - expected).abs() < 1e-14);
    // A one-hot probability target is the same as the class index.
    let onehot = tensor(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], (2, 3));
    let a = cross_entropy(&logits, &onehot, &opts())
        .unwrap()
        .item()
        .unwrap();
    let b = cross_entropy(&logits, &ids(&[1, 2], 2), &opts())
        .unwrap()
        .item()
        .unwrap();
    assert!((a - b).abs() < 1e-15);
}

#[test]
fn cross_entropy_takes_an_unbatched_row() {
    let logits = tensor(&[0.5, 1.5, -0.5], 3);
    let loss = cross_entropy(&logits, &ids(&[1], ()), &opts()).unwrap();
    assert!((loss.item().unwrap() - row_nll(&[0.5, 1.5, -0.5], 1)).abs() < 1e-15);
    let none = CrossEntropyOptions {
        reduction: Reduction::None,
        ..opts()
    };
    assert_eq!(
        cross_entropy(&logits, &ids(&[1], ()), &none)
            .unwrap()
            .dims(),
        Vec::<usize>::new()
    );
}

#[test]
fn cross_entropy_reports_bad_targets_by_value_and_shape() {
    let logits = Tensor::zeros((2, 3), DType::F32, &dev()).unwrap();
    let err = cross_entropy(&logits, &ids(&[0, 3], 2), &opts())
        .unwrap_err()
        .to_string();
    // The CPU checks the targets before any kernel runs and speaks of
    // targets and classes; a GPU finds the bad target inside its one-hot
    // kernel (reading the targets back would cost a transfer every step)
    // and names that kernel's index and size. Both name the value and the
    // number of classes.
    let on_host = err.contains("target 3") && err.contains("3 classes");
    let on_device = err.contains("index 3 is out of range") && err.contains("of size 3");
    assert!(on_host || on_device, "{err}");
    let err = cross_entropy(&logits, &ids(&[0, 1, 2], 3), &opts())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cross_entropy") && err.contains("[2, 3]") && err.contains("[3]"),
        "{err}"
    );
    let o = CrossEntropyOptions {
        ignore_index: None,
        ..opts()
    };
    assert!(cross_entropy(&logits, &ids(&[0, -100], 2), &o).is_err());
    let o = CrossEntropyOptions {
        weight: Some(tensor(&[1.0, 2.0], 2)),
        ..opts()
    };
    assert!(cross_entropy(&logits, &ids(&[0, 1], 2), &o).is_err());
}

#[test]
fn cross_entropy_gradcheck_f64_for_every_option() {
    manual_seed(7);
    let cases: Vec<(CrossEntropyOptions, Vec<usize>, Vec<i64>)> = vec![
        (opts(), vec![4, 5], vec![0, 4, 2, 2]),
        (
            CrossEntropyOptions {
                reduction: Reduction::Sum,
                ..opts()
            },
            vec![3, 4],
            vec![3, 0, 1],
        ),
        (
            CrossEntropyOptions {
                reduction: Reduction::None,
                ..opts()
            },
            vec![3, 4],
            vec![3, 0, 1],
        ),
        (
            CrossEntropyOptions {
                label_smoothing: 0.3,
                ..opts()
            },
            vec![4, 3],
            vec![0, -100, 2, 1],
        ),
        (
            CrossEntropyOptions {
                ignore_index: Some(2),
                ..opts()
            },
            vec![4, 3],
            vec![0, 2, 2, 1],
        ),
        (
            CrossEntropyOptions {
                weight: Some(tensor(&[0.3, 1.0, 2.5], 3)),
                label_smoothing: 0.1,
                ..opts()
            },
            vec![4, 3],
            vec![0, 2, 1, -100],
        ),
        (opts(), vec![2, 3, 2], vec![0, 2, 1, 1]),
    ];
    for (o, shape, target) in cases {
        let t_shape: Vec<usize> = if shape.len() == 3 {
            vec![shape[0], shape[2]]
        } else {
            vec![shape[0]]
        };
        let t = ids(&target, t_shape);
        check_gradients(|x| cross_entropy(&x[0], &t, &o), &[randn(shape)]);
    }
    // Probability targets.
    let probs = tensor(&[0.1, 0.6, 0.3, 0.5, 0.5, 0.0], (2, 3));
    check_gradients(|x| cross_entropy(&x[0], &probs, &opts()), &[randn((2, 3))]);
}

#[test]
fn cross_entropy_backward_is_differentiable_for_second_derivatives() {
    manual_seed(8);
    let create = BackwardOptions {
        create_graph: true,
        retain_graph: true,
    };
    let target = ids(&[1, 0, 2], 3);
    let o = CrossEntropyOptions {
        label_smoothing: 0.1,
        ..opts()
    };
    let hessian_vector = |fused: bool| {
        let x = param(tensor(&[0.1, -0.4, 0.9, 1.2, 0.0, -0.3, 0.5, 0.5, -1.0], (3, 3)).data());
        let loss = match fused {
            true => cross_entropy(&x, &target, &o).unwrap(),
            false => {
                let log_p = x.log_softmax(1).unwrap();
                let nll = nll_loss(&log_p, &target, Reduction::Mean, Some(-100)).unwrap();
                let smooth = log_p.mean_all().unwrap().neg().unwrap();
                nll.affine(0.9, 0.0)
                    .unwrap()
                    .add(&smooth.affine(0.1, 0.0).unwrap())
                    .unwrap()
            }
        };
        let g = grad(&loss, &[&x], None, create).unwrap()[0]
            .clone()
            .unwrap();
        g.mul(&g).unwrap().sum_all().unwrap().backward().unwrap();
        x.grad().unwrap()
    };
    assert_tensors_close(&hessian_vector(true), &hessian_vector(false), 1e-13);
}

#[test]
fn nll_loss_picks_the_target_log_probability() {
    let log_p = param(tensor(&[-0.1, -2.0, -3.0, -1.5, -0.5, -2.5], (2, 3)).data());
    let loss = nll_loss(&log_p, &ids(&[0, 2], 2), Reduction::Mean, Some(-100)).unwrap();
    assert!((loss.item().unwrap() - (0.1 + 2.5) / 2.0).abs() < 1e-15);
    loss.backward().unwrap();
    assert_eq!(
        values(&log_p.grad().unwrap()),
        [-0.5, 0.0, 0.0, 0.0, 0.0, -0.5]
    );
    let sum = nll_loss(&log_p, &ids(&[1, -100], 2), Reduction::Sum, Some(-100)).unwrap();
    assert!((sum.item().unwrap() - 2.0).abs() < 1e-15);
    let none = nll_loss(&log_p, &ids(&[1, 1], 2), Reduction::None, Some(1)).unwrap();
    assert_eq!(values(&none), [0.0, 0.0]);
}

#[test]
fn nll_loss_gradcheck_f64() {
    manual_seed(9);
    let t = ids(&[2, -100, 0, 1], 4);
    check_gradients(
        |x| nll_loss(&x[0], &t, Reduction::Mean, Some(-100)),
        &[randn((4, 3))],
    );
    let t = ids(&[0, 1, 1, 0], (2, 2));
    check_gradients(
        |x| nll_loss(&x[0], &t, Reduction::Sum, None),
        &[randn((2, 3, 2))],
    );
}

#[test]
fn mse_loss_is_the_mean_squared_difference() {
    let a = param(tensor(&[1.0, 2.0, 3.0, 4.0], (2, 2)).data());
    let b = param(tensor(&[0.0, 2.0, 5.0, 1.0], (2, 2)).data());
    let loss = mse_loss(&a, &b, Reduction::Mean).unwrap();
    assert!((loss.item().unwrap() - 14.0 / 4.0).abs() < 1e-15);
    loss.backward().unwrap();
    assert_eq!(values(&a.grad().unwrap()), [0.5, 0.0, -1.0, 1.5]);
    assert_eq!(values(&b.grad().unwrap()), [-0.5, 0.0, 1.0, -1.5]);
    assert_eq!(
        mse_loss(&a, &b, Reduction::Sum).unwrap().item().unwrap(),
        14.0
    );
    assert_eq!(
        values(&mse_loss(&a, &b, Reduction::None).unwrap()),
        [1.0, 0.0, 4.0, 9.0]
    );
    let err = mse_loss(&a, &tensor(&[1.0, 2.0], 2), Reduction::Mean)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("mse_loss") && err.contains("[2, 2]") && err.contains("[2]"),
        "{err}"
    );
}

#[test]
fn mse_loss_gradcheck_f64() {
    manual_seed(10);
    check_gradients(
        |x| mse_loss(&x[0], &x[1], Reduction::Mean),
        &[randn((3, 4)), randn((3, 4))],
    );
}

/// The textbook formula, fine for moderate logits.
fn naive_bce(x: f64, y: f64) -> f64 {
    let s = 1.0 / (1.0 + (-x).exp());
    -(y * s.ln() + (1.0 - y) * (1.0 - s).ln())
}

#[test]
fn bce_with_logits_matches_the_textbook_formula() {
    let (xs, ys) = ([0.3, -1.2, 2.5, 0.0], [1.0, 0.0, 0.3, 0.5]);
    let x = param(tensor(&xs, 4).data());
    let loss =
        binary_cross_entropy_with_logits(&x, &tensor(&ys, 4), Reduction::None, None).unwrap();
    let expected: Vec<f64> = xs.iter().zip(&ys).map(|(&x, &y)| naive_bce(x, y)).collect();
    assert_close(&values(&loss), &expected, 1e-15, 1e-13);
    loss.sum_all().unwrap().backward().unwrap();
    // ∂/∂x = σ(x) − y, also exactly at x = 0.
    let expected: Vec<f64> = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| 1.0 / (1.0 + (-x).exp()) - y)
        .collect();
    assert_close(&values(&x.grad().unwrap()), &expected, 1e-15, 1e-13);
    let mean =
        binary_cross_entropy_with_logits(&x, &tensor(&ys, 4), Reduction::Mean, None).unwrap();
    assert!((mean.item().unwrap() - values(&loss).iter().sum::<f64>() / 4.0).abs() < 1e-15);
}

#[test]
fn bce_with_logits_is_stable_for_huge_logits() {
    let x = param(tensor(&[100.0, -100.0, 800.0, -800.0], 4).data());
    let y = tensor(&[1.0, 0.0, 0.0, 1.0], 4);
    let loss = binary_cross_entropy_with_logits(&x, &y, Reduction::None, None).unwrap();
    let l = values(&loss);
    // Confidently right: e⁻¹⁰⁰ (not 0, not NaN); confidently wrong: 800.
    assert!(
        (l[0] - (-100f64).exp()).abs() < 1e-50 && (l[1] - (-100f64).exp()).abs() < 1e-50,
        "{l:?}"
    );
    assert_eq!(&l[2..], [800.0, 800.0]);
    loss.sum_all().unwrap().backward().unwrap();
    assert_close(
        &values(&x.grad().unwrap()),
        &[0.0, 0.0, 1.0, -1.0],
        1e-40,
        0.0,
    );
}

#[test]
fn bce_with_logits_pos_weight_scales_the_positive_term() {
    let (xs, ys, pw) = ([0.4, -0.7, 1.1, 0.2], [1.0, 0.0, 1.0, 0.6], [3.0, 0.5]);
    let x = tensor(&xs, (2, 2));
    let loss = binary_cross_entropy_with_logits(
        &x,
        &tensor(&ys, (2, 2)),
        Reduction::None,
        Some(&tensor(&pw, 2)),
    )
    .unwrap();
    let expected: Vec<f64> = (0..4)
        .map(|i| {
            let s = 1.0 / (1.0 + (-xs[i]).exp());
            -(pw[i % 2] * ys[i] * s.ln() + (1.0 - ys[i]) * (1.0 - s).ln())
        })
        .collect();
    assert_close(&values(&loss), &expected, 1e-15, 1e-13);
}

#[test]
fn bce_with_logits_gradcheck_f64() {
    manual_seed(11);
    let y = Tensor::from_raw(randn((3, 4)).sigmoid().unwrap());
    check_gradients(
        |x| binary_cross_entropy_with_logits(&x[0], &y, Reduction::Mean, None),
        &[randn((3, 4))],
    );
    // Gradients for logits, target and pos_weight together.
    let y_raw = randn((3, 4)).sigmoid().unwrap();
    let pw_raw = randn(4).abs().unwrap().add_scalar(0.5).unwrap();
    check_gradients(
        |t| binary_cross_entropy_with_logits(&t[0], &t[1], Reduction::Sum, Some(&t[2])),
        &[randn((3, 4)), y_raw, pw_raw],
    );
}
