//! A hook deployed through the API, loaded lazily: its row is read at start (cheap), its code
//! is compiled (or taken from the shared [`CodeCache`]) when its first event arrives.

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use super::code::Code;
use super::{Loader, TenantManifest};
use crate::domain::{
    DecisionPoint, Event, EventKind, GateAnswer, GateContext, GateFailure, GateQuestion, OnError,
    TenantId,
};
use crate::events::{EventHandler, HandlerError};
use crate::flows::Gate;
use crate::hooks::hook::{GateSpec, HookFailure, ask_gate, log_failure};
use crate::hooks::invoke::{Call, FailureKind, Usage, run};
use crate::hooks::limits::HookLimits;
use crate::hooks::state::{Grants, LogContext};
use crate::hooks::wit::Exports;
use crate::hooks::wit::wit_event;

pub struct ApiHook {
    pub(crate) name: Arc<str>,
    pub(crate) tenant: TenantId,
    pub(crate) sha256: String,
    pub(crate) events: BTreeSet<EventKind>,
    pub(crate) order: i64,
    pub(crate) enabled: bool,
    pub(crate) updated_at: i64,
    pub(crate) manifest: TenantManifest,
    pub(crate) limits: HookLimits,
    pub(crate) grants: Arc<Grants>,
    /// Set when it serves decision points (resolved at deploy).
    pub(crate) gate: Option<GateSpec>,
    pub(crate) code: Arc<Code>,
    exports: OnceCell<Exports>,
    loader: Arc<Loader>,
}

pub(crate) struct ApiHookParts {
    pub name: String,
    pub tenant: TenantId,
    pub sha256: String,
    pub events: BTreeSet<EventKind>,
    pub order: i64,
    pub enabled: bool,
    pub updated_at: i64,
    pub manifest: TenantManifest,
    pub limits: HookLimits,
    pub grants: Grants,
    pub gate: Option<GateSpec>,
}

impl ApiHook {
    pub(crate) fn new(parts: ApiHookParts, loader: Arc<Loader>) -> Self {
        let code = loader.code.entry(&parts.sha256);
        Self {
            name: Arc::from(parts.name),
            tenant: parts.tenant,
            sha256: parts.sha256,
            events: parts.events,
            order: parts.order,
            enabled: parts.enabled,
            updated_at: parts.updated_at,
            manifest: parts.manifest,
            limits: parts.limits,
            grants: Arc::new(parts.grants),
            gate: parts.gate,
            code,
            exports: OnceCell::new(),
            loader,
        }
    }

    /// Compiles (once per sha256, shared) and links (once per hook) on first use.
    async fn exports(&self) -> Result<&Exports, String> {
        self.exports
            .get_or_try_init(|| async {
                let store = self.loader.store.clone();
                let sha = self.sha256.clone();
                let component = self
                    .loader
                    .code
                    .component(&self.code, || async move {
                        store
                            .hook_component(&sha)
                            .await
                            .map_err(|e| e.to_string())?
                            .ok_or_else(|| format!("component {sha} is not stored"))
                    })
                    .await?;
                self.loader
                    .runtime
                    .linker
                    .instantiate_pre(&component)
                    .and_then(Exports::new)
                    .map_err(|e| format!("cannot be linked: {}", e.root_cause()))
            })
            .await
    }

    /// Whether it is an enabled gate for `point`.
    pub fn serves(&self, point: DecisionPoint) -> bool {
        self.enabled
            && self
                .gate
                .as_ref()
                .is_some_and(|g| g.points.contains(&point))
    }

    /// Compiles and links it now rather than on first use: a gate is asked inside a request,
    /// which should not wait for a compile.
    pub(crate) fn warm_up(self: &Arc<Self>) {
        let hook = Arc::clone(self);
        tokio::spawn(async move {
            if let Err(reason) = hook.exports().await {
                tracing::error!(tenant = %hook.tenant, hook = %hook.name, %reason,
                    "tenant gate cannot be prepared; its decisions will fail");
            }
        });
    }

    pub async fn invoke(&self, event: &Event) -> Result<Usage, HookFailure> {
        let kind = event.kind();
        let fail = |k: FailureKind, usage: Usage| HookFailure {
            hook: self.name.to_string(),
            event: kind,
            event_id: event.id.clone(),
            kind: k,
            usage,
        };
        if event.tenant != self.tenant {
            return Err(fail(FailureKind::WrongTenant, Usage::default()));
        }
        if !self.events.contains(&kind) {
            return Err(fail(FailureKind::NotSubscribed, Usage::default()));
        }
        let exports = match self.exports().await {
            Ok(exports) => exports,
            Err(reason) => {
                let failure = fail(FailureKind::Trap(reason), Usage::default());
                log_failure(&failure, event);
                return Err(failure);
            }
        };
        let log = LogContext {
            hook: Arc::clone(&self.name),
            tenant: self.tenant.to_string(),
            event_id: event.id.clone(),
            event: kind.as_str(),
            request_id: event.context.request_id.clone(),
        };
        let wit = wit_event(event);
        let (outcome, usage) = run(
            &self.loader.runtime,
            exports,
            &self.grants,
            &self.limits,
            Some(log),
            Call::Handle(&wit),
        )
        .await;
        match outcome {
            Ok(_) => Ok(usage),
            Err(k) => {
                let failure = fail(k, usage);
                log_failure(&failure, event);
                Err(failure)
            }
        }
    }
}

#[async_trait]
impl Gate for ApiHook {
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
        let point = question.point();
        let spec = self
            .gate
            .as_ref()
            .filter(|g| g.points.contains(&point) && ctx.tenant == self.tenant)
            .ok_or_else(|| GateFailure {
                label: FailureKind::NotSubscribed.label(),
                reason: format!("does not serve {} for this tenant", point.as_str()),
            })?;
        let exports = self.exports().await.map_err(|reason| GateFailure {
            label: "unavailable",
            reason,
        })?;
        ask_gate(
            &self.loader.runtime,
            exports,
            &self.grants,
            &self.name,
            spec,
            question,
            ctx,
        )
        .await
        .0
    }
}

#[async_trait]
impl EventHandler for ApiHook {
    fn name(&self) -> &str {
        &self.name
    }

    fn handles(&self, kind: EventKind) -> bool {
        self.enabled && self.events.contains(&kind)
    }

    async fn handle(&self, event: &Event) -> Result<(), HandlerError> {
        match self.invoke(event).await {
            Ok(_) => Ok(()),
            Err(f) if f.kind == FailureKind::NotSubscribed => Ok(()),
            Err(f) => Err(HandlerError(f.to_string())),
        }
    }
}
