use super::{FlowError, Flows, authenticate};
use crate::crypto::hash_token;
use crate::domain::{EventPayload, RequestContext, TenantId, UserId};
use crate::store::{Announce, SessionEnd};

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
        let announce = logged_out(tenant, end.user_id, ctx);
        return ended(flows.store.end_session(end, announce, now).await?);
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
    let announce = logged_out(tenant, end.user_id, ctx);
    ended(flows.store.end_session(end, announce, now).await?)
}

/// A logout that lost a race with another using the same token answers as a second logout
/// would: the token is spent (and `after_logout` was recorded once, by the winner).
fn ended(ended: bool) -> Result<(), FlowError> {
    if ended {
        Ok(())
    } else {
        Err(FlowError::InvalidCredentials)
    }
}

fn logged_out<'a>(tenant: &TenantId, user_id: UserId, ctx: &'a RequestContext) -> Announce<'a> {
    Announce {
        tenant: tenant.clone(),
        subject: Some(user_id),
        payload: EventPayload::AfterLogout {
            user_id: user_id.to_string(),
        },
        context: ctx,
    }
}
