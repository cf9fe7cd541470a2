//! Test helpers shared by the hook-host suite (`tests/hooks`), the server suite (`tests/it`), the
//! language suite (`tests/guests`) and the benches: Rust guests built from guest-examples/ once
//! per run, WAT fixtures, and a local HTTP "email API". Items one of them does not use carry a
//! targeted `allow(dead_code)` saying which.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

pub const CRATE_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// The operator token the servers under test are started with (`HOOKAUTH_OPERATOR_TOKEN`).
#[allow(
    dead_code,
    reason = "tests/guests deploys no hooks through the management API"
)]
pub const OPERATOR: &str = "operator-token-0123456789abcdef0123456789";

/// A WAT fixture from tests/fixtures/hooks, as a binary component.
#[allow(
    dead_code,
    reason = "tests/guests builds its guests with their own toolchains"
)]
pub fn fixture(name: &str) -> Vec<u8> {
    let path = Path::new(CRATE_DIR).join(format!("tests/fixtures/hooks/{name}.wat"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A Rust guest from guest-examples/rust, built (release, wasm32-wasip2) once per test run.
/// A missing wasm32-wasip2 target fails the test (.ci/run and
/// scripts/install-guest-toolchains install it); nothing is skipped.
pub fn guest(name: &str) -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| build_wasm32("guest-examples/rust", "guest-examples"));
    let file = dir.join(format!("{}.wasm", name.replace('-', "_")));
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// The gate tests' probe (tests/fixtures/gate-probe: `handler` 0.1.0 and `gate` 0.2.0 in one
/// component), built once per run.
#[allow(dead_code, reason = "only the test binaries that run gates use it")]
pub fn gate_probe() -> Vec<u8> {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| build_wasm32("tests/fixtures/gate-probe", "gate-probe"));
    let file = dir.join("gate_probe.wasm");
    std::fs::read(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// `cargo build --release --target wasm32-wasip2` of the crate or workspace in `dir` (relative
/// to the repository) into `target/<target>`; where its .wasm files are.
fn build_wasm32(dir: &str, target: &str) -> PathBuf {
    let target = Path::new(CRATE_DIR).join("target").join(target);
    let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--target-dir",
        ])
        .arg(&target)
        .current_dir(Path::new(CRATE_DIR).join(dir))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building {dir} failed");
    target.join("wasm32-wasip2/release")
}

/// A request the sink received.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
}

/// A local "email API" on 127.0.0.1: `/send` records and answers 200; `/slow` does the same
/// after [`SLOW_SINK_MS`]; `/hang` never answers.
pub struct Sink {
    pub port: u16,
    pub received: Arc<Mutex<Vec<Received>>>,
    connections: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

/// How long `/slow` takes to answer: a slow but working email API.
#[allow(dead_code, reason = "tests/hooks does not use the slow route")]
pub const SLOW_SINK_MS: u64 = 1_500;

impl Sink {
    pub async fn start() -> Self {
        use axum::routing::post;
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let record = Arc::clone(&received);
        let handler = move |uri: axum::http::Uri, headers: axum::http::HeaderMap, body: String| {
            let record = Arc::clone(&record);
            async move {
                if uri.path() == "/slow" {
                    tokio::time::sleep(std::time::Duration::from_millis(SLOW_SINK_MS)).await;
                }
                let headers = headers
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
                    .collect();
                record.lock().unwrap().push(Received {
                    path: uri.path().into(),
                    headers,
                    body: serde_json::from_str(&body).unwrap_or_default(),
                });
                "queued"
            }
        };
        let app = axum::Router::new()
            .route("/send", post(handler.clone()))
            .route("/slow", post(handler))
            .route(
                "/hang",
                post(|| async {
                    std::future::pending::<()>().await;
                    "never"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections: Arc<AtomicUsize> = Arc::default();
        let count = Arc::clone(&connections);
        let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
            count.fetch_add(1, Ordering::SeqCst);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self {
            port,
            received,
            connections,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// TCP connections accepted, whatever came over them: proves that nothing reached the
    /// port, not just that no well-formed request did.
    #[allow(dead_code, reason = "tests/it does not count connections")]
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
