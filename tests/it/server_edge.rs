//! The connection layer and start-up, attacked over real loopback sockets: slow and stalled
//! clients, connection caps, shutdown with a stalled request, readiness while hooks load, and
//! every configuration value checked at start. Timeouts in these tests are hang guards, far
//! above the configured limits, never speed checks.

use std::net::SocketAddr;
use std::time::Duration;

use hookauth::app::{Application, Launch};
use hookauth::config::{Config, Overrides};
use hookauth::domain::{EventKind, TenantId};
use hookauth::events::HandlerRegistry;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::oneshot;

use crate::helpers::{PASSWORD, Recorder, SECRET};

/// Far above every limit configured below: reaching it means the server never acted.
const HANG_GUARD: Duration = Duration::from_secs(20);

fn config(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env: Vec<(String, String)> = [
        ("HOOKAUTH_SECRET_KEY", SECRET),
        ("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024"),
        ("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1"),
        ("HOOKAUTH_RATE_LIMIT__ENABLED", "false"),
        ("HOOKAUTH_OPERATOR_TOKEN", OPERATOR),
    ]
    .iter()
    .chain(extra)
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.retain(|(k, _)| !k.is_empty());
    Config::load(
        None,
        env,
        Overrides {
            bind: Some("127.0.0.1:0".into()),
            database_url: Some(database_url.into()),
            ..Overrides::default()
        },
    )
    .expect("test config is valid")
}

use crate::shared::OPERATOR;

/// A running server on a fresh SQLite file, stopped by the returned sender.
struct Server {
    addr: SocketAddr,
    flows: std::sync::Arc<hookauth::flows::Flows>,
    stop: Option<oneshot::Sender<()>>,
    done: tokio::task::JoinHandle<Result<(), hookauth::app::AppError>>,
    _dir: tempfile::TempDir,
}

async fn start(extra: &[(&str, &str)]) -> Server {
    start_with(extra, Launch::default()).await
}

async fn start_with(extra: &[(&str, &str)], launch: Launch) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("hookauth.db").display());
    let app = Application::build(&config(&url, extra), launch)
        .await
        .expect("server builds");
    let addr = app.local_addr();
    let flows = app.flows();
    let (stop, stopped) = oneshot::channel();
    let done = tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));
    Server {
        addr,
        flows,
        stop: Some(stop),
        done,
        _dir: dir,
    }
}

impl Server {
    async fn stop(mut self) -> Result<(), hookauth::app::AppError> {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(HANG_GUARD, &mut self.done)
            .await
            .expect("the server stops")
            .unwrap()
    }
}

/// Reads until the server closes the connection (EOF or reset); what it sent before.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(HANG_GUARD, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "the server kept the connection open; got {:?}",
        String::from_utf8_lossy(&got)
    );
    String::from_utf8_lossy(&got).into_owned()
}

async fn get(addr: SocketAddr, path: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{addr}{path}"))
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_request_head_is_closed_after_the_header_timeout() {
    let server = start(&[("HOOKAUTH_SERVER__HEADER_READ_TIMEOUT_MS", "200")]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut stream).await;
    assert!(!got.contains("200 OK"), "{got}");
    // A client that connects and sends nothing is bounded the same way.
    let mut silent = TcpStream::connect(server.addr).await.unwrap();
    read_until_closed(&mut silent).await;
    // Others are still served.
    assert_eq!(get(server.addr, "/healthz").await.0, StatusCode::OK);
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_a_body_gets_408_and_the_connection_closed() {
    let server = start(&[("HOOKAUTH_SERVER__BODY_READ_TIMEOUT_MS", "300")]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"email\":",
        )
        .await
        .unwrap();
    let got = read_until_closed(&mut stream).await;
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("\"code\":\"request_timeout\""), "{got}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed() {
    let server = start(&[("HOOKAUTH_SERVER__IDLE_TIMEOUT_MS", "300")]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut stream).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    server.stop().await.unwrap();
}

/// Slow read: a client pipelines requests and never reads the answers. Once the socket
/// buffers are full nothing moves, and the idle timeout closes the connection (our writes then
/// fail); before, the server's write waited forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_its_responses_is_closed() {
    let server = start(&[("HOOKAUTH_SERVER__IDLE_TIMEOUT_MS", "300")]).await;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(server.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".repeat(64);
    let closed = tokio::time::timeout(HANG_GUARD, async {
        while stream.write_all(&request).await.is_ok() {}
    })
    .await;
    assert!(
        closed.is_ok(),
        "the server kept a connection whose client never reads"
    );
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_request_heads_get_431() {
    let server = start(&[("HOOKAUTH_SERVER__MAX_HEADER_BYTES", "4096")]).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(8192)
    );
    stream.write_all(big.as_bytes()).await.unwrap();
    let got = read_until_closed(&mut stream).await;
    assert!(got.starts_with("HTTP/1.1 431"), "{got}");
    server.stop().await.unwrap();
}

async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_per_address_are_capped_and_others_still_served() {
    let server = start(&[("HOOKAUTH_SERVER__MAX_CONNECTIONS_PER_IP", "2")]).await;
    // Two held connections, each proven accepted by a served request (keep-alive).
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from("127.0.0.1", server.addr).await;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = stream.read(&mut buf).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    let mut third = connect_from("127.0.0.1", server.addr).await;
    let got = read_until_closed(&mut third).await;
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(got.contains("too_many_connections"), "{got}");
    // Another address is served meanwhile.
    let mut other = connect_from("127.0.0.2", server.addr).await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut other).await;
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // A held connection closed frees its slot.
    drop(held.pop());
    let served = tokio::time::timeout(HANG_GUARD, async {
        loop {
            let mut again = connect_from("127.0.0.1", server.addr).await;
            again
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            if read_until_closed(&mut again)
                .await
                .starts_with("HTTP/1.1 200")
            {
                return;
            }
        }
    })
    .await;
    assert!(served.is_ok(), "the freed slot was never reused");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_closes_a_stalled_request_after_the_grace_period() {
    let server = start(&[
        ("HOOKAUTH_SERVER__SHUTDOWN_GRACE_MS", "300"),
        ("HOOKAUTH_SERVER__BODY_READ_TIMEOUT_MS", "3600000"),
        ("HOOKAUTH_SERVER__IDLE_TIMEOUT_MS", "3600000"),
    ])
    .await;
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(
            b"POST /api/v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    // The request is in flight (its handler waits for the body) once the server answers
    // another request after it.
    assert_eq!(get(server.addr, "/healthz").await.0, StatusCode::OK);
    server.stop().await.expect("stops cleanly");
    read_until_closed(&mut stalled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_503_until_hooks_load_and_events_wait_in_the_outbox() {
    let (release, hold) = oneshot::channel();
    let recorder = Recorder::named("recorder");
    let mut registry = HandlerRegistry::new();
    registry.register(TenantId::default_tenant(), recorder.clone());
    let server = start_with(
        &[],
        Launch {
            registry,
            hold_hooks: Some(hold),
            ..Launch::default()
        },
    )
    .await;
    // Serving at once: health and readiness.
    assert_eq!(get(server.addr, "/healthz").await.0, StatusCode::OK);
    let (status, body) = get(server.addr, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body["not_ready"], json!(["hooks"]), "{body}");
    assert_eq!(body["checks"]["database"], json!(true), "{body}");
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // Flows that gates may decide wait for the gates: a sign-up arriving early must not skip
    // a policy a gate enforces.
    let early = http
        .post(format!("http://{}/api/v1/auth/register", server.addr))
        .json(&json!({"email": "early@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(early.headers()["retry-after"], "1");
    let body: Value = early.json().await.unwrap();
    assert_eq!(body["code"], "not_ready", "{body}");
    // An event committed meanwhile (here straight through the store, as another replica
    // would) waits in the outbox.
    let ctx = hookauth::domain::RequestContext::default();
    server
        .flows
        .store
        .insert_user(
            hookauth::store::NewUser {
                id: hookauth::domain::UserId::new(),
                tenant: TenantId::default_tenant(),
                email: "early@example.com".into(),
                hashed_password: None,
                is_superuser: false,
                is_verified: false,
                profile: Default::default(),
                roles: Vec::new(),
            },
            |user| {
                let payload = hookauth::domain::EventPayload::AfterRegister {
                    user: user.snapshot(),
                };
                Some(hookauth::store::Announce::about(user, payload, &ctx))
            },
            server.flows.clock.now_millis(),
        )
        .await
        .unwrap();
    // Hook management waits for the hooks, with a clear 503.
    let tenants = http
        .get(format!("http://{}/api/v1/tenants", server.addr))
        .bearer_auth(OPERATOR)
        .send()
        .await
        .unwrap();
    assert_eq!(tenants.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = tenants.json().await.unwrap();
    assert_eq!(body["code"], "not_ready", "{body}");
    // No dispatcher runs before the hooks are loaded, so nothing was delivered.
    assert_eq!(recorder.count(), 0);

    release.send(()).unwrap();
    let ready = tokio::time::timeout(HANG_GUARD, async {
        loop {
            if get(server.addr, "/readyz").await.0 == StatusCode::OK {
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ready.is_ok(), "never became ready");
    // The event committed during the load is delivered from the outbox.
    recorder.wait_for_kind(EventKind::AfterRegister, 1).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_that_fail_to_load_after_binding_stop_the_server_with_the_error() {
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(hooks.path().join("10-garbage.wasm"), b"not a component").unwrap();
    let server = start(&[("HOOKAUTH_HOOKS__DIR", hooks.path().to_str().unwrap())]).await;
    let done = tokio::time::timeout(HANG_GUARD, server.done)
        .await
        .expect("the server stops on its own")
        .unwrap();
    let error = done.expect_err("a server whose hooks fail must not keep running");
    assert!(error.to_string().contains("10-garbage.wasm"), "{error}");
}

/// Every value with a bad setting is refused at start with a message naming the key.
#[test]
fn every_bad_configuration_value_is_refused_naming_its_key() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "HOOKAUTH_RATE_LIMIT__LIMITS__VERIFY_EMAIL",
            "0",
            "rate_limit.limits.verify_email",
        ),
        (
            "HOOKAUTH_RATE_LIMIT__LIMITS__LOGIN",
            "0",
            "rate_limit.limits.login",
        ),
        (
            "HOOKAUTH_RATE_LIMIT__WINDOW_SECONDS",
            "0",
            "rate_limit.window_seconds",
        ),
        (
            "HOOKAUTH_RATE_LIMIT__TRUSTED_PROXY_COUNT",
            "0",
            "rate_limit.trusted_proxy_count",
        ),
        (
            "HOOKAUTH_RATE_LIMIT__TRUSTED_PROXY_HEADER",
            "bad header",
            "rate_limit.trusted_proxy_header",
        ),
        ("HOOKAUTH_BIND", "nonsense", "bind"),
        ("HOOKAUTH_BIND", "127.0.0.1:99999", "bind"),
        ("HOOKAUTH_DATABASE_URL", "mysql://x", "database_url"),
        (
            "HOOKAUTH_HOOKS__MAX_CONCURRENT",
            "0",
            "hooks.max_concurrent",
        ),
        (
            "HOOKAUTH_TENANT_HOOKS__COMPILE_CONCURRENCY",
            "0",
            "tenant_hooks.compile_concurrency",
        ),
        (
            "HOOKAUTH_TENANT_HOOKS__MEMORY_MIB",
            "100000",
            "tenant_hooks.memory_mib",
        ),
        (
            "HOOKAUTH_TENANT_HOOKS__ALLOWED_HOSTS",
            "[\"\"]",
            "tenant_hooks.allowed_hosts",
        ),
        (
            "HOOKAUTH_DATABASE__MAX_CONNECTIONS",
            "0",
            "database.max_connections",
        ),
        ("HOOKAUTH_JWT__ALGORITHM", "none", "jwt.algorithm"),
        ("HOOKAUTH_JWT__ISSUER", "\"\"", "jwt.issuer"),
        (
            "HOOKAUTH_JWT__ACCESS_TOKEN_MINUTES",
            "0",
            "jwt.access_token_minutes",
        ),
        (
            "HOOKAUTH_JWT__REFRESH_TOKEN_DAYS",
            "9223372036854775807",
            "jwt.refresh_token_days",
        ),
        (
            "HOOKAUTH_JWT__LEEWAY_SECONDS",
            "9223372036854775807",
            "jwt.leeway_seconds",
        ),
        ("HOOKAUTH_PASSWORD__MIN_LENGTH", "0", "password.min_length"),
        ("HOOKAUTH_PASSWORD__MAX_LENGTH", "3", "password.max_length"),
        (
            "HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB",
            "1",
            "password.argon2_memory_kib",
        ),
        (
            "HOOKAUTH_PASSWORD__ARGON2_ITERATIONS",
            "0",
            "password.argon2_iterations",
        ),
        (
            "HOOKAUTH_PASSWORD__ARGON2_PARALLELISM",
            "0",
            "password.argon2_parallelism",
        ),
        (
            "HOOKAUTH_TOKENS__PASSWORD_RESET_MINUTES",
            "0",
            "tokens.password_reset_minutes",
        ),
        (
            "HOOKAUTH_TOKENS__EMAIL_VERIFY_MINUTES",
            "9223372036854775807",
            "tokens.email_verify_minutes",
        ),
        (
            "HOOKAUTH_SECURITY__MAX_BODY_BYTES",
            "0",
            "security.max_body_bytes",
        ),
        (
            "HOOKAUTH_SECURITY__REAUTH_MAX_AGE_SECONDS",
            "9223372036854775807",
            "security.reauth_max_age_seconds",
        ),
        (
            "HOOKAUTH_LOCKOUT__MAX_ATTEMPTS",
            "0",
            "lockout.max_attempts",
        ),
        (
            "HOOKAUTH_LOCKOUT__DURATION_MINUTES",
            "0",
            "lockout.duration_minutes",
        ),
        ("HOOKAUTH_DELIVERY__BATCH_SIZE", "0", "delivery.batch_size"),
        (
            "HOOKAUTH_DELIVERY__MAX_ATTEMPTS",
            "0",
            "delivery.max_attempts",
        ),
        (
            "HOOKAUTH_DELIVERY__BREAKER_PAUSE_MS",
            "9223372036854775807",
            "delivery.breaker_pause_ms",
        ),
        (
            "HOOKAUTH_DELIVERY__BACKOFF_MAX_MS",
            "1",
            "delivery.backoff_max_ms",
        ),
        (
            "HOOKAUTH_SERVER__HEADER_READ_TIMEOUT_MS",
            "0",
            "server.header_read_timeout_ms",
        ),
        (
            "HOOKAUTH_SERVER__BODY_READ_TIMEOUT_MS",
            "0",
            "server.body_read_timeout_ms",
        ),
        (
            "HOOKAUTH_SERVER__IDLE_TIMEOUT_MS",
            "0",
            "server.idle_timeout_ms",
        ),
        (
            "HOOKAUTH_SERVER__MAX_CONNECTIONS",
            "0",
            "server.max_connections",
        ),
        (
            "HOOKAUTH_SERVER__MAX_CONNECTIONS_PER_IP",
            "0",
            "server.max_connections_per_ip",
        ),
        (
            "HOOKAUTH_SERVER__MAX_HEADER_BYTES",
            "10",
            "server.max_header_bytes",
        ),
        (
            "HOOKAUTH_SERVER__SHUTDOWN_GRACE_MS",
            "9223372036854775807",
            "server.shutdown_grace_ms",
        ),
        (
            "HOOKAUTH_HOOKS__OUTBOUND_MAX_REQUESTS",
            "0",
            "hooks.outbound_max_requests",
        ),
        (
            "HOOKAUTH_HOOKS__OUTBOUND_MAX_CONCURRENT_PER_HOOK",
            "2",
            "hooks.outbound_max_concurrent_per_hook",
        ),
        (
            "HOOKAUTH_HOOKS__COMPILE_TIMEOUT_MS",
            "5",
            "hooks.compile_timeout_ms",
        ),
        (
            "HOOKAUTH_TENANT_HOOKS__COMPILE_TIMEOUT_MS",
            "5",
            "tenant_hooks.compile_timeout_ms",
        ),
        (
            "HOOKAUTH_HOOKS__GATE_TIMEOUT_MS",
            "0",
            "hooks.gate_timeout_ms",
        ),
        // Above its ceiling (gate_max_timeout_ms, 5000).
        (
            "HOOKAUTH_HOOKS__GATE_TIMEOUT_MS",
            "6000",
            "hooks.gate_timeout_ms",
        ),
        ("HOOKAUTH_HOOKS__GATE_FUEL", "0", "hooks.gate_fuel"),
        (
            "HOOKAUTH_HOOKS__GATE_MAX_TIMEOUT_MS",
            "0",
            "hooks.gate_max_timeout_ms",
        ),
        (
            "HOOKAUTH_HOOKS__MAX_CLAIMS_BYTES",
            "1",
            "hooks.max_claims_bytes",
        ),
        (
            "HOOKAUTH_HOOKS__GATE_AUDIT_DAYS",
            "0",
            "hooks.gate_audit_days",
        ),
    ];
    for (var, value, key) in cases {
        let err = Config::load(
            None,
            [(var.to_string(), value.to_string())],
            Overrides::default(),
        )
        .expect_err(&format!("{var}={value} was accepted"))
        .to_string();
        // One problem, led by its key: no doubled prefix ("hooks hooks.x").
        assert!(
            err.contains(&format!("invalid configuration: {key}")),
            "{var}={value}: {err}"
        );
        assert_eq!(err.matches("invalid configuration").count(), 1, "{err}");
    }
    // The defaults pass.
    Config::load(None, Vec::<(String, String)>::new(), Overrides::default()).unwrap();
}

/// The reported defect: `verify_email = 0` started and then dropped every request to its
/// bucket. The real binary now refuses to start, naming the key.
#[test]
fn the_binary_refuses_a_zero_rate_limit_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = crate::process::hookauth(dir.path())
        .env("HOOKAUTH_RATE_LIMIT__LIMITS__VERIFY_EMAIL", "0")
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("rate_limit.limits.verify_email must be between 1 and"),
        "{stderr}"
    );
}
