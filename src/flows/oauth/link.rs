//! `GET /oauth/{provider}/link/authorize` and `POST /oauth/{provider}/link/callback`: a
//! signed-in user attaches a provider account. Issues no tokens: linking is not a sign-in.

use super::super::{FlowError, Flows, Session};
use super::{AuthorizeStart, CallbackInput, Purpose};
use crate::domain::{EventPayload, OauthAccount, RequestContext};
use crate::store::{Announce, LinkOutcome};

/// Starts a link for the signed-in user; the state names them, so a link another person
/// started (with their own provider account) cannot be finished in this user's session.
pub async fn oauth_link_authorize(
    flows: &Flows,
    session: &Session,
    provider: &str,
    redirect_uri: &str,
) -> Result<AuthorizeStart, FlowError> {
    let tenant = &session.user.tenant;
    let provider = flows.provider(tenant, provider).await?;
    flows
        .start_flow(
            tenant,
            provider,
            redirect_uri,
            Purpose::OauthLink,
            Some(&session.user.id),
        )
        .await
}

/// Finishes a link: 409 when the provider account belongs to someone else, or when the user
/// has a different account of this provider linked. A repeat of an existing link succeeds.
pub async fn oauth_link_callback(
    flows: &Flows,
    session: &Session,
    provider: &str,
    input: CallbackInput,
    ctx: &RequestContext,
) -> Result<OauthAccount, FlowError> {
    let user = &session.user;
    let tenant = &user.tenant;
    let (_, provider) = flows.provider(tenant, provider).await?;
    let state = flows.open_state(tenant, &provider, &input, Purpose::OauthLink)?;
    if state.link_user_id.as_deref() != Some(user.id.to_string().as_str()) {
        return Err(flows.oauth_failed(
            tenant,
            provider.name(),
            "link state: started by another user",
        ));
    }
    let info = flows.redeem(tenant, &provider, &state, &input.code).await?;
    let account = OauthAccount::of(&info);
    let event = EventPayload::AfterOauthLink {
        user: user.snapshot(),
        provider: info.provider.clone(),
    };
    match flows
        .store
        .link_oauth_account(
            tenant,
            user,
            &account,
            Announce::about(user, event, ctx),
            flows.clock.now_millis(),
        )
        .await?
    {
        LinkOutcome::Linked => {
            tracing::info!(tenant = %tenant, provider = %info.provider, user = %user.id,
                "OAuth account linked");
            Ok(account)
        }
        LinkOutcome::TakenByOther => {
            tracing::warn!(tenant = %tenant, provider = %info.provider, user = %user.id,
                "OAuth link refused: the provider account belongs to another user");
            Err(FlowError::OauthAccountTaken(info.provider))
        }
        LinkOutcome::ProviderAlreadyLinked => {
            Err(FlowError::OauthProviderAlreadyLinked(info.provider))
        }
    }
}
