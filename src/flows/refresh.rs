use super::{FlowError, Flows, TokenPair};
use crate::crypto::hash_token;
use crate::domain::{DecisionPoint, Grant, RequestContext, TenantId};
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
        let (user, family, auth_time) = live_session(flows, tenant, &digest, now).await?;
        let claims = flows.claims_for(&user, Grant::Refresh, ctx).await?;
        let access = flows.access_token(&user, &family, auth_time, claims);
        return Ok(flows.pair(access, token.to_owned()));
    }

    // Claims are settled before the rotation commits: a gate that denies must not cost the
    // client its refresh token. Only tenants with claims gates pay for the extra read.
    let claims = if flows.has_gates(tenant, DecisionPoint::TokenClaims)? {
        let (user, _, _) = live_session(flows, tenant, &digest, now).await?;
        Some((user.id, flows.claims_for(&user, Grant::Refresh, ctx).await?))
    } else {
        None
    };

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
        ) => {
            let claims = match claims {
                Some((id, claims)) if id == user.id => claims,
                // The token was rotated to another user in between: impossible, as tokens
                // belong to one user; refuse rather than sign someone else's claims.
                Some(_) => return Err(FlowError::InvalidCredentials),
                None => Default::default(),
            };
            Ok(flows.pair(
                flows.access_token(&user, &family, auth_time, claims),
                refresh,
            ))
        }
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
