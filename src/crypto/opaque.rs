use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A random bearer secret (refresh, email-verification and password-reset tokens).
///
/// Only its SHA-256 digest is stored, so a database leak yields nothing usable; lookups are by
/// digest, so comparing secrets never happens in variable time.
pub struct OpaqueToken {
    pub token: String,
    pub digest: String,
}

impl OpaqueToken {
    /// 256 bits from the OS CSPRNG, base64url without padding (43 characters).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let token = URL_SAFE_NO_PAD.encode(bytes);
        let digest = hash_token(&token);
        Self { token, digest }
    }
}

/// Hex SHA-256 of a presented token: the key it is stored under.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    let mut out = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write as _;
        let _ = write!(out, "{byte:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_stored_by_digest() {
        let a = OpaqueToken::generate();
        let b = OpaqueToken::generate();
        assert_ne!(a.token, b.token);
        assert_eq!(a.token.len(), 43);
        assert_eq!(hash_token(&a.token), a.digest);
        assert_eq!(a.digest.len(), 64);
        assert!(
            a.token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "base64url without padding: {}",
            a.token
        );
    }

    /// Known answers computed independently of this code, in Python 3:
    /// `hashlib.sha256(token.encode()).hexdigest()`, the last token being
    /// `base64.urlsafe_b64encode(bytes(range(32))).rstrip(b"=")` (the shape `generate` makes).
    /// The first two are also the FIPS 180-2 / NIST example digests of "" and "abc".
    #[test]
    fn digests_are_lowercase_hex_sha256_of_the_token_text() {
        for (token, digest) in [
            (
                "",
                "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            (
                "abc",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
            (
                "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                "ea866a757e4c38babfa8127cbe9a409d3e1f93a00ff1488ff735fcf917afffd0",
            ),
        ] {
            assert_eq!(hash_token(token), digest, "{token:?}");
        }
    }
}
