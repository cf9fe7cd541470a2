//! guest-examples/js: one source, built for QuickJS (jco --backend qjs) and for SpiderMonkey
//! (componentize-js), sending the verification and reset emails to a local "email API".

use hookauth::domain::EventKind;
use hookauth::hooks::HookHost;

use crate::build::{self, Built};
use crate::support::{
    HookDir, Logs, Sink, guest_error, send_password_reset_email, send_verification_email,
};

/// The hooks.toml entry of the JS email hook, as `30-email-js`, sending to the sink at
/// `http://{url_host}:{sink_port}/send` with the API key in `TEST_MAILER_KEY`.
pub fn email_entry(sink_port: u16, url_host: &str) -> String {
    format!(
        r#"
        [hooks.30-email-js]
        memory_mib = 64
        timeout_ms = 5000
        allowed_hosts = ["127.0.0.1:{sink_port}"]
        config = {{ url = "http://{url_host}:{sink_port}/send", verify_url = "https://app.example/verify", reset_url = "https://app.example/reset" }}
        secrets = {{ api_key = "TEST_MAILER_KEY" }}
        "#
    )
}

fn email_dir(component: &Built, sink_port: u16, url_host: &str) -> HookDir {
    HookDir::new()
        .hook("30-email-js", &component.bytes)
        .env("TEST_MAILER_KEY", "key-123")
        .manifest(&email_entry(sink_port, url_host))
}

async fn sends_the_verification_and_reset_emails(component: &Built) {
    let sink = Sink::start().await;
    let dir = email_dir(component, sink.port, "127.0.0.1");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let hook = &host.hooks()[0];
    let mut events: Vec<_> = hook.events().collect();
    events.sort();
    assert_eq!(
        events,
        [
            EventKind::SendVerificationEmail,
            EventKind::SendPasswordResetEmail
        ]
    );

    let (logs, _guard) = Logs::capture();
    let verify = send_verification_email("tok-456");
    let usage = hook
        .invoke(&verify)
        .await
        .unwrap_or_else(|e| panic!("{e:?}\nguest output:\n{}", logs.guest_output()));
    assert_eq!(usage.outbound_sent.len(), 1, "{usage:?}");
    assert!(usage.outbound_refused.is_empty(), "{usage:?}");
    let reset = send_password_reset_email("reset/789 &x");
    hook.invoke(&reset).await.expect("reset email sent");

    let got = sink.received();
    assert_eq!(got.len(), 2, "{got:?}");
    for (req, event) in got.iter().zip([&verify, &reset]) {
        assert_eq!(req.path, "/send");
        assert_eq!(req.headers["authorization"], "Bearer key-123");
        assert_eq!(req.headers["content-type"], "application/json");
        assert_eq!(req.headers["idempotency-key"], event.id);
        assert_eq!(req.body["to"], "ada@example.com");
    }
    assert_eq!(got[0].body["template"], "verify-email");
    assert_eq!(got[0].body["subject"], "Verify your email");
    assert_eq!(
        got[0].body["link"],
        "https://app.example/verify?token=tok-456"
    );
    assert_eq!(got[1].body["template"], "reset-password");
    // The token is URL-encoded into the link.
    assert_eq!(
        got[1].body["link"],
        "https://app.example/reset?token=reset%2F789%20%26x"
    );

    // It reports success through host.log, with the event's context attached by the host.
    let lines = logs.of_event(&verify.id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].message, "email sent");
    assert_eq!(lines[0].fields["hook"], "30-email-js");
    assert!(
        lines[0].fields["fields"].contains("verify-email"),
        "{lines:?}"
    );
    // ... and never logs the token or the key.
    assert!(
        !lines[0].fields["fields"].contains("tok-456")
            && !lines[0].fields["fields"].contains("key-123")
    );

    // Not subscribed to after_register: the host does not call it.
    assert!(!hook.events().any(|k| k == EventKind::AfterRegister));
}

async fn is_refused_a_host_not_on_its_list(component: &Built) {
    let sink = Sink::start().await;
    // Same port, addressed as `localhost`: not what allowed_hosts names.
    let dir = email_dir(component, sink.port, "localhost");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0]
        .invoke(&send_verification_email("tok-1"))
        .await
        .unwrap_err();
    let m = guest_error(&failure);
    assert!(
        m.contains("localhost") && m.to_lowercase().contains("denied"),
        "the guest should report the refusal: {m}"
    );
    assert_eq!(failure.usage.outbound_refused.len(), 1, "{failure:?}");
    assert!(sink.received().is_empty());
}

#[tokio::test]
async fn quickjs_hook_sends_the_verification_and_reset_emails() {
    sends_the_verification_and_reset_emails(build::js_quickjs()).await;
}

#[tokio::test]
async fn quickjs_hook_is_refused_a_host_not_on_its_list() {
    is_refused_a_host_not_on_its_list(build::js_quickjs()).await;
}

#[tokio::test]
async fn spidermonkey_build_of_the_same_source_sends_the_same_emails() {
    sends_the_verification_and_reset_emails(build::js_spidermonkey()).await;
}

#[tokio::test]
async fn spidermonkey_build_is_refused_a_host_not_on_its_list() {
    is_refused_a_host_not_on_its_list(build::js_spidermonkey()).await;
}
