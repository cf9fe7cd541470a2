//! One loaded hook: its compiled `InstancePre`, grants, limits and the events it receives.
//! It is an [`EventHandler`]; the dispatcher retries and records its failures.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{
    DecisionPoint, Event, EventKind, GateAnswer, GateContext, GateFailure, GateQuestion, OnError,
    TenantId,
};
use crate::events::{EventHandler, HandlerError};
use crate::flows::Gate;
use crate::hooks::invoke::{Call, FailureKind, Returned, Usage, run};
use crate::hooks::limits::HookLimits;
use crate::hooks::runtime::Runtime;
use crate::hooks::state::{Grants, LogContext};
use crate::hooks::wit::Exports;
use crate::hooks::wit::{domain_kind, wit_event};

pub struct WasmHook {
    pub(crate) name: Arc<str>,
    /// Which tenants' events it receives.
    pub(crate) scope: Scope,
    pub(crate) file: PathBuf,
    pub(crate) sha256: String,
    pub(crate) events: BTreeSet<EventKind>,
    pub(crate) limits: HookLimits,
    pub(crate) grants: Arc<Grants>,
    pub(crate) exports: Exports,
    /// Set when the hook exports a gate and registered for at least one decision point.
    pub(crate) gate: Option<GateSpec>,
    pub(crate) runtime: Arc<Runtime>,
}

/// What a gate serves and under which budget.
#[derive(Debug, Clone)]
pub struct GateSpec {
    pub points: BTreeSet<DecisionPoint>,
    /// Strict by default (`[hooks] gate_timeout_ms`, `gate_fuel`), overridable per hook.
    pub limits: HookLimits,
    pub on_error: OnError,
}

/// Whose events a hook receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A platform hook: every tenant, or only those listed (`tenants = [...]` in hooks.toml).
    Platform(Option<BTreeSet<TenantId>>),
    /// One tenant's own hook.
    Tenant(TenantId),
}

impl Scope {
    pub fn includes(&self, tenant: &TenantId) -> bool {
        match self {
            Scope::Platform(None) => true,
            Scope::Platform(Some(only)) => only.contains(tenant),
            Scope::Tenant(own) => own == tenant,
        }
    }

    /// For logs: the owning tenant, or `platform`.
    pub fn label(&self) -> String {
        match self {
            Scope::Platform(_) => "platform".to_owned(),
            Scope::Tenant(t) => t.to_string(),
        }
    }
}

/// A failed invocation: what went wrong and what it cost.
#[derive(Debug, Clone)]
pub struct HookFailure {
    pub hook: String,
    pub event: EventKind,
    pub event_id: String,
    pub kind: FailureKind,
    pub usage: Usage,
}

impl RegisterFailed {
    /// What failed, for a message that says "its ... call failed".
    pub fn call(&self) -> &'static str {
        if self.gate {
            "gate register()"
        } else {
            "register()"
        }
    }
}

impl std::fmt::Display for HookFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "hook `{}` {} (event {} {}, fuel used {}, {} ms)",
            self.hook,
            self.kind,
            self.event,
            self.event_id,
            self.usage.fuel_used,
            self.usage.duration.as_millis()
        )
    }
}

impl std::error::Error for HookFailure {}

impl WasmHook {
    /// The file name without `.wasm`: the name in logs, hooks.toml and failure records.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whose events it receives.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    pub fn file(&self) -> &std::path::Path {
        &self.file
    }

    /// Hex SHA-256 of the component file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// The events this hook receives: what it subscribed to, narrowed by hooks.toml.
    pub fn events(&self) -> impl Iterator<Item = EventKind> + '_ {
        self.events.iter().copied()
    }

    /// Every interface the component imports, by name (all allowed, or it would not have loaded).
    pub fn imports(&self) -> Vec<String> {
        let component = self.exports.component();
        component
            .component_type()
            .imports(&self.runtime.engine)
            .map(|(name, _)| name.to_owned())
            .collect()
    }

    /// The handler interface it implements, e.g. `hookauth:hooks/handler@0.1.0`.
    pub fn handler_interface(&self) -> Option<String> {
        self.export_named("hookauth:hooks/handler@")
    }

    /// The gate interface it implements, e.g. `hookauth:hooks/gate@0.2.0`.
    pub fn gate_interface(&self) -> Option<String> {
        self.export_named("hookauth:hooks/gate@")
    }

    fn export_named(&self, prefix: &str) -> Option<String> {
        self.exports
            .component()
            .component_type()
            .exports(&self.runtime.engine)
            .map(|(name, _)| name)
            .find(|name| name.starts_with(prefix))
            .map(str::to_owned)
    }

    /// The decision points it serves, its gate budget and `on_error` (if it is a gate).
    pub fn gate(&self) -> Option<&GateSpec> {
        self.gate.as_ref()
    }

    /// Whether it is a gate for `point`.
    pub fn serves(&self, point: DecisionPoint) -> bool {
        self.gate
            .as_ref()
            .is_some_and(|g| g.points.contains(&point))
    }

    /// Asks the gate one question in a fresh instance, under its gate budget. The failure's
    /// label is [`FailureKind::label`]; it is logged by the flows with the decision.
    pub async fn ask(
        &self,
        question: &GateQuestion,
        ctx: &GateContext,
    ) -> (Result<GateAnswer, GateFailure>, Usage) {
        let point = question.point();
        let Some(spec) = self.gate.as_ref().filter(|g| g.points.contains(&point)) else {
            return (
                Err(GateFailure {
                    label: FailureKind::NotSubscribed.label(),
                    reason: format!("does not serve {}", point.as_str()),
                }),
                Usage::default(),
            );
        };
        if !self.scope.includes(&ctx.tenant) {
            return (
                Err(GateFailure {
                    label: FailureKind::WrongTenant.label(),
                    reason: FailureKind::WrongTenant.to_string(),
                }),
                Usage::default(),
            );
        }
        ask_gate(
            &self.runtime,
            &self.exports,
            &self.grants,
            &self.name,
            spec,
            question,
            ctx,
        )
        .await
    }

    pub fn limits(&self) -> &HookLimits {
        &self.limits
    }

    /// Runs the hook on one event in a fresh instance. Failures are logged here, with the
    /// hook, event kind, event id, reason, fuel used and duration.
    pub async fn invoke(&self, event: &Event) -> Result<Usage, HookFailure> {
        let kind = event.kind();
        let fail = |kind_: FailureKind, usage: Usage| HookFailure {
            hook: self.name.to_string(),
            event: kind,
            event_id: event.id.clone(),
            kind: kind_,
            usage,
        };
        if !self.scope.includes(&event.tenant) {
            return Err(fail(FailureKind::WrongTenant, Usage::default()));
        }
        if !self.events.contains(&kind) {
            return Err(fail(FailureKind::NotSubscribed, Usage::default()));
        }
        let log = LogContext {
            hook: Arc::clone(&self.name),
            tenant: event.tenant.to_string(),
            event_id: event.id.clone(),
            event: kind.as_str(),
            request_id: event.context.request_id.clone(),
        };
        let wit = wit_event(event);
        let (outcome, usage) = run(
            &self.runtime,
            &self.exports,
            &self.grants,
            &self.limits,
            Some(log),
            Call::Handle(&wit),
        )
        .await;
        match outcome {
            Ok(_) => {
                tracing::debug!(target: "hookauth::hooks", hook = %self.name, event = kind.as_str(),
                    event_id = %event.id, fuel_used = usage.fuel_used,
                    duration_us = usage.duration.as_micros() as u64, "hook ran");
                Ok(usage)
            }
            Err(failure) => {
                let failure = fail(failure, usage);
                log_failure(&failure, event);
                Err(failure)
            }
        }
    }

    /// Calls the hook's `register` exports (load time only); see [`register_exports`].
    pub(crate) async fn register(&self) -> Result<Registered, RegisterFailed> {
        let log = LogContext {
            hook: Arc::clone(&self.name),
            tenant: self.scope.label(),
            event_id: String::new(),
            event: "register",
            request_id: String::new(),
        };
        register_exports(&self.runtime, &self.exports, &self.limits, Some(log)).await
    }
}

/// Calls `register` of each export the component has (handler, gate), for files and API
/// deploys alike. It runs with no grants at all (no outbound hosts, config or secrets), so
/// loading has no side effects and cannot depend on anything but the component itself.
pub(crate) async fn register_exports(
    runtime: &Runtime,
    exports: &Exports,
    limits: &HookLimits,
    log: Option<LogContext>,
) -> Result<Registered, RegisterFailed> {
    let no_grants = Arc::new(Grants::default());
    let mut registered = Registered::default();
    let calls = [
        (exports.has_handler(), Call::Register, false),
        (exports.has_gate(), Call::GateRegister, true),
    ];
    for (exported, call, gate) in calls {
        if !exported {
            continue;
        }
        let (outcome, _usage) = run(runtime, exports, &no_grants, limits, log.clone(), call).await;
        match outcome {
            // Subscriptions the server does not emit yet are accepted and never delivered.
            Ok(Returned::Registration(r)) => {
                registered
                    .events
                    .extend(r.events.iter().filter_map(|k| domain_kind(*k)));
                registered.config.extend(r.config);
                registered.secrets.extend(r.secrets);
            }
            Ok(Returned::GateRegistration {
                points,
                config,
                secrets,
            }) => {
                registered.points = points;
                registered.config.extend(config);
                registered.secrets.extend(secrets);
            }
            Ok(_) => {
                return Err(RegisterFailed {
                    gate,
                    reason: "returned something else than a registration".into(),
                });
            }
            Err(kind) => {
                return Err(RegisterFailed {
                    gate,
                    reason: kind.to_string(),
                });
            }
        }
    }
    Ok(registered)
}

/// One gate decision in a fresh instance under the gate's budget (file and API hooks alike).
/// The failure's label is [`FailureKind::label`], or `bad_answer`.
pub(crate) async fn ask_gate(
    runtime: &Runtime,
    exports: &Exports,
    grants: &Arc<Grants>,
    name: &Arc<str>,
    spec: &GateSpec,
    question: &GateQuestion,
    ctx: &GateContext,
) -> (Result<GateAnswer, GateFailure>, Usage) {
    let log = LogContext {
        hook: Arc::clone(name),
        tenant: ctx.tenant.to_string(),
        event_id: ctx.decision_id.clone(),
        event: question.point().as_str(),
        request_id: ctx.request.request_id.clone(),
    };
    let (outcome, usage) = run(
        runtime,
        exports,
        grants,
        &spec.limits,
        Some(log),
        Call::Gate(question, ctx),
    )
    .await;
    let answer = match outcome {
        Ok(Returned::Decided(Ok(answer))) => Ok(answer),
        Ok(_) => Err(GateFailure {
            label: "bad_answer",
            reason: "the gate returned something else than a decision".into(),
        }),
        Err(kind) => Err(GateFailure {
            label: kind.label(),
            reason: kind.to_string(),
        }),
    };
    (answer, usage)
}

/// A `register` call that failed: which one, and why.
#[derive(Debug)]
pub(crate) struct RegisterFailed {
    /// Whether it was the gate's `register` (else the handler's).
    pub gate: bool,
    pub reason: String,
}

/// What a hook said at load time, over all of its exports.
#[derive(Debug, Default)]
pub(crate) struct Registered {
    /// The events `handler.register` subscribed to (if it exports a handler) that the server
    /// emits.
    pub events: BTreeSet<EventKind>,
    /// `gate.register`'s decision points (if it exports a gate).
    pub points: BTreeSet<DecisionPoint>,
    /// Config keys and secret names required by either export.
    pub config: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

/// One line per failed delivery attempt: hook, tenant, event, the request that caused it, and
/// why.
pub(crate) fn log_failure(f: &HookFailure, event: &Event) {
    let reason = f.kind.to_string();
    let duration_ms = f.usage.duration.as_secs_f64() * 1000.0;
    let tenant = event.tenant.as_str();
    let request_id = event.context.request_id.as_str();
    match f.kind {
        FailureKind::GuestError(_) => tracing::warn!(target: "hookauth::hooks",
            hook = %f.hook, tenant, event = f.event.as_str(), event_id = %f.event_id, request_id,
            failure = f.kind.label(), %reason, fuel_used = f.usage.fuel_used, duration_ms,
            "hook failed"),
        _ => tracing::error!(target: "hookauth::hooks",
            hook = %f.hook, tenant, event = f.event.as_str(), event_id = %f.event_id, request_id,
            failure = f.kind.label(), %reason, fuel_used = f.usage.fuel_used, duration_ms,
            "hook failed"),
    }
}

#[async_trait]
impl Gate for WasmHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn on_error(&self) -> OnError {
        self.gate.as_ref().map_or(OnError::Deny, |g| g.on_error)
    }

    async fn decide(
        &self,
        question: &GateQuestion,
        ctx: &GateContext,
    ) -> Result<GateAnswer, GateFailure> {
        self.ask(question, ctx).await.0
    }
}

#[async_trait]
impl EventHandler for WasmHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, kind: EventKind) -> bool {
        self.events.contains(&kind)
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        match self.invoke(event).await {
            Ok(_) => Ok(()),
            // Not ours to run: nothing failed, and nothing was instantiated.
            Err(f) if f.kind == FailureKind::NotSubscribed => Ok(()),
            Err(f) => Err(HandlerError(f.to_string())),
        }
    }
}
