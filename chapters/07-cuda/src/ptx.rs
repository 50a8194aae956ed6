//! Kernels compiled ahead of time, embedded in the binary as PTX.
//!
//! A GPU machine may have the NVIDIA driver and nothing else: no CUDA
//! toolkit, no NVRTC. So the kernels under `kernels/` are compiled to PTX
//! (NVIDIA's virtual instruction set, which the driver's JIT turns into the
//! GPU's own code when the module is loaded) by `scripts/build-ptx.sh`,
//! the PTX files are committed under `ptx/`, and this module embeds them
//! with `include_str!` through the list the script generates
//! (`ptx/kernels.rs`).
//!
//! Two things can go wrong, and both are checked:
//! - *stale PTX*: a kernel source changed but the PTX was not rebuilt. The
//!   script records a hash of the sources ([`SOURCES_STAMP`]); a test
//!   recomputes it ([`sources_stamp`]) and fails with the command to run.
//! - *PTX too new for the driver*: PTX starts with `.version X.Y`, its ISA
//!   version, and a driver loads only versions it knows (driver 580, CUDA
//!   13.0, knows up to 9.0). The script uses NVRTC 13.0, and
//!   [`ptx_version`] lets a test check the embedded files.

/// One embedded PTX file: kernel file `name` (`elementwise` for
/// `kernels/elementwise.cu`) compiled for virtual architecture
/// `compute_{arch}`.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedPtx {
    pub name: &'static str,
    /// `80` for `compute_80` (A100), `90` for `compute_90` (H100/H200).
    pub arch: u32,
    pub ptx: &'static str,
}

// The generated list: `MODULES`, `SOURCES_STAMP`, `NVRTC_VERSION`, `ARCHS`.
include!("../ptx/kernels.rs");

// ANCHOR: best_for
/// The PTX of module `name` for the highest architecture not above
/// `compute_capability` (`90` for sm_90): PTX for `compute_80` runs on an
/// sm_90 GPU (the JIT compiles it there), never the other way round.
pub fn best_for(name: &str, compute_capability: u32) -> Option<&'static EmbeddedPtx> {
    MODULES
        .iter()
        .filter(|m| m.name == name && m.arch <= compute_capability)
        .max_by_key(|m| m.arch)
}
// ANCHOR_END: best_for

/// The `.version` line of a PTX text: `"9.0"`.
pub fn ptx_version(ptx: &str) -> Option<&str> {
    ptx.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(".version"))
        .map(str::trim)
}

/// The `.target` line of a PTX text: `"sm_90"`.
pub fn ptx_target(ptx: &str) -> Option<&str> {
    ptx.lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix(".target"))
        .map(|t| t.split(',').next().unwrap_or("").trim())
}

/// Is the kernel source file name one the stamp covers? CUDA sources and
/// the headers they include.
pub fn is_kernel_source(file_name: &str) -> bool {
    [".cu", ".cuh", ".h"]
        .iter()
        .any(|ext| file_name.ends_with(ext))
}

/// The stamp of a set of kernel sources, as `scripts/build-ptx.sh` writes
/// it: SHA-256 over the lines `"{sha256 of file}  {file name}\n"` of every
/// source file in byte order of names (what `sha256sum * | sha256sum`
/// prints, in the C locale). `files` are `(name, contents)`.
pub fn stamp_of(files: &mut [(String, Vec<u8>)]) -> String {
    use sha2::{Digest, Sha256};
    files.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut all = Sha256::new();
    for (name, bytes) in files.iter() {
        let h = Sha256::digest(bytes);
        all.update(format!("{}  {name}\n", hex(&h)));
    }
    hex(&all.finalize())
}

/// The stamp of the kernel sources in folder `dir` now (the empty set when
/// the folder does not exist).
pub fn sources_stamp(dir: &std::path::Path) -> std::io::Result<String> {
    let mut files = Vec::new();
    if dir.is_dir() {
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if entry.file_type()?.is_file() && is_kernel_source(&name) {
                files.push((name, std::fs::read(entry.path())?));
            }
        }
    }
    Ok(stamp_of(&mut files))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
