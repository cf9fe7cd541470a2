use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use hookauth::app::{Application, Launch};
use hookauth::config::{Config, Overrides};
use hookauth::domain::{Event, EventKind, TenantId};
use hookauth::events::{EventHandler, HandlerError, HandlerRegistry};
use hookauth::flows::{Clock, Flows};
use hookauth::store::DeliveryState;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;

pub use crate::process::{PASSWORD, SECRET};

/// Runs each listed `async fn name(backend: Backend)` once per backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    // None only under the explicit opt-out, which records the skip.
                    if let Some(backend) = $crate::helpers::Backend::postgres() {
                        super::$name(backend).await
                    }
                }
            )*
        }
    };
}

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    /// The server URL of a PostgreSQL instance; each app gets its own new database.
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL server of this run (`HOOKAUTH_TEST_POSTGRES_URL`). Without one the
    /// calling test fails, unless PostgreSQL was switched off explicitly with
    /// `HOOKAUTH_TEST_POSTGRES=off`: then this records the skip (see [`record_skip`]) and
    /// returns `None`, and the caller returns.
    pub fn postgres() -> Option<Self> {
        if let Some(url) = std::env::var("HOOKAUTH_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
        {
            return Some(Backend::Postgres(url));
        }
        if std::env::var("HOOKAUTH_TEST_POSTGRES").is_ok_and(|v| v == "off") {
            record_skip("HOOKAUTH_TEST_POSTGRES=off");
            return None;
        }
        panic!(
            "this test needs PostgreSQL: set HOOKAUTH_TEST_POSTGRES_URL (scripts/test finds a \
             local server at 127.0.0.1:5432 itself), or skip the PostgreSQL tests explicitly \
             with HOOKAUTH_TEST_POSTGRES=off"
        );
    }

    /// A fresh, empty database and the directory that holds it (SQLite).
    pub async fn fresh_database(&self) -> (String, Option<tempfile::TempDir>) {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let url = format!("sqlite://{}", dir.path().join("hookauth.db").display());
                (url, Some(dir))
            }
            Backend::Postgres(server) => {
                use sqlx::Connection;
                let name = format!("hookauth_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(server).await.unwrap();
                sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
                    .await
                    .unwrap();
                let (base, query) = match server.split_once('?') {
                    Some((b, q)) => (b, format!("?{q}")),
                    None => (server.as_str(), String::new()),
                };
                let (root, _db) = base.rsplit_once('/').unwrap();
                (format!("{root}/{name}{query}"), None)
            }
        }
    }
}

/// Says on stderr that the current test is skipped and why, and appends one line to the file
/// `HOOKAUTH_TEST_SKIP_LOG` names (scripts/test sets it and counts the lines in its closing
/// line), so a skip is never silent. Appends are single small writes: atomic with O_APPEND
/// across the test threads and binaries of one run.
pub fn record_skip(why: &str) {
    use std::io::Write;
    let test = std::thread::current()
        .name()
        .unwrap_or("unnamed test")
        .to_owned();
    eprintln!("SKIPPED {test}: {why}");
    if let Some(path) = std::env::var_os("HOOKAUTH_TEST_SKIP_LOG") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .expect("the skip log is writable");
        file.write_all(format!("{why}\t{test}\n").as_bytes())
            .expect("the skip log is writable");
    }
}

/// Records every event it is given, in delivery order.
#[derive(Default)]
pub struct Recorder {
    name: String,
    pub events: Mutex<Vec<Event>>,
    arrived: Notify,
    /// Fail this many calls before succeeding.
    fail_first: Mutex<u32>,
    /// Shared with other recorders: who handled what, in order.
    journal: Option<Arc<Mutex<Vec<String>>>>,
    /// While a [`Gate`] holds this, every call waits.
    held: Arc<tokio::sync::RwLock<()>>,
}

/// Holds a recorder's calls until released (or dropped).
pub struct Gate(
    #[allow(
        dead_code,
        reason = "held, never read: dropping it releases the recorder"
    )]
    tokio::sync::OwnedRwLockWriteGuard<()>,
);

impl Gate {
    pub fn release(self) {}
}

impl Recorder {
    pub fn named(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            ..Self::default()
        })
    }

    /// A recorder that also writes its name to a journal shared with others.
    pub fn journaled(name: &str, journal: Arc<Mutex<Vec<String>>>) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            journal: Some(journal),
            ..Self::default()
        })
    }

    /// Makes every call wait until the returned gate is released.
    pub fn hold(&self) -> Gate {
        Gate(
            self.held
                .clone()
                .try_write_owned()
                .expect("not held already"),
        )
    }

    pub fn failing(name: &str, times: u32) -> Arc<Self> {
        let r = Self::named(name);
        *r.fail_first.lock().unwrap() = times;
        r
    }

    pub fn kinds(&self) -> Vec<EventKind> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .map(Event::kind)
            .collect()
    }

    pub fn count(&self) -> usize {
        self.events.lock().unwrap().len()
    }

    /// Waits until at least `n` events arrived (panics after 10 s).
    pub async fn wait_for(&self, n: usize) -> Vec<Event> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            {
                let events = self.events.lock().unwrap();
                if events.len() >= n {
                    return events.clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!(
                    "expected {n} events for {}, got {:?}",
                    self.name,
                    self.kinds()
                );
            }
        }
    }

    /// Waits until at least `n` events of `kind` arrived; returns the last one.
    pub async fn wait_for_kind(&self, kind: EventKind, n: usize) -> Event {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.arrived.notified();
            {
                let events = self.events.lock().unwrap();
                let matching: Vec<&Event> = events.iter().filter(|e| e.kind() == kind).collect();
                if matching.len() >= n {
                    return matching[matching.len() - 1].clone();
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                panic!("expected {n} {kind} events, got {:?}", self.kinds());
            }
        }
    }

    pub fn count_of(&self, kind: EventKind) -> usize {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.kind() == kind)
            .count()
    }

    /// The remaining simulated failures, to end an outage.
    pub fn fail_counter(&self) -> std::sync::MutexGuard<'_, u32> {
        self.fail_first.lock().unwrap()
    }

    /// The last event of `kind`.
    pub fn last(&self, kind: EventKind) -> Option<Event> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find(|e| e.kind() == kind)
            .cloned()
    }
}

#[async_trait]
impl EventHandler for Recorder {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, _kind: EventKind) -> bool {
        true
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        drop(self.held.read().await);
        {
            let mut fail = self.fail_first.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(HandlerError("simulated outage".into()));
            }
        }
        if let Some(journal) = &self.journal {
            // Yield first, so a concurrent (unordered) dispatcher would interleave here.
            tokio::time::sleep(Duration::from_millis(5)).await;
            journal
                .lock()
                .unwrap()
                .push(format!("{} {}", self.name, event.kind()));
        }
        self.events.lock().unwrap().push(event.clone());
        self.arrived.notify_waiters();
        Ok(())
    }
}

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    /// The metrics-only listener (`[metrics] bind`), when configured.
    pub metrics_addr: Option<std::net::SocketAddr>,
    pub database_url: String,
    pub recorder: Arc<Recorder>,
    pub flows: Arc<Flows>,
    pub clock_offset: Arc<AtomicI64>,
    http: reqwest::Client,
    tenant_prefix: String,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    _dir: Option<Arc<tempfile::TempDir>>,
}

pub struct Options {
    pub env: Vec<(String, String)>,
    pub deliver_events: bool,
    pub handlers: Vec<Arc<dyn EventHandler>>,
    /// Handlers of other tenants.
    pub tenant_handlers: Vec<(TenantId, Arc<dyn EventHandler>)>,
    /// Reuse an existing database instead of a fresh one.
    pub database: Option<(String, Option<Arc<tempfile::TempDir>>)>,
    /// Environment the hooks read their secrets from.
    pub hook_env: Option<std::collections::HashMap<String, String>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            deliver_events: true,
            handlers: Vec::new(),
            tenant_handlers: Vec::new(),
            database: None,
            hook_env: None,
        }
    }
}

impl Options {
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Options::default()).await
    }

    pub async fn spawn_with(backend: Backend, options: Options) -> Self {
        Self::try_spawn(backend, options)
            .await
            .expect("server starts")
    }

    /// Starts the server, or says why it would not start.
    pub async fn try_spawn(
        backend: Backend,
        options: Options,
    ) -> Result<Self, hookauth::app::AppError> {
        // Server logs show up in the output of a failing test.
        {
            use tracing_subscriber::layer::SubscriberExt as _;
            use tracing_subscriber::util::SubscriberInitExt as _;
            let filter: tracing_subscriber::filter::Targets =
                "warn,hookauth=info".parse().expect("filter parses");
            let _ = tracing_subscriber::fmt()
                .with_test_writer()
                .finish()
                .with(filter)
                .try_init();
        }
        let (database_url, dir) = match options.database {
            Some(db) => db,
            None => {
                let (url, dir) = backend.fresh_database().await;
                (url, dir.map(Arc::new))
            }
        };
        let mut env: Vec<(String, String)> = [
            ("HOOKAUTH_SECRET_KEY", SECRET),
            // Cheap hashing keeps the suite fast; the parameters themselves are tested apart.
            ("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024"),
            ("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1"),
            ("HOOKAUTH_RATE_LIMIT__ENABLED", "false"),
            ("HOOKAUTH_PROFILE_FIELDS__DISPLAY_NAME", "string"),
            ("HOOKAUTH_DELIVERY__BACKOFF_INITIAL_MS", "50"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        env.extend(options.env);
        let config = Config::load(
            None,
            env,
            Overrides {
                bind: Some("127.0.0.1:0".into()),
                database_url: Some(database_url.clone()),
                hooks_dir: None,
                lenient_hooks: false,
            },
        )
        .expect("test config is valid");
        let recorder = Recorder::named("recorder");
        let mut registry = HandlerRegistry::new();
        let default = hookauth::domain::TenantId::default_tenant();
        for handler in options.handlers {
            registry.register(default.clone(), handler);
        }
        registry.register(default, recorder.clone());
        for (tenant, handler) in options.tenant_handlers {
            registry.register(tenant, handler);
        }
        let clock_offset = Arc::new(AtomicI64::new(0));
        let mut app = Application::build(
            &config,
            Launch {
                registry,
                clock: Clock::Shifted(clock_offset.clone()),
                deliver_events: options.deliver_events,
                hook_env: options.hook_env,
                hold_hooks: None,
            },
        )
        .await?;
        // Tests start once hooks are loaded (tests/it/server_edge.rs covers serving before).
        app.ready().await?;
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let flows = app.flows();
        let (tx, rx) = oneshot::channel();
        let server = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .expect("server runs");
        });
        Ok(TestApp {
            addr,
            metrics_addr,
            database_url,
            recorder,
            flows,
            clock_offset,
            http: reqwest::Client::builder()
                .no_proxy()
                .user_agent("hookauth-tests/1.0")
                .build()
                .unwrap(),
            tenant_prefix: String::new(),
            shutdown: Some(tx),
            server: Some(server),
            _dir: dir,
        })
    }

    /// The database this app runs on, to start another server on it.
    pub fn database(&self) -> (String, Option<Arc<tempfile::TempDir>>) {
        (self.database_url.clone(), self._dir.clone())
    }

    /// Graceful stop: in-flight requests and the event in hand finish.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }

    /// The same server, addressed as tenant `name`.
    pub fn tenant(&self, name: &str) -> TenantClient<'_> {
        TenantClient {
            app: self,
            prefix: format!("/t/{name}"),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!(
            "http://{}{}/api/v1/auth{path}",
            self.addr, self.tenant_prefix
        )
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send(&self.http, method, self.url(path), token, body).await
    }

    /// The default tenant's recorded events (kind, status), in commit order.
    pub async fn stored_events(&self) -> Vec<(EventKind, String)> {
        self.flows
            .store
            .events_of_tenant(&TenantId::default_tenant())
            .await
            .unwrap()
    }

    /// Waits until the default tenant's outbox is settled; see [`TestApp::settle_tenants`].
    pub async fn settle(&self) -> Vec<DeliveryState> {
        self.settle_tenants(&[TenantId::default_tenant()]).await
    }

    /// Waits until the outbox of `tenants` is settled, and returns their deliveries (oldest
    /// first): every committed event fanned out and finished (status no longer `pending`) and
    /// every delivery terminal (`delivered` or `failed`). From then on no handler of these
    /// tenants runs again until a new event is committed, so what handlers and sinks saw is
    /// final: tests assert exact counts after this instead of sleeping and hoping. Panics
    /// naming what is still pending after 60 s (a hang, not a speed limit).
    pub async fn settle_tenants(&self, tenants: &[TenantId]) -> Vec<DeliveryState> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let mut pending_events = Vec::new();
            let mut deliveries = Vec::new();
            for tenant in tenants {
                pending_events.extend(
                    self.flows
                        .store
                        .events_of_tenant(tenant)
                        .await
                        .unwrap()
                        .into_iter()
                        .filter(|(_, status)| status == "pending")
                        .map(|(kind, _)| format!("{tenant}: {kind}")),
                );
                deliveries.extend(
                    self.flows
                        .store
                        .delivery_states(Some(tenant))
                        .await
                        .unwrap(),
                );
            }
            let pending: Vec<&DeliveryState> = deliveries
                .iter()
                .filter(|d| d.status == "pending")
                .collect();
            if pending_events.is_empty() && pending.is_empty() {
                return deliveries;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the outbox never settled: events {pending_events:?}, deliveries {pending:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, None, Some(body)).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub async fn register(&self, email: &str) -> StatusCode {
        self.post("/register", json!({"email": email, "password": PASSWORD}))
            .await
            .0
    }

    /// Registers (if new) and logs in; returns the login body.
    pub async fn login(&self, email: &str) -> Value {
        self.register(email).await;
        let (status, body) = self
            .post("/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    pub async fn access_token(&self, email: &str) -> String {
        self.login(email).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Shifts the server's clock (tokens it issues, expiry and lockout checks).
    pub fn shift_clock(&self, millis: i64) {
        self.clock_offset
            .store(millis, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub struct TenantClient<'a> {
    app: &'a TestApp,
    prefix: String,
}

impl TenantClient<'_> {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}/api/v1/auth{path}", self.app.addr, self.prefix)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        send(&self.app.http, method, self.url(path), token, body).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        self.request(Method::POST, path, None, Some(body)).await
    }
}

pub async fn send(
    http: &reqwest::Client,
    method: Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http.request(method, url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let response = req.send().await.expect("server answers");
    let status = response.status();
    let text = response.text().await.unwrap();
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"))
    };
    (status, value)
}

/// Asserts the credentials error exactly.
pub fn assert_unauthorized(status: StatusCode, body: &Value) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["detail"], "Could not validate credentials");
    assert_eq!(body["code"], "invalid_credentials");
}

/// RFC 6238 TOTP (SHA-1, 30-second steps, 6 digits) for a base32 secret, written out here so
/// the tests never compute codes with the server's own TOTP code.
pub fn totp(secret: &str, unix_secs: i64) -> String {
    use hmac::{Hmac, Mac};
    const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut count, mut key) = (0u64, 0, Vec::new());
    for c in secret.trim_end_matches('=').chars() {
        let value = ALPHABET
            .find(c.to_ascii_uppercase())
            .expect("base32 character") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            key.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(&key).unwrap();
    mac.update(&((unix_secs / 30) as u64).to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = (digest[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    format!("{:06}", binary % 1_000_000)
}

impl TestApp {
    /// The server's "now" in seconds (its clock may be shifted).
    pub fn server_now_secs(&self) -> i64 {
        let offset = self.clock_offset.load(std::sync::atomic::Ordering::Relaxed);
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
            + offset)
            / 1000
    }
}
