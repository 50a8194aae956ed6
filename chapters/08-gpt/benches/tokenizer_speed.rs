//! Encoding speed of GPT-2's tokenizer on a text file, one thread.
//!
//! ```text
//! cargo bench -p chapter-08 --bench tokenizer_speed -- [FILE] [--repeats N]
//! ```
//!
//! Prints MB/s (10^6 bytes of text per second, the best of `N` runs) for
//! `encode`, `encode` without the word cache, and `decode`, and a last
//! line `encode_mb_per_s=…` that `bench/tokenizer.sh` reads.

use chapter_08::tokenizer::{default_gpt2_dir, Gpt2Tokenizer};
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Instant;

/// The best time of `repeats` runs of `f`, in seconds.
fn best_of(repeats: usize, mut f: impl FnMut()) -> f64 {
    (0..repeats)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let mut file = None;
    let mut repeats = 5;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--repeats" => {
                repeats = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| fail("--repeats needs a whole number ≥ 1"))
            }
            "--bench" => {} // added by `cargo bench`
            other if other.starts_with('-') => fail(&format!("unknown option {other}")),
            other => file = Some(PathBuf::from(other)),
        }
    }
    let file = file.unwrap_or_else(|| {
        chapter_06::data::default_data_dir().join("shakespeare/shakespeare_small.txt")
    });
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| fail(&format!("{}: cannot read: {e}", file.display())));
    let load = Instant::now();
    let tokenizer =
        Gpt2Tokenizer::from_dir(&default_gpt2_dir()).unwrap_or_else(|e| fail(&e.to_string()));
    let load_s = load.elapsed().as_secs_f64();

    let ids = tokenizer.encode(&text);
    let mb = text.len() as f64 / 1e6;
    let encode = best_of(repeats, || {
        black_box(tokenizer.encode(black_box(&text)));
    });
    let uncached = best_of(repeats, || {
        black_box(tokenizer.encode_without_cache(black_box(&text)));
    });
    let decode = best_of(repeats, || {
        black_box(tokenizer.decode(black_box(&ids)).expect("own ids"));
    });
    println!(
        "{}: {} bytes, {} tokens; vocabulary loaded in {:.0} ms",
        file.display(),
        text.len(),
        ids.len(),
        load_s * 1e3
    );
    println!("ours encode:               {:8.1} MB/s", mb / encode);
    println!("ours encode without cache: {:8.1} MB/s", mb / uncached);
    println!("ours decode:               {:8.1} MB/s", mb / decode);
    println!("encode_mb_per_s={:.3}", mb / encode);
}

fn fail(msg: &str) -> ! {
    eprintln!("tokenizer_speed: {msg}");
    std::process::exit(2)
}
