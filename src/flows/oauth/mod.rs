//! Sign-in with OAuth2 / OpenID Connect providers, as fastapi-fullauth does it (API.md
//! "OAuth"): a signed, single-use, short-lived state bound to the browser that started the
//! flow (the `binding` only that client holds), PKCE S256 always, exact redirect URIs.
//! The state carries everything the callback needs, so any replica can finish a flow another
//! one started; the PKCE verifier is recomputed from the state's nonce with the server's key.
//!
//! One flow per file: [`sign_in`] (authorize + callback), [`link`], [`accounts`] (list,
//! unlink). Every failure after the provider is named is [`FlowError::OauthFailed`] for the
//! client and a log line with the reason for the operator.

mod accounts;
mod link;
mod sign_in;

use std::fmt::Display;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use accounts::{oauth_accounts, oauth_unlink};
pub use link::{oauth_link_authorize, oauth_link_callback};
pub use sign_in::{
    AuthorizeStart, CallbackInput, oauth_authorize, oauth_callback, oauth_providers,
};

use super::{FlowError, Flows};
use crate::domain::{OauthUserInfo, TenantId, UserId};
use crate::oauth::{ApiProvider, AuthorizeRequest, CodeExchange, Provider, TenantProviders};

/// The state's `sub`: never a user id, so a state is worthless as a session token.
const STATE_SUBJECT: &str = "oauth-state";
/// The state's `type`: no access token has it.
const STATE_TYPE: &str = "oauth_state";

/// What a state is for: a sign-in state cannot finish a link, nor a link state sign in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Purpose {
    OauthState,
    OauthLink,
}

/// The signed state (a JWT with the server's key): it travels through the browser and the
/// provider, so it holds nothing secret; the binding is only its digest.
#[derive(Debug, Serialize, Deserialize)]
struct StateClaims {
    sub: String,
    #[serde(rename = "type")]
    token_type: String,
    tid: String,
    exp: i64,
    iat: i64,
    jti: String,
    purpose: Purpose,
    provider: String,
    nonce: String,
    /// base64url(SHA-256(binding)).
    binding: String,
    redirect_uri: String,
    /// Link states: the user who started the link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    link_user_id: Option<String>,
}

fn binding_digest(binding: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(binding.as_bytes()))
}

fn random_token(bytes: usize) -> String {
    let mut raw = vec![0u8; bytes];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

impl Flows {
    /// The tenant's providers: the file's and those configured through the management API
    /// (read again at most every few seconds).
    pub(super) async fn oauth_of(
        &self,
        tenant: &TenantId,
    ) -> Result<Arc<TenantProviders>, FlowError> {
        if let Some(cached) = self.oauth.cached(tenant) {
            return Ok(cached);
        }
        let rows = self.store.tenant_oauth_providers(tenant).await?;
        Ok(self.oauth.merge(
            tenant,
            rows.into_iter()
                .map(|r| ApiProvider {
                    name: r.name,
                    config: r.config,
                    sealed_secret: r.sealed_secret,
                    updated_at: r.updated_at,
                })
                .collect(),
        ))
    }

    /// The tenant's provider `name` and its tenant's settings, or 404.
    async fn provider(
        &self,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(Arc<TenantProviders>, Arc<Provider>), FlowError> {
        let all = self.oauth_of(tenant).await?;
        let provider = all
            .get(name)
            .cloned()
            .ok_or_else(|| FlowError::OauthProviderNotFound(name.to_owned()))?;
        Ok((all, provider))
    }

    /// The OAuth providers (and their settings) of every tenant.
    pub fn oauth_directory(&self) -> &crate::oauth::OauthDirectory {
        &self.oauth
    }

    /// Logs why an OAuth flow failed and returns what the client is told.
    fn oauth_failed(&self, tenant: &TenantId, provider: &str, reason: impl Display) -> FlowError {
        tracing::warn!(tenant = %tenant, provider, reason = %reason, "OAuth authentication failed");
        FlowError::OauthFailed
    }

    /// Starts a flow: checks the redirect URI, signs a state bound to a fresh binding, and asks
    /// the provider for its authorization URL with the PKCE challenge.
    async fn start_flow(
        &self,
        tenant: &TenantId,
        (all, provider): (Arc<TenantProviders>, Arc<Provider>),
        redirect_uri: &str,
        purpose: Purpose,
        link_user: Option<&UserId>,
    ) -> Result<AuthorizeStart, FlowError> {
        if !provider.allows_redirect(redirect_uri) {
            return Err(FlowError::InvalidRedirectUri);
        }
        let binding = random_token(32);
        let nonce = random_token(16);
        let now = self.clock.now_secs();
        let ttl = all.state_ttl_secs;
        let state = self.jwt.sign(&StateClaims {
            sub: STATE_SUBJECT.into(),
            token_type: STATE_TYPE.into(),
            tid: tenant.to_string(),
            exp: now + ttl,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            purpose,
            provider: provider.name().to_owned(),
            nonce: nonce.clone(),
            binding: binding_digest(&binding),
            redirect_uri: redirect_uri.to_owned(),
            link_user_id: link_user.map(ToString::to_string),
        });
        let verifier = self.pkce_verifier(&nonce);
        let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        let authorization_url = provider
            .authorization_url(AuthorizeRequest {
                state: &state,
                redirect_uri,
                code_challenge: &challenge,
                nonce: &nonce,
            })
            .await
            .map_err(|e| self.oauth_failed(tenant, provider.name(), e))?;
        Ok(AuthorizeStart {
            authorization_url,
            binding,
        })
    }

    /// The PKCE verifier of the flow with this nonce (43 characters, RFC 7636 4.1).
    fn pkce_verifier(&self, nonce: &str) -> String {
        self.jwt.mac("oauth-pkce", nonce)
    }

    /// Opens a state at a callback: signed by us, unexpired, for this tenant, provider and
    /// purpose, and presented by the client that holds its binding. Nothing is used up yet, so
    /// a forged or misdirected attempt cannot spend the rightful client's state.
    fn open_state(
        &self,
        tenant: &TenantId,
        provider: &Provider,
        input: &CallbackInput,
        purpose: Purpose,
    ) -> Result<StateClaims, FlowError> {
        let fail = |reason: &str| self.oauth_failed(tenant, provider.name(), reason);
        let state: StateClaims = self
            .jwt
            .verify(&input.state)
            .map_err(|e| self.oauth_failed(tenant, provider.name(), format!("state: {e}")))?;
        if state.token_type != STATE_TYPE || state.sub != STATE_SUBJECT {
            return Err(fail("state: not an OAuth state"));
        }
        if state.exp + self.settings.leeway_secs < self.clock.now_secs() {
            return Err(fail("state: expired"));
        }
        if state.purpose != purpose {
            return Err(fail("state: started for another purpose (sign-in vs link)"));
        }
        if state.tid != tenant.as_str() || state.provider != provider.name() {
            return Err(fail("state: started for another tenant or provider"));
        }
        let presented = binding_digest(&input.binding);
        if !bool::from(presented.as_bytes().ct_eq(state.binding.as_bytes())) {
            return Err(fail("state: not bound to the presenting client"));
        }
        Ok(state)
    }

    /// Uses the state up (once, across replicas), then exchanges the code and says who came
    /// back.
    async fn redeem(
        &self,
        tenant: &TenantId,
        provider: &Provider,
        state: &StateClaims,
        code: &str,
    ) -> Result<OauthUserInfo, FlowError> {
        let keep_until = (state.exp + self.settings.leeway_secs) * 1000;
        if !self
            .store
            .consume_oauth_state(&state.jti, keep_until)
            .await?
        {
            return Err(self.oauth_failed(tenant, provider.name(), "state: used already"));
        }
        let verifier = self.pkce_verifier(&state.nonce);
        provider
            .identify(CodeExchange {
                code,
                redirect_uri: &state.redirect_uri,
                code_verifier: &verifier,
                nonce: &state.nonce,
            })
            .await
            .map_err(|e| self.oauth_failed(tenant, provider.name(), e))
    }
}
