//! Event delivery at scale: concurrent lanes, one user's events in order per hook, tenants
//! isolated from each other's slow or failing hooks, retries that hold no lane, circuit
//! breakers, and claims that survive a killed process.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use hookauth::domain::{Event, EventKind, EventPayload, ProfileSchema, TenantId};
use hookauth::events::{EventHandler, HandlerError};
use hookauth::store::{DeliveryState, Store, StoreSettings};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{Backend, Options, PASSWORD, Recorder, TestApp, send};
use crate::on_both_backends;
use crate::server_process::ServerProcess;
use crate::shared::{Sink, fixture, guest};

on_both_backends!(
    one_users_events_reach_each_hook_in_commit_order_under_concurrency,
    a_hook_sleeping_to_its_deadline_delays_neither_other_hooks_nor_other_tenants,
    a_failing_hooks_retries_hold_no_lane_and_open_its_circuit_until_a_probe_succeeds,
    a_sleeping_wasm_hook_does_not_hold_back_a_real_guest_calling_an_endpoint,
    an_email_nobody_handles_is_kept_and_replays_once_a_hook_exists,
);

/// The user an event is about.
fn subject(event: &Event) -> String {
    match &event.payload {
        EventPayload::AfterLogout { user_id } => user_id.clone(),
        EventPayload::AfterRegister { user }
        | EventPayload::AfterLogin { user }
        | EventPayload::AfterPasswordChange { user }
        | EventPayload::AfterPasswordReset { user }
        | EventPayload::AfterEmailVerify { user }
        | EventPayload::AfterOauthLogin { user, .. } => user.id.clone(),
        other => panic!("no user id in {other:?}"),
    }
}

/// A hook that takes a random few milliseconds and counts how many calls overlap.
struct Jittery {
    name: String,
    seen: Mutex<Vec<Event>>,
    in_flight: AtomicUsize,
    peak: AtomicUsize,
}

impl Jittery {
    fn named(name: &str) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            seen: Mutex::default(),
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
        })
    }
}

#[async_trait]
impl EventHandler for Jittery {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, _kind: EventKind) -> bool {
        true
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        let pause = rand::random::<u64>() % 20;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        self.seen.lock().unwrap().push(event.clone());
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

/// A hook whose endpoint is down: every call waits `delay`, then fails or succeeds.
struct Sleeper {
    name: String,
    delay: Duration,
    calls: AtomicUsize,
}

#[async_trait]
impl EventHandler for Sleeper {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, _kind: EventKind) -> bool {
        true
    }

    async fn handle(&self, _event: &Event) -> Result<(), HandlerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(self.delay).await;
        Ok(())
    }
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !done().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn states(app: &TestApp, tenant: Option<&TenantId>) -> Vec<DeliveryState> {
    app.flows.store.delivery_states(tenant).await.unwrap()
}

async fn one_users_events_reach_each_hook_in_commit_order_under_concurrency(backend: Backend) {
    let hooks = [Jittery::named("10-crm"), Jittery::named("20-mailer")];
    let options = Options {
        handlers: hooks
            .iter()
            .map(|h| h.clone() as Arc<dyn EventHandler>)
            .collect(),
        ..Options::default()
    }
    .env("HOOKAUTH_DELIVERY__CONCURRENCY", "16");
    let app = Arc::new(TestApp::spawn_with(backend, options).await);
    const USERS: usize = 16;
    // Every user's requests in order, all users at once: their events interleave in the outbox.
    let mut users = tokio::task::JoinSet::new();
    for i in 0..USERS {
        let app = app.clone();
        users.spawn(async move {
            let email = format!("user{i}@example.com");
            let access = app.access_token(&email).await;
            let (status, _) = app
                .request(Method::POST, "/logout", Some(&access), None)
                .await;
            assert_eq!(status, StatusCode::NO_CONTENT);
            app.login(&email).await;
        });
    }
    while let Some(done) = users.join_next().await {
        done.unwrap();
    }
    let per_hook = USERS * 4;
    wait_until(
        "every event at both hooks",
        Duration::from_secs(30),
        || async {
            hooks
                .iter()
                .all(|h| h.seen.lock().unwrap().len() >= per_hook)
                && app.recorder.count() >= per_hook
        },
    )
    .await;
    for hook in &hooks {
        let seen = hook.seen.lock().unwrap().clone();
        assert_eq!(seen.len(), per_hook, "{}: each event once", hook.name);
        let mut by_user: HashMap<String, Vec<&Event>> = HashMap::new();
        for event in &seen {
            by_user.entry(subject(event)).or_default().push(event);
        }
        assert_eq!(by_user.len(), USERS);
        for (user, events) in by_user {
            let kinds: Vec<EventKind> = events.iter().map(|e| e.kind()).collect();
            assert_eq!(
                kinds,
                [
                    EventKind::AfterRegister,
                    EventKind::AfterLogin,
                    EventKind::AfterLogout,
                    EventKind::AfterLogin
                ],
                "{}: user {user} out of order",
                hook.name
            );
            assert!(events.windows(2).all(|w| w[0].seq < w[1].seq));
        }
        // Different users' events really were delivered at the same time.
        assert!(
            hook.peak.load(Ordering::SeqCst) > 1,
            "{}: deliveries never overlapped",
            hook.name
        );
    }
    assert_eq!(app.stored_events().await.len(), per_hook);
    // Outcomes are written in batches just after the handlers return.
    wait_until(
        "every event recorded as delivered",
        Duration::from_secs(5),
        || async {
            app.stored_events()
                .await
                .iter()
                .all(|(_, status)| status == "delivered")
        },
    )
    .await;
}

async fn a_hook_sleeping_to_its_deadline_delays_neither_other_hooks_nor_other_tenants(
    backend: Backend,
) {
    let slowco = TenantId::parse("slowco").unwrap();
    // A webhook whose endpoint takes a whole second (a hook's default deadline) every time.
    let webhook = Arc::new(Sleeper {
        name: "webhook".into(),
        delay: Duration::from_secs(1),
        calls: AtomicUsize::new(0),
    });
    let audit = Recorder::named("audit");
    let options = Options {
        tenant_handlers: vec![
            (slowco.clone(), webhook.clone()),
            (slowco.clone(), audit.clone()),
        ],
        ..Options::default()
    }
    // 8 lanes: slowco may hold 6, its webhook 4.
    .env("HOOKAUTH_DELIVERY__CONCURRENCY", "8");
    let app = TestApp::spawn_with(backend, options).await;
    app.flows.store.create_tenant(&slowco, 0).await.unwrap();
    let slow = app.tenant("slowco");
    const BACKLOG: usize = 40; // 40 s of webhook work, 10 s at 4 lanes
    for i in 0..BACKLOG {
        let body = json!({"email": format!("s{i}@example.com"), "password": PASSWORD});
        assert_eq!(slow.post("/register", body).await.0, StatusCode::ACCEPTED);
    }
    for i in 0..8 {
        assert_eq!(
            app.register(&format!("d{i}@example.com")).await,
            StatusCode::ACCEPTED
        );
    }
    // While waiting, the slow webhook never holds more than its share of the lanes.
    let mut peak_webhook = 0;
    let mut peak_tenant = 0;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.recorder.count() < 8 || audit.count() < BACKLOG {
        assert!(
            Instant::now() < deadline,
            "healthy hooks waited behind the slow one: default {} of 8, audit {} of {BACKLOG}",
            app.recorder.count(),
            audit.count()
        );
        let claimed = app
            .flows
            .store
            .claimed_deliveries(&slowco, app.flows.clock.now_millis())
            .await
            .unwrap();
        let webhook_claims = claimed
            .iter()
            .find(|(hook, _)| hook == "webhook")
            .map_or(0, |(_, n)| *n);
        peak_webhook = peak_webhook.max(webhook_claims);
        peak_tenant = peak_tenant.max(claimed.iter().map(|(_, n)| n).sum::<i64>());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Everything healthy arrived while the webhook still had a backlog of events committed
    // before the default tenant's: those did not queue behind it.
    let webhook_left = states(&app, Some(&slowco))
        .await
        .iter()
        .filter(|d| d.hook == "webhook" && d.status == "pending")
        .count();
    assert!(
        webhook_left > 0,
        "the other tenant and hook finished only after the webhook's backlog"
    );
    assert!(
        peak_webhook <= 4,
        "webhook held {peak_webhook} lanes (cap 4)"
    );
    assert!(peak_tenant <= 6, "slowco held {peak_tenant} lanes (cap 6)");
    // And the webhook itself catches up.
    wait_until("the webhook's backlog", Duration::from_secs(30), || async {
        webhook.calls.load(Ordering::SeqCst) >= BACKLOG
            && states(&app, Some(&slowco))
                .await
                .iter()
                .all(|d| d.status == "delivered")
    })
    .await;
}

async fn a_failing_hooks_retries_hold_no_lane_and_open_its_circuit_until_a_probe_succeeds(
    backend: Backend,
) {
    let broken = Recorder::failing("crm-sync", u32::MAX);
    let options = Options {
        handlers: vec![broken.clone()],
        ..Options::default()
    }
    // Two lanes only: a retry that slept in its lane would stall everything else.
    .env("HOOKAUTH_DELIVERY__CONCURRENCY", "2")
    .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "100")
    .env("HOOKAUTH_DELIVERY__BACKOFF_INITIAL_MS", "300")
    .env("HOOKAUTH_DELIVERY__BREAKER_FAILURES", "3")
    .env("HOOKAUTH_DELIVERY__BREAKER_PAUSE_MS", "1000");
    let app = TestApp::spawn_with(backend, options).await;
    const USERS: usize = 12;
    for i in 0..USERS {
        assert_eq!(
            app.register(&format!("f{i}@example.com")).await,
            StatusCode::ACCEPTED
        );
    }
    app.recorder.wait_for(USERS).await;
    wait_until("the circuit to open", Duration::from_secs(10), || async {
        !app.flows
            .store
            .open_circuits(None)
            .await
            .unwrap()
            .is_empty()
    })
    .await;
    let open = app.flows.store.open_circuits(None).await.unwrap();
    assert_eq!(open[0].hook, "crm-sync");
    assert!(open[0].failures >= 3);
    assert!(
        open[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("simulated outage")
    );
    // While open, its deliveries wait unclaimed (one probe at most), and none is given up.
    for _ in 0..10 {
        let held = states(&app, None)
            .await
            .iter()
            .filter(|d| d.hook == "crm-sync" && d.claimed_by.is_some())
            .count();
        assert!(held <= 1, "{held} crm-sync deliveries hold lanes");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        app.flows
            .store
            .failed_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let stored = app.stored_events().await;
    assert!(stored.iter().all(|(_, s)| s == "pending"), "{stored:?}");

    // The endpoint comes back: the next probe succeeds, the circuit closes, nothing was lost.
    *broken.fail_counter() = 0;
    broken.wait_for(USERS).await;
    wait_until("the circuit to close", Duration::from_secs(10), || async {
        app.flows
            .store
            .open_circuits(None)
            .await
            .unwrap()
            .is_empty()
            && app
                .stored_events()
                .await
                .iter()
                .all(|(_, s)| s == "delivered")
    })
    .await;
    let ids: HashSet<String> = broken
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| e.id.clone())
        .collect();
    assert_eq!(ids.len(), USERS, "each event reached the healed hook");
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

async fn a_sleeping_wasm_hook_does_not_hold_back_a_real_guest_calling_an_endpoint(
    backend: Backend,
) {
    let sink = Sink::start().await;
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "10-sleeper.wasm",
        &fixture("sleep-in-host-call"),
    );
    write(dir.path(), "20-welcome.wasm", &guest("welcome-email"));
    let port = sink.port;
    write(
        dir.path(),
        "hooks.toml",
        format!(
            "[hooks.10-sleeper]\ntimeout_ms = 3000\n\n[hooks.20-welcome]\n\
             allowed_hosts = [\"127.0.0.1:{port}\"]\n\
             config = {{ url = \"http://127.0.0.1:{port}/send\" }}\n\
             secrets = {{ api_key = \"MAIL_KEY\" }}\n"
        )
        .as_bytes(),
    );
    let options = Options {
        hook_env: Some(HashMap::from([("MAIL_KEY".to_owned(), "k".to_owned())])),
        ..Options::default()
    }
    .env("HOOKAUTH_HOOKS__DIR", dir.path().to_str().unwrap())
    .env("HOOKAUTH_DELIVERY__CONCURRENCY", "4")
    .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "1")
    .env("HOOKAUTH_DELIVERY__BREAKER_FAILURES", "0");
    let app = TestApp::spawn_with(backend, options).await;
    const USERS: usize = 8;
    for i in 0..USERS {
        assert_eq!(
            app.register(&format!("w{i}@example.com")).await,
            StatusCode::ACCEPTED
        );
    }
    wait_until("every welcome email", Duration::from_secs(10), || async {
        sink.received().len() >= USERS
    })
    .await;
    // Had the emails waited for the sleeper, every sleeper delivery would be over by now. It
    // needs 12 s for all of them (3 s per event, 2 lanes at most), so the margin is wide.
    let sleeper_done = states(&app, None)
        .await
        .iter()
        .filter(|d| d.hook == "10-sleeper" && d.status != "pending")
        .count();
    assert!(
        sleeper_done < USERS,
        "welcome emails waited for the sleeping hook ({sleeper_done} sleeper deliveries done)"
    );
    wait_until(
        "the sleeper's deliveries to fail",
        Duration::from_secs(60),
        || async {
            app.flows
                .store
                .failed_events(None, 100)
                .await
                .unwrap()
                .len()
                == USERS
        },
    )
    .await;
    for failed in app.flows.store.failed_events(None, 100).await.unwrap() {
        assert_eq!(failed.status, "failed");
        assert_eq!(failed.failed_handlers, ["10-sleeper"]);
    }
    let keys: HashSet<String> = sink
        .received()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), USERS);
}

async fn an_email_nobody_handles_is_kept_and_replays_once_a_hook_exists(backend: Backend) {
    let acme = TenantId::parse("acme").unwrap();
    let mailer = Recorder::named("mailer");
    let app = TestApp::spawn_with(backend.clone(), Options::default()).await;
    app.flows.store.create_tenant(&acme, 0).await.unwrap();
    let tenant = app.tenant("acme");
    let creds = json!({"email": "lost@example.com", "password": PASSWORD});
    tenant.post("/register", creds.clone()).await;
    tenant
        .post(
            "/password-reset/request",
            json!({"email": "lost@example.com"}),
        )
        .await;
    wait_until(
        "the email event to be set aside",
        Duration::from_secs(10),
        || async {
            !app.flows
                .store
                .failed_events(Some(&acme), 10)
                .await
                .unwrap()
                .is_empty()
        },
    )
    .await;
    let failed = app
        .flows
        .store
        .failed_events(Some(&acme), 10)
        .await
        .unwrap();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].status, "no_handler");
    assert_eq!(failed[0].kind, "send_password_reset_email");
    let id = failed[0].id.clone();
    let (record, _) = app.flows.store.find_event(&id).await.unwrap().unwrap();
    match record.event.payload {
        EventPayload::SendPasswordResetEmail { token, .. } => {
            assert!(!token.is_empty(), "the token is kept for the replay")
        }
        other => panic!("{other:?}"),
    }
    assert!(
        app.flows
            .store
            .failed_events(Some(&TenantId::default_tenant()), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let database = app.database();
    app.stop().await;

    // A hook for acme is deployed; the operator replays the event and the email goes out.
    let app = TestApp::spawn_with(
        backend,
        Options {
            tenant_handlers: vec![(acme.clone(), mailer.clone())],
            database: Some(database),
            ..Options::default()
        },
    )
    .await;
    assert!(
        !app.flows
            .store
            .replay_event(&id, Some(&TenantId::default_tenant()), None, 0)
            .await
            .unwrap(),
        "another tenant's event is not replayed"
    );
    assert!(
        app.flows
            .store
            .replay_event(&id, Some(&acme), None, app.flows.clock.now_millis())
            .await
            .unwrap()
    );
    let sent = mailer
        .wait_for_kind(EventKind::SendPasswordResetEmail, 1)
        .await;
    assert_eq!(sent.id, id);
    match sent.payload {
        EventPayload::SendPasswordResetEmail { token, .. } => assert!(!token.is_empty()),
        other => panic!("{other:?}"),
    }
    wait_until(
        "the event to be delivered",
        Duration::from_secs(5),
        || async { app.flows.store.find_event(&id).await.unwrap().unwrap().1 == "delivered" },
    )
    .await;
    assert!(
        app.flows
            .store
            .failed_events(None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A store on a database a separate process uses.
pub async fn open_store(url: &str) -> Store {
    Store::connect(&StoreSettings {
        url: url.into(),
        max_connections: 2,
        sqlite_synchronous: "normal".into(),
        profile_schema: ProfileSchema::default(),
    })
    .await
    .unwrap()
}

/// A hooks directory with one hook, `10-mail` (the real welcome-email guest), calling `path` on
/// the sink; the API key comes from the `MAIL_KEY` environment variable.
pub fn mail_hook_dir(sink_port: u16, path: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "10-mail.wasm", &guest("welcome-email"));
    write(
        dir.path(),
        "hooks.toml",
        format!(
            "[hooks.10-mail]\ntimeout_ms = 30000\n\
             allowed_hosts = [\"127.0.0.1:{sink_port}\"]\n\
             config = {{ url = \"http://127.0.0.1:{sink_port}{path}\" }}\n\
             secrets = {{ api_key = \"MAIL_KEY\" }}\n"
        )
        .as_bytes(),
    );
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_takes_back_a_killed_process_claims_at_start() {
    let sink = Sink::start().await;
    let data = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", data.path().join("hookauth.db").display());
    // The email API hangs: the first process's delivery stays claimed until it is killed.
    let hanging = mail_hook_dir(sink.port, "/hang");
    // A lease far longer than the test: only recovery at start can explain a quick delivery.
    let env = [
        ("HOOKAUTH_HOOKS__DIR", hanging.path().to_str().unwrap()),
        ("HOOKAUTH_DELIVERY__LEASE_MS", "600000"),
        ("MAIL_KEY", "k"),
    ];
    let first = ServerProcess::start(&url, data.path(), &env);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let (status, _) = send(
        &http,
        Method::POST,
        first.url("/register"),
        None,
        Some(json!({"email": "killed@example.com", "password": PASSWORD})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let store = open_store(&url).await;
    wait_until(
        "the delivery to be claimed",
        Duration::from_secs(10),
        || async {
            store
                .delivery_states(None)
                .await
                .unwrap()
                .iter()
                .any(|d| d.claimed_by.is_some())
        },
    )
    .await;
    first.kill_9();
    let stale = store.delivery_states(None).await.unwrap();
    assert_eq!(stale.len(), 1);
    assert!(
        stale[0].claimed_by.is_some(),
        "the kill left the claim behind"
    );
    store.close().await;

    // The API is back; a new process on the same file delivers at once.
    let working = mail_hook_dir(sink.port, "/send");
    let second = ServerProcess::start(
        &url,
        data.path(),
        &[
            ("HOOKAUTH_HOOKS__DIR", working.path().to_str().unwrap()),
            ("HOOKAUTH_DELIVERY__LEASE_MS", "600000"),
            ("MAIL_KEY", "k"),
        ],
    );
    wait_until(
        "the taken-back delivery",
        Duration::from_secs(10),
        || async { !sink.received().is_empty() },
    )
    .await;
    assert_eq!(
        sink.received()[0].headers["idempotency-key"],
        stale[0].event_id
    );
    let store = open_store(&url).await;
    wait_until(
        "the delivery to be recorded",
        Duration::from_secs(5),
        || async { store.delivery_states(None).await.unwrap()[0].status == "delivered" },
    )
    .await;
    drop(second);
}
