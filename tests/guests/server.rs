//! The real `hookauth` binary serving a hooks directory on the embedded default (SQLite), the
//! way an operator runs it: `hookauth serve --hooks DIR`. Tests talk to it over loopback HTTP
//! and read its log (stderr) for what the hooks wrote.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::process::Process;
pub use crate::process::{PASSWORD, hookauth};

pub struct Server {
    process: Process,
    base: String,
    http: reqwest::Client,
    data: tempfile::TempDir,
}

impl Server {
    /// Starts `hookauth serve --hooks HOOKS` with its database in a fresh directory, and waits
    /// for its "listening" line (hooks are compiled before it: seconds for the JS and Python
    /// engines). `env` adds variables, e.g. the secrets hooks.toml names.
    pub fn start(hooks: &Path, env: &[(&str, &str)]) -> Self {
        let data = tempfile::tempdir().unwrap();
        let mut cmd = hookauth(data.path());
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--hooks"])
            .arg(hooks)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null());
        let process = Process::spawn(cmd);
        Self {
            base: format!("http://{}/api/v1/auth", process.addr),
            process,
            http: reqwest::Client::new(),
            data,
        }
    }

    /// Waits until the server's outbox is settled (every event fanned out and finished, every
    /// delivery `delivered` or `failed`) and returns its deliveries, oldest first, read from
    /// its SQLite file: the recorded outcome of every hook on every event.
    pub async fn settled_deliveries(&self) -> Vec<hookauth::store::DeliveryState> {
        use hookauth::domain::TenantId;
        use hookauth::store::{DatabaseUrl, Store, StoreSettings};
        let store = Store::connect(&StoreSettings {
            url: DatabaseUrl::new(format!(
                "sqlite://{}",
                self.data.path().join("hookauth.db").display()
            )),
            max_connections: 2,
            sqlite_synchronous: "normal".into(),
            profile_schema: Default::default(),
        })
        .await
        .expect("the server's database opens");
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let events = store
                .events_of_tenant(&TenantId::default_tenant())
                .await
                .unwrap();
            let deliveries = store.delivery_states(None).await.unwrap();
            if events.iter().all(|(_, status)| status != "pending")
                && deliveries.iter().all(|d| d.status != "pending")
            {
                store.close().await;
                return deliveries;
            }
            assert!(
                Instant::now() < deadline,
                "the outbox never settled: {events:?} {deliveries:?}\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// Waits (up to 60 s: delivery is asynchronous and retried) for a log line containing
    /// every one of `needles`, and returns it.
    pub async fn wait_for_line(&self, needles: &[&str]) -> String {
        self.process
            .wait_for_line(needles, Duration::from_secs(60))
            .await
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

    /// `http://HOST:PORT/api/v1/auth`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    pub async fn delete(&self, path: &str, bearer: &str) -> (u16, Value) {
        let response = self
            .http
            .delete(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str, bearer: &str) -> (u16, Value) {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// A superuser, created with the local CLI on the server's own database (password
    /// [`PASSWORD`]).
    pub fn create_superuser(&self, email: &str) {
        use std::io::Write;
        let mut create = hookauth(self.data.path())
            .args(["user", "create-superuser", "--email", email])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        writeln!(create.stdin.take().unwrap(), "{PASSWORD}").unwrap();
        let out = create.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
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
