//! Several stateless replicas on one PostgreSQL database (PostgreSQL only: SQLite is the
//! single-node embedded store).

use std::collections::HashSet;

use hookauth::domain::EventKind;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, assert_unauthorized};

async fn two_replicas() -> Option<(TestApp, TestApp)> {
    let Some(backend) = Backend::postgres() else {
        eprintln!("skipped: HOOKAUTH_TEST_POSTGRES_URL is not set");
        return None;
    };
    let a = TestApp::spawn(backend.clone()).await;
    let b = TestApp::spawn_with(
        backend,
        Options {
            database: Some(a.database()),
            ..Options::default()
        },
    )
    .await;
    Some((a, b))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_agree_on_revocations_at_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    let login = a.login("rep@example.com").await;
    let access = login["access_token"].as_str().unwrap();
    assert_eq!(b.get("/me", access).await.0, StatusCode::OK);
    assert_eq!(
        a.request(Method::POST, "/logout", Some(access), None)
            .await
            .0,
        StatusCode::NO_CONTENT
    );
    let (status, body) = b.get("/me", access).await;
    assert_unauthorized(status, &body);
    let (status, body) = b
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_unauthorized(status, &body);

    // Reuse detected on one replica revokes the family for the other.
    let login = b.login("rep@example.com").await;
    let (_, rotated) = a
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    let (status, _) = b
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = a
        .get("/me", rotated["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Lockout counts failures from every replica.
    a.register("lockrep@example.com").await;
    for replica in [&a, &b, &a, &b, &a] {
        replica
            .post(
                "/login",
                json!({"email": "lockrep@example.com", "password": "wrong-password"}),
            )
            .await;
    }
    let (status, _) = b
        .post(
            "/login",
            json!({"email": "lockrep@example.com", "password": crate::helpers::PASSWORD}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_deliver_each_event_once() {
    let Some((a, b)) = two_replicas().await else {
        return;
    };
    for i in 0..30 {
        let replica = if i % 2 == 0 { &a } else { &b };
        let status = replica.register(&format!("once{i}@example.com")).await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while a.recorder.count() + b.recorder.count() < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "not all events delivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let mut ids = HashSet::new();
    for replica in [&a, &b] {
        for event in replica.recorder.events.lock().unwrap().iter() {
            assert_eq!(event.kind(), EventKind::AfterRegister);
            assert!(
                ids.insert(event.id.clone()),
                "event {} delivered twice",
                event.id
            );
        }
    }
    assert_eq!(ids.len(), 30);
    let stored = a.stored_events().await;
    assert!(stored.iter().all(|(_, status)| status == "delivered"));
}
