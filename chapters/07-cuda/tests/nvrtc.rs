//! NVRTC compiles every kernel of the chapter, for sm_80 and sm_90,
//! without an error or a warning. Where NVRTC is not installed the tests
//! say so in one line and pass (scripts/install-nvrtc.sh installs it).

use chapter_07::nvrtc::{self, compile_ptx, CompileCache};
use chapter_07::ptx;
use std::path::{Path, PathBuf};

fn kernel_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels")
}

fn sample_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sample-kernels")
}

/// `(name, contents)` of the kernel sources in `dir`, sorted.
fn sources(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if ptx::is_kernel_source(&name) {
                out.push((name, std::fs::read_to_string(e.path()).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// `true` (after one line) when NVRTC is missing.
fn skip() -> bool {
    match nvrtc::nvrtc_unavailable_reason() {
        Some(why) => {
            println!("skipped: {why}");
            true
        }
        None => false,
    }
}

#[test]
fn nvrtc_compiles_every_kernel_for_sm80_and_sm90_without_warnings() {
    if skip() {
        return;
    }
    println!("NVRTC {:?}", nvrtc::version().unwrap());
    let mut compiled = 0;
    for dir in [kernel_dir(), sample_dir()] {
        let files = sources(&dir);
        let headers: Vec<(&str, &str)> = files
            .iter()
            .filter(|(n, _)| !n.ends_with(".cu"))
            .map(|(n, s)| (n.as_str(), s.as_str()))
            .collect();
        for (name, src) in files.iter().filter(|(n, _)| n.ends_with(".cu")) {
            for arch in [80, 90] {
                let c = compile_ptx(name, src, &headers, arch, &["--std=c++17"])
                    .unwrap_or_else(|e| panic!("{}/{name} for compute_{arch}: {e}", dir.display()));
                assert!(
                    c.log.is_empty(),
                    "{}/{name} for compute_{arch} compiles with warnings:\n{}",
                    dir.display(),
                    c.log
                );
                // Driver 580 (CUDA 13.0) loads PTX ISA up to 9.0.
                let v = ptx::ptx_version(&c.ptx).unwrap();
                println!("{name} compute_{arch}: PTX ISA {v}, {} bytes", c.ptx.len());
                compiled += 1;
            }
        }
    }
    assert!(compiled >= 2, "the sample kernel at least");
}

#[test]
fn nvrtc_errors_carry_the_compiler_log() {
    if skip() {
        return;
    }
    let err = compile_ptx(
        "broken.cu",
        "extern \"C\" __global__ void k() { int x = ; }",
        &[],
        90,
        &[],
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("broken.cu"), "{err}");
    assert!(
        err.contains("expected an expression"),
        "the log is in the error: {err}"
    );
}

#[test]
fn nvrtc_reports_warnings_in_the_log() {
    if skip() {
        return;
    }
    let c = compile_ptx(
        "warns.cu",
        "extern \"C\" __global__ void k(float* p) { int unused = 3; p[0] = 1.0f; }",
        &[],
        80,
        &[],
    )
    .unwrap();
    assert!(c.log.contains("warning"), "log: {:?}", c.log);
}

#[test]
fn nvrtc_finds_headers_passed_by_name() {
    if skip() {
        return;
    }
    let header = "#define SCALE 3.0f\n";
    let src = "#include \"scale.cuh\"\nextern \"C\" __global__ void k(float* p) { p[0] = SCALE; }";
    let c = compile_ptx("inc.cu", src, &[("scale.cuh", header)], 90, &[]).unwrap();
    assert!(c.ptx.contains(".entry k"));
    // 3.0f is stored as its bits, 0x40400000.
    assert!(c.ptx.contains("1077936128"), "3.0f in the PTX:\n{}", c.ptx);
}

#[test]
fn nvrtc_cache_compiles_each_source_once() {
    if skip() {
        return;
    }
    let cache = CompileCache::new();
    let src = "extern \"C\" __global__ void k(float* p) { p[threadIdx.x] = 0.0f; }";
    let a = cache.compile("k.cu", src, &[], 80, &[]).unwrap();
    let b = cache.compile("k.cu", src, &[], 80, &[]).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    cache.compile("k.cu", src, &[], 90, &[]).unwrap();
    assert_eq!(cache.len(), 2);
}

#[test]
fn nvrtc_compiles_cubins_for_a_real_architecture() {
    if skip() {
        return;
    }
    let src = "extern \"C\" __global__ void k(float* p) { p[threadIdx.x] = 2.0f; }";
    let c = nvrtc::compile_cubin("k.cu", src, &[], 90, &[]).unwrap();
    assert_eq!(&c.cubin[..4], b"\x7fELF", "a cubin is an ELF file");
    assert!(c.log.is_empty());
    let cache = CompileCache::new();
    let a = cache.compile_cubin("k.cu", src, &[], 90, &[]).unwrap();
    let b = cache.compile_cubin("k.cu", src, &[], 90, &[]).unwrap();
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
