//! The management API: deploy (multipart), list, show, patch, delete; every refused upload is
//! a 422 with its code and changes nothing; secrets are write-only and never the environment.

use std::collections::HashMap;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::*;
use crate::helpers::{Backend, Options};
use crate::on_both_backends;
use crate::shared::{Sink, fixture, guest};

on_both_backends!(
    a_tenant_admin_deploys_replaces_patches_and_removes_a_hook,
    bad_uploads_are_refused_with_a_code_and_change_nothing,
    secrets_are_write_only_and_never_the_environment,
);

async fn a_tenant_admin_deploys_replaces_patches_and_removes_a_hook(backend: Backend) {
    let sink = Sink::start().await;
    let app = spawn(backend, options(sink.port)).await;
    create_tenant(&app, "acme").await;
    put_secret(&app, "acme", "mail_key", "acme-key").await;
    let admin = superuser(&app, "acme", "admin.acme@example.com").await;
    let component = guest("welcome-email");

    let manifest = mail_manifest(sink.port, "mail_key", json!({}));
    let (status, hook) = deploy(
        &app,
        "acme",
        "welcome",
        Some(&admin),
        &component,
        Some(manifest.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert_eq!(hook["name"], "welcome");
    assert_eq!(hook["source"], "api");
    assert_eq!(hook["events"], json!(["after_register"]));
    assert_eq!(hook["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(hook["enabled"], true);

    // The same PUT again replaces: 200.
    let (status, again) = deploy(
        &app,
        "acme",
        "welcome",
        Some(&admin),
        &component,
        Some(manifest),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["sha256"], hook["sha256"]);

    let (status, list) = call(&app, Method::GET, "acme", "/hooks", Some(&admin), None).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["welcome"]);

    // The hook runs for acme's registrations, with acme's secret.
    assert_eq!(
        register(&app, "acme", "new.acme@example.com").await,
        StatusCode::ACCEPTED
    );
    eventually(
        std::time::Duration::from_secs(10),
        "the welcome email",
        async || {
            sink.received()
                .iter()
                .any(|r| r.body["to"] == "new.acme@example.com")
        },
    )
    .await;
    let sent = sink.received();
    let mail = sent
        .iter()
        .find(|r| r.body["to"] == "new.acme@example.com")
        .unwrap();
    assert_eq!(mail.headers["authorization"], "Bearer acme-key");

    let (status, patched) = call(
        &app,
        Method::PATCH,
        "acme",
        "/hooks/welcome",
        Some(&admin),
        Some(json!({"enabled": false, "order": 5, "limits": {"timeout_ms": 500}})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["enabled"], false);
    assert_eq!(patched["order"], 5);
    assert_eq!(patched["limits"]["timeout_ms"], 500);
    let (status, body) = call(
        &app,
        Method::PATCH,
        "acme",
        "/hooks/welcome",
        Some(&admin),
        Some(json!({"limits": {"timeout_ms": 999_999}})),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "limit_above_ceiling");

    // Disabled: registrations no longer reach the sink.
    let acme = hookauth::domain::TenantId::parse("acme").unwrap();
    let welcome_deliveries = async || {
        let deliveries = app.settle_tenants(std::slice::from_ref(&acme)).await;
        deliveries.iter().filter(|d| d.hook == "welcome").count()
    };
    let welcomes = welcome_deliveries().await;
    let before = sink.received().len();
    assert_eq!(
        register(&app, "acme", "quiet.acme@example.com").await,
        StatusCode::ACCEPTED
    );
    // Settled: the event was fanned out and every delivery finished; the disabled hook got
    // no delivery, so nothing can still reach the sink.
    assert_eq!(welcome_deliveries().await, welcomes);
    assert_eq!(sink.received().len(), before);

    let (status, _) = call(
        &app,
        Method::DELETE,
        "acme",
        "/hooks/welcome",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Method::GET,
        "acme",
        "/hooks/welcome",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &app,
        Method::DELETE,
        "acme",
        "/hooks/welcome",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn bad_uploads_are_refused_with_a_code_and_change_nothing(backend: Backend) {
    let sink = Sink::start().await;
    let platform = tempfile::tempdir().unwrap();
    std::fs::write(platform.path().join("audit.wasm"), guest("audit-log")).unwrap();
    let app = spawn(
        backend,
        options(sink.port)
            .env("HOOKAUTH_HOOKS__DIR", platform.path().to_str().unwrap())
            .env("HOOKAUTH_TENANT_HOOKS__MAX_HOOKS", "1")
            .env("HOOKAUTH_TENANT_HOOKS__MAX_COMPONENT_MIB", "1")
            .env("HOOKAUTH_TENANT_HOOKS__FUEL", "1000000"),
    )
    .await;
    create_tenant(&app, "acme").await;
    let good = guest("minimal");
    let (status, first) = deploy(&app, "acme", "first", Some(OPERATOR), &good, None).await;
    assert_eq!(status, StatusCode::CREATED, "{first}");

    let big = vec![0u8; (1 << 20) + 10];
    let cases: Vec<(&str, &str, Vec<u8>, Option<Value>)> = vec![
        (
            "first",
            "not_a_component",
            b"definitely not wasm".to_vec(),
            None,
        ),
        (
            "first",
            "not_a_component",
            wat::parse_str("(module)").unwrap(),
            None,
        ),
        (
            "first",
            "wrong_world",
            wat::parse_str("(component)").unwrap(),
            None,
        ),
        (
            "first",
            "forbidden_import",
            fixture("forbidden-imports"),
            None,
        ),
        (
            "first",
            "unknown_manifest_key",
            good.clone(),
            Some(json!({"feul": 1})),
        ),
        (
            "first",
            "limit_above_ceiling",
            good.clone(),
            Some(json!({"fuel": 1_000_001})),
        ),
        (
            "first",
            "host_not_allowed",
            good.clone(),
            Some(json!({"allowed_hosts": ["evil.example"]})),
        ),
        (
            "first",
            "unknown_event",
            good.clone(),
            Some(json!({"events": ["after_lunch"]})),
        ),
        (
            "first",
            "event_not_subscribed",
            good.clone(),
            Some(json!({"events": ["after_register"]})),
        ),
        ("first", "component_too_large", big, None),
        ("second", "too_many_hooks", good.clone(), None),
        ("Bad_Name", "invalid_name", good.clone(), None),
        ("audit", "name_taken", good.clone(), None),
    ];
    for (name, code, bytes, manifest) in cases {
        let (status, body) = deploy(&app, "acme", name, Some(OPERATOR), &bytes, manifest).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{code}: {body}");
        assert_eq!(body["code"], code, "{body}");
    }
    // A manifest that is not JSON, and a request that is not multipart.
    let (status, body) = deploy(
        &app,
        "acme",
        "first",
        Some(OPERATOR),
        &good,
        Some(json!("[1")),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_manifest"))
    );
    let (status, body) = call(
        &app,
        Method::PUT,
        "acme",
        "/hooks/first",
        Some(OPERATOR),
        Some(json!({})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_multipart"))
    );

    // Nothing changed: the one hook, as first deployed.
    let (got, list) = call(&app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    assert_eq!(got, StatusCode::OK, "{list}");
    let api: Vec<&Value> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["source"] == "api")
        .collect();
    assert_eq!(api.len(), 1, "{list}");
    assert_eq!(api[0]["sha256"], first["sha256"]);
    assert_eq!(api[0]["updated_at"], first["updated_at"]);
    // The platform hook is listed by name and events only.
    let audit = list
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["source"] == "platform")
        .unwrap();
    assert_eq!(audit["name"], "audit");
    assert!(
        audit.get("sha256").is_none() && audit.get("limits").is_none(),
        "{audit}"
    );
}

async fn secrets_are_write_only_and_never_the_environment(backend: Backend) {
    let sink = Sink::start().await;
    let options = Options {
        hook_env: Some(HashMap::from([(
            "PLATFORM_KEY".to_owned(),
            "platform-secret".to_owned(),
        )])),
        ..options(sink.port)
    };
    let app = spawn(backend, options).await;
    create_tenant(&app, "acme").await;
    let admin = superuser(&app, "acme", "admin.acme@example.com").await;
    put_secret(&app, "acme", "mail_key", "value-never-shown").await;

    let (status, names) = call(
        &app,
        Method::GET,
        "acme",
        "/hook-secrets",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names[0]["key"], "mail_key");
    assert!(!names.to_string().contains("value-never-shown"), "{names}");

    // A manifest naming the operator's environment variable (or any variable) gets nothing:
    // tenant manifests name tenant secrets only.
    for var in ["PLATFORM_KEY", "HOME", "HOOKAUTH_SECRET_KEY"] {
        let (status, body) = deploy(
            &app,
            "acme",
            "welcome",
            Some(&admin),
            &guest("welcome-email"),
            Some(mail_manifest(sink.port, var, json!({}))),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(body["code"], "unknown_secret", "{body}");
    }
    let (status, hook) = deploy(
        &app,
        "acme",
        "welcome",
        Some(&admin),
        &guest("welcome-email"),
        Some(mail_manifest(sink.port, "mail_key", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{hook}");
    assert!(!hook.to_string().contains("value-never-shown"), "{hook}");
    let (got, list) = call(&app, Method::GET, "acme", "/hooks", Some(&admin), None).await;
    assert_eq!(got, StatusCode::OK, "{list}");
    assert!(!list.to_string().contains("value-never-shown"), "{list}");
    // Stored sealed: the value's bytes are nowhere in the database's secrets table.
    let names = app
        .flows
        .store
        .hook_secret_names(&hookauth::domain::TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    assert_eq!(names.len(), 1);
    let sealed = app
        .flows
        .store
        .sealed_hook_secrets(&hookauth::domain::TenantId::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(!sealed[0].1.windows(17).any(|w| w == b"value-never-shown"));

    // The hook does read the tenant's value.
    assert_eq!(
        register(&app, "acme", "s.acme@example.com").await,
        StatusCode::ACCEPTED
    );
    eventually(
        std::time::Duration::from_secs(10),
        "the email",
        async || {
            sink.received().iter().any(|r| {
                r.headers.get("authorization").map(String::as_str)
                    == Some("Bearer value-never-shown")
            })
        },
    )
    .await;

    // Bad keys and bodies.
    let (status, body) = call(
        &app,
        Method::PUT,
        "acme",
        "/hook-secrets/bad-key!",
        Some(&admin),
        Some(json!({"value": "x"})),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_secret_key"))
    );
    let (status, _) = call(
        &app,
        Method::DELETE,
        "acme",
        "/hook-secrets/mail_key",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = call(
        &app,
        Method::DELETE,
        "acme",
        "/hook-secrets/mail_key",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
