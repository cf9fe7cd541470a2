use super::{FlowError, Flows, Session};
use crate::domain::FamilyId;
use crate::store::SessionInfo;

/// The caller's live sessions, newest use first; `bool` marks the caller's own.
pub async fn list_sessions(
    flows: &Flows,
    session: &Session,
) -> Result<Vec<(SessionInfo, bool)>, FlowError> {
    let sessions = flows
        .store
        .list_sessions(
            &session.user.tenant,
            &session.user.id,
            flows.clock.now_millis(),
        )
        .await?;
    let current = session.family.to_string();
    Ok(sessions
        .into_iter()
        .map(|s| {
            let is_current = s.family_id == current;
            (s, is_current)
        })
        .collect())
}

pub async fn revoke_session(
    flows: &Flows,
    session: &Session,
    family_id: &str,
) -> Result<(), FlowError> {
    let not_found = FlowError::NotFound("Session not found");
    let family = FamilyId::parse(family_id).ok_or(not_found)?;
    let now = flows.clock.now_millis();
    let revoked = flows
        .store
        .revoke_session(
            &session.user.tenant,
            &session.user.id,
            &family,
            flows.family_revoked_until(now),
            now,
        )
        .await?;
    if revoked {
        Ok(())
    } else {
        Err(FlowError::NotFound("Session not found"))
    }
}

/// Signs out every other session; returns how many refresh tokens were revoked.
pub async fn revoke_other_sessions(flows: &Flows, session: &Session) -> Result<u64, FlowError> {
    let now = flows.clock.now_millis();
    Ok(flows
        .store
        .revoke_other_sessions(
            &session.user.tenant,
            &session.user.id,
            &session.family,
            flows.family_revoked_until(now),
            now,
        )
        .await?)
}
