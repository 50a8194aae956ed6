//! Talking to the Hub: where it is, who we are, and what it says about a
//! file before we fetch it.
//!
//! Every file of a model has one URL,
//! `{endpoint}/{model}/resolve/{revision}/{file}`. A `HEAD` request on it
//! answers, without sending the bytes:
//!
//! | header | meaning |
//! |---|---|
//! | `X-Repo-Commit` | the commit the revision points at now |
//! | `X-Linked-Etag`, else `ETag` | the file's identity: for large (LFS) files the SHA-256 of the bytes, for small ones the git blob id |
//! | `X-Linked-Size`, else `Content-Length` | the file's size in bytes |
//! | `Location` (with a 302) | where large files really live: a CDN on another host |
//!
//! The metadata is taken from this *first* answer: the CDN knows nothing of
//! commits, and its own `ETag` is not the Hub's.

use super::cache::{hf_home, HubCache};
use super::error::{HubError, Result};
use super::model_id::{validate_relative_name, ModelId};
use std::time::Duration;
use ureq::http::Response;
use ureq::Body;

/// Python's default, and ours.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How many redirects one request may follow before we give up.
const MAX_REDIRECTS: usize = 5;

/// Where the Hub is, where the cache is, and the access token.
#[derive(Clone, Debug)]
pub struct HubConfig {
    /// Base URL without a trailing `/`, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// The cache files are written to.
    pub cache: HubCache,
    /// Sent as `Authorization: Bearer {token}` to the endpoint (never to
    /// the CDN it redirects to).
    pub token: Option<String>,
}

// ANCHOR: config_from_env
impl HubConfig {
    /// `HF_ENDPOINT` (default [`DEFAULT_ENDPOINT`]), the cache of
    /// [`HubCache::from_env`], and the token from `HF_TOKEN`, else the file
    /// `huggingface-cli login` writes (`$HF_HOME/token`).
    pub fn from_env() -> Result<HubConfig> {
        HubConfig::from_vars(|name| std::env::var(name).ok())
    }

    /// [`HubConfig::from_env`] reading variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<HubConfig> {
        let set = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let endpoint = set("HF_ENDPOINT").unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let token = match set("HF_TOKEN") {
            Some(token) => Some(token.trim().to_string()),
            None => hf_home(&var)
                .ok()
                .and_then(|home| std::fs::read_to_string(home.join("token")).ok())
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty()),
        };
        Ok(HubConfig {
            endpoint: check_endpoint(&endpoint)?,
            cache: HubCache::from_vars(&var)?,
            token,
        })
    }
}
// ANCHOR_END: config_from_env

/// Checks that `endpoint` is an `http(s)://host[:port][/path]` URL and
/// drops a trailing `/`.
pub fn check_endpoint(endpoint: &str) -> Result<String> {
    let bad = |reason: &str| HubError::InvalidEndpoint {
        endpoint: endpoint.to_string(),
        reason: reason.to_string(),
    };
    let rest = endpoint
        .strip_prefix("https://")
        .or_else(|| endpoint.strip_prefix("http://"))
        .ok_or_else(|| bad("it must start with https:// or http://"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(bad("it has no host"));
    }
    if endpoint.contains(char::is_whitespace) || endpoint.contains(['?', '#']) {
        return Err(bad("it contains a space, `?` or `#`"));
    }
    Ok(endpoint.trim_end_matches('/').to_string())
}

/// What the Hub says about one file of one revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileMetadata {
    /// The commit (40 hex digits) the revision points at.
    pub commit: String,
    /// The etag without quotes or `W/`: the blob's name in the cache.
    pub etag: String,
    /// The size in bytes, when announced.
    pub size: Option<u64>,
    /// Where to `GET` the bytes: the file's URL, or the CDN it redirects to.
    pub download_url: String,
}

impl FileMetadata {
    /// Whether the etag is a SHA-256 (64 hex digits), which the download
    /// can then verify; a git blob id (40 hex digits) cannot be checked
    /// with SHA-256 and is trusted with the size alone.
    pub fn sha256(&self) -> Option<&str> {
        let hex = self.etag.len() == 64 && self.etag.bytes().all(|b| b.is_ascii_hexdigit());
        hex.then_some(self.etag.as_str())
    }
}

/// A client of one Hub endpoint, writing to one cache.
pub struct HubClient {
    config: HubConfig,
    /// An agent that honours the proxy variables, and one that does not
    /// (for 127.0.0.1, which a proxy cannot reach).
    agent: ureq::Agent,
    direct: ureq::Agent,
}

impl HubClient {
    /// A client for `config`; its endpoint is checked here.
    pub fn new(mut config: HubConfig) -> Result<HubClient> {
        config.endpoint = check_endpoint(&config.endpoint)?;
        let builder = || {
            ureq::Agent::config_builder()
                .timeout_connect(Some(Duration::from_secs(30)))
                .timeout_recv_response(Some(Duration::from_secs(60)))
                // We follow redirects ourselves, to take the metadata from the
                // first answer and to keep the token away from other hosts;
                // and we read 4xx/5xx answers ourselves, to name the problem.
                .max_redirects(0)
                .http_status_as_error(false)
                .user_agent(concat!("candle/", env!("CARGO_PKG_VERSION")))
        };
        Ok(HubClient {
            config,
            agent: builder().build().into(),
            direct: builder().proxy(None).build().into(),
        })
    }

    /// A client configured from the environment ([`HubConfig::from_env`]).
    pub fn from_env() -> Result<HubClient> {
        HubClient::new(HubConfig::from_env()?)
    }

    /// The endpoint, cache and token in use.
    pub fn config(&self) -> &HubConfig {
        &self.config
    }

    /// The cache files are written to.
    pub fn cache(&self) -> &HubCache {
        &self.config.cache
    }

    // ANCHOR: file_url
    /// `{endpoint}/{model}/resolve/{revision}/{file}`, the revision
    /// percent-encoded whole (`refs/pr/1` becomes `refs%2Fpr%2F1`) and the
    /// file per path part.
    pub fn file_url(&self, model: &ModelId, revision: &str, file: &str) -> String {
        format!(
            "{}/{}/resolve/{}/{}",
            self.config.endpoint,
            model,
            percent_encode(revision, false),
            percent_encode(file, true)
        )
    }
    // ANCHOR_END: file_url

    // ANCHOR: file_metadata
    /// Asks the Hub (`HEAD`) for `file`'s commit, etag, size and download
    /// URL at `revision`. Relative redirects (a renamed model) are
    /// followed; an absolute one (the CDN) ends the walk: its target is
    /// where the bytes are, and the metadata is the Hub's.
    pub fn file_metadata(
        &self,
        model: &ModelId,
        revision: &str,
        file: &str,
    ) -> Result<FileMetadata> {
        validate_relative_name("revision", revision)?;
        validate_relative_name("file name", file)?;
        let mut url = self.file_url(model, revision, file);
        for _ in 0..=MAX_REDIRECTS {
            let response = self.request("HEAD", &url, None, file)?;
            let status = response.status().as_u16();
            let location = header(&response, "location");
            if (300..400).contains(&status) {
                let location = location
                    .as_deref()
                    .ok_or_else(|| missing(file, &url, "Location"))?;
                if location.starts_with('/') {
                    url = format!("{}{location}", origin(&url));
                    continue;
                }
            } else if !(200..300).contains(&status) {
                return Err(self.status_error(model, revision, file, &url, &response));
            }
            let commit = header(&response, "x-repo-commit")
                .ok_or_else(|| missing(file, &url, "X-Repo-Commit"))?;
            let etag = header(&response, "x-linked-etag")
                .or_else(|| header(&response, "etag"))
                .map(|e| normalize_etag(&e))
                .filter(|e| !e.is_empty())
                .ok_or_else(|| missing(file, &url, "ETag"))?;
            validate_relative_name("etag", &etag)?;
            if etag.contains('/') {
                return Err(HubError::InvalidName {
                    what: "etag",
                    value: etag,
                    reason: "it would be a path, not a file name".into(),
                });
            }
            let size = header(&response, "x-linked-size")
                .or_else(|| header(&response, "content-length"))
                .and_then(|s| s.parse().ok());
            let download_url = match location {
                Some(loc) if (300..400).contains(&status) => loc,
                _ => url.clone(),
            };
            return Ok(FileMetadata {
                commit,
                etag,
                size,
                download_url,
            });
        }
        Err(HubError::Http {
            file: file.to_string(),
            url,
            status: 310,
            detail: format!(": more than {MAX_REDIRECTS} redirects"),
        })
    }
    // ANCHOR_END: file_metadata

    /// `GET url` from byte `from` on (a `Range` request when `from > 0`),
    /// following redirects. Returns the answer and the offset its body
    /// starts at: `from` for a `206 Partial Content` whose `Content-Range`
    /// says so, `0` for a server that ignored the range and sent the whole
    /// file (`200`), or answered `416 Range Not Satisfiable`.
    pub(crate) fn get_from(
        &self,
        model: &ModelId,
        revision: &str,
        file: &str,
        url: &str,
        from: u64,
    ) -> Result<(Response<Body>, u64)> {
        let mut url = url.to_string();
        let mut from = from;
        let mut hops = 0;
        loop {
            let range = (from > 0).then(|| format!("bytes={from}-"));
            let response = self.request("GET", &url, range.as_deref(), file)?;
            let status = response.status().as_u16();
            match status {
                300..=399 if hops < MAX_REDIRECTS => {
                    let location = header(&response, "location")
                        .ok_or_else(|| missing(file, &url, "Location"))?;
                    url = if location.starts_with('/') {
                        format!("{}{location}", origin(&url))
                    } else {
                        location
                    };
                    hops += 1;
                }
                206 => {
                    let range = header(&response, "content-range").unwrap_or_default();
                    if range.starts_with(&format!("bytes {from}-")) {
                        return Ok((response, from));
                    }
                    // A range we did not ask for: start again from byte 0.
                    from = 0;
                }
                416 if from > 0 => from = 0,
                200..=299 => return Ok((response, 0)),
                _ if origin(&url) == origin(&self.config.endpoint) => {
                    return Err(self.status_error(model, revision, file, &url, &response))
                }
                _ => {
                    return Err(HubError::Http {
                        file: file.to_string(),
                        url,
                        status,
                        detail: String::new(),
                    })
                }
            }
        }
    }

    /// One request; the token goes only to the endpoint's own host.
    fn request(
        &self,
        method: &str,
        url: &str,
        range: Option<&str>,
        file: &str,
    ) -> Result<Response<Body>> {
        let agent = if is_loopback(url) {
            &self.direct
        } else {
            &self.agent
        };
        let mut builder = ureq::http::Request::builder()
            .method(method)
            .uri(url)
            .header("Accept-Encoding", "identity");
        if let Some(range) = range {
            builder = builder.header("Range", range);
        }
        if let Some(token) = &self.config.token {
            if origin(url) == origin(&self.config.endpoint) {
                builder = builder.header("Authorization", format!("Bearer {token}"));
            }
        }
        let network = |message: String| HubError::Network {
            file: file.to_string(),
            url: url.to_string(),
            message,
        };
        let request = builder.body(()).map_err(|e| network(e.to_string()))?;
        agent.run(request).map_err(|e| network(e.to_string()))
    }

    // ANCHOR: status_error
    /// Turns an error status into the error that names the problem. The
    /// Hub says which thing is missing in `X-Error-Code`.
    fn status_error(
        &self,
        model: &ModelId,
        revision: &str,
        file: &str,
        url: &str,
        response: &Response<Body>,
    ) -> HubError {
        let status = response.status().as_u16();
        let code = header(response, "x-error-code").unwrap_or_default();
        let (model_s, file_s, url_s) = (model.to_string(), file.to_string(), url.to_string());
        let page = format!("{}/{model}", self.config.endpoint);
        let has_token = self.config.token.is_some();
        match (status, code.as_str()) {
            (401 | 404, "RepoNotFound") => HubError::ModelNotFound {
                model: model_s,
                endpoint: self.config.endpoint.clone(),
                url: url_s,
                status,
            },
            (404, "RevisionNotFound") => HubError::RevisionNotFound {
                model: model_s,
                revision: revision.to_string(),
                url: url_s,
            },
            (404, _) => HubError::FileNotFound {
                model: model_s,
                revision: revision.to_string(),
                file: file_s,
                url: url_s,
            },
            (401 | 403, _) => {
                let hint = if code == "GatedRepo" {
                    format!(
                        "the model is gated: accept its conditions on {page}, then set HF_TOKEN \
                         to an access token of that account"
                    )
                } else if has_token {
                    "HF_TOKEN was sent but does not grant access: check the token and that \
                     its account may read this model"
                        .to_string()
                } else {
                    format!(
                        "the model is private or gated: set HF_TOKEN to an access token \
                         (see {page})"
                    )
                };
                HubError::AccessDenied {
                    model: model_s,
                    file: file_s,
                    url: url_s,
                    status,
                    hint,
                }
            }
            _ => HubError::Http {
                file: file_s,
                url: url_s,
                status,
                detail: header(response, "x-error-message")
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default(),
            },
        }
    }
    // ANCHOR_END: status_error
}

/// A header's value as text, if present and printable.
fn header(response: &Response<Body>, name: &str) -> Option<String> {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

fn missing(file: &str, url: &str, header: &'static str) -> HubError {
    HubError::MissingHeader {
        file: file.to_string(),
        url: url.to_string(),
        header,
    }
}

/// `"abc"` and `W/"abc"` are both the etag `abc`.
pub fn normalize_etag(etag: &str) -> String {
    etag.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_string()
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

fn is_loopback(url: &str) -> bool {
    let host = origin(url).split("://").nth(1).unwrap_or("");
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .any(|h| host == *h || host.starts_with(&format!("{h}:")))
}

/// Percent-encodes everything but `A–Z a–z 0–9 - _ . ~` (and `/` when
/// `keep_slash`).
fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
