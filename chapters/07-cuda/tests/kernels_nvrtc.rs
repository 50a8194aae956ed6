//! The kernel files are CUDA C++ for NVRTC as well as C++ for the
//! emulator: where NVRTC can be loaded (a CUDA toolkit, or the
//! `nvidia-cuda-nvrtc` wheel's `lib/` on `LD_LIBRARY_PATH` with a
//! `libnvrtc.so` link), every file compiles to PTX and exports exactly the
//! kernels the emulator knows. Without NVRTC the test says so and passes.

use chapter_07::emulator::SOURCES;
use chapter_07::Emulator;
use cudarc::nvrtc::{compile_ptx_with_opts, CompileOptions};
use std::collections::BTreeSet;

#[test]
fn every_kernel_file_compiles_with_nvrtc_to_the_kernels_the_emulator_runs() {
    // SAFETY: only tries to open the library.
    if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
        eprintln!("NVRTC not found: the kernels were only checked by the emulator's C++ compiler");
        return;
    }
    let include = concat!(env!("CARGO_MANIFEST_DIR"), "/kernels").to_string();
    let mut entries = BTreeSet::new();
    for (name, src) in SOURCES.iter().filter(|(n, _)| n.ends_with(".cu")) {
        let opts = CompileOptions {
            arch: Some("compute_80"),
            include_paths: vec![include.clone()],
            options: vec!["-std=c++17".into()],
            name: Some(name.to_string()),
            ..Default::default()
        };
        let ptx = compile_ptx_with_opts(src, opts)
            .unwrap_or_else(|e| panic!("{name} does not compile with NVRTC: {e:?}"));
        for line in ptx.to_src().lines() {
            if let Some(rest) = line.strip_prefix(".visible .entry ") {
                entries.insert(rest.trim_end_matches('(').to_string());
            }
        }
    }
    let emulated: BTreeSet<String> = Emulator::kernels().map(String::from).collect();
    assert_eq!(
        entries, emulated,
        "PTX entry points and the emulator's kernel table differ"
    );
}
