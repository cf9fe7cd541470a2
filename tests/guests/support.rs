//! Helpers: guest builds (once per run), hook directories, sample events, log capture and a
//! local HTTP sink standing in for an email API. Modelled on tests/hooks/support.rs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hookauth::domain::{Event, EventPayload, RequestContext, TenantId, UserSnapshot};
use hookauth::hooks::HookSettings;
use tempfile::TempDir;

pub use crate::shared::{CRATE_DIR, Sink};
pub const INSTALL: &str = "scripts/install-guest-toolchains";

/// Where the guests of this run are built (not in the source tree).
pub fn out_dir() -> PathBuf {
    let dir = Path::new(CRATE_DIR).join("target/guest-languages");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn example_dir(lang: &str) -> PathBuf {
    Path::new(CRATE_DIR).join("guest-examples").join(lang)
}

/// Fails the test, naming the install script, when a tool the example needs is not there.
pub fn require_tool(lang: &str, path: &Path, what: &str) {
    assert!(
        path.exists(),
        "the {lang} guest toolchain is missing: {} not found ({what}).\n\
         Run `{INSTALL}` (CI's .ci/run does) to install every guest toolchain.",
        path.display()
    );
}

/// Fails the test, naming the install script, when a command is not on PATH or not runnable.
pub fn require_command(lang: &str, program: &str, version_arg: &str) {
    let ok = Command::new(program)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        ok,
        "the {lang} guest toolchain is missing: `{program} {version_arg}` did not run.\n\
         Run `{INSTALL}` (CI's .ci/run does) to install every guest toolchain."
    );
}

/// Runs a build command; panics with its output when it fails. Returns how long it took.
pub fn run(what: &str, cmd: &mut Command) -> std::time::Duration {
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed ({cmd:?}):\n--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

pub fn read(file: &Path) -> Vec<u8> {
    std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

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
        s.max_concurrent = 16;
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

pub fn after_logout() -> Event {
    event(EventPayload::AfterLogout { user_id: user().id })
}

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

pub fn send_password_reset_email(token: &str) -> Event {
    event(EventPayload::SendPasswordResetEmail {
        email: "ada@example.com".into(),
        token: token.into(),
    })
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

    /// Everything the guests wrote (through host.log or stdio), for failure messages.
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
