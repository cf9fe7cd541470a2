//! GET /sessions, DELETE /sessions/{id}, POST /sessions/revoke-others.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, TestApp, assert_unauthorized};
use crate::on_both_backends;

on_both_backends!(
    sessions_are_listed_and_revoked,
    revoke_others_keeps_the_caller
);

async fn sessions_are_listed_and_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.login("s@example.com").await;
    let second = app.login("s@example.com").await;
    let access = second["access_token"].as_str().unwrap();
    let (status, sessions) = app.get("/sessions", access).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = sessions.as_array().unwrap();
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions[0]["current"], true);
    assert_eq!(sessions[1]["current"], false);
    assert_eq!(sessions[0]["ip_address"], "127.0.0.1");
    assert!(sessions[0]["expires_at"].as_str().unwrap().ends_with('Z'));
    let other_family = sessions[1]["family_id"].as_str().unwrap().to_owned();

    let (status, body) = app
        .request(
            Method::DELETE,
            &format!("/sessions/{other_family}"),
            Some(access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, body) = app
        .get("/me", first["access_token"].as_str().unwrap())
        .await;
    assert_unauthorized(status, &body);
    for missing in [
        other_family.as_str(),
        "not-a-uuid",
        "01a2142b-22ef-7083-b128-cb7d17fe886b",
    ] {
        let (status, body) = app
            .request(
                Method::DELETE,
                &format!("/sessions/{missing}"),
                Some(access),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        assert_eq!(body["detail"], "Session not found");
    }
    // Another user's session is not found either.
    let stranger = app.login("stranger@example.com").await;
    let (got, theirs) = app
        .get("/sessions", stranger["access_token"].as_str().unwrap())
        .await;
    assert_eq!(got, StatusCode::OK, "{theirs}");
    let their_family = theirs[0]["family_id"].as_str().unwrap();
    let (status, _) = app
        .request(
            Method::DELETE,
            &format!("/sessions/{their_family}"),
            Some(access),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

async fn revoke_others_keeps_the_caller(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let a = app.login("ro@example.com").await;
    let b = app.login("ro@example.com").await;
    let c = app.login("ro@example.com").await;
    let access = c["access_token"].as_str().unwrap();
    let (status, body) = app
        .request(Method::POST, "/sessions/revoke-others", Some(access), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"detail": "Signed out 2 other session(s)."}));
    for old in [&a, &b] {
        let (status, _) = app.get("/me", old["access_token"].as_str().unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(app.get("/me", access).await.0, StatusCode::OK);
}
