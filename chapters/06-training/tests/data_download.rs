//! Lesson: downloading with checksums and atomic writes, tested against a
//! tiny HTTP server started inside the test (127.0.0.1, a port the OS picks),
//! which serves the repository's own MNIST files, or damaged copies of them.
//! No network needed. `cargo test -p chapter-06 download` runs these.

mod data_download {
    use chapter_06::data::{
        default_data_dir, download_mnist, download_mnist_with_progress, sha256_hex, DataError,
        DownloadEvent, DownloadOutcome, Mnist, MNIST_FILES, MNIST_MIRROR,
    };
    use flate2::read::GzDecoder;
    use flate2::write::GzEncoder;
    use flate2::Compression;
    use std::collections::HashMap;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::path::Path;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::JoinHandle;
    use std::time::{Duration, Instant};

    // ANCHOR: server
    /// A minimal HTTP/1.1 server: answers `GET /name` with `files[name]` or a
    /// 404, one connection at a time, and stops after `max_requests`
    /// requests, after 60 s, or when dropped.
    struct Server {
        url: String,
        requests: Arc<Mutex<Vec<String>>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Server {
        fn start(files: HashMap<String, Vec<u8>>, max_requests: usize) -> Server {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let url = format!("http://{}/mnist/", listener.local_addr().unwrap());
            let requests = Arc::new(Mutex::new(Vec::new()));
            let stop = Arc::new(AtomicBool::new(false));
            let (log, halt) = (requests.clone(), stop.clone());
            let thread = std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut served = 0;
                while served < max_requests
                    && !halt.load(Ordering::Relaxed)
                    && Instant::now() < deadline
                {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if let Some(path) = answer(stream, &files) {
                                log.lock().unwrap().push(path);
                            }
                            served += 1;
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
            Server {
                url,
                requests,
                stop,
                thread: Some(thread),
            }
        }

        fn requests(&self) -> Vec<String> {
            self.requests.lock().unwrap().clone()
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

    /// Reads one request and writes the response; returns the requested path.
    fn answer(mut stream: TcpStream, files: &HashMap<String, Vec<u8>>) -> Option<String> {
        stream.set_nonblocking(false).ok()?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ok()?;
        let mut reader = BufReader::new(stream.try_clone().ok()?);
        let mut request_line = String::new();
        reader.read_line(&mut request_line).ok()?;
        // Skip the headers, up to the empty line.
        let mut line = String::new();
        while reader.read_line(&mut line).ok()? > 2 {
            line.clear();
        }
        let path = request_line.split_whitespace().nth(1)?.to_string();
        let name = path.rsplit('/').next().unwrap_or("");
        let (status, body) = match files.get(name) {
            Some(bytes) => ("200 OK", bytes.as_slice()),
            None => ("404 Not Found", &b"not found"[..]),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).ok()?;
        stream.write_all(body).ok()?;
        stream.flush().ok()?;
        Some(path)
    }
    // ANCHOR_END: server

    /// The repository's four MNIST `.gz` files by name.
    fn repo_files() -> HashMap<String, Vec<u8>> {
        let dir = default_data_dir().join("mnist");
        MNIST_FILES
            .iter()
            .map(|f| (f.name.to_string(), std::fs::read(dir.join(f.name)).unwrap()))
            .collect()
    }

    fn gunzip(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        GzDecoder::new(bytes).read_to_end(&mut out).unwrap();
        out
    }

    fn gzip(bytes: &[u8], level: Compression) -> Vec<u8> {
        let mut gz = GzEncoder::new(Vec::new(), level);
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    /// Names in `dir` (temporary `.part` files included).
    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    // ANCHOR: success
    #[test]
    fn download_fetches_verifies_and_then_skips_present_files() {
        let files = repo_files();
        let server = Server::start(files.clone(), 8);
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("mnist"); // created by the download
        let mut events = Vec::new();
        let outcomes = download_mnist_with_progress(&server.url, &target, &mut |e| {
            if !matches!(e, DownloadEvent::Progress { .. }) {
                events.push(e.to_string());
            }
        })
        .unwrap();
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, DownloadOutcome::Downloaded { .. })));
        for f in &MNIST_FILES {
            assert_eq!(std::fs::read(target.join(f.name)).unwrap(), files[f.name]);
        }
        let mut expected: Vec<String> = MNIST_FILES.iter().map(|f| f.name.to_string()).collect();
        expected.sort();
        assert_eq!(
            names_in(&target),
            expected,
            "no temporary files left behind"
        );
        assert_eq!(
            events[0],
            format!(
                "downloading {}train-images-idx3-ubyte.gz (9630610 bytes)",
                server.url
            )
        );
        assert_eq!(
            events[1],
            "train-images-idx3-ubyte.gz: 9630610 bytes, checksum ok"
        );

        // Second run: everything is present and correct, nothing is fetched.
        let outcomes = download_mnist(&server.url, &target).unwrap();
        assert_eq!(
            outcomes[3],
            DownloadOutcome::AlreadyPresent {
                file: "t10k-labels-idx1-ubyte.gz"
            }
        );
        assert_eq!(server.requests().len(), 4);
    }
    // ANCHOR_END: success

    #[test]
    fn download_accepts_a_mirror_whose_gzip_bytes_differ_but_content_matches() {
        // Re-compress the label files: other bytes, the same IDX content.
        let mut files = repo_files();
        for name in ["train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
            let recompressed = gzip(&gunzip(&files[name]), Compression::fast());
            assert_ne!(recompressed, files[name]);
            files.insert(name.to_string(), recompressed);
        }
        let server = Server::start(files.clone(), 4);
        let dir = tempfile::tempdir().unwrap();
        download_mnist(&server.url, dir.path()).unwrap();
        let got = std::fs::read(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap();
        assert_eq!(got, files["t10k-labels-idx1-ubyte.gz"]);
    }

    // ANCHOR: mismatch
    #[test]
    fn download_hash_mismatch_names_the_file_and_deletes_the_download() {
        // The server's test labels have one label changed (a valid gzip file).
        let mut files = repo_files();
        let mut labels = gunzip(&files["t10k-labels-idx1-ubyte.gz"]);
        labels[8] = (labels[8] + 1) % 10;
        let bad_sha = sha256_hex(&labels);
        files.insert(
            "t10k-labels-idx1-ubyte.gz".into(),
            gzip(&labels, Compression::best()),
        );
        let server = Server::start(files, 4);
        let dir = tempfile::tempdir().unwrap();

        let err = download_mnist(&server.url, dir.path()).unwrap_err();
        let path = dir.path().join("t10k-labels-idx1-ubyte.gz");
        assert_eq!(
            err.to_string(),
            format!(
                "{}: SHA-256 mismatch: expected ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2, \
                 got {bad_sha} for the decompressed content",
                path.display()
            )
        );
        assert!(matches!(err, DataError::Checksum { .. }));
        // The three good files are in place; the bad one and its temporary file are gone.
        assert_eq!(
            names_in(dir.path()),
            [
                "t10k-images-idx3-ubyte.gz",
                "train-images-idx3-ubyte.gz",
                "train-labels-idx1-ubyte.gz"
            ]
        );
    }
    // ANCHOR_END: mismatch

    #[test]
    fn download_corrupt_bytes_are_a_checksum_error_too() {
        // Flip bytes in the middle of the training labels: not even valid gzip.
        let mut files = repo_files();
        let gz = files.get_mut("train-labels-idx1-ubyte.gz").unwrap();
        let mid = gz.len() / 2;
        gz[mid..mid + 16].iter_mut().for_each(|b| *b ^= 0xff);
        let server = Server::start(files, 2);
        let dir = tempfile::tempdir().unwrap();
        let msg = download_mnist(&server.url, dir.path())
            .unwrap_err()
            .to_string();
        let path = dir.path().join("train-labels-idx1-ubyte.gz");
        assert!(
            msg.starts_with(&format!(
                "{}: SHA-256 mismatch: expected fe03b8bd7915f70bf5aa08be480aa413fbd85afcaa58b35d230d335f284fd88e, got ",
                path.display()
            )),
            "{msg}"
        );
        assert!(msg.contains("(and it does not decompress: "), "{msg}");
        assert_eq!(names_in(dir.path()), ["train-images-idx3-ubyte.gz"]);
    }

    #[test]
    fn download_404_is_an_error_naming_the_url() {
        let mut files = repo_files();
        files.remove("train-labels-idx1-ubyte.gz");
        let server = Server::start(files, 2);
        let dir = tempfile::tempdir().unwrap();
        let err = download_mnist(&server.url, dir.path()).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("{}train-labels-idx1-ubyte.gz: HTTP status 404", server.url)
        );
        assert_eq!(
            server.requests().last().unwrap(),
            "/mnist/train-labels-idx1-ubyte.gz"
        );
        assert_eq!(names_in(dir.path()), ["train-images-idx3-ubyte.gz"]);
    }

    #[test]
    fn download_replaces_a_present_but_damaged_file() {
        let files = repo_files();
        let dir = tempfile::tempdir().unwrap();
        for f in &MNIST_FILES {
            std::fs::write(dir.path().join(f.name), &files[f.name]).unwrap();
        }
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), b"half a file").unwrap();
        let server = Server::start(files.clone(), 1);
        let mut replaced = Vec::new();
        download_mnist_with_progress(&server.url, dir.path(), &mut |e| {
            if let DownloadEvent::Replacing { file, .. } = e {
                replaced.push(file.to_string());
            }
        })
        .unwrap();
        assert_eq!(replaced, ["t10k-labels-idx1-ubyte.gz"]);
        assert_eq!(server.requests(), ["/mnist/t10k-labels-idx1-ubyte.gz"]);
        assert_eq!(
            std::fs::read(dir.path().join("t10k-labels-idx1-ubyte.gz")).unwrap(),
            files["t10k-labels-idx1-ubyte.gz"]
        );
    }

    #[test]
    fn download_constants_match_the_repository_files() {
        let dir = default_data_dir().join("mnist");
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        for f in &MNIST_FILES {
            assert!(
                sums.contains(&format!("{}  {}", f.gz_sha256, f.name)),
                "{}",
                f.name
            );
            let idx = gunzip(&std::fs::read(dir.join(f.name)).unwrap());
            assert_eq!(
                (sha256_hex(&idx), idx.len() as u64),
                (f.idx_sha256.to_string(), f.idx_len)
            );
        }
    }

    /// The real mirror, over HTTPS: its `.gz` bytes differ from ours, so this
    /// exercises the check of the decompressed content.
    #[test]
    #[ignore = "needs the network: cargo test -p chapter-06 download_from_the_public_mirror -- --ignored"]
    fn download_from_the_public_mirror() {
        let dir = tempfile::tempdir().unwrap();
        let outcomes = download_mnist(MNIST_MIRROR, dir.path()).unwrap();
        assert_eq!(outcomes.len(), 4);
        let m = Mnist::load(dir.path()).unwrap();
        assert_eq!(&m.train.labels()[..5], &[5, 0, 4, 1, 9]);
    }
}
