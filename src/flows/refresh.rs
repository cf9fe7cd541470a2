use super::{FlowError, Flows, TokenPair};
use crate::crypto::hash_token;
use crate::domain::{RequestContext, TenantId};
use crate::store::RotateOutcome;

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
        let (user_id, family, auth_time) = flows
            .store
            .find_live_refresh(tenant, &digest, now)
            .await?
            .ok_or(FlowError::InvalidCredentials)?;
        let user = flows
            .store
            .find_user(tenant, &user_id)
            .await?
            .filter(|u| u.is_active)
            .ok_or(FlowError::InvalidCredentials)?;
        let access = flows.access_token(&user, &family, auth_time);
        return Ok(flows.pair(access, token.to_owned()));
    }

    let mut issued = None;
    let outcome = flows
        .store
        .rotate_refresh(
            tenant,
            &digest,
            |user, family, auth_time| {
                let (token, session) = flows.refresh_token(user, family, auth_time, ctx);
                issued = Some(token.token);
                session
            },
            flows.family_revoked_until(now),
            now,
        )
        .await?;
    match (outcome, issued) {
        (
            RotateOutcome::Rotated {
                user,
                family,
                auth_time,
            },
            Some(refresh),
        ) => Ok(flows.pair(flows.access_token(&user, &family, auth_time), refresh)),
        (RotateOutcome::ReuseDetected, _) => {
            tracing::warn!(
                tenant = %tenant,
                client_ip = ctx.client_ip.as_deref().unwrap_or("-"),
                "refresh token reuse detected: the session was revoked"
            );
            Err(FlowError::InvalidCredentials)
        }
        _ => Err(FlowError::InvalidCredentials),
    }
}
