//! Several stateless replicas on one PostgreSQL database (PostgreSQL only: SQLite is the
//! single-node embedded store).

use std::collections::{HashMap, HashSet};

use hookauth::domain::EventKind;
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, TestApp, assert_unauthorized};

async fn two_replicas() -> Option<(TestApp, TestApp)> {
    two_replicas_with(&[]).await
}

/// Two replicas on one fresh database, both started with `env`.
async fn two_replicas_with(env: &[(&str, &str)]) -> Option<(TestApp, TestApp)> {
    // None only under the explicit opt-out HOOKAUTH_TEST_POSTGRES=off, which records the skip.
    let backend = Backend::postgres()?;
    let options = || env.iter().fold(Options::default(), |o, (k, v)| o.env(k, v));
    let a = TestApp::spawn_with(backend.clone(), options()).await;
    let b = TestApp::spawn_with(
        backend,
        Options {
            database: Some(a.database()),
            ..options()
        },
    )
    .await;
    Some((a, b))
}

/// Behind a load balancer every replica counts against the same window: four login attempts
/// spread over two replicas use up a limit of four, whichever replica the fifth reaches. Other
/// clients and buckets are not affected, and a refused request is not counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_shared_by_replicas() {
    let Some((a, b)) = two_replicas_with(&[
        ("HOOKAUTH_RATE_LIMIT__ENABLED", "true"),
        ("HOOKAUTH_RATE_LIMIT__LIMITS__LOGIN", "4"),
        (
            "HOOKAUTH_RATE_LIMIT__TRUSTED_PROXY_HEADER",
            "X-Forwarded-For",
        ),
        ("HOOKAUTH_LOCKOUT__ENABLED", "false"),
    ])
    .await
    else {
        return;
    };
    let attempt = |app: &TestApp, client: &'static str| {
        let request = app
            .http()
            .post(app.url("/login"))
            .header("X-Forwarded-For", client)
            .json(&json!({"email": "limited@example.com", "password": "wrong password!"}));
        async move { request.send().await.unwrap() }
    };
    for app in [&a, &b, &a, &b] {
        assert_eq!(
            attempt(app, "203.0.113.9").await.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    for app in [&a, &b] {
        let refused = attempt(app, "203.0.113.9").await;
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        let wait: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    // Another client has its own window.
    assert_eq!(
        attempt(&b, "203.0.113.10").await.status(),
        StatusCode::UNAUTHORIZED
    );
    // The window slides: once the first hits are older than it, places free up (here replica
    // a's clock moves on a minute).
    a.shift_clock(61_000);
    assert_eq!(
        attempt(&a, "203.0.113.9").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

/// The lockout counts failures per account in the database: failures on two replicas add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lockout_counts_failures_from_every_replica() {
    let Some((a, b)) = two_replicas_with(&[
        ("HOOKAUTH_LOCKOUT__ENABLED", "true"),
        ("HOOKAUTH_LOCKOUT__MAX_ATTEMPTS", "3"),
    ])
    .await
    else {
        return;
    };
    a.login("locked@example.com").await;
    let wrong = json!({"email": "locked@example.com", "password": "wrong password!"});
    for app in [&a, &b, &a] {
        let (status, body) = app.post("/login", wrong.clone()).await;
        assert_unauthorized(status, &body);
    }
    // Locked on both, even with the right password.
    for app in [&a, &b] {
        let (status, body) = app
            .post(
                "/login",
                json!({"email": "locked@example.com", "password": crate::helpers::PASSWORD}),
            )
            .await;
        assert_unauthorized(status, &body);
    }
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
    let (status, rotated) = a
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let (status, _) = b
        .post("/refresh", json!({"refresh_token": login["refresh_token"]}))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = a
        .get("/me", rotated["access_token"].as_str().unwrap())
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Lockout counts failures from every replica.
    assert_eq!(
        a.register("lockrep@example.com").await,
        StatusCode::ACCEPTED
    );
    for replica in [&a, &b, &a, &b, &a] {
        let (status, body) = replica
            .post(
                "/login",
                json!({"email": "lockrep@example.com", "password": "wrong-password"}),
            )
            .await;
        assert_unauthorized(status, &body);
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
    // Settled: every delivery is terminal, so no replica can hand an event out again.
    let deliveries = a.settle().await;
    assert_eq!(deliveries.len(), 30, "one per event: {deliveries:?}");
    assert!(
        deliveries
            .iter()
            .all(|d| d.status == "delivered" && d.attempts == 1),
        "{deliveries:?}"
    );
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

/// kill -9 of a replica holding claims: the other replica takes them over once their lease runs
/// out (the dead one no longer renews it) and delivers them; none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_replicas_claims_are_delivered_by_the_other_within_seconds() {
    use std::time::{Duration, Instant};

    use crate::delivery::{mail_hook_dir, open_store};
    use crate::server_process::ServerProcess;
    use crate::shared::Sink;

    // None only under the explicit opt-out HOOKAUTH_TEST_POSTGRES=off, which records the skip.
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let (url, _) = backend.fresh_database().await;
    let sink = Sink::start().await;
    // A slow but working email API keeps deliveries in flight long enough to kill one replica.
    let hooks = mail_hook_dir(sink.port, "/slow");
    let work = tempfile::tempdir().unwrap();
    let env = [
        ("HOOKAUTH_HOOKS__DIR", hooks.path().to_str().unwrap()),
        ("MAIL_KEY", "k"),
    ];
    let a = ServerProcess::start(&url, work.path(), &env);
    let b = ServerProcess::start(&url, work.path(), &env);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    const USERS: usize = 8;
    for i in 0..USERS {
        let replica = if i % 2 == 0 { &a } else { &b };
        let (status, _) = crate::helpers::send(
            &http,
            Method::POST,
            replica.url("/register"),
            None,
            Some(
                json!({"email": format!("k{i}@example.com"), "password": crate::helpers::PASSWORD}),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED);
    }
    let store = open_store(&url).await;
    // Wait until some deliveries are in flight, and kill the replica holding the most.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (victim_pid, held) = loop {
        let states = store.delivery_states(None).await.unwrap();
        let mut by_pid: HashMap<u32, Vec<i64>> = HashMap::new();
        for d in states.iter().filter(|d| d.status == "pending") {
            if let Some(pid) = d
                .claimed_by
                .as_deref()
                .and_then(|c| c.split('-').next())
                .and_then(|p| p.parse().ok())
            {
                by_pid.entry(pid).or_default().push(d.id);
            }
        }
        if let Some((pid, ids)) = by_pid.into_iter().max_by_key(|(_, ids)| ids.len()) {
            break (pid, ids);
        }
        assert!(Instant::now() < deadline, "no delivery was ever claimed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (victim, survivor) = if a.pid() == victim_pid {
        (a, b)
    } else {
        (b, a)
    };
    assert_eq!(victim.pid(), victim_pid);
    victim.kill_9();
    let killed = Instant::now();

    // Every claim the dead replica held is taken over by the survivor within the 10 s bound.
    let survivor_tag = format!("{}-", survivor.pid());
    let deadline = killed + Duration::from_secs(10);
    loop {
        let states = store.delivery_states(None).await.unwrap();
        let taken_over = held.iter().all(|id| {
            states.iter().any(|d| {
                d.id == *id
                    && (d.status == "delivered"
                        || d.claimed_by
                            .as_deref()
                            .is_some_and(|c| c.starts_with(&survivor_tag)))
            })
        });
        if taken_over {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the dead replica's claims were not taken over within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("claims taken over {:?} after the kill", killed.elapsed());
    // ... and delivered: every event reached the email API, none lost.
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let states = store.delivery_states(None).await.unwrap();
        if states.len() == USERS && states.iter().all(|d| d.status == "delivered") {
            break;
        }
        assert!(Instant::now() < deadline, "not delivered: {states:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys: HashSet<String> = sink
        .received()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(
        keys.len(),
        USERS,
        "every event reached the API at least once"
    );
    store.close().await;
}
