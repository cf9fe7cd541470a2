//! Tenant hooks receiving events: each tenant its own, platform hooks first, then the tenant's
//! file-deployed hooks, then its API-deployed ones; a hot swap under load loses nothing; tenant
//! hooks never reach internal addresses; their failures are the tenant's to see and replay.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hookauth::domain::TenantId;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::*;
use crate::helpers::{Backend, Options, TestApp};
use crate::on_both_backends;
use crate::shared::{Sink, guest};

on_both_backends!(
    tenants_get_their_own_hooks_after_the_platform_s_in_order,
    a_hot_swap_under_load_hands_every_event_to_exactly_one_version,
    tenant_hooks_never_reach_internal_addresses_and_see_their_failures,
    a_tenant_s_hooks_toml_names_tenant_secrets_never_the_environment,
);

fn authorizations(sink: &Sink, to: &str) -> Vec<String> {
    sink.received()
        .iter()
        .filter(|r| r.body["to"] == to)
        .map(|r| r.headers.get("authorization").cloned().unwrap_or_default())
        .collect()
}

async fn tenants_get_their_own_hooks_after_the_platform_s_in_order(backend: Backend) {
    let sink = Sink::start().await;
    let port = sink.port;
    // First start: tenants and their secrets (file-deployed hooks read them at start).
    let first = spawn(backend.clone(), options(port)).await;
    create_tenant(&first, "acme").await;
    create_tenant(&first, "globex").await;
    put_secret(&first, "acme", "file_key", "acme-file").await;
    put_secret(&first, "acme", "api_key", "acme-api").await;
    put_secret(&first, "globex", "api_key", "globex-api").await;
    let database = first.database();
    first.stop().await;

    let dir = tempfile::tempdir().unwrap();
    let mail = |secret_line: &str| {
        format!(
            "allowed_hosts = [\"127.0.0.1:{port}\"]\nconfig = {{ url = \"http://127.0.0.1:{port}/send\" }}\n{secret_line}\nevents = [\"after_register\"]\n"
        )
    };
    std::fs::write(dir.path().join("welcome.wasm"), guest("welcome-email")).unwrap();
    std::fs::write(
        dir.path().join("hooks.toml"),
        format!(
            "[hooks.welcome]\ntenants = [\"acme\"]\n{}",
            mail("secrets = { api_key = \"PLATFORM_KEY\" }")
        ),
    )
    .unwrap();
    let acme_dir = dir.path().join("tenants/acme");
    std::fs::create_dir_all(&acme_dir).unwrap();
    std::fs::write(acme_dir.join("filemail.wasm"), guest("welcome-email")).unwrap();
    std::fs::write(
        acme_dir.join("hooks.toml"),
        format!(
            "[hooks.filemail]\n{}",
            mail("secrets = { api_key = \"file_key\" }")
        ),
    )
    .unwrap();

    let options = Options {
        database: Some(database),
        hook_env: Some(HashMap::from([(
            "PLATFORM_KEY".to_owned(),
            "platform".to_owned(),
        )])),
        ..options(port).env("HOOKAUTH_HOOKS__DIR", dir.path().to_str().unwrap())
    };
    let app = spawn(backend, options).await;
    // API hooks: two for acme (order decides, then name), one for globex.
    let component = guest("welcome-email");
    for (tenant, name, order) in [
        ("acme", "zz-api", -5),
        ("acme", "aa-api", 10),
        ("globex", "mail", 0),
    ] {
        let manifest = mail_manifest(port, "api_key", json!({ "order": order }));
        let (status, body) = deploy(
            &app,
            tenant,
            name,
            Some(OPERATOR),
            &component,
            Some(manifest),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    // A tenant hook cannot take the platform hook's name.
    let (status, body) = deploy(&app, "acme", "welcome", Some(OPERATOR), &component, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("name_taken"))
    );

    let (got, list) = call(&app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    assert_eq!(got, StatusCode::OK, "{list}");
    let listed: Vec<(String, String)> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["source"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("welcome", "platform"),
        ("filemail", "file"),
        ("zz-api", "api"),
        ("aa-api", "api"),
    ];
    assert_eq!(listed, expected.map(|(a, b)| (a.to_owned(), b.to_owned())));

    assert_eq!(
        register(&app, "acme", "a.acme@example.com").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        register(&app, "globex", "g.globex@example.com").await,
        StatusCode::ACCEPTED
    );
    assert_eq!(
        register(&app, "default", "d.default@example.com").await,
        StatusCode::ACCEPTED
    );
    eventually(Duration::from_secs(15), "every email", async || {
        authorizations(&sink, "a.acme@example.com").len() == 4
            && authorizations(&sink, "g.globex@example.com").len() == 1
    })
    .await;
    // Settled: every delivery finished, so no email can still arrive twice.
    app.settle_tenants(&["acme", "globex", "default"].map(|t| TenantId::parse(t).unwrap()))
        .await;
    // Every hook got the event once; they run independently, so arrival order is not theirs
    // to keep: the order is the one deliveries were created in (platform, file, API by order).
    let mut arrived = authorizations(&sink, "a.acme@example.com");
    arrived.sort();
    assert_eq!(
        arrived,
        [
            "Bearer acme-api",
            "Bearer acme-api",
            "Bearer acme-file",
            "Bearer platform",
        ]
    );
    let acme = hookauth::domain::TenantId::parse("acme").unwrap();
    let deliveries = app.flows.store.delivery_states(Some(&acme)).await.unwrap();
    let first_event = deliveries[0].event_id.clone();
    let created: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.event_id == first_event)
        .map(|d| d.hook.as_str())
        .collect();
    assert_eq!(created, ["welcome", "filemail", "zz-api", "aa-api"]);
    // globex: its own hook only (the platform hook is narrowed to acme); default: none.
    assert_eq!(
        authorizations(&sink, "g.globex@example.com"),
        ["Bearer globex-api"]
    );
    assert!(authorizations(&sink, "d.default@example.com").is_empty());
    // The order inside acme's API group: zz-api (order -5) before aa-api (order 10) is only
    // visible in the journal of names; both use the same key, so check the listing above.
}

async fn a_hot_swap_under_load_hands_every_event_to_exactly_one_version(backend: Backend) {
    let sink = Sink::start().await;
    let app = Arc::new(spawn(backend, options(sink.port)).await);
    create_tenant(&app, "acme").await;
    put_secret(&app, "acme", "v1", "version-1").await;
    put_secret(&app, "acme", "v2", "version-2").await;
    let component = guest("welcome-email");
    let (status, body) = deploy(
        &app,
        "acme",
        "mail",
        Some(OPERATOR),
        &component,
        Some(mail_manifest(sink.port, "v1", json!({}))),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Registrations keep coming while the hook is replaced.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let app = Arc::clone(&app);
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let mut started = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let email = format!("user{i}.acme@example.com");
                let at = Instant::now();
                assert_eq!(register(&app, "acme", &email).await, StatusCode::ACCEPTED);
                started.push((email, at));
                i += 1;
            }
            started
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    let (status, body) = deploy(
        &app,
        "acme",
        "mail",
        Some(OPERATOR),
        &component,
        Some(mail_manifest(sink.port, "v2", json!({}))),
    )
    .await;
    let swapped_at = Instant::now();
    assert_eq!(status, StatusCode::OK, "{body}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, Ordering::Relaxed);
    let started = load.await.unwrap();
    assert!(started.len() >= 4, "too little load: {}", started.len());

    eventually(
        Duration::from_secs(20),
        "every registration's email",
        async || {
            started
                .iter()
                .all(|(email, _)| !authorizations(&sink, email).is_empty())
        },
    )
    .await;
    // Settled: every delivery finished, so no registration can still be handled twice.
    app.settle_tenants(&[TenantId::parse("acme").unwrap()])
        .await;
    let (mut old, mut new) = (0, 0);
    for (email, at) in &started {
        let auth = authorizations(&sink, email);
        assert_eq!(
            auth.len(),
            1,
            "{email} handled {} times: {auth:?}",
            auth.len()
        );
        match auth[0].as_str() {
            "Bearer version-1" => {
                assert!(
                    *at < swapped_at,
                    "{email} registered after the swap, handled by v1"
                );
                old += 1;
            }
            "Bearer version-2" => new += 1,
            other => panic!("{email}: {other}"),
        }
    }
    assert!(old > 0 && new > 0, "old {old}, new {new}");
}

async fn tenant_hooks_never_reach_internal_addresses_and_see_their_failures(backend: Backend) {
    let sink = Sink::start().await;
    let app: TestApp = spawn(
        backend,
        Options::default()
            .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
            .env("HOOKAUTH_TENANT_HOOKS__ALLOWED_HOSTS", "[\"*\"]")
            .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "1"),
    )
    .await;
    create_tenant(&app, "acme").await;
    create_tenant(&app, "globex").await;
    put_secret(&app, "acme", "k", "key").await;
    // "*" never grants an address: listing the sink's address is refused at deploy...
    let (status, body) = deploy(
        &app,
        "acme",
        "mail",
        Some(OPERATOR),
        &guest("welcome-email"),
        Some(mail_manifest(sink.port, "k", json!({}))),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("host_not_allowed")),
        "{body}"
    );
    // ...and a name that resolves to loopback is refused when the hook connects.
    let manifest = json!({
        "events": ["after_register"],
        "allowed_hosts": ["*"],
        "config": { "url": format!("http://localhost:{}/send", sink.port) },
        "secrets": { "api_key": "k" },
    });
    let (status, body) = deploy(
        &app,
        "acme",
        "mail",
        Some(OPERATOR),
        &guest("welcome-email"),
        Some(manifest),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        register(&app, "acme", "x.acme@example.com").await,
        StatusCode::ACCEPTED
    );

    let mut failures = serde_json::Value::Null;
    eventually(Duration::from_secs(10), "the failure", async || {
        failures = call(
            &app,
            Method::GET,
            "acme",
            "/hook-failures",
            Some(OPERATOR),
            None,
        )
        .await
        .1;
        failures.as_array().is_some_and(|f| !f.is_empty())
    })
    .await;
    assert_eq!(sink.connections(), 0, "nothing reached the loopback sink");
    assert_eq!(failures[0]["failed_hooks"], json!(["mail"]), "{failures}");
    assert_eq!(failures[0]["kind"], "after_register");
    // Another tenant sees none of it, and cannot replay it.
    let (got, theirs) = call(
        &app,
        Method::GET,
        "globex",
        "/hook-failures",
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(got, StatusCode::OK, "{theirs}");
    assert_eq!(theirs, json!([]));
    let id = failures[0]["id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        Method::POST,
        "globex",
        &format!("/hook-failures/{id}/replay"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = call(
        &app,
        Method::POST,
        "acme",
        &format!("/hook-failures/{id}/replay"),
        Some(OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn a_tenant_s_hooks_toml_names_tenant_secrets_never_the_environment(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let acme = dir.path().join("tenants/acme");
    std::fs::create_dir_all(&acme).unwrap();
    std::fs::write(acme.join("mail.wasm"), guest("welcome-email")).unwrap();
    std::fs::write(
        acme.join("hooks.toml"),
        "[hooks.mail]\nconfig = { url = \"http://127.0.0.1:9/send\" }\n\
         secrets = { api_key = \"PLATFORM_KEY\" }\n",
    )
    .unwrap();
    let options = Options {
        hook_env: Some(HashMap::from([(
            "PLATFORM_KEY".to_owned(),
            "platform".to_owned(),
        )])),
        ..Options::default().env("HOOKAUTH_HOOKS__DIR", dir.path().to_str().unwrap())
    };
    let err = match TestApp::try_spawn(backend, options).await {
        Ok(_) => panic!("a tenant hook read the operator's environment"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("tenants/acme/mail.wasm") && err.contains("tenant secret PLATFORM_KEY"),
        "{err}"
    );
}
