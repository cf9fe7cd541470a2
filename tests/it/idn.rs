//! Internationalized domains: `user@bücher.de` and `user@xn--bcher-kva.de` are one mailbox,
//! so one account, found whichever way it is typed; rows stored before are brought to the
//! ASCII form at start, and a pair that collides keeps both accounts.

use hookauth::domain::{EventKind, EventPayload};
use reqwest::StatusCode;
use serde_json::json;
use sqlx::Connection;

use crate::helpers::{Backend, Options, PASSWORD, TestApp};
use crate::on_both_backends;

on_both_backends!(
    both_forms_of_a_domain_are_one_account,
    stored_unicode_domains_are_normalised_at_start,
);

const UNICODE: &str = "user@bücher.de";
const ASCII: &str = "user@xn--bcher-kva.de";

async fn both_forms_of_a_domain_are_one_account(backend: Backend) {
    let options = Options::default().env(
        "HOOKAUTH_SECURITY__PREVENT_REGISTRATION_ENUMERATION",
        "false",
    );
    let app = TestApp::spawn_with(backend, options).await;
    let (status, body) = app
        .post("/register", json!({"email": UNICODE, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Stored and shown in ASCII form.
    assert_eq!(body["email"], ASCII);
    for duplicate in [ASCII, "USER@XN--BCHER-KVA.DE", "User@Bücher.DE"] {
        let (status, body) = app
            .post(
                "/register",
                json!({"email": duplicate, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, StatusCode::CONFLICT, "{duplicate}: {body}");
    }
    for typed in [UNICODE, ASCII, " User@BÜCHER.de "] {
        let (status, body) = app
            .post("/login", json!({"email": typed, "password": PASSWORD}))
            .await;
        assert_eq!(status, StatusCode::OK, "{typed}: {body}");
    }
    // Reset by the Unicode form reaches the account, at its stored address.
    app.post("/password-reset/request", json!({"email": UNICODE}))
        .await;
    match app
        .recorder
        .wait_for_kind(EventKind::SendPasswordResetEmail, 1)
        .await
        .payload
    {
        EventPayload::SendPasswordResetEmail { email, .. } => assert_eq!(email, ASCII),
        other => panic!("{other:?}"),
    }
    // Lockout counts both forms as one address.
    for typed in [UNICODE, ASCII, UNICODE, ASCII, UNICODE] {
        app.post(
            "/login",
            json!({"email": typed, "password": "wrong-password"}),
        )
        .await;
    }
    let (status, _) = app
        .post("/login", json!({"email": ASCII, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

async fn execute(database_url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut conn = sqlx::AnyConnection::connect(database_url).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let (status, body) = app
        .post("/login", json!({"email": email, "password": PASSWORD}))
        .await;
    assert_eq!(status, StatusCode::OK, "{email}: {body}");
    let access = body["access_token"].as_str().unwrap();
    let (status, me) = app.get("/me", access).await;
    assert_eq!(status, StatusCode::OK);
    me["id"].as_str().unwrap().to_owned()
}

async fn stored_emails(app: &TestApp) -> Vec<String> {
    let mut conn = sqlx::AnyConnection::connect(&app.database_url)
        .await
        .unwrap();
    let rows: Vec<(String,)> = sqlx::query_as("SELECT email FROM users ORDER BY email")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    rows.into_iter().map(|(e,)| e).collect()
}

async fn stored_unicode_domains_are_normalised_at_start(backend: Backend) {
    let first = TestApp::spawn(backend.clone()).await;
    first.register("old@xn--bcher-kva.de").await;
    first.register("dup@xn--bcher-kva.de").await;
    first.register("twin@xn--bcher-kva.de").await;
    let dup_ascii = user_id(&first, "dup@xn--bcher-kva.de").await;
    let database = first.database();
    first.stop().await;
    // As an older version stored them: Unicode domains, and the same mailbox twice.
    execute(
        &database.0,
        "UPDATE users SET email = 'old@bücher.de' WHERE email = 'old@xn--bcher-kva.de'; \
         UPDATE users SET email = 'dup@bücher.de' WHERE email = 'twin@xn--bcher-kva.de'",
    )
    .await;

    let second = TestApp::spawn_with(
        backend,
        Options {
            database: Some(database),
            ..Options::default()
        },
    )
    .await;
    assert_eq!(
        stored_emails(&second).await,
        [
            "dup@bücher.de",
            "dup@xn--bcher-kva.de",
            "old@xn--bcher-kva.de"
        ],
        "the lone Unicode row is normalised; the colliding one is kept as it was"
    );
    let old = user_id(&second, "old@bücher.de").await;
    assert_eq!(user_id(&second, "old@xn--bcher-kva.de").await, old);
    // Either form of the collided address reaches the account already in ASCII form.
    assert_eq!(user_id(&second, "dup@bücher.de").await, dup_ascii);
    assert_eq!(user_id(&second, "dup@xn--bcher-kva.de").await, dup_ascii);
}
