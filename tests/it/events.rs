//! The durable outbox: what is emitted, when, in which order, and that it survives restarts.

use std::sync::{Arc, Mutex};

use hookauth::domain::{EventKind, EventPayload, TenantId};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, PASSWORD, Recorder, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    a_whole_lifecycle_emits_the_documented_sequence,
    failed_requests_emit_nothing,
    an_event_survives_a_restart_between_commit_and_delivery,
    secrets_do_not_outlive_delivery,
    failing_handlers_are_retried_then_recorded_and_replayable,
    hooks_of_one_event_run_independently_each_in_commit_order,
);

fn token(payload: &EventPayload) -> String {
    match payload {
        EventPayload::SendVerificationEmail { token, .. }
        | EventPayload::SendPasswordResetEmail { token, .. } => token.clone(),
        other => panic!("no token in {other:?}"),
    }
}

async fn a_whole_lifecycle_emits_the_documented_sequence(backend: Backend) {
    use EventKind::*;
    let app = TestApp::spawn(backend).await;
    let email = "life@example.com";
    assert_eq!(app.register(email).await, StatusCode::ACCEPTED);
    let access = app.access_token(email).await;
    let (status, body) = app
        .request(Method::POST, "/verify-email/request", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let sent = app.recorder.wait_for(3).await;
    let verify = token(&sent[2].payload);
    assert_eq!(
        app.post("/verify-email/confirm", json!({"token": verify}))
            .await
            .0,
        StatusCode::OK
    );
    let access = app.access_token(email).await;
    let (status, _) = app
        .request(
            Method::POST,
            "/change-password",
            Some(&access),
            Some(json!({"current_password": PASSWORD, "new_password": "second-password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post("/password-reset/request", json!({"email": email}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let sent = app.recorder.wait_for(7).await;
    let reset = token(&sent[6].payload);
    let (status, _) = app
        .post(
            "/password-reset/confirm",
            json!({"token": reset, "new_password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let access = app.access_token(email).await;
    assert_eq!(
        app.request(Method::POST, "/logout", Some(&access), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let events = app.recorder.wait_for(10).await;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind()).collect();
    assert_eq!(
        kinds,
        [
            AfterRegister,
            AfterLogin,
            SendVerificationEmail,
            AfterEmailVerify,
            AfterLogin,
            AfterPasswordChange,
            SendPasswordResetEmail,
            AfterPasswordReset,
            AfterLogin,
            AfterLogout,
        ]
    );
    // Commit order, unique ids, and the payloads the seed documents.
    assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
    let user_id = match &events[0].payload {
        EventPayload::AfterRegister { user } => {
            assert_eq!(user.email, email);
            assert!(!user.is_verified);
            user.id.clone()
        }
        other => panic!("{other:?}"),
    };
    match &events[3].payload {
        EventPayload::AfterEmailVerify { user } => assert!(user.is_verified),
        other => panic!("{other:?}"),
    }
    match &events[9].payload {
        EventPayload::AfterLogout { user_id: id } => assert_eq!(*id, user_id),
        other => panic!("{other:?}"),
    }
    let login = &events[1];
    assert_eq!(login.context.client_ip.as_deref(), Some("127.0.0.1"));
    assert!(login.context.user_agent.is_some());
    assert!(!login.context.request_id.is_empty());
    assert_eq!(login.tenant, TenantId::default_tenant());
}

async fn failed_requests_emit_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("quiet@example.com").await,
        StatusCode::ACCEPTED
    );
    app.recorder.wait_for(1).await;
    // Each request below is refused (or, for an unknown address, answered as if sent):
    // checked, so the test is about requests that really failed.
    // A taken address gets the same answer as a new one (no enumeration), and no event.
    assert_eq!(
        app.register("quiet@example.com").await,
        StatusCode::ACCEPTED,
        "duplicate"
    );
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "quiet@example.com", "password": "wrong-password"}),
        )
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "x@example.com", "password": PASSWORD}),
        )
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post(
            "/password-reset/request",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = app
        .post("/refresh", json!({"refresh_token": "garbage"}))
        .await;
    assert_unauthorized(status, &body);
    // Settled: nothing is left to deliver, so what the handler saw is all it will see.
    let deliveries = app.settle().await;
    assert_eq!(
        app.stored_events().await,
        [(EventKind::AfterRegister, "delivered".to_owned())]
    );
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(app.recorder.kinds(), [EventKind::AfterRegister]);
}

async fn an_event_survives_a_restart_between_commit_and_delivery(backend: Backend) {
    let first = TestApp::spawn_with(
        backend.clone(),
        Options {
            deliver_events: false,
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        first.register("durable@example.com").await,
        StatusCode::ACCEPTED
    );
    let database = first.database();
    let stored = first.stored_events().await;
    assert_eq!(stored, [(EventKind::AfterRegister, "pending".to_owned())]);
    assert_eq!(
        first.recorder.count(),
        0,
        "the first server had no dispatcher"
    );
    first.stop().await;

    let second = TestApp::spawn_with(
        backend,
        Options {
            database: Some(database),
            ..Options::default()
        },
    )
    .await;
    let events = second.recorder.wait_for(1).await;
    match &events[0].payload {
        EventPayload::AfterRegister { user } => assert_eq!(user.email, "durable@example.com"),
        other => panic!("{other:?}"),
    }
    // One delivery, settled after one attempt: nothing left that could deliver it again.
    let deliveries = second.settle().await;
    assert_eq!(deliveries.len(), 1, "{deliveries:?}");
    assert_eq!(
        (deliveries[0].status.as_str(), deliveries[0].attempts),
        ("delivered", 1)
    );
    assert_eq!(second.recorder.count(), 1, "delivered exactly once");
    let stored = second.stored_events().await;
    assert_eq!(stored, [(EventKind::AfterRegister, "delivered".to_owned())]);
}

async fn secrets_do_not_outlive_delivery(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("secret@example.com").await;
    let (status, body) = app
        .request(Method::POST, "/verify-email/request", Some(&access), None)
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let events = app.recorder.wait_for(3).await;
    let event = &events[2];
    assert!(
        !token(&event.payload).is_empty(),
        "the handler got the token"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (record, status) = app
            .flows
            .store
            .find_event(&event.id)
            .await
            .unwrap()
            .unwrap();
        if status == "delivered" {
            assert_eq!(
                token(&record.event.payload),
                "",
                "token erased after delivery"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn failing_handlers_are_retried_then_recorded_and_replayable(backend: Backend) {
    let flaky = Recorder::failing("flaky", 1);
    let broken = Recorder::failing("broken", 1_000);
    let options = Options {
        handlers: vec![flaky.clone(), broken.clone()],
        ..Options::default()
    }
    .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "3");
    let app = TestApp::spawn_with(backend, options).await;
    assert_eq!(
        app.register("retry@example.com").await,
        StatusCode::ACCEPTED
    );
    // The recorder (registered last) runs on the first attempt; flaky succeeds on its retry.
    flaky.wait_for(1).await;
    let id = flaky.events.lock().unwrap()[0].id.clone();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let failed = loop {
        let failed = app.flows.store.failed_events(None, 10).await.unwrap();
        if !failed.is_empty() {
            break failed;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "event never recorded as failed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].id, id);
    assert_eq!(failed[0].attempts, 3);
    assert_eq!(failed[0].failed_handlers, ["broken"]);
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("simulated outage")
    );
    // Handlers that succeeded are not run again by retries.
    assert_eq!(flaky.count(), 1);
    assert_eq!(app.recorder.count(), 1);

    *broken.fail_counter() = 0;
    assert!(
        app.flows
            .store
            .replay_event(&id, None, None, app.flows.clock.now_millis())
            .await
            .unwrap()
    );
    broken.wait_for(1).await;
    assert_eq!(
        broken.events.lock().unwrap()[0].id,
        id,
        "same event id on replay"
    );
    assert_eq!(flaky.count(), 1);
    assert!(
        !app.flows
            .store
            .replay_event(&id, None, None, 0)
            .await
            .unwrap(),
        "only failed events replay"
    );
}

/// Hooks of one event no longer wait for each other: while one hook is stuck on a user's first
/// event, the others receive that user's later events; the stuck hook then gets them in order.
async fn hooks_of_one_event_run_independently_each_in_commit_order(backend: Backend) {
    let journal = Arc::new(Mutex::new(Vec::new()));
    let first = Recorder::journaled("10-first", journal.clone());
    let stuck = Recorder::journaled("20-stuck", journal.clone());
    let third = Recorder::journaled("30-third", journal.clone());
    let gate = stuck.hold();
    let options = Options {
        handlers: vec![first.clone(), stuck.clone(), third.clone()],
        ..Options::default()
    };
    let app = TestApp::spawn_with(backend, options).await;
    app.login("order@example.com").await;
    first.wait_for(2).await;
    third.wait_for(2).await;
    assert_eq!(stuck.count(), 0, "20-stuck is still held on after_register");
    gate.release();
    stuck.wait_for(2).await;
    for hook in [&first, &stuck, &third] {
        assert_eq!(
            hook.kinds(),
            [EventKind::AfterRegister, EventKind::AfterLogin],
            "each hook sees the user's events in commit order"
        );
    }
    let journal = journal.lock().unwrap();
    let stuck_at = journal
        .iter()
        .position(|line| line.starts_with("20-stuck"))
        .unwrap();
    assert_eq!(
        stuck_at, 4,
        "the held hook ran after the others: {journal:?}"
    );
}
