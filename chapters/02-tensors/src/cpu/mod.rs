//! The CPU backend: storage is a plain `Vec` of elements, and each primitive
//! is a loop over strided views (see [`strided`]), with matrix products
//! handed to `matrixmultiply`.

mod elementwise;
mod fused;
mod index;
mod matmul;
mod reduce;
pub(crate) mod strided;

use crate::backend::{
    Backend, BackendStorage, BinaryOp, CmpOp, Program, ReduceOp, Storage, UnaryOp,
};
use crate::{DType, Error, Layout, Result, Shape};
use std::any::Any;
use std::sync::Arc;

// ANCHOR: cpu_storage
/// Elements on the host, one `Vec` per dtype. It is also the currency for
/// moving data between devices: every backend can read and write it.
#[derive(Debug, Clone, PartialEq)]
pub enum CpuStorage {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U8(Vec<u8>),
}
// ANCHOR_END: cpu_storage

impl CpuStorage {
    pub fn dtype(&self) -> DType {
        match self {
            CpuStorage::F32(_) => DType::F32,
            CpuStorage::F64(_) => DType::F64,
            CpuStorage::I64(_) => DType::I64,
            CpuStorage::U8(_) => DType::U8,
        }
    }
    pub fn len(&self) -> usize {
        match self {
            CpuStorage::F32(v) => v.len(),
            CpuStorage::F64(v) => v.len(),
            CpuStorage::I64(v) => v.len(),
            CpuStorage::U8(v) => v.len(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `i` as an `f64` (for printing and tests).
    pub fn get_f64(&self, i: usize) -> f64 {
        match self {
            CpuStorage::F32(v) => v[i] as f64,
            CpuStorage::F64(v) => v[i],
            CpuStorage::I64(v) => v[i] as f64,
            CpuStorage::U8(v) => v[i] as f64,
        }
    }
}

impl BackendStorage for CpuStorage {
    fn dtype(&self) -> DType {
        CpuStorage::dtype(self)
    }
    fn len(&self) -> usize {
        CpuStorage::len(self)
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// The CPU device.
#[derive(Debug, Default)]
pub struct CpuBackend;

// ANCHOR: downcast
/// Downcasts a storage handed to the CPU backend; a storage from another
/// device here is a bug in the caller, reported as an error.
fn cpu(s: &dyn BackendStorage) -> Result<&CpuStorage> {
    s.as_any()
        .downcast_ref::<CpuStorage>()
        .ok_or_else(|| Error::invalid("cpu backend", "storage belongs to another device"))
}

fn wrap(s: CpuStorage) -> Storage {
    Arc::new(s)
}
// ANCHOR_END: downcast

fn copy_rows<T: Copy>(dst: &mut [T], ld: &Layout, src: &[T], ls: &Layout) {
    strided::for_each_row([ld, ls], |[od, os], len, [sd, ss]| {
        for i in 0..len {
            dst[od + i * sd] = src[os + i * ss];
        }
    });
}

impl Backend for CpuBackend {
    fn name(&self) -> String {
        "cpu".to_string()
    }

    fn upload(&self, data: CpuStorage) -> Result<Storage> {
        Ok(wrap(data))
    }

    fn to_cpu(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        let s = cpu(src)?;
        if layout.is_contiguous() && layout.offset() == 0 && layout.elem_count() == s.len() {
            return Ok(s.clone());
        }
        Ok(elementwise::cast(s, layout, s.dtype()))
    }

    fn full(&self, shape: &Shape, value: f64, dtype: DType) -> Result<Storage> {
        let n = shape.elem_count();
        Ok(wrap(match dtype {
            DType::F32 => CpuStorage::F32(vec![value as f32; n]),
            DType::F64 => CpuStorage::F64(vec![value; n]),
            DType::I64 => CpuStorage::I64(vec![value as i64; n]),
            DType::U8 => CpuStorage::U8(vec![value as u8; n]),
        }))
    }

    fn copy(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        let s = cpu(src)?;
        Ok(wrap(elementwise::cast(s, layout, s.dtype())))
    }

    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let s = cpu(src)?;
        let d = dst
            .as_any_mut()
            .downcast_mut::<CpuStorage>()
            .ok_or_else(|| Error::invalid("copy_into", "storage belongs to another device"))?;
        match (d, s) {
            (CpuStorage::F32(d), CpuStorage::F32(s)) => copy_rows(d, dst_layout, s, src_layout),
            (CpuStorage::F64(d), CpuStorage::F64(s)) => copy_rows(d, dst_layout, s, src_layout),
            (CpuStorage::I64(d), CpuStorage::I64(s)) => copy_rows(d, dst_layout, s, src_layout),
            (CpuStorage::U8(d), CpuStorage::U8(s)) => copy_rows(d, dst_layout, s, src_layout),
            (d, s) => {
                return Err(Error::DTypeMismatch {
                    op: "copy_into",
                    lhs: d.dtype(),
                    rhs: s.dtype(),
                })
            }
        }
        Ok(())
    }

    fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType) -> Result<Storage> {
        Ok(wrap(elementwise::cast(cpu(src)?, layout, dtype)))
    }

    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        Ok(wrap(elementwise::unary(op, cpu(src)?, layout)?))
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        Ok(wrap(elementwise::binary(
            op,
            cpu(lhs)?,
            lhs_layout,
            cpu(rhs)?,
            rhs_layout,
        )?))
    }

    fn cmp(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        Ok(wrap(elementwise::cmp(
            op,
            cpu(lhs)?,
            lhs_layout,
            cpu(rhs)?,
            rhs_layout,
        )?))
    }

    fn where_cond(
        &self,
        cond: &dyn BackendStorage,
        cond_layout: &Layout,
        on_true: &dyn BackendStorage,
        true_layout: &Layout,
        on_false: &dyn BackendStorage,
        false_layout: &Layout,
    ) -> Result<Storage> {
        Ok(wrap(elementwise::where_cond(
            cpu(cond)?,
            cond_layout,
            cpu(on_true)?,
            true_layout,
            cpu(on_false)?,
            false_layout,
        )?))
    }

    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<Storage> {
        Ok(wrap(reduce::reduce(op, cpu(src)?, layout, axes)?))
    }

    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        Ok(wrap(matmul::matmul(
            cpu(lhs)?,
            lhs_layout,
            cpu(rhs)?,
            rhs_layout,
        )?))
    }

    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        Ok(wrap(index::index_select(
            cpu(src)?,
            layout,
            cpu(ids)?,
            ids_layout,
            dim,
        )?))
    }

    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        Ok(wrap(index::gather(
            cpu(src)?,
            layout,
            cpu(ids)?,
            ids_layout,
            dim,
        )?))
    }

    fn scatter_add(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        Ok(wrap(index::scatter_add(
            cpu(base)?,
            base_layout,
            cpu(ids)?,
            ids_layout,
            cpu(src)?,
            src_layout,
            dim,
        )?))
    }

    fn index_add(
        &self,
        base: &dyn BackendStorage,
        base_layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        Ok(wrap(index::index_add(
            cpu(base)?,
            base_layout,
            cpu(ids)?,
            ids_layout,
            cpu(src)?,
            src_layout,
            dim,
        )?))
    }

    fn fused(
        &self,
        program: &Program,
        inputs: &[(&dyn BackendStorage, &Layout)],
    ) -> Result<Vec<Storage>> {
        program.validate(inputs.len())?;
        // Strided inputs (a transposed gradient, say) are copied to
        // contiguous buffers first: one extra pass for that input only.
        let copies: Vec<Option<CpuStorage>> = inputs
            .iter()
            .map(|(s, l)| {
                Ok(if l.is_contiguous() {
                    None
                } else {
                    Some(elementwise::cast(cpu(*s)?, l, s.dtype()))
                })
            })
            .collect::<Result<_>>()?;
        let mut views = Vec::with_capacity(inputs.len());
        for ((s, l), copy) in inputs.iter().zip(&copies) {
            views.push(match copy {
                Some(c) => (c, 0, c.len()),
                None => (cpu(*s)?, l.offset(), l.elem_count()),
            });
        }
        match fused::try_fused(program, &views) {
            Some(outs) => Ok(outs.into_iter().map(wrap).collect()),
            None => program.run_unfused(self, inputs),
        }
    }
}
