//! Lesson: a view is a new (shape, strides, offset) over the same storage.
//! Transpose, permute, slice, narrow, broadcast, squeeze and (often)
//! reshape copy nothing. `cargo test -p chapter-02 view` runs these.

mod common;

use chapter_02::{CpuStorage, DType, Generator, Layout, Shape, Tensor};
use common::*;
use proptest::prelude::*;

#[test]
fn view_layout_of_a_fresh_tensor_is_row_major() {
    let x = iota(&[2, 3, 4], DType::F32);
    assert_eq!(x.layout().strides(), &[12, 4, 1]);
    assert_eq!(x.layout().offset(), 0);
    assert!(x.is_contiguous());
    assert_eq!(Shape::from((2, 3, 4)).contiguous_strides(), [12, 4, 1]);
    assert_eq!(Shape::from(()).contiguous_strides(), Vec::<usize>::new());
    assert_eq!(Shape::from(()).elem_count(), 1);
}

// ANCHOR: transpose_lesson
#[test]
fn view_transpose_swaps_strides_and_copies_nothing() {
    // x = [[0, 1, 2],
    //      [3, 4, 5]]   shape [2, 3], strides [3, 1]
    let x = iota(&[2, 3], DType::F32);
    let xt = x.t().unwrap();
    assert_eq!(xt.dims(), &[3, 2]);
    assert_eq!(xt.layout().strides(), &[1, 3]);
    assert!(xt.same_storage(&x));
    assert!(!xt.is_contiguous());
    assert_eq!(
        xt.to_vec2::<f32>().unwrap(),
        [[0.0, 3.0], [1.0, 4.0], [2.0, 5.0]]
    );
    // Making it contiguous is the copy we avoided until now.
    let c = xt.contiguous().unwrap();
    assert!(c.is_contiguous() && !c.same_storage(&x));
    assert_eq!(c.layout().strides(), &[2, 1]);
}
// ANCHOR_END: transpose_lesson

#[test]
fn view_transpose_accepts_negative_dims_and_needs_two_for_t() {
    let x = iota(&[2, 3, 4], DType::F64);
    let a = x.transpose(0, -1).unwrap();
    assert_eq!(a.dims(), &[4, 3, 2]);
    assert_eq!(a.layout().strides(), &[1, 4, 12]);
    assert_eq!(x.t().unwrap().dims(), &[2, 4, 3]);
    let e = iota(&[3], DType::F32).t().unwrap_err();
    assert_eq!(
        e.to_string(),
        "t: needs at least 2 dimensions, got shape [3]"
    );
}

#[test]
fn view_permute_reorders_dims_and_rejects_non_permutations() {
    let x = iota(&[2, 3, 4], DType::F32);
    let p = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(p.dims(), &[4, 2, 3]);
    assert_eq!(p.layout().strides(), &[1, 12, 4]);
    // p[i][j][k] = x[j][k][i]
    let (pv, xv) = (values(&p), values(&x));
    assert_eq!(
        pv[ravel(&[3, 1, 2], &[4, 2, 3])],
        xv[ravel(&[1, 2, 3], &[2, 3, 4])]
    );
    for bad in [&[0, 0, 1][..], &[0, 1], &[0, 1, 3]] {
        let e = x.permute(bad).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("permute: {bad:?} is not a permutation of the 3 dimensions of shape [2, 3, 4]")
        );
    }
}

// ANCHOR: slice_lesson
#[test]
fn view_slice_with_step_moves_the_offset_and_scales_the_stride() {
    // x = [0, 1, ..., 9]; x[1:8:3] = [1, 4, 7]
    let x = iota(&[10], DType::I64);
    let s = x.slice(0, 1, 8, 3).unwrap();
    assert_eq!(s.to_vec::<i64>().unwrap(), [1, 4, 7]);
    assert_eq!(s.layout().offset(), 1);
    assert_eq!(s.layout().strides(), &[3]);
    assert!(s.same_storage(&x));
    // Like Python, the stop is clamped and an empty range is no error.
    assert_eq!(
        x.slice(0, 7, 100, 1).unwrap().to_vec::<i64>().unwrap(),
        [7, 8, 9]
    );
    assert_eq!(x.slice(0, 5, 2, 1).unwrap().dims(), &[0]);
    assert_eq!(
        x.slice(0, 0, 10, 0).unwrap_err().to_string(),
        "slice: step must be positive"
    );
}
// ANCHOR_END: slice_lesson

#[test]
fn view_slice_of_a_matrix_column_and_narrow() {
    let x = iota(&[3, 4], DType::F32);
    let col = x.slice(1, 2, 3, 1).unwrap();
    assert_eq!(col.dims(), &[3, 1]);
    assert_eq!(col.to_vec::<f32>().unwrap(), [2.0, 6.0, 10.0]);
    let mid = x.narrow(0, 1, 2).unwrap().narrow(-1, 1, 2).unwrap();
    assert_eq!(mid.to_vec2::<f32>().unwrap(), [[5.0, 6.0], [9.0, 10.0]]);
    assert_eq!(mid.layout().offset(), 5);
    let e = x.narrow(1, 3, 2).unwrap_err().to_string();
    assert_eq!(
        e,
        "narrow: range 3..5 is out of bounds for dimension 1 of shape [3, 4]"
    );
}

#[test]
fn view_contiguity_ignores_size_one_dims_but_not_gaps() {
    let l = Layout::new(Shape::from((2, 1, 3)), vec![3, 99, 1], 0);
    assert!(
        l.is_contiguous(),
        "the stride of a size-1 dim never matters"
    );
    let gap = Layout::new(Shape::from((2, 3)), vec![4, 1], 0);
    assert!(
        !gap.is_contiguous(),
        "rows of 3 with a stride of 4 leave gaps"
    );
    // A row slice is contiguous (with an offset); a column slice is not.
    let x = iota(&[4, 5], DType::F32);
    assert!(x.narrow(0, 1, 2).unwrap().is_contiguous());
    assert!(!x.narrow(1, 1, 2).unwrap().is_contiguous());
    // `contiguous` returns the same storage when there is nothing to do.
    assert!(x.contiguous().unwrap().same_storage(&x));
    assert!(!x.copy().unwrap().same_storage(&x));
}

// ANCHOR: reshape_lesson
#[test]
fn view_reshape_is_free_when_strides_allow_and_copies_otherwise() {
    let x = iota(&[2, 3, 4], DType::F32);
    // Contiguous: any reshape is a view.
    assert!(x.reshape((6, 4)).unwrap().same_storage(&x));
    // Transposed [3, 2, 4] with strides [4, 12, 1]: splitting the last dim
    // is still a view, merging the first two is not (they are not adjacent
    // in memory), so reshape copies and view refuses.
    let y = x.transpose(0, 1).unwrap();
    let split = y.reshape((3, 2, 2, 2)).unwrap();
    assert!(split.same_storage(&x));
    assert_eq!(split.layout().strides(), &[4, 12, 2, 1]);
    let merged = y.reshape((6, 4)).unwrap();
    assert!(!merged.same_storage(&x));
    assert_eq!(values(&merged), values(&y));
    assert_eq!(
        y.view((6, 4)).unwrap_err().to_string(),
        "view: shape [3, 2, 4] with strides [4, 12, 1] cannot be viewed as [6, 4]; use reshape"
    );
}
// ANCHOR_END: reshape_lesson

#[test]
fn view_reshape_of_a_broadcast_keeps_stride_zero() {
    let x = tensor(&[1.0f32, 2.0, 3.0], (3, 1));
    let b = x.broadcast_to((3, 4)).unwrap();
    let r = b.reshape((3, 2, 2)).unwrap();
    assert!(r.same_storage(&x));
    assert_eq!(r.layout().strides(), &[1, 0, 0]);
    assert_eq!(values(&r), values(&b));
}

#[test]
fn view_reshape_infer_flatten_squeeze_unsqueeze() {
    let x = iota(&[2, 3, 4], DType::F32);
    assert_eq!(x.reshape_infer(&[-1, 4]).unwrap().dims(), &[6, 4]);
    assert_eq!(x.reshape_infer(&[2, -1]).unwrap().dims(), &[2, 12]);
    let e = x.reshape_infer(&[-1, 5]).unwrap_err().to_string();
    assert_eq!(e, "reshape: cannot reshape [2, 3, 4] into [-1, 5]");
    assert!(x.reshape_infer(&[-1, -1]).is_err());
    let e = x.reshape((5, 5)).unwrap_err().to_string();
    assert_eq!(
        e,
        "reshape: shape mismatch [2, 3, 4] vs [5, 5] (element counts differ)"
    );

    assert_eq!(x.flatten(0, -1).unwrap().dims(), &[24]);
    assert_eq!(x.flatten(1, 2).unwrap().dims(), &[2, 12]);
    assert_eq!(
        Tensor::scalar(1.0f32, &dev())
            .unwrap()
            .flatten(0, 0)
            .unwrap()
            .dims(),
        &[1]
    );

    let u = x.unsqueeze(1).unwrap();
    assert_eq!(u.dims(), &[2, 1, 3, 4]);
    assert!(u.is_contiguous() && u.same_storage(&x));
    assert_eq!(x.unsqueeze(-1).unwrap().dims(), &[2, 3, 4, 1]);
    assert_eq!(u.squeeze(1).unwrap().dims(), &[2, 3, 4]);
    let e = x.squeeze(0).unwrap_err().to_string();
    assert_eq!(e, "squeeze: dimension 0 of shape [2, 3, 4] is not 1");
}

// ANCHOR: as_strided_lesson
#[test]
fn view_as_strided_makes_overlapping_windows() {
    // Windows of 3 consecutive elements, one per start position: shape
    // [4, 3], strides [1, 1]. Rows overlap in storage; nothing is copied.
    let x = iota(&[6], DType::F32);
    let w = x.as_strided((4, 3), &[1, 1], 0).unwrap();
    assert_eq!(
        w.to_vec2::<f32>().unwrap(),
        [
            [0.0, 1.0, 2.0],
            [1.0, 2.0, 3.0],
            [2.0, 3.0, 4.0],
            [3.0, 4.0, 5.0]
        ]
    );
    let e = x.as_strided((4, 3), &[1, 1], 1).unwrap_err().to_string();
    assert_eq!(
        e,
        "as_strided: the view reaches past the end of the storage"
    );
}
// ANCHOR_END: as_strided_lesson

#[test]
fn view_of_an_empty_tensor() {
    let x = Tensor::zeros((0, 3), DType::F32, &dev()).unwrap();
    assert_eq!(x.t().unwrap().dims(), &[3, 0]);
    assert_eq!(x.t().unwrap().reshape(0).unwrap().dims(), &[0]);
    assert_eq!(x.t().unwrap().contiguous().unwrap().dims(), &[3, 0]);
    assert!(values(&x.t().unwrap()).is_empty());
}

#[test]
fn view_offsets_iterate_like_an_odometer() {
    // A [2, 3] transpose of a [3, 2] matrix, starting at offset 1.
    let l = Layout::new(Shape::from((2, 3)), vec![1, 2], 1);
    assert_eq!(l.offsets().collect::<Vec<_>>(), [1, 3, 5, 2, 4, 6]);
    assert_eq!(l.max_storage_index(), 7);
    let scalar = Layout::contiguous(());
    assert_eq!(scalar.offsets().collect::<Vec<_>>(), [0]);
    let empty = Layout::contiguous((2, 0));
    assert_eq!(empty.offsets().count(), 0);
}

// ---------------------------------------------------------------------------
// Random chains of views against the naive model.

/// The whole storage under `t` (every element, not only the view's), on
/// the host and as `f64`. On a GPU this is a copy of the device memory.
fn storage_values(t: &Tensor) -> Vec<f64> {
    let storage = t.storage();
    let host: CpuStorage = t
        .device()
        .backend()
        .to_cpu(storage.as_ref(), &Layout::contiguous(storage.len()))
        .unwrap();
    (0..host.len()).map(|o| host.get_f64(o)).collect()
}

/// A random shape holding exactly `n` elements.
fn random_factorisation(n: usize, g: &mut Generator) -> Vec<usize> {
    let mut dims = Vec::new();
    if n == 0 {
        dims.push(0);
        if g.below(2) == 0 {
            dims.push(1 + g.below(3));
        }
    } else {
        let mut rest = n;
        while rest > 1 {
            let divisors: Vec<usize> = (2..=rest).filter(|d| (rest / d) * d == rest).collect();
            let d = divisors[g.below(divisors.len())];
            dims.push(d);
            rest /= d;
        }
    }
    for _ in 0..g.below(3) {
        let at = g.below(dims.len() + 1);
        dims.insert(at, 1);
    }
    let perm = g.permutation(dims.len());
    perm.iter().map(|&p| dims[p]).collect()
}

/// Whether *some* strides and offset reproduce the storage positions `t`
/// reads when it is reshaped to `shape`: brute force over the definition.
/// The stride of each dimension is forced by the position of its first
/// step; the candidate then has to match every element.
fn view_exists(t: &Tensor, shape: &[usize]) -> bool {
    let offsets: Vec<usize> = t.layout().offsets().collect();
    if offsets.is_empty() {
        return true;
    }
    let mut strides = vec![0usize; shape.len()];
    for k in 0..shape.len() {
        if shape[k] > 1 {
            let mut unit = vec![0; shape.len()];
            unit[k] = 1;
            let o = offsets[ravel(&unit, shape)];
            if o < offsets[0] {
                return false;
            }
            strides[k] = o - offsets[0];
        }
    }
    (0..offsets.len()).all(|i| {
        let idx = unravel(i, shape);
        offsets[0] + idx.iter().zip(&strides).map(|(a, b)| a * b).sum::<usize>() == offsets[i]
    })
}

/// Applies one random view operation to both the tensor and the model,
/// returning a description for the failure message.
fn random_view_op(t: &Tensor, n: &Naive, kind: u8, g: &mut Generator) -> (Tensor, Naive, String) {
    let rank = n.shape.len();
    let count = n.data.len();
    match kind % 10 {
        0 if rank >= 2 => {
            let (a, b) = (g.below(rank), g.below(rank));
            // Negative indices name the same dimension from the end.
            let a_neg = a as isize - rank as isize;
            (
                t.transpose(a_neg, b).unwrap(),
                n.transpose(a, b),
                format!("transpose({a_neg}, {b})"),
            )
        }
        1 => {
            let perm = g.permutation(rank);
            (
                t.permute(&perm).unwrap(),
                n.permute(&perm),
                format!("permute({perm:?})"),
            )
        }
        2 if rank >= 1 => {
            let dim = g.below(rank);
            let size = n.shape[dim];
            let start = g.below(size + 1);
            let stop = start + g.below(size + 2);
            let step = 1 + g.below(3);
            (
                t.slice(dim, start, stop, step).unwrap(),
                n.slice(dim, start, stop, step),
                format!("slice({dim}, {start}, {stop}, {step})"),
            )
        }
        3 => {
            let mut target: Vec<usize> = (0..g.below(2)).map(|_| 1 + g.below(3)).collect();
            target.extend(
                n.shape
                    .iter()
                    .map(|&d| if d == 1 { 1 + g.below(3) } else { d }),
            );
            if target.iter().product::<usize>() > 2000 {
                return (t.clone(), n.clone(), "skip".into());
            }
            (
                t.broadcast_to(target.clone()).unwrap(),
                n.broadcast_to(&target),
                format!("broadcast_to({target:?})"),
            )
        }
        4 => {
            let target = random_factorisation(count, g);
            let r = t.reshape(target.clone()).unwrap();
            // reshape is a view exactly when a view exists.
            let possible = view_exists(t, &target);
            assert_eq!(
                r.same_storage(t),
                possible,
                "reshape {:?} (strides {:?}) to {target:?}",
                t.dims(),
                t.layout().strides()
            );
            assert_eq!(t.view(target.clone()).is_ok(), possible);
            (r, n.reshape(&target), format!("reshape({target:?})"))
        }
        5 => {
            let d = g.below(rank + 1);
            let mut shape = n.shape.clone();
            shape.insert(d, 1);
            (
                t.unsqueeze(d).unwrap(),
                n.reshape(&shape),
                format!("unsqueeze({d})"),
            )
        }
        6 => match n.shape.iter().position(|&d| d == 1) {
            Some(d) => {
                let mut shape = n.shape.clone();
                shape.remove(d);
                (
                    t.squeeze(d).unwrap(),
                    n.reshape(&shape),
                    format!("squeeze({d})"),
                )
            }
            None => (t.clone(), n.clone(), "skip".into()),
        },
        7 if rank >= 1 => {
            let dim = g.below(rank);
            let size = n.shape[dim];
            let start = g.below(size + 1);
            let len = g.below(size - start + 1);
            (
                t.narrow(dim, start, len).unwrap(),
                n.slice(dim, start, start + len, 1),
                format!("narrow({dim}, {start}, {len})"),
            )
        }
        8 => (t.contiguous().unwrap(), n.clone(), "contiguous()".into()),
        9 if rank >= 1 => {
            let (a, b) = (g.below(rank), g.below(rank));
            let (s, e) = (a.min(b), a.max(b));
            let mut shape = n.shape[..s].to_vec();
            shape.push(n.shape[s..=e].iter().product());
            shape.extend_from_slice(&n.shape[e + 1..]);
            (
                t.flatten(s, e).unwrap(),
                n.reshape(&shape),
                format!("flatten({s}, {e})"),
            )
        }
        _ => (t.clone(), n.clone(), "skip".into()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    // ANCHOR: view_chain_property
    /// Any chain of views reads the same elements as the naive model, whose
    /// every step copies by the definition. Checked three ways: through the
    /// kernels (`to_vec`), through the odometer (`offsets`), and by bounds.
    #[test]
    fn view_chains_match_the_naive_model(
        start in shape(4, 4),
        ops in prop::collection::vec((any::<u8>(), any::<u64>()), 1..8),
        dtype in prop_oneof![Just(DType::F32), Just(DType::F64), Just(DType::I64)],
    ) {
        let mut model = Naive::iota(&start);
        let mut t = model.tensor(dtype);
        let mut log = vec![format!("start {start:?}")];
        for (kind, seed) in ops {
            let mut g = Generator::new(seed);
            let (t2, m2, what) = random_view_op(&t, &model, kind, &mut g);
            log.push(what);
            t = t2;
            model = m2;
            prop_assert_eq!(t.dims(), model.shape.as_slice(), "{:?}", log);
            prop_assert_eq!(values(&t), model.data.clone(), "{:?}", log);
            let storage = storage_values(&t);
            let through_offsets: Vec<f64> = t.layout().offsets().map(|o| storage[o]).collect();
            prop_assert_eq!(&through_offsets, &model.data, "{:?}", log);
            prop_assert!(t.layout().max_storage_index() <= t.storage().len(), "{:?}", log);
        }
    }
    // ANCHOR_END: view_chain_property

    /// Reshaping a view gives the same elements as reshaping a contiguous
    /// copy of it; when `reshape_view` finds strides, they are right.
    #[test]
    fn view_reshape_equals_reshape_of_a_copy(
        start in shape(4, 4),
        ops in prop::collection::vec((any::<u8>(), any::<u64>()), 0..6),
        seed in any::<u64>(),
    ) {
        let mut model = Naive::iota(&start);
        let mut t = model.tensor(DType::F64);
        for (kind, s) in ops {
            let (t2, m2, _) = random_view_op(&t, &model, kind, &mut Generator::new(s));
            t = t2;
            model = m2;
        }
        let target = random_factorisation(model.data.len(), &mut Generator::new(seed));
        let copy = t.contiguous().unwrap().reshape(target.clone()).unwrap();
        prop_assert_eq!(values(&t.reshape(target.clone()).unwrap()), values(&copy));
        match t.layout().reshape_view(&Shape::from(target.clone())) {
            Some(layout) => {
                prop_assert!(layout.max_storage_index() <= t.storage().len());
                let storage = storage_values(&t);
                let v: Vec<f64> = layout.offsets().map(|o| storage[o]).collect();
                prop_assert_eq!(v, values(&copy));
            }
            None => prop_assert!(
                !view_exists(&t, &target),
                "{:?} {:?} -> {:?}", t.dims(), t.layout().strides(), target
            ),
        }
        // A contiguous tensor can always be viewed.
        let flat = Shape::from(copy.elem_count());
        prop_assert!(copy.layout().reshape_view(&flat).is_some());
    }
}
