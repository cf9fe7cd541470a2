//! Wasm hooks in the running server: real guests from guest-examples/ and hostile WAT fixtures
//! in a hooks directory, events fired through the HTTP API.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use hookauth::domain::EventKind;
use reqwest::StatusCode;

use crate::helpers::{Backend, Options, TestApp};
use crate::on_both_backends;
use crate::shared::{Sink, fixture, guest};

on_both_backends!(
    hooks_fire_in_order_and_misbehaving_hooks_change_nothing,
    an_invalid_hook_stops_the_start_unless_lenient,
    a_recorded_event_replays_against_a_new_build_without_redelivery,
);

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// Two welcome-email hooks (told apart by their API keys) around every kind of hostile guest.
fn hooks_dir(sink_port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "10-audit.wasm", &guest("audit-log"));
    write(d, "20-welcome.wasm", &guest("welcome-email"));
    write(d, "30-loop.wasm", &fixture("infinite-loop"));
    write(d, "40-bomb.wasm", &fixture("memory-bomb"));
    write(d, "50-recursion.wasm", &fixture("deep-recursion"));
    write(d, "60-panic.wasm", &fixture("panic"));
    write(d, "70-sleeper.wasm", &fixture("sleep-in-host-call"));
    write(d, "80-welcome-again.wasm", &guest("welcome-email"));
    let mail = |key: &str| {
        format!(
            "allowed_hosts = [\"127.0.0.1:{sink_port}\"]\n\
             config = {{ url = \"http://127.0.0.1:{sink_port}/send\", verify_url = \"https://app.example/verify\" }}\n\
             secrets = {{ api_key = \"{key}\" }}\n"
        )
    };
    // Limits chosen so that each hostile hook can only fail one way, whatever the load on the
    // machine: the loop runs out of fuel long before its 30 s deadline, the bomb hits its
    // 4 MiB cap, the sleeper its 200 ms deadline.
    let manifest = format!(
        "[hooks.20-welcome]\n{}\n\
         [hooks.30-loop]\nfuel = 2_000_000\ntimeout_ms = 30_000\n\n\
         [hooks.40-bomb]\nmemory_mib = 4\ntimeout_ms = 30_000\n\n\
         [hooks.50-recursion]\ntimeout_ms = 30_000\n\n\
         [hooks.60-panic]\ntimeout_ms = 30_000\n\n\
         [hooks.70-sleeper]\ntimeout_ms = 200\n\n\
         [hooks.80-welcome-again]\n{}",
        mail("FIRST_KEY"),
        mail("SECOND_KEY")
    );
    write(d, "hooks.toml", manifest.as_bytes());
    dir
}

fn options(dir: &Path) -> Options {
    Options {
        hook_env: Some(HashMap::from([
            ("FIRST_KEY".to_owned(), "key-1".to_owned()),
            ("SECOND_KEY".to_owned(), "key-2".to_owned()),
        ])),
        ..Options::default()
    }
    .env("HOOKAUTH_HOOKS__DIR", dir.to_str().unwrap())
    .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "1")
}

async fn hooks_fire_in_order_and_misbehaving_hooks_change_nothing(backend: Backend) {
    let sink = Sink::start().await;
    let dir = hooks_dir(sink.port);
    let app = TestApp::spawn_with(backend, options(dir.path())).await;

    // The flows only commit events; hooks run later (events.rs shows a flow answering with
    // no dispatcher at all), so the hostile hooks cannot hold these answers up.
    assert_eq!(
        app.register("hooked@example.com").await,
        StatusCode::ACCEPTED
    );
    let login = app.login("hooked@example.com").await;

    // Both welcome hooks reached the email API for after_register (independently: in any order).
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.received().len() < 2 {
        assert!(
            Instant::now() < deadline,
            "welcome hooks never called the API"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut got = sink.received();
    got.sort_by(|a, b| a.headers["authorization"].cmp(&b.headers["authorization"]));
    assert_eq!(got[0].path, "/send");
    assert_eq!(got[0].headers["authorization"], "Bearer key-1");
    assert_eq!(got[1].headers["authorization"], "Bearer key-2");
    assert_eq!(got[0].body["to"], "hooked@example.com");
    assert_eq!(got[0].body["template"], "welcome");
    let register_event = app
        .recorder
        .wait_for_kind(EventKind::AfterRegister, 1)
        .await;
    assert_eq!(got[0].headers["idempotency-key"], register_event.id);
    assert_eq!(got[1].headers["idempotency-key"], register_event.id);

    // Every hostile hook failed on its own; the other handlers ran regardless.
    let deadline = Instant::now() + Duration::from_secs(15);
    let failed = loop {
        let failed = app.flows.store.failed_events(None, 10).await.unwrap();
        if failed.iter().any(|f| f.id == register_event.id) {
            break failed;
        }
        assert!(
            Instant::now() < deadline,
            "failures never recorded: {failed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let register_failure = failed.iter().find(|f| f.id == register_event.id).unwrap();
    assert_eq!(
        register_failure.failed_handlers,
        [
            "30-loop",
            "40-bomb",
            "50-recursion",
            "60-panic",
            "70-sleeper"
        ]
    );
    let error = register_failure.last_error.as_deref().unwrap();
    assert!(error.contains("70-sleeper"), "{error}");
    // And each failed for its own reason, as recorded on its delivery: a fuel test passing
    // on a timeout (or any hook failing some other way) is a failure here.
    let reasons: Vec<(&str, &str)> = register_failure
        .failures
        .iter()
        .map(|f| {
            let error = f.last_error.as_deref().unwrap_or("");
            let kind = [
                "ran out of fuel",
                "exceeded its memory limit",
                "overflowed its stack",
                "panicked",
                "exceeded its time limit",
            ]
            .into_iter()
            .find(|k| error.contains(k))
            .unwrap_or(error);
            (f.hook.as_str(), kind)
        })
        .collect();
    assert_eq!(
        reasons,
        [
            ("30-loop", "ran out of fuel"),
            ("40-bomb", "exceeded its memory limit"),
            ("50-recursion", "overflowed its stack"),
            ("60-panic", "panicked"),
            ("70-sleeper", "exceeded its time limit"),
        ],
        "{register_failure:?}"
    );
    assert!(register_failure.failures.iter().all(|f| f.attempts == 1));
    app.recorder.wait_for_kind(EventKind::AfterLogin, 1).await;

    // The server kept serving throughout.
    let access = login["access_token"].as_str().unwrap();
    assert_eq!(app.get("/me", access).await.0, StatusCode::OK);
    // Settled, every delivery is as expected: the after_login event went to the hooks
    // subscribed to it and nothing else was sent (the sink got the two welcome emails only).
    let deliveries = app.settle().await;
    let stored = app.stored_events().await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored[0], (EventKind::AfterRegister, "failed".to_owned()));
    let failed: Vec<&str> = deliveries
        .iter()
        .filter(|d| d.status == "failed")
        .map(|d| d.hook.as_str())
        .collect();
    assert_eq!(
        failed,
        [
            "30-loop",
            "40-bomb",
            "50-recursion",
            "60-panic",
            "70-sleeper"
        ],
        "only the hostile hooks failed, and only on after_register: {deliveries:?}"
    );
    assert_eq!(sink.received().len(), 2, "{:?}", sink.received());
}

async fn an_invalid_hook_stops_the_start_unless_lenient(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "10-audit.wasm", &guest("audit-log"));
    write(dir.path(), "20-sneaky.wasm", &fixture("forbidden-imports"));
    write(dir.path(), "30-garbage.wasm", b"not a component");
    let strict = Options::default().env("HOOKAUTH_HOOKS__DIR", dir.path().to_str().unwrap());
    let error = match TestApp::try_spawn(backend.clone(), strict).await {
        Ok(_) => panic!("a server with invalid hooks must not start"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("20-sneaky.wasm"), "{error}");
    assert!(error.contains("30-garbage.wasm"), "{error}");
    assert!(!error.contains("10-audit.wasm"), "{error}");

    let lenient = Options::default()
        .env("HOOKAUTH_HOOKS__DIR", dir.path().to_str().unwrap())
        .env("HOOKAUTH_HOOKS__LENIENT", "true");
    let app = TestApp::spawn_with(backend, lenient).await;
    assert_eq!(
        app.register("lenient@example.com").await,
        StatusCode::ACCEPTED
    );
    app.recorder
        .wait_for_kind(EventKind::AfterRegister, 1)
        .await;
}

async fn a_recorded_event_replays_against_a_new_build_without_redelivery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("replay@example.com").await,
        StatusCode::ACCEPTED
    );
    let event = app
        .recorder
        .wait_for_kind(EventKind::AfterRegister, 1)
        .await;
    let dir = tempfile::tempdir().unwrap();
    let build = dir.path().join("10-audit.wasm");
    write(dir.path(), "10-audit.wasm", &guest("audit-log"));

    let report = hookauth::hooks::tools::replay(&app.flows.store, &event.id, &build, None, None)
        .await
        .unwrap();
    assert_eq!(report.result, "ok");
    assert_eq!(report.event_id, event.id);
    assert_eq!(report.hook, "10-audit");
    assert!(report.fuel_used > 0);
    // Delivery state is untouched and nothing was delivered again.
    let (_, status) = app
        .flows
        .store
        .find_event(&event.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, "delivered");
    let deliveries = app.settle().await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(deliveries[0].attempts, 1, "{deliveries:?}");
    assert_eq!(app.recorder.count_of(EventKind::AfterRegister), 1);

    let missing =
        hookauth::hooks::tools::replay(&app.flows.store, "no-such-id", &build, None, None).await;
    assert!(
        missing
            .unwrap_err()
            .to_string()
            .contains("no event with id")
    );
}
