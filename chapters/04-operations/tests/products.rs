//! Lessons: products. `einsum` writes every product of tensors as letters
//! (`"bij,bjk->bik"`); its backward is again an einsum with the output
//! gradient in place of the operand. `matmul` broadcasts batch dimensions,
//! `bmm` does not, `tensordot` contracts named axes.
//! `cargo test -p chapter-04 einsum` runs the einsum lessons,
//! `cargo test -p chapter-04 matmul` the matrix-product ones.

mod common;
use chapter_03::{grad, gradcheck, BackwardOptions, GradcheckOptions, RawTensor, Tensor};
use chapter_04::prelude::*;
use common::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn assert_close(a: &[f64], b: &[f64]) {
    assert_eq!(a.len(), b.len(), "lengths differ: {a:?} vs {b:?}");
    for (x, y) in a.iter().zip(b) {
        assert!((x - y).abs() <= 1e-9 * (1.0 + y.abs()), "{a:?} vs {b:?}");
    }
}

/// `gradcheck` of an einsum in every operand, at random points.
fn check_einsum(eq: &str, shapes: &[&[usize]]) {
    let inputs: Vec<RawTensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| randn(s, i as u64 + 1))
        .collect();
    gradcheck(
        |x| einsum(eq, &x.iter().collect::<Vec<_>>()),
        &inputs,
        GradcheckOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{eq}: {e}"));
}

// ---------------------------------------------------------------- the naive reference

/// `einsum` by its definition: for every assignment of values to the
/// letters, multiply the operands' elements and add the product into the
/// output element that the output letters pick.
fn naive_einsum(
    subs: &[Vec<char>],
    output: &[char],
    operands: &[Vec<f64>],
    sizes: &BTreeMap<char, usize>,
) -> Vec<f64> {
    let mut letters: Vec<char> = subs.iter().flatten().copied().collect();
    letters.sort_unstable();
    letters.dedup();
    let flat = |word: &[char], value: &BTreeMap<char, usize>| {
        word.iter().fold(0, |acc, c| acc * sizes[c] + value[c])
    };
    let out_len: usize = output.iter().map(|c| sizes[c]).product();
    let mut out = vec![0.0; out_len];
    let total: usize = letters.iter().map(|c| sizes[c]).product();
    for mut n in 0..total {
        let mut value = BTreeMap::new();
        for c in letters.iter().rev() {
            value.insert(*c, n % sizes[c]);
            n /= sizes[c];
        }
        let product: f64 = subs
            .iter()
            .zip(operands)
            .map(|(s, x)| x[flat(s, &value)])
            .product();
        out[flat(output, &value)] += product;
    }
    out
}

// ---------------------------------------------------------------- einsum: forward

// ANCHOR: einsum_examples
#[test]
fn einsum_matrix_product_and_friends() {
    let a = iota(&[2, 3]);
    let b = iota(&[3, 2]);
    let ab = einsum("ij,jk->ik", &[&a, &b]).unwrap();
    assert_eq!(values(&ab), values(&a.matmul(&b).unwrap()));
    assert_eq!(values(&ab), [10.0, 13.0, 28.0, 40.0]);
    // Transpose, row sums, total, outer product, dot product.
    assert_eq!(
        values(&einsum("ij->ji", &[&a]).unwrap()),
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(values(&einsum("ij->i", &[&a]).unwrap()), [3.0, 12.0]);
    assert_eq!(values(&einsum("ij->", &[&a]).unwrap()), [15.0]);
    let (u, v) = (t(&[1.0, 2.0], 2), t(&[1.0, 10.0, 100.0], 3));
    assert_eq!(
        values(&einsum("i,j->ij", &[&u, &v]).unwrap()),
        [1.0, 10.0, 100.0, 2.0, 20.0, 200.0]
    );
    assert_eq!(values(&einsum("i,i->", &[&u, &u]).unwrap()), [5.0]);
    assert_eq!(
        einsum("i,i->", &[&u, &u]).unwrap().dims(),
        Vec::<usize>::new()
    );
}
// ANCHOR_END: einsum_examples

#[test]
fn einsum_repeated_subscripts_take_the_diagonal() {
    let m = iota(&[3, 3]);
    assert_eq!(values(&einsum("ii->i", &[&m]).unwrap()), [0.0, 4.0, 8.0]);
    assert_eq!(values(&einsum("ii->", &[&m]).unwrap()), [12.0]);
    // Implicit mode: no letter appears once, so the output is a scalar: the trace.
    assert_eq!(values(&einsum("ii", &[&m]).unwrap()), [12.0]);
    let x = iota(&[2, 3, 2]);
    // y[i, j] = x[i, j, i]
    assert_eq!(
        values(&einsum("iji->ij", &[&x]).unwrap()),
        [0.0, 2.0, 4.0, 7.0, 9.0, 11.0]
    );
    // A batch of traces, and a diagonal inside a product.
    let b = iota(&[2, 2, 2]);
    assert_eq!(values(&einsum("bii->b", &[&b]).unwrap()), [3.0, 11.0]);
    let v = t(&[1.0, 2.0, 3.0], 3);
    assert_eq!(
        values(&einsum("ii,i->i", &[&m, &v]).unwrap()),
        [0.0, 8.0, 24.0]
    );
}

#[test]
fn einsum_implicit_output_is_the_sorted_letters_that_appear_once() {
    let a = iota(&[2, 3]);
    let b = iota(&[3, 4]);
    assert_eq!(
        values(&einsum("ij,jk", &[&a, &b]).unwrap()),
        values(&einsum("ij,jk->ik", &[&a, &b]).unwrap())
    );
    // "ba" sorts to "ab": the implicit output of a transpose is... a transpose.
    assert_eq!(
        values(&einsum("ba", &[&a]).unwrap()),
        values(&einsum("ba->ab", &[&a]).unwrap())
    );
    assert_eq!(einsum("ba", &[&a]).unwrap().dims(), [3, 2]);
    // Upper case sorts before lower case, as in NumPy and PyTorch.
    assert_eq!(einsum("aB", &[&a]).unwrap().dims(), [3, 2]);
}

#[test]
fn einsum_batch_matmul_and_three_operands() {
    let a = Tensor::from_raw(randn(&[4, 2, 3], 1));
    let b = Tensor::from_raw(randn(&[4, 3, 5], 2));
    let y = einsum("bij,bjk->bik", &[&a, &b]).unwrap();
    assert_close(&values(&y), &values(&a.matmul(&b).unwrap()));
    // A chain of three matrices, and a bilinear form x^T A y.
    let (m1, m2, m3) = (iota(&[2, 3]), iota(&[3, 4]), iota(&[4, 2]));
    let chain = einsum("ij,jk,kl->il", &[&m1, &m2, &m3]).unwrap();
    assert_eq!(
        values(&chain),
        values(&m1.matmul(&m2).unwrap().matmul(&m3).unwrap())
    );
    let (x, y) = (t(&[1.0, 2.0], 2), t(&[1.0, 0.0, -1.0], 3));
    assert_eq!(values(&einsum("i,ij,j->", &[&x, &m1, &y]).unwrap()), [-6.0]);
    // A scalar operand has no subscripts.
    let s = Tensor::from_vec(vec![2.0f64], (), &dev()).unwrap();
    assert_eq!(values(&einsum(",i->i", &[&s, &x]).unwrap()), [2.0, 4.0]);
}

// ---------------------------------------------------------------- einsum: backward

#[test]
fn einsum_gradients_pass_gradcheck() {
    check_einsum("ij,jk->ik", &[&[2, 3], &[3, 4]]);
    check_einsum("bij,bjk->bik", &[&[2, 2, 3], &[2, 3, 2]]);
    check_einsum("ij->ji", &[&[2, 3]]);
    check_einsum("ij->", &[&[2, 3]]);
    check_einsum("i,j->ij", &[&[2], &[3]]);
    check_einsum("i,i->", &[&[4], &[4]]);
    check_einsum("ij,jk,kl->il", &[&[2, 3], &[3, 2], &[2, 2]]);
    check_einsum("ijk,ikl->jl", &[&[2, 2, 3], &[2, 3, 2]]);
    check_einsum("bhqd,bhkd->bhqk", &[&[1, 2, 3, 2], &[1, 2, 2, 2]]);
    check_einsum("ij,kj", &[&[2, 3], &[4, 3]]);
    // A letter only one operand has (j in "ij,k->ik") is summed away first.
    check_einsum("ij,k->ik", &[&[2, 3], &[2]]);
}

// ANCHOR: trace_gradient
#[test]
fn einsum_gradient_of_a_diagonal_is_embedded_in_zeros() {
    let m = Tensor::param(
        RawTensor::new(&[1.0f64; 9])
            .unwrap()
            .reshape((3, 3))
            .unwrap(),
    )
    .unwrap();
    einsum("ii->", &[&m]).unwrap().backward().unwrap();
    // d trace(M) / dM = I
    assert_eq!(
        values(&m.grad().unwrap()),
        [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    );
    check_einsum("ii->i", &[&[3, 3]]);
    check_einsum("iji->j", &[&[2, 3, 2]]);
    check_einsum("ii,ij->j", &[&[2, 2], &[2, 3]]);
}
// ANCHOR_END: trace_gradient

#[test]
fn einsum_second_derivative() {
    // y = A x, f = Σ y³. ∂f/∂x = Aᵀ(3y²); the derivative of Σ_j ∂f/∂x_j
    // with respect to x_m is Σ_i 6 y_i r_i A_im with r_i = Σ_j A_ij.
    let a_vals = [1.0, 2.0, -1.0, 0.5, 0.0, 3.0];
    let a = t(&a_vals, (2, 3));
    let x = Tensor::param(RawTensor::new(&[0.5f64, -1.0, 2.0]).unwrap()).unwrap();
    let f = einsum("ij,j->i", &[&a, &x])
        .unwrap()
        .powf(3.0)
        .unwrap()
        .sum_all()
        .unwrap();
    let opts = BackwardOptions {
        retain_graph: false,
        create_graph: true,
    };
    let g = grad(&f, &[&x], None, opts).unwrap().remove(0).unwrap();
    let h = grad(&g.sum_all().unwrap(), &[&x], None, opts)
        .unwrap()
        .remove(0)
        .unwrap();
    let xs = [0.5, -1.0, 2.0];
    let y: Vec<f64> = (0..2)
        .map(|i| (0..3).map(|j| a_vals[i * 3 + j] * xs[j]).sum())
        .collect();
    let r: Vec<f64> = (0..2)
        .map(|i| (0..3).map(|j| a_vals[i * 3 + j]).sum())
        .collect();
    let expected: Vec<f64> = (0..3)
        .map(|m| (0..2).map(|i| 6.0 * y[i] * r[i] * a_vals[i * 3 + m]).sum())
        .collect();
    assert_close(&values(&h), &expected);
}

// ---------------------------------------------------------------- einsum: errors

// ANCHOR: einsum_errors
#[test]
fn einsum_errors_say_what_is_wrong() {
    let a = iota(&[2, 3]);
    let b = iota(&[4, 3, 2]);
    assert_eq!(
        err(einsum("ij,jk->ik", &[&a, &b])),
        "einsum: operand 1 has 3 dimensions but the equation gives it 2 subscripts (\"jk\")"
    );
    assert_eq!(
        err(einsum("ij,ij->i", &[&a, &iota(&[2, 4])])),
        "einsum: subscript j has size 3 in operand 0 but size 4 in operand 1 (shapes [2, 3] and [2, 4])"
    );
    assert_eq!(
        err(einsum("ii->i", &[&a])),
        "einsum: subscript i is repeated in operand 0 (\"ii\") with sizes 2 and 3 (shape [2, 3])"
    );
    assert_eq!(
        err(einsum("ij,jk->ik", &[&a])),
        "einsum: the equation \"ij,jk->ik\" has 2 operands but 1 tensors were given"
    );
    assert_eq!(
        err(einsum("ij->ik", &[&a])),
        "einsum: output subscript k does not appear in any operand of \"ij->ik\""
    );
    assert_eq!(
        err(einsum("ij->ii", &[&a])),
        "einsum: output subscript i appears more than once in \"ij->ii\""
    );
    assert_eq!(
        err(einsum("i1->i", &[&a])),
        "einsum: invalid subscript '1' in \"i1->i\" (use letters a-z and A-Z)"
    );
    assert_eq!(
        err(einsum("...ij->ij", &[&a])),
        "einsum: ellipsis (...) is not supported; name every dimension with a letter"
    );
    assert_eq!(
        err(einsum("i->i->i", &[&a])),
        "einsum: more than one \"->\" in \"i->i->i\""
    );
    assert_eq!(err(einsum("", &[])), "einsum: needs at least one operand");
    let f32s = Tensor::from_vec(vec![1.0f32; 3], 3, &dev()).unwrap();
    assert_eq!(
        err(einsum("ij,j->i", &[&a, &f32s])),
        "einsum: dtype mismatch f64 vs f32"
    );
}
// ANCHOR_END: einsum_errors

// ---------------------------------------------------------------- matmul, bmm, tensordot

/// `[.., m, k] @ [.., k, n]` by three loops per batch element, for
/// contiguous inputs whose batch dimensions are already equal.
fn naive_matmul(a: &[f64], b: &[f64], batch: usize, m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; batch * m * n];
    for p in 0..batch {
        for i in 0..m {
            for j in 0..n {
                out[(p * m + i) * n + j] = (0..k)
                    .map(|l| a[(p * m + i) * k + l] * b[(p * k + l) * n + j])
                    .sum();
            }
        }
    }
    out
}

#[test]
fn matmul_broadcasts_batch_dimensions() {
    let a = Tensor::from_raw(randn(&[3, 1, 2, 4], 1));
    let b = Tensor::from_raw(randn(&[1, 5, 4, 6], 2));
    let y = a.matmul(&b).unwrap();
    assert_eq!(y.dims(), [3, 5, 2, 6]);
    // The reference sees explicitly expanded copies.
    let ea = values(&a.expand((3, 5, 2, 4)).unwrap().reshape((15, 2, 4)).unwrap());
    let eb = values(&b.expand((3, 5, 4, 6)).unwrap().reshape((15, 4, 6)).unwrap());
    assert_close(&values(&y), &naive_matmul(&ea, &eb, 15, 2, 4, 6));
    gradcheck(
        |x| x[0].matmul(&x[1]),
        &[randn(&[3, 1, 2, 4], 1), randn(&[1, 5, 4, 6], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn matmul_with_vectors_drops_the_added_dimension() {
    let cases: [(&[usize], &[usize], &[usize]); 5] = [
        (&[4], &[4], &[]),
        (&[4], &[4, 3], &[3]),
        (&[2, 4], &[4], &[2]),
        (&[4], &[2, 4, 3], &[2, 3]),
        (&[2, 3, 4], &[4], &[2, 3]),
    ];
    for (sa, sb, out) in cases {
        let (a, b) = (
            Tensor::from_raw(randn(sa, 1)),
            Tensor::from_raw(randn(sb, 2)),
        );
        let y = a.matmul(&b).unwrap();
        assert_eq!(y.dims(), out, "{sa:?} @ {sb:?}");
        // The same product as an einsum, letters for the vector cases.
        let ea = if sa.len() == 1 {
            "k"
        } else if sa.len() == 2 {
            "mk"
        } else {
            "bmk"
        };
        let eb = if sb.len() == 1 {
            "k"
        } else if sb.len() == 2 {
            "kn"
        } else {
            "bkn"
        };
        let eq = format!("{ea},{eb}");
        assert_close(&values(&y), &values(&einsum(&eq, &[&a, &b]).unwrap()));
        gradcheck(
            |x| x[0].matmul(&x[1]),
            &[randn(sa, 1), randn(sb, 2)],
            GradcheckOptions::default(),
        )
        .unwrap();
    }
}

#[test]
fn bmm_is_strict_about_shapes() {
    let a = Tensor::from_raw(randn(&[2, 3, 4], 1));
    let b = Tensor::from_raw(randn(&[2, 4, 5], 2));
    let y = bmm(&a, &b).unwrap();
    assert_eq!(y.dims(), [2, 3, 5]);
    assert_close(
        &values(&y),
        &naive_matmul(&values(&a), &values(&b), 2, 3, 4, 5),
    );
    gradcheck(
        |x| bmm(&x[0], &x[1]),
        &[randn(&[2, 3, 4], 1), randn(&[2, 4, 5], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(
        err(bmm(&a, &iota(&[4, 5]))),
        "bmm: expected two 3-D tensors [batch, m, k] and [batch, k, n], got [2, 3, 4] and [4, 5]"
    );
    assert_eq!(
        err(bmm(&a, &iota(&[1, 4, 5]))),
        "bmm: shape mismatch [2, 3, 4] vs [1, 4, 5] (batch sizes 2 and 1 differ)"
    );
    assert_eq!(
        err(bmm(&a, &iota(&[2, 3, 5]))),
        "bmm: shape mismatch [2, 3, 4] vs [2, 3, 5] (inner dimensions 4 and 3 differ)"
    );
}

#[test]
fn tensordot_contracts_named_axes() {
    let a = iota(&[2, 3, 4]);
    let b = iota(&[4, 3, 5]);
    let y = tensordot(&a, &b, &[1, 2], &[1, 0]).unwrap();
    assert_eq!(y.dims(), [2, 5]);
    let (va, vb) = (values(&a), values(&b));
    for i in 0..2 {
        for n in 0..5 {
            let mut s = 0.0;
            for j in 0..3 {
                for k in 0..4 {
                    s += va[(i * 3 + j) * 4 + k] * vb[(k * 3 + j) * 5 + n];
                }
            }
            assert_eq!(values(&y)[i * 5 + n], s);
        }
    }
    // No axes: the outer product.
    assert_eq!(
        tensordot(&iota(&[2]), &iota(&[3]), &[], &[])
            .unwrap()
            .dims(),
        [2, 3]
    );
    gradcheck(
        |x| tensordot(&x[0], &x[1], &[0], &[1]),
        &[randn(&[3, 2], 1), randn(&[2, 3], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(
        err(tensordot(&a, &b, &[0], &[0])),
        "tensordot: shape mismatch [2, 3, 4] vs [4, 3, 5] (axis 0 of size 2 vs axis 0 of size 4)"
    );
    assert_eq!(
        err(tensordot(&a, &b, &[0, 1], &[0])),
        "tensordot: 2 axes of a but 1 axes of b"
    );
    assert!(tensordot(&a, &b, &[3], &[0]).is_err());
}

// ---------------------------------------------------------------- random equations vs loops

/// A random einsum: 1 to 3 operands over the letters `a..d`, letters may
/// repeat within an operand, and the output is either implicit or a random
/// ordering of a random subset of the letters used.
#[derive(Debug, Clone)]
struct RandomEquation {
    subs: Vec<Vec<char>>,
    output: Option<Vec<char>>,
    sizes: BTreeMap<char, usize>,
}

impl RandomEquation {
    fn text(&self) -> String {
        let lhs: Vec<String> = self.subs.iter().map(|s| s.iter().collect()).collect();
        match &self.output {
            Some(o) => format!("{}->{}", lhs.join(","), o.iter().collect::<String>()),
            None => lhs.join(","),
        }
    }
    /// The output letters, with implicit mode resolved as NumPy does.
    fn output(&self) -> Vec<char> {
        self.output.clone().unwrap_or_else(|| {
            let mut count: BTreeMap<char, usize> = BTreeMap::new();
            for &c in self.subs.iter().flatten() {
                *count.entry(c).or_default() += 1;
            }
            count
                .into_iter()
                .filter(|&(_, n)| n == 1)
                .map(|(c, _)| c)
                .collect()
        })
    }
    fn shapes(&self) -> Vec<Vec<usize>> {
        self.subs
            .iter()
            .map(|s| s.iter().map(|c| self.sizes[c]).collect())
            .collect()
    }
}

fn equation_strategy(max_operands: usize) -> impl Strategy<Value = RandomEquation> {
    (
        prop::collection::vec(prop::collection::vec(0..4usize, 0..4), 1..=max_operands),
        prop::collection::vec(any::<bool>(), 4),
        any::<u64>(),
        any::<bool>(),
        prop::collection::vec(1..4usize, 4),
    )
        .prop_map(|(subs, keep, shuffle, implicit, sizes)| {
            let letter = |i: usize| (b'a' + i as u8) as char;
            let subs: Vec<Vec<char>> = subs
                .iter()
                .map(|s| s.iter().map(|&i| letter(i)).collect())
                .collect();
            let mut used: Vec<char> = (0..4)
                .map(letter)
                .filter(|c| subs.iter().flatten().any(|d| d == c))
                .collect();
            used.retain(|c| keep[(*c as u8 - b'a') as usize]);
            let mut s = shuffle;
            for i in (1..used.len()).rev() {
                used.swap(i, (s % (i as u64 + 1)) as usize);
                s /= i as u64 + 1;
            }
            let sizes = (0..4).map(|i| (letter(i), sizes[i])).collect();
            RandomEquation {
                subs,
                output: (!implicit).then_some(used),
                sizes,
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn einsum_random_two_operand_equations_match_loops(eq in equation_strategy(2)) {
        einsum_matches_loops(&eq)?;
    }

    #[test]
    fn einsum_random_equations_of_up_to_three_operands_match_loops(eq in equation_strategy(3)) {
        einsum_matches_loops(&eq)?;
    }
}

fn einsum_matches_loops(eq: &RandomEquation) -> std::result::Result<(), TestCaseError> {
    let shapes = eq.shapes();
    let inputs: Vec<RawTensor> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| randn(s, i as u64 + 10))
        .collect();
    let tensors: Vec<Tensor> = inputs.iter().cloned().map(Tensor::from_raw).collect();
    let y = einsum(&eq.text(), &tensors.iter().collect::<Vec<_>>()).unwrap();
    let output = eq.output();
    let out_dims: Vec<usize> = output.iter().map(|c| eq.sizes[c]).collect();
    prop_assert_eq!(y.dims(), out_dims, "{}", eq.text());
    let data: Vec<Vec<f64>> = inputs.iter().map(|x| x.to_vec_f64().unwrap()).collect();
    let expected = naive_einsum(&eq.subs, &output, &data, &eq.sizes);
    for (a, b) in values(&y).iter().zip(&expected) {
        prop_assert!(
            (a - b).abs() <= 1e-9 * (1.0 + b.abs()),
            "{}: {:?} vs {:?}",
            eq.text(),
            values(&y),
            expected
        );
    }
    gradcheck(
        |x| einsum(&eq.text(), &x.iter().collect::<Vec<_>>()),
        &inputs,
        GradcheckOptions::default(),
    )
    .map_err(|e| TestCaseError::fail(format!("{}: {e}", eq.text())))?;
    Ok(())
}
