//! A fake Hugging Face Hub on 127.0.0.1, for tests that must not touch the
//! network: a tiny HTTP/1.1 server (std `TcpListener`, one thread per
//! connection, `Connection: close`) and, on top of it, the Hub's behaviour:
//!
//! - `HEAD`/`GET /{model}/resolve/{revision}/{file}` with `X-Repo-Commit`,
//!   `ETag` (small files) or `X-Linked-Etag` + `X-Linked-Size` and a 302 to
//!   a second server, the "CDN" (large, LFS files, whose etag is their
//!   SHA-256);
//! - `Range: bytes=N-` answered with 206 (or ignored, on request);
//! - 404 with `X-Error-Code` (`RepoNotFound`, `RevisionNotFound`,
//!   `EntryNotFound`), 401 for a private model without the token, 401/403
//!   with `GatedRepo` for a gated one;
//! - faults on request: a body cut after N bytes, a corrupted body.
//!
//! Shared by `chapters/08-gpt/tests/hub*.rs` and `candle-lib/tests/download_cli.rs`.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One request as the server saw it (header names in lower case).
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// One answer; `cut_after` closes the connection after that many body bytes.
#[derive(Clone, Debug, Default)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub cut_after: Option<usize>,
}

impl Reply {
    pub fn new(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }

    pub fn header(mut self, name: &str, value: impl ToString) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

/// An HTTP server on 127.0.0.1 (a port the OS picks) that logs every
/// request and stops when dropped (or after 120 s).
pub struct Server {
    pub url: String,
    log: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (thread_log, halt) = (log.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !halt.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (handler, log) = (handler.clone(), thread_log.clone());
                        std::thread::spawn(move || serve(stream, &*handler, &log));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server {
            url,
            log,
            stop,
            thread: Some(thread),
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    /// The requests with this method.
    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(stream: TcpStream, handler: &Handler, log: &Mutex<Vec<Request>>) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? <= 2 {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let request = Request {
        method,
        path,
        headers,
    };
    let reply = handler(&request);
    log.lock().unwrap().push(request.clone());
    let mut out = stream;
    let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
    let has_length = reply
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"));
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    out.write_all(head.as_bytes()).ok()?;
    if request.method != "HEAD" {
        let n = reply
            .cut_after
            .unwrap_or(reply.body.len())
            .min(reply.body.len());
        out.write_all(&reply.body[..n]).ok()?;
    }
    out.flush().ok()?;
    let _ = out.shutdown(std::net::Shutdown::Both);
    Some(())
}

/// One file of a fake model.
#[derive(Clone, Debug)]
pub struct FakeFile {
    pub name: String,
    pub bytes: Vec<u8>,
    /// Stored with Git LFS: served from the CDN, etag = SHA-256.
    pub lfs: bool,
}

/// A fake model repository at one commit.
#[derive(Clone, Debug)]
pub struct FakeRepo {
    pub id: String,
    pub commit: String,
    pub files: Vec<FakeFile>,
    /// Needs `Authorization: Bearer {token}`; without it the Hub says 401.
    pub private: bool,
    /// Gated: 401 without a token, 403 with a token that has no access
    /// (`X-Error-Code: GatedRepo`).
    pub gated: bool,
}

impl FakeRepo {
    pub fn new(id: &str, commit: &str) -> FakeRepo {
        FakeRepo {
            id: id.into(),
            commit: commit.into(),
            files: Vec::new(),
            private: false,
            gated: false,
        }
    }

    pub fn file(mut self, name: &str, bytes: Vec<u8>, lfs: bool) -> FakeRepo {
        self.files.push(FakeFile {
            name: name.into(),
            bytes,
            lfs,
        });
        self
    }
}

/// Faults the next answers will have.
#[derive(Default)]
struct Faults {
    /// The next GET of this file is cut after this many body bytes.
    cut: Option<(String, usize)>,
    /// Every GET of this file has one byte changed.
    corrupt: Option<String>,
    /// Range headers are ignored (200 with the whole body).
    ignore_range: bool,
}

struct HubState {
    repos: Vec<FakeRepo>,
    token: Option<String>,
    cdn_url: OnceLock<String>,
    faults: Mutex<Faults>,
}

/// The Hub and its CDN, two servers on 127.0.0.1.
pub struct FakeHub {
    pub hub: Server,
    pub cdn: Server,
    state: Arc<HubState>,
}

impl FakeHub {
    /// Serves `repos`; `token` is the one access token private and gated
    /// models accept.
    pub fn start(repos: Vec<FakeRepo>, token: Option<&str>) -> FakeHub {
        let state = Arc::new(HubState {
            repos,
            token: token.map(str::to_string),
            cdn_url: OnceLock::new(),
            faults: Mutex::new(Faults::default()),
        });
        let s = state.clone();
        let cdn = Server::start(move |r| cdn_answer(&s, r));
        state.cdn_url.set(cdn.url.clone()).unwrap();
        let s = state.clone();
        let hub = Server::start(move |r| hub_answer(&s, r));
        FakeHub { hub, cdn, state }
    }

    pub fn endpoint(&self) -> &str {
        &self.hub.url
    }

    /// The next GET of `file` (on either server) stops after `bytes` bytes.
    pub fn cut_next(&self, file: &str, bytes: usize) {
        self.state.faults.lock().unwrap().cut = Some((file.to_string(), bytes));
    }

    /// Every GET of `file` sends one wrong byte.
    pub fn corrupt(&self, file: Option<&str>) {
        self.state.faults.lock().unwrap().corrupt = file.map(str::to_string);
    }

    /// Answer Range requests with the whole file (200), as some servers do.
    pub fn ignore_range(&self, ignore: bool) {
        self.state.faults.lock().unwrap().ignore_range = ignore;
    }

    /// GET requests on both servers that asked for a range.
    pub fn range_requests(&self) -> Vec<String> {
        let mut all = self.hub.requests();
        all.extend(self.cdn.requests());
        all.iter()
            .filter(|r| r.method == "GET")
            .filter_map(|r| r.header("range").map(str::to_string))
            .collect()
    }

    /// Body bytes GET requests asked for, on both servers.
    pub fn get_count(&self) -> usize {
        self.hub.count("GET") + self.cdn.count("GET")
    }
}

fn sha256(bytes: &[u8]) -> String {
    chapter_08::hub::sha256_hex(bytes)
}

fn error(status: u16, code: &str) -> Reply {
    let mut reply = Reply::new(status).header("X-Error-Message", format!("{code} (fake hub)"));
    reply.body = code.as_bytes().to_vec();
    if !code.is_empty() {
        reply = reply.header("X-Error-Code", code);
    }
    reply
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ANCHOR: hub_answer
fn hub_answer(state: &HubState, r: &Request) -> Reply {
    let Some((id, rest)) = r.path.trim_start_matches('/').split_once("/resolve/") else {
        return error(404, "");
    };
    let Some((revision, file)) = rest.split_once('/') else {
        return error(404, "");
    };
    let revision = percent_decode(revision);
    let authorized = match (&state.token, r.header("authorization")) {
        (Some(token), Some(auth)) => auth == format!("Bearer {token}"),
        _ => false,
    };
    let Some(repo) = state.repos.iter().find(|repo| repo.id == id) else {
        // Like the Hub: an unknown model is 401 to anonymous users (it might
        // be private), 404 to signed-in ones.
        let status = if r.header("authorization").is_some() {
            404
        } else {
            401
        };
        return error(status, "RepoNotFound");
    };
    if repo.gated && !authorized {
        let status = if r.header("authorization").is_some() {
            403
        } else {
            401
        };
        return error(status, "GatedRepo");
    }
    if repo.private && !authorized {
        return error(401, "");
    }
    if revision != "main" && revision != repo.commit {
        return error(404, "RevisionNotFound");
    }
    let Some(f) = repo.files.iter().find(|f| f.name == file) else {
        return error(404, "EntryNotFound");
    };
    if f.lfs {
        let cdn = state.cdn_url.get().unwrap();
        let sha = sha256(&f.bytes);
        return Reply::new(302)
            .header("Location", format!("{cdn}/blobs/{sha}?signature=fake"))
            .header("X-Repo-Commit", &repo.commit)
            .header("X-Linked-Etag", format!("\"{sha}\""))
            .header("X-Linked-Size", f.bytes.len())
            .header("ETag", "\"this-is-the-pointer-not-the-file\"")
            .header("Content-Length", 0);
    }
    // A small file: its etag stands for a git blob id (40 hex digits).
    let etag = &sha256(&f.bytes)[..40];
    serve_bytes(state, r, &f.name, &f.bytes)
        .header("X-Repo-Commit", &repo.commit)
        .header("ETag", format!("W/\"{etag}\""))
}

// ANCHOR_END: hub_answer

fn cdn_answer(state: &HubState, r: &Request) -> Reply {
    let sha = r
        .path
        .trim_start_matches("/blobs/")
        .split('?')
        .next()
        .unwrap_or("");
    for f in state.repos.iter().flat_map(|repo| &repo.files) {
        if f.lfs && sha256(&f.bytes) == sha {
            // The CDN's own etag means nothing to the Hub's cache.
            return serve_bytes(state, r, &f.name, &f.bytes).header("ETag", "\"cdn-etag\"");
        }
    }
    Reply::new(404)
}

/// The bytes of `name`, honouring `Range: bytes=N-` and the faults.
fn serve_bytes(state: &HubState, r: &Request, name: &str, bytes: &[u8]) -> Reply {
    let mut faults = state.faults.lock().unwrap();
    let mut body = bytes.to_vec();
    if faults.corrupt.as_deref() == Some(name) && !body.is_empty() {
        let mid = body.len() / 2;
        body[mid] ^= 0xff;
    }
    let len = body.len();
    let from = r
        .header("range")
        .filter(|_| !faults.ignore_range)
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.strip_suffix('-'))
        .and_then(|v| v.parse::<usize>().ok());
    let mut reply = match from {
        Some(from) if from >= len => {
            return Reply::new(416).header("Content-Range", format!("bytes */{len}"))
        }
        Some(from) => {
            let mut reply =
                Reply::new(206).header("Content-Range", format!("bytes {from}-{}/{len}", len - 1));
            reply.body = body[from..].to_vec();
            reply
        }
        None => {
            let mut reply = Reply::new(200);
            reply.body = body;
            reply
        }
    };
    if r.method == "GET" {
        if let Some((file, after)) = faults.cut.take() {
            if file == name {
                reply.cut_after = Some(after);
            } else {
                faults.cut = Some((file, after));
            }
        }
    }
    reply
}

/// Deterministic bytes that look like nothing in particular.
pub fn pseudo_random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A GPT-2-like model: small config and tokenizer files, LFS weights.
pub fn gpt2_like(id: &str, commit: &str, weights_len: usize) -> FakeRepo {
    FakeRepo::new(id, commit)
        .file(
            "config.json",
            br#"{"model_type": "gpt2", "n_layer": 2}"#.to_vec(),
            false,
        )
        .file(
            "model.safetensors",
            pseudo_random_bytes(weights_len, 7),
            true,
        )
        .file("vocab.json", br#"{"!": 0, "a": 1}"#.to_vec(), false)
        .file("merges.txt", b"#version: 0.2\na b\n".to_vec(), false)
        .file(
            "generation_config.json",
            br#"{"eos_token_id": 50256}"#.to_vec(),
            false,
        )
}

/// A commit hash for tests.
pub const COMMIT: &str = "607a30d783dfa663caf39e06633721c8d4cfcd7e";
