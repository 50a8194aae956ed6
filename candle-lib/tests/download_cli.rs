//! `candle download`, run as a user runs it, against the fake Hub of
//! chapter 08's tests (127.0.0.1 only; no network).
//! `cargo test -p candle-lib --test download_cli` runs these.

#[path = "../../chapters/08-gpt/tests/hub_server/mod.rs"]
mod hub_server;

use hub_server::{gpt2_like, FakeHub, COMMIT};
use std::path::Path;
use std::process::{Command, Output};

/// Runs `candle download args...` with a clean Hugging Face environment
/// whose cache is `cache`.
fn candle_download(args: &[&str], cache: &Path, endpoint: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_candle"));
    cmd.arg("download")
        .args(args)
        .env("HF_HUB_CACHE", cache)
        .env_remove("HF_TOKEN")
        .env_remove("HF_HOME")
        .env_remove("HF_ENDPOINT");
    if let Some(endpoint) = endpoint {
        cmd.env("HF_ENDPOINT", endpoint);
    }
    cmd.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn download_fetches_then_reports_cached() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 300_000)], None);
    let cache = tempfile::tempdir().unwrap();

    // HF_ENDPOINT points at the fake Hub.
    let out = candle_download(&["gpt2"], cache.path(), Some(hub.endpoint()));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stderr: {stderr}");
    let snapshot = cache.path().join("models--gpt2/snapshots").join(COMMIT);
    assert_eq!(stdout.trim(), snapshot.display().to_string());
    assert_eq!(
        std::fs::metadata(snapshot.join("model.safetensors"))
            .unwrap()
            .len(),
        300_000
    );
    assert!(
        stderr.contains("tokenizer.json: not in this model"),
        "{stderr}"
    );
    assert!(stderr.contains("downloaded 300"), "{stderr}");

    // --endpoint overrides HF_ENDPOINT (here: a wrong one).
    let gets = hub.get_count();
    let out = candle_download(
        &["gpt2", "--endpoint", hub.endpoint()],
        cache.path(),
        Some("http://127.0.0.1:9"),
    );
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "stderr: {stderr}");
    assert!(stderr.contains("model.safetensors: cached"), "{stderr}");
    assert!(stderr.contains("nothing downloaded"), "{stderr}");
    assert_eq!(hub.get_count(), gets);
}

#[test]
fn download_errors_name_the_model_or_file() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 1000)], None);
    let cache = tempfile::tempdir().unwrap();
    for (args, expected) in [
        (vec!["nobody/nothing"], "`nobody/nothing` not found"),
        (vec!["gpt2", "--revision", "v7"], "no revision `v7`"),
        (vec!["../gpt2"], "invalid model id `../gpt2`"),
        (vec!["gpt2", "--endpoint", "ftp://x"], "https:// or http://"),
    ] {
        let out = candle_download(&args, cache.path(), Some(hub.endpoint()));
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn download_resumes_after_an_interruption() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 300_000)], None);
    let cache = tempfile::tempdir().unwrap();
    hub.cut_next("model.safetensors", 100_000);
    let out = candle_download(&["gpt2"], cache.path(), Some(hub.endpoint()));
    let stderr = text(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("interrupted after 100000 of 300000 bytes"),
        "{stderr}"
    );
    let out = candle_download(&["gpt2"], cache.path(), Some(hub.endpoint()));
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("resuming at byte 100000"), "{stderr}");
    assert_eq!(hub.range_requests(), vec!["bytes=100000-".to_string()]);
}
