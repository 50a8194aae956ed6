//! Lessons: shape operations and their adjoints. Views (permute, squeeze,
//! slice, expand) move no data; their backward passes move the gradient
//! back: through the inverse view, or into zeros (slice ↔ pad), or summed
//! over copies (expand, repeat ↔ sum), or split (cat ↔ split).
//! `cargo test -p chapter-04 --test shape` runs them all;
//! `cargo test -p chapter-04 slice` only the slicing lessons.

mod common;
use chapter_03::{grad, gradcheck, BackwardOptions, GradcheckOptions, RawTensor, Result, Tensor};
use chapter_04::prelude::*;
use common::*;
use proptest::prelude::*;

// ---------------------------------------------------------------- helpers

/// Finite differences agree with backward for `f` at a random point.
fn check(shape: &[usize], f: impl Fn(&Tensor) -> Result<Tensor>) {
    gradcheck(
        |x| f(&x[0]),
        &[randn(shape, 7)],
        GradcheckOptions::default(),
    )
    .unwrap();
}

// ---------------------------------------------------------------- permute, squeeze, flatten

#[test]
fn permute_moves_axes_and_is_a_view() {
    let x = iota(&[2, 3, 4]);
    let y = x.permute(&[2, 0, 1]).unwrap();
    assert_eq!(y.dims(), [4, 2, 3]);
    // y[k, i, j] = x[i, j, k] = 12 i + 4 j + k
    assert_eq!(values(&y)[..6], [0.0, 4.0, 8.0, 12.0, 16.0, 20.0]);
    assert!(y.data().same_storage(&x.data()));
}

#[test]
fn permute_backward_applies_the_inverse_permutation() {
    for perm in [[0, 1, 2], [2, 0, 1], [1, 2, 0], [2, 1, 0]] {
        check(&[2, 3, 4], |x| x.permute(&perm));
    }
    assert_eq!(
        err(iota(&[2, 3]).permute(&[0, 0])),
        "permute: [0, 0] is not a permutation of the 2 dimensions of shape [2, 3]"
    );
}

#[test]
fn squeeze_and_unsqueeze_are_inverse_views() {
    let x = iota(&[2, 1, 3]);
    assert_eq!(x.squeeze(1).unwrap().dims(), [2, 3]);
    assert_eq!(x.squeeze(-2).unwrap().dims(), [2, 3]);
    assert_eq!(x.unsqueeze(0).unwrap().dims(), [1, 2, 1, 3]);
    assert_eq!(x.unsqueeze(-1).unwrap().dims(), [2, 1, 3, 1]);
    check(&[2, 1, 3], |x| x.squeeze(-2));
    check(&[2, 3], |x| x.unsqueeze(-1));
    check(&[2, 3], |x| x.unsqueeze(1)?.squeeze(1));
    assert_eq!(
        err(x.squeeze(0)),
        "squeeze: dimension 0 of shape [2, 1, 3] is not 1"
    );
    assert_eq!(
        err(x.unsqueeze(5)),
        "unsqueeze: dimension 5 out of range for a tensor of shape [2, 1, 3]"
    );
}

#[test]
fn flatten_merges_a_range_of_dimensions() {
    let x = iota(&[2, 3, 4]);
    assert_eq!(x.flatten(1, -1).unwrap().dims(), [2, 12]);
    assert_eq!(x.flatten(0, 1).unwrap().dims(), [6, 4]);
    assert_eq!(x.flatten(0, -1).unwrap().dims(), [24]);
    // Flattening a permuted tensor needs a copy; values follow the view.
    let y = x.permute(&[2, 1, 0]).unwrap().flatten(0, 1).unwrap();
    assert_eq!(values(&y)[..4], [0.0, 12.0, 4.0, 16.0]);
    check(&[2, 3, 4], |x| x.flatten(-2, -1));
    check(&[2, 3, 4], |x| x.permute(&[1, 0, 2])?.flatten(0, 1));
}

#[test]
fn view_as_shape_refuses_to_copy() {
    let x = iota(&[2, 3]);
    assert_eq!(x.view_as_shape((3, 2)).unwrap().dims(), [3, 2]);
    let e = err(x.t().unwrap().view_as_shape(6));
    assert!(
        e.starts_with("view: shape [3, 2] with strides [1, 3] cannot be viewed as [6]"),
        "{e}"
    );
    // `reshape` copies instead.
    assert_eq!(
        values(&x.t().unwrap().reshape(6).unwrap()),
        [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    check(&[2, 3], |x| x.view_as_shape((3, 2)));
}

// ---------------------------------------------------------------- expand, repeat

#[test]
fn expand_backward_sums_over_the_copies() {
    let x = Tensor::param(
        RawTensor::new(&[1.0f64, 2.0, 3.0])
            .unwrap()
            .reshape((3, 1))
            .unwrap(),
    )
    .unwrap();
    let y = x.expand((2, 3, 4)).unwrap();
    assert_eq!(y.dims(), [2, 3, 4]);
    y.sum_all().unwrap().backward().unwrap();
    // Each element was read 2 * 4 = 8 times.
    assert_eq!(values(&x.grad().unwrap()), [8.0, 8.0, 8.0]);
    check(&[3, 1], |x| x.expand((2, 3, 4)));
    check(&[1, 3], |x| x.expand((2, 3)));
}

// ANCHOR: repeat_example
#[test]
fn repeat_tiles_like_torch_repeat() {
    let x = t(&[1.0, 2.0, 3.0], 3);
    // torch.tensor([1, 2, 3]).repeat(2, 2)
    let y = x.repeat(&[2, 2]).unwrap();
    assert_eq!(y.dims(), [2, 6]);
    assert_eq!(
        values(&y),
        [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    );
    let m = iota(&[2, 2]);
    assert_eq!(
        values(&m.repeat(&[2, 1]).unwrap()),
        [0.0, 1.0, 2.0, 3.0, 0.0, 1.0, 2.0, 3.0]
    );
    assert_eq!(
        values(&m.repeat(&[1, 2]).unwrap()),
        [0.0, 1.0, 0.0, 1.0, 2.0, 3.0, 2.0, 3.0]
    );
    assert_eq!(m.repeat(&[3, 1, 2]).unwrap().dims(), [3, 2, 4]);
    assert_eq!(m.repeat(&[0, 1]).unwrap().dims(), [0, 2]);
    check(&[2, 3], |x| x.repeat(&[2, 1, 3]));
    assert_eq!(
        err(m.repeat(&[2])),
        "repeat: 1 repeat counts for a tensor of shape [2, 2] (need at least one per dimension)"
    );
}
// ANCHOR_END: repeat_example

// ---------------------------------------------------------------- slice, narrow, pad

#[test]
fn slice_with_a_step_is_python_slicing() {
    let x = iota(&[10]);
    assert_eq!(values(&x.slice(0, 1, 8, 3).unwrap()), [1.0, 4.0, 7.0]);
    assert_eq!(values(&x.slice(0, 7, 100, 1).unwrap()), [7.0, 8.0, 9.0]);
    assert_eq!(values(&x.slice(-1, 8, 3, 1).unwrap()), Vec::<f64>::new());
    let m = iota(&[3, 4]);
    assert_eq!(
        values(&m.slice(-1, 0, 4, 2).unwrap()),
        [0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
    );
    assert!(m.slice(1, 0, 4, 2).unwrap().data().same_storage(&m.data()));
    assert_eq!(err(m.slice(0, 0, 2, 0)), "slice: step must be positive");
}

// ANCHOR: slice_backward_example
#[test]
fn slice_backward_scatters_the_gradient_into_zeros() {
    let x =
        Tensor::param(RawTensor::new(&[1.0f64, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]).unwrap()).unwrap();
    x.slice(0, 1, 7, 2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(
        values(&x.grad().unwrap()),
        [0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0]
    );
    check(&[3, 7], |x| x.slice(1, 1, 7, 2));
    check(&[3, 7], |x| x.slice(-1, 0, 7, 3));
    check(&[5, 2], |x| x.slice(0, 1, 4, 1));
    check(&[5, 2], |x| x.slice(0, 4, 9, 2));
}
// ANCHOR_END: slice_backward_example

#[test]
fn narrow_backward_is_pad_with_zeros() {
    let x = Tensor::param(RawTensor::new(&[1.0f64, 2.0, 3.0, 4.0]).unwrap()).unwrap();
    x.narrow(0, 1, 2)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(values(&x.grad().unwrap()), [0.0, 1.0, 1.0, 0.0]);
    check(&[4, 5], |x| x.narrow(-1, 2, 3));
    check(&[4, 5], |x| x.narrow(0, 0, 1));
    assert_eq!(
        err(iota(&[4]).narrow(0, 3, 2)),
        "narrow: range 3..5 is out of bounds for dimension 0 of shape [4]"
    );
}

#[test]
fn pad_puts_the_tensor_inside_a_constant_border() {
    let x = iota(&[2, 2]);
    // One (before, after) pair per dimension, from the first dimension.
    let y = x.pad(&[(1, 0), (1, 2)], -1.0).unwrap();
    assert_eq!(y.dims(), [3, 5]);
    assert_eq!(
        values(&y),
        [-1.0, -1.0, -1.0, -1.0, -1.0, -1.0, 0.0, 1.0, -1.0, -1.0, -1.0, 2.0, 3.0, -1.0, -1.0]
    );
    // Fewer pairs than dimensions: the last dimensions are not padded.
    assert_eq!(x.pad(&[(0, 1)], 0.0).unwrap().dims(), [3, 2]);
    let inf = x.pad(&[(0, 0), (0, 1)], f64::NEG_INFINITY).unwrap();
    assert_eq!(values(&inf)[2], f64::NEG_INFINITY);
    check(&[2, 3], |x| x.pad(&[(1, 2), (0, 3)], 5.0));
    check(&[2, 3, 2], |x| x.pad(&[(0, 0), (2, 1)], 0.0));
    assert_eq!(
        err(x.pad(&[(1, 1); 3], 0.0)),
        "pad: 3 (before, after) pairs for a tensor of shape [2, 2]"
    );
}

#[test]
fn slice_second_derivative_flows_through_pad() {
    // f = Σ narrow(x)³ ; ∂f/∂x = pad(3 narrow(x)²) ; ∂(Σ ∂f/∂x)/∂x = pad(6 narrow(x)).
    let x = Tensor::param(RawTensor::new(&[1.0f64, 2.0, 3.0, 4.0]).unwrap()).unwrap();
    let f = x
        .narrow(0, 1, 2)
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
    assert_eq!(values(&g), [0.0, 12.0, 27.0, 0.0]);
    let h = grad(&g.sum_all().unwrap(), &[&x], None, opts)
        .unwrap()
        .remove(0)
        .unwrap();
    assert_eq!(values(&h), [0.0, 12.0, 18.0, 0.0]);
}

// ---------------------------------------------------------------- split, chunk, cat, stack

#[test]
fn split_and_chunk_cut_into_views() {
    let x = iota(&[5, 2]);
    let parts = x.split(2, 0).unwrap();
    let sizes: Vec<usize> = parts.iter().map(|p| p.dims()[0]).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(values(&parts[2]), [8.0, 9.0]);
    // torch.chunk: pieces of ceil(5 / 4) = 2, so only 3 pieces.
    let sizes: Vec<usize> = x.chunk(4, 0).unwrap().iter().map(|p| p.dims()[0]).collect();
    assert_eq!(sizes, [2, 2, 1]);
    let sizes: Vec<usize> = x
        .chunk(2, -1)
        .unwrap()
        .iter()
        .map(|p| p.dims()[1])
        .collect();
    assert_eq!(sizes, [1, 1]);
    assert!(x.split(0, 0).is_err());
    assert!(x.chunk(0, 0).is_err());
}

#[test]
fn cat_backward_splits_the_gradient() {
    let a = iota(&[2, 3]);
    let b = t(&[10.0, 11.0, 12.0], (1, 3));
    let y = cat(&[&a, &b], 0).unwrap();
    assert_eq!(y.dims(), [3, 3]);
    assert_eq!(values(&y)[6..], [10.0, 11.0, 12.0]);
    let (a, b, c) = (randn(&[2, 3], 1), randn(&[2, 1], 2), randn(&[2, 4], 3));
    gradcheck(
        |x| cat(&[&x[0], &x[1], &x[2]], -1),
        &[a, b, c],
        GradcheckOptions::default(),
    )
    .unwrap();
    // The same tensor twice: both gradients add up.
    gradcheck(
        |x| cat(&[&x[0], &x[0]], 0),
        &[randn(&[2, 2], 4)],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(
        err(cat(&[&iota(&[2, 3]), &iota(&[2, 4])], 0)),
        "cat: shape mismatch [2, 3] vs [2, 4] (all dimensions except 0 must match)"
    );
    assert_eq!(err(cat(&[], 0)), "cat: needs at least one tensor");
}

#[test]
fn cat_then_split_round_trips() {
    check(&[6, 2], |x| {
        let parts = x.split(4, 0)?;
        cat(&[&parts[1], &parts[0]], 0)
    });
}

#[test]
fn stack_adds_a_new_dimension() {
    let (a, b) = (iota(&[2, 3]), iota(&[2, 3]));
    assert_eq!(stack(&[&a, &b], 0).unwrap().dims(), [2, 2, 3]);
    assert_eq!(stack(&[&a, &b, &a], -1).unwrap().dims(), [2, 3, 3]);
    assert_eq!(
        values(&stack(&[&a, &b], 2).unwrap())[..4],
        [0.0, 0.0, 1.0, 1.0]
    );
    gradcheck(
        |x| stack(&[&x[0], &x[1]], 1),
        &[randn(&[2, 3], 1), randn(&[2, 3], 2)],
        GradcheckOptions::default(),
    )
    .unwrap();
    assert_eq!(
        err(stack(&[&a, &iota(&[3, 2])], 0)),
        "stack: shape mismatch [2, 3] vs [3, 2] (all shapes must be equal)"
    );
}

// ---------------------------------------------------------------- flip, tril/triu, masked_fill

#[test]
fn flip_reverses_the_named_dimensions() {
    let x = iota(&[2, 3]);
    assert_eq!(
        values(&x.flip([1]).unwrap()),
        [2.0, 1.0, 0.0, 5.0, 4.0, 3.0]
    );
    assert_eq!(
        values(&x.flip([0, -1]).unwrap()),
        [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
    );
    assert_eq!(
        values(&x.flip(&[0usize][..]).unwrap()),
        [3.0, 4.0, 5.0, 0.0, 1.0, 2.0]
    );
    check(&[2, 3, 4], |x| x.flip([0, 2]));
    check(&[3, 2], |x| x.flip([-1]));
}

#[test]
fn tril_and_triu_keep_a_triangle_of_the_last_two_dims() {
    let x = t(&[1.0; 9], (3, 3));
    assert_eq!(
        values(&x.tril(0).unwrap()),
        [1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0]
    );
    assert_eq!(
        values(&x.triu(1).unwrap()),
        [0.0, 1.0, 1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0]
    );
    assert_eq!(
        values(&x.tril(-1).unwrap()),
        [0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0]
    );
    // tril(k) + triu(k + 1) is everything.
    let r = t(&(0..24).map(|i| i as f64).collect::<Vec<_>>(), (2, 3, 4));
    for k in -3..4 {
        let sum = r.tril(k).unwrap().add(&r.triu(k + 1).unwrap()).unwrap();
        assert_eq!(values(&sum), values(&r));
    }
    check(&[2, 3, 4], |x| x.tril(1));
    check(&[3, 2], |x| x.triu(-1));
    assert_eq!(
        err(t(&[1.0], 1).tril(0)),
        "tril: needs at least 2 dimensions, got shape [1]"
    );
}

#[test]
fn masked_fill_gradient_is_zero_where_masked() {
    let x = Tensor::param(
        RawTensor::new(&[1.0f64, 2.0, 3.0, 4.0])
            .unwrap()
            .reshape((2, 2))
            .unwrap(),
    )
    .unwrap();
    // A causal mask: -inf above the diagonal, broadcast over the rows.
    let mask = Tensor::from_vec(vec![0u8, 1, 0, 0], (2, 2), &dev()).unwrap();
    let y = x.masked_fill(&mask, f64::NEG_INFINITY).unwrap();
    assert_eq!(values(&y), [1.0, f64::NEG_INFINITY, 3.0, 4.0]);
    let row = Tensor::from_vec(vec![1u8, 0], (1, 2), &dev()).unwrap();
    let y2 = x.masked_fill(&row, 0.5).unwrap();
    assert_eq!(values(&y2), [0.5, 2.0, 0.5, 4.0]);
    y2.sum_all().unwrap().backward().unwrap();
    assert_eq!(values(&x.grad().unwrap()), [0.0, 1.0, 0.0, 1.0]);
    check(&[3, 2], |x| {
        x.masked_fill(&Tensor::from_vec(vec![1u8, 0, 0], (3, 1), &dev())?, 7.0)
    });
    assert_eq!(
        err(x.masked_fill(&t(&[1.0], 1), 0.0)),
        "masked_fill (mask must be u8): not supported for dtype f64"
    );
    let big = Tensor::from_vec(vec![0u8; 8], (2, 2, 2), &dev()).unwrap();
    assert_eq!(
        err(x.masked_fill(&big, 0.0)),
        "masked_fill: cannot broadcast [2, 2] with [2, 2, 2]"
    );
}

// ---------------------------------------------------------------- chains vs a naive reference

/// The slowest correct model of an n-d array: row-major values and the
/// index arithmetic of each op's definition, no strides.
#[derive(Debug, Clone, PartialEq)]
struct Naive {
    dims: Vec<usize>,
    data: Vec<f64>,
}

impl Naive {
    fn from_fn(dims: Vec<usize>, f: impl Fn(&[usize]) -> f64) -> Naive {
        let n = dims.iter().product();
        let data = (0..n).map(|i| f(&unravel(i, &dims))).collect();
        Naive { dims, data }
    }
    fn at(&self, idx: &[usize]) -> f64 {
        let mut flat = 0;
        for (&i, &d) in idx.iter().zip(&self.dims) {
            flat = flat * d + i;
        }
        self.data[flat]
    }
}

fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for d in (0..dims.len()).rev() {
        idx[d] = i % dims[d];
        i /= dims[d];
    }
    idx
}

/// One step of a random chain. The parameters are raw random numbers,
/// reduced modulo the current shape when the step is applied.
#[derive(Debug, Clone)]
enum Step {
    Permute(u64),
    Slice(usize, usize, usize, usize),
    Flip(usize),
    Pad(usize, usize, usize),
    Repeat(usize, usize),
    Unsqueeze(usize),
    CatSelf(usize),
    Tril(i64),
}

fn step_strategy() -> impl Strategy<Value = Step> {
    prop_oneof![
        any::<u64>().prop_map(Step::Permute),
        (0..4usize, 0..4usize, 0..5usize, 1..4usize)
            .prop_map(|(d, a, b, s)| Step::Slice(d, a, b, s)),
        (0..4usize).prop_map(Step::Flip),
        (0..4usize, 0..3usize, 0..3usize).prop_map(|(d, a, b)| Step::Pad(d, a, b)),
        (0..4usize, 1..3usize).prop_map(|(d, r)| Step::Repeat(d, r)),
        (0..4usize).prop_map(Step::Unsqueeze),
        (0..4usize).prop_map(Step::CatSelf),
        (-2..3i64).prop_map(Step::Tril),
    ]
}

/// Applies `step` to both the tensor and the reference (skipping steps that
/// would make the tensor too large).
fn apply(step: &Step, x: &Tensor, r: &Naive) -> Result<(Tensor, Naive)> {
    let rank = r.dims.len();
    let dims = r.dims.clone();
    Ok(match *step {
        Step::Permute(seed) => {
            let mut perm: Vec<usize> = (0..rank).collect();
            let mut s = seed;
            for i in (1..rank).rev() {
                perm.swap(i, (s % (i as u64 + 1)) as usize);
                s /= i as u64 + 1;
            }
            let out: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
            let reference = Naive::from_fn(out, |idx| {
                let mut src = vec![0; rank];
                for (i, &p) in perm.iter().enumerate() {
                    src[p] = idx[i];
                }
                r.at(&src)
            });
            (x.permute(&perm)?, reference)
        }
        Step::Slice(d, start, len, step) => {
            let d = d % rank;
            let stop = start + len;
            let kept: Vec<usize> = (start..stop.min(dims[d])).step_by(step).collect();
            let mut out = dims.clone();
            out[d] = kept.len();
            let reference = Naive::from_fn(out, |idx| {
                let mut src = idx.to_vec();
                src[d] = kept[idx[d]];
                r.at(&src)
            });
            (x.slice(d, start, stop, step)?, reference)
        }
        Step::Flip(d) => {
            let d = d % rank;
            let reference = Naive::from_fn(dims.clone(), |idx| {
                let mut src = idx.to_vec();
                src[d] = dims[d] - 1 - idx[d];
                r.at(&src)
            });
            (x.flip([d])?, reference)
        }
        Step::Pad(d, before, after) => {
            let d = d % rank;
            let mut out = dims.clone();
            out[d] += before + after;
            let reference = Naive::from_fn(out, |idx| {
                if idx[d] < before || idx[d] >= before + dims[d] {
                    return -1.5;
                }
                let mut src = idx.to_vec();
                src[d] -= before;
                r.at(&src)
            });
            let mut pads = vec![(0, 0); d + 1];
            pads[d] = (before, after);
            (x.pad(&pads, -1.5)?, reference)
        }
        Step::Repeat(d, times) => {
            let d = d % rank;
            let mut reps = vec![1; rank];
            reps[d] = times;
            let mut out = dims.clone();
            out[d] *= times;
            let reference = Naive::from_fn(out, |idx| {
                let mut src = idx.to_vec();
                src[d] %= dims[d];
                r.at(&src)
            });
            (x.repeat(&reps)?, reference)
        }
        Step::Unsqueeze(d) => {
            let d = d % (rank + 1);
            let mut out = dims.clone();
            out.insert(d, 1);
            let reference = Naive::from_fn(out, |idx| {
                let mut src = idx.to_vec();
                src.remove(d);
                r.at(&src)
            });
            (x.unsqueeze(d)?, reference)
        }
        Step::CatSelf(d) => {
            let d = d % rank;
            let mut out = dims.clone();
            out[d] *= 2;
            let reference = Naive::from_fn(out, |idx| {
                let mut src = idx.to_vec();
                src[d] %= dims[d];
                r.at(&src)
            });
            (cat(&[x, x], d)?, reference)
        }
        Step::Tril(k) => {
            if rank < 2 {
                return Ok((x.clone(), r.clone()));
            }
            let reference = Naive::from_fn(dims.clone(), |idx| {
                let (i, j) = (idx[rank - 2] as i64, idx[rank - 1] as i64);
                if j - i <= k {
                    r.at(idx)
                } else {
                    0.0
                }
            });
            (x.tril(k)?, reference)
        }
    })
}

fn run_chain(x: &Tensor, dims: &[usize], steps: &[Step]) -> Result<(Tensor, Naive)> {
    let data = x.to_vec_f64()?;
    let mut r = Naive {
        dims: dims.to_vec(),
        data,
    };
    let mut y = x.clone();
    for step in steps {
        let (y2, r2) = apply(step, &y, &r)?;
        // Keep the tensors small: undo a step that grows them too much.
        if r2.data.len() > 96 || r2.dims.len() > 4 {
            continue;
        }
        (y, r) = (y2, r2);
    }
    Ok((y, r))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn shape_chains_match_the_naive_reference(
        dims in prop::collection::vec(1..4usize, 1..4),
        steps in prop::collection::vec(step_strategy(), 1..6),
    ) {
        let x = iota(&dims);
        let (y, r) = run_chain(&x, &dims, &steps).unwrap();
        prop_assert_eq!(y.dims(), r.dims.clone());
        prop_assert_eq!(values(&y), r.data);
    }

    #[test]
    fn shape_chains_pass_gradcheck(
        dims in prop::collection::vec(1..4usize, 1..4),
        steps in prop::collection::vec(step_strategy(), 1..5),
    ) {
        let x0 = randn(&dims, 3);
        gradcheck(|x| Ok(run_chain(&x[0], &dims, &steps)?.0), &[x0], GradcheckOptions::default()).unwrap();
    }
}
