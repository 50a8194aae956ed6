//! Fused programs on the emulator: the generated CUDA C, compiled by the
//! host's C++ compiler.
//!
//! On a GPU a fused program becomes a kernel through NVRTC. The emulator
//! runs kernels compiled into this crate ahead of time, so it cannot
//! launch a kernel generated at run time; instead the very same generated
//! source is compiled with `c++` (`$CXX`) into a shared library, once per
//! program shape, with a small shim that defines what CUDA provides
//! (`__global__`, `threadIdx`...), and its `*_host` entry
//! ([`FusedKernel::host_entry_source`]) runs the grid as a loop over
//! blocks and threads. The emulator's memory is host memory, so the
//! launch's device pointers are plain pointers there.
//!
//! With no C++ compiler, programs run unfused, and that is said once.

use super::Extensions;
use crate::codegen::{FusedArgs, FusedKernel};
use crate::emulator::Emulator;
use crate::runtime::LaunchConfig;
use chapter_02::{Error, Result};
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

extern "C" {
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
    fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
}
const RTLD_NOW: c_int = 2;

/// What the generated code needs from CUDA, on the host. The thread
/// coordinates are per OS thread, so two tests may run kernels at once.
const HOST_SHIM: &str = r#"
#include <math.h>
struct cd_dim3 { unsigned x, y, z; };
static thread_local cd_dim3 threadIdx, blockIdx, blockDim, gridDim;
#define __global__
#define __device__
#define __forceinline__ inline
"#;

/// `void <name>_host(void** params, unsigned grid, unsigned block)`.
type HostEntry = unsafe extern "C" fn(*mut *mut c_void, u32, u32);

/// The emulator's [`Extensions`]: fused kernels compiled on the host.
#[derive(Debug, Default)]
pub struct HostFused {
    /// Entry points by kernel name (the addresses, as `usize`).
    entries: Mutex<HashMap<String, usize>>,
}

impl HostFused {
    pub fn new() -> Self {
        HostFused::default()
    }

    /// Compiles `kernel` into a fresh shared library and returns its entry.
    fn compile(kernel: &FusedKernel) -> std::result::Result<HostEntry, String> {
        let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
        static BUILDS: AtomicUsize = AtomicUsize::new(0);
        let build = BUILDS.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("candle-fused-{}-{build}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let (cpp, so) = (dir.join("kernel.cpp"), dir.join("kernel.so"));
        let source = format!("{HOST_SHIM}{}{}", kernel.source, kernel.host_entry_source());
        let result = (|| {
            std::fs::write(&cpp, source).map_err(|e| format!("{}: {e}", cpp.display()))?;
            // As the GPU is told `--fmad=false`: every multiply and add
            // rounded on its own, like the CPU backend.
            let out = Command::new(&cxx)
                .args([
                    "-std=c++17",
                    "-O1",
                    "-ffp-contract=off",
                    "-fno-fast-math",
                    "-fPIC",
                    "-shared",
                ])
                .arg("-o")
                .arg(&so)
                .arg(&cpp)
                .output()
                .map_err(|e| format!("no host C++ compiler `{cxx}` ({e})"))?;
            if !out.status.success() {
                return Err(format!(
                    "`{cxx}` failed on kernel {}: {}",
                    kernel.name,
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            let path =
                CString::new(so.to_string_lossy().into_owned()).map_err(|e| e.to_string())?;
            // SAFETY: a library we just built; its initialisers do nothing.
            let handle = unsafe { dlopen(path.as_ptr(), RTLD_NOW) };
            if handle.is_null() {
                return Err(format!("dlopen {} failed", so.display()));
            }
            let sym = CString::new(format!("{}_host", kernel.name)).map_err(|e| e.to_string())?;
            // SAFETY: looks a symbol up in a library that stays loaded.
            let p = unsafe { dlsym(handle, sym.as_ptr()) };
            if p.is_null() {
                return Err(format!("no symbol {}_host", kernel.name));
            }
            // SAFETY: the generated entry has this signature.
            Ok(unsafe { std::mem::transmute::<*mut c_void, HostEntry>(p) })
        })();
        // A loaded library stays mapped after its file is removed.
        let _ = std::fs::remove_dir_all(&dir);
        result
    }
}

impl Extensions<Emulator> for HostFused {
    fn prepare_fused(&self, _: &Emulator, kernel: &FusedKernel) -> std::result::Result<(), String> {
        if self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(&kernel.name)
        {
            return Ok(());
        }
        let entry = HostFused::compile(kernel)?;
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(kernel.name.clone(), entry as usize);
        Ok(())
    }

    /// The grid a GPU would get ([`crate::codegen::launch_fused`]'s), run
    /// as a loop on the calling thread.
    fn launch_fused(&self, _: &Emulator, kernel: &FusedKernel, args: &mut FusedArgs) -> Result<()> {
        if args.is_empty() {
            return Ok(());
        }
        let entry = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&kernel.name)
            .copied()
            .ok_or_else(|| {
                Error::device(
                    "fused",
                    "emulator",
                    format!("kernel {} was not prepared", kernel.name),
                )
            })?;
        // SAFETY: the address came from `dlsym` for this signature.
        let entry = unsafe { std::mem::transmute::<usize, HostEntry>(entry) };
        let cfg = LaunchConfig::for_elements(args.len().min(1 << 24), 256);
        let mut params = args.params();
        // SAFETY: `params` points at values of the kernel's parameter
        // types (built by `FusedArgs` for this kernel); the pointers in
        // them are live emulator (host) allocations.
        unsafe { entry(params.as_mut_ptr(), cfg.grid[0], cfg.block[0]) };
        Ok(())
    }
}
