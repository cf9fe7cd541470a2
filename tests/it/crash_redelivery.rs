//! The outbox after a crash, and per-user order across retries.
//!
//! A "crash" here is the whole server (HTTP, dispatcher, heartbeat) dropped mid-handler: it runs
//! on a runtime of its own that is shut down without any shutdown code, so its claim stays in
//! the database exactly as a killed process would leave it. The next server on the same database
//! must deliver that event once its lease has run out (on PostgreSQL, where other replicas may
//! be alive; SQLite also takes claims back at start).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookauth::domain::{Event, EventKind, EventPayload};
use hookauth::events::{EventHandler, HandlerError};
use hookauth::store::DeliveryState;
use reqwest::{Method, StatusCode};

use crate::delivery::open_store;
use crate::helpers::{Backend, Options, Recorder, TestApp};
use crate::on_both_backends;

on_both_backends!(
    an_event_claimed_by_a_crashed_server_is_delivered_once_its_lease_runs_out,
    a_users_later_events_wait_for_an_earlier_one_that_fails_and_is_retried,
);

/// Far longer than the test: only the moved clock (or SQLite's recovery at start) explains a
/// redelivery.
const LEASE_MS: i64 = 600_000;

async fn wait_until<F, Fut>(what: &str, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn an_event_claimed_by_a_crashed_server_is_delivered_once_its_lease_runs_out(
    backend: Backend,
) {
    let (database_url, dir) = backend.fresh_database().await;
    let dir = dir.map(Arc::new);
    let lease = LEASE_MS.to_string();

    // First server, on a runtime of its own: "10-crm" blocks inside its handler.
    let first_crm = Recorder::named("10-crm");
    let database = (database_url.clone(), dir.clone());
    let (first_backend, first_lease) = (backend.clone(), lease.clone());
    let crashed = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let gate = first_crm.hold();
        let app = runtime.block_on(async {
            let options = Options {
                handlers: vec![first_crm.clone()],
                database: Some(database),
                ..Options::default()
            }
            .env("HOOKAUTH_DELIVERY__LEASE_MS", &first_lease);
            let app = TestApp::spawn_with(first_backend, options).await;
            assert_eq!(
                app.register("crash@example.com").await,
                StatusCode::ACCEPTED
            );
            // The other hook finishes, and that is recorded, before the crash.
            app.recorder.wait_for(1).await;
            wait_until(
                "the crm delivery to be claimed, the other settled",
                || async {
                    let states = app.flows.store.delivery_states(None).await.unwrap();
                    states.len() == 2
                        && states.iter().any(|d| {
                            d.hook == "10-crm" && d.claimed_by.is_some() && d.status == "pending"
                        })
                        && states
                            .iter()
                            .any(|d| d.hook == "recorder" && d.status == "delivered")
                },
            )
            .await;
            app
        });
        assert_eq!(first_crm.count(), 0, "the crm handler is still blocked");
        // The crash: every task of the server is dropped where it stands.
        runtime.shutdown_background();
        drop(gate);
        drop(app);
    });
    tokio::task::spawn_blocking(move || crashed.join())
        .await
        .unwrap()
        .expect("the first server ran up to the crash");

    let store = open_store(&database_url).await;
    let before = store.delivery_states(None).await.unwrap();
    store.close().await;
    let stale = before.iter().find(|d| d.hook == "10-crm").unwrap().clone();
    assert!(
        stale.claimed_by.is_some(),
        "the crash left the claim: {before:?}"
    );
    assert_eq!(stale.status, "pending");

    // Second server on the same database, its clock past the lease.
    let crm = Recorder::named("10-crm");
    let options = Options {
        handlers: vec![crm.clone()],
        database: Some((database_url, dir)),
        ..Options::default()
    }
    .env("HOOKAUTH_DELIVERY__LEASE_MS", &lease);
    let app = TestApp::spawn_with(backend, options).await;
    app.shift_clock(2 * LEASE_MS);
    let got = crm.wait_for(1).await;
    assert_eq!(got[0].id, stale.event_id);
    assert_eq!(got[0].kind(), EventKind::AfterRegister);
    wait_until("every delivery to be recorded as delivered", || async {
        app.flows
            .store
            .delivery_states(None)
            .await
            .unwrap()
            .iter()
            .all(|d| d.status == "delivered")
    })
    .await;
    // Exactly one delivery per hook of the one event, each done once by this server's count.
    let after = app.flows.store.delivery_states(None).await.unwrap();
    let mut per_hook: Vec<(String, String, String)> = after
        .iter()
        .map(|d| (d.hook.clone(), d.event_id.clone(), d.status.clone()))
        .collect();
    per_hook.sort();
    assert_eq!(
        per_hook,
        [
            ("10-crm".into(), stale.event_id.clone(), "delivered".into()),
            (
                "recorder".into(),
                stale.event_id.clone(),
                "delivered".into()
            ),
        ]
    );
    assert!(after.iter().all(|d| d.claimed_by.is_none()), "{after:?}");
    let recorder_row = |rows: &[DeliveryState]| {
        rows.iter()
            .find(|d| d.hook == "recorder")
            .map(|d| (d.status.clone(), d.attempts))
    };
    assert_eq!(
        recorder_row(&after),
        recorder_row(&before),
        "the hook that had finished before the crash was not run again"
    );
    assert_eq!(crm.count(), 1, "the crm hook got the event exactly once");
    assert_eq!(
        app.stored_events().await,
        [(EventKind::AfterRegister, "delivered".to_owned())]
    );
}

/// Every call it gets, in order: (user, kind, succeeded).
type Calls = Arc<Mutex<Vec<(String, EventKind, bool)>>>;

/// Fails one user's `after_login` until the other user's last event has been handled (and at
/// least three times): a retry of the first user's event is pending while the second user's
/// events go by.
struct FailsOneEvent {
    calls: Calls,
    slow_user: Mutex<Option<String>>,
    failures: Mutex<u32>,
}

fn user_of(event: &Event) -> String {
    match &event.payload {
        EventPayload::AfterLogout { user_id } => user_id.clone(),
        EventPayload::AfterRegister { user } | EventPayload::AfterLogin { user } => user.id.clone(),
        other => panic!("unexpected {other:?}"),
    }
}

#[async_trait]
impl EventHandler for FailsOneEvent {
    fn name(&self) -> &str {
        "10-flaky"
    }

    fn handles(&self, _kind: EventKind) -> bool {
        true
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let user = user_of(event);
        let slow = self
            .slow_user
            .lock()
            .unwrap()
            .clone()
            .expect("set before delivery");
        let mut calls = self.calls.lock().unwrap();
        let other_done = calls
            .iter()
            .any(|(u, k, ok)| *u != slow && *k == EventKind::AfterLogout && *ok);
        let mut failures = self.failures.lock().unwrap();
        // Bounded, so a dispatcher that held the other user back ends the wait by itself and the
        // assertions below say what went wrong.
        let fail = user == slow
            && event.kind() == EventKind::AfterLogin
            && (*failures < 3 || (!other_done && *failures < 40));
        if fail {
            *failures += 1;
        }
        calls.push((user, event.kind(), !fail));
        if fail {
            Err(HandlerError("the API is down for this one".into()))
        } else {
            Ok(())
        }
    }
}

async fn a_users_later_events_wait_for_an_earlier_one_that_fails_and_is_retried(backend: Backend) {
    // All events are in the outbox before any delivery starts: e3 exists while e2 fails.
    let first = TestApp::spawn_with(
        backend.clone(),
        Options {
            deliver_events: false,
            ..Options::default()
        },
    )
    .await;
    let mut ids = HashMap::new();
    for email in ["slow@example.com", "other@example.com"] {
        let login = first.login(email).await;
        let access = login["access_token"].as_str().unwrap();
        let (status, _) = first
            .request(Method::POST, "/logout", Some(access), None)
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        ids.insert(email, login["user"]["id"].as_str().unwrap().to_owned());
    }
    let database = first.database();
    first.stop().await;

    let flaky = Arc::new(FailsOneEvent {
        calls: Calls::default(),
        slow_user: Mutex::new(Some(ids["slow@example.com"].clone())),
        failures: Mutex::new(0),
    });
    let options = Options {
        handlers: vec![flaky.clone()],
        database: Some(database),
        ..Options::default()
    }
    .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "50")
    .env("HOOKAUTH_DELIVERY__BACKOFF_INITIAL_MS", "20")
    .env("HOOKAUTH_DELIVERY__BACKOFF_MAX_MS", "100")
    // No circuit breaker: it would pause the whole hook, the other user's events included.
    .env("HOOKAUTH_DELIVERY__BREAKER_FAILURES", "0");
    let app = TestApp::spawn_with(backend, options).await;
    wait_until("all six events delivered and recorded", || async {
        let stored = app.stored_events().await;
        stored.len() == 6 && stored.iter().all(|(_, s)| s == "delivered")
    })
    .await;

    let calls = flaky.calls.lock().unwrap().clone();
    let of = |email: &str| -> Vec<(EventKind, bool)> {
        calls
            .iter()
            .filter(|(u, _, _)| *u == ids[email])
            .map(|(_, k, ok)| (*k, *ok))
            .collect()
    };
    use EventKind::*;
    let slow = of("slow@example.com");
    let failures = slow.iter().filter(|(_, ok)| !ok).count();
    assert!(failures >= 3, "{slow:?}");
    let mut expected = vec![(AfterRegister, true)];
    expected.extend(std::iter::repeat_n((AfterLogin, false), failures));
    expected.extend([(AfterLogin, true), (AfterLogout, true)]);
    assert_eq!(
        slow, expected,
        "the slow user's logout was handled only after its login finally succeeded"
    );
    assert_eq!(
        of("other@example.com"),
        [
            (AfterRegister, true),
            (AfterLogin, true),
            (AfterLogout, true)
        ]
    );
    // The other user did not wait for the slow user's retries.
    let other_done_at = calls
        .iter()
        .position(|(u, k, _)| *u == ids["other@example.com"] && *k == AfterLogout)
        .unwrap();
    let slow_login_at = calls
        .iter()
        .position(|(u, k, ok)| *u == ids["slow@example.com"] && *k == AfterLogin && *ok)
        .unwrap();
    assert!(
        other_done_at < slow_login_at,
        "the other user's events waited behind the failing one: {calls:?}"
    );
    // The store agrees: the retried delivery took failures + 1 attempts, the rest one each.
    let states = app.flows.store.delivery_states(None).await.unwrap();
    let flaky_rows: Vec<&DeliveryState> = states.iter().filter(|d| d.hook == "10-flaky").collect();
    assert_eq!(flaky_rows.len(), 6, "{states:?}");
    let mut attempts: Vec<i64> = flaky_rows.iter().map(|d| d.attempts).collect();
    attempts.sort();
    assert_eq!(attempts, [1, 1, 1, 1, 1, failures as i64 + 1], "{states:?}");
}
