//! Batched matrix multiplication on top of the `gemm` crate.
//!
//! `gemm` implements the BLIS approach (packing panels of A and B into
//! cache-sized blocks and running a register-blocked micro-kernel, with
//! kernels chosen at run time for the CPU's vector width) and accepts
//! arbitrary row and column strides. That last property means a transposed
//! view never needs copying: `a.t().matmul(b)` passes the swapped strides
//! straight through. Its threads are rayon's pool, which every parallel CPU
//! kernel of the library shares.

use super::CpuStorage;
use crate::{Error, Layout, Result};

// ANCHOR: matmul
/// `[batch.., m, k] @ [batch.., k, n] -> [batch.., m, n]` (contiguous).
pub(crate) fn matmul(
    a: &CpuStorage,
    la: &Layout,
    b: &CpuStorage,
    lb: &Layout,
) -> Result<CpuStorage> {
    let rank = la.rank();
    let (m, k, n) = (
        la.dims()[rank - 2],
        la.dims()[rank - 1],
        lb.dims()[rank - 1],
    );
    let batch_dims = &la.dims()[..rank - 2];
    let batch: usize = batch_dims.iter().product();
    // Offsets of each batch's matrices: walk the batch dims of both layouts.
    let batch_layout = |l: &Layout| {
        Layout::new(
            batch_dims.to_vec().into(),
            l.strides()[..rank - 2].to_vec(),
            l.offset(),
        )
    };
    let a_offsets: Vec<usize> = batch_layout(la).offsets().collect();
    let b_offsets: Vec<usize> = batch_layout(lb).offsets().collect();
    let (rsa, csa) = (
        la.strides()[rank - 2] as isize,
        la.strides()[rank - 1] as isize,
    );
    let (rsb, csb) = (
        lb.strides()[rank - 2] as isize,
        lb.strides()[rank - 1] as isize,
    );

    // Small products run on one thread: waking the others costs more
    // than they would save.
    let parallelism = if 2 * m * n * k >= 1 << 20 && super::threads() > 1 {
        gemm::Parallelism::Rayon(super::threads())
    } else {
        gemm::Parallelism::None
    };
    macro_rules! run {
        ($x:expr, $y:expr, $t:ty, $variant:ident) => {{
            // Every element is written below (β = 0), so a kept buffer's old
            // values do not matter; with k = 0 the product is all zeros.
            let mut out = super::pool::overwritten(batch * m * n, <$t>::default());
            if k == 0 {
                out.fill(<$t>::default());
            }
            if m * n * k > 0 {
                for (i, (&oa, &ob)) in a_offsets.iter().zip(&b_offsets).enumerate() {
                    let c = &mut out[i * m * n..(i + 1) * m * n];
                    // SAFETY: the tensor layer checked that both layouts lie
                    // within their storage, and `c` holds exactly m*n elements
                    // with row stride n and column stride 1. `gemm` computes
                    // dst = α·dst + β·lhs·rhs: α = 0 with `read_dst` false
                    // ignores the old contents, β = 1.
                    unsafe {
                        gemm::gemm(
                            m,
                            n,
                            k,
                            c.as_mut_ptr(),
                            1,
                            n as isize,
                            false,
                            $x.as_ptr().add(oa),
                            csa,
                            rsa,
                            $y.as_ptr().add(ob),
                            csb,
                            rsb,
                            <$t>::default(),
                            1.0,
                            false,
                            false,
                            false,
                            parallelism,
                        );
                    }
                }
            }
            CpuStorage::$variant(out)
        }};
    }
    Ok(match (a, b) {
        (CpuStorage::F32(x), CpuStorage::F32(y)) => run!(x, y, f32, F32),
        (CpuStorage::F64(x), CpuStorage::F64(y)) => run!(x, y, f64, F64),
        (x, y) if x.dtype() != y.dtype() => {
            return Err(Error::DTypeMismatch {
                op: "matmul",
                lhs: x.dtype(),
                rhs: y.dtype(),
            })
        }
        (x, _) => {
            // i64/u8 are refused by the op layer; half arrives widened.
            return Err(Error::UnsupportedDType {
                op: "matmul",
                dtype: x.dtype(),
            });
        }
    })
}
// ANCHOR_END: matmul
