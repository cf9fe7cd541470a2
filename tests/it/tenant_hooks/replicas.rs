//! Two servers on one database serve the same tenant hooks: a deploy, replace or removal on one
//! is applied by the other within a second (PostgreSQL: LISTEN/NOTIFY; both: polling).

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::*;
use crate::helpers::{Backend, Options, TestApp, send};
use crate::on_both_backends;
use crate::shared::{Sink, guest};

on_both_backends!(
    replicas_apply_each_other_s_hook_changes,
    a_tenant_deleted_through_one_replica_stops_being_served_by_the_other,
);

async fn api_hooks(app: &TestApp) -> Vec<Value> {
    let (status, list) = call(app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// Waits until `app` lists (from its in-memory registry) what `check` wants. The deadline is
/// a fail-safe for a change that never arrives, not a speed requirement: NOTIFY (PostgreSQL)
/// or the 1 s poll (SQLite) make it sub-second on a quiet machine, and a busy one may take
/// longer; how long it took is printed.
async fn seen(app: &TestApp, what: &str, check: impl Fn(&[Value]) -> bool) {
    let started = Instant::now();
    loop {
        if check(&api_hooks(app).await) {
            eprintln!("{what}: applied after {:?}", started.elapsed());
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{what}: never applied"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn replicas_apply_each_other_s_hook_changes(backend: Backend) {
    // NOTIFY carries changes between replicas on PostgreSQL; on a shared SQLite file the 1 s
    // poll does.
    let sink = Sink::start().await;
    let a = spawn(backend.clone(), options(sink.port)).await;
    let b = spawn(
        backend,
        Options {
            database: Some(a.database()),
            ..options(sink.port)
        },
    )
    .await;
    create_tenant(&a, "acme").await;
    put_secret(&a, "acme", "k", "shared-key").await;

    let (status, body) = deploy(
        &a,
        "acme",
        "mail",
        Some(OPERATOR),
        &guest("welcome-email"),
        Some(mail_manifest(sink.port, "k", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    seen(&b, "the deploy on replica B", |hooks| {
        hooks.iter().any(|h| h["name"] == "mail")
    })
    .await;

    // B delivers with it (whichever replica's dispatcher takes the event).
    assert_eq!(
        register(&b, "acme", "r.acme@example.com").await,
        StatusCode::ACCEPTED
    );
    eventually(Duration::from_secs(10), "the email", async || {
        sink.received().iter().any(|r| {
            r.body["to"] == "r.acme@example.com"
                && r.headers.get("authorization").map(String::as_str) == Some("Bearer shared-key")
        })
    })
    .await;

    // A replace on B reaches A.
    let (status, replaced) = deploy(
        &b,
        "acme",
        "mail",
        Some(OPERATOR),
        &guest("audit-log"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{replaced}");
    let sha = replaced["sha256"].clone();
    seen(&a, "the replace on replica A", |hooks| {
        hooks.iter().any(|h| h["sha256"] == sha)
    })
    .await;

    // A removal on A reaches B.
    let (status, _) = call(
        &a,
        Method::DELETE,
        "acme",
        "/hooks/mail",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    seen(&b, "the removal on replica B", <[Value]>::is_empty).await;
}

async fn a_tenant_deleted_through_one_replica_stops_being_served_by_the_other(backend: Backend) {
    let sink = Sink::start().await;
    let a = spawn(backend.clone(), options(sink.port)).await;
    let b = spawn(
        backend,
        Options {
            database: Some(a.database()),
            ..options(sink.port)
        },
    )
    .await;
    create_tenant(&a, "acme").await;
    // B has served acme, so it knows the tenant exists.
    assert_eq!(
        register(&b, "acme", "first.acme@example.com").await,
        StatusCode::ACCEPTED
    );
    let (status, body) = call(
        &a,
        Method::DELETE,
        "default",
        "/tenants/acme",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let started = Instant::now();
    loop {
        let (status, body) = send(
            b.http(),
            Method::POST,
            format!("http://{}/t/acme/api/v1/auth/login", b.addr),
            None,
            Some(json!({"email": "first.acme@example.com", "password": crate::helpers::PASSWORD})),
        )
        .await;
        if status == StatusCode::NOT_FOUND {
            assert_eq!(body["code"], "unknown_tenant");
            break;
        }
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
        assert!(
            // A fail-safe: replicas re-check their tenants every 5 s.
            started.elapsed() < Duration::from_secs(30),
            "replica B still serves the deleted tenant: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
