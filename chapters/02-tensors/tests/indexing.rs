//! Lesson: indexing with index tensors, and joining tensors. `index_select`
//! and `gather` read at positions an `i64` tensor names; `index_add` and
//! `scatter_add` are their adjoints, adding back to those positions (so
//! repeated indices accumulate). `cat`, `stack` and `slice_assign` build
//! tensors from pieces. `cargo test -p chapter-02 indexing` runs these.

mod common;

use chapter_02::{DType, Generator, Tensor};
use common::*;
use proptest::prelude::*;

fn ids(v: &[i64]) -> Tensor {
    tensor(v, v.len())
}

// ANCHOR: index_select_lesson
#[test]
fn indexing_index_select_picks_rows_or_columns() {
    // x = [[0, 1, 2, 3],
    //      [4, 5, 6, 7],
    //      [8, 9, 10, 11]]
    let x = iota(&[3, 4], DType::F32);
    let rows = x.index_select(&ids(&[2, 0, 2]), 0).unwrap();
    assert_eq!(
        rows.to_vec2::<f32>().unwrap(),
        [
            [8.0, 9.0, 10.0, 11.0],
            [0.0, 1.0, 2.0, 3.0],
            [8.0, 9.0, 10.0, 11.0]
        ]
    );
    let cols = x.index_select(&ids(&[3, 3, 1]), -1).unwrap();
    assert_eq!(
        cols.to_vec2::<f32>().unwrap(),
        [[3.0, 3.0, 1.0], [7.0, 7.0, 5.0], [11.0, 11.0, 9.0]]
    );
    // From a transposed view: rows of x.t() are columns of x.
    let t = x.t().unwrap().index_select(&ids(&[1]), 0).unwrap();
    assert_eq!(t.to_vec::<f32>().unwrap(), [1.0, 5.0, 9.0]);
    assert_eq!(x.index_select(&ids(&[]), 0).unwrap().dims(), &[0, 4]);
}
// ANCHOR_END: index_select_lesson

#[test]
fn indexing_an_embedding_table_is_index_select() {
    // Token ids [2, 0] look up rows of a [vocab=3, dim=2] table.
    let table = tensor(&[0.1f32, 0.2, 1.1, 1.2, 2.1, 2.2], (3, 2));
    let e = table.index_select(&ids(&[2, 0]), 0).unwrap();
    assert_eq!(e.to_vec2::<f32>().unwrap(), [[2.1, 2.2], [0.1, 0.2]]);
}

#[test]
fn indexing_reads_views_where_they_start() {
    // A contiguous view that starts inside its storage (rows 1..3 of x) is
    // read in place, from its offset; a transposed view is read through its
    // strides. Both must give the rows of the view, not of the storage.
    let x = iota(&[4, 3], DType::F32); // rows [0,1,2], [3,4,5], [6,7,8], [9,10,11]
    let middle = x.narrow(0, 1, 2).unwrap(); // [[3,4,5],[6,7,8]]
    let picked = middle.index_select(&ids(&[1, 0, 1]), 0).unwrap();
    assert_eq!(
        picked.to_vec2::<f32>().unwrap(),
        [[6.0, 7.0, 8.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]]
    );
    let columns = x.t().unwrap().index_select(&ids(&[2]), 0).unwrap();
    assert_eq!(columns.to_vec2::<f32>().unwrap(), [[2.0, 5.0, 8.0, 11.0]]);
    let gathered = middle.gather(&tensor(&[2i64, 0], (2, 1)), 1).unwrap();
    assert_eq!(gathered.to_vec2::<f32>().unwrap(), [[5.0], [6.0]]);
}

#[test]
fn indexing_index_select_rejects_bad_indices() {
    let x = iota(&[3, 4], DType::F32);
    let e = x.index_select(&ids(&[0, 3]), 0).unwrap_err().to_string();
    assert_out_of_range(&e, "index_select", 3, 3);
    let e = x.index_select(&ids(&[-1]), 0).unwrap_err().to_string();
    assert_out_of_range(&e, "index_select", -1, 3);
    let e = x
        .index_select(&tensor(&[0.0f32], 1), 0)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "index_select: not supported for dtype f32");
    let e = x
        .index_select(&tensor(&[0i64, 1], (1, 2)), 0)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "index_select: index must be 1-D, got shape [1, 2]");
}

// ANCHOR: gather_lesson
#[test]
fn indexing_gather_picks_one_element_per_position() {
    // out[i][j] = t[i][ids[i][j]]  (dim = 1)
    let t = tensor(&[1.0f64, 2.0, 3.0, 4.0], (2, 2));
    let g = t.gather(&tensor(&[0i64, 0, 1, 0], (2, 2)), 1).unwrap();
    assert_eq!(g.to_vec2::<f64>().unwrap(), [[1.0, 1.0], [4.0, 3.0]]);
    // out[i][j] = t[ids[i][j]][j]  (dim = 0)
    let g = t.gather(&tensor(&[1i64, 0, 0, 0], (2, 2)), 0).unwrap();
    assert_eq!(g.to_vec2::<f64>().unwrap(), [[3.0, 2.0], [1.0, 2.0]]);
    // Picking each row's label: the heart of cross-entropy.
    let logits = iota(&[3, 4], DType::F32);
    let labels = tensor(&[3i64, 0, 2], (3, 1));
    let picked = logits.gather(&labels, 1).unwrap();
    assert_eq!(picked.to_vec::<f32>().unwrap(), [3.0, 4.0, 10.0]);
}
// ANCHOR_END: gather_lesson

#[test]
fn indexing_gather_rejects_bad_shapes_and_indices() {
    let t = tensor(&[1.0f64, 2.0, 3.0, 4.0], (2, 2));
    let e = t.gather(&ids(&[0, 1]), 1).unwrap_err().to_string();
    assert_eq!(
        e,
        "gather: shape mismatch [2, 2] vs [2] (index must have the same rank and be no larger outside dimension 1)"
    );
    let e = t
        .gather(&tensor(&[0i64, 2], (2, 1)), 1)
        .unwrap_err()
        .to_string();
    assert_out_of_range(&e, "gather", 2, 2);
}

// ANCHOR: scatter_add_lesson
#[test]
fn indexing_scatter_add_accumulates_repeated_indices() {
    // out[ids[i]] += src[i]: index 0 appears three times.
    let base = Tensor::zeros(3, DType::F32, &dev()).unwrap();
    let out = base
        .scatter_add(&ids(&[0, 2, 0, 0]), &tensor(&[1.0f32, 2.0, 3.0, 4.0], 4), 0)
        .unwrap();
    assert_eq!(out.to_vec::<f32>().unwrap(), [8.0, 0.0, 2.0]);
    assert_eq!(
        base.to_vec::<f32>().unwrap(),
        [0.0; 3],
        "base is not modified"
    );
    // 2-D, along dim 1: out[i][ids[i][j]] += src[i][j].
    let base = Tensor::zeros((2, 3), DType::I64, &dev()).unwrap();
    let ones = Tensor::ones((2, 3), DType::I64, &dev()).unwrap();
    let out = base
        .scatter_add(&tensor(&[0i64, 0, 2, 1, 1, 1], (2, 3)), &ones, 1)
        .unwrap();
    assert_eq!(out.to_vec2::<i64>().unwrap(), [[2, 0, 1], [0, 3, 0]]);
}
// ANCHOR_END: scatter_add_lesson

#[test]
fn indexing_index_add_accumulates_repeated_indices() {
    let base = Tensor::ones((3, 2), DType::F64, &dev()).unwrap();
    let src = tensor(&[1.0f64, 1.0, 2.0, 2.0, 3.0, 3.0], (3, 2));
    let out = base.index_add(&ids(&[0, 2, 0]), &src, 0).unwrap();
    assert_eq!(
        out.to_vec2::<f64>().unwrap(),
        [[5.0, 5.0], [1.0, 1.0], [3.0, 3.0]]
    );
    // Along dim 1, with a transposed source.
    let base = Tensor::zeros((2, 3), DType::F32, &dev()).unwrap();
    let src = tensor(&[1.0f32, 2.0, 10.0, 20.0], (2, 2)).t().unwrap(); // [[1, 10], [2, 20]]
    let out = base.index_add(&ids(&[2, 2]), &src, 1).unwrap();
    assert_eq!(
        out.to_vec2::<f32>().unwrap(),
        [[0.0, 0.0, 11.0], [0.0, 0.0, 22.0]]
    );
}

#[test]
fn indexing_adjoint_ops_reject_bad_arguments() {
    let base = Tensor::zeros((3, 2), DType::F32, &dev()).unwrap();
    let src = Tensor::ones((2, 2), DType::F32, &dev()).unwrap();
    let e = base
        .index_add(&ids(&[0, 3]), &src, 0)
        .unwrap_err()
        .to_string();
    assert_out_of_range(&e, "index_add", 3, 3);
    let e = base
        .index_add(&ids(&[0, 1, 2]), &src, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "index_add: shape mismatch [2, 2] vs [3, 2] (src must match base with the indexed dimension replaced by the index length)"
    );
    let e = base
        .scatter_add(
            &tensor(&[0i64, 5], (1, 2)),
            &src.narrow(0, 0, 1).unwrap(),
            0,
        )
        .unwrap_err()
        .to_string();
    assert_out_of_range(&e, "scatter_add", 5, 3);
    let e = base
        .scatter_add(&tensor(&[0i64, 1], (1, 2)), &src, 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "scatter_add: shape mismatch [2, 2] vs [1, 2] (src and index must have the same shape)"
    );
    let mask = Tensor::zeros(3, DType::U8, &dev()).unwrap();
    let e = mask
        .scatter_add(&ids(&[0]), &tensor(&[1u8], 1), 0)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "scatter_add: not supported for dtype u8");
    let e = base.index_add(
        &ids(&[0]),
        &Tensor::ones((1, 2), DType::F64, &dev()).unwrap(),
        0,
    );
    assert_eq!(
        e.unwrap_err().to_string(),
        "index_add: dtype mismatch f32 vs f64"
    );
}

// ANCHOR: cat_lesson
#[test]
fn indexing_cat_joins_along_an_existing_dimension() {
    let a = iota(&[2, 3], DType::F32); // [[0, 1, 2], [3, 4, 5]]
    let b = tensor(&[9.0f32, 9.0, 9.0], (1, 3));
    let c = Tensor::cat(&[&a, &b], 0).unwrap();
    assert_eq!(
        c.to_vec2::<f32>().unwrap(),
        [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [9.0, 9.0, 9.0]]
    );
    let d = tensor(&[7.0f32, 8.0], (2, 1));
    let c = Tensor::cat(&[&d, &a, &d], -1).unwrap();
    assert_eq!(
        c.to_vec2::<f32>().unwrap(),
        [[7.0, 0.0, 1.0, 2.0, 7.0], [8.0, 3.0, 4.0, 5.0, 8.0]]
    );
    // Inputs may be any views: here a transpose and a broadcast.
    let c = Tensor::cat(
        &[
            &a.t().unwrap(),
            &b.t().unwrap().broadcast_to((3, 2)).unwrap(),
        ],
        1,
    )
    .unwrap();
    assert_eq!(
        c.to_vec2::<f32>().unwrap(),
        [
            [0.0, 3.0, 9.0, 9.0],
            [1.0, 4.0, 9.0, 9.0],
            [2.0, 5.0, 9.0, 9.0]
        ]
    );
}
// ANCHOR_END: cat_lesson

#[test]
fn indexing_cat_errors_and_edge_cases() {
    let a = iota(&[2, 3], DType::F32);
    let b = iota(&[2, 4], DType::F32);
    let e = Tensor::cat(&[&a, &b], 0).unwrap_err().to_string();
    assert_eq!(
        e,
        "cat: shape mismatch [2, 3] vs [2, 4] (all dimensions except 0 must match)"
    );
    assert_eq!(Tensor::cat(&[&a, &b], 1).unwrap().dims(), &[2, 7]);
    assert_eq!(
        Tensor::cat(&[], 0).unwrap_err().to_string(),
        "cat: needs at least one tensor"
    );
    let e = Tensor::cat(&[&a, &iota(&[6], DType::F32)], 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "cat: shape mismatch [2, 3] vs [6] (all dimensions except 0 must match)"
    );
    let e = Tensor::cat(&[&a, &iota(&[2, 3], DType::F64)], 0)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "cat: dtype mismatch f32 vs f64");
    let empty = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    assert_eq!(
        values(&Tensor::cat(&[&empty, &a, &empty], 0).unwrap()),
        values(&a)
    );
    assert_eq!(values(&Tensor::cat(&[&a], 1).unwrap()), values(&a));
}

#[test]
fn indexing_stack_joins_along_a_new_dimension() {
    let a = iota(&[2, 3], DType::I64);
    let b = a
        .add(&Tensor::full(10.0, (), DType::I64, &dev()).unwrap())
        .unwrap();
    let s0 = Tensor::stack(&[&a, &b], 0).unwrap();
    assert_eq!(s0.dims(), &[2, 2, 3]);
    assert_eq!(
        s0.to_vec::<i64>().unwrap(),
        [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]
    );
    let s1 = Tensor::stack(&[&a, &b], 1).unwrap();
    assert_eq!(
        s1.to_vec::<i64>().unwrap(),
        [0, 1, 2, 10, 11, 12, 3, 4, 5, 13, 14, 15]
    );
    let last = Tensor::stack(&[&a, &b], -1).unwrap();
    assert_eq!(last.dims(), &[2, 3, 2]);
    assert_eq!(
        last.to_vec::<i64>().unwrap(),
        [0, 10, 1, 11, 2, 12, 3, 13, 4, 14, 5, 15]
    );
    assert_eq!(Tensor::stack(&[&a, &b], 2).unwrap().dims(), &[2, 3, 2]);
    let e = Tensor::stack(&[&a, &b], 3).unwrap_err().to_string();
    assert_eq!(
        e,
        "stack: dimension 3 out of range for a tensor of shape [2, 3]"
    );
    let e = Tensor::stack(&[&a, &a.t().unwrap()], 0)
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "stack: shape mismatch [2, 3] vs [3, 2] (all shapes must be equal)"
    );
}

#[test]
fn indexing_slice_assign_replaces_a_region_of_a_copy() {
    let x = Tensor::zeros((3, 4), DType::F32, &dev()).unwrap();
    let src = tensor(&[1.0f32, 2.0, 3.0, 4.0], (2, 2));
    let y = x.slice_assign(&[1..3, 0..2], &src).unwrap();
    assert_eq!(
        y.to_vec2::<f32>().unwrap(),
        [
            [0.0, 0.0, 0.0, 0.0],
            [1.0, 2.0, 0.0, 0.0],
            [3.0, 4.0, 0.0, 0.0]
        ]
    );
    assert_eq!(values(&x), [0.0; 12], "x is unchanged");
    // Fewer ranges than dims: the rest is taken whole. The source may be a view.
    let rows = tensor(&[5.0f32], (1, 1)).broadcast_to((2, 4)).unwrap();
    // (Clippy suspects `[1..3]` is a typo for a list 1, 2: here it is not.)
    #[allow(clippy::single_range_in_vec_init)]
    let y = x.slice_assign(&[1..3], &rows).unwrap();
    assert_eq!(values(&y.narrow(0, 1, 2).unwrap()), [5.0; 8]);
    assert_eq!(values(&y.narrow(0, 0, 1).unwrap()), [0.0; 4]);
    let e = x.slice_assign(&[0..2, 2..5], &src).unwrap_err().to_string();
    assert_eq!(
        e,
        "slice_assign: range 2..5 is out of bounds for dimension 1 of shape [3, 4]"
    );
    let e = x.slice_assign(&[0..3, 0..2], &src).unwrap_err().to_string();
    assert_eq!(
        e,
        "slice_assign: shape mismatch [3, 2] vs [2, 2] (region and source differ)"
    );
}

// ---------------------------------------------------------------------------
// Properties: gather against its definition, and the adjoint identities
// ⟨gather(x, i), y⟩ = ⟨x, scatter_add(0, i, y)⟩ (and the same for
// index_select / index_add), which is exactly why the backward pass of
// gather is a scatter_add.

fn dot(a: &Tensor, b: &Tensor) -> f64 {
    a.mul(b).unwrap().sum_all().unwrap().item().unwrap()
}

/// A source shape, a dim, and an index shape valid for gather along it.
fn gather_case() -> impl Strategy<Value = (Vec<usize>, usize, Vec<usize>)> {
    prop::collection::vec(1usize..=4, 1..=3)
        .prop_flat_map(|src| {
            let r = src.len();
            let ids_shape: Vec<_> = src.iter().map(|&s| 1..=s).collect();
            (Just(src), 0..r, ids_shape, 0usize..=5)
        })
        .prop_map(|(src, dim, mut ids_shape, dim_len)| {
            ids_shape[dim] = dim_len;
            (src, dim, ids_shape)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(150))]

    // ANCHOR: adjoint_property
    #[test]
    fn indexing_gather_and_scatter_add_are_adjoint(
        (src_shape, dim, ids_shape) in gather_case(),
        seed in any::<u64>(),
        scramble in any::<bool>(),
    ) {
        let mut g = Generator::new(seed);
        let n = src_shape[dim];
        let id_count: usize = ids_shape.iter().product();
        let id_values: Vec<f64> = (0..id_count).map(|_| g.below(n) as f64).collect();
        let idx = make(&id_values, &ids_shape, DType::I64, scramble);
        let x = Naive::random(&src_shape, seed);
        let y = make(&small_ints(id_values.len(), !seed), &ids_shape, DType::F64, !scramble);
        let xt = make(&x.data, &src_shape, DType::F64, scramble);

        // gather by the definition: replace coordinate `dim` by the index.
        let gathered = xt.gather(&idx, dim).unwrap();
        let expected = Naive::from_fn(&ids_shape, |i| {
            let mut at = i.to_vec();
            at[dim] = id_values[ravel(i, &ids_shape)] as usize;
            x.at(&at)
        });
        prop_assert_eq!(values(&gathered), expected.data);

        let scattered = xt.zeros_like().unwrap().scatter_add(&idx, &y, dim).unwrap();
        prop_assert_eq!(dot(&gathered, &y), dot(&xt, &scattered));
    }
    // ANCHOR_END: adjoint_property

    #[test]
    fn indexing_index_select_and_index_add_are_adjoint(
        src_shape in prop::collection::vec(1usize..=4, 1..=3),
        dim_pick in any::<usize>(),
        len in 0usize..=6,
        seed in any::<u64>(),
        scramble in any::<bool>(),
    ) {
        let dim = dim_pick % src_shape.len();
        let mut g = Generator::new(seed);
        let id_list: Vec<i64> = (0..len).map(|_| g.below(src_shape[dim]) as i64).collect();
        let idx = ids(&id_list);
        let x = make(&Naive::random(&src_shape, seed).data, &src_shape, DType::F64, scramble);
        let picked = x.index_select(&idx, dim).unwrap();
        // index_select is gather with the index broadcast along the other dims.
        let mut out_shape = src_shape.clone();
        out_shape[dim] = len;
        let xn = Naive { data: values(&x), shape: src_shape.clone() };
        let expected = Naive::from_fn(&out_shape, |i| {
            let mut at = i.to_vec();
            at[dim] = id_list[i[dim]] as usize;
            xn.at(&at)
        });
        prop_assert_eq!(values(&picked), expected.data);
        let y = make(&small_ints(picked.elem_count(), !seed), &out_shape, DType::F64, !scramble);
        let added = x.zeros_like().unwrap().index_add(&idx, &y, dim).unwrap();
        prop_assert_eq!(dot(&picked, &y), dot(&x, &added));
    }
}

// ANCHOR: slice_assign_in_place_lesson
#[test]
fn indexing_slice_assign_in_place_writes_without_a_copy() {
    // A preallocated [2, 4] buffer, filled one column at a time, as a KV
    // cache appends one token's keys per step.
    let mut cache = Tensor::zeros((2, 4), DType::F32, &dev()).unwrap();
    assert!(cache.is_storage_unique());
    for t in 0..4 {
        let column = tensor(&[t as f32, 10.0 + t as f32], (2, 1));
        let before = std::sync::Arc::as_ptr(cache.storage()) as *const u8;
        cache.slice_assign_(&[0..2, t..t + 1], &column).unwrap();
        let after = std::sync::Arc::as_ptr(cache.storage()) as *const u8;
        assert_eq!(before, after, "written in place");
    }
    assert_eq!(
        cache.to_vec2::<f32>().unwrap(),
        [[0.0, 1.0, 2.0, 3.0], [10.0, 11.0, 12.0, 13.0]]
    );
}

#[test]
#[allow(clippy::single_range_in_vec_init)] // one range: the leading dimension
fn indexing_slice_assign_in_place_copies_on_write_when_shared() {
    let mut x = iota(&[2, 3], DType::F32);
    let view = x.narrow(1, 0, 2).unwrap(); // shares x's storage
    assert!(!x.is_storage_unique());
    x.slice_assign_(&[0..1, 0..1], &tensor(&[100.0f32], (1, 1)))
        .unwrap();
    assert_eq!(values(&x), [100.0, 1.0, 2.0, 3.0, 4.0, 5.0]);
    assert_eq!(
        values(&view),
        [0.0, 1.0, 3.0, 4.0],
        "the view keeps its values"
    );
    // A strided view can be written in place too.
    let mut t = iota(&[3, 2], DType::F32).t().unwrap();
    t.slice_assign_(&[1..2], &tensor(&[-1.0f32, -2.0, -3.0], (1, 3)))
        .unwrap();
    assert_eq!(
        t.to_vec2::<f32>().unwrap(),
        [[0.0, 2.0, 4.0], [-1.0, -2.0, -3.0]]
    );
    let e = t
        .slice_assign_(&[0..3], &tensor(&[1.0f32], 1))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "slice_assign_: range 0..3 is out of bounds for dimension 0 of shape [2, 3]"
    );
}
// ANCHOR_END: slice_assign_in_place_lesson

#[test]
fn indexing_argsort_and_sort_are_stable_with_nan_last() {
    let x = tensor(&[3.0f32, f32::NAN, 1.0, 3.0, -2.0], 5);
    let ids = x.argsort(0, false).unwrap();
    assert_eq!(ids.to_vec::<i64>().unwrap(), [4, 2, 0, 3, 1]);
    let ids = x.argsort(0, true).unwrap();
    assert_eq!(
        ids.to_vec::<i64>().unwrap(),
        [1, 0, 3, 2, 4],
        "ties keep their order"
    );
    let m = tensor(&[5i64, 1, 4, 2, 8, 0], (2, 3));
    let (values_0, ids_0) = m.sort(0, true).unwrap();
    assert_eq!(values_0.to_vec2::<i64>().unwrap(), [[5, 8, 4], [2, 1, 0]]);
    assert_eq!(ids_0.to_vec2::<i64>().unwrap(), [[0, 1, 0], [1, 0, 1]]);
    let (values_1, _) = m.sort(-1, false).unwrap();
    assert_eq!(values_1.to_vec2::<i64>().unwrap(), [[1, 4, 5], [0, 2, 8]]);
}

#[test]
fn indexing_a_single_index_as_a_0d_tensor_selects_a_slice_of_size_one() {
    // As in PyTorch: `x.index_select(0, tensor(3))` is `x[3:4]`.
    let x = iota(&[5, 2], DType::F32);
    let three = tensor(&[3i64], ());
    let row = x.index_select(&three, 0).unwrap();
    assert_eq!(row.to_vec2::<f32>().unwrap(), [[6.0, 7.0]]);
    let back = Tensor::zeros((5, 2), DType::F32, &dev())
        .unwrap()
        .index_add(&three, &row, 0)
        .unwrap();
    assert_eq!(
        values(&back),
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 6.0, 7.0, 0.0, 0.0]
    );
}
