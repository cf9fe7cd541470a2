//! Event delivery under load, in-process and on loopback only. Written against the library API
//! that both the concurrent dispatcher and the old one-at-a-time dispatcher (commit 484080c)
//! share, so `benches/load/delivery.sh` runs this same file against both in one session.
//!
//! Scenarios (each on a fresh SQLite file; `DELIVERY_BENCH_ONLY=throughput|lag|backlog|flows`
//! runs one):
//! - throughput: N committed events, then a server starts and the real welcome-email Wasm guest
//!   delivers them to an email API answering in 50 ms; events/s until the last one arrived.
//! - lag: tenant `slowco` has a hook that sleeps to its 1 s deadline on every event (and fails);
//!   the default tenant's welcome hook calls the 50 ms API. Both tenants register users at a
//!   steady rate; commit→handled lag of the default tenant's events, p50/p99.
//! - backlog: 100,000 committed events, then delivery runs for 20 s: RSS before and at peak.
//! - flows: POST /register and /login latency at concurrency 1 while hooks deliver.
//!
//! DELIVERY_BENCH_WELCOME=path/to/welcome_email.wasm chooses the guest (benches/load/delivery.sh
//! sets it, so both trees run the same bytes); otherwise guest-examples/rust is built.
//! Under `cargo test` (no `--bench` argument) one quick throughput pass of 20 events runs, so
//! the suite proves the bench still works without spending minutes on it.

#[path = "common/measure.rs"]
mod measure;
#[allow(dead_code, reason = "the bench uses only the guest builder")]
#[path = "../tests/common/shared.rs"]
mod shared;

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hookauth::app::{Application, Launch};
use hookauth::config::{Config, Overrides};
use hookauth::domain::{Email, Event, EventKind, Password, Profile, RequestContext, TenantId};
use hookauth::events::{EventHandler, HandlerError, HandlerRegistry};
use hookauth::flows::{Clock, Flows, RegisterInput};
use measure::{percentile, proc_kib};
use tokio::sync::oneshot;

const SECRET: &str = "bench-secret-key-0123456789abcdef0123456789";
const API_DELAY: Duration = Duration::from_millis(50);

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The local "email API": answers every POST after 50 ms and notes when each event arrived.
#[derive(Clone, Default)]
struct Api {
    count: Arc<AtomicUsize>,
    arrivals: Arc<Mutex<HashMap<String, i64>>>,
    keep_arrivals: bool,
}

impl Api {
    async fn start(keep_arrivals: bool) -> (Self, u16) {
        let api = Api {
            keep_arrivals,
            ..Api::default()
        };
        let state = api.clone();
        let app = axum::Router::new().route(
            "/send",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let state = state.clone();
                async move {
                    tokio::time::sleep(API_DELAY).await;
                    if state.keep_arrivals {
                        let key = headers
                            .get("idempotency-key")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        state
                            .arrivals
                            .lock()
                            .unwrap()
                            .entry(key)
                            .or_insert(now_ms());
                    }
                    state.count.fetch_add(1, Ordering::SeqCst);
                    "queued"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (api, port)
    }
}

/// A tenant's hook whose endpoint is down: waits out a 1 s deadline, then fails.
struct Sleeper;

#[async_trait]
impl EventHandler for Sleeper {
    fn name(&self) -> &str {
        "webhook"
    }
    fn handles(&self, _kind: EventKind) -> bool {
        true
    }
    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Err(HandlerError("deadline exceeded after 1000 ms".into()))
    }
}

fn hooks_dir(port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("20-welcome.wasm");
    match std::env::var("DELIVERY_BENCH_WELCOME") {
        Ok(wasm) => {
            std::fs::copy(wasm, &target).unwrap();
        }
        Err(_) => std::fs::write(&target, shared::guest("welcome-email")).unwrap(),
    }
    std::fs::write(
        dir.path().join("hooks.toml"),
        format!(
            "[hooks.20-welcome]\nallowed_hosts = [\"127.0.0.1:{port}\"]\n\
             config = {{ url = \"http://127.0.0.1:{port}/send\" }}\n\
             secrets = {{ api_key = \"MAIL_KEY\" }}\n"
        ),
    )
    .unwrap();
    dir
}

struct Server {
    flows: Arc<Flows>,
    addr: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    async fn start(
        db: &Path,
        hooks: &Path,
        registry: HandlerRegistry,
        deliver: bool,
        env: &[(&str, &str)],
    ) -> Self {
        let mut vars: Vec<(String, String)> = [
            ("HOOKAUTH_SECRET_KEY", SECRET),
            ("HOOKAUTH_RATE_LIMIT__ENABLED", "false"),
            ("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024"),
            ("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        vars.extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let config = Config::load(
            None,
            vars,
            Overrides {
                bind: Some("127.0.0.1:0".into()),
                database_url: Some(format!("sqlite://{}", db.display())),
                hooks_dir: Some(hooks.to_path_buf()),
                lenient_hooks: false,
            },
        )
        .unwrap();
        let mut app = Application::build(
            &config,
            Launch {
                registry,
                clock: Clock::System,
                deliver_events: deliver,
                hook_env: Some(HashMap::from([("MAIL_KEY".into(), "k".into())])),
                hold_hooks: None,
            },
        )
        .await
        .unwrap();
        // Registering waits for the gates, which come with the hooks.
        app.ready().await.unwrap();
        let flows = app.flows();
        let addr = app.local_addr();
        let (stop, rx) = oneshot::channel();
        let task = tokio::spawn(async move {
            app.run_until(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server {
            flows,
            addr,
            stop,
            task,
        }
    }

    async fn shutdown(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

async fn register_many(flows: &Arc<Flows>, tenant: &TenantId, prefix: &str, n: usize) {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let flows = flows.clone();
        let tenant = tenant.clone();
        let email = format!("{prefix}{i}@example.com");
        set.spawn(async move { register_one(&flows, &tenant, &email).await });
        // A failed registration fails the bench at once (it would otherwise wait for events
        // that never come).
        if set.len() >= 16
            && let Some(done) = set.join_next().await
        {
            done.unwrap();
        }
    }
    while let Some(done) = set.join_next().await {
        done.unwrap();
    }
}

async fn register_one(flows: &Flows, tenant: &TenantId, email: &str) {
    let input = RegisterInput {
        email: Email::parse(email).unwrap(),
        password: Password::new("load-test-secret-123".into()),
        profile: Profile::new(),
    };
    let ctx = RequestContext::default();
    if let Err(e) = hookauth::flows::register(flows, tenant, input, &ctx).await {
        panic!("register {email}: {e}");
    }
}

async fn throughput(label: &str, quick: bool) {
    let n: usize = std::env::var("DELIVERY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20 } else { 3000 });
    let (api, port) = Api::start(false).await;
    let hooks = hooks_dir(port);
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("bench.db");
    let filler = Server::start(&db, hooks.path(), HandlerRegistry::new(), false, &[]).await;
    register_many(&filler.flows, &TenantId::default_tenant(), "t", n).await;
    filler.shutdown().await;
    let started = Instant::now();
    let server = Server::start(&db, hooks.path(), HandlerRegistry::new(), true, &[]).await;
    while api.count.load(Ordering::SeqCst) < n {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "throughput run stalled"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{label} throughput: {n} events to a 50 ms API in {secs:.2} s = {:.0} events/s",
        n as f64 / secs
    );
    server.shutdown().await;
}

async fn lag(label: &str, env: &[(&str, &str)]) {
    let drive = Duration::from_secs(20);
    let (api, port) = Api::start(true).await;
    let hooks = hooks_dir(port);
    let data = tempfile::tempdir().unwrap();
    let slowco = TenantId::parse("slowco").unwrap();
    let mut registry = HandlerRegistry::new();
    registry.register(slowco.clone(), Arc::new(Sleeper));
    let server = Server::start(
        &data.path().join("bench.db"),
        hooks.path(),
        registry,
        true,
        env,
    )
    .await;
    server.flows.store.create_tenant(&slowco, 0).await.unwrap();
    // slowco: 20 registrations/s (20 s of sleeping per second); default tenant: 10/s.
    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    let mut i = 0;
    let mut healthy = 0;
    while started.elapsed() < drive {
        tick.tick().await;
        let flows = server.flows.clone();
        let (tenant, email) = (slowco.clone(), format!("s{i}@example.com"));
        tokio::spawn(async move { register_one(&flows, &tenant, &email).await });
        if i % 2 == 0 {
            let flows = server.flows.clone();
            let email = format!("d{i}@example.com");
            tokio::spawn(
                async move { register_one(&flows, &TenantId::default_tenant(), &email).await },
            );
            healthy += 1;
        }
        i += 1;
    }
    // Give stragglers 30 s; what has not arrived by then counts as at least that late.
    let window_end = Instant::now() + Duration::from_secs(30);
    while api.arrivals.lock().unwrap().len() < healthy && Instant::now() < window_end {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arrivals = api.arrivals.lock().unwrap().clone();
    let events = server
        .flows
        .store
        .events_of_tenant(&TenantId::default_tenant())
        .await
        .unwrap()
        .len();
    let mut lags = Vec::new();
    for (id, arrived) in &arrivals {
        if let Ok(Some((record, _))) = server.flows.store.find_event(id).await {
            lags.push(Duration::from_millis(
                (arrived - record.event.occurred_at).max(0) as u64,
            ));
        }
    }
    let missing = events.saturating_sub(lags.len());
    // Events never delivered get the lag they had reached when measuring stopped.
    lags.extend(std::iter::repeat_n(Duration::from_secs(30), missing));
    lags.sort();
    println!(
        "{label} lag of the healthy tenant while slowco's hook sleeps 1 s per event: \
         {events} events, {} delivered, p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms{}",
        events - missing,
        percentile(&lags, 0.5).as_secs_f64() * 1000.0,
        percentile(&lags, 0.99).as_secs_f64() * 1000.0,
        lags.last().unwrap().as_secs_f64() * 1000.0,
        if missing > 0 {
            format!(" ({missing} not delivered within 30 s after the load, counted as 30 s)")
        } else {
            String::new()
        }
    );
    server.shutdown().await;
}

async fn backlog(label: &str) {
    const BACKLOG: i64 = 100_000;
    let (api, port) = Api::start(false).await;
    let hooks = hooks_dir(port);
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("bench.db");
    let filler = Server::start(&db, hooks.path(), HandlerRegistry::new(), false, &[]).await;
    register_one(&filler.flows, &TenantId::default_tenant(), "b@example.com").await;
    filler.shutdown().await;
    grow_outbox(&db, BACKLOG).await;
    let rss_before = proc_kib("status", "VmRSS:");
    let started = Instant::now();
    let server = Server::start(&db, hooks.path(), HandlerRegistry::new(), true, &[]).await;
    let mut peak = 0;
    while started.elapsed() < Duration::from_secs(20) {
        peak = peak.max(proc_kib("status", "VmRSS:"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "{label} backlog of {BACKLOG} events: RSS {} MiB before start, peak {} MiB while \
         delivering ({} delivered in 20 s)",
        rss_before / 1024,
        peak / 1024,
        api.count.load(Ordering::SeqCst)
    );
    server.shutdown().await;
}

/// Copies the one stored event until the outbox holds `total` pending events: plain SQL that
/// both schemas accept (the copies differ only in id).
async fn grow_outbox(db: &Path, total: i64) {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    loop {
        let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM events")
            .fetch_one(&mut conn)
            .await
            .unwrap();
        if count >= total {
            break;
        }
        sqlx::query(
            "INSERT INTO events (id, tenant_id, kind, payload, secret, context, created_at, \
             status, attempts, next_attempt_at) \
             SELECT id || '-' || seq || '-' || $1, tenant_id, kind, payload, secret, context, \
             created_at, 'pending', 0, next_attempt_at FROM events ORDER BY seq LIMIT $2",
        )
        .bind(count)
        .bind(total - count)
        .execute(&mut conn)
        .await
        .unwrap();
    }
    sqlx::query("UPDATE events SET status = 'pending', delivered_at = NULL")
        .execute(&mut conn)
        .await
        .unwrap();
}

async fn flows_latency(label: &str) {
    let (_api, port) = Api::start(false).await;
    let hooks = hooks_dir(port);
    let data = tempfile::tempdir().unwrap();
    let server = Server::start(
        &data.path().join("bench.db"),
        hooks.path(),
        HandlerRegistry::new(),
        true,
        &[
            // The shipped argon2 parameters: this is the latency a user sees.
            ("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "19456"),
            ("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "2"),
        ],
    )
    .await;
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let base = format!("http://{}/api/v1/auth", server.addr);
    let mut register = Vec::new();
    let mut login = Vec::new();
    for i in 0..150 {
        let body = serde_json::json!({"email": format!("f{i}@example.com"), "password": "load-test-secret-123"});
        let t = Instant::now();
        let r = http
            .post(format!("{base}/register"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        register.push(t.elapsed());
        let t = Instant::now();
        let r = http
            .post(format!("{base}/login"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        login.push(t.elapsed());
    }
    register.sort();
    login.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{label} flows at concurrency 1 with the welcome hook delivering: register p50 {:.1} / \
         p99 {:.1} ms, login p50 {:.1} / p99 {:.1} ms",
        ms(percentile(&register, 0.5)),
        ms(percentile(&register, 0.99)),
        ms(percentile(&login, 0.5)),
        ms(percentile(&login, 0.99)),
    );
    server.shutdown().await;
}

fn main() {
    let label = std::env::var("DELIVERY_BENCH_LABEL").unwrap_or_else(|_| "this build".into());
    let quick = !std::env::args().any(|a| a == "--bench");
    let only = if quick {
        "throughput".to_owned()
    } else {
        std::env::var("DELIVERY_BENCH_ONLY").unwrap_or_default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let run = |name: &str| only.is_empty() || only.split(',').any(|o| o == name);
        if run("throughput") {
            throughput(&label, quick).await;
        }
        if run("lag") {
            lag(&label, &[]).await;
            if std::env::var("DELIVERY_BENCH_NO_BREAKER").is_ok_and(|v| !v.is_empty()) {
                lag(
                    &format!("{label} (breaker off)"),
                    &[("HOOKAUTH_DELIVERY__BREAKER_FAILURES", "0")],
                )
                .await;
            }
        }
        if run("backlog") {
            backlog(&label).await;
        }
        if run("flows") {
            flows_latency(&label).await;
        }
    });
}
