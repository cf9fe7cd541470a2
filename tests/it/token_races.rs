//! Two requests presenting the same token at the same moment.
//!
//! Logout: of two racing logouts with one token exactly one ends the session and records
//! `after_logout`; the other is told the token is spent, as a second logout would be.
//!
//! Refresh: with rotation (the default) a refresh token is good for one exchange: of two racing
//! requests exactly one gets a new pair, the other is a reuse, and a reuse revokes that session
//! (the winner's new tokens included: the server cannot tell the thief from the owner), while
//! the user's other sessions are untouched. Without rotation the token is simply reusable.

use std::sync::Arc;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use hookauth::domain::EventKind;

use crate::helpers::{Backend, Options, TestApp, assert_unauthorized, send};
use crate::on_both_backends;

on_both_backends!(
    of_two_racing_logouts_exactly_one_ends_the_session_and_announces_it,
    of_two_racing_refreshes_exactly_one_wins_and_the_session_is_revoked,
    without_rotation_racing_refreshes_both_succeed_and_the_session_lives,
);

/// Sessions raced one after the other: a broken compare-and-swap lets both requests through
/// only when their reads interleave, so give it many chances.
const RACES: usize = 12;

/// Both requests are sent from separate connections once both tasks are ready.
async fn race(
    app: &Arc<TestApp>,
    path: &'static str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> [(StatusCode, Value); 2] {
    let barrier = Arc::new(Barrier::new(2));
    let mut tasks = Vec::new();
    for _ in 0..2 {
        let (app, barrier) = (app.clone(), barrier.clone());
        let (bearer, body) = (bearer.map(str::to_owned), body.clone());
        tasks.push(tokio::spawn(async move {
            // A client of its own: no shared connection serialises the two requests.
            let http = reqwest::Client::builder().no_proxy().build().unwrap();
            barrier.wait().await;
            send(&http, Method::POST, app.url(path), bearer.as_deref(), body).await
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out.try_into().unwrap()
}

async fn refresh_race(app: &Arc<TestApp>, refresh: &str) -> [(StatusCode, Value); 2] {
    race(
        app,
        "/refresh",
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await
}

async fn logouts_recorded(app: &TestApp) -> usize {
    app.stored_events()
        .await
        .iter()
        .filter(|(kind, _)| *kind == EventKind::AfterLogout)
        .count()
}

async fn of_two_racing_logouts_exactly_one_ends_the_session_and_announces_it(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let email = "bye@example.com";
    for i in 0..RACES {
        // By access token, then by refresh token only.
        let session = app.login(email).await;
        let access = session["access_token"].as_str().unwrap();
        let by_access = race(&app, "/logout", Some(access), None).await;
        let session = app.login(email).await;
        let refresh = json!({"refresh_token": session["refresh_token"]});
        let by_refresh = race(&app, "/logout", None, Some(refresh)).await;
        for results in [by_access, by_refresh] {
            let ended = results
                .iter()
                .filter(|(s, _)| *s == StatusCode::NO_CONTENT)
                .count();
            assert_eq!(ended, 1, "race {i}: {results:?}");
            let (status, body) = results
                .iter()
                .find(|(s, _)| *s != StatusCode::NO_CONTENT)
                .unwrap();
            assert_unauthorized(*status, body);
        }
        assert_eq!(
            logouts_recorded(&app).await,
            2 * (i + 1),
            "race {i}: one after_logout per session ended"
        );
    }
}

async fn of_two_racing_refreshes_exactly_one_wins_and_the_session_is_revoked(backend: Backend) {
    let app = Arc::new(TestApp::spawn(backend).await);
    let email = "race@example.com";
    // A second session of the same user, which no race may touch.
    let bystander = app.login(email).await;
    for i in 0..RACES {
        let session = app.login(email).await;
        let refresh = session["refresh_token"].as_str().unwrap();
        let results = refresh_race(&app, refresh).await;
        let winners: Vec<&Value> = results
            .iter()
            .filter(|(s, _)| *s == StatusCode::OK)
            .map(|(_, b)| b)
            .collect();
        assert_eq!(winners.len(), 1, "race {i}: {results:?}");
        let (status, body) = results.iter().find(|(s, _)| *s != StatusCode::OK).unwrap();
        assert_unauthorized(*status, body);
        let winner = winners[0];
        assert_ne!(winner["refresh_token"], session["refresh_token"]);

        // The reuse revoked the session: the winner's new refresh and access tokens, and the
        // session's first access token, are all dead.
        let (status, body) = app
            .post(
                "/refresh",
                json!({"refresh_token": winner["refresh_token"]}),
            )
            .await;
        assert_unauthorized(status, &body);
        for access in [&winner["access_token"], &session["access_token"]] {
            let (status, body) = app.get("/me", access.as_str().unwrap()).await;
            assert_unauthorized(status, &body);
        }
    }
    // The user's other session is untouched.
    let (status, _) = app
        .get("/me", bystander["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .post(
            "/refresh",
            json!({"refresh_token": bystander["refresh_token"]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn without_rotation_racing_refreshes_both_succeed_and_the_session_lives(backend: Backend) {
    let options = Options::default().env("HOOKAUTH_JWT__REFRESH_ROTATION", "false");
    let app = Arc::new(TestApp::spawn_with(backend, options).await);
    let session = app.login("keep@example.com").await;
    let refresh = session["refresh_token"].as_str().unwrap();
    for _ in 0..3 {
        for (status, body) in refresh_race(&app, refresh).await {
            assert_eq!(status, StatusCode::OK, "{body}");
            assert_eq!(body["refresh_token"], refresh, "the same token comes back");
            let (status, _) = app.get("/me", body["access_token"].as_str().unwrap()).await;
            assert_eq!(status, StatusCode::OK);
        }
    }
}
