//! The real `hookauth` binary serving a hooks directory on the embedded default (SQLite), the
//! way an operator runs it: `hookauth serve --hooks DIR`. Tests talk to it over loopback HTTP
//! and read its log (stderr) for what the hooks wrote.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const PASSWORD: &str = "correct-horse-battery";
const SECRET: &str = "test-secret-key-0123456789abcdef0123456789";

/// `hookauth` with the test's secret key and cheap password hashing, run in `dir`.
pub fn hookauth(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookauth"));
    cmd.current_dir(dir)
        .env("HOOKAUTH_SECRET_KEY", SECRET)
        .env("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024")
        .env("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1")
        .env("HOOKAUTH_LOG", "info");
    cmd
}

pub struct Server {
    child: Child,
    base: String,
    log: Arc<Mutex<Vec<String>>>,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Server {
    /// Starts `hookauth serve --hooks HOOKS` with its database in a fresh directory, and waits
    /// for its "listening" line (hooks are compiled before it: seconds for the JS and Python
    /// engines). `env` adds variables, e.g. the secrets hooks.toml names.
    pub fn start(hooks: &Path, env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut child = hookauth(data.path())
            .args(["serve", "--bind", "127.0.0.1:0", "--hooks"])
            .arg(hooks)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hookauth binary runs");
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let (address_tx, address_rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = address_tx.send(rest.split_whitespace().next().unwrap().to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match address_rx.recv_timeout(Duration::from_secs(180)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "the server did not start:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self {
            child,
            base: format!("http://{addr}/api/v1/auth"),
            log,
            http: reqwest::Client::new(),
            _data: data,
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (up to 60 s: delivery is asynchronous and retried) for a log line containing
    /// every one of `needles`, and returns it.
    pub async fn wait_for_line(&self, needles: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|line| needles.iter().all(|n| line.contains(n)))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?}; the server logged:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn post(&self, path: &str, bearer: Option<&str>, body: Value) -> (u16, Value) {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Registers `email`. The answer is the same for new and taken addresses (no user
    /// enumeration), so the user's id comes from [`Server::me`] after logging in.
    pub async fn register(&self, email: &str) {
        let (status, body) = self
            .post(
                "/register",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 202, "{body}");
    }

    /// The id of the user `access` belongs to (`GET /me`).
    pub async fn me(&self, access: &str) -> String {
        let response = self
            .http
            .get(format!("{}/me", self.base))
            .bearer_auth(access)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let user: Value = response.json().await.unwrap();
        user["id"].as_str().unwrap().to_owned()
    }

    /// Logs `email` in and returns its access token.
    pub async fn login(&self, email: &str) -> String {
        let (status, tokens) = self
            .post(
                "/login",
                None,
                json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{tokens}");
        tokens["access_token"].as_str().unwrap().to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
