//! What the lessons share: a naive reference model of an n-d array, tensors
//! whose storage is deliberately not contiguous, and proptest strategies for
//! shapes.
//!
//! The reference model is the slowest correct thing we can write: a flat
//! `Vec<f64>` in row-major order and the index arithmetic of the definition,
//! with no strides at all. Every strided, coalesced, vectorised path in the
//! crate is checked against it.

// Each test file uses a different subset of these helpers.
#![allow(dead_code)]

use chapter_02::{DType, Device, Tensor, WithDType};
use proptest::prelude::*;

/// The device every lesson runs on: the one `CANDLE_DEVICE` names
/// (default `cpu`), so that `CANDLE_DEVICE=cuda cargo test` runs this same
/// suite on a GPU. An unknown or unavailable device fails the test with
/// the error, which lists the known devices.
pub fn dev() -> Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

/// A CPU tensor from a slice and a shape.
pub fn tensor<T: WithDType>(data: &[T], shape: impl Into<chapter_02::Shape>) -> Tensor {
    Tensor::from_vec(data.to_vec(), shape, &dev()).unwrap()
}

/// Values `0, 1, 2, ...` with the given shape and dtype.
pub fn iota(shape: &[usize], dtype: DType) -> Tensor {
    let n: usize = shape.iter().product();
    Tensor::from_f64_vec((0..n).map(|i| i as f64).collect(), shape, dtype, &dev()).unwrap()
}

/// The elements as `f64`, row-major.
pub fn values(t: &Tensor) -> Vec<f64> {
    t.to_vec_f64().unwrap()
}

// ANCHOR: naive_index
/// Row-major multi-index of flat position `i` in `shape`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d];
        i /= shape[d];
    }
    idx
}

/// Flat row-major position of multi-index `idx` in `shape`.
pub fn ravel(idx: &[usize], shape: &[usize]) -> usize {
    idx.iter().zip(shape).fold(0, |acc, (&i, &d)| acc * d + i)
}
// ANCHOR_END: naive_index

/// The broadcast shape by the textbook rule, or `None`: written again here,
/// independently of `Shape::broadcast_with`, so the two can disagree.
pub fn naive_broadcast_shape(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    let rank = a.len().max(b.len());
    let pad = |s: &[usize]| {
        let mut v = vec![1; rank - s.len()];
        v.extend_from_slice(s);
        v
    };
    let (a, b) = (pad(a), pad(b));
    a.iter()
        .zip(&b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, _) => Some(y),
            (_, 1) => Some(x),
            _ => None,
        })
        .collect()
}

/// The reference model: a shape and its elements in row-major order.
/// Every "view" here is computed by copying, element by element, from the
/// definition.
#[derive(Clone, Debug, PartialEq)]
pub struct Naive {
    pub shape: Vec<usize>,
    pub data: Vec<f64>,
}

impl Naive {
    pub fn from_fn(shape: &[usize], mut f: impl FnMut(&[usize]) -> f64) -> Naive {
        let n: usize = shape.iter().product();
        Naive {
            shape: shape.to_vec(),
            data: (0..n).map(|i| f(&unravel(i, shape))).collect(),
        }
    }

    /// `0, 1, 2, ...` in the given shape.
    pub fn iota(shape: &[usize]) -> Naive {
        Naive::from_fn(shape, |i| ravel(i, shape) as f64)
    }

    /// Small random integers (see [`small_ints`]) in the given shape.
    pub fn random(shape: &[usize], seed: u64) -> Naive {
        Naive {
            shape: shape.to_vec(),
            data: small_ints(shape.iter().product(), seed),
        }
    }

    /// `f` applied to every element.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Naive {
        Naive {
            shape: self.shape.clone(),
            data: self.data.iter().map(|&v| f(v)).collect(),
        }
    }

    pub fn at(&self, idx: &[usize]) -> f64 {
        self.data[ravel(idx, &self.shape)]
    }

    /// Output dimension `k` is input dimension `perm[k]`.
    pub fn permute(&self, perm: &[usize]) -> Naive {
        let shape: Vec<usize> = perm.iter().map(|&p| self.shape[p]).collect();
        Naive::from_fn(&shape, |i| {
            let mut src = vec![0; perm.len()];
            for (k, &p) in perm.iter().enumerate() {
                src[p] = i[k];
            }
            self.at(&src)
        })
    }

    pub fn transpose(&self, a: usize, b: usize) -> Naive {
        let mut perm: Vec<usize> = (0..self.shape.len()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Python's `x[start:stop:step]` along `dim` (stop and start clamped).
    pub fn slice(&self, dim: usize, start: usize, stop: usize, step: usize) -> Naive {
        let stop = stop.min(self.shape[dim]);
        let start = start.min(stop);
        let mut shape = self.shape.clone();
        shape[dim] = (stop - start).div_ceil(step);
        Naive::from_fn(&shape, |i| {
            let mut src = i.to_vec();
            src[dim] = start + i[dim] * step;
            self.at(&src)
        })
    }

    /// Repeats size-1 dimensions (and adds leading ones) up to `target`.
    pub fn broadcast_to(&self, target: &[usize]) -> Naive {
        let added = target.len() - self.shape.len();
        Naive::from_fn(target, |i| {
            let src: Vec<usize> = self
                .shape
                .iter()
                .enumerate()
                .map(|(k, &d)| if d == 1 { 0 } else { i[k + added] })
                .collect();
            self.at(&src)
        })
    }

    /// The same row-major elements under another shape.
    pub fn reshape(&self, shape: &[usize]) -> Naive {
        assert_eq!(shape.iter().product::<usize>(), self.data.len());
        Naive {
            shape: shape.to_vec(),
            data: self.data.clone(),
        }
    }

    pub fn tensor(&self, dtype: DType) -> Tensor {
        Tensor::from_f64_vec(self.data.clone(), &self.shape, dtype, &dev()).unwrap()
    }
}

// ANCHOR: scrambled
/// A tensor with the given row-major `values` whose storage is *not* laid
/// out row-major: the dimensions are stored in reverse order (so the view
/// is a transpose) and every other slot of the outermost stored dimension is
/// filler (so the view also has a step). Kernels that assume contiguity read
/// the filler and fail.
pub fn scrambled(values: &[f64], shape: &[usize], dtype: DType) -> Tensor {
    if shape.is_empty() || shape.contains(&0) {
        return Tensor::from_f64_vec(values.to_vec(), shape, dtype, &dev()).unwrap();
    }
    let rank = shape.len();
    let mut stored: Vec<usize> = shape.iter().rev().copied().collect();
    stored[0] *= 2;
    let n: usize = stored.iter().product();
    let data: Vec<f64> = (0..n)
        .map(|p| {
            let q = unravel(p, &stored);
            if q[0] % 2 == 1 {
                return 77.0; // filler, never part of the view
            }
            let mut idx: Vec<usize> = q.iter().rev().copied().collect();
            idx[rank - 1] /= 2;
            values[ravel(&idx, shape)]
        })
        .collect();
    let reverse: Vec<usize> = (0..rank).rev().collect();
    Tensor::from_f64_vec(data, stored.clone(), dtype, &dev())
        .unwrap()
        .slice(0, 0, stored[0], 2)
        .unwrap()
        .permute(&reverse)
        .unwrap()
}
// ANCHOR_END: scrambled

/// Either a contiguous tensor or a [`scrambled`] one with the same values.
pub fn make(values: &[f64], shape: &[usize], dtype: DType, scramble: bool) -> Tensor {
    if scramble {
        scrambled(values, shape, dtype)
    } else {
        Tensor::from_f64_vec(values.to_vec(), shape, dtype, &dev()).unwrap()
    }
}

/// Equal element by element, NaN equal to NaN.
pub fn same(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

/// `|a - b| <= tol * (1 + |b|)` element by element.
pub fn assert_close(a: &[f64], b: &[f64], tol: f64) {
    assert_eq!(a.len(), b.len(), "lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "element {i}: {x} vs {y} (tolerance {tol})"
        );
    }
}

/// A dimension size: mostly 1 to 4, sometimes 0.
pub fn dim_size() -> impl Strategy<Value = usize> {
    prop_oneof![12 => 1usize..=4, 1 => Just(0usize)]
}

/// A shape of rank `0..=max_rank` with sizes `1..=max_dim`.
pub fn shape(max_rank: usize, max_dim: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1..=max_dim, 0..=max_rank)
}

/// Two shapes that broadcast together: start from the result shape, then
/// let each operand drop some leading dimensions and turn some others to 1.
pub fn broadcastable_pair() -> impl Strategy<Value = (Vec<usize>, Vec<usize>)> {
    prop::collection::vec(dim_size(), 0..=4)
        .prop_flat_map(|out| {
            let r = out.len();
            let masks = prop::collection::vec(any::<bool>(), r);
            (Just(out), 0..=r, 0..=r, masks.clone(), masks)
        })
        .prop_map(|(out, ra, rb, ones_a, ones_b)| {
            let r = out.len();
            let pick = |rank: usize, ones: &[bool]| -> Vec<usize> {
                (r - rank..r)
                    .map(|d| if ones[d] { 1 } else { out[d] })
                    .collect()
            };
            (pick(ra, &ones_a), pick(rb, &ones_b))
        })
}

/// Small integers (exact in every dtype and every summation order), as f64.
pub fn small_ints(n: usize, seed: u64) -> Vec<f64> {
    let mut g = chapter_02::Generator::new(seed);
    (0..n).map(|_| g.below(9) as f64 - 4.0).collect()
}

/// Checks the error of an out-of-range index: it names the op, the index and
/// the size of the dimension. The CPU finds the index in the op layer,
/// before any kernel runs (`index_select: index 5 is out of range for a
/// dimension of size 3`); a GPU finds it in its kernel and says which
/// device and shapes (`index_select on cuda:0: index 5 is out of range for
/// dimension 0 of size 3 (source [3, 2], ids [2])`). Both must say these three.
pub fn assert_out_of_range(message: &str, op: &str, index: i64, size: usize) {
    assert!(
        message.starts_with(&format!("{op}:")) || message.starts_with(&format!("{op} on ")),
        "{message:?} does not start with the op {op}"
    );
    assert!(
        message.contains(&format!("index {index} is out of range"))
            && message.contains(&format!("of size {size}")),
        "{message:?} does not name index {index} and size {size}"
    );
}

/// Runs `f` in a rayon pool of its own with `threads` threads: the CPU
/// kernels split their work over the pool they are called from, so this
/// is how a lesson compares one thread with several.
pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a rayon thread pool")
        .install(f)
}
