//! Reset and verification emails: at most N per account per hour whoever asks, and the reset
//! request answered before (and independently of) the work of finding the account.

use std::time::Duration;

use hookauth::domain::EventKind;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, Options, TestApp};
use crate::on_both_backends;

on_both_backends!(
    reset_emails_are_limited_per_account,
    verification_emails_are_limited_per_account,
    reset_request_is_answered_without_waiting_for_the_lookup,
);

fn stored_count(events: &[(EventKind, String)], kind: EventKind) -> usize {
    events.iter().filter(|(k, _)| *k == kind).count()
}

async fn reset_emails_are_limited_per_account(backend: Backend) {
    // Per-address rate limits on, with the client address taken from a header the attacker
    // rotates: only the per-account limit stands between them and the mailbox.
    let options = Options::default()
        .env("HOOKAUTH_TOKENS__PASSWORD_RESET_EMAILS_PER_HOUR", "3")
        .env("HOOKAUTH_RATE_LIMIT__ENABLED", "true")
        .env(
            "HOOKAUTH_RATE_LIMIT__TRUSTED_PROXY_HEADER",
            "X-Forwarded-For",
        );
    let app = TestApp::spawn_with(backend, options).await;
    app.register("flood@example.com").await;
    let unknown = app
        .post(
            "/password-reset/request",
            json!({"email": "nobody@example.com"}),
        )
        .await;
    for i in 0..4 {
        let answer = app
            .http()
            .post(app.url("/password-reset/request"))
            .header("X-Forwarded-For", format!("198.51.100.{i}"))
            .json(&json!({"email": "Flood@Example.com"}))
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap();
        // Over the limit, the answer is the one an unknown address gets.
        assert_eq!((status, body), unknown);
    }
    app.flows.settle_background_work().await;
    let stored = app.stored_events().await;
    assert_eq!(stored_count(&stored, EventKind::SendPasswordResetEmail), 3);
    // The next hour has a new allowance.
    app.shift_clock(61 * 60_000);
    app.post(
        "/password-reset/request",
        json!({"email": "flood@example.com"}),
    )
    .await;
    app.flows.settle_background_work().await;
    let stored = app.stored_events().await;
    assert_eq!(stored_count(&stored, EventKind::SendPasswordResetEmail), 4);
}

async fn verification_emails_are_limited_per_account(backend: Backend) {
    let options = Options::default().env("HOOKAUTH_TOKENS__EMAIL_VERIFY_EMAILS_PER_HOUR", "2");
    let app = TestApp::spawn_with(backend, options).await;
    let access = app.access_token("verify-flood@example.com").await;
    let mut answers = Vec::new();
    for _ in 0..4 {
        answers.push(
            app.request(Method::POST, "/verify-email/request", Some(&access), None)
                .await,
        );
    }
    assert_eq!(answers[0].0, StatusCode::ACCEPTED);
    assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
    // The request commits its email event before answering.
    let stored = app.stored_events().await;
    assert_eq!(stored_count(&stored, EventKind::SendVerificationEmail), 2);
}

/// The reset request's answer does not wait for the account lookup, the token or the outbox
/// write: with those writes blocked by another connection's lock, the answer still comes,
/// and the email follows once the lock is gone. (Before, a known address waited for the
/// write, an unknown one did not: that difference was measurable from outside.)
async fn reset_request_is_answered_without_waiting_for_the_lookup(backend: Backend) {
    let app = TestApp::spawn(backend.clone()).await;
    app.register("slow@example.com").await;
    sqlx::any::install_default_drivers();
    let mut blocker = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let lock = match backend {
        Backend::Sqlite => "BEGIN IMMEDIATE",
        Backend::Postgres(_) => "BEGIN; LOCK TABLE one_time_tokens, email_sends IN EXCLUSIVE MODE",
    };
    sqlx::raw_sql(lock).execute(&mut blocker).await.unwrap();
    // Generous: this bounds a hang (the old code waited for the lock), not a speed.
    let answer = tokio::time::timeout(
        Duration::from_secs(30),
        app.post(
            "/password-reset/request",
            json!({"email": "slow@example.com"}),
        ),
    )
    .await;
    sqlx::raw_sql("ROLLBACK")
        .execute(&mut blocker)
        .await
        .unwrap();
    let (status, _) = answer.expect("the answer waited for the database lock");
    assert_eq!(status, StatusCode::ACCEPTED);
    app.recorder
        .wait_for_kind(EventKind::SendPasswordResetEmail, 1)
        .await;
}
