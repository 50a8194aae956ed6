//! NVRTC: compiling CUDA C to PTX while the program runs.
//!
//! The kernels of this chapter are compiled ahead of time ([`crate::ptx`]),
//! but a fused elementwise program ([`crate::codegen`]) exists only once
//! the model runs, so its kernel is generated then and compiled by NVRTC,
//! NVIDIA's compiler as a library (`libnvrtc.so`). NVRTC needs no GPU: this
//! crate's tests use it to compile every kernel on a machine without one.
//!
//! NVRTC is optional. `cudarc` opens it by name (`libnvrtc.so`,
//! `libnvrtc.so.13`, ...), so it is found on `LD_LIBRARY_PATH`; we also
//! open the file named by `CANDLE_NVRTC`, or the copy that
//! `scripts/install-nvrtc.sh` puts in the workspace's `target/nvrtc-venv`,
//! first: once a library is loaded, opening it again by its name finds
//! the loaded copy. Without NVRTC, fused programs run unfused.

use chapter_02::{Error, Result};
use cudarc::nvrtc::sys;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

extern "C" {
    // From the C library (glibc ≥ 2.34 has them in libc itself).
    fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
}
const RTLD_NOW: c_int = 2;
const RTLD_GLOBAL: c_int = 0x100;

/// Where we look for `libnvrtc.so.N` besides the loader's search path:
/// `$CANDLE_NVRTC`, then the workspace's `target/nvrtc-venv`.
fn candidate_files() -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = std::env::var_os("CANDLE_NVRTC") {
        out.push(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/nvrtc-venv/lib");
    if let Ok(pythons) = std::fs::read_dir(&venv) {
        for py in pythons.flatten() {
            for cu in ["cu13", "cu12"] {
                let lib = py.path().join("site-packages/nvidia").join(cu).join("lib");
                if let Ok(files) = std::fs::read_dir(&lib) {
                    let mut libs: Vec<PathBuf> = files
                        .flatten()
                        .map(|f| f.path())
                        .filter(|p| {
                            let n = p.file_name().unwrap_or_default().to_string_lossy();
                            n.starts_with("libnvrtc.so.")
                        })
                        .collect();
                    libs.sort();
                    out.extend(libs);
                }
            }
        }
    }
    out
}

/// Opens `path` (and the `libnvrtc-builtins` beside it, which NVRTC opens
/// by name) into the process; leaks the handles on purpose.
fn preload(path: &Path) -> bool {
    let Some(dir) = path.parent() else {
        return false;
    };
    if let Ok(files) = std::fs::read_dir(dir) {
        for f in files.flatten() {
            let n = f.file_name().to_string_lossy().into_owned();
            if n.starts_with("libnvrtc-builtins.so.") {
                open_global(&f.path());
            }
        }
    }
    open_global(path)
}

fn open_global(path: &Path) -> bool {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path; loading NVRTC runs no user code.
    !unsafe { dlopen(c.as_ptr(), RTLD_NOW | RTLD_GLOBAL) }.is_null()
}

/// `Ok(())` when NVRTC can be used, else the reason why not (once).
fn probe() -> &'static std::result::Result<(), String> {
    static PROBE: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        // SAFETY: only tries to dlopen the library by its usual names.
        if unsafe { sys::is_culib_present() } {
            return Ok(());
        }
        let candidates = candidate_files();
        for c in &candidates {
            // SAFETY: as above.
            if preload(c) && unsafe { sys::is_culib_present() } {
                return Ok(());
            }
        }
        Err(
            "NVRTC (libnvrtc.so) not found: run scripts/install-nvrtc.sh, then export the \
             LD_LIBRARY_PATH it prints or set CANDLE_NVRTC=/path/to/libnvrtc.so.13"
                .to_string(),
        )
    })
}

/// Can CUDA C be compiled here?
pub fn nvrtc_available() -> bool {
    probe().is_ok()
}

/// Why NVRTC cannot be used, or `None` when it can.
pub fn nvrtc_unavailable_reason() -> Option<String> {
    probe().as_ref().err().cloned()
}

/// NVRTC's version, `(major, minor)`.
pub fn version() -> Result<(i32, i32)> {
    probe()
        .clone()
        .map_err(|m| Error::device("nvrtc", "nvrtc", m))?;
    let (mut major, mut minor) = (0, 0);
    // SAFETY: writes two ints.
    let r = unsafe { sys::nvrtcVersion(&mut major, &mut minor) };
    check(r, "nvrtcVersion")?;
    Ok((major, minor))
}

fn result_text(r: sys::nvrtcResult) -> String {
    // SAFETY: NVRTC returns a static string for every result.
    let s = unsafe { sys::nvrtcGetErrorString(r) };
    if s.is_null() {
        format!("{r:?}")
    } else {
        // SAFETY: non-null, NUL-terminated, static.
        unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
    }
}

fn check(r: sys::nvrtcResult, what: &str) -> Result<()> {
    if r == sys::nvrtcResult::NVRTC_SUCCESS {
        Ok(())
    } else {
        Err(Error::device(
            "compile",
            "nvrtc",
            format!("{what}: {}", result_text(r)),
        ))
    }
}

// ANCHOR: compile
/// What NVRTC made of a source: the PTX, and the compiler's log (warnings;
/// empty for a clean compile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Compiled {
    pub ptx: String,
    pub log: String,
}

/// Compiles CUDA C `source` (named `name` in messages) to PTX for virtual
/// architecture `compute_{arch}` (`arch = 90` for H100/H200). `headers`
/// are `(include name, contents)`: `#include "name"` finds them without a
/// file system. `options` are passed to NVRTC as they are (`--fmad=false`,
/// `-DTILE=16`...). A compile error is an error holding NVRTC's log.
pub fn compile_ptx(
    name: &str,
    source: &str,
    headers: &[(&str, &str)],
    arch: u32,
    options: &[&str],
) -> Result<Compiled> {
    let (image, log) = compile(name, source, headers, &format!("compute_{arch}"), options)?;
    Ok(Compiled {
        ptx: text_of(image),
        log,
    })
}

/// A cubin: machine code for one real GPU architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledCubin {
    pub cubin: Vec<u8>,
    pub log: String,
}

/// Compiles `source` to a cubin for real architecture `sm_{arch}`: what a
/// GPU of that compute capability runs with no JIT step at load time.
pub fn compile_cubin(
    name: &str,
    source: &str,
    headers: &[(&str, &str)],
    arch: u32,
    options: &[&str],
) -> Result<CompiledCubin> {
    let (cubin, log) = compile(name, source, headers, &format!("sm_{arch}"), options)?;
    Ok(CompiledCubin { cubin, log })
}

/// Compiles for `--gpu-architecture={target}`: PTX for a `compute_XX`
/// target, a cubin for an `sm_XX` one. Returns the image and the log.
fn compile(
    name: &str,
    source: &str,
    headers: &[(&str, &str)],
    target: &str,
    options: &[&str],
) -> Result<(Vec<u8>, String)> {
    probe()
        .clone()
        .map_err(|m| Error::device("compile", "nvrtc", m))?;
    let cstr = |s: &str| {
        CString::new(s)
            .map_err(|_| Error::invalid("compile", format!("`{name}`: NUL byte in input")))
    };
    let src = cstr(source)?;
    let cname = cstr(name)?;
    let header_src = headers
        .iter()
        .map(|h| cstr(h.1))
        .collect::<Result<Vec<_>>>()?;
    let header_names = headers
        .iter()
        .map(|h| cstr(h.0))
        .collect::<Result<Vec<_>>>()?;
    let header_src_p: Vec<*const c_char> = header_src.iter().map(|s| s.as_ptr()).collect();
    let header_names_p: Vec<*const c_char> = header_names.iter().map(|s| s.as_ptr()).collect();
    let mut opts = vec![cstr(&format!("--gpu-architecture={target}"))?];
    for o in options {
        opts.push(cstr(o)?);
    }
    let opts_p: Vec<*const c_char> = opts.iter().map(|s| s.as_ptr()).collect();
    let cubin = target.starts_with("sm_");

    let mut prog = std::ptr::null_mut();
    // SAFETY: every pointer is a live NUL-terminated string; the counts
    // match the arrays.
    check(
        unsafe {
            sys::nvrtcCreateProgram(
                &mut prog,
                src.as_ptr(),
                cname.as_ptr(),
                headers.len() as c_int,
                header_src_p.as_ptr(),
                header_names_p.as_ptr(),
            )
        },
        "nvrtcCreateProgram",
    )?;
    // SAFETY: `prog` was created above and is destroyed below.
    let compiled = unsafe {
        let r = sys::nvrtcCompileProgram(prog, opts_p.len() as c_int, opts_p.as_ptr());
        let log = program_log(prog);
        if r != sys::nvrtcResult::NVRTC_SUCCESS {
            Err(Error::device(
                "compile",
                "nvrtc",
                format!("`{name}` for {target}: {}\n{log}", result_text(r)),
            ))
        } else if cubin {
            program_cubin(prog).map(|image| (image, log))
        } else {
            program_ptx(prog).map(|image| (image, log))
        }
    };
    // SAFETY: created above, destroyed once.
    unsafe { sys::nvrtcDestroyProgram(&mut prog) };
    compiled
}
// ANCHOR_END: compile

/// The compile log (empty when there is none).
unsafe fn program_log(prog: sys::nvrtcProgram) -> String {
    let mut size = 0usize;
    if sys::nvrtcGetProgramLogSize(prog, &mut size) != sys::nvrtcResult::NVRTC_SUCCESS || size <= 1
    {
        return String::new();
    }
    let mut buf = vec![0u8; size];
    if sys::nvrtcGetProgramLog(prog, buf.as_mut_ptr() as *mut c_char)
        != sys::nvrtcResult::NVRTC_SUCCESS
    {
        return String::new();
    }
    text_of(buf).trim().to_string()
}

/// The PTX of a compiled program (NUL included).
unsafe fn program_ptx(prog: sys::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    check(sys::nvrtcGetPTXSize(prog, &mut size), "nvrtcGetPTXSize")?;
    let mut buf = vec![0u8; size];
    check(
        sys::nvrtcGetPTX(prog, buf.as_mut_ptr() as *mut c_char),
        "nvrtcGetPTX",
    )?;
    Ok(buf)
}

/// The cubin of a program compiled for a real architecture.
unsafe fn program_cubin(prog: sys::nvrtcProgram) -> Result<Vec<u8>> {
    let mut size = 0usize;
    check(sys::nvrtcGetCUBINSize(prog, &mut size), "nvrtcGetCUBINSize")?;
    let mut buf = vec![0u8; size];
    check(
        sys::nvrtcGetCUBIN(prog, buf.as_mut_ptr() as *mut c_char),
        "nvrtcGetCUBIN",
    )?;
    Ok(buf)
}

fn text_of(mut buf: Vec<u8>) -> String {
    if let Some(end) = buf.iter().position(|&b| b == 0) {
        buf.truncate(end);
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Compiled programs, by everything that decides the output (source,
/// headers, target, options), so each is compiled once per process.
#[derive(Debug, Default)]
pub struct CompileCache {
    ptx: Mutex<HashMap<String, Arc<Compiled>>>,
    cubin: Mutex<HashMap<String, Arc<CompiledCubin>>>,
}

/// Looks `key` up in `map`, or makes the value (without holding the lock:
/// NVRTC takes milliseconds, and two threads compiling the same source at
/// once is harmless).
fn cached<T>(
    map: &Mutex<HashMap<String, Arc<T>>>,
    key: String,
    make: impl FnOnce() -> Result<T>,
) -> Result<Arc<T>> {
    if let Some(c) = map.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(c.clone());
    }
    let c = Arc::new(make()?);
    let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
    Ok(map.entry(key).or_insert(c).clone())
}

impl CompileCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// [`compile_ptx`], or the earlier result for the same inputs.
    pub fn compile(
        &self,
        name: &str,
        source: &str,
        headers: &[(&str, &str)],
        arch: u32,
        options: &[&str],
    ) -> Result<Arc<Compiled>> {
        let key = format!("{arch}\u{1}{options:?}\u{1}{headers:?}\u{1}{source}");
        cached(&self.ptx, key, || {
            compile_ptx(name, source, headers, arch, options)
        })
    }

    /// [`compile_cubin`], or the earlier result for the same inputs.
    pub fn compile_cubin(
        &self,
        name: &str,
        source: &str,
        headers: &[(&str, &str)],
        arch: u32,
        options: &[&str],
    ) -> Result<Arc<CompiledCubin>> {
        let key = format!("{arch}\u{1}{options:?}\u{1}{headers:?}\u{1}{source}");
        cached(&self.cubin, key, || {
            compile_cubin(name, source, headers, arch, options)
        })
    }

    /// How many distinct programs have been compiled.
    pub fn len(&self) -> usize {
        let ptx = self.ptx.lock().unwrap_or_else(|e| e.into_inner()).len();
        ptx + self.cubin.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
