use super::{FlowError, Flows, TokenPair};
use crate::crypto::hash_token;
use crate::domain::{Grant, RequestContext, TenantId};
use crate::store::RefreshCheck;

/// Exchanges a refresh token for a new pair. With rotation (the default) the presented token is
/// retired and a reused one revokes its whole session.
pub async fn refresh(
    flows: &Flows,
    tenant: &TenantId,
    token: Option<&str>,
    ctx: &RequestContext,
) -> Result<TokenPair, FlowError> {
    let token = token
        .filter(|t| !t.is_empty())
        .ok_or(FlowError::InvalidCredentials)?;
    let digest = hash_token(token);
    let now = flows.clock.now_millis();

    if !flows.settings.refresh_rotation {
        let (user, family, auth_time) = live_session(flows, tenant, &digest, now).await?;
        let claims = flows.claims_for(&user, Grant::Refresh, ctx).await?;
        let access = flows.access_token(&user, &family, auth_time, claims);
        return Ok(flows.pair(access, token.to_owned()));
    }

    let (user, family, auth_time) = match flows
        .store
        .check_refresh(tenant, &digest, flows.family_revoked_until(now), now)
        .await?
    {
        RefreshCheck::Live {
            user,
            family,
            auth_time,
        } => (user, family, auth_time),
        RefreshCheck::ReuseDetected => return Err(reuse_detected(tenant, ctx)),
        RefreshCheck::Rejected => return Err(FlowError::InvalidCredentials),
    };
    // Claims are settled before the rotation commits: a gate that denies must not cost the
    // client its refresh token.
    let claims = flows.claims_for(&user, Grant::Refresh, ctx).await?;
    let (next, session) = flows.refresh_token(&user, family, auth_time, ctx);
    if !flows
        .store
        .commit_rotation(
            tenant,
            &digest,
            &session,
            flows.family_revoked_until(now),
            now,
        )
        .await?
    {
        return Err(reuse_detected(tenant, ctx));
    }
    let access = flows.access_token(&user, &family, auth_time, claims);
    Ok(flows.pair(access, next.token))
}

/// A retired refresh token was presented again: its session is revoked (by the store).
fn reuse_detected(tenant: &TenantId, ctx: &RequestContext) -> FlowError {
    tracing::warn!(
        tenant = %tenant,
        client_ip = ctx.client_ip.as_deref().unwrap_or("-"),
        "refresh token reuse detected: the session was revoked"
    );
    FlowError::InvalidCredentials
}

/// The active user, session family and auth time a live refresh token belongs to (one read).
async fn live_session(
    flows: &Flows,
    tenant: &TenantId,
    digest: &str,
    now: crate::domain::UnixMillis,
) -> Result<(crate::domain::User, crate::domain::FamilyId, i64), FlowError> {
    flows
        .store
        .find_live_refresh_user(tenant, digest, now)
        .await?
        .filter(|(user, _, _)| user.is_active)
        .ok_or(FlowError::InvalidCredentials)
}
