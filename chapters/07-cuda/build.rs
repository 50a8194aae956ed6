//! Builds the CUDA emulator: every kernel file of `kernels/` (and the
//! deliberately broken kernels of `emu/tests/`) compiled as C++17 for the
//! CPU, with the emulator's runtime, into one static library.
//!
//! A static library only contributes the objects something refers to, so
//! the build also writes a Rust table naming every kernel's entry point
//! (`candle_emu_kernel_<name>`): the table refers to all of them, and it
//! is how the emulator finds a kernel by name. The names are read from the
//! preprocessed sources, since most kernels are stamped out by macros
//! (`unary_exp_f32`, `unary_exp_f64`, ...) and never spelled out.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn cu_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "cu"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The kernels a preprocessed source defines: each `CANDLE_KERNEL(name)`
/// expands to `extern "C" int candle_emu_kernel_<name>(`.
fn kernel_names(preprocessed: &str) -> Vec<String> {
    let marker = "int candle_emu_kernel_";
    let mut names = Vec::new();
    let mut rest = preprocessed;
    while let Some(i) = rest.find(marker) {
        rest = &rest[i + marker.len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() && rest[name.len()..].trim_start().starts_with('(') {
            names.push(name);
        }
    }
    names
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let (emu, kernels, tests) = (
        root.join("emu"),
        root.join("kernels"),
        root.join("emu/tests"),
    );
    println!("cargo:rerun-if-changed=build.rs");
    for dir in [&emu, &kernels, &tests] {
        println!("cargo:rerun-if-changed={}", dir.display());
    }

    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        .include(&emu)
        .include(&kernels)
        .define("CANDLE_EMULATOR", None)
        .opt_level(2)
        .warnings(true)
        .extra_warnings(true)
        .flag("-Wall")
        .flag("-Wextra")
        // A GPU compiler fuses `a * b + c` into one rounding when it can;
        // the emulator keeps them apart, like the CPU backend, and the
        // kernels that must match it exactly say so with `__fmul_rn`.
        .flag_if_supported("-ffp-contract=off")
        // `__shared__` is `thread_local`, and a kernel's `extern __shared__`
        // array is an `extern thread_local` defined in cuda_emu.cpp: tell
        // the compiler it needs no dynamic initialisation (otherwise each
        // access calls a per-variable init hook that does not exist).
        .flag("-fno-extern-tls-init")
        // Kernels reinterpret float arrays as float4, as CUDA code does.
        .flag("-fno-strict-aliasing")
        .flag("-fno-exceptions")
        .flag("-fno-rtti");
    println!(
        "cargo:rerun-if-changed={}",
        emu.join("cuda_emu.cpp").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        emu.join("cuda_emu.h").display()
    );
    build.file(emu.join("cuda_emu.cpp"));

    // One wrapper per kernel file, so g++ sees C++ whatever the extension.
    let mut shipped = Vec::new();
    let mut broken = Vec::new();
    let mut sources = Vec::new();
    for (dir, names) in [(&kernels, &mut shipped), (&tests, &mut broken)] {
        for cu in cu_files(dir) {
            println!("cargo:rerun-if-changed={}", cu.display());
            let stem = cu.file_stem().unwrap().to_string_lossy().into_owned();
            let wrapper = out.join(format!(
                "emu_{}_{stem}.cpp",
                if dir == &kernels { "k" } else { "t" }
            ));
            let text = format!("#include \"cuda_emu.h\"\n#include \"{}\"\n", cu.display());
            std::fs::write(&wrapper, text).unwrap();
            let mut cmd: Command = build.get_compiler().to_command();
            cmd.arg("-E")
                .arg("-std=c++17")
                .arg("-DCANDLE_EMULATOR")
                .arg(format!("-I{}", emu.display()))
                .arg(format!("-I{}", kernels.display()))
                .arg(&wrapper);
            let pre = cmd.output().expect("run the C++ preprocessor");
            assert!(
                pre.status.success(),
                "preprocessing {} failed:\n{}",
                cu.display(),
                String::from_utf8_lossy(&pre.stderr)
            );
            names.extend(kernel_names(&String::from_utf8_lossy(&pre.stdout)));
            if dir == &kernels {
                sources.push((format!("{stem}.cu"), cu.clone()));
            }
            build.file(&wrapper);
        }
    }
    println!(
        "cargo:rerun-if-changed={}",
        kernels.join("candle.cuh").display()
    );
    sources.push(("candle.cuh".into(), kernels.join("candle.cuh")));
    build.compile("candle_cuda_emu");

    shipped.sort();
    broken.sort();
    let mut rs = String::from("// Generated by build.rs: the emulator's kernel table.\n\n");
    rs.push_str("unsafe extern \"C\" {\n");
    for n in shipped.iter().chain(&broken) {
        writeln!(
            rs,
            "    fn candle_emu_kernel_{n}(a: *const LaunchArgs, p: *mut *mut c_void, n: i32) -> i32;"
        )
        .unwrap();
    }
    rs.push_str("}\n\n/// Every kernel of `kernels/*.cu`, sorted by name.\n");
    rs.push_str("pub(crate) static KERNELS: &[(&str, EntryPoint)] = &[\n");
    for n in &shipped {
        writeln!(rs, "    (\"{n}\", candle_emu_kernel_{n}),").unwrap();
    }
    rs.push_str("];\n\n/// The broken kernels of `emu/tests/*.cu`, sorted by name.\n");
    rs.push_str("pub(crate) static TEST_KERNELS: &[(&str, EntryPoint)] = &[\n");
    for n in &broken {
        writeln!(rs, "    (\"{n}\", candle_emu_kernel_{n}),").unwrap();
    }
    rs.push_str("];\n\n/// The kernel sources `(file name, text)`, for NVRTC.\n");
    rs.push_str("pub static SOURCES: &[(&str, &str)] = &[\n");
    for (name, path) in &sources {
        writeln!(
            rs,
            "    ({name:?}, include_str!({:?})),",
            path.display().to_string()
        )
        .unwrap();
    }
    rs.push_str("];\n");
    std::fs::write(out.join("emu_kernels.rs"), rs).unwrap();
}
