//! guest-examples/c: the audit hook in C (clang + wasi-libc + wit-bindgen c + the preview1
//! adapter).

use hookauth::domain::EventKind;
use hookauth::hooks::HookHost;

use crate::build;
use crate::support::{
    HookDir, Logs, after_logout, after_oauth_login, after_register, send_password_reset_email,
};

#[tokio::test]
async fn c_hook_audits_every_event_without_logging_tokens() {
    let component = build::c();
    let dir = HookDir::new()
        .hook("10-audit-c", &component.bytes)
        .manifest("[hooks.10-audit-c]\nfuel = 10_000_000\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let hook = &host.hooks()[0];
    // Every event this server emits.
    for kind in EventKind::ALL {
        assert!(hook.events().any(|k| k == kind), "{kind} not subscribed");
    }

    let (logs, _guard) = Logs::capture();
    let register = after_register();
    let usage = hook.invoke(&register).await.expect("audited");
    // Compiled C: a few thousand instructions.
    assert!(usage.fuel_used < 100_000, "{usage:?}");
    let lines = logs.of_event(&register.id);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].message, "audit: after_register");
    assert_eq!(lines[0].fields["hook"], "10-audit-c");
    assert_eq!(lines[0].fields["tenant"], "default");
    assert_eq!(
        lines[0].fields["fields"],
        format!(
            "[(\"event_id\", \"{}\"), (\"tenant\", \"default\"), (\"client_ip\", \"203.0.113.7\"), \
             (\"user_id\", \"0190b7a4-0000-7000-8000-000000000001\"), (\"email\", \"ada@example.com\")]",
            register.id
        )
    );

    let logout = after_logout();
    hook.invoke(&logout).await.unwrap();
    let lines = logs.of_event(&logout.id);
    assert_eq!(lines[0].message, "audit: after_logout");
    assert!(
        lines[0].fields["fields"]
            .contains("(\"user_id\", \"0190b7a4-0000-7000-8000-000000000001\")")
    );

    let oauth = after_oauth_login("google", false);
    hook.invoke(&oauth).await.unwrap();
    let lines = logs.of_event(&oauth.id);
    assert_eq!(lines[0].message, "audit: after_oauth_login");
    assert!(
        lines[0].fields["fields"]
            .contains("(\"provider\", \"google\"), (\"is_new_user\", \"false\")")
    );

    // The reset token is a credential: the address is logged, the token never.
    let reset = send_password_reset_email("secret-reset-token");
    hook.invoke(&reset).await.unwrap();
    let lines = logs.of_event(&reset.id);
    assert_eq!(lines[0].message, "audit: send_password_reset_email");
    assert!(lines[0].fields["fields"].contains("(\"email\", \"ada@example.com\")"));
    assert!(!lines[0].fields["fields"].contains("secret-reset-token"));
}
