//! Sorting rows: the primitive behind `sort`, `argsort` and `topk`.

use super::strided::map1;
use super::{on_storage, CpuStorage};
use crate::{Layout, WithDType};
use std::cmp::Ordering;

/// A total order on elements: numbers as usual, NaN above everything (and
/// equal to itself), as PyTorch sorts.
fn total_order<T: WithDType>(a: T, b: T) -> Ordering {
    match a.partial_cmp(&b) {
        Some(o) => o,
        None => {
            let (a_nan, b_nan) = (a.partial_cmp(&a).is_none(), b.partial_cmp(&b).is_none());
            a_nan.cmp(&b_nan)
        }
    }
}

// ANCHOR: argsort
/// For each row along the last dimension, the positions that sort it,
/// stably (ties keep their original order in both directions).
fn argsort_typed<T: WithDType>(x: &[T], l: &Layout, descending: bool) -> Vec<i64> {
    let values = map1(x, l, |v| v);
    let n = l.dims().last().copied().unwrap_or(1);
    let mut out: Vec<i64> = Vec::with_capacity(values.len());
    let mut order: Vec<usize> = Vec::with_capacity(n);
    for row in values.chunks(n.max(1)) {
        order.clear();
        order.extend(0..row.len());
        if descending {
            order.sort_by(|&i, &j| total_order(row[j], row[i]));
        } else {
            order.sort_by(|&i, &j| total_order(row[i], row[j]));
        }
        out.extend(order.iter().map(|&i| i as i64));
    }
    out
}
// ANCHOR_END: argsort

pub(crate) fn argsort(s: &CpuStorage, l: &Layout, descending: bool) -> CpuStorage {
    CpuStorage::I64(on_storage!(s, x: T => argsort_typed(x, l, descending)))
}
