//! The [`Runtime`] on a real GPU, through the CUDA driver API.
//!
//! The driver API (`libcuda.so`, installed with the NVIDIA driver) is the
//! lowest public layer of CUDA: contexts, streams, memory, modules of
//! compiled kernels, launches. We reach it through `cudarc`'s thin
//! bindings, loaded at run time (`dynamic-loading`), so this crate builds
//! and its tests run on a machine with no GPU and no CUDA: opening a device
//! there is an error that says why, never a crash.
//!
//! One [`Driver`] drives one GPU:
//! - its *primary context* (the one every library in the process shares),
//!   made current on whichever thread calls in;
//! - one *stream*: every copy and launch is queued on it, so they run in
//!   the order they were issued, and a block of memory freed by one tensor
//!   can be handed to the next at once (see [`crate::allocator`]);
//! - *modules*: the kernels compiled ahead of time and embedded in the
//!   binary as PTX ([`crate::ptx`]), plus programs compiled at run time
//!   ([`crate::nvrtc`]); a kernel is found by name and cached.
//!
//! Every failure is an [`Error::Device`] naming the operation, the device
//! (`cuda:0`) and CUDA's name for the error (`CUDA_ERROR_ILLEGAL_ADDRESS`).
//! Some errors are *sticky*: after a kernel reads outside its memory the
//! context is lost, and every later call fails the same way until the
//! process exits. The driver remembers the first one and says so.

use crate::codegen::{FusedKernel, NVRTC_OPTIONS};
use crate::nvrtc::CompileCache;
use crate::ptx;
use crate::runtime::{DevicePtr, LaunchConfig, Runtime};
use chapter_02::{Error, Result};
use cudarc::driver::result::{self as cu, DriverError};
use cudarc::driver::sys;
use std::collections::HashMap;
use std::ffi::{c_void, CString};
use std::sync::{Mutex, OnceLock};

/// Is the driver library (`libcuda.so`) present? Without it there is no
/// GPU to open; checking first matters, because `cudarc` panics when it
/// calls into a library it cannot find.
pub fn driver_library_present() -> bool {
    // SAFETY: only tries to dlopen the library by its usual names.
    unsafe { sys::is_culib_present() }
}

/// What `cuInit` said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Init {
    Ready,
    /// A driver with no GPU: `cuInit` itself says `CUDA_ERROR_NO_DEVICE`.
    NoDevice,
}

/// Initialises the driver once (`cuInit`); the result is remembered.
fn init_driver() -> std::result::Result<Init, String> {
    static INIT: std::sync::OnceLock<std::result::Result<Init, String>> =
        std::sync::OnceLock::new();
    INIT.get_or_init(|| {
        if !driver_library_present() {
            return Err(
                "no CUDA driver library (libcuda.so) found: this machine has no NVIDIA \
                 driver installed, or its folder is not on LD_LIBRARY_PATH"
                    .into(),
            );
        }
        match cu::init() {
            Ok(()) => Ok(Init::Ready),
            Err(DriverError(sys::CUresult::CUDA_ERROR_NO_DEVICE)) => Ok(Init::NoDevice),
            Err(e) => Err(format!("cuInit failed: {}", error_text(e))),
        }
    })
    .clone()
}

/// How many CUDA devices the driver sees (an error when there is no driver).
pub fn device_count() -> Result<usize> {
    let init = init_driver().map_err(|msg| Error::device("device_count", "cuda", msg))?;
    if init == Init::NoDevice {
        return Ok(0);
    }
    match cu::device::get_count() {
        Ok(n) => Ok(n as usize),
        Err(DriverError(sys::CUresult::CUDA_ERROR_NO_DEVICE)) => Ok(0),
        Err(e) => Err(Error::device("device_count", "cuda", error_text(e))),
    }
}

/// `CUDA_ERROR_OUT_OF_MEMORY: out of memory`: CUDA's name for an error and
/// its sentence.
pub fn error_text(e: DriverError) -> String {
    let name = e
        .error_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| format!("{:?}", e.0));
    let what = e
        .error_string()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("{name}: {what}")
}

/// Errors after which the context is unusable: the kernel faulted, and
/// every later call in this process returns the same error.
fn is_sticky(e: DriverError) -> bool {
    use sys::CUresult::*;
    matches!(
        e.0,
        CUDA_ERROR_ILLEGAL_ADDRESS
            | CUDA_ERROR_LAUNCH_FAILED
            | CUDA_ERROR_LAUNCH_TIMEOUT
            | CUDA_ERROR_ASSERT
            | CUDA_ERROR_HARDWARE_STACK_ERROR
            | CUDA_ERROR_ILLEGAL_INSTRUCTION
            | CUDA_ERROR_MISALIGNED_ADDRESS
            | CUDA_ERROR_INVALID_PC
    )
}

/// What a module is loaded from.
enum Image<'a> {
    Ptx(&'a str),
    Cubin(&'a [u8]),
}

/// The loaded modules and the kernels found in them.
#[derive(Default)]
struct Modules {
    /// `(module name, handle)`, in load order.
    loaded: Vec<(String, sys::CUmodule)>,
    /// Kernel name → function, filled on first use.
    functions: HashMap<String, sys::CUfunction>,
    /// Which embedded PTX modules (by index in [`ptx::MODULES`]) are loaded.
    embedded_loaded: Vec<bool>,
}

// ANCHOR: driver
/// One GPU, driven through the CUDA driver API.
pub struct Driver {
    ordinal: usize,
    device: sys::CUdevice,
    ctx: sys::CUcontext,
    stream: sys::CUstream,
    name: String,
    /// `(major, minor)`: `(9, 0)` for an H100 or H200.
    compute_capability: (u32, u32),
    /// Stream-ordered `cuMemAllocAsync` / `cuMemFreeAsync` are supported.
    async_alloc: bool,
    modules: Mutex<Modules>,
    /// The first sticky error, once there has been one.
    sticky: Mutex<Option<String>>,
    /// The last kernel launched, to name the likely culprit of an
    /// asynchronous fault reported later.
    last_kernel: Mutex<String>,
}
// ANCHOR_END: driver

// SAFETY: the handles are plain pointers into the driver, which is
// thread-safe; every call first makes our context current on the calling
// thread, and the mutable parts (module table, sticky error) are behind
// locks.
unsafe impl Send for Driver {}
unsafe impl Sync for Driver {}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Driver({}: {})", self.device_name(), self.describe())
    }
}

impl Driver {
    /// Opens GPU `ordinal`: retains its primary context and creates the
    /// stream. Errors (no driver, no device, ordinal out of range) are
    /// `Error::Device { op: "open", device: "cuda:N", .. }`.
    pub fn open(ordinal: usize) -> Result<Driver> {
        let dev = format!("cuda:{ordinal}");
        let fail = |msg: String| Error::device("open", &dev, msg);
        let count = device_count().map_err(|e| match e {
            Error::Device { msg, .. } => fail(msg),
            e => e,
        })?;
        if count == 0 {
            return Err(fail(
                "the CUDA driver is installed but sees no GPU (CUDA_ERROR_NO_DEVICE)".into(),
            ));
        }
        if ordinal >= count {
            let plural = if count == 1 { "" } else { "s" };
            return Err(fail(format!(
                "no such device: this machine has {count} CUDA device{plural} \
                 (cuda:0 to cuda:{})",
                count - 1
            )));
        }
        let ctx_err = |what: &str, e: DriverError| fail(format!("{what}: {}", error_text(e)));
        let device = cu::device::get(ordinal as i32).map_err(|e| ctx_err("cuDeviceGet", e))?;
        let name = cu::device::get_name(device).map_err(|e| ctx_err("cuDeviceGetName", e))?;
        let attr = |a: sys::CUdevice_attribute| {
            // SAFETY: `device` is a valid device handle.
            unsafe { cu::device::get_attribute(device, a) }.map_err(|e| ctx_err("attribute", e))
        };
        use sys::CUdevice_attribute::*;
        let major = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)? as u32;
        let minor = attr(CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)? as u32;
        let async_alloc = attr(CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED)? != 0;
        // SAFETY: a valid device; the context is released in `Drop`.
        let ctx = unsafe { cu::primary_ctx::retain(device) }
            .map_err(|e| ctx_err("cuDevicePrimaryCtxRetain", e))?;
        // SAFETY: `ctx` was just retained.
        let stream = unsafe { cu::ctx::set_current(ctx) }
            .map_err(|e| ctx_err("cuCtxSetCurrent", e))
            .and_then(|()| {
                cu::stream::create(cu::stream::StreamKind::NonBlocking)
                    .map_err(|e| ctx_err("cuStreamCreate", e))
            });
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // SAFETY: retained above; nothing else holds it for us.
                let _ = unsafe { cu::primary_ctx::release(device) };
                return Err(e);
            }
        };
        Ok(Driver {
            ordinal,
            device,
            ctx,
            stream,
            name,
            compute_capability: (major, minor),
            async_alloc,
            modules: Mutex::new(Modules {
                embedded_loaded: vec![false; ptx::MODULES.len()],
                ..Default::default()
            }),
            sticky: Mutex::new(None),
            last_kernel: Mutex::new(String::new()),
        })
    }

    /// `cuda:0`.
    pub fn device_name(&self) -> String {
        format!("cuda:{}", self.ordinal)
    }
    pub fn ordinal(&self) -> usize {
        self.ordinal
    }
    /// The GPU's marketing name: `NVIDIA H200`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// `(major, minor)`.
    pub fn compute_capability(&self) -> (u32, u32) {
        self.compute_capability
    }
    /// The CUDA version the driver supports, `major * 1000 + minor * 10`
    /// (13000 for CUDA 13.0).
    pub fn driver_version() -> Result<i32> {
        init_driver().map_err(|msg| Error::device("driver_version", "cuda", msg))?;
        let mut v = 0;
        // SAFETY: writes one int.
        let r = unsafe { sys::cuDriverGetVersion(&mut v) }.result();
        r.map_err(|e| Error::device("driver_version", "cuda", error_text(e)))?;
        Ok(v)
    }
    /// `(free, total)` bytes of device memory.
    pub fn memory_info(&self) -> Result<(usize, usize)> {
        self.bind("memory_info")?;
        let r = cu::mem_get_info();
        r.map_err(|e| self.error("memory_info", "cuMemGetInfo", e))
    }
    /// The raw stream handle, for libraries that queue work on it (cuBLAS).
    pub fn stream(&self) -> sys::CUstream {
        self.stream
    }
    /// Makes this device's context current on the calling thread (the
    /// driver keeps a current context per thread), for code that calls
    /// CUDA libraries directly.
    pub fn make_current(&self) -> Result<()> {
        self.bind("make_current")
    }

    /// Fails at once if an earlier call hit a sticky error; otherwise makes
    /// our context current on this thread.
    fn bind(&self, op: &'static str) -> Result<()> {
        if let Some(first) = self
            .sticky
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Err(Error::device(
                op,
                self.device_name(),
                format!(
                    "the device is unusable after an earlier fatal error (a sticky error; \
                     restart the process): {first}"
                ),
            ));
        }
        // SAFETY: `ctx` is retained for as long as `self` lives.
        unsafe { cu::ctx::set_current(self.ctx) }.map_err(|e| self.error(op, "cuCtxSetCurrent", e))
    }

    // ANCHOR: error
    /// A CUDA error as an `Error::Device`: the operation, the device, what
    /// was being done and CUDA's name for the error. A sticky error is
    /// remembered, so later calls say what broke the context.
    fn error(&self, op: &'static str, what: &str, e: DriverError) -> Error {
        let text = error_text(e);
        let msg = if e.0 == sys::CUresult::CUDA_ERROR_OUT_OF_MEMORY {
            format!("{what}: out of memory ({text})")
        } else if is_sticky(e) {
            let last = self
                .last_kernel
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let culprit = if last.is_empty() {
                String::new()
            } else {
                format!(" (the last kernel launched was `{last}`)")
            };
            let first = format!("{what}: {text}{culprit}");
            let mut sticky = self.sticky.lock().unwrap_or_else(|p| p.into_inner());
            sticky.get_or_insert_with(|| first.clone());
            format!(
                "{first}; this is a sticky error: the CUDA context is lost and every later \
                 call on this device fails until the process restarts"
            )
        } else {
            format!("{what}: {text}")
        };
        Error::device(op, self.device_name(), msg)
    }
    // ANCHOR_END: error

    /// Loads a module of PTX (or a cubin/fatbin image) under `module`'s
    /// name; its kernels can then be launched by name. The driver's JIT
    /// compiles PTX for this GPU; its error log is part of the error.
    pub fn load_ptx(&self, module: &str, ptx: &str) -> Result<()> {
        self.bind("load_module")?;
        let handle = self.load_module_data(module, Image::Ptx(ptx))?;
        let mut m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        m.loaded.push((module.to_string(), handle));
        Ok(())
    }

    /// Loads a module from a compiled binary image (a cubin, the ELF file
    /// NVRTC makes for a real architecture such as `sm_90`): nothing is
    /// compiled at load time, and no PTX version can be too new.
    pub fn load_cubin(&self, module: &str, cubin: &[u8]) -> Result<()> {
        self.bind("load_module")?;
        let handle = self.load_module_data(module, Image::Cubin(cubin))?;
        let mut m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        m.loaded.push((module.to_string(), handle));
        Ok(())
    }

    fn load_module_data(&self, module: &str, image: Image<'_>) -> Result<sys::CUmodule> {
        // PTX is passed as NUL-terminated text, a cubin as its bytes.
        let text;
        let (data, kind) = match image {
            Image::Ptx(ptx) => {
                text = CString::new(ptx).map_err(|_| {
                    Error::device(
                        "load_module",
                        self.device_name(),
                        format!("module `{module}`: PTX contains a NUL byte"),
                    )
                })?;
                let version = ptx::ptx_version(ptx).unwrap_or("?");
                (text.as_ptr() as *const c_void, format!("PTX ISA {version}"))
            }
            Image::Cubin(bytes) => (bytes.as_ptr() as *const c_void, "cubin".to_string()),
        };
        let mut log = vec![0u8; 16 * 1024];
        let mut options = [
            sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER,
            sys::CUjit_option::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES,
        ];
        let mut values = [log.as_mut_ptr() as *mut c_void, log.len() as *mut c_void];
        let mut handle = std::mem::MaybeUninit::uninit();
        // SAFETY: `data` is NUL-terminated PTX or a whole cubin, alive
        // until this returns; the options point at a live buffer whose
        // size is given.
        let r = unsafe {
            sys::cuModuleLoadDataEx(
                handle.as_mut_ptr(),
                data,
                options.len() as u32,
                options.as_mut_ptr(),
                values.as_mut_ptr(),
            )
        }
        .result();
        match r {
            // SAFETY: written on success.
            Ok(()) => Ok(unsafe { handle.assume_init() }),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let log = String::from_utf8_lossy(&log[..end]).trim().to_string();
                let what = format!(
                    "loading module `{module}` ({kind}; this driver supports CUDA {})",
                    Driver::driver_version()
                        .map(|v| format!("{}.{}", v / 1000, v % 1000 / 10))
                        .unwrap_or_else(|_| "?".into())
                );
                let mut err = self.error("load_module", &what, e);
                if let Error::Device { msg, .. } = &mut err {
                    if !log.is_empty() {
                        msg.push_str(&format!("\nJIT log:\n{log}"));
                    }
                }
                Err(err)
            }
        }
    }

    /// Loads every embedded PTX module now (otherwise each is loaded when
    /// one of its kernels is first launched), choosing for each the PTX of
    /// the highest architecture this GPU runs.
    pub fn load_embedded(&self) -> Result<()> {
        for i in 0..ptx::MODULES.len() {
            self.load_embedded_module(i)?;
        }
        Ok(())
    }

    /// Loads embedded module `i` unless it (or another arch of the same
    /// module) is loaded already or none of its archs fits this GPU.
    fn load_embedded_module(&self, i: usize) -> Result<bool> {
        let cc = self.compute_capability.0 * 10 + self.compute_capability.1;
        let entry = &ptx::MODULES[i];
        let Some(best) = ptx::best_for(entry.name, cc) else {
            return Ok(false);
        };
        {
            let m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            let same_module = |j: usize| ptx::MODULES[j].name == entry.name;
            if (0..ptx::MODULES.len()).any(|j| same_module(j) && m.embedded_loaded[j]) {
                return Ok(false);
            }
        }
        self.bind("load_module")?;
        let handle = self.load_module_data(best.name, Image::Ptx(best.ptx))?;
        let mut m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        m.loaded.push((best.name.to_string(), handle));
        m.embedded_loaded[i] = true;
        Ok(true)
    }

    /// The names of the loaded modules.
    pub fn loaded_modules(&self) -> Vec<String> {
        let m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
        m.loaded.iter().map(|(n, _)| n.clone()).collect()
    }

    /// The kernel `name`: from the cache, else from the loaded modules
    /// (newest first), else from embedded modules not yet loaded.
    fn function(&self, name: &str) -> Result<sys::CUfunction> {
        if let Some(&f) = self
            .modules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .functions
            .get(name)
        {
            return Ok(f);
        }
        let cname = CString::new(name).map_err(|_| {
            Error::device("launch", self.device_name(), "kernel name has a NUL byte")
        })?;
        let search = |m: &mut Modules| -> Option<sys::CUfunction> {
            for (_, module) in m.loaded.iter().rev() {
                // SAFETY: `module` is loaded until `Drop`.
                if let Ok(f) = unsafe { cu::module::get_function(*module, cname.clone()) } {
                    m.functions.insert(name.to_string(), f);
                    return Some(f);
                }
            }
            None
        };
        if let Some(f) = search(&mut self.modules.lock().unwrap_or_else(|e| e.into_inner())) {
            return Ok(f);
        }
        for i in 0..ptx::MODULES.len() {
            if self.load_embedded_module(i)? {
                let mut m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(f) = search(&mut m) {
                    return Ok(f);
                }
            }
        }
        let loaded = self.loaded_modules().join(", ");
        Err(Error::device(
            "launch",
            self.device_name(),
            format!("no kernel named `{name}` in the loaded modules ({loaded})"),
        ))
    }

    /// Makes a generated fused kernel launchable by its name: compiles its
    /// source with NVRTC for this GPU's architecture (each source once per
    /// process) and loads the PTX. An error when NVRTC is missing: the
    /// caller then runs the program unfused (and says so once, with
    /// [`crate::codegen::note_unfused_fallback`]).
    pub fn load_fused(&self, kernel: &FusedKernel) -> Result<()> {
        static COMPILED: OnceLock<CompileCache> = OnceLock::new();
        let cached = {
            let m = self.modules.lock().unwrap_or_else(|e| e.into_inner());
            m.functions.contains_key(&kernel.name)
                || m.loaded.iter().any(|(n, _)| *n == kernel.name)
        };
        if cached {
            return Ok(());
        }
        let (major, minor) = self.compute_capability;
        // A cubin for this very GPU: a newer NVRTC's PTX could carry a
        // PTX version this driver does not know, its cubin loads.
        let compiled = COMPILED.get_or_init(CompileCache::new).compile_cubin(
            &kernel.name,
            &kernel.source,
            &[],
            major * 10 + minor,
            NVRTC_OPTIONS,
        )?;
        self.load_cubin(&kernel.name, &compiled.cubin)
    }

    /// Is a kernel of that name available (loading embedded modules as needed)?
    pub fn has_kernel(&self, name: &str) -> bool {
        self.function(name).is_ok()
    }
}

impl Runtime for Driver {
    fn describe(&self) -> String {
        let (ma, mi) = self.compute_capability;
        format!("{} (sm_{ma}{mi})", self.name)
    }

    fn alloc(&self, bytes: usize) -> Result<DevicePtr> {
        self.bind("alloc")?;
        let what = format!("allocating {bytes} bytes");
        // SAFETY: the stream is ours; the memory is used only on it.
        let r = unsafe {
            if self.async_alloc {
                cu::malloc_async(self.stream, bytes.max(1))
            } else {
                cu::malloc_sync(bytes.max(1))
            }
        };
        r.map_err(|e| self.error("alloc", &what, e))
    }

    fn free(&self, ptr: DevicePtr) -> Result<()> {
        self.bind("free")?;
        // SAFETY: `ptr` came from `alloc` (the caller's contract).
        let r = unsafe {
            if self.async_alloc {
                cu::free_async(ptr, self.stream)
            } else {
                cu::free_sync(ptr)
            }
        };
        r.map_err(|e| self.error("free", "freeing device memory", e))
    }

    fn copy_htod(&self, dst: DevicePtr, src: &[u8]) -> Result<()> {
        self.bind("copy_htod")?;
        // SAFETY: from pageable memory the driver stages `src` before it
        // returns, so `src` may be dropped after this call.
        let r = unsafe { cu::memcpy_htod_async(dst, src, self.stream) };
        r.map_err(|e| {
            self.error(
                "copy_htod",
                &format!("copying {} bytes to the device", src.len()),
                e,
            )
        })
    }

    fn copy_dtoh(&self, dst: &mut [u8], src: DevicePtr) -> Result<()> {
        self.bind("copy_dtoh")?;
        let what = format!("copying {} bytes to the host", dst.len());
        // SAFETY: the stream synchronisation below completes the copy
        // before `dst` is released.
        unsafe { cu::memcpy_dtoh_async(dst, src, self.stream) }
            .map_err(|e| self.error("copy_dtoh", &what, e))?;
        // SAFETY: our stream.
        unsafe { cu::stream::synchronize(self.stream) }
            .map_err(|e| self.error("copy_dtoh", &what, e))
    }

    fn copy_dtod(&self, dst: DevicePtr, src: DevicePtr, bytes: usize) -> Result<()> {
        self.bind("copy_dtod")?;
        // SAFETY: both blocks are live device memory of at least `bytes`.
        let r = unsafe { cu::memcpy_dtod_async(dst, src, bytes, self.stream) };
        r.map_err(|e| {
            self.error(
                "copy_dtod",
                &format!("copying {bytes} bytes on the device"),
                e,
            )
        })
    }

    fn memset_zero(&self, dst: DevicePtr, bytes: usize) -> Result<()> {
        self.bind("memset_zero")?;
        // SAFETY: `dst` is live device memory of at least `bytes`.
        let r = unsafe { cu::memset_d8_async(dst, 0, bytes, self.stream) };
        r.map_err(|e| self.error("memset_zero", &format!("zeroing {bytes} bytes"), e))
    }

    // ANCHOR: launch
    fn launch(&self, name: &str, cfg: LaunchConfig, params: &mut [*mut c_void]) -> Result<()> {
        self.bind("launch")?;
        let f = self.function(name)?;
        *self.last_kernel.lock().unwrap_or_else(|e| e.into_inner()) = name.to_string();
        let [gx, gy, gz] = cfg.grid;
        let [bx, by, bz] = cfg.block;
        // SAFETY: `f` is a loaded kernel; `params[i]` points at the value
        // of its i-th parameter (the caller's contract, as for
        // `cuLaunchKernel`); the driver copies the values before returning.
        let r = unsafe {
            cu::launch_kernel(
                f,
                (gx, gy, gz),
                (bx, by, bz),
                cfg.shared_mem_bytes,
                self.stream,
                params,
            )
        };
        r.map_err(|e| {
            let what = format!(
                "launching kernel `{name}` on grid {:?} of blocks {:?} ({} bytes shared)",
                cfg.grid, cfg.block, cfg.shared_mem_bytes
            );
            self.error("launch", &what, e)
        })
    }
    // ANCHOR_END: launch

    fn synchronize(&self) -> Result<()> {
        self.bind("synchronize")?;
        // SAFETY: our stream.
        let r = unsafe { cu::stream::synchronize(self.stream) };
        r.map_err(|e| self.error("synchronize", "waiting for the queued work", e))
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let sticky = self
            .sticky
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .is_some();
        // SAFETY: the handles are ours; after a sticky error the driver
        // refuses most calls, which we ignore, but the context is still
        // released.
        unsafe {
            if cu::ctx::set_current(self.ctx).is_ok() && !sticky {
                let _ = cu::stream::synchronize(self.stream);
                let m = self.modules.get_mut().unwrap_or_else(|e| e.into_inner());
                for (_, module) in m.loaded.drain(..) {
                    let _ = cu::module::unload(module);
                }
                let _ = cu::stream::destroy(self.stream);
            }
            let _ = cu::primary_ctx::release(self.device);
        }
    }
}
