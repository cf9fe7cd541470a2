use serde::Serialize;

use super::{FlowError, Flows};
use crate::crypto::{AccessClaims, OpaqueToken};
use crate::domain::{FamilyId, GateQuestion, Grant, RequestContext, User};
use crate::store::NewSession;

/// What login, refresh and the OAuth callback return (API.md "Token pair").
#[derive(Debug, Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
}

impl Flows {
    /// Signs an access token for `user` in session `family`, with the claims gates added.
    pub(super) fn access_token(
        &self,
        user: &User,
        family: &FamilyId,
        auth_time: i64,
        extra: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let now = self.clock.now_secs();
        self.jwt.encode(AccessClaims {
            sub: user.id.to_string(),
            tid: user.tenant.to_string(),
            exp: now + self.settings.access_ttl_secs,
            iat: now,
            jti: uuid::Uuid::new_v4().simple().to_string(),
            token_type: "access".into(),
            roles: user.roles.clone(),
            extra,
            family_id: family.to_string(),
            auth_time,
            iss: None,
            aud: None,
        })
    }

    /// A fresh refresh token for `family`, and the row that stores its digest.
    pub(super) fn refresh_token(
        &self,
        user: &User,
        family: FamilyId,
        auth_time: i64,
        client: &crate::domain::RequestContext,
    ) -> (OpaqueToken, NewSession) {
        let token = OpaqueToken::generate();
        let session = NewSession {
            user_id: user.id,
            family,
            token_digest: token.digest.clone(),
            auth_time,
            expires_at: self.clock.now_millis() + self.settings.refresh_ttl_millis,
            user_agent: client
                .user_agent
                .as_ref()
                .map(|ua| ua.chars().take(512).collect()),
            ip_address: client.client_ip.clone(),
        };
        (token, session)
    }

    /// What a sign-in of an existing account asks its gates: may `user` sign in (before-login),
    /// then the claims of the token it gets. Password and OAuth sign-ins alike.
    pub(super) async fn admit(
        &self,
        user: &User,
        grant: Grant,
        ctx: &RequestContext,
    ) -> Result<serde_json::Map<String, serde_json::Value>, FlowError> {
        self.ask_gates(
            &user.tenant,
            GateQuestion::BeforeLogin {
                user: user.snapshot(),
            },
            ctx,
        )
        .await?;
        self.claims_for(user, grant, ctx).await
    }

    /// The custom claims token-claims gates give `user` (none without such gates).
    pub(super) async fn claims_for(
        &self,
        user: &User,
        grant: Grant,
        ctx: &RequestContext,
    ) -> Result<serde_json::Map<String, serde_json::Value>, FlowError> {
        let verdict = self
            .ask_gates(
                &user.tenant,
                GateQuestion::TokenClaims {
                    user: user.snapshot(),
                    grant,
                },
                ctx,
            )
            .await?;
        Ok(verdict.claims)
    }

    pub(super) fn pair(&self, access_token: String, refresh_token: String) -> TokenPair {
        TokenPair {
            access_token,
            refresh_token,
            token_type: "bearer",
            expires_in: self.settings.access_ttl_secs,
        }
    }
}
