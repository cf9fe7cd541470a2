//! guest-examples/python: the componentize-py analytics hook (one record per login, logged) and
//! the collector hook (the same record POSTed over wasi:http); and a hostile CPython guest trying
//! raw sockets, which the host links but refuses.

use hookauth::domain::{Event, EventKind};
use hookauth::hooks::{FailureKind, HookHost};

use crate::build::{self, Built};
use crate::support::{HookDir, Logs, Sink, after_login, after_oauth_login, guest_error};

/// The `record` field of the hook's log line, as JSON. The host logs guest fields as the
/// `Debug` form of `Vec<(String, String)>`; the record is the one JSON object in it.
fn record_of(fields: &str) -> serde_json::Value {
    let start = fields.find("(\"record\", \"").expect("a record field") + "(\"record\", \"".len();
    let end = fields[start..].find("\")").expect("end of the record") + start;
    let escaped = &fields[start..end];
    // Debug escaping of a JSON text without control characters: \" and \\ only.
    let json = escaped.replace("\\\"", "\"").replace("\\\\", "\\");
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"))
}

/// The `--stub-wasi` component links 38 core instances, which is why the host allows 64 per
/// component (`POOL_CORE_INSTANCES_PER_COMPONENT`).
#[tokio::test]
async fn python_hook_records_password_and_oauth_logins() {
    let component = build::python();
    let dir = HookDir::new()
        .hook("40-analytics", &component.bytes)
        .manifest("[hooks.40-analytics]\nmemory_mib = 64\ntimeout_ms = 5000\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let hook = &host.hooks()[0];
    let mut events: Vec<_> = hook.events().collect();
    events.sort();
    assert_eq!(events, [EventKind::AfterLogin, EventKind::AfterOauthLogin]);

    let (logs, _guard) = Logs::capture();
    let login = after_login();
    let usage = hook.invoke(&login).await.expect("login recorded");
    assert!(usage.outbound_sent.is_empty());
    let oauth = after_oauth_login("github", true);
    hook.invoke(&oauth).await.expect("oauth login recorded");

    let lines = logs.of_event(&login.id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].message, "analytics: login");
    // The collector POSTs exactly this record (both use login_record.py).
    assert_eq!(lines[0].fields["hook"], "40-analytics");
    assert_eq!(lines[0].fields["event"], "after_login");
    let record = record_of(&lines[0].fields["fields"]);
    assert_eq!(record, password_login_record(&login));

    let lines = logs.of_event(&oauth.id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    let record = record_of(&lines[0].fields["fields"]);
    assert_eq!(record["method"], "oauth");
    assert_eq!(record["provider"], "github");
    assert_eq!(record["is_new_user"], true);
    assert_eq!(record["event_id"], oauth.id.as_str());
    // The searchable fields sit next to the record.
    assert!(lines[0].fields["fields"].contains("(\"method\", \"oauth\")"));
}

/// The record of `support::after_login()`, as both Python hooks make it.
fn password_login_record(login: &Event) -> serde_json::Value {
    serde_json::json!({
        "event": "login",
        "method": "password",
        "event_id": login.id,
        "tenant": "default",
        "occurred_at": 1_750_000_000_000_u64,
        "user_id": "0190b7a4-0000-7000-8000-000000000001",
        "roles": ["member", "admin"],
        "client_ip": "203.0.113.7",
        "user_agent": "tests",
    })
}

/// The collector as guest-examples/python/README.md deploys it, POSTing to `url`, with the
/// sink's address as its only allowed host.
fn collector_dir(sink_port: u16, url: &str) -> HookDir {
    HookDir::new()
        .hook("40-collector", &build::python_collector().bytes)
        .env("TEST_COLLECTOR_KEY", "key-123")
        .manifest(&collector_manifest(sink_port, url))
}

fn collector_manifest(sink_port: u16, url: &str) -> String {
    format!(
        r#"
        [hooks.40-collector]
        memory_mib = 64
        timeout_ms = 5000
        allowed_hosts = ["127.0.0.1:{sink_port}"]
        config = {{ collector_url = "{url}" }}
        secrets = {{ api_key = "TEST_COLLECTOR_KEY" }}
        "#
    )
}

#[tokio::test]
async fn python_collector_posts_the_login_record() {
    let sink = Sink::start().await;
    let url = format!("http://127.0.0.1:{}/send", sink.port);
    let dir = collector_dir(sink.port, &url);
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let hook = &host.hooks()[0];
    let mut events: Vec<_> = hook.events().collect();
    events.sort();
    assert_eq!(events, [EventKind::AfterLogin, EventKind::AfterOauthLogin]);

    let (logs, _guard) = Logs::capture();
    let login = after_login();
    let usage = hook
        .invoke(&login)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\nguest output:\n{}", logs.guest_output()));
    assert_eq!(usage.outbound_sent, [format!("POST {url}")], "{usage:?}");
    assert!(usage.outbound_refused.is_empty(), "{usage:?}");
    let oauth = after_oauth_login("github", true);
    hook.invoke(&oauth).await.expect("oauth login sent");

    let got = sink.received();
    assert_eq!(got.len(), 2, "{got:?}");
    for (req, event) in got.iter().zip([&login, &oauth]) {
        assert_eq!(req.path, "/send");
        assert_eq!(req.headers["authorization"], "Bearer key-123");
        assert_eq!(req.headers["content-type"], "application/json");
        assert_eq!(req.headers["idempotency-key"], event.id);
    }
    assert_eq!(got[0].body, password_login_record(&login));
    let mut oauth_record = password_login_record(&oauth);
    oauth_record["method"] = "oauth".into();
    oauth_record["provider"] = "github".into();
    oauth_record["is_new_user"] = true.into();
    assert_eq!(got[1].body, oauth_record);

    let lines = logs.of_event(&login.id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].message, "collector: login sent");
    assert!(lines[0].fields["fields"].contains("(\"status\", \"200\")"));
    // The key never reaches the log.
    assert!(!logs.guest_output().contains("key-123"));
}

#[tokio::test]
async fn python_collector_is_refused_a_host_not_on_its_list() {
    let sink = Sink::start().await;
    // The sink's port, addressed as `localhost`: not what allowed_hosts names.
    let dir = collector_dir(sink.port, &format!("http://localhost:{}/send", sink.port));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0].invoke(&after_login()).await.unwrap_err();
    let m = guest_error(&failure);
    assert!(
        m.contains("localhost") && m.contains("HttpRequestDenied"),
        "the guest should report the refusal: {m}"
    );
    assert_eq!(failure.usage.outbound_refused.len(), 1, "{failure:?}");
    assert!(
        failure.usage.outbound_refused[0].contains("not in the hook's allowed_hosts"),
        "{failure:?}"
    );
    assert!(failure.usage.outbound_sent.is_empty(), "{failure:?}");
    assert!(sink.received().is_empty());
    assert_eq!(sink.connections(), 0);
}

#[tokio::test]
async fn python_collector_fails_on_a_non_2xx_answer() {
    let sink = Sink::start().await;
    // The sink answers 404 on any path but its own.
    let dir = collector_dir(
        sink.port,
        &format!("http://127.0.0.1:{}/collect", sink.port),
    );
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0].invoke(&after_login()).await.unwrap_err();
    let m = guest_error(&failure);
    assert!(
        m.contains("/collect") && m.contains("answered 404"),
        "the guest should report the status: {m}"
    );
    assert_eq!(failure.usage.outbound_sent.len(), 1, "{failure:?}");
    assert!(sink.received().is_empty());
}

/// A CPython guest imports wasi:sockets and the host links it, so this is the guest that would
/// get past allowed_hosts if the WASI context granted any socket: TCP to a listening loopback
/// port (a socket of its own, and socket.create_connection), UDP to a bound one, a name
/// lookup. All must fail inside the guest, nothing may arrive, and the host must go on serving
/// its other hooks.
#[tokio::test]
async fn python_raw_sockets_are_refused_and_the_host_keeps_working() {
    let sink = Sink::start().await;
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let hostile: &Built = build::python_raw_socket();
    let dir = HookDir::new()
        .hook("10-raw-socket", &hostile.bytes)
        .hook("40-collector", &build::python_collector().bytes)
        .env("TEST_COLLECTOR_KEY", "key-123")
        .manifest(&format!(
            r#"
            [hooks.10-raw-socket]
            memory_mib = 64
            timeout_ms = 5000
            config = {{ tcp_target = "127.0.0.1:{tcp}", udp_target = "127.0.0.1:{udp_port}", name = "localhost" }}
            {collector}
            "#,
            tcp = sink.port,
            collector = collector_manifest(sink.port, &format!("http://127.0.0.1:{}/send", sink.port)),
        ));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (hostile, collector) = (&host.hooks()[0], &host.hooks()[1]);
    assert_eq!(hostile.name(), "10-raw-socket");

    let (logs, _guard) = Logs::capture();
    for _ in 0..2 {
        let login = after_login();
        let failure = hostile.invoke(&login).await.unwrap_err();
        let FailureKind::GuestError(m) = &failure.kind else {
            panic!(
                "expected the guest to report the refusals, got {failure:?}\nguest output:\n{}",
                logs.guest_output()
            );
        };
        // What CPython raised for each attempt (the guest logs them too).
        let outcome = |kind: &str| {
            m.split("; ")
                .find(|o| o.starts_with(kind))
                .unwrap_or_else(|| panic!("no {kind} outcome in {m}"))
                .to_owned()
        };
        // Creating a TCP or UDP socket is refused outright (access-denied).
        assert!(
            outcome("tcp:").starts_with("tcp: PermissionError: [Errno 2] Permission denied"),
            "{m}"
        );
        assert!(
            outcome("udp:").starts_with("udp: PermissionError: [Errno 2] Permission denied"),
            "{m}"
        );
        // Every lookup fails, even of an IP literal, which is where create_connection stops.
        assert!(
            outcome("lookup:").starts_with("lookup: gaierror: [Errno -4] Non-recoverable"),
            "{m}"
        );
        assert!(
            outcome("create_connection:")
                .starts_with("create_connection: gaierror: [Errno -4] Non-recoverable"),
            "{m}"
        );
        assert_eq!(logs.of_event(&login.id).len(), 4, "{}", logs.guest_output());
        // wasi:http was not used, so nothing went through allowed_hosts either way.
        assert!(
            failure.usage.outbound_sent.is_empty() && failure.usage.outbound_refused.is_empty()
        );
    }
    assert_eq!(
        sink.connections(),
        0,
        "a raw TCP connection reached the sink"
    );
    let mut buf = [0u8; 64];
    assert!(
        udp.try_recv(&mut buf).is_err(),
        "a raw UDP datagram reached the test's socket"
    );

    // The host, and the allowed path out, keep working.
    collector
        .invoke(&after_login())
        .await
        .expect("collector still sends");
    assert_eq!(sink.received().len(), 1);
}
