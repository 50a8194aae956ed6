//! Lesson: a loader meets any bytes calmly. Every reader of a file format
//! this chapter uses (IDX, gzipped IDX, safetensors state dicts,
//! checkpoints, metrics, the digits CSV) is fed random bytes and damaged
//! copies of a valid file (cut short, bits flipped, bytes inserted). It may
//! accept the bytes or refuse them, but it must not panic, and a refusal
//! must name the file. `fuzz/` runs the same loaders under `cargo fuzz` for
//! millions of inputs; these properties are the quick version that runs
//! with every `cargo test`.
//!
//! `cargo test -p chapter-06 corrupt_files` runs these.

mod corrupt_files {
    use chapter_02::{Device, Generator};
    use chapter_03::RawTensor;
    use chapter_05::state_dict::{from_safetensors_bytes, to_safetensors_bytes};
    use chapter_06::data::idx::{
        encode_idx_images, encode_idx_labels, parse_idx_images, parse_idx_labels, IdxImages,
    };
    use chapter_06::data::{decode_maybe_gzip, load_digits};
    use chapter_06::metrics::{parse_metrics, MetricsWriter, Record};
    use chapter_06::{Checkpoint, OptimizerState};
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::io::Write;
    use std::path::Path;

    /// The name every error must carry.
    const NAME: &str = "fuzz-input.bin";

    fn images() -> Vec<u8> {
        encode_idx_images(&IdxImages {
            count: 3,
            rows: 2,
            cols: 3,
            pixels: (0..18).collect(),
        })
        .unwrap()
    }

    fn labels() -> Vec<u8> {
        encode_idx_labels(&[1, 2, 3, 9]).unwrap()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn state_dict() -> Vec<u8> {
        let dev = Device::cpu();
        let dict = BTreeMap::from([
            (
                "w".to_string(),
                RawTensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], (2, 2), &dev).unwrap(),
            ),
            (
                "b".to_string(),
                RawTensor::from_vec(vec![0.5f64], 1, &dev).unwrap(),
            ),
            (
                "i".to_string(),
                RawTensor::from_vec(vec![7i64, -1], 2, &dev).unwrap(),
            ),
        ]);
        to_safetensors_bytes(&dict, None).unwrap()
    }

    fn checkpoint() -> Vec<u8> {
        let dev = Device::cpu();
        let mut optimizer = OptimizerState::default();
        optimizer.tensors.insert(
            "0.0.exp_avg".into(),
            RawTensor::from_vec(vec![0.1f32; 4], 4, &dev).unwrap(),
        );
        optimizer.scalars.insert("0.lr".into(), 1e-3);
        let ckpt = Checkpoint {
            model: BTreeMap::from([(
                "layers.0.weight".to_string(),
                RawTensor::from_vec(vec![0.25f32; 4], (2, 2), &dev).unwrap(),
            )]),
            optimizer,
            scheduler_steps: 7,
            rng: Generator::new(3).state(),
            epoch: 2,
            global_step: 7,
            extra: BTreeMap::from([("config".to_string(), "{\"lr\":0.001}".to_string())]),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.ckpt");
        ckpt.save(&path).unwrap();
        std::fs::read(path).unwrap()
    }

    fn metrics() -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let mut w = MetricsWriter::open(dir.path()).unwrap();
        w.write(&Record::Train {
            step: 1,
            epoch: 1,
            loss: f64::NAN,
            accuracy: 0.5,
            lr: 1e-3,
            grad_norm: f64::INFINITY,
            examples_per_sec: 10.0,
            param_norms: BTreeMap::from([("w".into(), 1.0)]),
            grad_norms: BTreeMap::new(),
        })
        .unwrap();
        w.write(&Record::Histogram {
            step: 1,
            epoch: 1,
            name: "h".into(),
            edges: vec![0.0, 1.0],
            counts: vec![3],
        })
        .unwrap();
        drop(w);
        std::fs::read(dir.path().join("metrics.jsonl")).unwrap()
    }

    fn digits() -> Vec<u8> {
        let row: Vec<String> = (0..64).map(|i| (i % 17).to_string()).collect();
        format!("{},3\n{},9\n", row.join(","), row.join(",")).into_bytes()
    }

    /// One loader: its valid example file and how to read bytes with it.
    type Loader = (
        &'static str,
        fn() -> Vec<u8>,
        fn(&[u8]) -> Result<(), String>,
    );

    fn loaders() -> Vec<Loader> {
        vec![
            ("idx images", images, |b| {
                parse_idx_images(Path::new(NAME), b)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("idx labels", labels, |b| {
                parse_idx_labels(Path::new(NAME), b)
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            (
                "gzipped idx",
                || gzip(&images()),
                |b| {
                    let raw = decode_maybe_gzip(Path::new(NAME), b.to_vec())
                        .map_err(|e| e.to_string())?;
                    parse_idx_images(Path::new(NAME), &raw)
                        .map(drop)
                        .map_err(|e| e.to_string())
                },
            ),
            ("safetensors", state_dict, |b| {
                from_safetensors_bytes(b, Path::new(NAME), &Device::cpu())
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("checkpoint", checkpoint, |b| {
                Checkpoint::from_bytes(b, Path::new(NAME))
                    .map(drop)
                    .map_err(|e| e.to_string())
            }),
            ("metrics", metrics, |b| {
                parse_metrics(Path::new(NAME), b).map(drop)
            }),
            ("digits csv", digits, |b| {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join(NAME);
                std::fs::write(&path, b).unwrap();
                load_digits(&path).map(drop).map_err(|e| e.to_string())
            }),
        ]
    }

    /// Reads `bytes` with every loader; a refusal must name the file.
    fn check_all(bytes: &[u8]) -> Result<(), TestCaseError> {
        for (name, _, read) in loaders() {
            if let Err(e) = read(bytes) {
                prop_assert!(
                    e.contains(NAME),
                    "{name}: the error does not name the file: {e}"
                );
            }
        }
        Ok(())
    }

    #[test]
    fn corrupt_files_the_valid_examples_load() {
        for (name, valid, read) in loaders() {
            read(&valid()).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        // ANCHOR: random_bytes
        #[test]
        fn corrupt_files_random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_all(&bytes)?;
            // The same bytes behind each format's magic, to get past the first check.
            for (_, valid, _) in loaders() {
                let mut prefixed = valid()[..8.min(valid().len())].to_vec();
                prefixed.extend_from_slice(&bytes);
                check_all(&prefixed)?;
            }
        }
        // ANCHOR_END: random_bytes

        #[test]
        fn corrupt_files_truncated_valid_files_never_panic(cut in 0.0f64..1.0) {
            for (_, valid, _) in loaders() {
                let bytes = valid();
                let len = (cut * bytes.len() as f64) as usize;
                check_all(&bytes[..len])?;
            }
        }

        #[test]
        fn corrupt_files_damaged_valid_files_never_panic(
            edits in proptest::collection::vec((0.0f64..1.0, any::<u8>(), 0u8..3), 1..6),
        ) {
            for (_, valid, _) in loaders() {
                let mut bytes = valid();
                for &(at, byte, kind) in &edits {
                    let i = ((at * bytes.len() as f64) as usize).min(bytes.len().saturating_sub(1));
                    match kind {
                        0 if !bytes.is_empty() => bytes[i] ^= byte | 1, // flip bits
                        1 => bytes.insert(i, byte),                      // insert a byte
                        _ if !bytes.is_empty() => { bytes.remove(i); }    // delete a byte
                        _ => {}
                    }
                }
                check_all(&bytes)?;
            }
        }
    }
}
