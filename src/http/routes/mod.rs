//! Route handlers, grouped as in API.md.

mod account;
mod admin;
mod email;
mod me;
mod sessions;

use axum::Router;
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
}
