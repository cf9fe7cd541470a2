//! Password hashing, access tokens, opaque one-time tokens and sealed hook secrets.

mod jwt;
mod opaque;
mod password;
mod sealed;

pub use jwt::{AccessClaims, JwtError, JwtKeys, JwtSettings};
pub use opaque::{OpaqueToken, hash_token};
pub use password::{PasswordHasher, Verification};
pub use sealed::{SealError, SecretBox};
