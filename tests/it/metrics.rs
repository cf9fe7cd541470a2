//! `/metrics` and `{T}/monitor`: exact values after known traffic (each server counts only its
//! own), who may read them, the metrics-only listener, and gauges read from the outbox.

use hookauth::domain::TenantId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_unauthorized};
use crate::on_both_backends;
use crate::tenant_hooks::support::{
    OPERATOR, call, create_tenant, deploy, register, spawn, superuser,
};

on_both_backends!(
    metrics_count_requests_hooks_and_deliveries_after_known_traffic,
    rate_limit_refusals_and_lockouts_are_counted,
    outbox_gauges_report_what_waits_and_for_how_long,
    the_metrics_listener_serves_only_metrics_without_a_token,
    the_monitor_shows_a_tenants_own_hooks_to_its_admins_only,
);

fn options() -> Options {
    Options::default()
        .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
        .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "2")
}

/// `/metrics` with `token`: status and text.
async fn scrape(app: &TestApp, token: Option<&str>) -> (StatusCode, String, String) {
    let mut request = app.http().get(format!("http://{}/metrics", app.addr));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

/// The value of the sample `series` (name and labels exactly as exposed), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix(series)?.strip_prefix(' ')?;
        Some(value.parse().unwrap())
    })
}

fn expect(text: &str, series: &str, value: f64) {
    assert_eq!(sample(text, series), Some(value), "{series} in\n{text}");
}

async fn two_hooks_in_acme(app: &TestApp) {
    create_tenant(app, "acme").await;
    let fixture = crate::shared::fixture;
    let (status, body) = deploy(
        app,
        "acme",
        "ok-hook",
        Some(OPERATOR),
        &fixture("log-ok"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = deploy(
        app,
        "acme",
        "failing",
        Some(OPERATOR),
        &fixture("guest-error"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn metrics_count_requests_hooks_and_deliveries_after_known_traffic(backend: Backend) {
    let app = spawn(backend, options()).await;
    two_hooks_in_acme(&app).await;
    for email in ["one@example.com", "two@example.com"] {
        assert_eq!(register(&app, "acme", email).await, StatusCode::ACCEPTED);
    }
    app.settle_tenants(&[TenantId::parse("acme").unwrap()])
        .await;
    let (status, _) = app
        .request(Method::GET, "/../../no/such/route", None, None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, content_type, text) = scrape(&app, Some(OPERATOR)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    let http = |method: &str, route: &str, code: u16| {
        format!(
            r#"hookauth_http_requests_total{{method="{method}",route="{route}",status="{code}"}}"#
        )
    };
    expect(
        &text,
        &http("POST", "/t/{tenant}/api/v1/auth/register", 202),
        2.0,
    );
    expect(
        &text,
        &http("PUT", "/t/{tenant}/api/v1/hooks/{name}", 201),
        2.0,
    );
    expect(&text, &http("POST", "/api/v1/tenants", 201), 1.0);
    // A path nobody routes is one series, whatever the client typed.
    expect(&text, &http("GET", "unmatched", 404), 1.0);
    assert!(!text.contains("no/such"), "{text}");
    expect(
        &text,
        r#"hookauth_http_request_duration_seconds_count{method="POST",route="/t/{tenant}/api/v1/auth/register"}"#,
        2.0,
    );

    let hook = |name: &str| format!(r#"tenant="acme",hook="{name}",event="after_register""#);
    let ok = hook("ok-hook");
    let failing = hook("failing");
    expect(
        &text,
        &format!(r#"hookauth_hook_invocations_total{{{ok},outcome="ok"}}"#),
        2.0,
    );
    // Two events, two attempts each (max_attempts = 2): one retry and one give-up per event.
    expect(
        &text,
        &format!(r#"hookauth_hook_invocations_total{{{failing},outcome="guest_error"}}"#),
        4.0,
    );
    assert_eq!(
        sample(
            &text,
            &format!(r#"hookauth_hook_invocations_total{{{ok},outcome="guest_error"}}"#)
        ),
        None
    );
    expect(
        &text,
        &format!("hookauth_hook_duration_seconds_count{{{ok}}}"),
        2.0,
    );
    expect(
        &text,
        &format!("hookauth_hook_fuel_consumed_count{{{failing}}}"),
        4.0,
    );
    let fuel = sample(&text, &format!("hookauth_hook_fuel_consumed_sum{{{ok}}}")).unwrap();
    assert!(fuel > 0.0, "a hook that ran consumed fuel: {fuel}");
    expect(&text, &format!("hookauth_deliveries_total{{{ok}}}"), 2.0);
    expect(
        &text,
        &format!("hookauth_delivery_retries_total{{{failing}}}"),
        2.0,
    );
    expect(
        &text,
        &format!("hookauth_delivery_failures_total{{{failing}}}"),
        2.0,
    );
    assert_eq!(
        sample(&text, &format!("hookauth_deliveries_total{{{failing}}}")),
        None
    );
    // Settled: nothing waits.
    assert_eq!(
        sample(&text, r#"hookauth_outbox_pending{tenant="acme"}"#),
        None
    );

    // Only the operator reads it.
    let (status, _, body) = scrape(&app, None).await;
    assert_unauthorized(status, &serde_json::from_str(&body).unwrap());
    let (status, _, body) = scrape(&app, Some("operator-token-0123456789abcdef0123456780")).await;
    assert_unauthorized(status, &serde_json::from_str(&body).unwrap());
    let user = superuser(&app, "acme", "boss@example.com").await;
    let (status, _, _) = scrape(&app, Some(&user)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn rate_limit_refusals_and_lockouts_are_counted(backend: Backend) {
    let app = spawn(
        backend,
        options()
            .env("HOOKAUTH_RATE_LIMIT__ENABLED", "true")
            .env("HOOKAUTH_RATE_LIMIT__LIMITS__LOGIN", "6"),
    )
    .await;
    app.register("locked@example.com").await;
    let wrong = json!({"email": "locked@example.com", "password": "wrong-password"});
    // Five failures lock the account (the default policy); the sixth attempt is refused as
    // locked; the seventh by the rate limit.
    for _ in 0..6 {
        let (status, _) = app.post("/login", wrong.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _) = app.post("/login", wrong.clone()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (_, _, text) = scrape(&app, Some(OPERATOR)).await;
    expect(&text, r#"hookauth_lockouts_total{tenant="default"}"#, 1.0);
    expect(&text, r#"hookauth_rate_limited_total{route="login"}"#, 1.0);
    expect(
        &text,
        r#"hookauth_http_requests_total{method="POST",route="/api/v1/auth/login",status="429"}"#,
        1.0,
    );
    app.stop().await;
}

async fn outbox_gauges_report_what_waits_and_for_how_long(backend: Backend) {
    // Nothing delivers: every committed event waits in the outbox.
    let app = spawn(
        backend,
        Options {
            deliver_events: false,
            ..options()
        },
    )
    .await;
    for email in ["a@example.com", "b@example.com", "c@example.com"] {
        assert_eq!(app.register(email).await, StatusCode::ACCEPTED);
    }
    let waiting = app.stored_events().await.len();
    assert!(waiting >= 3, "{waiting}");
    app.shift_clock(90_000);
    let (_, _, text) = scrape(&app, Some(OPERATOR)).await;
    expect(
        &text,
        r#"hookauth_outbox_pending{tenant="default"}"#,
        waiting as f64,
    );
    let lag = sample(
        &text,
        r#"hookauth_outbox_oldest_pending_seconds{tenant="default"}"#,
    )
    .unwrap();
    assert!((90.0..150.0).contains(&lag), "lag {lag}");
    let (status, monitor) = call(
        &app,
        Method::GET,
        "default",
        "/monitor",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{monitor}");
    assert_eq!(monitor["outbox"]["pending"], json!(waiting));
    assert!(
        monitor["outbox"]["oldest_pending_seconds"]
            .as_f64()
            .unwrap()
            >= 90.0
    );
    app.stop().await;
}

async fn the_metrics_listener_serves_only_metrics_without_a_token(backend: Backend) {
    let app = spawn(
        backend,
        options().env("HOOKAUTH_METRICS__BIND", "127.0.0.1:0"),
    )
    .await;
    let addr = app.metrics_addr.expect("a metrics listener");
    assert_ne!(addr, app.addr);
    assert_eq!(app.register("m@example.com").await, StatusCode::ACCEPTED);
    let response = app
        .http()
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();
    expect(
        &text,
        r#"hookauth_http_requests_total{method="POST",route="/api/v1/auth/register",status="202"}"#,
        1.0,
    );
    // Nothing else is served there...
    let response = app
        .http()
        .post(format!("http://{addr}/api/v1/auth/login"))
        .json(&json!({"email": "m@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    // ...and the main address still wants the token.
    let (status, _, _) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

async fn the_monitor_shows_a_tenants_own_hooks_to_its_admins_only(backend: Backend) {
    let app = spawn(backend, options()).await;
    two_hooks_in_acme(&app).await;
    create_tenant(&app, "beta").await;
    let (status, body) = deploy(
        &app,
        "beta",
        "beta-hook",
        Some(OPERATOR),
        &crate::shared::fixture("log-ok"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (tenant, email) in [("acme", "x@example.com"), ("beta", "y@example.com")] {
        assert_eq!(register(&app, tenant, email).await, StatusCode::ACCEPTED);
    }
    app.settle_tenants(&[
        TenantId::parse("acme").unwrap(),
        TenantId::parse("beta").unwrap(),
    ])
    .await;
    let acme_admin = superuser(&app, "acme", "acme-admin@example.com").await;
    let beta_admin = superuser(&app, "beta", "beta-admin@example.com").await;
    let (status, monitor) = call(
        &app,
        Method::GET,
        "acme",
        "/monitor",
        Some(&acme_admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{monitor}");
    assert_eq!(monitor["tenant"], "acme");
    assert_eq!(
        monitor["outbox"],
        json!({"pending": 0, "oldest_pending_seconds": 0.0})
    );
    let hooks = monitor["hooks"].as_array().unwrap();
    let names: Vec<&str> = hooks.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["failing", "ok-hook"], "{monitor}");
    let by_name = |name: &str| -> &Value { hooks.iter().find(|h| h["name"] == name).unwrap() };
    // The registration call at deploy, then one event (two attempts for the failing hook;
    // the superusers' own registrations come after the settle).
    let ok = by_name("ok-hook");
    let handled: Vec<&Value> = ok["recent"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["event"] == "after_register")
        .collect();
    assert_eq!(handled.len(), 1, "{ok}");
    assert_eq!(handled[0]["outcome"], "ok");
    assert!(ok["p50_ms"].as_f64().is_some());
    let failing = by_name("failing");
    assert_eq!(failing["failures"], 2, "{failing}");
    // Another tenant's admin sees nothing of acme.
    let (status, body) = call(
        &app,
        Method::GET,
        "acme",
        "/monitor",
        Some(&beta_admin),
        None,
    )
    .await;
    assert_unauthorized(status, &body);
    let (status, body) = call(&app, Method::GET, "acme", "/monitor", None, None).await;
    assert_unauthorized(status, &body);
    let (status, beta) = call(
        &app,
        Method::GET,
        "beta",
        "/monitor",
        Some(&beta_admin),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{beta}");
    let names: Vec<&str> = beta["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["beta-hook"]);
    app.stop().await;
}
