//! guest-examples/python: the componentize-py analytics hook, one record per login.

use hookauth::domain::EventKind;
use hookauth::hooks::HookHost;

use crate::build;
use crate::support::{HookDir, Logs, after_login, after_oauth_login};

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
/// component (`POOL_CORE_INSTANCES_PER_COMPONENT`). Without `--stub-wasi` it would import
/// wasi:sockets, which the host refuses.
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
    assert_eq!(lines[0].fields["hook"], "40-analytics");
    assert_eq!(lines[0].fields["event"], "after_login");
    let record = record_of(&lines[0].fields["fields"]);
    assert_eq!(
        record,
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
    );

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
