//! The stable-Rust fuzz driver: runs each target a fixed number of times on
//! mutations of its seeds, catching panics, and prints the executions run.
//!
//! ```text
//! cargo run --release --bin fuzz-driver -- all --runs 100000 --seed 1
//! cargo run --release --bin fuzz-driver -- checkpoint --runs 5000
//! ```
//!
//! Without libFuzzer's coverage guidance it finds less than `cargo fuzz`
//! would in the same time, but it needs no nightly compiler, and the same
//! seed gives the same inputs, so a finding can be replayed. Findings are
//! written to `artifacts/<target>/` and make the driver exit with status 1.

use candle_fuzz::{mutate, run, seeds, Rng, TARGETS};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut target = "all".to_string();
    let (mut runs, mut seed) = (10_000u64, 1u64);
    let mut i = 0;
    while i < args.len() {
        let value = |i: usize| -> u64 {
            args.get(i + 1)
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| usage(&format!("{} needs a whole number", args[i])))
        };
        match args[i].as_str() {
            "--runs" => {
                runs = value(i);
                i += 1;
            }
            "--seed" => {
                seed = value(i);
                i += 1;
            }
            t if !t.starts_with('-') => target = t.to_string(),
            other => usage(&format!("unknown option {other}")),
        }
        i += 1;
    }
    let targets: Vec<&str> = if target == "all" {
        TARGETS.to_vec()
    } else if TARGETS.contains(&target.as_str()) {
        vec![TARGETS[TARGETS.iter().position(|t| *t == target).expect("checked")]]
    } else {
        usage(&format!("unknown target {target}"))
    };
    // A panic is a finding: report it ourselves, once, without the default
    // message for each of them.
    std::panic::set_hook(Box::new(|_| {}));
    let mut findings = 0;
    for target in targets {
        let started = Instant::now();
        let corpus = seeds(target);
        let mut rng = Rng::new(seed ^ fxhash(target));
        let (mut target_findings, mut accepted) = (0, 0u64);
        for n in 0..runs {
            let input = if n < corpus.len() as u64 {
                corpus[n as usize].clone()
            } else {
                let a = &corpus[rng.below(corpus.len())];
                let b = &corpus[rng.below(corpus.len())];
                mutate(a, b, &mut rng)
            };
            let outcome = catch_unwind(AssertUnwindSafe(|| run(target, &input)));
            if let Ok(ok) = outcome {
                accepted += u64::from(ok);
            }
            if let Err(panic) = outcome {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "a panic".into());
                let dir = std::path::Path::new("artifacts").join(target);
                let _ = std::fs::create_dir_all(&dir);
                let file = dir.join(format!("crash-seed{seed}-run{n}"));
                let _ = std::fs::write(&file, &input);
                eprintln!(
                    "{target}: run {n}: {msg} (input saved to {})",
                    file.display()
                );
                target_findings += 1;
            }
        }
        println!(
            "{target}: {runs} executions in {:.1} s ({accepted} inputs accepted, the others \
             refused with an error naming the file), {target_findings} findings",
            started.elapsed().as_secs_f64()
        );
        findings += target_findings;
    }
    if findings > 0 {
        std::process::exit(1);
    }
}

/// A fixed hash of a target's name, so each target gets its own stream.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: fuzz-driver [all|{}] [--runs N] [--seed S]",
        TARGETS.join("|")
    );
    std::process::exit(2)
}
