//! Lesson: broadcasting's adjoint is summation. When `b: [3, 1]` is
//! broadcast against `a: [2, 3, 4]`, each element of `b` is read 2·4 times,
//! so its gradient is the sum of the 8 gradients it fed: `sum_to` reduces
//! the output gradient back to each input's own shape.
//! `cargo test -p chapter-03 broadcasting` runs these.

mod common;

use chapter_03::{RawTensor, Result, Tensor};
use common::*;
use proptest::prelude::*;

type BinaryFn = fn(&Tensor, &Tensor) -> Result<Tensor>;

/// The four broadcasting binary ops, by name.
const OPS: [(&str, BinaryFn); 4] = [
    ("add", Tensor::add),
    ("sub", Tensor::sub),
    ("mul", Tensor::mul),
    ("div", Tensor::div),
];

/// Runs `op(a, b).sum().backward()` and returns the two gradients' shapes.
fn grad_shapes(op: BinaryFn, a: &[usize], b: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let ta = Tensor::param(uniform(0.5, 2.0, a.to_vec(), 1)).unwrap();
    let tb = Tensor::param(uniform(0.5, 2.0, b.to_vec(), 2)).unwrap();
    op(&ta, &tb).unwrap().sum_all().unwrap().backward().unwrap();
    (ta.grad().unwrap().dims(), tb.grad().unwrap().dims())
}

#[test]
fn broadcasting_gradients_have_each_inputs_shape() {
    let pairs: [(&[usize], &[usize]); 6] = [
        (&[2, 3, 4], &[3, 1]),
        (&[4], &[2, 3, 4]),
        (&[], &[2, 3]),
        (&[2, 3], &[]),
        (&[2, 1, 4], &[3, 1]),
        (&[1, 1], &[5]),
    ];
    for (name, op) in OPS {
        for (a, b) in pairs {
            let (ga, gb) = grad_shapes(op, a, b);
            assert_eq!(
                (ga.as_slice(), gb.as_slice()),
                (a, b),
                "{name} with {a:?} and {b:?}"
            );
        }
    }
}

// ANCHOR: bias_gradient
#[test]
fn broadcasting_bias_gradient_is_the_column_sum() {
    // y = x + b with x: [2, 3], b: [3] — the bias of a linear layer.
    let x = leaf(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], (2, 3));
    let b = leaf(&[0.0, 0.0, 0.0], 3);
    let upstream = constant(&[1.0, 2.0, 3.0, 10.0, 20.0, 30.0], (2, 3));
    x.add(&b)
        .unwrap()
        .mul(&upstream)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_close(&grad_values(&b), &[11.0, 22.0, 33.0], 0.0);
    assert_close(&grad_values(&x), &values(&upstream), 0.0);
}
// ANCHOR_END: bias_gradient

#[test]
fn broadcasting_scalar_times_matrix_gradient_is_the_sum() {
    let s = leaf(&[2.0], ());
    let m = leaf(&[1.0, 2.0, 3.0, 4.0], (2, 2));
    s.mul(&m).unwrap().sum_all().unwrap().backward().unwrap();
    assert_close(&grad_values(&s), &[10.0], 0.0);
    assert_close(&grad_values(&m), &[2.0; 4], 0.0);
    assert_eq!(s.grad().unwrap().dims(), Vec::<usize>::new());
}

#[test]
fn broadcasting_keeps_size_one_dimensions_of_the_input() {
    // b: [3, 1] against a: [2, 3, 4] sums over the new leading dimension and
    // over the stretched last one, but keeps b's shape [3, 1].
    let a = Tensor::param(randn((2, 3, 4), 1)).unwrap();
    let b = leaf(&[1.0, 2.0, 3.0], (3, 1));
    a.mul(&b).unwrap().sum_all().unwrap().backward().unwrap();
    let av = values(&a);
    let expected: Vec<f64> = (0..3)
        .map(|j| {
            (0..2)
                .flat_map(|i| (0..4).map(move |k| (i, k)))
                .map(|(i, k)| av[i * 12 + j * 4 + k])
                .sum()
        })
        .collect();
    assert_close(&grad_values(&b), &expected, 1e-12);
}

#[test]
fn broadcasting_gradcheck_on_the_lesson_shapes() {
    let pairs: [(&[usize], &[usize]); 5] = [
        (&[2, 3, 4], &[3, 1]),
        (&[4], &[2, 3, 4]),
        (&[], &[2, 3]),
        (&[3, 1], &[]),
        (&[2, 1, 4], &[3, 1]),
    ];
    for (name, op) in OPS {
        for (a, b) in pairs {
            let inputs = [randn(a.to_vec(), 3), uniform(0.5, 2.0, b.to_vec(), 4)];
            let report = chapter_03::gradcheck(|x| op(&x[0], &x[1]), &inputs, Default::default());
            assert!(
                report.is_ok(),
                "{name} {a:?} {b:?}: {}",
                report.unwrap_err()
            );
        }
    }
}

#[test]
fn broadcasting_explicit_broadcast_to_and_sum_to_are_adjoint() {
    // ⟨broadcast(x), y⟩ = ⟨x, sum_to(y)⟩ for any x, y: the defining property.
    let x = Tensor::from_raw(randn((3, 1), 5));
    let y = Tensor::from_raw(randn((2, 3, 4), 6));
    let lhs = x
        .broadcast_to((2, 3, 4))
        .unwrap()
        .mul(&y)
        .unwrap()
        .sum_all()
        .unwrap();
    let rhs = x
        .mul(&y.sum_to(&[3, 1]).unwrap())
        .unwrap()
        .sum_all()
        .unwrap();
    assert_close(&values(&lhs), &values(&rhs), 1e-12);
    check(|x| x[0].broadcast_to((2, 3, 4)), [randn((3, 1), 7)]);
    check(|x| x[0].sum_to(&[3, 1]), [randn((2, 3, 4), 8)]);
}

// ANCHOR: shape_strategy
/// A pair of shapes that broadcast together: a full shape of rank 0..=3, and
/// for each operand a suffix of it in which any dimension may be 1.
fn broadcast_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(1usize..=3, 0..=3).prop_flat_map(|full| {
        let rank = full.len();
        let operand = move |full: Vec<usize>| {
            (0..=rank, prop::collection::vec(any::<bool>(), rank)).prop_map(move |(keep, ones)| {
                (rank - keep..rank)
                    .map(|d| if ones[d] { 1 } else { full[d] })
                    .collect::<Vec<usize>>()
            })
        };
        (operand(full.clone()), operand(full))
    })
}
// ANCHOR_END: shape_strategy

fn random_inputs(a: &[usize], b: &[usize], seed: u64) -> [RawTensor; 2] {
    // Denominators in [0.5, 2) keep div well away from its pole.
    [
        randn(a.to_vec(), seed),
        uniform(0.5, 2.0, b.to_vec(), seed + 1),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn broadcasting_backward_matches_gradcheck_for_random_shapes(
        (a, b) in broadcast_pair(),
        op in 0usize..4,
        seed in 0u64..1000,
    ) {
        let (name, f) = OPS[op];
        let inputs = random_inputs(&a, &b, seed);
        let report = chapter_03::gradcheck(|x| f(&x[0], &x[1]), &inputs, Default::default());
        prop_assert!(report.is_ok(), "{} {:?} {:?}: {}", name, a, b, report.unwrap_err());
        // And the gradients have the inputs' shapes.
        let (ga, gb) = grad_shapes(f, &a, &b);
        prop_assert_eq!((ga, gb), (a, b));
    }
}
