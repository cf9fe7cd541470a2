//! A tenant admin deploys a gate through the API: its decision points are resolved at deploy,
//! it decides only for its tenant at once (and on another replica after a restart), its
//! budget is held to the ceilings, and its decisions are the tenant's to read.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::*;
use crate::helpers::Backend;
use crate::on_both_backends;
use crate::shared::gate_probe;

on_both_backends!(a_tenant_deploys_a_gate_through_the_api_that_decides_only_for_it);

async fn register(app: &crate::helpers::TestApp, tenant: &str, email: &str) -> (StatusCode, Value) {
    app.tenant(tenant)
        .post(
            "/register",
            json!({"email": email, "password": crate::helpers::PASSWORD}),
        )
        .await
}

async fn a_tenant_deploys_a_gate_through_the_api_that_decides_only_for_it(backend: Backend) {
    let app = spawn(backend.clone(), options(9)).await;
    create_tenant(&app, "acme").await;
    create_tenant(&app, "globex").await;
    let probe = gate_probe();

    // Above the ceiling (tenant_hooks.timeout_ms, 2000 by default): refused, nothing stored.
    let (status, body) = deploy(
        &app,
        "acme",
        "probe",
        Some(OPERATOR),
        &probe,
        Some(json!({ "gate_timeout_ms": 999_999 })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["code"], "limit_above_ceiling", "{body}");

    let (status, body) = deploy(
        &app,
        "acme",
        "probe",
        Some(OPERATOR),
        &probe,
        Some(json!({ "gate_timeout_ms": 2000, "gate_fuel": 20_000_000, "on_error": "deny" })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, hook) = call(
        &app,
        Method::GET,
        "acme",
        "/hooks/probe",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{hook}");
    assert_eq!(
        hook["gate"],
        json!({
            "points": ["before_register", "before_login", "check_password", "token_claims"],
            "fuel": 20_000_000,
            "timeout_ms": 2000,
            "on_error": "deny",
        }),
        "{hook}"
    );

    // At once, for acme only.
    let (status, body) = register(&app, "acme", "deny@example.com").await;
    assert_eq!(
        (status, body["hook_code"].as_str()),
        (StatusCode::FORBIDDEN, Some("no_entry")),
        "{body}"
    );
    let (status, body) = register(&app, "globex", "deny@example.com").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Its decisions are acme's to read, not globex's.
    // The audit is written in batches off the request path: wait for it.
    let mut mine = Vec::new();
    for _ in 0..200 {
        let (status, listed) = call(
            &app,
            Method::GET,
            "acme",
            "/hook-decisions",
            Some(OPERATOR),
            None,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        mine = listed.as_array().unwrap().clone();
        if !mine.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(
        mine.iter()
            .any(|d| d["hook"] == "probe" && d["decision"] == "deny"),
        "{mine:?}"
    );
    let (_, theirs) = call(
        &app,
        Method::GET,
        "globex",
        "/hook-decisions",
        Some(OPERATOR),
        None,
    )
    .await;
    assert!(
        theirs
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["hook"] != "probe"),
        "{theirs}"
    );

    // A restart (another replica) reads the stored decision points: the gate still decides.
    let database = app.database();
    app.stop().await;
    let app = spawn(
        backend,
        crate::helpers::Options {
            database: Some(database),
            ..options(9)
        },
    )
    .await;
    let (status, body) = register(&app, "acme", "deny@again.example.com").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
}
