//! The Rust guests of guest-examples/, built by the test run, doing real work: outbound HTTP to a
//! local sink, logging, in registration order.

use std::time::Duration;

use hookauth::events::EventHandler;
use hookauth::hooks::{FailureKind, HookHost};

use crate::support::{
    HookDir, Logs, Sink, after_login, after_register, guest, guest_error, send_verification_email,
};

fn mail_dir(sink_port: u16, url_host: &str, path: &str, extra: &str) -> HookDir {
    HookDir::new()
        .hook("10-audit", &guest("audit-log"))
        .hook("20-welcome", &guest("welcome-email"))
        .env("TEST_MAILER_KEY", "key-123")
        .manifest(&format!(
            r#"
            [hooks.20-welcome]
            allowed_hosts = ["127.0.0.1:{sink_port}"]
            config = {{ url = "http://{url_host}:{sink_port}{path}", verify_url = "https://app.example/verify" }}
            secrets = {{ api_key = "TEST_MAILER_KEY" }}
            {extra}
            "#
        ))
}

#[tokio::test]
async fn the_welcome_hook_posts_the_email_to_the_api() {
    let sink = Sink::start().await;
    let dir = mail_dir(sink.port, "127.0.0.1", "/send", "");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let welcome = &host.hooks()[1];

    let event = after_register();
    let usage = welcome.invoke(&event).await.expect("email sent");
    assert_eq!(usage.outbound_sent.len(), 1, "{usage:?}");

    let verify = send_verification_email("tok-456");
    welcome.invoke(&verify).await.expect("verification sent");

    let got = sink.received();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].path, "/send");
    assert_eq!(got[0].headers["authorization"], "Bearer key-123");
    assert_eq!(got[0].headers["content-type"], "application/json");
    assert_eq!(got[0].headers["idempotency-key"], event.id);
    assert_eq!(got[0].body["to"], "ada@example.com");
    assert_eq!(got[0].body["template"], "welcome");
    assert_eq!(
        got[0].body["user_id"],
        "0190b7a4-0000-7000-8000-000000000001"
    );
    assert_eq!(got[1].body["template"], "verify-email");
    assert_eq!(
        got[1].body["link"],
        "https://app.example/verify?token=tok-456"
    );
    assert_eq!(got[1].headers["idempotency-key"], verify.id);

    // after_login is not one of its events: sent to the hook anyway, it is refused before
    // instantiation (no fuel burnt), through the handler trait it is not this hook's
    // business, and nothing reaches the API.
    assert!(
        !welcome
            .events()
            .any(|k| k == hookauth::domain::EventKind::AfterLogin)
    );
    let connections = sink.connections();
    let failure = welcome.invoke(&after_login()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::NotSubscribed, "{failure:?}");
    assert_eq!(failure.usage.fuel_used, 0);
    assert!(failure.usage.outbound_sent.is_empty());
    welcome.handle(&after_login()).await.unwrap();
    assert_eq!(sink.received().len(), 2);
    assert_eq!(
        sink.connections(),
        connections,
        "after_login opened no connection"
    );
}

#[tokio::test]
async fn hooks_run_in_registration_order_and_both_see_the_event() {
    let sink = Sink::start().await;
    let dir = mail_dir(sink.port, "127.0.0.1", "/send", "");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    let event = after_register();
    // What the dispatcher does: every handler of the tenant that handles the kind, in order.
    for handler in host.handlers().iter().filter(|h| h.handles(event.kind())) {
        handler.handle(&event).await.unwrap();
    }
    let order: Vec<_> = logs
        .messages_where("event_id", &event.id)
        .into_iter()
        .filter(|m| m.starts_with("audit") || m.starts_with("email"))
        .collect();
    assert_eq!(order, ["audit: after_register", "email sent"]);

    // The audit hook's log line carries the host's context and the guest's fields.
    let audit = logs
        .all()
        .into_iter()
        .find(|l| l.message == "audit: after_register")
        .unwrap();
    assert_eq!(audit.fields["hook"], "10-audit");
    assert_eq!(audit.fields["tenant"], "default");
    assert_eq!(audit.fields["request_id"], event.context.request_id);
    assert!(
        audit.fields["fields"].contains("ada@example.com"),
        "{audit:?}"
    );

    // Reordered by hooks.toml: the welcome hook first.
    let dir = mail_dir(sink.port, "127.0.0.1", "/send", "order = -1");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let names: Vec<_> = host
        .handlers()
        .iter()
        .map(|h| h.name().to_owned())
        .collect();
    assert_eq!(names, ["20-welcome", "10-audit"]);
}

#[tokio::test]
async fn outbound_http_to_a_host_not_on_the_list_is_refused_before_connecting() {
    let sink = Sink::start().await;
    // Same port, but addressed as `localhost`: not what the allow-list names.
    let dir = mail_dir(sink.port, "localhost", "/send", "");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    let failure = host.hooks()[1].invoke(&after_register()).await.unwrap_err();
    let m = guest_error(&failure);
    assert!(m.contains("HttpRequestDenied"), "{m}");
    assert_eq!(failure.usage.outbound_refused.len(), 1);
    assert!(failure.usage.outbound_refused[0].contains("localhost"));
    assert!(sink.received().is_empty());
    assert_eq!(sink.connections(), 0);
    assert!(
        logs.all()
            .iter()
            .any(|l| l.message == "outbound request refused" && l.fields["hook"] == "20-welcome")
    );
}

#[tokio::test]
async fn a_hook_waiting_on_a_slow_api_hits_its_deadline() {
    let sink = Sink::start().await;
    let dir = mail_dir(sink.port, "127.0.0.1", "/hang", "timeout_ms = 300");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[1].invoke(&after_register()).await.unwrap_err();
    // Stopped by its own deadline (not by fuel or a trap), while waiting on the API: the
    // request went out and the invocation lasted at least the configured 300 ms. No upper
    // bound on the time: how long past its deadline a busy machine takes to stop it is the
    // benches' business.
    assert_eq!(failure.kind, FailureKind::Timeout, "{failure:?}");
    assert_eq!(failure.usage.outbound_sent.len(), 1, "{failure:?}");
    assert!(
        failure.usage.duration >= Duration::from_millis(300),
        "{failure:?}"
    );

    // The host is fine afterwards: the audit hook still runs.
    host.hooks()[0].invoke(&after_login()).await.unwrap();
}

#[tokio::test]
async fn a_real_guest_handles_an_event_on_a_small_fraction_of_its_fuel() {
    let dir = HookDir::new().hook("audit", &guest("audit-log"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let usage = host.hooks()[0].invoke(&after_login()).await.unwrap();
    assert!(
        usage.fuel_used > 0 && usage.fuel_used < 1_000_000,
        "{usage:?}"
    );
}
