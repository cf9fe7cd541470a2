//! The HTTP layer: parse, authorise, rate-limit, call a flow, map its error. Routes keep
//! fastapi-fullauth's paths, bodies and status codes (`API.md`).

mod body;
mod client;
mod console;
mod cookies;
mod error;
mod extract;
mod metrics;
mod openapi;
mod rate_limit;
mod routes;
pub mod serve;
mod tenant;
mod time;

use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;

pub use client::ProxyPolicy;
pub use cookies::CookiePolicy;
pub use error::ApiError;
pub use rate_limit::RateLimiter;
pub use routes::health::Readiness;
pub use serve::{ServeSettings, serve};

use crate::domain::TenantId;
use crate::flows::{self, Flows, Session};
use crate::hooks_admin::HooksAdmin;
use client::Client;
use tenant::TenantCache;

/// Shared by every request. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub flows: Arc<Flows>,
    pub limiter: Arc<RateLimiter>,
    pub proxy: Arc<ProxyPolicy>,
    /// Set once hooks are loaded (in the background after start).
    hooks_admin: Arc<OnceLock<Arc<HooksAdmin>>>,
    pub readiness: Arc<Readiness>,
    /// Largest component a deploy may upload.
    pub max_component_bytes: usize,
    tenants: Arc<TenantCache>,
    /// Reads `/metrics` on the main address.
    operator_token: Option<Arc<crate::config::Secret>>,
    /// Which tenants carry sessions in cookies, and the CSRF key.
    cookies: Arc<CookiePolicy>,
}

impl AppState {
    pub fn new(
        flows: Arc<Flows>,
        limiter: RateLimiter,
        proxy: ProxyPolicy,
        readiness: Arc<Readiness>,
        max_component_bytes: usize,
    ) -> Self {
        Self {
            flows,
            limiter: Arc::new(limiter),
            proxy: Arc::new(proxy),
            hooks_admin: Arc::default(),
            readiness,
            max_component_bytes,
            tenants: Arc::new(TenantCache::default()),
            operator_token: None,
            cookies: Arc::default(),
        }
    }

    /// The cookie transport's settings (off for every tenant until called).
    pub fn with_cookies(mut self, cookies: CookiePolicy) -> Self {
        self.cookies = Arc::new(cookies);
        self
    }

    /// The operator's token, which may read `/metrics`.
    pub fn with_operator_token(mut self, token: Option<crate::config::Secret>) -> Self {
        self.operator_token = token.map(Arc::new);
        self
    }

    /// Makes hook management available: called once, when hooks are loaded.
    pub fn hooks_loaded(&self, admin: Arc<HooksAdmin>) {
        let _ = self.hooks_admin.set(admin);
        self.readiness.set_hooks_loaded();
    }

    /// Hook management, or 503 while hooks are still loading.
    pub(crate) fn hooks_admin(&self) -> Result<&Arc<HooksAdmin>, ApiError> {
        self.hooks_admin.get().ok_or(ApiError::NotReady)
    }

    async fn session(&self, tenant: &TenantId, client: &Client) -> Result<Session, ApiError> {
        if client.bearer.is_none() && client.csrf_failed {
            return Err(ApiError::CsrfFailed);
        }
        Ok(flows::authenticate(&self.flows, tenant, client.bearer.as_deref()).await?)
    }

    async fn limit(&self, bucket: rate_limit::Bucket, client: &Client) -> Result<(), ApiError> {
        self.limiter.check(bucket, client.ip).await
    }
}

pub const API_PREFIX: &str = "/api/v1/auth";

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let auth = routes::auth_routes();
    // Room for the component, the manifest and the multipart framing.
    let max_upload = state.max_component_bytes + (256 << 10);
    Router::new()
        .nest(API_PREFIX, auth.clone())
        .nest(&format!("/t/{{tenant}}{API_PREFIX}"), auth)
        .merge(routes::management_routes(max_upload))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            tenant::resolve_tenant,
        ))
        .route("/healthz", get(routes::health::healthz))
        .route("/readyz", get(routes::health::readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/openapi.json", get(openapi::serve_document))
        .merge(console::routes())
        .route_layer(axum::middleware::from_fn(metrics::mark_route))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn(cookies::security_headers))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}

/// The metrics-only listener (`[metrics] bind`): `/metrics` without a token, nothing else.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics::scrape_open))
        .fallback(|| async { ApiError::RouteNotFound })
        .with_state(state)
}
