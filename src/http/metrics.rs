//! HTTP metrics and the `/metrics` endpoint.
//!
//! Two layers count each request once: [`mark_route`] runs inside the router, where the
//! matched route template is known, and leaves it on the response; [`track`] wraps everything
//! (fallbacks included) and records method, template and status. Paths a client invents are
//! never labels: they count as `unmatched`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::client::bearer_token;
use super::error::ApiError;
use crate::flows;

/// The route template a request matched, carried out on its response.
#[derive(Clone)]
struct MatchedRoute(String);

/// Inner layer (`route_layer`): copies the matched template onto the response.
pub(super) async fn mark_route(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| MatchedRoute(m.as_str().to_owned()));
    let mut response = next.run(request).await;
    if let Some(route) = route {
        response.extensions_mut().insert(route);
    }
    response
}

/// Outer layer: counts the request with its route template, method and status.
pub(super) async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<MatchedRoute>()
        .map(|r| r.0.as_str());
    app.flows.metrics.record_http(
        &method,
        route,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// `GET /metrics` on the main address: the operator token as a bearer token.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "health",
    description = "Server metrics in the OpenMetrics text format. Needs the operator token.",
    responses(
        (status = 200, description = "The metrics", body = String,
            content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8"),
        (status = 401, response = crate::http::openapi::responses::Unauthorized),
    ),
    security(("bearer" = []))
)]
pub(super) async fn scrape(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let operator = bearer_token(&headers)
        .zip(app.operator_token.as_ref())
        .is_some_and(|(given, token)| token.matches(&given));
    if !operator {
        return Err(crate::hooks_admin::AdminError::Unauthenticated.into());
    }
    render(&app).await
}

/// `GET /metrics` on `[metrics] bind`: no token (that address is the operator's to protect).
pub(super) async fn scrape_open(State(app): State<AppState>) -> Result<Response, ApiError> {
    render(&app).await
}

async fn render(app: &AppState) -> Result<Response, ApiError> {
    let text = flows::render_metrics(&app.flows).await?;
    Ok((
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(crate::metrics::CONTENT_TYPE),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        text,
    )
        .into_response())
}
