//! Password hashing (ours and imported schemes), access tokens, opaque one-time tokens, sealed
//! secrets and TOTP codes.

mod jwt;
mod opaque;
mod password;
mod sealed;
pub mod totp;

pub use jwt::{AccessClaims, JwtError, JwtKeys, JwtSettings};
pub use opaque::{OpaqueToken, hash_token};
pub use password::{HashCap, HashLimits, HashScheme, PasswordHasher, UnusableHash, Verification};
pub use sealed::{SealError, SecretBox};
