//! Saving and loading: `cargo test -p chapter-05 state_dict`.

use chapter_02::{manual_seed, DType, Tensor as RawTensor};
use chapter_03::Tensor;
use chapter_05::state_dict::{from_safetensors_bytes, to_safetensors_bytes, CHECKSUM_KEY};
use chapter_05::{
    load_safetensors, save_safetensors, BatchNorm1d, Embedding, Linear, Module, ModuleExt,
    StateDict, StateDictError, StateDictExt,
};
use std::path::Path;

/// The device the suite runs on (`CANDLE_DEVICE`, default `cpu`).
fn dev() -> chapter_02::Device {
    chapter_02::default_device().unwrap_or_else(|e| panic!("{e}"))
}

#[derive(Module)]
struct Classifier {
    embed: Embedding,
    hidden: Linear,
    bn: BatchNorm1d,
    out: Linear,
}

fn classifier(seed: u64) -> Classifier {
    manual_seed(seed);
    Classifier {
        embed: Embedding::new(10, 4).unwrap(),
        hidden: Linear::new(4, 3, true).unwrap(),
        bn: BatchNorm1d::new(3).unwrap(),
        out: Linear::new(3, 2, false).unwrap(),
    }
}

fn same_state(a: &StateDict, b: &StateDict) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((ka, va), (kb, vb))| {
            ka == kb
                && va.dims() == vb.dims()
                && va.dtype() == vb.dtype()
                && va.to_vec_f64().unwrap() == vb.to_vec_f64().unwrap()
        })
}

#[test]
fn state_dict_holds_parameters_and_buffers_by_dotted_name() {
    let m = classifier(0);
    let keys: Vec<String> = m.state_dict().into_keys().collect();
    assert_eq!(
        keys,
        [
            "bn.bias",
            "bn.num_batches_tracked",
            "bn.running_mean",
            "bn.running_var",
            "bn.weight",
            "embed.weight",
            "hidden.bias",
            "hidden.weight",
            "out.weight",
        ]
    );
}

#[test]
fn state_dict_round_trips_through_a_safetensors_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let a = classifier(1);
    // Move the buffers away from their initial values.
    a.bn.forward(&Tensor::from_raw(
        RawTensor::randn(0.0, 1.0, (8, 3), DType::F32, &dev()).unwrap(),
    ))
    .unwrap();
    a.save(&path).unwrap();
    let b = classifier(2);
    assert!(!same_state(&a.state_dict(), &b.state_dict()));
    b.load(&path).unwrap();
    assert!(same_state(&a.state_dict(), &b.state_dict()));
    assert_eq!(b.bn.num_batches_tracked.get().to_vec::<i64>().unwrap(), [1]);
    // Loading keeps each parameter's identity (an optimiser holding it sees the new values).
    assert!(b.hidden.weight.requires_grad());
    // Nothing but the file is left in the folder.
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(files, ["model.safetensors"]);
}

#[test]
fn state_dict_load_lists_every_missing_unexpected_and_mismatched_key() {
    let m = classifier(3);
    let mut dict = m.state_dict();
    dict.remove("hidden.bias");
    dict.remove("bn.running_var");
    dict.insert(
        "hidden.extra".into(),
        RawTensor::zeros(1, DType::F32, &dev()).unwrap(),
    );
    dict.insert(
        "out.weight".into(),
        RawTensor::zeros((3, 2), DType::F32, &dev()).unwrap(),
    );
    let before = m.state_dict();
    let err = m.load_state_dict(&dict).unwrap_err();
    match &err {
        StateDictError::Mismatch {
            missing,
            unexpected,
            shapes,
        } => {
            assert_eq!(
                missing,
                &["hidden.bias", "bn.running_var"],
                "in the model's order"
            );
            assert_eq!(unexpected, &["hidden.extra"]);
            assert_eq!(shapes.len(), 1);
            assert_eq!(shapes[0].0, "out.weight");
            assert_eq!(
                (shapes[0].1.dims(), shapes[0].2.dims()),
                (&[2, 3][..], &[3, 2][..])
            );
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    let msg = err.to_string();
    for part in [
        "missing keys: hidden.bias, bn.running_var",
        "unexpected keys: hidden.extra",
        "out.weight",
    ] {
        assert!(msg.contains(part), "{msg}");
    }
    assert!(
        same_state(&before, &m.state_dict()),
        "a failed load changes nothing"
    );
}

#[test]
fn state_dict_load_converts_dtypes_to_the_models() {
    let m = classifier(4);
    let dict: StateDict = m
        .state_dict()
        .into_iter()
        .map(|(k, v)| {
            let v = if v.dtype() == DType::F32 {
                v.to_dtype(DType::F64).unwrap()
            } else {
                v
            };
            (k, v)
        })
        .collect();
    m.load_state_dict(&dict).unwrap();
    assert_eq!(m.hidden.weight.dtype(), DType::F32);
}

/// A small saved file, and its bytes.
fn saved_bytes(dir: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let path = dir.join("small.safetensors");
    let m = Linear::with_options(3, 2, true, DType::F32, &dev()).unwrap();
    m.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

#[test]
fn state_dict_truncated_files_are_errors_at_every_length() {
    let dir = tempfile::tempdir().unwrap();
    let (path, bytes) = saved_bytes(dir.path());
    let m = Linear::new(3, 2, true).unwrap();
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.load(&path)));
        match result {
            Ok(Err(StateDictError::Corrupt { .. })) => {}
            Ok(Err(e)) => panic!("cut at {len}: unexpected kind of error {e}"),
            Ok(Ok(())) => panic!("cut at {len} of {}: loaded without error", bytes.len()),
            Err(_) => panic!("cut at {len}: panicked"),
        }
    }
    std::fs::write(&path, &bytes).unwrap();
    m.load(&path).unwrap();
}

#[test]
fn state_dict_flipped_bytes_are_errors_anywhere_in_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = saved_bytes(dir.path());
    let mut rng = chapter_02::Generator::new(7);
    for i in 0..bytes.len() {
        for mask in [0x01u8, 0x80, 0xff, 1 + rng.below(255) as u8] {
            let mut damaged = bytes.clone();
            damaged[i] ^= mask;
            let result = std::panic::catch_unwind(|| {
                from_safetensors_bytes(&damaged, Path::new("x"), &dev())
            });
            match result {
                Ok(Err(_)) => {}
                Ok(Ok(_)) => panic!(
                    "byte {i} ^ {mask:#04x} of {}: loaded without error",
                    bytes.len()
                ),
                Err(_) => panic!("byte {i} ^ {mask:#04x}: panicked"),
            }
        }
    }
    // Random damage to several bytes, and cuts: never a panic. (Damage to
    // both the checksum's key and its prefix would switch the check off, so
    // only single faults are guaranteed to be caught.)
    for _ in 0..2000 {
        let mut damaged = bytes.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(damaged.len());
            damaged[at] = rng.below(256) as u8;
        }
        damaged.truncate(damaged.len() - rng.below(3));
        let result =
            std::panic::catch_unwind(|| from_safetensors_bytes(&damaged, Path::new("x"), &dev()));
        assert!(result.is_ok(), "panicked");
    }
}

#[test]
fn state_dict_files_carry_a_checksum_and_load_files_without_one() {
    let m = Linear::with_options(2, 2, true, DType::F64, &dev()).unwrap();
    let bytes = to_safetensors_bytes(&m.state_dict(), None).unwrap();
    let header = String::from_utf8_lossy(&bytes[8..]).to_string();
    assert!(
        header.contains(CHECKSUM_KEY) && header.contains("sha256:"),
        "{header}"
    );
    // A file written by another tool (here: the safetensors crate directly,
    // like PyTorch's) has no checksum and loads as it is.
    let data: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let view =
        safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![2], &data).unwrap();
    let foreign = safetensors::serialize([("t", view)], None).unwrap();
    let dict = from_safetensors_bytes(&foreign, Path::new("foreign"), &dev()).unwrap();
    assert_eq!(dict["t"].to_vec::<f32>().unwrap(), [1.0, 2.0]);
    // The PyTorch fixtures load too.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/nn.safetensors");
    if fixture.exists() {
        let dict = load_safetensors(&fixture).unwrap();
        assert_eq!(dict["linear_0/weight"].dims(), [5, 3]);
    }
}

#[test]
fn state_dict_save_replaces_atomically_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let a = classifier(5);
    a.save(&path).unwrap();
    let b = classifier(6);
    b.save(&path).unwrap();
    let loaded = load_safetensors(&path).unwrap();
    assert!(same_state(&loaded, &b.state_dict()));
    let missing_dir = dir.path().join("no/such/dir/ckpt.safetensors");
    match save_safetensors(&missing_dir, &b.state_dict(), None) {
        Err(StateDictError::Io { path, .. }) => assert_eq!(path, missing_dir),
        other => panic!(
            "expected an io error, got {:?}",
            other.err().map(|e| e.to_string())
        ),
    }
    match load_safetensors(dir.path().join("absent.safetensors")) {
        Err(StateDictError::Io { .. }) => {}
        other => panic!(
            "expected an io error, got {:?}",
            other.err().map(|e| e.to_string())
        ),
    }
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        files,
        ["ckpt.safetensors"],
        "no temporary file is left behind"
    );
}

#[test]
fn state_dict_metadata_passes_through() {
    let m = Linear::new(1, 1, false).unwrap();
    let meta = std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
    let bytes = to_safetensors_bytes(&m.state_dict(), Some(meta)).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let stored = header.metadata().as_ref().unwrap();
    assert_eq!(stored["format"], "pt");
    assert!(stored[CHECKSUM_KEY].starts_with("sha256:"));
    assert_eq!(m.num_parameters(), 1);
}
