//! Registration: the `cuda` and `cuda-emu` device kinds, and this
//! chapter's kernels in chapter 02's registry.
//!
//! After [`register`], `Device::parse("cuda:0")` opens the first GPU
//! through the driver runtime, `Device::parse("cuda-emu")` opens the
//! emulator, and `CANDLE_DEVICE=cuda` (or `cuda-emu`) sends every test
//! suite and example of chapters 02–06 there. Nothing in those chapters
//! names CUDA: they find it through the device registry.

use crate::backend::{CudaBackend, Extensions, HostFused};
use crate::codegen::{FusedKernel, NVRTC_OPTIONS};
use crate::cublas::Cublas;
use crate::driver::Driver;
use crate::emulator::Emulator;
use crate::runtime::{DevicePtr, Runtime};
use chapter_02::{
    register_device_kind, DType, Device, DeviceId, DeviceKind, Error, Layout, Result,
};
use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once, OnceLock};

// ANCHOR: kinds
/// A GPU, through the CUDA driver: `cuda:0`, `cuda:1`, ...
pub const CUDA: DeviceKind = DeviceKind::new("cuda");
/// The CUDA emulator: the same kernels, run on the CPU (`cuda-emu`).
pub const CUDA_EMU: DeviceKind = DeviceKind::new("cuda-emu");
// ANCHOR_END: kinds

/// An opened device and its backend (kept as `Any` to be found again by
/// its runtime type, see [`backend_of`]).
struct Opened {
    device: Device,
    backend: Arc<dyn Any + Send + Sync>,
}

fn opened() -> &'static Mutex<HashMap<DeviceId, Opened>> {
    static OPENED: OnceLock<Mutex<HashMap<DeviceId, Opened>>> = OnceLock::new();
    OPENED.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The device `id`, opened once: later calls share its backend, its
/// allocator and its compiled kernels.
fn open_cached<R: Runtime>(
    id: DeviceId,
    make: impl FnOnce() -> Result<CudaBackend<R>>,
) -> Result<Device> {
    let mut map = opened().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(o) = map.get(&id) {
        return Ok(o.device.clone());
    }
    let backend = Arc::new(make()?);
    let device = Device::new(backend.clone());
    map.insert(
        id,
        Opened {
            device: device.clone(),
            backend,
        },
    );
    Ok(device)
}

/// The backend of a `cuda` or `cuda-emu` device, with its runtime type:
/// how a registered kernel gets from a tensor's [`Device`] to the memory
/// and launches of its backend.
pub fn backend_of<R: Runtime>(device: &Device) -> Result<Arc<CudaBackend<R>>> {
    let map = opened().lock().unwrap_or_else(|e| e.into_inner());
    map.get(&device.id())
        .and_then(|o| o.backend.clone().downcast::<CudaBackend<R>>().ok())
        .ok_or_else(|| {
            Error::device(
                "cuda kernel",
                device.id(),
                "not a device opened by chapter 07's registry",
            )
        })
}

// ANCHOR: open_emulator
/// Opens emulator number `ordinal` (each ordinal is its own emulated
/// device, with its own memory).
pub fn open_emulator(ordinal: usize) -> Result<Device> {
    let id = DeviceId {
        kind: CUDA_EMU,
        ordinal,
    };
    open_cached(id, || {
        Ok(CudaBackend::new(
            id,
            Arc::new(Emulator::new()),
            Box::new(HostFused::new()),
        ))
    })
}
// ANCHOR_END: open_emulator

// ANCHOR: driver_extensions
/// The driver's [`Extensions`]: cuBLAS for `f32`/`f64` products when it is
/// installed, NVRTC for fused programs.
#[derive(Debug)]
pub struct DriverExtensions {
    cublas: Option<Mutex<Cublas>>,
}

impl Extensions<Driver> for DriverExtensions {
    fn gemm(
        &self,
        dtype: DType,
        a: DevicePtr,
        lhs: &Layout,
        b: DevicePtr,
        rhs: &Layout,
        c: DevicePtr,
    ) -> Result<bool> {
        let Some(blas) = &self.cublas else {
            return Ok(false);
        };
        let blas = blas.lock().unwrap_or_else(|e| e.into_inner());
        match dtype {
            DType::F32 => blas.sgemm(a, lhs, b, rhs, c),
            DType::F64 => blas.dgemm(a, lhs, b, rhs, c),
            _ => Ok(false),
        }
    }

    fn prepare_fused(
        &self,
        driver: &Driver,
        kernel: &FusedKernel,
    ) -> std::result::Result<(), String> {
        driver.load_fused(kernel).map_err(|e| e.to_string())
    }
}
// ANCHOR_END: driver_extensions

// ANCHOR: load_kernels
/// Every `kernels/*.cu` file compiled by NVRTC to a cubin for real
/// architecture `sm_{arch}` (`90` for an H100 or H200), as
/// `(file name, cubin)`. Compiling takes seconds, so each cubin is kept in
/// the temporary directory under a hash of its source, the architecture
/// and the options, and later processes on the machine load it from there.
/// An error (no NVRTC, a compile error) names the file.
pub fn kernel_cubins(arch: u32) -> Result<Vec<(&'static str, Vec<u8>)>> {
    let header = crate::emulator::SOURCES
        .iter()
        .find(|(n, _)| *n == "candle.cuh")
        .map(|(_, s)| *s)
        .unwrap_or("");
    let mut options = NVRTC_OPTIONS.to_vec();
    options.push("-std=c++17");
    let mut out = Vec::new();
    for (name, source) in crate::emulator::SOURCES
        .iter()
        .filter(|(n, _)| n.ends_with(".cu"))
    {
        let key = {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            h.update(source.as_bytes());
            h.update(header.as_bytes());
            h.update(format!("{arch}{options:?}").as_bytes());
            h.finalize()
                .iter()
                .take(12)
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let path = std::env::temp_dir().join(format!("candle-{name}-sm{arch}-{key}.cubin"));
        let cubin = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(_) => {
                let compiled = crate::nvrtc::compile_cubin(
                    name,
                    source,
                    &[("candle.cuh", header)],
                    arch,
                    &options,
                )
                .map_err(|e| {
                    Error::device("compile", "nvrtc", format!("kernel file {name}: {e}"))
                })?;
                let _ = std::fs::write(&path, &compiled.cubin);
                compiled.cubin
            }
        };
        out.push((*name, cubin));
    }
    Ok(out)
}

/// Makes this chapter's kernels launchable on `driver`. Kernels compiled
/// ahead of time (the embedded PTX of [`crate::ptx`]) load on demand; when
/// there are none, [`kernel_cubins`] compiles them for this GPU.
fn load_kernels(driver: &Driver) -> Result<()> {
    if driver.has_kernel("fill_f32") {
        return Ok(());
    }
    let (major, minor) = driver.compute_capability();
    let cubins = kernel_cubins(major * 10 + minor).map_err(|e| {
        Error::device(
            "open",
            driver.device_name(),
            format!("no kernels compiled ahead of time, and NVRTC cannot make them: {e}"),
        )
    })?;
    for (name, cubin) in cubins {
        driver.load_cubin(name, &cubin)?;
    }
    Ok(())
}
// ANCHOR_END: load_kernels

// ANCHOR: open_gpu
/// Opens GPU `ordinal`. On a machine without the NVIDIA driver, or
/// without that GPU, this is an [`Error::Device`] saying so (never a
/// panic, never a silent CPU).
pub fn open_gpu(ordinal: usize) -> Result<Device> {
    let id = DeviceId {
        kind: CUDA,
        ordinal,
    };
    open_cached(id, || {
        let driver = Arc::new(Driver::open(ordinal)?);
        load_kernels(&driver)?;
        let cublas = Cublas::new(driver.clone()).map(Mutex::new);
        Ok(CudaBackend::new(
            id,
            driver,
            Box::new(DriverExtensions { cublas }),
        ))
    })
}
// ANCHOR_END: open_gpu

// ANCHOR: register
/// Registers the `cuda` and `cuda-emu` device kinds and this chapter's
/// kernels for chapter 04's softmax family and chapter 05's layer norm on
/// both. Safe to call any number of times, from any thread.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        register_device_kind(CUDA, open_gpu);
        register_device_kind(CUDA_EMU, open_emulator);
        crate::ops::register_kernels::<Driver>(CUDA);
        crate::ops::register_kernels::<Emulator>(CUDA_EMU);
    });
}
// ANCHOR_END: register
