use super::{FlowError, Flows};
use crate::crypto::AccessClaims;
use crate::domain::{FamilyId, TenantId, User, UserId};

/// An authenticated caller: a live user of this tenant holding an unrevoked access token.
#[derive(Debug, Clone)]
pub struct Session {
    pub user: User,
    pub claims: AccessClaims,
    pub family: FamilyId,
}

impl Session {
    /// Seconds since the user last proved their password in this session.
    pub fn auth_age_secs(&self, now_secs: i64) -> i64 {
        let proved_at = if self.claims.auth_time > 0 {
            self.claims.auth_time
        } else {
            self.claims.iat
        };
        now_secs - proved_at
    }
}

/// Checks a bearer access token: signature and claims, tenant, blacklist (jti and family) and
/// that the user still exists and is active. Every failure is the same credentials error.
pub async fn authenticate(
    flows: &Flows,
    tenant: &TenantId,
    bearer: Option<&str>,
) -> Result<Session, FlowError> {
    let token = bearer.ok_or(FlowError::InvalidCredentials)?;
    let claims = flows
        .jwt
        .decode_access(token)
        .map_err(|_| FlowError::InvalidCredentials)?;
    // A token minted for another tenant is a forgery here, however valid its signature.
    if claims.tid != tenant.as_str() {
        return Err(FlowError::InvalidCredentials);
    }
    let user_id = UserId::parse(&claims.sub).ok_or(FlowError::InvalidCredentials)?;
    let family = FamilyId::parse(&claims.family_id).ok_or(FlowError::InvalidCredentials)?;
    let found = flows
        .store
        .find_session_user(tenant, &user_id, &claims.jti, &claims.family_id)
        .await?;
    match found {
        Some((user, false)) if user.is_active => Ok(Session {
            user,
            claims,
            family,
        }),
        _ => Err(FlowError::InvalidCredentials),
    }
}
