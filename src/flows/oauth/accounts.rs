//! `GET /oauth/accounts` and `DELETE /oauth/accounts/{provider}`.

use super::super::{FlowError, Flows, Session};
use crate::domain::{EventPayload, OauthAccount, RequestContext};
use crate::store::{Announce, UnlinkOutcome};

/// The signed-in user's linked provider accounts.
pub async fn oauth_accounts(
    flows: &Flows,
    session: &Session,
) -> Result<Vec<OauthAccount>, FlowError> {
    Ok(flows
        .store
        .oauth_accounts(&session.user.tenant, &session.user.id)
        .await?)
}

/// Unlinks the user's account of `provider`, unless it is their last way to sign in (no
/// password, no other linked account of a provider configured now).
pub async fn oauth_unlink(
    flows: &Flows,
    session: &Session,
    provider: &str,
    ctx: &RequestContext,
) -> Result<(), FlowError> {
    let user = &session.user;
    let usable = flows.oauth_of(&user.tenant).await?.names();
    let event = EventPayload::AfterOauthUnlink {
        user: user.snapshot(),
        provider: provider.to_owned(),
    };
    match flows
        .store
        .unlink_oauth_account(
            &user.tenant,
            user,
            provider,
            &usable,
            Announce::about(user, event, ctx),
            flows.clock.now_millis(),
        )
        .await?
    {
        UnlinkOutcome::Unlinked => {
            tracing::info!(tenant = %user.tenant, provider, user = %user.id, "OAuth account unlinked");
            Ok(())
        }
        UnlinkOutcome::NotLinked => Err(FlowError::NotFound("OAuth account not found")),
        UnlinkOutcome::LastMethod => Err(FlowError::LastSignInMethod),
    }
}
