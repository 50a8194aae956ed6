//! Lesson: our cache *is* Python's cache. Python's `huggingface_hub`
//! reads what `download_model` wrote (offline, and online without fetching
//! the weights again), and `resolve_model` finds what Python downloaded
//! from the same fake Hub. Needs `pip install huggingface_hub`, so it is
//! ignored by default:
//! `cargo test -p chapter-08 --test hub_python -- --ignored`.

mod hub_server;

use chapter_08::hub::{resolve_model_in, HubCache, HubClient, HubConfig, ModelId, MODEL_FILES};
use hub_server::{gpt2_like, FakeHub, COMMIT};
use std::process::Command;

const PYTHON: &str = r#"
import os, sys
from huggingface_hub import hf_hub_download, try_to_load_from_cache, _CACHED_NO_EXIST
cache = sys.argv[1]
p = hf_hub_download("openai-community/gpt2", "model.safetensors", cache_dir=cache, local_files_only=True)
print("offline", os.path.getsize(p))
print("no_exist", try_to_load_from_cache("openai-community/gpt2", "tokenizer.json", cache_dir=cache) is _CACHED_NO_EXIST)
hf_hub_download("openai-community/gpt2", "model.safetensors", cache_dir=cache)
for f in ["config.json", "model.safetensors", "vocab.json", "merges.txt"]:
    hf_hub_download("python/model", f, cache_dir=cache)
print("done")
"#;

#[test]
#[ignore = "needs Python's huggingface_hub (pip install huggingface_hub)"]
fn python_huggingface_hub_shares_our_cache() {
    let hub = FakeHub::start(
        vec![
            gpt2_like("openai-community/gpt2", COMMIT, 300_000),
            gpt2_like("python/model", COMMIT, 1_000),
        ],
        None,
    );
    let dir = tempfile::tempdir().unwrap();
    let client = HubClient::new(HubConfig {
        endpoint: hub.endpoint().into(),
        cache: HubCache::new(dir.path()),
        token: None,
    })
    .unwrap();
    let gpt2 = ModelId::parse("openai-community/gpt2").unwrap();
    client
        .download_model(&gpt2, "main", &MODEL_FILES, &mut |_| {})
        .unwrap();
    let cdn_gets = hub.cdn.count("GET");

    let out = Command::new("python3")
        .arg("-c")
        .arg(PYTHON)
        .arg(dir.path())
        .env("HF_ENDPOINT", hub.endpoint())
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("offline 300000"), "{stdout}");
    assert!(stdout.contains("no_exist True"), "{stdout}");
    // Python found our gpt2 blob: the CDN served only its own model's weights.
    assert_eq!(hub.cdn.count("GET"), cdn_gets + 1);

    let files = resolve_model_in(&HubCache::new(dir.path()), "python/model").unwrap();
    assert_eq!(std::fs::metadata(&files.weights).unwrap().len(), 1_000);
    assert!(files.merges.is_some());
}
