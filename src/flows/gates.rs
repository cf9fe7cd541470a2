//! Gate hooks in the flows: asking every gate of a decision point in order, the first deny
//! winning, earlier gates' changes visible to later ones; what a failing gate means
//! (`on_error`); what a client may see of a deny; which claims a token may carry; and the
//! audit of every answer.
//!
//! The gates themselves come from a [`GateSource`] (the hook registry), installed once hooks
//! are loaded. Until then every decision point answers `not_ready`: a policy a gate enforces
//! must not be skippable by arriving early.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::{FlowError, Flows};
use crate::domain::{
    DecisionPoint, Denial, GateAnswer, GateContext, GateFailure, GateQuestion, OnError,
    RequestContext, TenantId, new_event_id,
};
use crate::store::{GateDecisionRecord, Store};

/// A gate hook as the flows see it.
#[async_trait]
pub trait Gate: Send + Sync {
    fn name(&self) -> &str;
    fn on_error(&self) -> OnError;
    /// One answer, within the gate's own budget.
    async fn decide(
        &self,
        question: &GateQuestion,
        ctx: &GateContext,
    ) -> Result<GateAnswer, GateFailure>;
}

/// Where the flows find a decision point's gates. Asked per decision, so a gate deployed or
/// removed while serving applies to the next request.
pub trait GateSource: Send + Sync {
    /// The gates serving `point` for `tenant`, in order.
    fn gates_for(&self, tenant: &TenantId, point: DecisionPoint) -> Vec<Arc<dyn Gate>>;
}

/// What a client sees of a deny message: control characters dropped, at most this many
/// characters.
pub const MAX_DENY_MESSAGE_CHARS: usize = 200;
/// The detail of a deny whose message is empty, or of a failure that denied.
pub const DEFAULT_DENY_MESSAGE: &str = "The request was denied";
/// A deny's code as the client sees it (`hook_code`); another code is dropped.
const MAX_HOOK_CODE: usize = 64;
/// `hook_code` of a failure that denied (`on_error = "deny"`).
pub const FAILED_HOOK_CODE: &str = "hook_failed";
/// Every name the server sets in an access token or in its `extra` for another purpose. A gate
/// may not set these.
pub const RESERVED_CLAIMS: &[&str] = &[
    "sub",
    "exp",
    "iat",
    "nbf",
    "iss",
    "aud",
    "jti",
    "type",
    "tid",
    "tenant",
    "roles",
    "permissions",
    "family_id",
    "sid",
    "session_id",
    "auth_time",
    "extra",
    "purpose",
    "pwd",
    "nonce",
    "binding",
    "redirect_uri",
];
/// Audit records waiting for the writer; past this they are dropped (and counted) rather than
/// slowing requests or growing memory.
const AUDIT_QUEUE: usize = 10_000;
const AUDIT_BATCH: usize = 256;
/// How long the writer gathers decisions before it writes them: one write per batch instead
/// of one per decision, which on SQLite would compete with every request's own writes (a
/// claims gate on refresh doubled the write transactions).
const AUDIT_LINGER: Duration = Duration::from_millis(100);

/// Settings of the gate machinery (`[hooks]`).
#[derive(Clone, Debug)]
pub struct GateSettings {
    /// All claims gates add to one token, as JSON bytes.
    pub max_claims_bytes: usize,
    /// Audit records older than this are deleted.
    pub audit_retention: Duration,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            max_claims_bytes: 4096,
            audit_retention: Duration::from_secs(30 * 86_400),
        }
    }
}

/// The flows' gates: where they come from, once loaded, and the audit queue.
pub(super) struct Gates {
    source: OnceLock<Arc<dyn GateSource>>,
    audit: mpsc::Sender<GateDecisionRecord>,
    /// Taken by [`Flows::spawn_gate_audit`].
    audit_rx: Mutex<Option<mpsc::Receiver<GateDecisionRecord>>>,
    audit_dropped: std::sync::atomic::AtomicU64,
    settings: GateSettings,
}

impl Gates {
    pub(super) fn new(settings: GateSettings) -> Self {
        let (audit, rx) = mpsc::channel(AUDIT_QUEUE);
        Self {
            source: OnceLock::new(),
            audit,
            audit_rx: Mutex::new(Some(rx)),
            audit_dropped: Default::default(),
            settings,
        }
    }
}

/// Roles one before-register answer may assign.
const MAX_ROLES: usize = 64;
/// Profile fields one before-register answer may set, as JSON bytes. A client's are bounded by
/// the body limit; without this a gate could store megabytes in every new account.
const MAX_PROFILE_CHANGE_BYTES: usize = 16 * 1024;

/// A gate's answer once the server checked it can apply it, its JSON parsed once.
enum Checked {
    Allow,
    Deny(Denial),
    Changes {
        profile: Map<String, Value>,
        roles: Vec<String>,
    },
    /// Every claim so far, this gate's merged in.
    Claims(Map<String, Value>),
}

/// What the gates of one decision point decided, when none denied.
#[derive(Debug, Default)]
pub(super) struct Verdict {
    /// before-register: profile fields to set (validated against the schema) and roles to
    /// assign (known to exist).
    pub profile: Map<String, Value>,
    pub roles: Vec<String>,
    /// token-claims: the claims for the token's `extra`.
    pub claims: Map<String, Value>,
}

impl Flows {
    /// Installs where gates come from (once hooks are loaded). Later calls are ignored.
    pub fn install_gates(&self, source: Arc<dyn GateSource>) {
        let _ = self.gates.source.set(source);
    }

    /// The audit, newest first (`hookauth hooks decisions`, the tenant hooks API).
    pub async fn gate_decisions(
        &self,
        query: &crate::store::DecisionQuery,
    ) -> Result<Vec<GateDecisionRecord>, FlowError> {
        let mut query = query.clone();
        query.limit = query.limit.clamp(1, 1000);
        Ok(self.store.gate_decisions(&query).await?)
    }

    /// Writes audit records in batches until `stop`, then drains the queue. Call once.
    pub fn spawn_gate_audit(
        &self,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let mut rx = self.gates.audit_rx.lock().ok()?.take()?;
        let store = self.store.clone();
        let clock = self.clock.clone();
        let retention = self.gates.settings.audit_retention.as_millis() as i64;
        Some(tokio::spawn(async move {
            let mut last_prune = 0;
            loop {
                let mut batch = Vec::new();
                tokio::select! {
                    n = rx.recv_many(&mut batch, AUDIT_BATCH) => {
                        if n == 0 {
                            return;
                        }
                        let linger = tokio::time::sleep(AUDIT_LINGER);
                        tokio::pin!(linger);
                        while batch.len() < AUDIT_BATCH {
                            let room = AUDIT_BATCH - batch.len();
                            tokio::select! {
                                () = &mut linger => break,
                                n = rx.recv_many(&mut batch, room) => {
                                    if n == 0 {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                    _ = stop.changed() => {
                        rx.close();
                        while rx.recv_many(&mut batch, AUDIT_BATCH).await > 0 {
                            write_audit(&store, &batch).await;
                            batch.clear();
                        }
                        return;
                    }
                }
                write_audit(&store, &batch).await;
                let now = clock.now_millis();
                if now - last_prune > 3_600_000 {
                    last_prune = now;
                    if let Err(e) = store.prune_gate_decisions(now - retention).await {
                        tracing::warn!(error = %e, "could not prune old gate decisions");
                    }
                }
            }
        }))
    }

    /// Hooks are loaded, so a decision point can be asked: checked before a step that cannot be
    /// repeated (an OAuth state used up), so "not ready" never costs the client its attempt.
    pub(super) fn gates_ready(&self) -> Result<(), FlowError> {
        self.gates
            .source
            .get()
            .map(|_| ())
            .ok_or(FlowError::NotReady)
    }

    /// Asks every gate of the question's decision point, in order. The first deny (or failure
    /// with `on_error = "deny"`) ends it with [`FlowError::DeniedByHook`]; changes and claims
    /// accumulate, each gate seeing the earlier ones' changes.
    pub(super) async fn ask_gates(
        &self,
        tenant: &TenantId,
        mut question: GateQuestion,
        request: &RequestContext,
    ) -> Result<Verdict, FlowError> {
        let source = self.gates.source.get().ok_or(FlowError::NotReady)?;
        let point = question.point();
        let gates = source.gates_for(tenant, point);
        let mut verdict = Verdict::default();
        for gate in gates {
            let ctx = GateContext {
                tenant: tenant.clone(),
                decision_id: new_event_id(),
                request: request.clone(),
            };
            let started = Instant::now();
            let answer = gate.decide(&question, &ctx).await;
            let answer = match answer {
                Ok(answer) => self.check_answer(tenant, point, answer, &verdict).await,
                Err(failure) => Err(failure),
            };
            let mut record = GateDecisionRecord {
                id: ctx.decision_id.clone(),
                tenant: tenant.to_string(),
                hook: gate.name().to_owned(),
                point: point.as_str().to_owned(),
                decision: String::new(),
                hook_code: None,
                message: None,
                failure: None,
                subject: question.subject(),
                request_id: request.request_id.clone(),
                duration_us: started.elapsed().as_micros() as i64,
                decided_at: self.clock.now_millis(),
            };
            let denied = match answer {
                Ok(Checked::Allow) => {
                    record.decision = "allow".into();
                    None
                }
                Ok(Checked::Deny(denial)) => {
                    let (message, code) = sanitise(&denial);
                    record.decision = "deny".into();
                    record.hook_code = code.clone();
                    record.message = Some(message.clone());
                    Some(FlowError::DeniedByHook {
                        message,
                        hook_code: code,
                    })
                }
                Ok(Checked::Changes { profile, roles }) => {
                    record.decision = "allow_with_changes".into();
                    apply_changes(&mut question, &mut verdict, profile, roles);
                    None
                }
                Ok(Checked::Claims(merged)) => {
                    record.decision = "claims".into();
                    verdict.claims = merged;
                    None
                }
                Err(failure) => {
                    record.failure = Some(format!("{}: {}", failure.label, failure.reason));
                    match gate.on_error() {
                        OnError::Deny => {
                            record.decision = "failed_deny".into();
                            record.hook_code = Some(FAILED_HOOK_CODE.into());
                            record.message = Some(DEFAULT_DENY_MESSAGE.into());
                            Some(FlowError::DeniedByHook {
                                message: DEFAULT_DENY_MESSAGE.into(),
                                hook_code: Some(FAILED_HOOK_CODE.into()),
                            })
                        }
                        OnError::Allow => {
                            record.decision = "failed_allow".into();
                            None
                        }
                    }
                }
            };
            self.audit(&record, gate.on_error());
            if let Some(denied) = denied {
                return Err(denied);
            }
        }
        Ok(verdict)
    }

    /// Whether a gate's answer is one the server can use: the right kind for the point,
    /// profile fields the schema knows with values of their type, roles that exist, and
    /// claims that parse, are not reserved and fit the cap. Anything else is a failure
    /// (`bad_answer`), treated as the gate's `on_error` says.
    async fn check_answer(
        &self,
        tenant: &TenantId,
        point: DecisionPoint,
        answer: GateAnswer,
        so_far: &Verdict,
    ) -> Result<Checked, GateFailure> {
        let bad = |reason: String| GateFailure {
            label: "bad_answer",
            reason,
        };
        match (answer, point) {
            (GateAnswer::Allow, p) if p != DecisionPoint::TokenClaims => Ok(Checked::Allow),
            (GateAnswer::Deny(denial), p) if p != DecisionPoint::TokenClaims => {
                Ok(Checked::Deny(denial))
            }
            (GateAnswer::AllowWithChanges(changes), DecisionPoint::BeforeRegister) => {
                let schema = &self.settings.profile_schema;
                let mut profile = Map::new();
                for (name, raw) in changes.profile {
                    let value: Value = serde_json::from_str(&raw)
                        .map_err(|_| bad(format!("profile field {name:?}: not JSON")))?;
                    if !schema.contains(&name) {
                        return Err(bad(format!("profile field {name:?} is not in the schema")));
                    }
                    profile.insert(name, value);
                }
                let size = serde_json::to_vec(&profile).map_or(usize::MAX, |b| b.len());
                if size > MAX_PROFILE_CHANGE_BYTES {
                    return Err(bad(format!(
                        "profile changes are {size} bytes, over {MAX_PROFILE_CHANGE_BYTES}"
                    )));
                }
                if let Err(wrong) = schema.extract(&profile) {
                    let names: Vec<&str> = wrong.iter().map(|e| e.field.as_str()).collect();
                    return Err(bad(format!("profile fields of the wrong type: {names:?}")));
                }
                if changes.roles.len() > MAX_ROLES {
                    return Err(bad(format!("more than {MAX_ROLES} roles")));
                }
                if !changes.roles.is_empty() {
                    let known = self
                        .store
                        .existing_roles(tenant, &changes.roles)
                        .await
                        .map_err(|e| GateFailure {
                            label: "store",
                            reason: e.to_string(),
                        })?;
                    if let Some(unknown) = changes.roles.iter().find(|r| !known.contains(r)) {
                        return Err(bad(format!("role {unknown:?} does not exist")));
                    }
                }
                Ok(Checked::Changes {
                    profile,
                    roles: changes.roles,
                })
            }
            (GateAnswer::Claims(claims), DecisionPoint::TokenClaims) => {
                // Only when there are claims: the merged map is what the token gets.
                let mut merged = so_far.claims.clone();
                for (name, raw) in claims {
                    if RESERVED_CLAIMS.contains(&name.as_str()) {
                        return Err(bad(format!("claim {name:?} is reserved")));
                    }
                    let value: Value = serde_json::from_str(&raw)
                        .map_err(|_| bad(format!("claim {name:?}: not JSON")))?;
                    merged.insert(name, value);
                }
                let size = serde_json::to_vec(&merged).map_or(usize::MAX, |b| b.len());
                if size > self.gates.settings.max_claims_bytes {
                    return Err(bad(format!(
                        "claims would be {size} bytes, over the {} byte cap",
                        self.gates.settings.max_claims_bytes
                    )));
                }
                Ok(Checked::Claims(merged))
            }
            (other, point) => Err(bad(format!(
                "{} is not an answer to {}",
                answer_kind(&other),
                point.as_str()
            ))),
        }
    }

    fn audit(&self, record: &GateDecisionRecord, on_error: OnError) {
        tracing::info!(target: "hookauth::gates", hook = %record.hook, tenant = %record.tenant,
            point = %record.point, decision = %record.decision,
            hook_code = record.hook_code.as_deref().unwrap_or(""),
            failure = record.failure.as_deref().unwrap_or(""),
            on_error = on_error.as_str(), duration_us = record.duration_us,
            request_id = %record.request_id, decision_id = %record.id, "gate decided");
        if self.gates.audit.try_send(record.clone()).is_err() {
            let dropped = self
                .gates
                .audit_dropped
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if dropped.is_power_of_two() {
                tracing::warn!(
                    dropped = dropped + 1,
                    "gate audit queue full: decisions were logged but not stored"
                );
            }
        }
    }
}

fn answer_kind(answer: &GateAnswer) -> &'static str {
    match answer {
        GateAnswer::Allow => "allow",
        GateAnswer::Deny(_) => "deny",
        GateAnswer::AllowWithChanges(_) => "allow-with-changes",
        GateAnswer::Claims(_) => "claims",
    }
}

/// Applies checked changes: later gates see them in the question, the flow in the verdict.
fn apply_changes(
    question: &mut GateQuestion,
    verdict: &mut Verdict,
    profile: Map<String, Value>,
    roles: Vec<String>,
) {
    if let GateQuestion::BeforeRegister { profile: asked, .. } = question {
        asked.extend(profile.clone());
    }
    verdict.profile.extend(profile);
    for role in roles {
        if !verdict.roles.contains(&role) {
            verdict.roles.push(role);
        }
    }
}

/// A deny as a client may see it: the message without control characters (bidi controls and
/// line separators included), trimmed and capped; the code only when it is a plain token.
fn sanitise(denial: &Denial) -> (String, Option<String>) {
    let message: String = denial
        .message
        .chars()
        .filter(|c| !crate::domain::is_unsafe_char(*c))
        .take(MAX_DENY_MESSAGE_CHARS)
        .collect();
    let message = message.trim();
    let message = if message.is_empty() {
        DEFAULT_DENY_MESSAGE.to_owned()
    } else {
        message.to_owned()
    };
    let code = denial.code.as_deref().filter(|c| {
        !c.is_empty()
            && c.len() <= MAX_HOOK_CODE
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
    });
    (message, code.map(str::to_owned))
}

async fn write_audit(store: &Store, batch: &[GateDecisionRecord]) {
    if let Err(e) = store.record_gate_decisions(batch).await {
        tracing::warn!(error = %e, decisions = batch.len(), "could not store gate decisions");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deny_is_sanitised_for_the_client() {
        let (message, code) = sanitise(&Denial {
            code: Some("disposable_email".into()),
            message: "No\u{202e} disposable\naddresses\u{2028}".into(),
        });
        assert_eq!(message, "No disposableaddresses");
        assert_eq!(code.as_deref(), Some("disposable_email"));
        let (message, code) = sanitise(&Denial {
            code: Some("Bad Code!".into()),
            message: "x".repeat(1000),
        });
        assert_eq!(message.chars().count(), MAX_DENY_MESSAGE_CHARS);
        assert_eq!(code, None);
        let (message, _) = sanitise(&Denial {
            code: None,
            message: " \u{7} ".into(),
        });
        assert_eq!(message, DEFAULT_DENY_MESSAGE);
    }
}
