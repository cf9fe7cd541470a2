//! A tenant hook granted `"*"` (any public host) tries every spelling of loopback and of other
//! internal addresses, with the real welcome-email guest making the request through the host.
//! Names the resolver turns into 127.0.0.1 (`2130706433`, `0177.0.0.1`, `0x7f000001`, ...) get
//! past the pattern and must be stopped by the address check at connect time; IP literals are
//! refused by the pattern. Nothing may reach the listening sink.

use std::time::Duration;

use hookauth::domain::TenantId;
use reqwest::StatusCode;
use serde_json::json;

use super::support::*;
use crate::helpers::{Backend, Options};
use crate::on_both_backends;
use crate::shared::{Sink, guest};

on_both_backends!(no_spelling_of_an_internal_address_gets_a_tenant_hook_through);

/// Hosts that are not IP literals to the pattern but resolve to loopback.
const LOOPBACK_NAMES: [&str; 6] = [
    "2130706433",
    "0177.0.0.1",
    "0x7f000001",
    "127.1",
    "017700000001",
    "localhost",
];

/// IP literals of loopback, "this host", the metadata service and private IPv6 ranges, in the
/// forms that embed an IPv4 address too.
const LITERALS: [&str; 9] = [
    "0.0.0.0",
    "169.254.169.254",
    "[::1]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[::127.0.0.1]",
    "[2002:7f00:1::]",
    "[fd00::1]",
    "[fe80::1]",
];

async fn no_spelling_of_an_internal_address_gets_a_tenant_hook_through(backend: Backend) {
    let sink = Sink::start().await;
    // The control: the same guest may reach another port that the operator listed exactly.
    let control = Sink::start().await;
    let app = spawn(
        backend,
        Options::default()
            .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
            .env(
                "HOOKAUTH_TENANT_HOOKS__ALLOWED_HOSTS",
                &format!("[\"*\", \"127.0.0.1:{}\"]", control.port),
            )
            .env("HOOKAUTH_TENANT_HOOKS__MAX_HOOKS", "20")
            .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "1")
            .env("HOOKAUTH_DELIVERY__BREAKER_FAILURES", "0"),
    )
    .await;
    create_tenant(&app, "acme").await;
    put_secret(&app, "acme", "k", "key").await;
    let component = guest("welcome-email");
    let mut hooks = Vec::new();
    for (i, host) in LOOPBACK_NAMES.iter().chain(LITERALS.iter()).enumerate() {
        let name = format!("probe-{i:02}");
        let manifest = json!({
            "events": ["after_register"],
            "allowed_hosts": ["*"],
            "config": { "url": format!("http://{host}:{}/send", sink.port) },
            "secrets": { "api_key": "k" },
        });
        let (status, body) = deploy(
            &app,
            "acme",
            &name,
            Some(OPERATOR),
            &component,
            Some(manifest),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{host}: {body}");
        hooks.push((name, *host));
    }
    // Another port on the one loopback address the tenant was granted.
    let manifest = json!({
        "events": ["after_register"],
        "allowed_hosts": [format!("127.0.0.1:{}", control.port)],
        "config": { "url": format!("http://127.0.0.1:{}/send", sink.port) },
        "secrets": { "api_key": "k" },
    });
    let (status, body) = deploy(
        &app,
        "acme",
        "other-port",
        Some(OPERATOR),
        &component,
        Some(manifest),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    hooks.push(("other-port".into(), "127.0.0.1 (another port)"));
    let (status, body) = deploy(
        &app,
        "acme",
        "control",
        Some(OPERATOR),
        &component,
        Some(mail_manifest(control.port, "k", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    assert_eq!(
        register(&app, "acme", "probe@example.com").await,
        StatusCode::ACCEPTED
    );
    let acme = TenantId::parse("acme").unwrap();
    let mut states = Vec::new();
    eventually(
        Duration::from_secs(30),
        "every probe to be settled",
        async || {
            states = app.flows.store.delivery_states(Some(&acme)).await.unwrap();
            states.len() == hooks.len() + 1 && states.iter().all(|d| d.status != "pending")
        },
    )
    .await;
    assert_eq!(sink.connections(), 0, "something reached the loopback sink");
    for (name, host) in &hooks {
        let state = states.iter().find(|d| d.hook == *name).unwrap();
        assert_eq!(state.status, "failed", "{host} got through: {state:?}");
        let error = state.last_error.as_deref().unwrap_or_default();
        assert!(
            error.contains("HttpRequestDenied"),
            "{host}: refused by the policy, not by chance: {error}"
        );
    }
    let control_state = states.iter().find(|d| d.hook == "control").unwrap();
    assert_eq!(control_state.status, "delivered", "{control_state:?}");
    assert_eq!(control.received().len(), 1);
}
