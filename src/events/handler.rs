use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{Event, EventKind, TenantId};

/// Something that reacts to committed events. The Wasm hook host is one implementation; tests
/// register recording handlers.
///
/// Delivery is at-least-once: a handler may see the same [`Event::id`] again after a crash or a
/// retry and should deduplicate on it.
#[async_trait]
pub trait EventHandler: Send + Sync {
    /// Stable name: used in logs, in failure records and to retry only the handlers that failed.
    fn name(&self) -> &str;

    /// Whether this handler wants events of this kind at all.
    fn handles(&self, kind: EventKind) -> bool;

    /// Handles one event. An `Err` is logged and retried with backoff; it never affects the
    /// request that caused the event.
    async fn handle(&self, event: &Event) -> Result<(), HandlerError>;
}

/// A handler's own report of failure (for a Wasm hook: a guest error or a trap).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct HandlerError(pub String);

/// Where the dispatcher finds an event's handlers. It is asked at delivery time, not once at
/// start, so a hook deployed, replaced or removed while serving applies to the next event.
pub trait HandlerSource: Send + Sync {
    /// The handlers that receive `kind` for `tenant`, in delivery order.
    fn handlers_for(&self, tenant: &TenantId, kind: EventKind) -> Vec<Arc<dyn EventHandler>>;
}

/// Several sources, asked in turn: the hook host's hooks first, then handlers a caller added.
pub struct ChainedSources(pub Vec<Arc<dyn HandlerSource>>);

impl HandlerSource for ChainedSources {
    fn handlers_for(&self, tenant: &TenantId, kind: EventKind) -> Vec<Arc<dyn EventHandler>> {
        self.0
            .iter()
            .flat_map(|s| s.handlers_for(tenant, kind))
            .collect()
    }
}

/// A fixed set of handlers by tenant, each tenant's in registration order.
#[derive(Default, Clone)]
pub struct HandlerRegistry {
    by_tenant: HashMap<TenantId, Vec<Arc<dyn EventHandler>>>,
}

impl HandlerRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn register(&mut self, tenant: TenantId, handler: Arc<dyn EventHandler>) {
        self.by_tenant.entry(tenant).or_default().push(handler);
    }

    /// Appends `other`'s handlers after this registry's, tenant by tenant.
    pub fn extend(&mut self, other: HandlerRegistry) {
        for (tenant, handlers) in other.by_tenant {
            self.by_tenant.entry(tenant).or_default().extend(handlers);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_tenant.values().all(Vec::is_empty)
    }
}

impl HandlerSource for HandlerRegistry {
    fn handlers_for(&self, tenant: &TenantId, kind: EventKind) -> Vec<Arc<dyn EventHandler>> {
        self.by_tenant
            .get(tenant)
            .into_iter()
            .flatten()
            .filter(|h| h.handles(kind))
            .cloned()
            .collect()
    }
}
