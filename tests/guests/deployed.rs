//! The JavaScript, Python and C examples deployed together in one server's hooks directory, as
//! an operator would, and driven over HTTP: each fires on the real flows it subscribes to.
//! The verification and reset tokens reach the "user" only through the JS hook's emails, and
//! they work.

use serde_json::json;

use crate::server::{PASSWORD, Server};
use crate::support::{HookDir, Sink};
use crate::{build, javascript};

/// The token in an email's `link` (`https://...?token=T`, URL-encoded by the hook).
fn token_of(email: &serde_json::Value) -> String {
    let link = email["link"].as_str().unwrap();
    let encoded = link.split_once("?token=").unwrap().1;
    // The server's tokens are URL-safe base64: nothing the hook had to encode.
    assert!(!encoded.contains('%'), "{link}");
    encoded.to_owned()
}

#[tokio::test]
async fn js_python_and_c_hooks_fire_on_real_flows_over_http() {
    let (js, python, c) = (build::js_quickjs(), build::python(), build::c());
    let sink = Sink::start().await;
    let dir = HookDir::new()
        .hook("10-audit-c", &c.bytes)
        .hook("30-email-js", &js.bytes)
        .hook("40-analytics", &python.bytes)
        .manifest(&format!(
            "{}\n[hooks.40-analytics]\nmemory_mib = 64\ntimeout_ms = 5000\n",
            javascript::email_entry(sink.port, "127.0.0.1")
        ));
    let server = Server::start(dir.dir.path(), &[("TEST_MAILER_KEY", "key-123")]);

    // Registration: the C audit hook. Login: the Python analytics record, and the audit line.
    server.register("ada@example.com").await;
    let access = server.login("ada@example.com").await;
    let user_id = server.me(&access).await;
    server
        .wait_for_line(&["audit: after_register", "hook=\"10-audit-c\"", &user_id])
        .await;
    let line = server
        .wait_for_line(&["analytics: login", "hook=\"40-analytics\"", &user_id])
        .await;
    assert!(line.contains(r#"\"method\":\"password\""#), "{line}");
    server
        .wait_for_line(&["audit: after_login", "hook=\"10-audit-c\"", &user_id])
        .await;

    // Email verification: the JS hook mails the token; confirming with it verifies the user.
    let (status, body) = server
        .post("/verify-email/request", Some(&access), json!({}))
        .await;
    assert_eq!(status, 202, "{body}");
    let email = wait_for_email(&sink, 1).await;
    assert_eq!(email.headers["authorization"], "Bearer key-123");
    assert_eq!(email.body["to"], "ada@example.com");
    assert_eq!(email.body["template"], "verify-email");
    let (status, body) = server
        .post(
            "/verify-email/confirm",
            None,
            json!({"token": token_of(&email.body)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    server
        .wait_for_line(&["audit: after_email_verify", &user_id])
        .await;

    // Password reset: the same hook mails the reset token, which sets a new password.
    let (status, body) = server
        .post(
            "/password-reset/request",
            None,
            json!({"email": "ada@example.com"}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let email = wait_for_email(&sink, 2).await;
    assert_eq!(email.body["template"], "reset-password");
    let new_password = format!("{PASSWORD}-2");
    let (status, body) = server
        .post(
            "/password-reset/confirm",
            None,
            json!({"token": token_of(&email.body), "new_password": new_password}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server
        .post(
            "/login",
            None,
            json!({"email": "ada@example.com", "password": new_password}),
        )
        .await;
    assert_eq!(status, 200);

    // No hook failed along the way, at any level: read from the outbox, where every
    // delivery's outcome is recorded (a trap, fuel, memory or timeout failure is a `failed`
    // delivery with its reason, whatever level it was logged at).
    let deliveries = server.settled_deliveries().await;
    let failed: Vec<_> = deliveries
        .iter()
        .filter(|d| d.status != "delivered")
        .collect();
    assert!(failed.is_empty(), "{failed:?}\n{}", server.log());
    let delivered_to = |hook: &str| deliveries.iter().filter(|d| d.hook == hook).count();
    // C: after_register, after_login, after_email_verify, the second after_login (at least);
    // JS: the two emails at least; Python: the two logins.
    assert!(delivered_to("10-audit-c") >= 3, "{deliveries:?}");
    assert!(delivered_to("30-email-js") >= 2, "{deliveries:?}");
    assert!(delivered_to("40-analytics") >= 2, "{deliveries:?}");
}

/// Waits for the sink's `n`th email and returns it.
async fn wait_for_email(sink: &Sink, n: usize) -> crate::shared::Received {
    for _ in 0..600 {
        if let Some(email) = sink.received().get(n - 1) {
            return email.clone();
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("email {n} never arrived: {:?}", sink.received());
}
