use super::{FlowError, Flows, authenticate};
use crate::crypto::hash_token;
use crate::domain::{RequestContext, TenantId};
use crate::store::SessionEnd;

pub struct LogoutInput<'a> {
    pub bearer: Option<&'a str>,
    pub refresh_token: Option<&'a str>,
}

/// Ends the session identified by a valid access token or, failing that, a live refresh token,
/// and records `after_logout`. The same access token cannot log out twice.
pub async fn logout(
    flows: &Flows,
    tenant: &TenantId,
    input: LogoutInput<'_>,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let now = flows.clock.now_millis();
    let revoked_until = flows.family_revoked_until(now);
    if let Ok(session) = authenticate(flows, tenant, input.bearer).await {
        let access_expires = (session.claims.exp + flows.settings.leeway_secs) * 1000;
        let end = SessionEnd {
            user_id: session.user.id,
            family: session.family,
            access_jti: Some((&session.claims.jti, access_expires)),
            family_revoked_until: revoked_until,
        };
        flows.store.end_session(tenant, end, ctx, now).await?;
        return Ok(());
    }
    let token = input
        .refresh_token
        .filter(|t| !t.is_empty())
        .ok_or(FlowError::InvalidCredentials)?;
    let (user_id, family, _) = flows
        .store
        .find_live_refresh(tenant, &hash_token(token), now)
        .await?
        .ok_or(FlowError::InvalidCredentials)?;
    let end = SessionEnd {
        user_id,
        family,
        access_jti: None,
        family_revoked_until: revoked_until,
    };
    flows.store.end_session(tenant, end, ctx, now).await?;
    Ok(())
}
