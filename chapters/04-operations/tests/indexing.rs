//! Lessons: indexing and its adjoints. A read at indexed positions
//! (`index_select`, `gather`) has as backward the scattered write that adds
//! the gradient back at the same positions (`index_add`, `scatter_add`), so
//! repeated indices accumulate. `cargo test -p chapter-04 --test indexing`
//! runs them; `cargo test -p chapter-04 gather` only the gather lessons.

mod common;
use chapter_02::Generator;
use chapter_03::{grad, gradcheck, BackwardOptions, GradcheckOptions, RawTensor, Shape, Tensor};
use chapter_04::prelude::*;
use common::*;
use proptest::prelude::*;

fn ids(values: &[i64], shape: impl Into<Shape>) -> Tensor {
    Tensor::from_vec(values.to_vec(), shape, &dev()).unwrap()
}

fn param(values: &[f64], shape: impl Into<Shape>) -> Tensor {
    Tensor::param(RawTensor::from_vec(values.to_vec(), shape, &dev()).unwrap()).unwrap()
}

// ---------------------------------------------------------------- index_select / index_add

#[test]
fn index_select_picks_rows_like_an_embedding_lookup() {
    let table = iota(&[4, 2]);
    let y = table.index_select(&ids(&[3, 0, 3], 3), 0).unwrap();
    assert_eq!(y.dims(), [3, 2]);
    assert_eq!(values(&y), [6.0, 7.0, 0.0, 1.0, 6.0, 7.0]);
    let cols = table.index_select(&ids(&[1], 1), -1).unwrap();
    assert_eq!(values(&cols), [1.0, 3.0, 5.0, 7.0]);
}

// ANCHOR: embedding_gradient
#[test]
fn index_select_backward_accumulates_repeated_ids() {
    let table = param(&[0.0; 8], (4, 2));
    let y = table.index_select(&ids(&[3, 0, 3], 3), 0).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    // Row 3 was looked up twice, row 0 once, rows 1 and 2 never.
    assert_eq!(
        values(&table.grad().unwrap()),
        [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 2.0, 2.0]
    );
    let i = ids(&[2, 2, 0, 1], 4);
    gradcheck(
        |x| x[0].index_select(&i, 1),
        &[randn(&[2, 3, 2], 1)],
        GradcheckOptions::default(),
    )
    .unwrap();
    gradcheck(
        |x| x[0].index_select(&i, -2),
        &[randn(&[3, 2], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}
// ANCHOR_END: embedding_gradient

#[test]
fn index_add_is_differentiable_in_both_inputs() {
    let base = iota(&[3, 2]);
    let src = t(&[10.0, 20.0, 30.0, 40.0], (2, 2));
    let y = base.index_add(&ids(&[2, 2], 2), &src, 0).unwrap();
    assert_eq!(values(&y), [0.0, 1.0, 2.0, 3.0, 4.0 + 40.0, 5.0 + 60.0]);
    let i = ids(&[0, 2, 0], 3);
    gradcheck(
        |x| x[0].index_add(&i, &x[1], -1),
        &[randn(&[2, 3], 1), randn(&[2, 3], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn index_select_second_derivative_goes_through_index_add() {
    // f = Σ (x[ids])³: ∂f/∂x = index_add(3 x[ids]²) and its derivative
    // again reads the same positions.
    let x = param(&[1.0, 2.0, 3.0], 3);
    let i = ids(&[2, 0, 2], 3);
    let f = x
        .index_select(&i, 0)
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
    assert_eq!(values(&g), [3.0, 0.0, 54.0]);
    let h = grad(&g.sum_all().unwrap(), &[&x], None, opts)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(values(&h), [6.0, 0.0, 36.0]);
}

// ---------------------------------------------------------------- gather / scatter_add

// ANCHOR: gather_example
#[test]
fn gather_picks_the_target_class_of_each_row() {
    // log-probabilities [batch = 3, classes = 4], targets [3, 1]
    let logp = iota(&[3, 4]);
    let y = logp.gather(&ids(&[2, 0, 3], (3, 1)), 1).unwrap();
    assert_eq!(y.dims(), [3, 1]);
    assert_eq!(values(&y), [2.0, 4.0, 11.0]);
    // Along dim 0: out[i][j] = x[ids[i][j]][j].
    let y0 = logp.gather(&ids(&[2, 1, 0, 0], (1, 4)), 0).unwrap();
    assert_eq!(values(&y0), [8.0, 5.0, 2.0, 3.0]);
}
// ANCHOR_END: gather_example

#[test]
fn gather_backward_is_scatter_add() {
    let x = param(&[0.0; 6], (2, 3));
    let y = x.gather(&ids(&[1, 1, 0, 2], (2, 2)), -1).unwrap();
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(&x.grad().unwrap()), [0.0, 2.0, 0.0, 1.0, 0.0, 1.0]);
    let i = ids(&[0, 2, 2, 1, 0, 0], (2, 3));
    gradcheck(
        |x| x[0].gather(&i, 1),
        &[randn(&[2, 4], 1)],
        GradcheckOptions::default(),
    )
    .unwrap();
    let i0 = ids(&[2, 0, 1, 1], (2, 2));
    gradcheck(
        |x| x[0].gather(&i0, 0),
        &[randn(&[3, 2], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn scatter_add_is_differentiable_in_self_and_src() {
    let base = t(&[0.0; 4], (1, 4));
    let y = base
        .scatter_add(&ids(&[1, 3, 1], (1, 3)), &t(&[1.0, 2.0, 3.0], (1, 3)), 1)
        .unwrap();
    assert_eq!(values(&y), [0.0, 4.0, 0.0, 2.0]);
    let i = ids(&[1, 0, 1, 2, 2, 0], (3, 2));
    gradcheck(
        |x| x[0].scatter_add(&i, &x[1], 0),
        &[randn(&[3, 2], 1), randn(&[3, 2], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- errors

#[test]
fn indexing_errors_name_the_op() {
    let x = iota(&[3, 2]);
    assert_out_of_range(
        &err(x.index_select(&ids(&[0, 5], 2), 0)),
        "index_select",
        5,
        3,
    );
    assert_out_of_range(&err(x.gather(&ids(&[-1, 0], (1, 2)), 0)), "gather", -1, 3);
    assert_out_of_range(
        &err(x.scatter_add(&ids(&[3, 0], (1, 2)), &t(&[1.0, 1.0], (1, 2)), 0)),
        "scatter_add",
        3,
        3,
    );
    assert_out_of_range(
        &err(x.index_add(&ids(&[0, 9], 2), &t(&[1.0; 6], (3, 2)), 1)),
        "index_add",
        9,
        2,
    );
    assert_eq!(
        err(x.index_select(&t(&[0.0], 1), 0)),
        "index_select: not supported for dtype f64"
    );
    assert_eq!(
        err(x.index_select(&ids(&[0], 1), 2)),
        "index_select: dimension 2 out of range for a tensor of shape [3, 2]"
    );
}

// ---------------------------------------------------------------- against loops

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gather_matches_explicit_loops(
        rows in 1..4usize, cols in 1..5usize, picks in 1..5usize, dim in 0..2usize, seed in any::<u64>(),
    ) {
        let x = iota(&[rows, cols]);
        let size = [rows, cols][dim];
        let shape = if dim == 0 { [picks, cols] } else { [rows, picks] };
        let mut g = Generator::new(seed);
        let n = shape[0] * shape[1];
        let raw_ids: Vec<i64> = (0..n).map(|_| g.uniform(0.0, size as f64) as i64).collect();
        let y = x.gather(&ids(&raw_ids, shape), dim).unwrap();
        for i in 0..shape[0] {
            for j in 0..shape[1] {
                let k = raw_ids[i * shape[1] + j] as usize;
                let expected = if dim == 0 { k * cols + j } else { i * cols + k };
                prop_assert_eq!(values(&y)[i * shape[1] + j], expected as f64);
            }
        }
        let i = ids(&raw_ids, shape);
        gradcheck(|x| x[0].gather(&i, dim), &[randn(&[rows, cols], seed)], GradcheckOptions::default()).unwrap();
    }
}
