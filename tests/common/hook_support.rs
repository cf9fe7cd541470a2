//! Hook-test helpers shared by the hook-host suite (`tests/hooks`), the language suite
//! (`tests/guests`) and benches/guest_languages.rs: hooks directories, sample events and the
//! capture of what guests log.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use hookauth::domain::{Event, EventPayload, RequestContext, TenantId, UserSnapshot};
use hookauth::hooks::{FailureKind, HookFailure, HookSettings};
use tempfile::TempDir;

/// A hooks directory being put together.
pub struct HookDir {
    pub dir: TempDir,
    pub env: HashMap<String, String>,
}

impl HookDir {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            env: HashMap::new(),
        }
    }

    pub fn hook(self, file_stem: &str, bytes: &[u8]) -> Self {
        std::fs::write(self.dir.path().join(format!("{file_stem}.wasm")), bytes).unwrap();
        self
    }

    #[allow(
        dead_code,
        reason = "tests/guests writes no files besides hooks and hooks.toml"
    )]
    pub fn file(self, name: &str, bytes: &[u8]) -> Self {
        std::fs::write(self.dir.path().join(name), bytes).unwrap();
        self
    }

    pub fn manifest(self, toml: &str) -> Self {
        std::fs::write(self.dir.path().join("hooks.toml"), toml).unwrap();
        self
    }

    pub fn env(mut self, var: &str, value: &str) -> Self {
        self.env.insert(var.into(), value.into());
        self
    }

    pub fn settings(&self) -> HookSettings {
        let mut s = HookSettings::new(self.dir.path());
        s.env = Some(self.env.clone());
        s.max_concurrent = 64;
        s
    }
}

pub fn user() -> UserSnapshot {
    let profile = serde_json::json!({"display_name": "Ada"});
    UserSnapshot {
        id: "0190b7a4-0000-7000-8000-000000000001".into(),
        email: "ada@example.com".into(),
        is_active: true,
        is_verified: false,
        is_superuser: false,
        roles: vec!["member".into(), "admin".into()],
        profile: profile.as_object().unwrap().clone(),
    }
}

pub fn event(payload: EventPayload) -> Event {
    static SEQ: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(1);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Event {
        id: format!("0190b7a4-0000-7000-8000-{seq:012}"),
        seq,
        tenant: TenantId::default_tenant(),
        occurred_at: 1_750_000_000_000,
        context: RequestContext {
            request_id: format!("req-{seq}"),
            client_ip: Some("203.0.113.7".into()),
            user_agent: Some("tests".into()),
        },
        payload,
    }
}

pub fn after_register() -> Event {
    event(EventPayload::AfterRegister { user: user() })
}

pub fn after_login() -> Event {
    event(EventPayload::AfterLogin { user: user() })
}

#[allow(
    dead_code,
    reason = "for tests/guests; tests/hooks does not send this event"
)]
pub fn after_logout() -> Event {
    event(EventPayload::AfterLogout { user_id: user().id })
}

#[allow(
    dead_code,
    reason = "for tests/guests; tests/hooks does not send this event"
)]
pub fn after_oauth_login(provider: &str, is_new_user: bool) -> Event {
    event(EventPayload::AfterOauthLogin {
        user: user(),
        provider: provider.into(),
        is_new_user,
    })
}

pub fn send_verification_email(token: &str) -> Event {
    event(EventPayload::SendVerificationEmail {
        email: "ada@example.com".into(),
        token: token.into(),
    })
}

#[allow(
    dead_code,
    reason = "for tests/guests; tests/hooks does not send this event"
)]
pub fn send_password_reset_email(token: &str) -> Event {
    event(EventPayload::SendPasswordResetEmail {
        email: "ada@example.com".into(),
        token: token.into(),
    })
}

/// The message of a hook's `err(...)`; panics (naming what happened instead) on any other
/// failure: a trap is not the hook reporting a problem.
pub fn guest_error(failure: &HookFailure) -> &str {
    match &failure.kind {
        FailureKind::GuestError(message) => message,
        other => panic!("expected the guest to report an error, got {other:?}: {failure:?}"),
    }
}

/// One tracing event, flattened.
#[derive(Debug, Clone)]
pub struct Logged {
    pub target: String,
    pub message: String,
    pub fields: HashMap<String, String>,
}

/// Records tracing events of the current thread while the guard lives.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<Logged>>>);

impl Logs {
    pub fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
        use tracing_subscriber::layer::SubscriberExt;
        let logs = Logs::default();
        let subscriber = tracing_subscriber::registry().with(logs.clone());
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    #[allow(dead_code, reason = "tests/guests reads guest output by event")]
    pub fn all(&self) -> Vec<Logged> {
        self.0.lock().unwrap().clone()
    }

    /// What guests wrote (through host.log or stdio), in order, of lines with `field == value`.
    #[allow(dead_code, reason = "tests/guests reads guest output by event")]
    pub fn messages_where(&self, field: &str, value: &str) -> Vec<String> {
        self.all()
            .into_iter()
            .filter(|l| l.target == "hookauth::hook")
            .filter(|l| l.fields.get(field).is_some_and(|v| v == value))
            .map(|l| l.message)
            .collect()
    }

    /// Everything the guests wrote (through host.log or stdio), for failure messages.
    #[allow(dead_code, reason = "tests/hooks asserts on single lines instead")]
    pub fn guest_output(&self) -> String {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.target == "hookauth::hook")
            .map(|l| format!("{} {:?}\n", l.message, l.fields))
            .collect()
    }

    /// What guests wrote through host.log (or stdio) for one event, in order.
    #[allow(dead_code, reason = "tests/hooks asserts on single lines instead")]
    pub fn of_event(&self, event_id: &str) -> Vec<Logged> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.target == "hookauth::hook")
            .filter(|l| l.fields.get("event_id").is_some_and(|v| v == event_id))
            .cloned()
            .collect()
    }
}

struct Visitor<'a>(&'a mut Logged);

impl tracing::field::Visit for Visitor<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        let v = format!("{value:?}");
        if field.name() == "message" {
            self.0.message = v;
        } else {
            self.0.fields.insert(field.name().into(), v);
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.message = value.into();
        } else {
            self.0.fields.insert(field.name().into(), value.into());
        }
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Logs {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let mut logged = Logged {
            target: event.metadata().target().to_owned(),
            message: String::new(),
            fields: HashMap::new(),
        };
        event.record(&mut Visitor(&mut logged));
        self.0.lock().unwrap().push(logged);
    }
}
