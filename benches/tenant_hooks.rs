//! Tenant hooks at scale, through the real server (`Application::build` + HTTP):
//!
//! 1. Populate a fresh SQLite database with `TENANT_BENCH_TENANTS` (default 1,000) tenants, each
//!    with 3 API hooks (Rust `minimal` twice under two names, `audit-log` once: 2 distinct
//!    components shared by every tenant).
//! 2. Start-up: `Application::build` (migrations, reading every hook row, no compile) and the
//!    resident memory after it.
//! 3. First-event latency of a lazily loaded hook (compile + link + instantiate + call), then of
//!    another tenant's copy of the same component (compiled code shared: link + call), then a
//!    warm call; after that, every hook of every tenant gets one event, and the RSS is read
//!    again (all 3,000 hooks loaded).
//! 4. Deploy latency over HTTP (`PUT /t/{tenant}/api/v1/hooks/{name}`, multipart, validated,
//!    compiled, stored, swapped in): a Rust hook whose code is new, the same component again
//!    (shared code), and JS / Python hooks when scripts/install-guest-toolchains has run
//!    (`TENANT_BENCH_LANGS=js,python`).
//!
//! `cargo bench --bench tenant_hooks`. As a test (`cargo test --bench tenant_hooks`), it runs
//! once with 20 tenants.

#[allow(dead_code)]
#[path = "../tests/guests/build.rs"]
mod build;
#[allow(dead_code)]
#[path = "../tests/common/hook_support.rs"]
mod hook_support;
#[allow(dead_code)]
#[path = "common/measure.rs"]
mod measure;
#[allow(dead_code)]
#[path = "../tests/common/shared.rs"]
mod shared;
#[allow(dead_code, unused_imports)]
#[path = "../tests/guests/support.rs"]
mod support;

use std::time::{Duration, Instant};

use hookauth::app::{Application, Launch};
use hookauth::config::{Config, Overrides};
use hookauth::domain::{Event, EventKind, EventPayload, RequestContext, TenantId, UserSnapshot};
use hookauth::store::NewTenantHook;
use measure::proc_kib;
use sha2::{Digest, Sha256};

const OPERATOR: &str = "bench-operator-token-0123456789abcdef012345";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn event(tenant: &TenantId, kind: EventKind, n: usize) -> Event {
    let user = UserSnapshot {
        id: "0190b7a4-0000-7000-8000-000000000001".into(),
        email: "ada@example.com".into(),
        is_active: true,
        is_verified: false,
        is_superuser: false,
        roles: vec![],
        profile: serde_json::Map::new(),
    };
    let payload = match kind {
        EventKind::AfterLogin => EventPayload::AfterLogin { user },
        _ => EventPayload::AfterRegister { user },
    };
    Event {
        id: format!("0190b7a4-0000-7000-8000-{n:012}"),
        seq: n as i64,
        tenant: tenant.clone(),
        occurred_at: 1_750_000_000_000,
        context: RequestContext {
            request_id: format!("bench-{n}"),
            client_ip: None,
            user_agent: None,
        },
        payload,
    }
}

fn config(url: &str) -> Config {
    let env = [
        (
            "HOOKAUTH_SECRET_KEY",
            "bench-secret-key-0123456789abcdef0123456789",
        ),
        ("HOOKAUTH_OPERATOR_TOKEN", OPERATOR),
        ("HOOKAUTH_RATE_LIMIT__ENABLED", "false"),
        ("HOOKAUTH_TENANT_HOOKS__MAX_COMPONENT_MIB", "64"),
        ("HOOKAUTH_TENANT_HOOKS__MEMORY_MIB", "128"),
    ]
    .map(|(k, v)| (k.to_owned(), v.to_owned()));
    Config::load(
        None,
        env,
        Overrides {
            bind: Some("127.0.0.1:0".into()),
            database_url: Some(url.to_owned()),
            hooks_dir: None,
            lenient_hooks: false,
        },
    )
    .expect("bench config")
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

async fn deploy(
    addr: std::net::SocketAddr,
    tenant: &str,
    name: &str,
    bytes: &[u8],
    manifest: &str,
) -> Duration {
    let boundary = "bench-boundary";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"component\"\r\n\r\n")
            .into_bytes();
    body.extend_from_slice(bytes);
    body.extend_from_slice(
        format!("\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"manifest\"\r\n\r\n{manifest}\r\n--{boundary}--\r\n").as_bytes(),
    );
    let started = Instant::now();
    let response = reqwest::Client::new()
        .put(format!("http://{addr}/t/{tenant}/api/v1/hooks/{name}"))
        .bearer_auth(OPERATOR)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    let took = started.elapsed();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert!(status.is_success(), "deploy {name}: {status} {text}");
    took
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let tenants: usize = std::env::var("TENANT_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 20 } else { 1000 });
    let minimal = shared::guest("minimal");
    let audit = shared::guest("audit-log");
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());

    // 1. Populate (through the store: what the API stores, without validating 3,000 times).
    let populate = Instant::now();
    {
        let app = Application::build(&config(&url), Launch::default())
            .await
            .unwrap();
        let store = app.flows().store.clone();
        let hooks = [
            ("login-a", &minimal, "[\"after_login\"]"),
            ("login-b", &minimal, "[\"after_login\"]"),
            ("audit", &audit, "[\"after_login\",\"after_register\"]"),
        ];
        for i in 0..tenants {
            let tenant = TenantId::parse(&format!("tenant-{i}")).unwrap();
            store.create_tenant(&tenant, 0).await.unwrap();
            for (order, (name, bytes, events)) in hooks.iter().enumerate() {
                store
                    .put_tenant_hook(
                        &NewTenantHook {
                            tenant: &tenant,
                            name,
                            sha256: &hex(&Sha256::digest(bytes.as_slice())),
                            bytes,
                            manifest: "{}",
                            events,
                            gate_points: "[]",
                            order: order as i64,
                            enabled: true,
                            max_hooks: 3,
                        },
                        0,
                    )
                    .await
                    .unwrap();
            }
        }
        store.close().await;
    }
    println!(
        "populated {tenants} tenants x 3 hooks in {}",
        ms(populate.elapsed())
    );

    // 2. Start-up.
    let rss_before = proc_kib("status", "VmRSS:");
    let started = Instant::now();
    let mut app = Application::build(&config(&url), Launch::default())
        .await
        .unwrap();
    app.ready().await.unwrap();
    let startup = started.elapsed();
    let rss_started = proc_kib("status", "VmRSS:");
    println!(
        "start-up (Application::build, {} hooks): {}; RSS {} MiB (process before: {} MiB)",
        tenants * 3,
        ms(startup),
        rss_started / 1024,
        rss_before / 1024
    );
    let registry = app.hooks().expect("ready");

    // 3. First events.
    let t0 = TenantId::parse("tenant-0").unwrap();
    let t1 = TenantId::parse("tenant-1").unwrap();
    let first = registry.handlers_for(&t0, EventKind::AfterLogin);
    assert_eq!(first.len(), 3);
    let timed = async |h: &std::sync::Arc<dyn hookauth::events::EventHandler>, e: &Event| {
        let s = Instant::now();
        h.handle(e).await.unwrap();
        s.elapsed()
    };
    let cold = timed(&first[0], &event(&t0, EventKind::AfterLogin, 1)).await;
    let copy = registry.handlers_for(&t1, EventKind::AfterLogin);
    let shared_code = timed(&copy[0], &event(&t1, EventKind::AfterLogin, 2)).await;
    let warm = timed(&copy[0], &event(&t1, EventKind::AfterLogin, 3)).await;
    println!(
        "first event, lazily loaded hook (compile+link+call): {}; another tenant's copy (shared code: link+call): {}; warm call: {}",
        ms(cold),
        ms(shared_code),
        ms(warm)
    );
    use hookauth::events::HandlerSource;
    let all = Instant::now();
    let mut n = 10;
    for i in 0..tenants {
        let tenant = TenantId::parse(&format!("tenant-{i}")).unwrap();
        for h in registry.handlers_for(&tenant, EventKind::AfterLogin) {
            n += 1;
            h.handle(&event(&tenant, EventKind::AfterLogin, n))
                .await
                .unwrap();
        }
    }
    println!(
        "every hook's first event ({} hooks): {} in all; compiled components in memory: {}; RSS {} MiB",
        tenants * 3,
        ms(all.elapsed()),
        registry.compiled_components(),
        proc_kib("status", "VmRSS:") / 1024
    );

    // 4. Deploys over HTTP.
    let addr = app.local_addr();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async {
        let _ = rx.await;
    }));
    // welcome-email needs a tenant secret named in its manifest.
    let response = reqwest::Client::new()
        .put(format!(
            "http://{addr}/t/tenant-0/api/v1/hook-secrets/mail_key"
        ))
        .bearer_auth(OPERATOR)
        .json(&serde_json::json!({"value": "bench"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let welcome = shared::guest("welcome-email");
    let manifest =
        r#"{"config": {"url": "http://127.0.0.1:9/send"}, "secrets": {"api_key": "mail_key"}}"#;
    let rust_new = deploy(addr, "tenant-0", "welcome", &welcome, manifest).await;
    let rust_again = deploy(addr, "tenant-0", "welcome", &welcome, manifest).await;
    let rust_shared = deploy(addr, "tenant-1", "login-c", &minimal, "{}").await;
    println!(
        "deploy latency, Rust: welcome-email ({} KiB, new code) {}; the same again (replace) {}; minimal to another tenant (code shared) {}",
        welcome.len() / 1024,
        ms(rust_new),
        ms(rust_again),
        ms(rust_shared)
    );
    let langs = std::env::var("TENANT_BENCH_LANGS").unwrap_or_default();
    for lang in langs.split(',').filter(|l| !l.is_empty() && *l != "rust") {
        let (bytes, manifest) = match lang {
            "js" => (
                &build::js_quickjs().bytes,
                r#"{"memory_mib": 64, "config": {"url": "http://127.0.0.1:9/send"}, "secrets": {"api_key": "mail_key"}}"#,
            ),
            "python" => (&build::python().bytes, r#"{"memory_mib": 64}"#),
            other => panic!("unknown language {other}"),
        };
        let took = deploy(addr, "tenant-0", &format!("{lang}-hook"), bytes, manifest).await;
        println!(
            "deploy latency: {lang} ({} KiB): {}",
            bytes.len() / 1024,
            ms(took)
        );
    }
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}
