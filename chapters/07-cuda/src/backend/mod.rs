//! `CudaBackend`: chapter 02's [`Backend`] trait on our own CUDA kernels.
//!
//! Every primitive of the trait becomes one (or a few) kernel launches on
//! a [`Runtime`]: the CUDA driver on a real GPU, or the emulator on the
//! CPU. The backend's job is the part a kernel cannot do for itself:
//!
//! - **memory**: outputs come from the [`CachingAllocator`], so after the
//!   first training step no launch waits for `cuMemAlloc`;
//! - **layouts**: a view arrives as storage plus [`Layout`]; dimensions
//!   that step through memory as one are merged first ([`Strided`]), so a
//!   contiguous tensor of any shape reaches a kernel as one flat run;
//! - **launch shapes**: how many threads, in blocks of what size (see
//!   [`elementwise_launch`] and [`row_launch`]);
//! - **errors**: a bad index found by a kernel, an out-of-memory, a failed
//!   launch all come back as [`Error::Device`] naming the operation, the
//!   device and the shapes, and the device keeps working.
//!
//! What differs between a GPU and the emulator (cuBLAS, compiling fused
//! programs) sits behind [`Extensions`].

mod fused_host;
mod indexing;

pub use fused_host::HostFused;

use crate::allocator::{CachingAllocator, DeviceBuffer};
use crate::codegen::{self, FusedArgs, FusedKernel, InputPattern};
use crate::emulator::{KernelArgs, RuntimeExt, Strided};
use crate::runtime::{DevicePtr, LaunchConfig, Runtime};
use chapter_02::backend::{
    Backend, BackendStorage, BinaryOp, CmpOp, Distribution, Program, RandomStream, ReduceOp,
    Storage, UnaryOp,
};
use chapter_02::{CpuStorage, DType, DeviceId, Error, Layout, Result, Shape, WithDType};
use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

// ANCHOR: storage
/// Elements of one dtype in device memory: a block from the caching
/// allocator, and what it holds. Dropping it returns the block to the
/// allocator's cache.
pub struct CudaStorage<R: Runtime> {
    buf: DeviceBuffer<R>,
    dtype: DType,
    len: usize,
}
// ANCHOR_END: storage

impl<R: Runtime> CudaStorage<R> {
    /// The address of element 0 (0 for an empty storage).
    pub fn ptr(&self) -> DevicePtr {
        self.buf.ptr()
    }
    /// The address of element `i`.
    pub fn ptr_at(&self, i: usize) -> DevicePtr {
        self.buf.ptr() + (i * self.dtype.size_in_bytes()) as u64
    }
    /// The device block behind the storage.
    pub fn buffer(&self) -> &DeviceBuffer<R> {
        &self.buf
    }
}

impl<R: Runtime> fmt::Debug for CudaStorage<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CudaStorage({} × {}, {:?})",
            self.len, self.dtype, self.buf
        )
    }
}

impl<R: Runtime> BackendStorage for CudaStorage<R> {
    fn dtype(&self) -> DType {
        self.dtype
    }
    fn len(&self) -> usize {
        self.len
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

// ANCHOR: extensions
/// What a runtime may do better than our portable kernels, or must do its
/// own way. The defaults say "not here".
pub trait Extensions<R: Runtime>: Send + Sync + fmt::Debug {
    /// `c = lhs · rhs` with a vendor library (cuBLAS); `Ok(false)` when it
    /// cannot (no library, a dtype or layout it does not take), and our
    /// `gemm_batched` kernel runs instead.
    fn gemm(
        &self,
        _dtype: DType,
        _a: DevicePtr,
        _lhs: &Layout,
        _b: DevicePtr,
        _rhs: &Layout,
        _c: DevicePtr,
    ) -> Result<bool> {
        Ok(false)
    }

    /// Makes a generated fused kernel launchable (NVRTC on a GPU, the host
    /// C++ compiler on the emulator). `Err(reason)` means it cannot be
    /// compiled here: the program then runs unfused, and the reason is
    /// printed once.
    fn prepare_fused(&self, runtime: &R, kernel: &FusedKernel) -> std::result::Result<(), String>;

    /// Launches a prepared fused kernel.
    fn launch_fused(&self, runtime: &R, kernel: &FusedKernel, args: &mut FusedArgs) -> Result<()> {
        codegen::launch_fused(runtime, kernel, args)
    }
}
// ANCHOR_END: extensions

// ANCHOR: backend
/// A CUDA device (or the emulator) as a chapter 02 [`Backend`].
pub struct CudaBackend<R: Runtime> {
    id: DeviceId,
    runtime: Arc<R>,
    alloc: CachingAllocator<R>,
    ext: Box<dyn Extensions<R>>,
    /// Fused programs already generated and prepared, by cache key
    /// (`None`: this program cannot be compiled here).
    fused: Mutex<HashMap<String, Option<Arc<FusedKernel>>>>,
}
// ANCHOR_END: backend

impl<R: Runtime> fmt::Debug for CudaBackend<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CudaBackend({}: {})", self.id, self.runtime.describe())
    }
}

/// Bytes of a host slice of plain numbers.
fn bytes_of<T: Copy>(v: &[T]) -> &[u8] {
    // SAFETY: the element types are plain numbers with no padding.
    unsafe { std::slice::from_raw_parts(v.as_ptr() as *const u8, std::mem::size_of_val(v)) }
}
fn bytes_of_mut<T: Copy>(v: &mut [T]) -> &mut [u8] {
    // SAFETY: as above; every bit pattern is a valid value of these types.
    unsafe { std::slice::from_raw_parts_mut(v.as_mut_ptr() as *mut u8, std::mem::size_of_val(v)) }
}

/// The suffix of a dtype in kernel names: `unary_exp_f32`.
pub fn suffix(dtype: DType) -> &'static str {
    match dtype {
        DType::F16 => "f16",
        DType::BF16 => "bf16",
        DType::F32 => "f32",
        DType::F64 => "f64",
        DType::I64 => "i64",
        DType::U8 => "u8",
    }
}

// ANCHOR: launch_shapes
/// Threads per block for elementwise kernels. 256 is the usual choice: a
/// multiple of the 32-thread warp, small enough that several blocks share
/// a multiprocessor (hiding each other's memory latency), large enough
/// that the block scheduler is not the bottleneck.
pub const ELEMENTWISE_THREADS: u32 = 256;
/// The most blocks an elementwise launch uses. Beyond `65536 · 256 = 2²⁴`
/// elements the kernels' grid-stride loops give each thread several
/// elements: fewer, longer-lived threads, the same coverage.
pub const MAX_BLOCKS: usize = 1 << 16;

/// One thread per output element: `⌈n / 256⌉` blocks of 256 threads
/// (capped at [`MAX_BLOCKS`]). A tensor of fewer than 256 elements gets
/// one block of just enough whole warps: the GPU would idle the rest
/// anyway, and the emulator (which runs every thread) is spared them.
pub fn elementwise_launch(n: usize) -> LaunchConfig {
    let threads = (n.div_ceil(32).max(1) * 32).min(ELEMENTWISE_THREADS as usize) as u32;
    LaunchConfig::for_elements(n.min(MAX_BLOCKS * ELEMENTWISE_THREADS as usize), threads)
}

/// One block per row of `cols` elements (grid-stride over rows beyond
/// 65,535): the block's threads stride along the row together (thread `t`
/// reads columns `t, t + B, …`, so a warp reads 32 neighbours at once) and
/// combine their partial results with warp shuffles. The block is the
/// row's length rounded up to a warp, at most 256 threads: a short row
/// does not leave most of a large block idle.
pub fn row_launch(rows: usize, cols: usize) -> LaunchConfig {
    let threads = cols.div_ceil(32).clamp(1, 8) as u32 * 32;
    LaunchConfig {
        grid: [rows.clamp(1, 65_535) as u32, 1, 1],
        block: [threads, 1, 1],
        shared_mem_bytes: 0,
    }
}
// ANCHOR_END: launch_shapes

fn unary_name(op: UnaryOp) -> (&'static str, f64, f64) {
    match op {
        UnaryOp::Neg => ("neg", 0.0, 0.0),
        UnaryOp::Recip => ("recip", 0.0, 0.0),
        UnaryOp::Sqr => ("sqr", 0.0, 0.0),
        UnaryOp::Sqrt => ("sqrt", 0.0, 0.0),
        UnaryOp::Exp => ("exp", 0.0, 0.0),
        UnaryOp::Log => ("log", 0.0, 0.0),
        UnaryOp::Abs => ("abs", 0.0, 0.0),
        UnaryOp::Sign => ("sign", 0.0, 0.0),
        UnaryOp::Sin => ("sin", 0.0, 0.0),
        UnaryOp::Cos => ("cos", 0.0, 0.0),
        UnaryOp::Tanh => ("tanh", 0.0, 0.0),
        UnaryOp::Sigmoid => ("sigmoid", 0.0, 0.0),
        UnaryOp::Relu => ("relu", 0.0, 0.0),
        UnaryOp::Erf => ("erf", 0.0, 0.0),
        UnaryOp::Affine { mul, add } => ("affine", mul, add),
        UnaryOp::Powf(e) => ("powf", e, 0.0),
        UnaryOp::Clamp { min, max } => ("clamp", min, max),
        UnaryOp::LeakyRelu(s) => ("leaky_relu", s, 0.0),
    }
}

fn binary_name(op: BinaryOp) -> &'static str {
    match op {
        BinaryOp::Add => "add",
        BinaryOp::Sub => "sub",
        BinaryOp::Mul => "mul",
        BinaryOp::Div => "div",
        BinaryOp::Pow => "pow",
        BinaryOp::Maximum => "maximum",
        BinaryOp::Minimum => "minimum",
    }
}

fn cmp_name(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "eq",
        CmpOp::Ne => "ne",
        CmpOp::Lt => "lt",
        CmpOp::Le => "le",
        CmpOp::Gt => "gt",
        CmpOp::Ge => "ge",
    }
}

fn unsupported(op: &'static str, dtype: DType) -> Error {
    Error::UnsupportedDType { op, dtype }
}

impl<R: Runtime> CudaBackend<R> {
    /// A backend for device `id` on `runtime`, with `ext` for what the
    /// runtime does its own way.
    pub fn new(id: DeviceId, runtime: Arc<R>, ext: Box<dyn Extensions<R>>) -> Self {
        CudaBackend {
            id,
            alloc: CachingAllocator::new(runtime.clone()),
            runtime,
            ext,
            fused: Mutex::new(HashMap::new()),
        }
    }

    pub fn runtime(&self) -> &Arc<R> {
        &self.runtime
    }

    /// The caching allocator (its statistics show whether a loop reuses
    /// memory).
    pub fn allocator(&self) -> &CachingAllocator<R> {
        &self.alloc
    }

    /// An error of this device.
    pub(crate) fn err(&self, op: &'static str, msg: impl Into<String>) -> Error {
        Error::device(op, self.id, msg)
    }

    /// A runtime error re-labelled with the tensor operation and this
    /// device (the runtime names the kernel, which stays in the message).
    pub(crate) fn relabel(&self, op: &'static str, e: Error) -> Error {
        match e {
            Error::Device { op: what, msg, .. } => self.err(op, format!("{what}: {msg}")),
            Error::Invalid { op: what, msg } => self.err(op, format!("{what}: {msg}")),
            other => other,
        }
    }

    /// Downcasts a storage handed to this backend.
    pub(crate) fn cuda<'a>(&self, s: &'a dyn BackendStorage) -> Result<&'a CudaStorage<R>> {
        s.as_any()
            .downcast_ref::<CudaStorage<R>>()
            .ok_or_else(|| self.err("cuda backend", "storage belongs to another device"))
    }

    /// Fresh (uninitialised) storage for `n` elements.
    pub(crate) fn alloc(&self, op: &'static str, dtype: DType, n: usize) -> Result<CudaStorage<R>> {
        let buf = self
            .alloc
            .alloc(n * dtype.size_in_bytes())
            .map_err(|e| self.relabel(op, e))?;
        Ok(CudaStorage { buf, dtype, len: n })
    }

    /// Launches kernel `name`; errors are labelled with `op`.
    pub(crate) fn launch(
        &self,
        op: &'static str,
        name: &str,
        cfg: LaunchConfig,
        args: KernelArgs,
    ) -> Result<()> {
        self.runtime
            .launch_args(name, cfg, args)
            .map_err(|e| self.relabel(op, e))
    }

    /// A view as the kernels take it, merged; more than 8 dimensions that
    /// cannot be merged is an error naming the op and the shape.
    pub(crate) fn view(&self, op: &'static str, layout: &Layout) -> Result<Strided> {
        Strided::from_layout(layout).map_err(|e| self.relabel(op, e))
    }

    /// Host bytes into a fresh device block.
    fn upload_bytes(
        &self,
        op: &'static str,
        dtype: DType,
        n: usize,
        bytes: &[u8],
    ) -> Result<CudaStorage<R>> {
        let out = self.alloc(op, dtype, n)?;
        if !bytes.is_empty() {
            self.runtime
                .copy_htod(out.ptr(), bytes)
                .map_err(|e| self.relabel(op, e))?;
        }
        Ok(out)
    }

    /// Small host values (an error flag, a position list) onto the device.
    pub(crate) fn upload_values<T: WithDType>(
        &self,
        op: &'static str,
        v: &[T],
    ) -> Result<CudaStorage<R>> {
        self.upload_bytes(op, T::DTYPE, v.len(), bytes_of(v))
    }

    /// `n` elements starting at element `start` of `s`, read back.
    fn download(
        &self,
        op: &'static str,
        s: &CudaStorage<R>,
        start: usize,
        n: usize,
    ) -> Result<CpuStorage> {
        chapter_02::with_dtype!(s.dtype, T => {
            let mut v = vec![T::default(); n];
            if n > 0 {
                self.runtime
                    .copy_dtoh(bytes_of_mut(&mut v), s.ptr_at(start))
                    .map_err(|e| self.relabel(op, e))?;
            }
            Ok(v.into())
        })
    }

    /// A contiguous copy of a view, as concrete storage.
    pub(crate) fn contiguous(
        &self,
        op: &'static str,
        s: &CudaStorage<R>,
        layout: &Layout,
    ) -> Result<CudaStorage<R>> {
        let n = layout.elem_count();
        let out = self.alloc(op, s.dtype, n)?;
        if n > 0 {
            let v = self.view(op, layout)?;
            let args = KernelArgs::new()
                .arg(n as i64)
                .arg(v)
                .arg(s.ptr())
                .arg(out.ptr());
            self.launch(
                op,
                &format!("copy_{}", suffix(s.dtype)),
                elementwise_launch(n),
                args,
            )?;
        }
        Ok(out)
    }

    /// The address of a view's first element when the view is contiguous
    /// (so a kernel can read it as a flat run), else a contiguous copy.
    pub(crate) fn flat(
        &self,
        op: &'static str,
        s: &CudaStorage<R>,
        layout: &Layout,
    ) -> Result<(DevicePtr, Option<CudaStorage<R>>)> {
        if layout.is_contiguous() {
            Ok((s.ptr_at(layout.offset()), None))
        } else {
            let c = self.contiguous(op, s, layout)?;
            Ok((c.ptr(), Some(c)))
        }
    }

    fn fill(&self, op: &'static str, n: usize, value: f64, dtype: DType) -> Result<CudaStorage<R>> {
        let out = self.alloc(op, dtype, n)?;
        if n > 0 {
            let args = KernelArgs::new().arg(n as i64).arg(out.ptr()).arg(value);
            self.launch(
                op,
                &format!("fill_{}", suffix(dtype)),
                elementwise_launch(n),
                args,
            )?;
        }
        Ok(out)
    }

    fn cast_storage(
        &self,
        s: &CudaStorage<R>,
        layout: &Layout,
        dtype: DType,
    ) -> Result<CudaStorage<R>> {
        if s.dtype == dtype {
            return self.contiguous("cast", s, layout);
        }
        let n = layout.elem_count();
        let out = self.alloc("cast", dtype, n)?;
        if n > 0 {
            let v = self.view("cast", layout)?;
            let name = format!("cast_{}_{}", suffix(s.dtype), suffix(dtype));
            let args = KernelArgs::new()
                .arg(n as i64)
                .arg(v)
                .arg(s.ptr())
                .arg(out.ptr());
            self.launch("cast", &name, elementwise_launch(n), args)?;
        }
        Ok(out)
    }

    // ANCHOR: reduce
    /// Reductions: permute the reduced axes to the end, make the view
    /// contiguous if it is not (one strided copy), and the tensor is a
    /// `[rows, cols]` matrix whose rows the `reduce_*` kernels fold, one
    /// block per row. Float sums accumulate in f64 with compensation
    /// (`kernels/backend_reduce.cu`), as accurate as the CPU's pairwise sum.
    fn reduce_storage(
        &self,
        op: ReduceOp,
        s: &CudaStorage<R>,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<CudaStorage<R>> {
        let dims = layout.dims();
        let kept: Vec<usize> = (0..layout.rank()).filter(|d| !axes.contains(d)).collect();
        let mut perm = kept.clone();
        perm.extend_from_slice(axes);
        let moved = layout.permute(&perm);
        let rows: usize = kept.iter().map(|&d| dims[d]).product();
        let cols: usize = axes.iter().map(|&d| dims[d]).product();
        let (name, out_dtype) = match op {
            ReduceOp::Sum => ("sum", s.dtype),
            ReduceOp::Max => ("max", s.dtype),
            ReduceOp::Min => ("min", s.dtype),
            ReduceOp::ArgMax => ("argmax", DType::I64),
            ReduceOp::ArgMin => ("argmin", DType::I64),
        };
        if cols == 0 && op != ReduceOp::Sum {
            return Err(Error::invalid(
                "reduce",
                format!("{op:?} of an empty axis (shape {})", layout.shape()),
            ));
        }
        if rows == 0 || cols == 0 {
            return self.fill("reduce", rows, 0.0, out_dtype);
        }
        if s.dtype == DType::U8 && op == ReduceOp::Sum {
            // No u8 sum kernel: sum in i64 and wrap back to u8, as the CPU's
            // wrapping u8 sum does.
            let wide = self.cast_storage(s, layout, DType::I64)?;
            let l = Layout::contiguous(layout.shape().clone());
            let sum = self.reduce_storage(op, &wide, &l, axes)?;
            return self.cast_storage(&sum, &Layout::contiguous(rows), DType::U8);
        }
        let (x, _copy) = self.flat("reduce", s, &moved)?;
        let out = self.alloc("reduce", out_dtype, rows)?;
        let args = KernelArgs::new()
            .arg(rows as i64)
            .arg(cols as i64)
            .arg(x)
            .arg(out.ptr());
        // Float sums use the compensated kernel of `backend_reduce.cu`.
        let kernel = match (op, s.dtype.is_float()) {
            (ReduceOp::Sum, true) => format!("reduce_sum_accurate_{}", suffix(s.dtype)),
            _ => format!("reduce_{name}_{}", suffix(s.dtype)),
        };
        self.launch("reduce", &kernel, row_launch(rows, cols), args)?;
        Ok(out)
    }
    // ANCHOR_END: reduce

    // ANCHOR: matmul
    /// Batched products. Each operand is passed in place with its row,
    /// column and batch strides (a transposed operand is just swapped
    /// strides), unless its batch dimensions are not evenly spaced, when
    /// it is copied first. cuBLAS takes the product when the runtime has
    /// it; otherwise `gemm_batched`: 16 × 16 threads per block, each
    /// computing one element of a 16 × 16 tile of `C`, a grid of
    /// `⌈n/16⌉ × ⌈m/16⌉` tiles, and the batch along the grid's third axis.
    fn matmul_storage(
        &self,
        a: &CudaStorage<R>,
        la: &Layout,
        b: &CudaStorage<R>,
        lb: &Layout,
    ) -> Result<CudaStorage<R>> {
        let dtype = a.dtype;
        if !dtype.is_float() {
            return Err(unsupported("matmul", dtype));
        }
        let r = la.rank();
        let (m, k, n) = (la.dims()[r - 2], la.dims()[r - 1], lb.dims()[r - 1]);
        let batch: usize = la.dims()[..r - 2].iter().product();
        let total = batch * m * n;
        if total == 0 || k == 0 {
            return self.fill("matmul", total, 0.0, dtype);
        }
        if [m, n, k].iter().any(|&v| i32::try_from(v).is_err()) {
            return Err(self.err(
                "matmul",
                format!(
                    "a product of {} by {} is too large for one kernel",
                    la.shape(),
                    lb.shape()
                ),
            ));
        }
        // Each operand: (storage, layout, batch stride), copied if needed.
        let prepare = |s: &CudaStorage<R>,
                       l: &Layout,
                       rows: usize,
                       cols: usize|
         -> Result<(Option<CudaStorage<R>>, Layout, i64)> {
            let stride =
                crate::cublas::batch_stride(&l.dims()[..r - 2], &l.strides()[..r - 2], rows * cols);
            match stride {
                Some(st) => Ok((None, l.clone(), st)),
                None => {
                    let c = self.contiguous("matmul", s, l)?;
                    Ok((
                        Some(c),
                        Layout::contiguous(l.shape().clone()),
                        (rows * cols) as i64,
                    ))
                }
            }
        };
        let (ca, la2, sa) = prepare(a, la, m, k)?;
        let (cb, lb2, sb) = prepare(b, lb, k, n)?;
        let (pa, pb) = (
            ca.as_ref().unwrap_or(a).ptr(),
            cb.as_ref().unwrap_or(b).ptr(),
        );
        let out = self.alloc("matmul", dtype, total)?;
        if self
            .ext
            .gemm(dtype, pa, &la2, pb, &lb2, out.ptr())
            .map_err(|e| self.relabel("matmul", e))?
        {
            return Ok(out);
        }
        let esz = dtype.size_in_bytes() as u64;
        let (sa_row, sa_col) = (la2.strides()[r - 2] as i64, la2.strides()[r - 1] as i64);
        let (sb_row, sb_col) = (lb2.strides()[r - 2] as i64, lb2.strides()[r - 1] as i64);
        let args = KernelArgs::new()
            .arg(batch as i64)
            .arg(m as i32)
            .arg(n as i32)
            .arg(k as i32)
            .arg(pa + la2.offset() as u64 * esz)
            .arg(sa)
            .arg(sa_row)
            .arg(sa_col)
            .arg(pb + lb2.offset() as u64 * esz)
            .arg(sb)
            .arg(sb_row)
            .arg(sb_col)
            .arg(out.ptr());
        let cfg = LaunchConfig {
            grid: [
                n.div_ceil(16) as u32,
                m.div_ceil(16) as u32,
                batch.min(65_535) as u32,
            ],
            block: [16, 16, 1],
            shared_mem_bytes: 0,
        };
        self.launch(
            "matmul",
            &format!("gemm_batched_{}", suffix(dtype)),
            cfg,
            args,
        )?;
        Ok(out)
    }
    // ANCHOR_END: matmul

    // ANCHOR: fused
    /// A fused program as one generated kernel, compiled once per program
    /// shape (program, dtype, which inputs are strided) and cached; or,
    /// where this runtime cannot compile one, the program one primitive at
    /// a time (said once).
    fn fused_storage(
        &self,
        program: &Program,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<Vec<Storage>> {
        program.validate(inputs.len(), scalars.len())?;
        let dtype = inputs[0].0.dtype();
        let mut patterns = Vec::with_capacity(inputs.len());
        for (_, l) in inputs {
            match InputPattern::of(l) {
                Ok(p) => patterns.push(p),
                // Rank above 8: one primitive at a time copes.
                Err(_) => return program.run_unfused(self, inputs, scalars),
            }
        }
        // Strided inputs must share one rank: they do, all having the
        // shape of the first input.
        let key = codegen::cache_key(program, dtype, &patterns);
        let cached = self
            .fused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let kernel = match cached {
            Some(k) => k,
            None => {
                let prepared = match codegen::generate(program, dtype, &patterns) {
                    // A dtype the generator does not take (integers): the
                    // primitives run it.
                    Err(_) => None,
                    Ok(kernel) => match self.ext.prepare_fused(&self.runtime, &kernel) {
                        Ok(()) => Some(Arc::new(kernel)),
                        Err(reason) => {
                            codegen::note_unfused_fallback(&reason);
                            None
                        }
                    },
                };
                self.fused
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, prepared.clone());
                prepared
            }
        };
        let Some(kernel) = kernel else {
            return program.run_unfused(self, inputs, scalars);
        };
        let n = inputs[0].1.elem_count();
        let outputs: Vec<CudaStorage<R>> = (0..program.outputs.len())
            .map(|_| self.alloc("fused", dtype, n))
            .collect::<Result<_>>()?;
        let mut ins = Vec::with_capacity(inputs.len());
        for (s, l) in inputs {
            ins.push((self.cuda(*s)?.ptr(), *l));
        }
        let out_ptrs: Vec<DevicePtr> = outputs.iter().map(|o| o.ptr()).collect();
        let mut args = FusedArgs::new(&kernel, &out_ptrs, &ins, scalars)?;
        self.ext
            .launch_fused(&self.runtime, &kernel, &mut args)
            .map_err(|e| self.relabel("fused", e))?;
        Ok(outputs
            .into_iter()
            .map(|o| Arc::new(o) as Storage)
            .collect())
    }
    // ANCHOR_END: fused

    #[allow(clippy::too_many_arguments)]
    fn elementwise2(
        &self,
        op: &'static str,
        kernel: String,
        out_dtype: DType,
        a: &dyn BackendStorage,
        la: &Layout,
        b: &dyn BackendStorage,
        lb: &Layout,
    ) -> Result<Storage> {
        let (a, b) = (self.cuda(a)?, self.cuda(b)?);
        let n = la.elem_count();
        let out = self.alloc(op, out_dtype, n)?;
        if n > 0 {
            let args = KernelArgs::new()
                .arg(n as i64)
                .arg(self.view(op, la)?)
                .arg(a.ptr())
                .arg(self.view(op, lb)?)
                .arg(b.ptr())
                .arg(out.ptr());
            self.launch(op, &kernel, elementwise_launch(n), args)?;
        }
        Ok(Arc::new(out))
    }
}

impl<R: Runtime> Backend for CudaBackend<R> {
    fn id(&self) -> DeviceId {
        self.id
    }

    fn synchronize(&self) -> Result<()> {
        self.runtime
            .synchronize()
            .map_err(|e| self.relabel("synchronize", e))
    }

    // ANCHOR: transfers
    fn upload(&self, data: CpuStorage) -> Result<Storage> {
        let s = chapter_02::with_dtype!(data.dtype(), T => {
            let v = T::from_storage(&data).expect("the storage's own dtype");
            self.upload_values("upload", v)?
        });
        Ok(Arc::new(s))
    }

    /// A contiguous view is read back in place (one transfer of just its
    /// elements); any other view is first gathered into a contiguous block
    /// on the device, so the transfer carries no gaps.
    fn to_cpu(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<CpuStorage> {
        let s = self.cuda(src)?;
        let n = layout.elem_count();
        if layout.is_contiguous() || n == 0 {
            return self.download("to_cpu", s, if n == 0 { 0 } else { layout.offset() }, n);
        }
        let c = self.contiguous("to_cpu", s, layout)?;
        self.download("to_cpu", &c, 0, n)
    }
    // ANCHOR_END: transfers

    fn full(&self, shape: &Shape, value: f64, dtype: DType) -> Result<Storage> {
        Ok(Arc::new(self.fill(
            "full",
            shape.elem_count(),
            value,
            dtype,
        )?))
    }

    fn arange(&self, start: f64, step: f64, len: usize, dtype: DType) -> Result<Storage> {
        let out = self.alloc("arange", dtype, len)?;
        if len > 0 {
            let args = KernelArgs::new()
                .arg(len as i64)
                .arg(out.ptr())
                .arg(start)
                .arg(step);
            self.launch(
                "arange",
                &format!("arange_{}", suffix(dtype)),
                elementwise_launch(len),
                args,
            )?;
        }
        Ok(Arc::new(out))
    }

    // ANCHOR: random
    /// Philox on the device: every element's random words are a pure
    /// function of (seed, offset + i), so each thread computes its own and
    /// the tensor equals the CPU's for the same stream.
    fn random(
        &self,
        dist: Distribution,
        shape: &Shape,
        dtype: DType,
        stream: RandomStream,
    ) -> Result<Storage> {
        let n = shape.elem_count();
        let out = self.alloc("random", dtype, n)?;
        if n == 0 {
            return Ok(Arc::new(out));
        }
        let base = KernelArgs::new()
            .arg(n as i64)
            .arg(stream.seed)
            .arg(stream.offset);
        let sfx = suffix(dtype);
        let (name, args, threads) = match dist {
            Distribution::Uniform { lo, hi } => {
                (format!("random_uniform_{sfx}"), base.arg(lo).arg(hi), n)
            }
            // One thread per pair of outputs (Box–Muller makes two).
            Distribution::Normal { mean, std } => (
                format!("random_normal_{sfx}"),
                base.arg(mean).arg(std),
                n.div_ceil(2),
            ),
            Distribution::Bernoulli { p } => (format!("random_bernoulli_{sfx}"), base.arg(p), n),
        };
        if !dtype.is_float() && !matches!(dist, Distribution::Bernoulli { .. }) {
            return Err(unsupported("random", dtype));
        }
        self.launch(
            "random",
            &name,
            elementwise_launch(threads),
            args.arg(out.ptr()),
        )?;
        Ok(Arc::new(out))
    }
    // ANCHOR_END: random

    fn copy(&self, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        let s = self.cuda(src)?;
        Ok(Arc::new(self.contiguous("copy", s, layout)?))
    }

    fn copy_into(
        &self,
        dst: &mut dyn BackendStorage,
        dst_layout: &Layout,
        src: &dyn BackendStorage,
        src_layout: &Layout,
    ) -> Result<()> {
        let s = self.cuda(src)?;
        let (sp, dtype) = (s.ptr(), s.dtype);
        let d = dst
            .as_any_mut()
            .downcast_mut::<CudaStorage<R>>()
            .ok_or_else(|| self.err("copy_into", "storage belongs to another device"))?;
        if d.dtype != dtype {
            return Err(Error::DTypeMismatch {
                op: "copy_into",
                lhs: d.dtype,
                rhs: dtype,
            });
        }
        let n = dst_layout.elem_count();
        if n == 0 {
            return Ok(());
        }
        let args = KernelArgs::new()
            .arg(n as i64)
            .arg(self.view("copy_into", dst_layout)?)
            .arg(d.ptr())
            .arg(self.view("copy_into", src_layout)?)
            .arg(sp);
        self.launch(
            "copy_into",
            &format!("copy_into_{}", suffix(dtype)),
            elementwise_launch(n),
            args,
        )
    }

    fn cast(&self, src: &dyn BackendStorage, layout: &Layout, dtype: DType) -> Result<Storage> {
        let s = self.cuda(src)?;
        Ok(Arc::new(self.cast_storage(s, layout, dtype)?))
    }

    // ANCHOR: unary
    /// `y[i] = f(x[view(i)])`: one thread per output element, the input
    /// read in place through its (merged) view.
    fn unary(&self, op: UnaryOp, src: &dyn BackendStorage, layout: &Layout) -> Result<Storage> {
        let s = self.cuda(src)?;
        let (name, p0, p1) = unary_name(op);
        let ok = match s.dtype {
            DType::I64 => matches!(
                op,
                UnaryOp::Neg
                    | UnaryOp::Abs
                    | UnaryOp::Sqr
                    | UnaryOp::Sign
                    | UnaryOp::Relu
                    | UnaryOp::Clamp { .. }
            ),
            DType::U8 => false,
            _ => true,
        };
        if !ok {
            return Err(unsupported("unary", s.dtype));
        }
        let n = layout.elem_count();
        let out = self.alloc("unary", s.dtype, n)?;
        if n > 0 {
            let args = KernelArgs::new()
                .arg(n as i64)
                .arg(self.view("unary", layout)?)
                .arg(s.ptr())
                .arg(out.ptr())
                .arg(p0)
                .arg(p1);
            let kernel = format!("unary_{name}_{}", suffix(s.dtype));
            self.launch("unary", &kernel, elementwise_launch(n), args)?;
        }
        Ok(Arc::new(out))
    }
    // ANCHOR_END: unary

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        let dtype = lhs.dtype();
        let ok = match dtype {
            DType::I64 => !matches!(op, BinaryOp::Div | BinaryOp::Pow),
            DType::U8 => false,
            _ => true,
        };
        if !ok {
            return Err(unsupported("binary", dtype));
        }
        let kernel = format!("binary_{}_{}", binary_name(op), suffix(dtype));
        self.elementwise2("binary", kernel, dtype, lhs, lhs_layout, rhs, rhs_layout)
    }

    fn cmp(
        &self,
        op: CmpOp,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        let kernel = format!("cmp_{}_{}", cmp_name(op), suffix(lhs.dtype()));
        self.elementwise2("cmp", kernel, DType::U8, lhs, lhs_layout, rhs, rhs_layout)
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
        let (c, t, f) = (self.cuda(cond)?, self.cuda(on_true)?, self.cuda(on_false)?);
        let n = cond_layout.elem_count();
        let out = self.alloc("where", t.dtype, n)?;
        if n > 0 {
            let args = KernelArgs::new()
                .arg(n as i64)
                .arg(self.view("where", cond_layout)?)
                .arg(c.ptr())
                .arg(self.view("where", true_layout)?)
                .arg(t.ptr())
                .arg(self.view("where", false_layout)?)
                .arg(f.ptr())
                .arg(out.ptr());
            self.launch(
                "where",
                &format!("where_{}", suffix(t.dtype)),
                elementwise_launch(n),
                args,
            )?;
        }
        Ok(Arc::new(out))
    }

    fn reduce(
        &self,
        op: ReduceOp,
        src: &dyn BackendStorage,
        layout: &Layout,
        axes: &[usize],
    ) -> Result<Storage> {
        let s = self.cuda(src)?;
        Ok(Arc::new(self.reduce_storage(op, s, layout, axes)?))
    }

    fn matmul(
        &self,
        lhs: &dyn BackendStorage,
        lhs_layout: &Layout,
        rhs: &dyn BackendStorage,
        rhs_layout: &Layout,
    ) -> Result<Storage> {
        let (a, b) = (self.cuda(lhs)?, self.cuda(rhs)?);
        Ok(Arc::new(self.matmul_storage(a, lhs_layout, b, rhs_layout)?))
    }

    fn index_select(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let out =
            self.index_select_storage(self.cuda(src)?, layout, self.cuda(ids)?, ids_layout, dim)?;
        Ok(Arc::new(out))
    }

    fn gather(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        ids: &dyn BackendStorage,
        ids_layout: &Layout,
        dim: usize,
    ) -> Result<Storage> {
        let out = self.gather_storage(self.cuda(src)?, layout, self.cuda(ids)?, ids_layout, dim)?;
        Ok(Arc::new(out))
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
        let out = self.add_at_storage(
            indexing::AddAt::Scatter,
            (self.cuda(base)?, base_layout),
            (self.cuda(ids)?, ids_layout),
            (self.cuda(src)?, src_layout),
            dim,
        )?;
        Ok(Arc::new(out))
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
        let out = self.add_at_storage(
            indexing::AddAt::Index,
            (self.cuda(base)?, base_layout),
            (self.cuda(ids)?, ids_layout),
            (self.cuda(src)?, src_layout),
            dim,
        )?;
        Ok(Arc::new(out))
    }

    fn argsort(
        &self,
        src: &dyn BackendStorage,
        layout: &Layout,
        descending: bool,
    ) -> Result<Storage> {
        Ok(Arc::new(self.argsort_storage(
            self.cuda(src)?,
            layout,
            descending,
        )?))
    }

    fn fused(
        &self,
        program: &Program,
        inputs: &[(&dyn BackendStorage, &Layout)],
        scalars: &[f64],
    ) -> Result<Vec<Storage>> {
        self.fused_storage(program, inputs, scalars)
    }
}
