//! Password hashing, access tokens and opaque one-time tokens.

mod jwt;
mod opaque;
mod password;

pub use jwt::{AccessClaims, JwtError, JwtKeys, JwtSettings};
pub use opaque::{OpaqueToken, hash_token};
pub use password::{PasswordHasher, Verification};
