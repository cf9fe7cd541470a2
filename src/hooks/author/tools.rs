//! What a hook author runs locally: `hookauth hooks check` (is this a valid hook, and does a
//! hooks.toml entry grant what it needs?) and `hookauth hooks run` (one event through the hook,
//! with the server's limits and capabilities). Both load the file exactly as the server would,
//! from a scratch hooks directory holding only it and its hooks.toml entry.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value};

use crate::domain::{
    DecisionPoint, Event, EventKind, EventPayload, GateAnswer, GateContext, GateQuestion, Grant,
    Password, PasswordReason, PasswordSubject, RequestContext, TenantId, UserSnapshot,
    new_event_id,
};
use crate::hooks::Usage;
use crate::hooks::{HookHost, HookSettings, LoadError, WasmHook};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Io(String),
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Load(#[from] LoadError),
}

/// What `hooks check` reports about a hook that loaded.
#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub hook: String,
    pub sha256: String,
    pub wit: Option<String>,
    pub events: Vec<&'static str>,
    pub imports: Vec<String>,
    pub fuel: u64,
    pub memory_bytes: usize,
    pub timeout_ms: u128,
    /// The gate interface it exports (`hookauth:hooks/gate@0.2.0`), if any.
    pub gate: Option<String>,
    /// The decision points it serves, and its gate budget and `on_error`.
    pub decision_points: Vec<&'static str>,
    pub gate_fuel: Option<u64>,
    pub gate_timeout_ms: Option<u128>,
    pub on_error: Option<&'static str>,
}

/// What `hooks run` reports about one invocation.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub hook: String,
    pub event: &'static str,
    pub event_id: String,
    /// `ok`, or why the invocation failed (guest error, out of fuel, timeout, ...).
    pub result: String,
    pub fuel_used: u64,
    pub duration_ms: f64,
    /// The largest linear memory the invocation reached.
    pub peak_memory_bytes: usize,
    /// All of the instance's linear memories together (JS engines have two); `memory_mib`
    /// caps this plus the instance's tables.
    pub linear_memory_bytes: usize,
    pub outbound_sent: Vec<String>,
    /// The first few refused requests, with the reason.
    pub outbound_refused: Vec<String>,
    /// Every refused request, counted.
    pub outbound_refused_total: u64,
    /// Requests refused, or response bodies cut, by an outbound cap (`outbound_max_*`).
    pub outbound_limited: u32,
    pub outbound_response_bytes: u64,
    /// `log` lines dropped past `log_max_lines` / `log_max_bytes`.
    pub log_dropped_lines: u32,
    /// stdout/stderr lines dropped past the cap.
    pub stdio_dropped_lines: usize,
    /// Bytes cut from the hook's `err(...)` string past `error_max_bytes`.
    pub error_bytes_cut: usize,
    /// For a decision point: what the gate decided (`{"decision": "deny", "code": ...,
    /// "message": ...}`, `{"decision": "claims", "claims": {...}}`, ...), before the server's
    /// checks (reserved claims, caps, unknown roles are the server's to refuse).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Value>,
}

/// A scratch hooks directory with one hook, removed on drop.
struct Staged {
    dir: PathBuf,
}

impl Staged {
    /// `name` is the hook's name (its hooks.toml key); `manifest` the operator's hooks.toml, of
    /// which only that hook's entry is kept.
    fn new(file: &Path, name: &str, manifest: Option<&Path>) -> Result<Self, ToolError> {
        let dir = std::env::temp_dir().join(format!("hookauth-hook-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).map_err(|e| ToolError::Io(e.to_string()))?;
        let staged = Self { dir };
        std::fs::copy(file, staged.dir.join(format!("{name}.wasm")))
            .map_err(|e| ToolError::Io(format!("{}: {e}", file.display())))?;
        if let Some(manifest) = manifest {
            let text = std::fs::read_to_string(manifest)
                .map_err(|e| ToolError::Io(format!("{}: {e}", manifest.display())))?;
            let table: toml::Table = text
                .parse()
                .map_err(|e| ToolError::Input(format!("{}: {e}", manifest.display())))?;
            let entry = table
                .get("hooks")
                .and_then(|h| h.get(name))
                .cloned()
                .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
            let mut hooks = toml::Table::new();
            hooks.insert(name.to_owned(), entry);
            let mut only = toml::Table::new();
            only.insert("hooks".into(), toml::Value::Table(hooks));
            std::fs::write(staged.dir.join("hooks.toml"), only.to_string())
                .map_err(|e| ToolError::Io(e.to_string()))?;
        }
        Ok(staged)
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The hook's name: `--name`, else the file name without `.wasm`.
pub fn hook_name(file: &Path, name: Option<&str>) -> String {
    name.map(str::to_owned).unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "hook".into())
    })
}

async fn load(file: &Path, name: &str, manifest: Option<&Path>) -> Result<HookHost, ToolError> {
    let staged = Staged::new(file, name, manifest)?;
    let mut settings = HookSettings::new(&staged.dir);
    settings.max_concurrent = 4;
    Ok(HookHost::load(&settings).await?)
}

fn first_hook(host: &HookHost) -> Result<&WasmHook, ToolError> {
    host.hooks()
        .first()
        .map(|h| h.as_ref())
        .ok_or_else(|| ToolError::Input("no hook was loaded".into()))
}

/// Validates the hook as the server would at start; `Err` lists every problem.
pub async fn check(
    file: &Path,
    name: Option<&str>,
    manifest: Option<&Path>,
) -> Result<CheckReport, ToolError> {
    let name = hook_name(file, name);
    let host = load(file, &name, manifest).await?;
    let hook = first_hook(&host)?;
    Ok(CheckReport {
        hook: hook.name().to_owned(),
        sha256: hook.sha256().to_owned(),
        wit: hook.handler_interface(),
        events: hook.events().map(EventKind::as_str).collect(),
        imports: hook.imports(),
        fuel: hook.limits().fuel,
        memory_bytes: hook.limits().memory_bytes,
        timeout_ms: hook.limits().timeout.as_millis(),
        gate: hook.gate_interface(),
        decision_points: hook
            .gate()
            .map(|g| g.points.iter().map(|p| p.as_str()).collect())
            .unwrap_or_default(),
        gate_fuel: hook.gate().map(|g| g.limits.fuel),
        gate_timeout_ms: hook.gate().map(|g| g.limits.timeout.as_millis()),
        on_error: hook.gate().map(|g| g.on_error.as_str()),
    })
}

/// What `hooks run --event` names: an event, or a gate's decision point.
pub enum RunTarget {
    Event(EventKind),
    Decision(DecisionPoint),
}

impl RunTarget {
    pub fn parse(raw: &str) -> Option<Self> {
        EventKind::parse(raw)
            .map(RunTarget::Event)
            .or_else(|| DecisionPoint::parse(raw).map(RunTarget::Decision))
    }
}

/// Asks the hook's gate one question. `payload` holds the arguments as JSON (`{"email",
/// "profile"}`, `{"user"}`, `{"user" or "email", "password", "why"}`, `{"user", "grant"}`);
/// without it a sample is used.
pub async fn decide(
    file: &Path,
    name: Option<&str>,
    manifest: Option<&Path>,
    point: DecisionPoint,
    payload: Option<Value>,
) -> Result<RunReport, ToolError> {
    let name = hook_name(file, name);
    let host = load(file, &name, manifest).await?;
    let hook = first_hook(&host)?;
    if !hook.serves(point) {
        let serves: Vec<&str> = hook
            .gate()
            .map(|g| g.points.iter().map(|p| p.as_str()).collect())
            .unwrap_or_default();
        return Err(ToolError::Input(format!(
            "{name} is not a gate for {}; it serves: {}",
            point.as_str(),
            if serves.is_empty() {
                "none".to_owned()
            } else {
                serves.join(", ")
            }
        )));
    }
    let question = question_of(point, payload)?;
    let ctx = GateContext {
        tenant: TenantId::default_tenant(),
        decision_id: new_event_id(),
        request: sample_context(),
    };
    let (answer, usage) = hook.ask(&question, &ctx).await;
    let (result, decision) = match answer {
        Ok(answer) => ("ok".to_owned(), Some(answer_json(&answer))),
        Err(failure) => (format!("{}: {}", failure.label, failure.reason), None),
    };
    Ok(report(
        name,
        point.as_str(),
        ctx.decision_id,
        result,
        usage,
        decision,
    ))
}

fn answer_json(answer: &GateAnswer) -> Value {
    use serde_json::json;
    let text_map = |pairs: &[(String, String)]| -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| {
                let value = serde_json::from_str(v).unwrap_or_else(|_| json!({ "not_json": v }));
                (k.clone(), value)
            })
            .collect()
    };
    match answer {
        GateAnswer::Allow => json!({ "decision": "allow" }),
        GateAnswer::Deny(d) => json!({ "decision": "deny", "code": d.code, "message": d.message }),
        GateAnswer::AllowWithChanges(c) => json!({
            "decision": "allow_with_changes",
            "profile": text_map(&c.profile),
            "roles": c.roles,
        }),
        GateAnswer::Claims(claims) => json!({ "decision": "claims", "claims": text_map(claims) }),
    }
}

fn question_of(point: DecisionPoint, given: Option<Value>) -> Result<GateQuestion, ToolError> {
    let fields = match given {
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ToolError::Input("the payload must be a JSON object".into())),
        None => Map::new(),
    };
    let bad = |what: &str| ToolError::Input(format!("payload for {}: {what}", point.as_str()));
    let user = || -> Result<UserSnapshot, ToolError> {
        match fields.get("user") {
            Some(u) => serde_json::from_value(u.clone()).map_err(|e| bad(&format!("user: {e}"))),
            None => Ok(sample_user()),
        }
    };
    let string = |key: &str, default: &str| -> Result<String, ToolError> {
        match fields.get(key) {
            None => Ok(default.to_owned()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(bad(&format!("{key} must be a string"))),
        }
    };
    Ok(match point {
        DecisionPoint::BeforeRegister => GateQuestion::BeforeRegister {
            email: string("email", "ada@example.com")?,
            profile: match fields.get("profile") {
                None => Map::new(),
                Some(Value::Object(p)) => p.clone(),
                Some(_) => return Err(bad("profile must be an object")),
            },
        },
        DecisionPoint::BeforeLogin => GateQuestion::BeforeLogin { user: user()? },
        DecisionPoint::CheckPassword => GateQuestion::CheckPassword {
            subject: match fields.get("email") {
                Some(_) => PasswordSubject::Email(string("email", "")?),
                None => PasswordSubject::User(user()?),
            },
            password: Password::new(string("password", "correct horse battery staple")?),
            why: match string("why", "register")?.as_str() {
                "register" => PasswordReason::Register,
                "change" => PasswordReason::Change,
                "reset" => PasswordReason::Reset,
                _ => return Err(bad("why must be register, change or reset")),
            },
        },
        DecisionPoint::TokenClaims => GateQuestion::TokenClaims {
            user: user()?,
            grant: match string("grant", "login")?.as_str() {
                "login" => Grant::Login,
                "refresh" => Grant::Refresh,
                "oauth" => Grant::Oauth,
                _ => return Err(bad("grant must be login, refresh or oauth")),
            },
        },
    })
}

fn sample_context() -> RequestContext {
    RequestContext {
        request_id: "hooks-run".into(),
        client_ip: Some("203.0.113.7".into()),
        user_agent: Some("hookauth hooks run".into()),
    }
}

/// Runs one event through the hook. `payload` holds the event's arguments as JSON (e.g.
/// `{"user": {...}}`); without it a realistic sample is used.
pub async fn run(
    file: &Path,
    name: Option<&str>,
    manifest: Option<&Path>,
    kind: EventKind,
    payload: Option<Value>,
) -> Result<RunReport, ToolError> {
    let name = hook_name(file, name);
    let host = load(file, &name, manifest).await?;
    let hook = first_hook(&host)?;
    let event = Event {
        id: new_event_id(),
        seq: 1,
        tenant: TenantId::default_tenant(),
        occurred_at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
        context: sample_context(),
        payload: payload_of(kind, payload)?,
    };
    invoke_report(hook, name, event).await
}

/// Runs a recorded event (from the outbox, by id) through a new build of a hook, without
/// touching its delivery state. The event keeps its id, tenant and request context.
pub async fn replay(
    store: &crate::store::Store,
    event_id: &str,
    file: &Path,
    name: Option<&str>,
    manifest: Option<&Path>,
) -> Result<RunReport, ToolError> {
    let (record, _status) = store
        .find_event(event_id)
        .await
        .map_err(|e| ToolError::Io(e.to_string()))?
        .ok_or_else(|| ToolError::Input(format!("no event with id {event_id}")))?;
    let name = hook_name(file, name);
    let host = load(file, &name, manifest).await?;
    let hook = first_hook(&host)?;
    invoke_report(hook, name, record.event).await
}

async fn invoke_report(
    hook: &WasmHook,
    name: String,
    event: Event,
) -> Result<RunReport, ToolError> {
    let kind = event.kind();
    if !hook.events().any(|k| k == kind) {
        return Err(ToolError::Input(format!(
            "{name} does not handle {kind}; it handles: {}",
            hook.events()
                .map(EventKind::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let (result, usage) = match hook.invoke(&event).await {
        Ok(usage) => ("ok".to_owned(), usage),
        Err(failure) => (failure.kind.to_string(), failure.usage),
    };
    Ok(report(name, kind.as_str(), event.id, result, usage, None))
}

fn report(
    hook: String,
    event: &'static str,
    event_id: String,
    result: String,
    usage: Usage,
    decision: Option<Value>,
) -> RunReport {
    RunReport {
        hook,
        event,
        event_id,
        result,
        fuel_used: usage.fuel_used,
        duration_ms: usage.duration.as_secs_f64() * 1000.0,
        peak_memory_bytes: usage.peak_memory,
        linear_memory_bytes: usage.linear_memory,
        outbound_sent: usage.outbound_sent,
        outbound_refused: usage.outbound_refused,
        outbound_refused_total: usage.outbound_refused_total,
        outbound_limited: usage.outbound_limited,
        outbound_response_bytes: usage.outbound_response_bytes,
        log_dropped_lines: usage.log_dropped_lines,
        stdio_dropped_lines: usage.stdio_dropped_lines,
        error_bytes_cut: usage.error_bytes_cut,
        decision,
    }
}

fn sample_user() -> UserSnapshot {
    UserSnapshot {
        id: "0190b7a4-0000-7000-8000-000000000001".into(),
        email: "ada@example.com".into(),
        is_active: true,
        is_verified: false,
        is_superuser: false,
        roles: vec!["member".into()],
        profile: Map::new(),
    }
}

/// The event's arguments from JSON, or a sample, tagged with the event's name.
fn payload_of(kind: EventKind, given: Option<Value>) -> Result<EventPayload, ToolError> {
    let mut fields = match given {
        Some(Value::Object(map)) => map,
        Some(_) => return Err(ToolError::Input("the payload must be a JSON object".into())),
        None => sample_fields(kind),
    };
    fields.insert("event".into(), Value::String(kind.as_str().into()));
    serde_json::from_value(Value::Object(fields))
        .map_err(|e| ToolError::Input(format!("payload does not fit {kind}: {e}")))
}

fn sample_fields(kind: EventKind) -> Map<String, Value> {
    let user = serde_json::to_value(sample_user()).expect("user serialises");
    let value = match kind {
        EventKind::AfterLogout => serde_json::json!({"user_id": user["id"]}),
        EventKind::SendVerificationEmail | EventKind::SendPasswordResetEmail => {
            serde_json::json!({"email": user["email"], "token": "sample-token"})
        }
        EventKind::AfterOauthLogin => {
            serde_json::json!({"user": user, "provider": "github", "is_new_user": false})
        }
        EventKind::AfterOauthRegister => serde_json::json!({
            "user": user,
            "user_info": {
                "provider": "github",
                "subject": "583231",
                "email": user["email"],
                "email_verified": true,
                "name": "Sample User",
                "picture": "https://avatars.example/583231.png"
            }
        }),
        EventKind::AfterOauthLink | EventKind::AfterOauthUnlink => {
            serde_json::json!({"user": user, "provider": "github"})
        }
        _ => serde_json::json!({ "user": user }),
    };
    value.as_object().cloned().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_sample_payload() {
        for kind in EventKind::ALL {
            assert_eq!(payload_of(kind, None).unwrap().kind(), kind);
        }
        assert!(payload_of(EventKind::AfterLogin, Some(serde_json::json!({"user": 1}))).is_err());
    }
}
