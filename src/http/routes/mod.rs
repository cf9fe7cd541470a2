//! Route handlers, grouped as in API.md.

pub(super) mod account;
pub(super) mod admin;
pub(super) mod email;
pub mod health;
pub(super) mod hooks;
pub(super) mod me;
pub(super) mod mfa;
pub(super) mod monitor;
pub(super) mod oauth;
pub(super) mod oauth_providers;
pub(super) mod sessions;
pub(super) mod tenants;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post};

use super::AppState;

pub fn auth_routes() -> Router<AppState> {
    Router::new()
        .route("/register", post(account::register))
        .route("/login", post(account::login))
        .route("/refresh", post(account::refresh))
        .route("/logout", post(account::logout))
        .route("/sessions", get(sessions::list))
        .route("/sessions/revoke-others", post(sessions::revoke_others))
        .route("/sessions/{family_id}", delete(sessions::revoke))
        .route(
            "/me",
            get(me::show).patch(me::update).delete(me::delete_account),
        )
        .route("/me/verified", get(me::show_verified))
        .route("/mfa", get(mfa::status).delete(mfa::disable))
        .route("/mfa/enroll", post(mfa::enroll))
        .route("/mfa/confirm", post(mfa::confirm))
        .route("/mfa/verify", post(mfa::verify))
        .route("/change-password", post(me::change_password))
        .route("/verify-email/request", post(email::request_verification))
        .route("/verify-email/confirm", post(email::confirm_verification))
        .route("/password-reset/request", post(email::request_reset))
        .route("/password-reset/confirm", post(email::confirm_reset))
        .route("/admin/assign-role", post(admin::assign_role))
        .route("/admin/remove-role", post(admin::remove_role))
        .route("/admin/assign-permission", post(admin::assign_permission))
        .route("/admin/remove-permission", post(admin::remove_permission))
        .route(
            "/admin/role-permissions/{role_name}",
            get(admin::role_permissions),
        )
        .route("/oauth/providers", get(oauth::providers))
        .route("/oauth/accounts", get(oauth::accounts))
        .route("/oauth/accounts/{provider}", delete(oauth::unlink))
        .route("/oauth/{provider}/authorize", get(oauth::authorize))
        .route("/oauth/{provider}/callback", post(oauth::callback))
        .route(
            "/oauth/{provider}/link/authorize",
            get(oauth::link_authorize),
        )
        .route(
            "/oauth/{provider}/link/callback",
            post(oauth::link_callback),
        )
}

/// The management API, under both `/api/v1` (default tenant) and `/t/{tenant}/api/v1`.
/// Uploads get their own body limit: a component may be larger than any auth request.
pub fn management_routes(max_upload_bytes: usize) -> Router<AppState> {
    let mut router = Router::new();
    for prefix in ["/api/v1", "/t/{tenant}/api/v1"] {
        router = router
            .route(&format!("{prefix}/hooks"), get(hooks::list))
            .route(
                &format!("{prefix}/hooks/{{name}}"),
                get(hooks::show)
                    .put(hooks::deploy)
                    .layer(DefaultBodyLimit::max(max_upload_bytes))
                    .patch(hooks::patch)
                    .delete(hooks::remove),
            )
            .route(&format!("{prefix}/hook-secrets"), get(hooks::list_secrets))
            .route(
                &format!("{prefix}/hook-secrets/{{key}}"),
                axum::routing::put(hooks::put_secret).delete(hooks::delete_secret),
            )
            .route(&format!("{prefix}/hook-failures"), get(hooks::failures))
            .route(&format!("{prefix}/hook-decisions"), get(hooks::decisions))
            .route(&format!("{prefix}/monitor"), get(monitor::show))
            .route(
                &format!("{prefix}/oauth-providers"),
                get(oauth_providers::list),
            )
            .route(
                &format!("{prefix}/oauth-providers/{{name}}"),
                axum::routing::put(oauth_providers::put).delete(oauth_providers::remove),
            )
            .route(
                &format!("{prefix}/hook-failures/{{id}}/replay"),
                post(hooks::replay),
            );
    }
    router
        .route("/api/v1/tenants", get(tenants::list).post(tenants::create))
        .route("/api/v1/tenants/{id}", delete(tenants::remove))
}
