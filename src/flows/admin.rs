//! Role and permission administration; every function requires a superuser session.

use super::{FlowError, Flows, Session};
use crate::domain::{RoleName, UserId};

fn require_superuser(session: &Session) -> Result<(), FlowError> {
    if session.user.is_superuser {
        Ok(())
    } else {
        Err(FlowError::Forbidden)
    }
}

pub async fn assign_role(
    flows: &Flows,
    session: &Session,
    user_id: &UserId,
    role: &RoleName,
) -> Result<(), FlowError> {
    require_superuser(session)?;
    if flows
        .store
        .assign_role(&session.user.tenant, user_id, role)
        .await?
    {
        Ok(())
    } else {
        Err(FlowError::NotFound("User not found"))
    }
}

pub async fn remove_role(
    flows: &Flows,
    session: &Session,
    user_id: &UserId,
    role: &RoleName,
) -> Result<(), FlowError> {
    require_superuser(session)?;
    Ok(flows
        .store
        .remove_role(&session.user.tenant, user_id, role)
        .await?)
}

pub async fn assign_permission(
    flows: &Flows,
    session: &Session,
    role: &RoleName,
    permission: &RoleName,
) -> Result<(), FlowError> {
    require_superuser(session)?;
    Ok(flows
        .store
        .assign_permission(&session.user.tenant, role, permission)
        .await?)
}

pub async fn remove_permission(
    flows: &Flows,
    session: &Session,
    role: &RoleName,
    permission: &RoleName,
) -> Result<(), FlowError> {
    require_superuser(session)?;
    Ok(flows
        .store
        .remove_permission(&session.user.tenant, role, permission)
        .await?)
}

pub async fn role_permissions(
    flows: &Flows,
    session: &Session,
    role: &RoleName,
) -> Result<Vec<String>, FlowError> {
    require_superuser(session)?;
    Ok(flows
        .store
        .role_permissions(&session.user.tenant, role)
        .await?)
}

/// Superuser check alone, for routes that must answer 403 before validating their body.
pub fn ensure_superuser(session: &Session) -> Result<(), FlowError> {
    require_superuser(session)
}
