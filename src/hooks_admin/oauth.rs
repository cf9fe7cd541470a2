//! A tenant's OAuth providers through the management API (`{T}/oauth-providers`): beside the
//! ones the server's file configures for it, which the API shows but does not change. The
//! client secret is write-only, sealed before it is stored.

use serde::Serialize;
use serde_json::Value;

use super::{Actor, AdminError, HooksAdmin};
use crate::config::{OauthProviderConfig, Secret};
use crate::domain::TenantId;
use crate::hooks::DeployError;
use crate::oauth::ProviderKind;
use crate::store::StoredOauthProvider;

/// Longest client secret accepted.
const MAX_CLIENT_SECRET_BYTES: usize = 4096;

/// A provider as the management API shows it: everything but the secret.
#[derive(Debug, Serialize)]
pub struct OauthProviderView {
    pub name: String,
    /// `config` (the server's file) or `api`.
    pub source: &'static str,
    pub kind: ProviderKind,
    pub client_id: String,
    pub scopes: Option<Vec<String>>,
    pub issuer: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub redirect_uris: Vec<String>,
    pub updated_at: Option<i64>,
}

impl OauthProviderView {
    fn of(name: &str, source: &'static str, c: &OauthProviderConfig, at: Option<i64>) -> Self {
        Self {
            name: name.to_owned(),
            source,
            kind: c.kind,
            client_id: c.client_id.clone(),
            scopes: c.scopes.clone(),
            issuer: c.issuer.clone(),
            authorize_url: c.authorize_url.clone(),
            token_url: c.token_url.clone(),
            userinfo_url: c.userinfo_url.clone(),
            redirect_uris: c.redirect_uris.clone(),
            updated_at: at,
        }
    }
}

fn invalid(code: &'static str, detail: impl Into<String>) -> AdminError {
    DeployError::new(code, detail).into()
}

impl HooksAdmin {
    /// The tenant's providers, the file's first.
    pub async fn oauth_providers(
        &self,
        tenant: &TenantId,
    ) -> Result<Vec<OauthProviderView>, AdminError> {
        let directory = self.flows.oauth_directory();
        let mut views: Vec<OauthProviderView> = directory
            .settings(tenant)
            .providers
            .iter()
            .map(|(name, c)| OauthProviderView::of(name, "config", c, None))
            .collect();
        for row in self.flows.store.tenant_oauth_providers(tenant).await? {
            match serde_json::from_str::<OauthProviderConfig>(&row.config) {
                Ok(c) => views.push(OauthProviderView::of(
                    &row.name,
                    "api",
                    &c,
                    Some(row.updated_at),
                )),
                Err(e) => tracing::error!(tenant = %tenant, provider = %row.name, error = %e,
                    "stored OAuth provider settings are unreadable"),
            }
        }
        Ok(views)
    }

    /// Creates or replaces provider `name` from a JSON body with the keys of
    /// `[oauth.providers.NAME]`; `true` when created. `client_secret` may be left out to keep
    /// the stored one. Applies at once on this replica, within seconds on the others.
    pub async fn put_oauth_provider(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        name: &str,
        body: Value,
    ) -> Result<bool, AdminError> {
        let directory = self.flows.oauth_directory();
        if directory.in_file(tenant, name) {
            return Err(invalid(
                "provider_in_config",
                format!("provider '{name}' is configured in the server's file; change it there"),
            ));
        }
        let mut config: OauthProviderConfig =
            serde_json::from_value(body).map_err(|e| invalid("invalid_provider", e.to_string()))?;
        let secret = config.client_secret.take();
        let existing = self
            .flows
            .store
            .tenant_oauth_providers(tenant)
            .await?
            .into_iter()
            .find(|r| r.name == name);
        let sealed_secret = match (&secret, existing) {
            (Some(secret), _) => {
                let value = secret.expose();
                if value.is_empty() || value.len() > MAX_CLIENT_SECRET_BYTES {
                    return Err(invalid(
                        "invalid_provider",
                        format!("client_secret must be 1-{MAX_CLIENT_SECRET_BYTES} bytes"),
                    ));
                }
                directory
                    .seal_secret(tenant, name, value)
                    .map_err(|e| AdminError::Internal(e.to_string()))?
            }
            (None, Some(row)) => row.sealed_secret,
            (None, None) => {
                return Err(invalid(
                    "invalid_provider",
                    "client_secret is required for a new provider",
                ));
            }
        };
        // Checked with a stand-in for a kept secret: only its presence matters here.
        config.client_secret = Some(secret.unwrap_or_else(|| Secret::new("kept".into())));
        directory
            .check_api_provider(tenant, name, &config)
            .map_err(|e| invalid("invalid_provider", e))?;
        config.client_secret = None;
        let stored = StoredOauthProvider {
            name: name.to_owned(),
            config: serde_json::to_string(&config).expect("provider settings serialise"),
            sealed_secret,
            updated_at: self.clock().now_millis(),
        };
        let created = self
            .flows
            .store
            .put_tenant_oauth_provider(tenant, &stored)
            .await?;
        directory.invalidate(tenant);
        tracing::info!(tenant = %tenant, provider = name, created, by = %actor.label(),
            "OAuth provider set");
        Ok(created)
    }

    pub async fn delete_oauth_provider(
        &self,
        actor: &Actor,
        tenant: &TenantId,
        name: &str,
    ) -> Result<(), AdminError> {
        let directory = self.flows.oauth_directory();
        if directory.in_file(tenant, name) {
            return Err(invalid(
                "provider_in_config",
                format!("provider '{name}' is configured in the server's file; change it there"),
            ));
        }
        if !self
            .flows
            .store
            .delete_tenant_oauth_provider(tenant, name)
            .await?
        {
            return Err(AdminError::NotFound("OAuth provider not found"));
        }
        directory.invalidate(tenant);
        tracing::info!(tenant = %tenant, provider = name, by = %actor.label(),
            "OAuth provider removed");
        Ok(())
    }
}
