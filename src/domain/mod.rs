//! Types every other layer speaks. Depends on nothing else in the crate.
//!
//! Values here are parsed, not validated: once you hold an `Email` or a `TenantId` it is
//! well-formed, so the flows never re-check.

mod email;
mod event;
mod gate;
mod ids;
mod oauth;
mod password;
mod profile;
mod role;
mod user;

pub use email::Email;
pub use event::{Event, EventKind, EventPayload, RequestContext};
pub use gate::{
    DecisionPoint, Denial, GateAnswer, GateContext, GateFailure, GateQuestion, Grant, OnError,
    PasswordReason, PasswordSubject, RegisterChanges, is_unsafe_char,
};
pub use ids::{FamilyId, TenantId, UserId, new_event_id};
pub use oauth::{OauthAccount, OauthUserInfo};
pub use password::{Password, PasswordPolicy, PolicyViolation, describe as describe_violations};
pub use profile::{FieldType, Profile, ProfileError, ProfileSchema};
pub use role::RoleName;
pub use user::{User, UserSnapshot};

/// Milliseconds since the Unix epoch: the one time representation stored and compared.
pub type UnixMillis = i64;
