//! Matrix products on cuBLAS, NVIDIA's BLAS, when it is installed.
//!
//! Our own tiled GEMM kernel teaches how a GPU multiplies matrices; cuBLAS
//! does it several times faster with hand-tuned kernels for each GPU. It
//! is optional: [`Cublas::new`] returns `None` when `libcublas` is absent,
//! and the backend uses its own kernel.
//!
//! BLAS is column-major and we are row-major. We do not copy anything to
//! convert; we use the *column-major trick* (see [`GemmPlan`]).

use crate::driver::Driver;
use crate::runtime::{DevicePtr, Runtime};
use chapter_02::{Error, Layout, Result};
use cudarc::cublas::sys;
use std::sync::Arc;

// ANCHOR: trick
/// How one row-major matrix `[rows, cols]` (with strides `row_stride`,
/// `col_stride` in elements) looks to column-major BLAS.
///
/// A row-major matrix with rows `ld` elements apart *is*, read
/// column-major with leading dimension `ld`, its own transpose. So a
/// plain row-major matrix is `op = N` of `M^T`, and a transposed view
/// (`col_stride` > 1, `row_stride` = 1, which is column-major storage)
/// is `op = T` of `M^T`: no copy either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatrixView {
    /// BLAS must transpose what it reads (`CUBLAS_OP_T`).
    pub transposed: bool,
    /// The leading dimension: elements between consecutive rows (row
    /// major) or columns (a transposed view).
    pub ld: i64,
}

impl MatrixView {
    /// `None` when neither stride is 1 (a strided slice): such an operand
    /// is made contiguous first.
    pub fn of(
        rows: usize,
        cols: usize,
        row_stride: usize,
        col_stride: usize,
    ) -> Option<MatrixView> {
        // A dimension of size 1 has any stride; it never moves.
        if cols == 1 || col_stride == 1 {
            let ld = if rows == 1 { cols } else { row_stride };
            (ld >= cols.max(1)).then_some(MatrixView {
                transposed: false,
                ld: ld as i64,
            })
        } else if rows == 1 || row_stride == 1 {
            let ld = if cols == 1 { rows } else { col_stride };
            (ld >= rows.max(1)).then_some(MatrixView {
                transposed: true,
                ld: ld as i64,
            })
        } else {
            None
        }
    }
}

/// The one stride between consecutive matrices of the batch dimensions
/// `dims` with `strides` (0 when the operand is broadcast over the whole
/// batch), or `None` when the batch dimensions are not evenly spaced.
pub fn batch_stride(dims: &[usize], strides: &[usize], matrix_elems: usize) -> Option<i64> {
    let real: Vec<(usize, usize)> = dims
        .iter()
        .zip(strides)
        .filter(|(&d, _)| d > 1)
        .map(|(&d, &s)| (d, s))
        .collect();
    let Some(&(_, last)) = real.last() else {
        return Some(matrix_elems as i64);
    };
    if real.iter().all(|&(_, s)| s == 0) {
        return Some(0);
    }
    // Row-major over the batch: each stride is the next one times its size.
    for w in real.windows(2) {
        if w[0].1 != w[1].1 * w[1].0 {
            return None;
        }
    }
    Some(last as i64)
}

/// Every argument of one `cublas?gemmStridedBatched` call computing the
/// row-major product `C[b] = A[b] · B[b]`, `[m, k] × [k, n] → [m, n]`.
///
/// Column-major BLAS sees our row-major `C` as `Cᵀ` (`[n, m]`, leading
/// dimension `n`). Since `Cᵀ = Bᵀ · Aᵀ`, we ask BLAS for the product of
/// `Bᵀ` (which is how it sees `B`) and `Aᵀ` (how it sees `A`): swap the
/// operands, swap `m` and `n`, and the result lands in `C` row-major.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GemmPlan {
    /// BLAS's `m, n, k`: our `n, m, k`.
    pub m: i64,
    pub n: i64,
    pub k: i64,
    /// BLAS's first operand is our `B`.
    pub transa: bool,
    pub lda: i64,
    pub stride_a: i64,
    /// BLAS's second operand is our `A`.
    pub transb: bool,
    pub ldb: i64,
    pub stride_b: i64,
    pub ldc: i64,
    pub stride_c: i64,
    pub batch: i64,
    /// Element offsets of our `A` and `B` (from their layouts).
    pub offset_lhs: usize,
    pub offset_rhs: usize,
}

impl GemmPlan {
    /// The plan for `lhs` `[batch.., m, k]` × `rhs` `[batch.., k, n]`, or
    /// `None` when an operand's layout cannot be passed without a copy.
    pub fn new(lhs: &Layout, rhs: &Layout) -> Option<GemmPlan> {
        let (ld, rd) = (lhs.dims(), rhs.dims());
        let (ls, rs) = (lhs.strides(), rhs.strides());
        let r = ld.len();
        if r < 2 || rd.len() != r || ld[..r - 2] != rd[..r - 2] || ld[r - 1] != rd[r - 2] {
            return None;
        }
        let (m, k, n) = (ld[r - 2], ld[r - 1], rd[r - 1]);
        let a = MatrixView::of(m, k, ls[r - 2], ls[r - 1])?;
        let b = MatrixView::of(k, n, rs[r - 2], rs[r - 1])?;
        let batch: usize = ld[..r - 2].iter().product();
        let stride_a = batch_stride(&rd[..r - 2], &rs[..r - 2], k * n)?;
        let stride_b = batch_stride(&ld[..r - 2], &ls[..r - 2], m * k)?;
        let fits = |v: usize| i32::try_from(v).is_ok();
        if ![m, n, k, batch].into_iter().all(fits) {
            return None;
        }
        Some(GemmPlan {
            m: n as i64,
            n: m as i64,
            k: k as i64,
            transa: b.transposed,
            lda: b.ld,
            stride_a,
            transb: a.transposed,
            ldb: a.ld,
            stride_b,
            ldc: (n.max(1)) as i64,
            stride_c: (m * n) as i64,
            batch: batch as i64,
            offset_lhs: lhs.offset(),
            offset_rhs: rhs.offset(),
        })
    }
}
// ANCHOR_END: trick

/// A cuBLAS handle bound to one device's stream.
pub struct Cublas {
    handle: sys::cublasHandle_t,
    driver: Arc<Driver>,
}

// SAFETY: a handle may be used from any thread, one call at a time; our
// calls are serialised on the device's single stream by the caller's lock
// discipline (the backend holds the handle behind a mutex).
unsafe impl Send for Cublas {}

impl std::fmt::Debug for Cublas {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cublas({})", self.driver.device_name())
    }
}

/// Is `libcublas` present?
pub fn cublas_library_present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { sys::is_culib_present() }
}

impl Cublas {
    /// A handle on `driver`'s device and stream; `None` when cuBLAS is not
    /// installed (or cannot start on this device).
    pub fn new(driver: Arc<Driver>) -> Option<Cublas> {
        if !cublas_library_present() || driver.make_current().is_err() {
            return None;
        }
        let handle = cudarc::cublas::result::create_handle().ok()?;
        // SAFETY: a fresh handle and the driver's live stream.
        let stream = driver.stream() as sys::cudaStream_t;
        if unsafe { cudarc::cublas::result::set_stream(handle, stream) }.is_err() {
            // SAFETY: created above.
            unsafe {
                let _ = cudarc::cublas::result::destroy_handle(handle);
            }
            return None;
        }
        Some(Cublas { handle, driver })
    }

    fn status(&self, what: &str, s: sys::cublasStatus_t) -> Result<()> {
        if s == sys::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            Ok(())
        } else {
            Err(Error::device(
                "matmul",
                self.driver.device_name(),
                format!("{what}: cuBLAS {s:?}"),
            ))
        }
    }

    /// `c = lhs · rhs` in `f32`: `lhs` at `a` read through `lhs_layout`
    /// (`[batch.., m, k]`), `rhs` at `b` (`[batch.., k, n]`), `c`
    /// contiguous `[batch.., m, n]`. `Ok(false)` when a layout needs a copy
    /// first (see [`GemmPlan::new`]).
    pub fn sgemm(
        &self,
        a: DevicePtr,
        lhs: &Layout,
        b: DevicePtr,
        rhs: &Layout,
        c: DevicePtr,
    ) -> Result<bool> {
        let Some(p) = GemmPlan::new(lhs, rhs) else {
            return Ok(false);
        };
        self.driver.make_current()?;
        let (alpha, beta) = (1f32, 0f32);
        let op = |t: bool| {
            if t {
                sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        // SAFETY: the plan's sizes, strides and offsets stay inside the
        // blocks the layouts describe (the caller's contract).
        let s = unsafe {
            sys::cublasSgemmStridedBatched(
                self.handle,
                op(p.transa),
                op(p.transb),
                p.m as i32,
                p.n as i32,
                p.k as i32,
                &alpha,
                (b + 4 * p.offset_rhs as u64) as *const f32,
                p.lda as i32,
                p.stride_a,
                (a + 4 * p.offset_lhs as u64) as *const f32,
                p.ldb as i32,
                p.stride_b,
                &beta,
                c as *mut f32,
                p.ldc as i32,
                p.stride_c,
                p.batch as i32,
            )
        };
        self.status("cublasSgemmStridedBatched", s)?;
        Ok(true)
    }

    /// As [`Cublas::sgemm`], in `f64`.
    pub fn dgemm(
        &self,
        a: DevicePtr,
        lhs: &Layout,
        b: DevicePtr,
        rhs: &Layout,
        c: DevicePtr,
    ) -> Result<bool> {
        let Some(p) = GemmPlan::new(lhs, rhs) else {
            return Ok(false);
        };
        self.driver.make_current()?;
        let (alpha, beta) = (1f64, 0f64);
        let op = |t: bool| {
            if t {
                sys::cublasOperation_t::CUBLAS_OP_T
            } else {
                sys::cublasOperation_t::CUBLAS_OP_N
            }
        };
        // SAFETY: as in `sgemm`.
        let s = unsafe {
            sys::cublasDgemmStridedBatched(
                self.handle,
                op(p.transa),
                op(p.transb),
                p.m as i32,
                p.n as i32,
                p.k as i32,
                &alpha,
                (b + 8 * p.offset_rhs as u64) as *const f64,
                p.lda as i32,
                p.stride_a,
                (a + 8 * p.offset_lhs as u64) as *const f64,
                p.ldb as i32,
                p.stride_b,
                &beta,
                c as *mut f64,
                p.ldc as i32,
                p.stride_c,
                p.batch as i32,
            )
        };
        self.status("cublasDgemmStridedBatched", s)?;
        Ok(true)
    }

    /// The device this handle works on.
    pub fn describe(&self) -> String {
        self.driver.describe()
    }
}

impl Drop for Cublas {
    fn drop(&mut self) {
        if self.driver.make_current().is_ok() {
            // SAFETY: created in `new`, destroyed once.
            unsafe {
                let _ = cudarc::cublas::result::destroy_handle(self.handle);
            }
        }
    }
}
