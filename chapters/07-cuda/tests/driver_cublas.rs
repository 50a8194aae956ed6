//! The cuBLAS column-major trick, checked without a GPU: a reference
//! strided-batched GEMM that reads memory exactly as cuBLAS documents it
//! runs each [`GemmPlan`] on host buffers, and must give the row-major
//! product.

use chapter_02::{Layout, Shape};
use chapter_07::cublas::{batch_stride, cublas_library_present, GemmPlan, MatrixView};

/// `C = op(A) · op(B)` for each batch, column-major, as `cublasSgemmStridedBatched`.
fn blas_reference(p: &GemmPlan, a: &[f64], b: &[f64], c: &mut [f64]) {
    let (m, n, k) = (p.m as usize, p.n as usize, p.k as usize);
    for batch in 0..p.batch as usize {
        let a0 = batch * p.stride_a as usize;
        let b0 = batch * p.stride_b as usize;
        let c0 = batch * p.stride_c as usize;
        for j in 0..n {
            for i in 0..m {
                let mut acc = 0.0;
                for l in 0..k {
                    let av = if p.transa {
                        a[a0 + l + i * p.lda as usize]
                    } else {
                        a[a0 + i + l * p.lda as usize]
                    };
                    let bv = if p.transb {
                        b[b0 + j + l * p.ldb as usize]
                    } else {
                        b[b0 + l + j * p.ldb as usize]
                    };
                    acc += av * bv;
                }
                c[c0 + i + j * p.ldc as usize] = acc;
            }
        }
    }
}

/// Row-major `[batch, m, n]` product of two views, element by element.
fn naive(lhs: &Layout, a: &[f64], rhs: &Layout, b: &[f64]) -> Vec<f64> {
    let ld = lhs.dims();
    let r = ld.len();
    let (m, k, n) = (ld[r - 2], ld[r - 1], rhs.dims()[r - 1]);
    let batch: usize = ld[..r - 2].iter().product();
    let at = |l: &Layout, idx: &[usize]| {
        l.offset()
            + idx
                .iter()
                .zip(l.strides())
                .map(|(i, s)| i * s)
                .sum::<usize>()
    };
    let mut out = vec![0.0; batch * m * n];
    for bi in 0..batch {
        // The batch multi-index, row-major.
        let mut bidx = vec![0; r - 2];
        let mut rem = bi;
        for d in (0..r - 2).rev() {
            bidx[d] = rem % ld[d];
            rem /= ld[d];
        }
        for i in 0..m {
            for j in 0..n {
                let mut acc = 0.0;
                for l in 0..k {
                    let mut ia = bidx.clone();
                    ia.extend([i, l]);
                    let mut ib = bidx.clone();
                    ib.extend([l, j]);
                    acc += a[at(lhs, &ia)] * b[at(rhs, &ib)];
                }
                out[(bi * m + i) * n + j] = acc;
            }
        }
    }
    out
}

fn data(len: usize, seed: usize) -> Vec<f64> {
    (0..len)
        .map(|i| ((i * 7 + seed * 13) % 17) as f64 - 8.0)
        .collect()
}

fn check(lhs: Layout, a_len: usize, rhs: Layout, b_len: usize) {
    let (a, b) = (data(a_len, 1), data(b_len, 2));
    let plan = GemmPlan::new(&lhs, &rhs).expect("a plan without copies");
    let want = naive(&lhs, &a, &rhs, &b);
    let mut got = vec![f64::NAN; want.len()];
    // cuBLAS's A is our rhs and its B our lhs, each from its offset.
    blas_reference(
        &plan,
        &b[plan.offset_rhs..],
        &a[plan.offset_lhs..],
        &mut got,
    );
    assert_eq!(got, want, "{plan:?}");
}

fn layout(dims: &[usize], strides: &[usize], offset: usize) -> Layout {
    Layout::new(Shape::from(dims.to_vec()), strides.to_vec(), offset)
}

#[test]
fn cublas_trick_contiguous_batched() {
    check(
        Layout::contiguous(vec![3, 4, 5]),
        60,
        Layout::contiguous(vec![3, 5, 2]),
        30,
    );
}

#[test]
fn cublas_trick_transposed_operands_need_no_copy() {
    // lhs [4, 5] viewed from a [5, 4] buffer; rhs [5, 3] from a [3, 5] buffer.
    check(
        layout(&[4, 5], &[1, 4], 0),
        20,
        layout(&[5, 3], &[1, 5], 0),
        15,
    );
    check(
        layout(&[2, 4, 5], &[20, 1, 4], 0),
        40,
        Layout::contiguous(vec![2, 5, 3]),
        30,
    );
    let p = GemmPlan::new(&layout(&[4, 5], &[1, 4], 0), &layout(&[5, 3], &[1, 5], 0)).unwrap();
    assert!(p.transa && p.transb);
}

#[test]
fn cublas_trick_broadcast_batch_and_offsets() {
    // The same rhs for every batch (stride 0), lhs from an offset.
    check(
        layout(&[3, 2, 4], &[8, 4, 1], 5),
        5 + 24,
        layout(&[3, 4, 6], &[0, 6, 1], 0),
        24,
    );
    // Row stride wider than the row (a slice of columns).
    check(
        layout(&[3, 4], &[10, 1], 2),
        40,
        Layout::contiguous(vec![4, 2]),
        8,
    );
    // Vectors: m = 1 and n = 1.
    check(
        Layout::contiguous(vec![1, 7]),
        7,
        Layout::contiguous(vec![7, 1]),
        7,
    );
}

#[test]
fn cublas_trick_refuses_layouts_that_need_a_copy() {
    // Neither stride is 1.
    assert!(GemmPlan::new(
        &layout(&[4, 5], &[10, 2], 0),
        &Layout::contiguous(vec![5, 3])
    )
    .is_none());
    // Batch dims not evenly spaced.
    assert!(batch_stride(&[2, 3], &[100, 7], 6).is_none());
    assert_eq!(batch_stride(&[2, 3], &[18, 6], 6), Some(6));
    assert_eq!(batch_stride(&[2, 3], &[0, 0], 6), Some(0));
    assert_eq!(
        MatrixView::of(3, 4, 4, 1),
        Some(MatrixView {
            transposed: false,
            ld: 4
        })
    );
    assert_eq!(
        MatrixView::of(3, 4, 1, 3),
        Some(MatrixView {
            transposed: true,
            ld: 3
        })
    );
}

#[test]
fn cublas_is_optional() {
    // Absent here: no panic, just `false` (and `Cublas::new` gives None).
    println!("cuBLAS present: {}", cublas_library_present());
}

/// On a GPU with cuBLAS: a transposed, batched product against the CPU.
#[test]
fn cublas_sgemm_on_the_gpu_matches_the_reference() {
    use chapter_07::cublas::Cublas;
    use chapter_07::driver::{device_count, driver_library_present, Driver};
    use chapter_07::Runtime;
    use std::sync::Arc;
    if !driver_library_present() || !device_count().is_ok_and(|n| n > 0) {
        println!("skipped: no GPU");
        return;
    }
    let d = Arc::new(Driver::open(0).unwrap());
    let Some(blas) = Cublas::new(d.clone()) else {
        println!("skipped: no cuBLAS library on the GPU machine");
        return;
    };
    // lhs [2, 3, 4] stored as [2, 4, 3] (transposed view); rhs [2, 4, 5].
    let lhs = layout(&[2, 3, 4], &[12, 1, 3], 0);
    let rhs = Layout::contiguous(vec![2, 4, 5]);
    let (a, b) = (data(24, 1), data(40, 2));
    let want = naive(&lhs, &a, &rhs, &b);
    let up = |v: &[f64]| -> u64 {
        let bytes: Vec<u8> = v.iter().flat_map(|x| (*x as f32).to_le_bytes()).collect();
        let p = d.alloc(bytes.len()).unwrap();
        d.copy_htod(p, &bytes).unwrap();
        p
    };
    let (pa, pb) = (up(&a), up(&b));
    let pc = d.alloc(4 * want.len()).unwrap();
    assert!(blas.sgemm(pa, &lhs, pb, &rhs, pc).unwrap());
    let mut back = vec![0u8; 4 * want.len()];
    d.copy_dtoh(&mut back, pc).unwrap();
    for (i, w) in want.iter().enumerate() {
        let got = f32::from_le_bytes(back[4 * i..4 * i + 4].try_into().unwrap());
        assert_eq!(got as f64, *w, "element {i}");
    }
    println!("cuBLAS sgemm matches on {}", blas.describe());
}
