//! register, login, refresh, logout.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, PASSWORD, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    register_answers_the_same_for_new_and_taken_emails,
    register_without_enumeration_protection_returns_the_user_and_409,
    register_rejects_bad_bodies_with_every_problem,
    register_checks_password_policy_before_duplicates,
    register_ignores_protected_fields_and_stores_profile_fields,
    login_issues_tokens_and_user,
    login_failures_all_look_the_same,
    login_normalises_the_email,
    refresh_rotates_and_detects_reuse,
    refresh_rejects_garbage_and_access_tokens,
    refresh_without_rotation_keeps_the_token,
    logout_revokes_the_session_once,
    logout_with_only_a_refresh_token,
    emails_are_one_account_case_insensitively,
);

async fn register_answers_the_same_for_new_and_taken_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"email": "a@example.com", "password": PASSWORD});
    let first = app.post("/register", body.clone()).await;
    let second = app.post("/register", body).await;
    assert_eq!(first.0, StatusCode::ACCEPTED);
    assert_eq!(first, second);
    assert_eq!(
        first.1["detail"],
        "If this email isn't already registered, the account has been created."
    );
}

async fn register_without_enumeration_protection_returns_the_user_and_409(backend: Backend) {
    let options = Options::default().env(
        "HOOKAUTH_SECURITY__PREVENT_REGISTRATION_ENUMERATION",
        "false",
    );
    let app = TestApp::spawn_with(backend, options).await;
    let body = json!({"email": "b@example.com", "password": PASSWORD, "display_name": "Bee"});
    let (status, user) = app.post("/register", body.clone()).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(user["email"], "b@example.com");
    assert_eq!(user["display_name"], "Bee");
    assert_eq!(user["is_active"], true);
    assert_eq!(user["is_verified"], false);
    assert_eq!(user["is_superuser"], false);
    assert!(user.get("hashed_password").is_none());
    assert_eq!(user["id"].as_str().unwrap().len(), 36);
    let (status, dup) = app.post("/register", body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(dup["detail"], "A user with this email already exists");
    assert_eq!(dup["code"], "email_taken");
}

async fn register_rejects_bad_bodies_with_every_problem(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.post("/register", json!({})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["code"], "validation_error");
    let problems = body["detail"].as_array().unwrap();
    assert_eq!(problems.len(), 2);
    assert_eq!(problems[0]["type"], "missing");
    assert_eq!(problems[0]["loc"], json!(["body", "email"]));
    assert_eq!(problems[1]["loc"], json!(["body", "password"]));

    let (status, body) = app
        .post("/register", json!({"email": "nope", "password": 5}))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let kinds: Vec<_> = body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["value_error", "string_type"]);

    let (status, body) = app
        .post(
            "/register",
            json!({"email": "x@localhost", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Malformed JSON and non-object bodies are validation errors too, never 500.
    let response = app
        .http()
        .post(app.url("/register"))
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["detail"][0]["type"], "json_invalid");
    let (status, _) = app
        .request(Method::POST, "/register", None, Some(json!([1, 2])))
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, body) = app
        .post(
            "/register",
            json!({"email": "t@example.com", "password": PASSWORD, "display_name": 7}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "display_name"]));
}

async fn register_checks_password_policy_before_duplicates(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.register("p@example.com").await, StatusCode::ACCEPTED);
    let (status, body) = app
        .post(
            "/register",
            json!({"email": "p@example.com", "password": "short"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"], "Password must be at least 8 characters");
    assert_eq!(body["code"], "password_policy");
    let long = "x".repeat(4097);
    let (status, body) = app
        .post(
            "/register",
            json!({"email": "q@example.com", "password": long}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["detail"], "Password must be at most 4096 characters");
}

async fn register_ignores_protected_fields_and_stores_profile_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, _) = app
        .post(
            "/register",
            json!({
                "email": "evil@example.com", "password": PASSWORD, "is_superuser": true,
                "is_verified": true, "roles": ["admin"], "display_name": "Eve"
            }),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let login = app.login("evil@example.com").await;
    let user = &login["user"];
    assert_eq!(user["is_superuser"], false);
    assert_eq!(user["is_verified"], false);
    assert_eq!(user["roles"], json!([]));
    assert_eq!(user["display_name"], "Eve");
}

async fn login_issues_tokens_and_user(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = app.login("c@example.com").await;
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 1800);
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    assert_eq!(body["user"]["email"], "c@example.com");
    assert_eq!(body["user"]["display_name"], "");
    let (status, me) = app.get("/me", body["access_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, body["user"]);
}

async fn login_failures_all_look_the_same(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.register("d@example.com").await, StatusCode::ACCEPTED);
    let wrong = app
        .post(
            "/login",
            json!({"email": "d@example.com", "password": "wrong-password"}),
        )
        .await;
    let unknown = app
        .post(
            "/login",
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    let too_long = app
        .post(
            "/login",
            json!({"email": "d@example.com", "password": "x".repeat(5000)}),
        )
        .await;
    for (status, body) in [&wrong, &unknown, &too_long] {
        assert_unauthorized(*status, body);
    }
    assert_eq!(wrong, unknown);
    // Emails no account can have are refused the same way, never with a 500.
    for email in ["nul\u{0}@example.com".to_owned(), "x".repeat(10_000)] {
        let (status, body) = app
            .post("/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_unauthorized(status, &body);
    }
    let (status, _) = app.post("/login", json!({"email": "d@example.com"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn login_normalises_the_email(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.register("Mixed@Example.COM").await,
        StatusCode::ACCEPTED
    );
    let (status, body) = app
        .post(
            "/login",
            json!({"email": "  mixed@example.com ", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["user"]["email"], "mixed@example.com");
}

async fn emails_are_one_account_case_insensitively(backend: Backend) {
    let options = Options::default().env(
        "HOOKAUTH_SECURITY__PREVENT_REGISTRATION_ENUMERATION",
        "false",
    );
    let app = TestApp::spawn_with(backend, options).await;
    assert_eq!(app.register("Alice@Example.COM").await, StatusCode::CREATED);
    assert_eq!(
        app.register("alice@example.com").await,
        StatusCode::CONFLICT
    );
}

async fn refresh_rotates_and_detects_reuse(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.login("e@example.com").await;
    let first_refresh = login["refresh_token"].as_str().unwrap();
    let other_session = app.login("e@example.com").await;

    let (status, pair) = app
        .post("/refresh", json!({"refresh_token": first_refresh}))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(pair.get("user").is_none());
    assert_ne!(pair["refresh_token"], login["refresh_token"]);
    let new_access = pair["access_token"].as_str().unwrap();
    // Rotation alone does not revoke the previous access token.
    assert_eq!(
        app.get("/me", login["access_token"].as_str().unwrap())
            .await
            .0,
        StatusCode::OK
    );
    assert_eq!(app.get("/me", new_access).await.0, StatusCode::OK);

    // Presenting the retired token again kills the whole family, newest tokens included.
    let (status, body) = app
        .post("/refresh", json!({"refresh_token": first_refresh}))
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app.get("/me", new_access).await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post("/refresh", json!({"refresh_token": pair["refresh_token"]}))
        .await;
    assert_unauthorized(status, &body);
    // Another session of the same user is untouched.
    let other = other_session["access_token"].as_str().unwrap();
    assert_eq!(app.get("/me", other).await.0, StatusCode::OK);
    let (status, _) = app
        .post(
            "/refresh",
            json!({"refresh_token": other_session["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
}

async fn refresh_rejects_garbage_and_access_tokens(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.login("f@example.com").await;
    for body in [
        json!({}),
        json!({"refresh_token": null}),
        json!({"refresh_token": "garbage"}),
        json!({"refresh_token": login["access_token"]}),
    ] {
        let (status, answer) = app.post("/refresh", body).await;
        assert_unauthorized(status, &answer);
    }
    let (status, answer) = app.request(Method::POST, "/refresh", None, None).await;
    assert_unauthorized(status, &answer);
    let (status, _) = app.post("/refresh", json!({"refresh_token": 5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

async fn refresh_without_rotation_keeps_the_token(backend: Backend) {
    let options = Options::default().env("HOOKAUTH_JWT__REFRESH_ROTATION", "false");
    let app = TestApp::spawn_with(backend, options).await;
    let login = app.login("g@example.com").await;
    for _ in 0..2 {
        let (status, pair) = app
            .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(pair["refresh_token"], login["refresh_token"]);
    }
}

async fn logout_revokes_the_session_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.login("h@example.com").await;
    let access = login["access_token"].as_str().unwrap();
    let (status, body) = app
        .request(Method::POST, "/logout", Some(access), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(body, serde_json::Value::Null);
    let (status, body) = app.get("/me", access).await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .request(Method::POST, "/logout", Some(access), None)
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app.request(Method::POST, "/logout", None, None).await;
    assert_unauthorized(status, &body);
}

async fn logout_with_only_a_refresh_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let login = app.login("i@example.com").await;
    let (status, _) = app
        .post("/logout", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = app
        .get("/me", login["access_token"].as_str().unwrap())
        .await;
    assert_unauthorized(status, &body);
    let (status, body) = app
        .post("/logout", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_unauthorized(status, &body);
}
