//! Lockout, rate limits, body limits, forged and foreign tokens, hashing parameters.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, SECRET, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    lockout_refuses_even_the_right_password,
    lockout_expires,
    rate_limits_answer_429_with_headers,
    rate_limits_honour_only_a_trusted_proxy_header,
    oversized_bodies_get_413,
    forged_expired_and_foreign_tokens_are_rejected,
    unknown_routes_and_methods_get_json_errors,
    passwords_are_argon2id_and_outdated_hashes_are_upgraded,
    hostile_bodies_never_cause_a_server_error,
);

async fn lockout_refuses_even_the_right_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.register("lock@example.com").await, StatusCode::ACCEPTED);
    for _ in 0..5 {
        let (status, _) = app
            .post(
                "/login",
                json!({"email": "lock@example.com", "password": "wrong-password"}),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "LOCK@example.com", "password": PASSWORD}),
        )
        .await;
    assert_unauthorized(status, &body);
    // Other accounts are unaffected.
    app.login("free@example.com").await;
}

async fn lockout_expires(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("lock2@example.com").await,
        StatusCode::ACCEPTED
    );
    for _ in 0..5 {
        let (status, body) = app
            .post(
                "/login",
                json!({"email": "lock2@example.com", "password": "wrong-password"}),
            )
            .await;
        assert_unauthorized(status, &body);
    }
    // Locked now: the right password is refused. Without this the test would pass with the
    // lockout switched off.
    let right = json!({"email": "lock2@example.com", "password": PASSWORD});
    let (status, body) = app.post("/login", right.clone()).await;
    assert_unauthorized(status, &body);
    // Past the lockout (15 minutes by default) the right password works again.
    app.shift_clock(16 * 60 * 1000);
    let (status, body) = app.post("/login", right).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn rate_limits_answer_429_with_headers(backend: Backend) {
    let options = Options::default()
        .env("HOOKAUTH_RATE_LIMIT__ENABLED", "true")
        .env("HOOKAUTH_RATE_LIMIT__LIMITS__LOGIN", "2");
    let app = TestApp::spawn_with(backend, options).await;
    let body = json!({"email": "rl@example.com", "password": "whatever-pass"});
    // Validation failures do not count.
    for _ in 0..3 {
        assert_eq!(
            app.post("/login", json!({})).await.0,
            StatusCode::UNPROCESSABLE_ENTITY
        );
    }
    for _ in 0..2 {
        assert_eq!(
            app.post("/login", body.clone()).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    let response = app
        .http()
        .post(app.url("/login"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let headers = response.headers().clone();
    assert_eq!(headers["x-ratelimit-limit"], "2");
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    // The limiter runs on the real clock: the wait is somewhere in 1..=window, the window
    // being rate_limit.window_seconds (60 by default), whatever the machine's speed.
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(headers["x-ratelimit-reset"], headers["retry-after"]);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["detail"], "Too many requests. Try again later.");
    assert_eq!(answer["code"], "rate_limited");
    // Other buckets are separate.
    assert_eq!(app.register("rl@example.com").await, StatusCode::ACCEPTED);
}

async fn rate_limits_honour_only_a_trusted_proxy_header(backend: Backend) {
    let options = Options::default()
        .env("HOOKAUTH_RATE_LIMIT__ENABLED", "true")
        .env("HOOKAUTH_RATE_LIMIT__LIMITS__LOGIN", "1")
        .env(
            "HOOKAUTH_RATE_LIMIT__TRUSTED_PROXY_HEADER",
            "X-Forwarded-For",
        );
    let app = TestApp::spawn_with(backend, options).await;
    let body = json!({"email": "px@example.com", "password": "whatever-pass"});
    let login_from = |ip: &'static str| {
        app.http()
            .post(app.url("/login"))
            .header("x-forwarded-for", ip)
            .json(&body)
            .send()
    };
    assert_eq!(
        login_from("10.0.0.1").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login_from("10.0.0.1").await.unwrap().status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        login_from("10.0.0.2").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn oversized_bodies_get_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = json!({"email": "big@example.com", "password": "x".repeat(70 * 1024)});
    let (status, body) = app.post("/register", big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(body["code"], "payload_too_large");
    assert_eq!(app.register("big@example.com").await, StatusCode::ACCEPTED);
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn sign(header: Header, claims: &Value, key: &[u8]) -> String {
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
}

async fn forged_expired_and_foreign_tokens_are_rejected(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("tok@example.com").await;
    let claims = claims_of(&access);

    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        access.split('.').nth(1).unwrap()
    );
    let wrong_key = sign(
        Header::default(),
        &claims,
        b"another-secret-key-0123456789abcdef",
    );
    let other_alg = sign(
        Header::new(jsonwebtoken::Algorithm::HS512),
        &claims,
        SECRET.as_bytes(),
    );
    let mut expired_claims = claims.clone();
    expired_claims["exp"] = json!(claims["iat"].as_i64().unwrap() - 120);
    let expired = sign(Header::default(), &expired_claims, SECRET.as_bytes());
    let mut no_iat = claims.clone();
    no_iat.as_object_mut().unwrap().remove("iat");
    let missing_iat = sign(Header::default(), &no_iat, SECRET.as_bytes());
    let mut purposeful = claims.clone();
    purposeful["extra"] = json!({"purpose": "password_reset"});
    let wrong_type = sign(Header::default(), &purposeful, SECRET.as_bytes());
    let mut other_tenant = claims.clone();
    other_tenant["tid"] = json!("acme");
    let foreign = sign(Header::default(), &other_tenant, SECRET.as_bytes());

    for token in [
        "garbage",
        &unsigned,
        &wrong_key,
        &other_alg,
        &expired,
        &missing_iat,
        &wrong_type,
        &foreign,
        &format!("{access}x"),
    ] {
        let (status, body) = app.get("/me", token).await;
        assert_unauthorized(status, &body);
    }
    // The genuine token still works: the checks above are not vacuous.
    assert_eq!(app.get("/me", &access).await.0, StatusCode::OK);
    // A token issued long ago has expired.
    app.shift_clock(-2 * 3600 * 1000);
    let old = app.access_token("tok@example.com").await;
    app.shift_clock(0);
    let (status, body) = app.get("/me", &old).await;
    assert_unauthorized(status, &body);
}

async fn unknown_routes_and_methods_get_json_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.request(Method::GET, "/nope", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"detail": "Not Found", "code": "not_found"}));
    let (status, body) = app.request(Method::PUT, "/login", None, None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(body["detail"], "Method Not Allowed");
}

async fn passwords_are_argon2id_and_outdated_hashes_are_upgraded(backend: Backend) {
    // The first server hashes with other parameters than the second.
    let first = TestApp::spawn(backend.clone()).await;
    assert_eq!(first.register("up@example.com").await, StatusCode::ACCEPTED);
    let database = first.database();
    first.stop().await;
    let options = Options {
        database: Some(database),
        ..Options::default()
    }
    .env("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "2048");
    let app = TestApp::spawn_with(backend, options).await;
    let user = app
        .flows
        .store
        .find_user_by_email(
            &hookauth::domain::TenantId::default_tenant(),
            "up@example.com",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        user.hashed_password
            .unwrap()
            .starts_with("$argon2id$v=19$m=1024,t=1,p=1$")
    );
    app.login("up@example.com").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let user = app
            .flows
            .store
            .find_user_by_email(
                &hookauth::domain::TenantId::default_tenant(),
                "up@example.com",
            )
            .await
            .unwrap()
            .unwrap();
        if user
            .hashed_password
            .unwrap()
            .starts_with("$argon2id$v=19$m=2048,t=1,p=1$")
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "hash was not upgraded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.login("up@example.com").await;
}

async fn hostile_bodies_never_cause_a_server_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let access = app.access_token("fuzz@example.com").await;
    let routes = [
        (Method::POST, "/register"),
        (Method::POST, "/login"),
        (Method::POST, "/refresh"),
        (Method::POST, "/logout"),
        (Method::PATCH, "/me"),
        (Method::POST, "/change-password"),
        (Method::POST, "/verify-email/confirm"),
        (Method::POST, "/password-reset/request"),
        (Method::POST, "/password-reset/confirm"),
        (Method::POST, "/admin/assign-role"),
        (Method::DELETE, "/sessions/%00%ff"),
    ];
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let bodies: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00garbage".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"email\": {\"nested\": 1}, \"password\": [1], \"token\": 5}".to_vec(),
        b"{\"display_name\": \"\\u0000\", \"new_password\": \"\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\\u0000\"}".to_vec(),
        deep.into_bytes(),
    ];
    for (method, path) in &routes {
        for token in [None, Some(access.as_str())] {
            for body in &bodies {
                let mut req = app
                    .http()
                    .request(method.clone(), app.url(path))
                    .body(body.clone());
                if let Some(token) = token {
                    req = req.bearer_auth(token);
                }
                let response = req.send().await.unwrap();
                let status = response.status();
                let answer: Value = response.json().await.unwrap_or(Value::Null);
                assert!(
                    status.is_client_error() || status.is_success(),
                    "{method} {path} answered {status}: {answer}"
                );
                if status.is_client_error() {
                    assert!(answer["code"].is_string(), "{method} {path}: {answer}");
                }
            }
        }
    }
    // Still serving (the logout route above ended the first session).
    let fresh = app.access_token("fuzz@example.com").await;
    assert_eq!(app.get("/me", &fresh).await.0, StatusCode::OK);
}
