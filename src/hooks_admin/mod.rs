//! The hooks-admin service: tenant hook management, hook secrets, hook failures and tenants,
//! behind the management API. HTTP authorises through [`HooksAdmin::authorize`] and calls these
//! functions; it never reaches the store or the registry itself.

mod failures;
mod hooks;
mod oauth;
mod secrets;
mod tenants;

use std::sync::Arc;

pub use failures::TenantFailure;
pub use hooks::{Deployed, HookPatch, LimitsPatch};
pub use oauth::OauthProviderView;
pub use tenants::TenantInfo;

use crate::config::Secret;
use crate::crypto::SecretBox;
use crate::domain::{RoleName, TenantId};
use crate::flows::{self, Clock, FlowError, Flows};
use crate::hooks::{DeployError, HookRegistry};
use crate::store::StoreError;

/// The permission that lets a tenant's user manage its hooks (superusers always may).
pub const HOOKS_MANAGE: &str = "hooks:manage";
/// The permission that lets a tenant's user manage its OAuth providers (superusers always may).
pub const OAUTH_MANAGE: &str = "oauth:manage";

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// No or bad credentials (401).
    #[error("could not validate credentials")]
    Unauthenticated,
    /// A valid user without the permission (403).
    #[error("not enough permissions")]
    Forbidden,
    /// A refused deploy or change (422 with the error's code).
    #[error(transparent)]
    Invalid(#[from] DeployError),
    #[error("{0}")]
    NotFound(&'static str),
    #[error("already exists")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<FlowError> for AdminError {
    fn from(e: FlowError) -> Self {
        match e {
            FlowError::InvalidCredentials => AdminError::Unauthenticated,
            FlowError::Forbidden => AdminError::Forbidden,
            FlowError::Store(s) => AdminError::Store(s),
            other => AdminError::Internal(other.to_string()),
        }
    }
}

/// Who is managing a tenant's hooks.
#[derive(Debug, Clone)]
pub enum Actor {
    Operator,
    User { id: String },
}

impl Actor {
    pub fn label(&self) -> String {
        match self {
            Actor::Operator => "operator".to_owned(),
            Actor::User { id } => format!("user {id}"),
        }
    }
}

pub struct HooksAdmin {
    flows: Arc<Flows>,
    registry: Arc<HookRegistry>,
    sealer: Arc<SecretBox>,
    operator_token: Option<Secret>,
    max_hooks: u32,
}

impl HooksAdmin {
    pub fn new(
        flows: Arc<Flows>,
        registry: Arc<HookRegistry>,
        sealer: Arc<SecretBox>,
        operator_token: Option<Secret>,
        max_hooks: u32,
    ) -> Self {
        Self {
            flows,
            registry,
            sealer,
            operator_token,
            max_hooks,
        }
    }

    fn clock(&self) -> &Clock {
        &self.flows.clock
    }

    /// Whether `bearer` is the operator token, compared in constant time.
    pub fn is_operator(&self, bearer: Option<&str>) -> bool {
        match (&self.operator_token, bearer) {
            (Some(token), Some(given)) => token.matches(given),
            _ => false,
        }
    }

    /// The operator on any tenant, or a user of `tenant` who is a superuser or holds
    /// `permission` ([`HOOKS_MANAGE`], [`OAUTH_MANAGE`]). A token of another tenant fails
    /// authentication like any forgery.
    pub async fn authorize(
        &self,
        tenant: &TenantId,
        bearer: Option<&str>,
        permission: &str,
    ) -> Result<Actor, AdminError> {
        if self.is_operator(bearer) {
            return Ok(Actor::Operator);
        }
        let session = flows::authenticate(&self.flows, tenant, bearer).await?;
        let user = &session.user;
        if user.is_superuser {
            return Ok(Actor::User {
                id: user.id.to_string(),
            });
        }
        for role in &user.roles {
            let Ok(role) = RoleName::parse(role) else {
                continue;
            };
            let permissions = self.flows.store.role_permissions(tenant, &role).await?;
            if permissions.iter().any(|p| p == permission) {
                return Ok(Actor::User {
                    id: user.id.to_string(),
                });
            }
        }
        Err(AdminError::Forbidden)
    }

    /// Operator only.
    pub fn authorize_operator(&self, bearer: Option<&str>) -> Result<(), AdminError> {
        if self.is_operator(bearer) {
            Ok(())
        } else {
            Err(AdminError::Unauthenticated)
        }
    }

    pub fn registry(&self) -> &Arc<HookRegistry> {
        &self.registry
    }
}
