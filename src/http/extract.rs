//! Extractors of the management API: who the request is for ([`Tenant`]) and who is asking
//! ([`HookAdmin`], [`Operator`]). Authorisation happens here, before any body is read, so an
//! anonymous caller never makes the server parse a multi-megabyte upload. Also the path and
//! query of any route ([`PathParams`], [`QueryParams`]), whose rejections are our JSON 422s
//! instead of axum's plain-text 400s.

use std::collections::HashMap;

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::AppState;
use super::client::Client;
use super::error::ApiError;
use crate::domain::TenantId;
use crate::hooks_admin::{Actor, HOOKS_MANAGE, OAUTH_MANAGE};

/// The tenant the path names, resolved (and known to exist) by the tenant middleware.
pub struct Tenant(pub TenantId);

impl FromRequestParts<AppState> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<TenantId>()
            .cloned()
            .map(Tenant)
            .ok_or(ApiError::UnknownTenant)
    }
}

/// Someone allowed to manage the tenant's hooks: the operator, or a user of that tenant who is
/// a superuser or holds `hooks:manage`.
pub struct HookAdmin {
    pub tenant: TenantId,
    pub actor: Actor,
}

impl FromRequestParts<AppState> for HookAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let (tenant, actor) = tenant_admin(parts, app, HOOKS_MANAGE).await?;
        Ok(HookAdmin { tenant, actor })
    }
}

/// Someone allowed to manage the tenant's OAuth providers: the operator, or a user of that
/// tenant who is a superuser or holds `oauth:manage`.
pub struct OauthAdmin {
    pub tenant: TenantId,
    pub actor: Actor,
}

impl FromRequestParts<AppState> for OauthAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let (tenant, actor) = tenant_admin(parts, app, OAUTH_MANAGE).await?;
        Ok(OauthAdmin { tenant, actor })
    }
}

/// The operator, or a user of the path's tenant who is a superuser or holds `permission`.
async fn tenant_admin(
    parts: &mut Parts,
    app: &AppState,
    permission: &str,
) -> Result<(TenantId, Actor), ApiError> {
    let Tenant(tenant) = Tenant::from_request_parts(parts, app).await?;
    let client = Client::from_request_parts(parts, app)
        .await
        .unwrap_or_else(|never| match never {});
    let actor = app
        .hooks_admin()?
        .authorize(&tenant, client.bearer.as_deref(), permission)
        .await?;
    Ok((tenant, actor))
}

/// The platform operator (`operator_token`).
pub struct Operator;

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let client = Client::from_request_parts(parts, app)
            .await
            .unwrap_or_else(|never| match never {});
        app.hooks_admin()?
            .authorize_operator(client.bearer.as_deref())?;
        Ok(Operator)
    }
}

/// The route's path parameters, by name. A segment that does not percent-decode to UTF-8 is a
/// 422 `invalid_path`.
pub struct PathParams(pub HashMap<String, String>);

impl PathParams {
    /// The parameter `name`, or empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0.get(name).map_or("", String::as_str)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for PathParams {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<HashMap<String, String>>::from_request_parts(parts, state)
            .await
            .map(|Path(params)| PathParams(params))
            .map_err(|rejection| ApiError::Unprocessable {
                code: "invalid_path",
                detail: rejection.body_text(),
            })
    }
}

/// The query string deserialised as `T`. A value of the wrong type, a repeated key or a
/// malformed string is a 422 `invalid_query`.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(query)| QueryParams(query))
            .map_err(|rejection| ApiError::Unprocessable {
                code: "invalid_query",
                detail: rejection.body_text(),
            })
    }
}
