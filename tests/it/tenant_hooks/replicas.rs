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
    replicas_apply_each_other_s_hook_changes_within_a_second,
    a_tenant_deleted_through_one_replica_is_gone_from_the_other_within_seconds,
);

async fn api_hooks(app: &TestApp) -> Vec<Value> {
    let (status, list) = call(app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().unwrap().clone()
}

/// How long until `app` lists what `check` wants.
async fn seen_within(app: &TestApp, check: impl Fn(&[Value]) -> bool) -> Duration {
    let started = Instant::now();
    loop {
        if check(&api_hooks(app).await) {
            return started.elapsed();
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never applied");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn replicas_apply_each_other_s_hook_changes_within_a_second(backend: Backend) {
    // NOTIFY makes PostgreSQL immediate; on a shared SQLite file the 1 s poll is the path.
    let bound = match backend {
        Backend::Postgres(_) => Duration::from_secs(1),
        Backend::Sqlite => Duration::from_millis(1500),
    };
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
    let took = seen_within(&b, |hooks| hooks.iter().any(|h| h["name"] == "mail")).await;
    assert!(took <= bound, "replica B applied the deploy after {took:?}");

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
    let took = seen_within(&a, |hooks| hooks.iter().any(|h| h["sha256"] == sha)).await;
    assert!(
        took <= bound,
        "replica A applied the replace after {took:?}"
    );

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
    let took = seen_within(&b, |hooks| hooks.is_empty()).await;
    assert!(
        took <= bound,
        "replica B applied the removal after {took:?}"
    );
}

async fn a_tenant_deleted_through_one_replica_is_gone_from_the_other_within_seconds(
    backend: Backend,
) {
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
            started.elapsed() < Duration::from_secs(8),
            "replica B still serves the deleted tenant: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
