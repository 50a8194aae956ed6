//! Fuzz targets for the file loaders of Candle.
//!
//! Each target hands arbitrary bytes to one loader. A loader may accept the
//! bytes or refuse them; it may not panic, hang or allocate without bound,
//! and a refusal must name the file. A panic here, including the one
//! [`run`] raises for an error that does not name the file, is a finding.
//!
//! The same targets run two ways: under libFuzzer (`cargo +nightly fuzz
//! run --features libfuzzer <target>`, coverage-guided), and under the
//! stable driver `fuzz-driver`, which mutates the [`seeds`] with a seeded
//! random generator: flipped bits, cut ends, inserted and deleted bytes,
//! spliced inputs.

use chapter_02::{Device, Generator};
use chapter_03::RawTensor;
use chapter_05::state_dict::{from_safetensors_bytes, to_safetensors_bytes};
use chapter_06::data::decode_maybe_gzip;
use chapter_06::data::idx::{
    encode_idx_images, encode_idx_labels, parse_idx_images, parse_idx_labels, IdxImages,
};
use chapter_06::metrics::{parse_metrics, Record};
use chapter_06::{Checkpoint, OptimizerState};
use flate2::write::GzEncoder;
use flate2::Compression;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// The targets, by name.
pub const TARGETS: [&str; 6] = [
    "idx",
    "idx_gzip",
    "safetensors",
    "checkpoint",
    "metrics",
    "tokenizer_files",
];

/// The file name the loaders are told they read; every error must carry it.
pub const FILE_NAME: &str = "fuzz-input.bin";

/// Panics unless `result` is `Ok` or an error naming the file; says
/// whether it is `Ok`.
fn check<T, E: std::fmt::Display>(target: &str, result: Result<T, E>) -> bool {
    if let Err(e) = &result {
        let msg = e.to_string();
        assert!(
            msg.contains(FILE_NAME),
            "{target}: an error that does not name the file: {msg}"
        );
    }
    result.is_ok()
}

/// Runs target `target` on `data` and says whether the loader accepted
/// the bytes. Panics on a finding.
pub fn run(target: &str, data: &[u8]) -> bool {
    let path = Path::new(FILE_NAME);
    match target {
        "idx" => {
            let images = check(target, parse_idx_images(path, data));
            check(target, parse_idx_labels(path, data)) || images
        }
        "idx_gzip" => match ok_or_check(target, decode_maybe_gzip(path, data.to_vec())) {
            Some(raw) => {
                let images = check(target, parse_idx_images(path, &raw));
                check(target, parse_idx_labels(path, &raw)) || images
            }
            None => false,
        },
        "safetensors" => check(target, from_safetensors_bytes(data, path, &Device::cpu())),
        "checkpoint" => check(target, Checkpoint::from_bytes(data, path)),
        "metrics" => {
            if let Some(contents) = ok_or_check(target, parse_metrics(path, data)) {
                // What was read writes back and reads again the same.
                let mut again = Vec::new();
                for line in &contents.lines {
                    again.extend(serde_line(&line.record));
                }
                let back = parse_metrics(path, &again)
                    .unwrap_or_else(|e| panic!("metrics: a re-written file does not read: {e}"));
                assert_eq!(back.lines.len(), contents.lines.len());
                true
            } else {
                false
            }
        }
        "tokenizer_files" => tokenizer_files(data),
        other => panic!("unknown target {other}; the targets are {TARGETS:?}"),
    }
}

/// `tokenizer_files`: `encoder.json`, a 0xFF byte (never in either file),
/// `vocab.bpe`. Without a 0xFF, the input is tried as each file in turn
/// next to a valid other. What loads must encode and decode a text back.
fn tokenizer_files(data: &[u8]) -> bool {
    use chapter_08::tokenizer::Gpt2Tokenizer;
    let encoder = Path::new("fuzz-input.bin (encoder.json)");
    let vocab = Path::new("fuzz-input.bin (vocab.bpe)");
    let load = |e: &[u8], v: &[u8]| {
        let result = Gpt2Tokenizer::from_bytes(e, encoder, v, vocab);
        if let Ok(t) = &result {
            let text = "The cat's 12 hats\n\n  <|endoftext|>";
            assert_eq!(t.decode(&t.encode(text)).expect("own ids"), text.as_bytes());
        }
        check("tokenizer_files", result)
    };
    match data.iter().position(|&b| b == 0xFF) {
        Some(at) => load(&data[..at], &data[at + 1..]),
        None => {
            let seed = tokenizer_seed();
            let at = seed
                .iter()
                .position(|&b| b == 0xFF)
                .expect("the seed has both files");
            let as_encoder = load(data, &seed[at + 1..]);
            load(&seed[..at], data) || as_encoder
        }
    }
}

/// A small valid vocabulary (the trainer's, 300 tokens), as the target reads it.
fn tokenizer_seed() -> Vec<u8> {
    static SEED: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    SEED.get_or_init(train_tokenizer_seed).clone()
}

fn train_tokenizer_seed() -> Vec<u8> {
    let v = chapter_08::tokenizer::BpeTrainer::new(300)
        .train("the cat sat on the mat; the cat's hat is 12 hats. the end\n\n")
        .expect("a valid vocab size");
    let mut out = v.encoder_json().into_bytes();
    out.push(0xFF);
    out.extend(v.vocab_bpe().into_bytes());
    out
}

fn ok_or_check<T, E: std::fmt::Display>(target: &str, result: Result<T, E>) -> Option<T> {
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            check::<(), _>(target, Err(e));
            None
        }
    }
}

/// One record as the metrics writer writes it.
fn serde_line(record: &Record) -> Vec<u8> {
    let buffer = SharedVec::default();
    let mut w = chapter_06::metrics::MetricsWriter::from_writer(FILE_NAME, buffer.clone());
    w.write(record).expect("writing to memory cannot fail");
    drop(w);
    let bytes = buffer.0.lock().expect("not poisoned").clone();
    bytes
}

/// A `Vec<u8>` writer shared with whoever holds a clone.
#[derive(Clone, Default)]
struct SharedVec(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedVec {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Valid example files of each target: the starting points of mutation.
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let images = encode_idx_images(&IdxImages {
        count: 3,
        rows: 4,
        cols: 5,
        pixels: (0..60).collect(),
    })
    .expect("valid images");
    let labels = encode_idx_labels(&[0, 1, 2, 9, 5]).expect("valid labels");
    match target {
        "idx" => vec![images, labels],
        "idx_gzip" => vec![gzip(&images), gzip(&labels)],
        "safetensors" => vec![state_dict_bytes()],
        "checkpoint" => vec![checkpoint_bytes()],
        "metrics" => vec![metrics_bytes()],
        "tokenizer_files" => vec![tokenizer_seed()],
        other => panic!("unknown target {other}"),
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    gz.write_all(bytes).expect("in memory");
    gz.finish().expect("in memory")
}

fn state_dict_bytes() -> Vec<u8> {
    let dev = Device::cpu();
    let dict = BTreeMap::from([
        (
            "layers.0.weight".to_string(),
            RawTensor::from_vec(vec![1.0f32, -2.0, 3.5, 0.0], (2, 2), &dev).expect("tensor"),
        ),
        (
            "layers.0.bias".to_string(),
            RawTensor::from_vec(vec![0.5f64, 1e-300], 2, &dev).expect("tensor"),
        ),
        (
            "ids".to_string(),
            RawTensor::from_vec(vec![7i64, -1, 0], 3, &dev).expect("tensor"),
        ),
        (
            "mask".to_string(),
            RawTensor::from_vec(vec![0u8, 1], 2, &dev).expect("tensor"),
        ),
    ]);
    to_safetensors_bytes(&dict, None).expect("serialise")
}

fn checkpoint_bytes() -> Vec<u8> {
    let dev = Device::cpu();
    let mut optimizer = OptimizerState::default();
    optimizer.tensors.insert(
        "0.0.exp_avg".into(),
        RawTensor::from_vec(vec![0.1f32; 4], (2, 2), &dev).expect("tensor"),
    );
    optimizer.scalars.insert("0.lr".into(), 1e-3);
    optimizer.scalars.insert("0.0.step".into(), 7.0);
    let ckpt = Checkpoint {
        model: BTreeMap::from([(
            "layers.0.weight".to_string(),
            RawTensor::from_vec(vec![0.25f32; 4], (2, 2), &dev).expect("tensor"),
        )]),
        optimizer,
        scheduler_steps: 7,
        rng: Generator::new(3).state(),
        epoch: 2,
        global_step: 7,
        extra: BTreeMap::from([("config".to_string(), "{\"lr\":0.001}".to_string())]),
    };
    let dir = std::env::temp_dir().join(format!("candle-fuzz-seed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("seed.ckpt");
    ckpt.save(&path).expect("save");
    let bytes = std::fs::read(&path).expect("read back");
    let _ = std::fs::remove_dir_all(&dir);
    bytes
}

fn metrics_bytes() -> Vec<u8> {
    let records = [
        Record::Train {
            step: 50,
            epoch: 1,
            loss: f64::NAN,
            accuracy: 0.5,
            lr: 1e-3,
            grad_norm: f64::INFINITY,
            examples_per_sec: 1234.5,
            param_norms: BTreeMap::from([("w".into(), 1.0)]),
            grad_norms: BTreeMap::from([("w".into(), f64::NEG_INFINITY)]),
        },
        Record::Eval {
            step: 100,
            epoch: 1,
            train_loss: 0.3,
            train_accuracy: 0.9,
            test_loss: 0.25,
            test_accuracy: 0.92,
            seconds: 1.5,
        },
        Record::Histogram {
            step: 100,
            epoch: 1,
            name: "layers.0 (after ReLU)".into(),
            edges: vec![0.0, 0.5, 1.0],
            counts: vec![10, 3],
        },
    ];
    records.iter().flat_map(serde_line).collect()
}

/// A small, fast, seeded random generator (SplitMix64) for the driver.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}

/// A mutated copy of `input`: one to four edits of the kinds fuzzers use
/// (bit flips, interesting bytes, inserted or deleted runs, truncation,
/// duplicated chunks, splices with `other`, or fresh random bytes).
pub fn mutate(input: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = out.len();
        match rng.below(9) {
            0 if len > 0 => {
                let i = rng.below(len);
                out[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                out[i] = [0, 1, 0x7f, 0x80, 0xff, b'"', b'{', b'\n', b'0'][rng.below(9)];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next_u64() as u8).collect();
                out.splice(i..i, bytes);
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                out.drain(i..i + n);
            }
            4 => out.truncate(rng.below(len + 1)),
            5 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(64));
                let chunk = out[i..i + n].to_vec();
                let at = rng.below(out.len() + 1);
                out.splice(at..at, chunk);
            }
            6 if !other.is_empty() => {
                let cut = rng.below(out.len() + 1);
                let from = rng.below(other.len());
                out.truncate(cut);
                out.extend_from_slice(&other[from..]);
            }
            7 if len >= 8 => {
                // Overwrite a little-endian u64 (safetensors' header length,
                // IDX sizes) with an extreme value.
                let i = rng.below(len - 7);
                let v: u64 =
                    [0, 1, u64::MAX, u32::MAX as u64, 1 << 40, rng.next_u64()][rng.below(6)];
                out[i..i + 8].copy_from_slice(&v.to_le_bytes());
            }
            _ => {
                let n = rng.below(256);
                out = (0..n).map(|_| rng.next_u64() as u8).collect();
            }
        }
    }
    out
}
