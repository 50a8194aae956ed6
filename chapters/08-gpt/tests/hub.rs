//! Lesson: fetching a model from the Hugging Face Hub, without the network.
//! Every test talks to a fake Hub on 127.0.0.1 (`hub_server/`), which
//! redirects large files to a second local server as the real Hub
//! redirects to its CDN. `cargo test -p chapter-08 --test hub` runs these.

mod hub_server;

use chapter_08::hub::{
    resolve_model_in, DownloadEvent, FileOutcome, HubCache, HubClient, HubConfig, HubError,
    ModelDownload, ModelId, ModelSource, MODEL_FILES,
};
use hub_server::{gpt2_like, FakeHub, FakeRepo, COMMIT};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

const WEIGHTS_LEN: usize = 200_000;

fn client(hub: &FakeHub, cache: &Path, token: Option<&str>) -> HubClient {
    HubClient::new(HubConfig {
        endpoint: hub.endpoint().to_string(),
        cache: HubCache::new(cache),
        token: token.map(str::to_string),
    })
    .unwrap()
}

/// Downloads `id` at `revision` and returns the result and the events as text.
fn download(
    client: &HubClient,
    id: &str,
    revision: &str,
) -> (Result<ModelDownload, HubError>, Vec<String>) {
    let mut events = Vec::new();
    let result = client.download_model(
        &ModelId::parse(id).unwrap(),
        revision,
        &MODEL_FILES,
        &mut |e: &DownloadEvent| {
            if !matches!(e, DownloadEvent::Progress { .. }) {
                events.push(e.to_string());
            }
        },
    );
    (result, events)
}

fn weights(hub_repo: &FakeRepo) -> Vec<u8> {
    hub_repo
        .files
        .iter()
        .find(|f| f.name == "model.safetensors")
        .unwrap()
        .bytes
        .clone()
}

fn repo_dir(cache: &Path, folder: &str) -> PathBuf {
    cache.join(folder)
}

// ---------------------------------------------------------------- model ids

#[test]
fn model_id_accepts_canonical_and_namespaced_ids() {
    for id in [
        "gpt2",
        "openai-community/gpt2",
        "EleutherAI/gpt-neo-125M",
        "a_b/c.d",
    ] {
        assert_eq!(ModelId::parse(id).unwrap().as_str(), id);
    }
    assert_eq!(
        ModelId::parse("openai-community/gpt2")
            .unwrap()
            .cache_folder(),
        "models--openai-community--gpt2"
    );
    assert_eq!(
        ModelId::parse("gpt2").unwrap().cache_folder(),
        "models--gpt2"
    );
}

#[test]
fn model_id_rejects_paths_and_traversal() {
    for (id, says) in [
        ("../etc", "must start and end"),
        ("a/../b", "at most one"),
        ("/abs/model", "not a path"),
        ("C:\\model", "not a path"),
        ("owner/na..me", "`..`"),
        ("owner/a--b", "`--`"),
        ("", "empty"),
        ("owner/", "empty"),
        ("ow ner/x", "not allowed"),
    ] {
        let err = ModelId::parse(id).unwrap_err().to_string();
        assert!(err.contains(says), "{id:?}: {err}");
        assert!(
            err.contains(&format!("`{id}`")),
            "the error names the id: {err}"
        );
    }
}

#[test]
fn cache_location_follows_hf_hub_cache_then_hf_home_then_home() {
    let vars = |pairs: &[(&str, &str)]| {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k: &str| map.get(k).cloned()
    };
    let cache = |pairs: &[(&str, &str)]| {
        HubCache::from_vars(vars(pairs))
            .unwrap()
            .root()
            .to_path_buf()
    };
    assert_eq!(
        cache(&[("HOME", "/h")]),
        Path::new("/h/.cache/huggingface/hub")
    );
    assert_eq!(
        cache(&[("HOME", "/h"), ("XDG_CACHE_HOME", "/x")]),
        Path::new("/x/huggingface/hub")
    );
    assert_eq!(
        cache(&[("HOME", "/h"), ("HF_HOME", "/hf")]),
        Path::new("/hf/hub")
    );
    assert_eq!(
        cache(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/c")]),
        Path::new("/c")
    );
    assert!(matches!(
        HubCache::from_vars(vars(&[])),
        Err(HubError::NoCacheDir)
    ));

    let config = HubConfig::from_vars(vars(&[("HOME", "/h"), ("HF_TOKEN", "hf_x")])).unwrap();
    assert_eq!(config.endpoint, "https://huggingface.co");
    assert_eq!(config.token.as_deref(), Some("hf_x"));
    let config = HubConfig::from_vars(vars(&[
        ("HOME", "/h"),
        ("HF_ENDPOINT", "http://127.0.0.1:9/"),
    ]))
    .unwrap();
    assert_eq!(config.endpoint, "http://127.0.0.1:9");
    let err = HubConfig::from_vars(vars(&[("HOME", "/h"), ("HF_ENDPOINT", "huggingface.co")]))
        .unwrap_err();
    assert!(err.to_string().contains("https://"), "{err}");
}

#[test]
fn token_is_read_from_the_login_file_when_hf_token_is_unset() {
    let home = tempfile::tempdir().unwrap();
    std::fs::write(home.path().join("token"), "hf_from_file\n").unwrap();
    let hf_home = home.path().to_string_lossy().into_owned();
    let config = HubConfig::from_vars(|k| (k == "HF_HOME").then(|| hf_home.clone())).unwrap();
    assert_eq!(config.token.as_deref(), Some("hf_from_file"));
}

// ------------------------------------------------------ the cache's layout

#[test]
fn download_writes_the_huggingface_cache_layout() {
    let repo = gpt2_like("openai-community/gpt2", COMMIT, WEIGHTS_LEN);
    let bytes = weights(&repo);
    let hub = FakeHub::start(vec![repo], None);
    let cache = tempfile::tempdir().unwrap();
    let (result, events) = download(
        &client(&hub, cache.path(), None),
        "openai-community/gpt2",
        "main",
    );
    let done = result.unwrap();
    let dir = repo_dir(cache.path(), "models--openai-community--gpt2");

    // refs/main holds the commit, without a newline.
    assert_eq!(
        std::fs::read_to_string(dir.join("refs/main")).unwrap(),
        COMMIT
    );
    assert_eq!(done.commit, COMMIT);
    assert_eq!(done.snapshot, dir.join("snapshots").join(COMMIT));

    // The weights' blob is named by their SHA-256, and the snapshot links
    // to it with a relative path.
    let sha = chapter_08::hub::sha256_hex(&bytes);
    let link = done.snapshot.join("model.safetensors");
    assert_eq!(
        std::fs::read_link(&link).unwrap(),
        Path::new("../../blobs").join(&sha)
    );
    assert_eq!(std::fs::read(&link).unwrap(), bytes);
    assert_eq!(std::fs::read(dir.join("blobs").join(&sha)).unwrap(), bytes);
    // Small files: named by their (git) etag, 40 hex digits here.
    let config_target = std::fs::read_link(done.snapshot.join("config.json")).unwrap();
    let etag = config_target
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(etag.len(), 40, "{config_target:?}");
    assert!(std::fs::read_to_string(done.snapshot.join("config.json"))
        .unwrap()
        .contains("gpt2"));
    // No partial file is left behind.
    for entry in std::fs::read_dir(dir.join("blobs")).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".incomplete"), "{name}");
    }

    // tokenizer.json is optional and absent: skipped with a note, and
    // recorded under .no_exist for that commit.
    let outcome = &done
        .files
        .iter()
        .find(|(n, _)| n == "tokenizer.json")
        .unwrap()
        .1;
    assert_eq!(*outcome, FileOutcome::Missing);
    assert!(events
        .iter()
        .any(|e| e.contains("tokenizer.json") && e.contains("skipped")));
    assert!(dir
        .join(".no_exist")
        .join(COMMIT)
        .join("tokenizer.json")
        .is_file());
    // Every byte of the five present files was fetched once.
    let present: usize = [
        "config.json",
        "vocab.json",
        "merges.txt",
        "generation_config.json",
    ]
    .iter()
    .map(|f| std::fs::read(done.snapshot.join(f)).unwrap().len())
    .sum();
    assert_eq!(done.downloaded_bytes() as usize, bytes.len() + present);
}

#[test]
fn files_after_the_first_are_asked_for_by_commit() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 1000)], None);
    let cache = tempfile::tempdir().unwrap();
    download(&client(&hub, cache.path(), None), "gpt2", "main")
        .0
        .unwrap();
    let heads: Vec<String> = hub
        .hub
        .requests()
        .into_iter()
        .filter(|r| r.method == "HEAD")
        .map(|r| r.path)
        .collect();
    assert_eq!(heads[0], "/gpt2/resolve/main/config.json");
    for path in &heads[1..] {
        assert!(
            path.starts_with(&format!("/gpt2/resolve/{COMMIT}/")),
            "{path}"
        );
    }
}

#[test]
fn second_download_is_served_from_the_cache() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, WEIGHTS_LEN)], None);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path(), None);
    let first = download(&client, "gpt2", "main").0.unwrap();
    assert!(!first.all_cached());
    let gets = hub.get_count();
    assert!(gets >= 5, "{gets} GET requests");

    let (second, events) = download(&client, "gpt2", "main");
    let second = second.unwrap();
    assert!(second.all_cached());
    assert_eq!(second.downloaded_bytes(), 0);
    assert_eq!(hub.get_count(), gets, "no byte is fetched again");
    assert!(
        events
            .iter()
            .any(|e| e.starts_with("model.safetensors: cached")),
        "{events:?}"
    );
    assert_eq!(second.snapshot, first.snapshot);
}

#[test]
fn lfs_redirect_takes_metadata_from_the_hub_and_bytes_from_the_cdn() {
    let mut repo = gpt2_like("me/private-gpt", COMMIT, WEIGHTS_LEN);
    repo.private = true;
    let bytes = weights(&repo);
    let hub = FakeHub::start(vec![repo], Some("hf_secret"));
    let cache = tempfile::tempdir().unwrap();
    let done = download(
        &client(&hub, cache.path(), Some("hf_secret")),
        "me/private-gpt",
        "main",
    )
    .0
    .unwrap();
    assert_eq!(
        std::fs::read(done.snapshot.join("model.safetensors")).unwrap(),
        bytes
    );
    // The CDN served the weights, and never saw the token.
    let cdn = hub.cdn.requests();
    assert_eq!(cdn.len(), 1);
    assert!(cdn[0].path.starts_with("/blobs/"));
    assert_eq!(cdn[0].header("authorization"), None);
    // The Hub saw it on every request.
    for r in hub.hub.requests() {
        assert_eq!(
            r.header("authorization"),
            Some("Bearer hf_secret"),
            "{}",
            r.path
        );
    }
}

// ------------------------------------------------------- resume and verify

#[test]
fn interrupted_download_keeps_the_partial_file_and_resumes_with_range() {
    let repo = gpt2_like("gpt2", COMMIT, WEIGHTS_LEN);
    let bytes = weights(&repo);
    let sha = chapter_08::hub::sha256_hex(&bytes);
    let hub = FakeHub::start(vec![repo], None);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path(), None);

    hub.cut_next("model.safetensors", 70_000);
    let err = download(&client, "gpt2", "main").0.unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(
            err,
            HubError::Interrupted {
                received: 70_000,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("model.safetensors") && text.contains("resume"),
        "{text}"
    );
    let part = cache
        .path()
        .join("models--gpt2/blobs")
        .join(format!("{sha}.incomplete"));
    assert_eq!(std::fs::read(&part).unwrap(), bytes[..70_000]);

    let (done, events) = download(&client, "gpt2", "main");
    let done = done.unwrap();
    assert_eq!(hub.range_requests(), vec!["bytes=70000-".to_string()]);
    let weights_outcome = &done.files[1].1;
    assert!(
        matches!(weights_outcome, FileOutcome::Downloaded { resumed_from: 70_000, bytes: b, .. } if *b as usize == bytes.len()),
        "{weights_outcome:?}"
    );
    assert!(
        events.iter().any(|e| e.contains("resuming at byte 70000")),
        "{events:?}"
    );
    assert_eq!(
        std::fs::read(done.snapshot.join("model.safetensors")).unwrap(),
        bytes
    );
    assert!(!part.exists());
}

#[test]
fn server_ignoring_range_restarts_from_zero() {
    let repo = gpt2_like("gpt2", COMMIT, WEIGHTS_LEN);
    let bytes = weights(&repo);
    let hub = FakeHub::start(vec![repo], None);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path(), None);
    hub.cut_next("model.safetensors", 50_000);
    assert!(download(&client, "gpt2", "main").0.is_err());

    hub.ignore_range(true);
    let (done, events) = download(&client, "gpt2", "main");
    let done = done.unwrap();
    assert!(
        events.iter().any(|e| e.contains("ignored the Range")),
        "{events:?}"
    );
    assert!(matches!(
        done.files[1].1,
        FileOutcome::Downloaded {
            resumed_from: 0,
            ..
        }
    ));
    assert_eq!(
        std::fs::read(done.snapshot.join("model.safetensors")).unwrap(),
        bytes
    );
}

#[test]
fn wrong_hash_removes_the_partial_file_and_nothing_is_linked() {
    let repo = gpt2_like("gpt2", COMMIT, WEIGHTS_LEN);
    let bytes = weights(&repo);
    let sha = chapter_08::hub::sha256_hex(&bytes);
    let hub = FakeHub::start(vec![repo], None);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path(), None);

    hub.corrupt(Some("model.safetensors"));
    let err = download(&client, "gpt2", "main").0.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HubError::HashMismatch { .. }), "{text}");
    assert!(
        text.contains("model.safetensors") && text.contains(&sha),
        "{text}"
    );
    let blobs = cache.path().join("models--gpt2/blobs");
    assert!(!blobs.join(&sha).exists());
    assert!(!blobs.join(format!("{sha}.incomplete")).exists());
    assert!(!cache
        .path()
        .join("models--gpt2/snapshots")
        .join(COMMIT)
        .join("model.safetensors")
        .exists());

    hub.corrupt(None);
    let done = download(&client, "gpt2", "main").0.unwrap();
    assert_eq!(
        std::fs::read(done.snapshot.join("model.safetensors")).unwrap(),
        bytes
    );
}

#[test]
fn a_complete_partial_file_is_verified_without_a_request() {
    let repo = gpt2_like("gpt2", COMMIT, 5_000);
    let bytes = weights(&repo);
    let sha = chapter_08::hub::sha256_hex(&bytes);
    let hub = FakeHub::start(vec![repo], None);
    let cache = tempfile::tempdir().unwrap();
    let blobs = cache.path().join("models--gpt2/blobs");
    std::fs::create_dir_all(&blobs).unwrap();
    // A crash between the last byte and the rename left this.
    std::fs::write(blobs.join(format!("{sha}.incomplete")), &bytes).unwrap();
    let done = download(&client(&hub, cache.path(), None), "gpt2", "main")
        .0
        .unwrap();
    assert_eq!(hub.cdn.count("GET"), 0);
    assert_eq!(
        std::fs::read(done.snapshot.join("model.safetensors")).unwrap(),
        bytes
    );
}

// ------------------------------------------------------------------ errors

#[test]
fn unknown_model_is_reported_as_not_found() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 100)], Some("hf_ok"));
    let cache = tempfile::tempdir().unwrap();
    // Anonymous: the Hub answers 401 (the model might be private).
    let err = download(&client(&hub, cache.path(), None), "nobody/nothing", "main")
        .0
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HubError::ModelNotFound { status: 401, .. }),
        "{text}"
    );
    assert!(
        text.contains("`nobody/nothing` not found") && text.contains("HF_TOKEN"),
        "{text}"
    );
    // Signed in: 404.
    let err = download(
        &client(&hub, cache.path(), Some("hf_ok")),
        "nobody/nothing",
        "main",
    )
    .0
    .unwrap_err();
    assert!(
        matches!(err, HubError::ModelNotFound { status: 404, .. }),
        "{err}"
    );
}

#[test]
fn missing_required_file_is_an_error_naming_it() {
    let repo = FakeRepo::new("me/no-weights", COMMIT).file("config.json", b"{}".to_vec(), false);
    let hub = FakeHub::start(vec![repo], None);
    let cache = tempfile::tempdir().unwrap();
    let err = download(&client(&hub, cache.path(), None), "me/no-weights", "main")
        .0
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HubError::FileNotFound { .. }), "{text}");
    assert!(
        text.starts_with("model.safetensors:") && text.contains("404"),
        "{text}"
    );
}

#[test]
fn unknown_revision_is_reported() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 100)], None);
    let cache = tempfile::tempdir().unwrap();
    let err = download(&client(&hub, cache.path(), None), "gpt2", "v9")
        .0
        .unwrap_err();
    assert!(matches!(err, HubError::RevisionNotFound { .. }), "{err}");
    assert!(err.to_string().contains("revision `v9`"), "{err}");
}

#[test]
fn revision_by_commit_writes_no_ref() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 100)], None);
    let cache = tempfile::tempdir().unwrap();
    let done = download(&client(&hub, cache.path(), None), "gpt2", COMMIT)
        .0
        .unwrap();
    assert_eq!(done.commit, COMMIT);
    assert!(!cache.path().join("models--gpt2/refs").exists());
}

#[test]
fn private_and_gated_models_ask_for_hf_token() {
    let mut private = gpt2_like("me/private", COMMIT, 100);
    private.private = true;
    let mut gated = gpt2_like("org/gated", COMMIT, 100);
    gated.gated = true;
    let hub = FakeHub::start(vec![private, gated], Some("hf_good"));
    let cache = tempfile::tempdir().unwrap();

    let err = download(&client(&hub, cache.path(), None), "me/private", "main")
        .0
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HubError::AccessDenied { status: 401, .. }),
        "{text}"
    );
    assert!(
        text.starts_with("config.json:") && text.contains("set HF_TOKEN"),
        "{text}"
    );

    let err = download(
        &client(&hub, cache.path(), Some("hf_bad")),
        "org/gated",
        "main",
    )
    .0
    .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, HubError::AccessDenied { status: 403, .. }),
        "{text}"
    );
    assert!(
        text.contains("gated") && text.contains("HF_TOKEN"),
        "{text}"
    );

    download(
        &client(&hub, cache.path(), Some("hf_good")),
        "org/gated",
        "main",
    )
    .0
    .unwrap();
}

#[test]
fn unreachable_endpoint_is_a_network_error() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cache = tempfile::tempdir().unwrap();
    let client = HubClient::new(HubConfig {
        endpoint: format!("http://127.0.0.1:{port}"),
        cache: HubCache::new(cache.path()),
        token: None,
    })
    .unwrap();
    let (result, _) = download(&client, "gpt2", "main");
    let err = result.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HubError::Network { .. }), "{text}");
    assert!(text.starts_with("config.json: cannot reach"), "{text}");
}

#[test]
fn unreachable_hub_falls_back_to_a_cached_snapshot() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 1000)], None);
    let endpoint = hub.endpoint().to_string();
    let cache = tempfile::tempdir().unwrap();
    let first = download(&client(&hub, cache.path(), None), "gpt2", "main")
        .0
        .unwrap();
    drop(hub); // the Hub goes away
    let offline = HubClient::new(HubConfig {
        endpoint,
        cache: HubCache::new(cache.path()),
        token: None,
    })
    .unwrap();
    let (result, events) = download(&offline, "gpt2", "main");
    let done = result.unwrap();
    assert!(done.all_cached());
    assert_eq!(done.snapshot, first.snapshot);
    assert!(
        events
            .iter()
            .any(|e| e.contains("using the cached snapshot")),
        "{events:?}"
    );
    // A revision the cache never saw is still an error.
    let err = download(&offline, "gpt2", "v2").0.unwrap_err();
    assert!(matches!(err, HubError::Network { .. }), "{err}");
}

#[test]
fn disk_errors_name_the_path() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 100)], None);
    let dir = tempfile::tempdir().unwrap();
    // The cache's root is a file: no folder can be made under it.
    let not_a_folder = dir.path().join("cache");
    std::fs::write(&not_a_folder, b"").unwrap();
    let err = download(&client(&hub, &not_a_folder, None), "gpt2", "main")
        .0
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, HubError::Io { .. }), "{text}");
    assert!(text.contains(&not_a_folder.display().to_string()), "{text}");
}

// ------------------------------------------------------------ resolve_model

#[test]
fn resolve_model_finds_a_downloaded_model_offline() {
    let hub = FakeHub::start(vec![gpt2_like("openai-community/gpt2", COMMIT, 100)], None);
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = HubCache::new(cache_dir.path());
    download(
        &client(&hub, cache_dir.path(), None),
        "openai-community/gpt2",
        "main",
    )
    .0
    .unwrap();
    drop(hub); // no server any more: resolving is offline

    let files = resolve_model_in(&cache, "openai-community/gpt2").unwrap();
    assert_eq!(
        files.source,
        ModelSource::HubCache {
            model: ModelId::parse("openai-community/gpt2").unwrap(),
            revision: "main".into(),
            commit: COMMIT.into(),
        }
    );
    assert!(std::fs::read_to_string(&files.config)
        .unwrap()
        .contains("gpt2"));
    assert_eq!(std::fs::read(&files.weights).unwrap().len(), 100);
    assert!(files.vocab.is_some() && files.merges.is_some());
    assert_eq!(files.tokenizer_json, None);
    // By commit, too.
    let by_commit = resolve_model_in(&cache, &format!("openai-community/gpt2@{COMMIT}")).unwrap();
    assert_eq!(by_commit.weights, files.weights);
}

#[test]
fn resolve_model_says_to_download_an_uncached_id() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = HubCache::new(cache_dir.path());
    let err = resolve_model_in(&cache, "gpt2").unwrap_err().to_string();
    assert!(err.contains("run `candle download gpt2`"), "{err}");
    let err = resolve_model_in(&cache, "gpt2@v2").unwrap_err().to_string();
    assert!(err.contains("revision `v2`"), "{err}");
    let err = resolve_model_in(&cache, "../nowhere/at/all")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a folder, and not a model id"), "{err}");
}

#[test]
fn resolve_model_accepts_a_model_folder_and_names_what_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let cache = HubCache::new(dir.path().join("unused-cache"));
    let spec = dir.path().to_string_lossy().into_owned();
    std::fs::write(dir.path().join("config.json"), "{}").unwrap();
    let err = resolve_model_in(&cache, &spec).unwrap_err().to_string();
    assert!(err.contains("model.safetensors is missing"), "{err}");
    std::fs::write(dir.path().join("model.safetensors"), b"w").unwrap();
    std::fs::write(dir.path().join("tokenizer.json"), "{}").unwrap();
    let files = resolve_model_in(&cache, &spec).unwrap();
    assert_eq!(files.source, ModelSource::Folder(dir.path().to_path_buf()));
    assert_eq!(files.weights, dir.path().join("model.safetensors"));
    assert_eq!(
        files.tokenizer_json,
        Some(dir.path().join("tokenizer.json"))
    );
    assert_eq!(files.vocab, None);
}

#[test]
fn resolve_model_reports_a_snapshot_missing_its_weights() {
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = HubCache::new(cache_dir.path());
    let id = ModelId::parse("gpt2").unwrap();
    cache.write_ref(&id, "main", COMMIT).unwrap();
    let snapshot = cache.snapshot_dir(&id, COMMIT);
    std::fs::create_dir_all(&snapshot).unwrap();
    std::fs::write(snapshot.join("config.json"), "{}").unwrap();
    let err = resolve_model_in(&cache, "gpt2").unwrap_err().to_string();
    assert!(
        err.contains("has no model.safetensors") && err.contains("candle download gpt2"),
        "{err}"
    );
}

// ---------------------------------------------------------------- exercise

/// Exercise: `candle download` asks the Hub for every file even when the
/// revision is a commit hash whose snapshot is complete: a commit never
/// changes, so it could answer from the cache with no request at all. Make
/// `download_model` do that, then remove the `#[ignore]`.
#[test]
#[ignore = "exercise: skip the Hub for a complete snapshot of a commit hash"]
fn exercise_complete_commit_snapshot_needs_no_request() {
    let hub = FakeHub::start(vec![gpt2_like("gpt2", COMMIT, 100)], None);
    let cache = tempfile::tempdir().unwrap();
    let client = client(&hub, cache.path(), None);
    download(&client, "gpt2", COMMIT).0.unwrap();
    let before = hub.hub.requests().len() + hub.cdn.requests().len();
    let again = download(&client, "gpt2", COMMIT).0.unwrap();
    assert!(again.all_cached());
    assert_eq!(hub.hub.requests().len() + hub.cdn.requests().len(), before);
}

#[test]
fn resolve_model_recognises_a_training_runs_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cache = HubCache::new(dir.path().join("unused-cache"));
    let run = dir.path().join("run");
    std::fs::create_dir_all(&run).unwrap();
    let spec = run.to_string_lossy().into_owned();
    // A run that stopped before its first checkpoint: named as a run.
    for f in ["config.json", "metrics.jsonl", "vocab.json"] {
        std::fs::write(run.join(f), "{}").unwrap();
    }
    let err = resolve_model_in(&cache, &spec).unwrap_err().to_string();
    assert!(
        err.contains("training run's folder without checkpoint.safetensors"),
        "{err}"
    );
    std::fs::write(run.join("checkpoint.safetensors"), b"w").unwrap();
    let files = resolve_model_in(&cache, &spec).unwrap();
    assert_eq!(files.source, ModelSource::RunDir(run.clone()));
    assert_eq!(files.weights, run.join("checkpoint.safetensors"));
    assert_eq!(files.vocab, Some(run.join("vocab.json")));
    // A folder with model.safetensors is a model folder, whatever else it holds.
    std::fs::write(run.join("model.safetensors"), b"w").unwrap();
    let files = resolve_model_in(&cache, &spec).unwrap();
    assert_eq!(files.source, ModelSource::Folder(run.clone()));
}
