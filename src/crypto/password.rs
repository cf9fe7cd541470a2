//! Password hashing. Every hash this server writes is argon2id with the configured parameters;
//! verification also understands the hashes users bring from the systems they are imported from
//! (fastapi-fullauth, Django, passlib), so they can sign in once and have the hash upgraded.

use std::fmt;

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use rand::rngs::OsRng;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::domain::Password;

/// argon2id with configured parameters. Every call here burns tens of milliseconds of CPU, so
/// callers run it on the blocking pool, never on the async runtime.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    limits: HashLimits,
    /// A hash of a random password, verified against when the user does not exist so that
    /// unknown and known emails take the same time.
    dummy_hash: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    Mismatch,
    /// The password is right; `outdated` says the stored hash uses other parameters (or another
    /// algorithm) and should be replaced.
    Match {
        outdated: bool,
    },
}

#[derive(Debug, thiserror::Error)]
#[error("invalid argon2 parameters: {0}")]
pub struct ParamsError(String);

/// The most work a stored hash may ask for. Imported hashes carry their own cost parameters, so
/// without caps one odd or hostile row (argon2 with 4 GiB of memory, bcrypt cost 31, a billion
/// pbkdf2 rounds) would tie up a core, or exhaust memory, on every login attempt against it.
/// The caps never refuse the server's own hashes: they are raised to its argon2 parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HashLimits {
    pub argon2_max_memory_kib: u32,
    pub argon2_max_iterations: u32,
    pub argon2_max_parallelism: u32,
    pub bcrypt_max_cost: u32,
    pub pbkdf2_max_rounds: u32,
}

impl Default for HashLimits {
    fn default() -> Self {
        Self {
            // 256 MiB: four times the argon2-cffi default, well above any sane deployment.
            argon2_max_memory_kib: 262_144,
            argon2_max_iterations: 16,
            argon2_max_parallelism: 16,
            // Cost 15 is about 2 s per attempt; the usual range is 10-13.
            bcrypt_max_cost: 15,
            // Django 5.2 uses 1,000,000 and passlib 29,000; twice Django's leaves room for the
            // next bump.
            pbkdf2_max_rounds: 2_000_000,
        }
    }
}

/// The kind of a stored hash that `verify` can check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashScheme {
    /// A PHC string, `$argon2id$v=19$m=...,t=...,p=...$salt$hash` (also argon2i/argon2d, v=16).
    Argon2,
    /// `$2a$`, `$2b$` or `$2y$` (OpenBSD / crypt_blowfish / Python bcrypt).
    Bcrypt,
    /// passlib's `$pbkdf2-sha256$rounds$salt$checksum` in its adapted base64.
    Pbkdf2Sha256,
    /// Django's `pbkdf2_sha256$iterations$salt$base64hash`.
    DjangoPbkdf2Sha256,
}

impl fmt::Display for HashScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Argon2 => "argon2",
            Self::Bcrypt => "bcrypt",
            Self::Pbkdf2Sha256 => "passlib pbkdf2-sha256",
            Self::DjangoPbkdf2Sha256 => "django pbkdf2_sha256",
        })
    }
}

/// Which of the `HashLimits` a stored hash exceeds; displays as the field's name so an operator
/// knows what to raise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HashCap {
    Argon2Memory,
    Argon2Iterations,
    Argon2Parallelism,
    BcryptCost,
    Pbkdf2Rounds,
}

impl fmt::Display for HashCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Argon2Memory => "argon2_max_memory_kib",
            Self::Argon2Iterations => "argon2_max_iterations",
            Self::Argon2Parallelism => "argon2_max_parallelism",
            Self::BcryptCost => "bcrypt_max_cost",
            Self::Pbkdf2Rounds => "pbkdf2_max_rounds",
        })
    }
}

/// Why a stored hash cannot be verified. Users imported with one get no password and must reset.
/// The messages never include the hash itself.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnusableHash {
    #[error("not a password hash format this server understands")]
    UnknownFormat,
    #[error("malformed {scheme} hash: {reason}")]
    Malformed {
        scheme: HashScheme,
        reason: &'static str,
    },
    #[error("{scheme} hash asks for {value}, over the {cap} cap of {max}")]
    OverCap {
        scheme: HashScheme,
        cap: HashCap,
        value: u32,
        max: u32,
    },
}

/// A stored hash, parsed and checked against the caps: verifying it costs bounded work.
enum Parsed<'a> {
    Argon2 {
        algorithm: Algorithm,
        version: Version,
        params: Params,
        salt: Vec<u8>,
        expected: Vec<u8>,
    },
    /// Checked here, verified by the bcrypt crate from the original string.
    Bcrypt,
    Pbkdf2Sha256 {
        rounds: u32,
        salt: Vec<u8>,
        expected: [u8; PBKDF2_SHA256_LEN],
    },
    DjangoPbkdf2Sha256 {
        iterations: u32,
        salt: &'a str,
        expected: [u8; PBKDF2_SHA256_LEN],
    },
}

/// bcrypt keys on at most 72 bytes; a longer password is refused rather than truncated, since
/// any password sharing its first 72 bytes would otherwise verify too.
const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;
const PBKDF2_SHA256_LEN: usize = 32;

impl PasswordHasher {
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, ParamsError> {
        let params = Params::new(memory_kib, iterations, parallelism, None)
            .map_err(|e| ParamsError(e.to_string()))?;
        let mut hasher = Self {
            limits: covering(HashLimits::default(), &params),
            params,
            dummy_hash: String::new(),
        };
        hasher.dummy_hash = hasher.hash(&Password::new(uuid::Uuid::new_v4().to_string()));
        Ok(hasher)
    }

    /// Replaces the caps on stored hashes. Caps below the server's own argon2 parameters are
    /// raised to them, so the server can always verify what it wrote.
    pub fn with_limits(mut self, limits: HashLimits) -> Self {
        self.limits = covering(limits, &self.params);
        self
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    /// A PHC string: `$argon2id$v=19$m=...,t=...,p=...$salt$hash`.
    pub fn hash(&self, password: &Password) -> String {
        let salt = SaltString::generate(&mut OsRng);
        self.argon2()
            .hash_password(password.expose().as_bytes(), &salt)
            .expect("argon2 hashing with validated parameters cannot fail")
            .to_string()
    }

    /// Which scheme a stored hash uses, or why it cannot be verified (unknown, malformed, or
    /// asking for more work than the caps allow). Never panics, whatever the input.
    pub fn classify(&self, stored: &str) -> Result<HashScheme, UnusableHash> {
        self.parse(stored).map(|parsed| match parsed {
            Parsed::Argon2 { .. } => HashScheme::Argon2,
            Parsed::Bcrypt => HashScheme::Bcrypt,
            Parsed::Pbkdf2Sha256 { .. } => HashScheme::Pbkdf2Sha256,
            Parsed::DjangoPbkdf2Sha256 { .. } => HashScheme::DjangoPbkdf2Sha256,
        })
    }

    /// Verifies against any supported scheme, each comparing in constant time, then tells
    /// whether the hash is current: only argon2id v=19 with exactly this server's parameters is.
    /// An unusable stored hash costs one dummy verification and never matches, so the answer
    /// time does not tell an attacker that the account's hash is broken.
    pub fn verify(&self, password: &Password, stored: &str) -> Verification {
        let Ok(parsed) = self.parse(stored) else {
            self.verify_dummy(password);
            return Verification::Mismatch;
        };
        let pw = password.expose().as_bytes();
        match parsed {
            Parsed::Argon2 {
                algorithm,
                version,
                params,
                salt,
                expected,
            } => {
                let current = algorithm == Algorithm::Argon2id
                    && version == Version::V0x13
                    && params.m_cost() == self.params.m_cost()
                    && params.t_cost() == self.params.t_cost()
                    && params.p_cost() == self.params.p_cost()
                    && expected.len() == Params::DEFAULT_OUTPUT_LEN;
                let mut computed = vec![0u8; expected.len()];
                let ok = Argon2::new(algorithm, version, params)
                    .hash_password_into(pw, &salt, &mut computed)
                    .is_ok()
                    && bool::from(computed.ct_eq(&expected));
                matched(ok, !current)
            }
            Parsed::Bcrypt => {
                if pw.len() > BCRYPT_MAX_PASSWORD_BYTES {
                    // Still spend the time, so that the refusal does not reveal a bcrypt hash.
                    self.verify_dummy(password);
                    return Verification::Mismatch;
                }
                // With at most 72 bytes nothing of the password is cut; only the NUL the
                // algorithm appends falls off at exactly 72, as in every other implementation.
                // (The crate's `non_truncating_verify` counts that NUL and would refuse valid
                // 72-byte passwords.)
                matched(bcrypt::verify(pw, stored).unwrap_or(false), true)
            }
            Parsed::Pbkdf2Sha256 {
                rounds,
                salt,
                expected,
            } => matched(pbkdf2_sha256_eq(pw, &salt, rounds, &expected), true),
            Parsed::DjangoPbkdf2Sha256 {
                iterations,
                salt,
                expected,
            } => matched(
                pbkdf2_sha256_eq(pw, salt.as_bytes(), iterations, &expected),
                true,
            ),
        }
    }

    /// Spends the same time as a real verification, for users that do not exist.
    pub fn verify_dummy(&self, password: &Password) {
        // Straight to argon2 rather than through `verify`: the dummy hash must never be judged
        // by the caps (it could not be refused anyway, but a refusal would recurse).
        if let Ok(parsed) = PasswordHash::new(&self.dummy_hash) {
            let _ = self
                .argon2()
                .verify_password(password.expose().as_bytes(), &parsed);
        }
    }

    fn parse<'a>(&self, stored: &'a str) -> Result<Parsed<'a>, UnusableHash> {
        if stored.starts_with("$argon2") {
            self.parse_argon2(stored)
        } else if ["$2a$", "$2b$", "$2y$"]
            .iter()
            .any(|p| stored.starts_with(p))
        {
            // `$2x$` (crypt_blowfish's marker for hashes made with its sign-extension bug) is
            // deliberately not accepted: those hashes do not match a correct implementation.
            self.parse_bcrypt(stored)
        } else if let Some(rest) = stored.strip_prefix("$pbkdf2-sha256$") {
            self.parse_passlib_pbkdf2(rest)
        } else if let Some(rest) = stored.strip_prefix("pbkdf2_sha256$") {
            self.parse_django_pbkdf2(rest)
        } else {
            Err(UnusableHash::UnknownFormat)
        }
    }

    fn parse_argon2<'a>(&self, stored: &'a str) -> Result<Parsed<'a>, UnusableHash> {
        const SCHEME: HashScheme = HashScheme::Argon2;
        let malformed = |reason| UnusableHash::Malformed {
            scheme: SCHEME,
            reason,
        };
        let phc = PasswordHash::new(stored).map_err(|_| malformed("not a PHC string"))?;
        let algorithm =
            Algorithm::try_from(phc.algorithm).map_err(|_| malformed("unknown argon2 variant"))?;
        // The reference implementation reads a missing `v=` as version 1.0 (0x10), the format
        // of hashes written before the version field existed.
        let version = match phc.version {
            None | Some(0x10) => Version::V0x10,
            Some(0x13) => Version::V0x13,
            Some(_) => return Err(malformed("unknown argon2 version")),
        };
        let params = Params::try_from(&phc).map_err(|_| malformed("invalid parameters"))?;
        for (cap, value, max) in [
            (
                HashCap::Argon2Memory,
                params.m_cost(),
                self.limits.argon2_max_memory_kib,
            ),
            (
                HashCap::Argon2Iterations,
                params.t_cost(),
                self.limits.argon2_max_iterations,
            ),
            (
                HashCap::Argon2Parallelism,
                params.p_cost(),
                self.limits.argon2_max_parallelism,
            ),
        ] {
            if value > max {
                return Err(UnusableHash::OverCap {
                    scheme: SCHEME,
                    cap,
                    value,
                    max,
                });
            }
        }
        let salt = phc.salt.ok_or(malformed("no salt"))?;
        let mut salt_buf = [0u8; 64];
        let salt = salt
            .decode_b64(&mut salt_buf)
            .map_err(|_| malformed("salt is not base64"))?;
        if salt.len() < argon2::MIN_SALT_LEN {
            return Err(malformed("salt too short"));
        }
        let expected = phc.hash.ok_or(malformed("no hash"))?;
        Ok(Parsed::Argon2 {
            algorithm,
            version,
            params,
            salt: salt.to_vec(),
            expected: expected.as_bytes().to_vec(),
        })
    }

    fn parse_bcrypt<'a>(&self, stored: &'a str) -> Result<Parsed<'a>, UnusableHash> {
        const SCHEME: HashScheme = HashScheme::Bcrypt;
        let malformed = |reason| UnusableHash::Malformed {
            scheme: SCHEME,
            reason,
        };
        // `$2b$` + two cost digits + `$` + 22 salt + 31 hash characters, all ASCII; working on
        // bytes means a multi-byte character can never split a slice.
        let bytes = stored.as_bytes();
        if bytes.len() != 60 || bytes[6] != b'$' {
            return Err(malformed("wrong length or layout"));
        }
        let cost = match bytes[4..6] {
            [tens @ b'0'..=b'9', units @ b'0'..=b'9'] => {
                u32::from(tens - b'0') * 10 + u32::from(units - b'0')
            }
            _ => return Err(malformed("cost is not two digits")),
        };
        if !(4..=31).contains(&cost) {
            return Err(malformed("cost outside 4..=31"));
        }
        if cost > self.limits.bcrypt_max_cost {
            return Err(UnusableHash::OverCap {
                scheme: SCHEME,
                cap: HashCap::BcryptCost,
                value: cost,
                max: self.limits.bcrypt_max_cost,
            });
        }
        // Decoded with the crate's own alphabet and strictness, so that what passes here the
        // crate accepts too.
        let salt_ok = bcrypt::BASE_64
            .decode(&bytes[7..29])
            .is_ok_and(|s| s.len() == 16);
        let hash_ok = bcrypt::BASE_64
            .decode(&bytes[29..])
            .is_ok_and(|h| h.len() == 23);
        if !(salt_ok && hash_ok) {
            return Err(malformed("salt or hash is not bcrypt base64"));
        }
        Ok(Parsed::Bcrypt)
    }

    /// `<rounds>$<salt>$<checksum>`, the part after `$pbkdf2-sha256$`.
    fn parse_passlib_pbkdf2<'a>(&self, rest: &'a str) -> Result<Parsed<'a>, UnusableHash> {
        const SCHEME: HashScheme = HashScheme::Pbkdf2Sha256;
        let malformed = |reason| UnusableHash::Malformed {
            scheme: SCHEME,
            reason,
        };
        let [rounds, salt, checksum] =
            split3(rest).ok_or(malformed("expected rounds$salt$checksum"))?;
        let rounds = self.pbkdf2_rounds(SCHEME, rounds)?;
        let salt = ab64_decode(salt).ok_or(malformed("salt is not adapted base64"))?;
        let expected = ab64_decode(checksum)
            .and_then(|c| <[u8; PBKDF2_SHA256_LEN]>::try_from(c).ok())
            .ok_or(malformed("checksum is not 32 bytes of adapted base64"))?;
        Ok(Parsed::Pbkdf2Sha256 {
            rounds,
            salt,
            expected,
        })
    }

    /// `<iterations>$<salt>$<hash>`, the part after `pbkdf2_sha256$`.
    fn parse_django_pbkdf2<'a>(&self, rest: &'a str) -> Result<Parsed<'a>, UnusableHash> {
        const SCHEME: HashScheme = HashScheme::DjangoPbkdf2Sha256;
        let malformed = |reason| UnusableHash::Malformed {
            scheme: SCHEME,
            reason,
        };
        let [iterations, salt, hash] =
            split3(rest).ok_or(malformed("expected iterations$salt$hash"))?;
        let iterations = self.pbkdf2_rounds(SCHEME, iterations)?;
        // Django refuses to hash with an empty salt, so one here was not written by Django.
        if salt.is_empty() {
            return Err(malformed("empty salt"));
        }
        let expected = STANDARD
            .decode(hash)
            .ok()
            .and_then(|h| <[u8; PBKDF2_SHA256_LEN]>::try_from(h).ok())
            .ok_or(malformed("hash is not 32 bytes of base64"))?;
        Ok(Parsed::DjangoPbkdf2Sha256 {
            iterations,
            salt,
            expected,
        })
    }

    fn pbkdf2_rounds(&self, scheme: HashScheme, field: &str) -> Result<u32, UnusableHash> {
        let rounds = parse_rounds(field)
            .filter(|&r| r > 0)
            .ok_or(UnusableHash::Malformed {
                scheme,
                reason: "rounds are not a positive decimal",
            })?;
        if rounds > self.limits.pbkdf2_max_rounds {
            return Err(UnusableHash::OverCap {
                scheme,
                cap: HashCap::Pbkdf2Rounds,
                value: rounds,
                max: self.limits.pbkdf2_max_rounds,
            });
        }
        Ok(rounds)
    }
}

/// The caps, raised where needed so the server's own hashes always pass them.
fn covering(limits: HashLimits, params: &Params) -> HashLimits {
    HashLimits {
        argon2_max_memory_kib: limits.argon2_max_memory_kib.max(params.m_cost()),
        argon2_max_iterations: limits.argon2_max_iterations.max(params.t_cost()),
        argon2_max_parallelism: limits.argon2_max_parallelism.max(params.p_cost()),
        ..limits
    }
}

fn matched(ok: bool, outdated: bool) -> Verification {
    if ok {
        Verification::Match { outdated }
    } else {
        Verification::Mismatch
    }
}

fn pbkdf2_sha256_eq(
    password: &[u8],
    salt: &[u8],
    rounds: u32,
    expected: &[u8; PBKDF2_SHA256_LEN],
) -> bool {
    let mut computed = [0u8; PBKDF2_SHA256_LEN];
    pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, rounds, &mut computed);
    computed.ct_eq(expected).into()
}

/// Decimal digits only (no sign, no spaces) and no zero padding, as passlib writes and requires;
/// `None` also when the value does not fit in a u32.
fn parse_rounds(digits: &str) -> Option<u32> {
    let padded = digits.len() > 1 && digits.starts_with('0');
    if digits.is_empty() || padded || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Exactly three `$`-separated fields.
fn split3(s: &str) -> Option<[&str; 3]> {
    let mut parts = s.split('$');
    let fields = [parts.next()?, parts.next()?, parts.next()?];
    parts.next().is_none().then_some(fields)
}

/// passlib's "adapted base64": the standard alphabet with `.` for `+`, unpadded.
fn ab64_decode(s: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(s.replace('.', "+")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    // Vectors made by the real tools (argon2-cffi 25.1.0, bcrypt 5.0.0, passlib 1.7.4,
    // Django 5.2.20); see each constant for the call.
    const PW: &str = "correct horse battery staple";
    const UNI: &str = "pässwörd-ключ-🔑";
    /// argon2.PasswordHasher().hash(PW): the argon2-cffi defaults fastapi-fullauth uses.
    const ARGON2_CFFI_DEFAULT: &str = "$argon2id$v=19$m=65536,t=3,p=4$W+tGzO7tUDFYNtNjag6Xjw$N5I3DqtzoYL3eVPBjaDS+mO6jLjY54meSbDbH0VXRx8";
    /// hash_secret(PW, b"somesaltsomesalt", time_cost=2, memory_cost=1024, parallelism=1, type=Type.I)
    const ARGON2I: &str = "$argon2i$v=19$m=1024,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$lb88+/fGadH75Lx8QJx2u8GQdiz4CH8SQPprk3jhsEk";
    /// hash_secret(PW, b"saltsaltsaltsalt", time_cost=2, memory_cost=512, parallelism=2, type=Type.D, version=16)
    const ARGON2D_V16: &str = "$argon2d$v=16$m=512,t=2,p=2$c2FsdHNhbHRzYWx0c2FsdA$/LnAq1x/egi/7AazAer5gZqI2Yge8BQmEaDkB4WnA1I";
    /// hash_secret(UNI, b"anothersalt12345", time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
    const ARGON2ID_CHEAP_UNI: &str = "$argon2id$v=19$m=1024,t=1,p=1$YW5vdGhlcnNhbHQxMjM0NQ$WcC9RSM8Wv+OmwmjhtPVUZRdi6J4UGZPyMI8iZ9nw/A";
    /// bcrypt.hashpw(PW, bcrypt.gensalt(rounds=4))
    const BCRYPT_2B: &str = "$2b$04$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9MG";
    /// bcrypt.hashpw(UNI, bcrypt.gensalt(rounds=5, prefix=b"2a"))
    const BCRYPT_2A_UNI: &str = "$2a$05$ZnMmJKEmaAjOmPnbFUPNdO6MKXZeWAevcNcPyo0a9jo3UocvVvLMG";
    /// bcrypt.hashpw(b"x" * 71 + b"y", bcrypt.gensalt(rounds=4)): exactly 72 bytes.
    const BCRYPT_72: &str = "$2b$04$D.iNktzwMF3ysAjYSUZgg.bnCtiGK8xOk4uLKlsew4px20Qdt9UCK";
    /// passlib.hash.pbkdf2_sha256.hash(PW) (passlib's default 29000 rounds)
    const PASSLIB_DEFAULT: &str =
        "$pbkdf2-sha256$29000$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA";
    /// pbkdf2_sha256.using(rounds=1000).hash(UNI)
    const PASSLIB_CHEAP_UNI: &str =
        "$pbkdf2-sha256$1000$HOP8XyuF0Hqv9R6DUGotJQ$72.ECdChNY1dfB/M2Gcp1TWQUu5yq5j1tXGPbh.JsNk";
    /// django.contrib.auth.hashers.make_password(PW) (Django 5.2's default 1,000,000 iterations)
    const DJANGO_DEFAULT: &str =
        "pbkdf2_sha256$1000000$5zsdOkSZQnvAOgluBjbAMc$MfGo9JmiQbPYFWtw+6Lo2pclDIMuag2m8J2egbUjPjA=";
    /// PBKDF2PasswordHasher().encode(UNI, "s0mEsAlTvAlUe", iterations=1000)
    const DJANGO_CHEAP_UNI: &str =
        "pbkdf2_sha256$1000$s0mEsAlTvAlUe$YPBZmnksCdWEgov0/Zy548F/SMhqjvqcdnhoxNNIu9w=";

    // Over the default caps, written by hand and never verified for real.
    const ARGON2_HUGE_MEMORY: &str = "$argon2id$v=19$m=4194304,t=3,p=4$W+tGzO7tUDFYNtNjag6Xjw$N5I3DqtzoYL3eVPBjaDS+mO6jLjY54meSbDbH0VXRx8";
    const ARGON2_MANY_ITERATIONS: &str = "$argon2id$v=19$m=65536,t=1000,p=4$W+tGzO7tUDFYNtNjag6Xjw$N5I3DqtzoYL3eVPBjaDS+mO6jLjY54meSbDbH0VXRx8";
    const ARGON2_MANY_LANES: &str = "$argon2id$v=19$m=65536,t=3,p=64$W+tGzO7tUDFYNtNjag6Xjw$N5I3DqtzoYL3eVPBjaDS+mO6jLjY54meSbDbH0VXRx8";
    const BCRYPT_COST_31: &str = "$2b$31$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9MG";
    const PASSLIB_BILLION: &str = "$pbkdf2-sha256$1000000000$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA";
    const DJANGO_BILLION: &str = "pbkdf2_sha256$1000000000$5zsdOkSZQnvAOgluBjbAMc$MfGo9JmiQbPYFWtw+6Lo2pclDIMuag2m8J2egbUjPjA=";

    fn cheap() -> PasswordHasher {
        PasswordHasher::new(1024, 1, 1).unwrap()
    }

    fn pw(s: &str) -> Password {
        Password::new(s.into())
    }

    const OUTDATED: Verification = Verification::Match { outdated: true };

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let hasher = cheap();
        let pw = Password::new("correct horse".into());
        let hash = hasher.hash(&pw);
        assert!(hash.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"));
        assert_eq!(
            hasher.verify(&pw, &hash),
            Verification::Match { outdated: false }
        );
        assert_eq!(
            hasher.verify(&Password::new("wrong".into()), &hash),
            Verification::Mismatch
        );
        assert_eq!(hasher.verify(&pw, "garbage"), Verification::Mismatch);
        assert_eq!(hasher.classify(&hash), Ok(HashScheme::Argon2));
    }

    #[test]
    fn hashes_with_other_parameters_are_outdated() {
        let old = PasswordHasher::new(2048, 1, 1).unwrap();
        let pw = Password::new("correct horse".into());
        let hash = old.hash(&pw);
        assert_eq!(cheap().verify(&pw, &hash), OUTDATED);
    }

    #[test]
    fn argon2_cffi_default_hash_verifies_as_current_with_the_same_params() {
        let theirs = PasswordHasher::new(65_536, 3, 4).unwrap();
        assert_eq!(
            theirs.verify(&pw(PW), ARGON2_CFFI_DEFAULT),
            Verification::Match { outdated: false }
        );
        // One expensive verification is enough: other parameters making a hash outdated is
        // covered with cheap ones below.
        assert_eq!(
            cheap().classify(ARGON2_CFFI_DEFAULT),
            Ok(HashScheme::Argon2)
        );
    }

    #[test]
    fn other_argon2_variants_and_versions_verify_as_outdated() {
        let hasher = cheap();
        for stored in [ARGON2I, ARGON2D_V16] {
            assert_eq!(hasher.verify(&pw(PW), stored), OUTDATED, "{stored}");
            assert_eq!(
                hasher.verify(&pw("Correct horse battery staple"), stored),
                Verification::Mismatch
            );
        }
        // argon2id v=19 m=1024,t=1,p=1 is exactly the cheap server's configuration.
        assert_eq!(
            hasher.verify(&pw(UNI), ARGON2ID_CHEAP_UNI),
            Verification::Match { outdated: false }
        );
        assert_eq!(
            hasher.verify(&pw(PW), ARGON2ID_CHEAP_UNI),
            Verification::Mismatch
        );
    }

    #[test]
    fn argon2_without_version_is_read_as_v16() {
        let hasher = cheap();
        let unversioned = ARGON2D_V16.replace("$v=16", "");
        assert_eq!(hasher.verify(&pw(PW), &unversioned), OUTDATED);
        let wrongly_versioned = ARGON2D_V16.replace("$v=16", "$v=19");
        assert_eq!(
            hasher.verify(&pw(PW), &wrongly_versioned),
            Verification::Mismatch
        );
        assert!(matches!(
            hasher.classify(&ARGON2D_V16.replace("$v=16", "$v=18")),
            Err(UnusableHash::Malformed { .. })
        ));
    }

    #[test]
    fn bcrypt_hashes_verify_as_outdated() {
        let hasher = cheap();
        assert_eq!(hasher.verify(&pw(PW), BCRYPT_2B), OUTDATED);
        assert_eq!(hasher.verify(&pw(UNI), BCRYPT_2A_UNI), OUTDATED);
        // $2y$ (PHP) is the same algorithm as $2b$: only the marker differs.
        let as_2y = BCRYPT_2B.replacen("$2b$", "$2y$", 1);
        assert_eq!(hasher.verify(&pw(PW), &as_2y), OUTDATED);
        let as_2a = BCRYPT_2B.replacen("$2b$", "$2a$", 1);
        assert_eq!(hasher.verify(&pw(PW), &as_2a), OUTDATED);
        assert_eq!(
            hasher.verify(&pw("wrong"), BCRYPT_2B),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.verify(&pw(PW), BCRYPT_2A_UNI),
            Verification::Mismatch
        );
        for stored in [BCRYPT_2B, BCRYPT_2A_UNI, as_2y.as_str()] {
            assert_eq!(hasher.classify(stored), Ok(HashScheme::Bcrypt));
        }
        // The buggy crypt_blowfish marker is not accepted.
        let as_2x = BCRYPT_2B.replacen("$2b$", "$2x$", 1);
        assert_eq!(hasher.classify(&as_2x), Err(UnusableHash::UnknownFormat));
        assert_eq!(hasher.verify(&pw(PW), &as_2x), Verification::Mismatch);
    }

    #[test]
    fn bcrypt_accepts_72_bytes_and_refuses_longer_passwords_instead_of_truncating() {
        let hasher = cheap();
        let exactly_72 = format!("{}y", "x".repeat(71));
        assert_eq!(hasher.verify(&pw(&exactly_72), BCRYPT_72), OUTDATED);
        // Shares the first 72 bytes: plain bcrypt would accept it.
        let longer = format!("{exactly_72}-and-more");
        assert!(bcrypt::verify(&longer, BCRYPT_72).unwrap());
        assert_eq!(
            hasher.verify(&pw(&longer), BCRYPT_72),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.verify(&pw(&"x".repeat(72)), BCRYPT_72),
            Verification::Mismatch
        );
    }

    #[test]
    fn passlib_pbkdf2_sha256_verifies_as_outdated() {
        let hasher = cheap();
        assert_eq!(hasher.verify(&pw(PW), PASSLIB_DEFAULT), OUTDATED);
        assert_eq!(hasher.verify(&pw(UNI), PASSLIB_CHEAP_UNI), OUTDATED);
        assert_eq!(
            hasher.verify(&pw(PW), PASSLIB_CHEAP_UNI),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.classify(PASSLIB_DEFAULT),
            Ok(HashScheme::Pbkdf2Sha256)
        );
        // Same checksum under other rounds must not verify.
        let other_rounds = PASSLIB_CHEAP_UNI.replacen("$1000$", "$1001$", 1);
        assert_eq!(
            hasher.verify(&pw(UNI), &other_rounds),
            Verification::Mismatch
        );
    }

    #[test]
    fn django_pbkdf2_sha256_verifies_as_outdated() {
        let hasher = cheap();
        // Django's default of a million iterations takes seconds in a debug build, so that
        // vector is only classified; the cheap one goes through the same `encode`.
        assert_eq!(
            hasher.classify(DJANGO_DEFAULT),
            Ok(HashScheme::DjangoPbkdf2Sha256)
        );
        assert_eq!(hasher.verify(&pw(UNI), DJANGO_CHEAP_UNI), OUTDATED);
        assert_eq!(
            hasher.verify(&pw("wrong"), DJANGO_CHEAP_UNI),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.classify(DJANGO_CHEAP_UNI),
            Ok(HashScheme::DjangoPbkdf2Sha256)
        );
    }

    #[test]
    fn hashes_over_the_caps_are_unusable_and_never_match() {
        let hasher = cheap();
        for (stored, scheme, cap, value) in [
            (
                ARGON2_HUGE_MEMORY,
                HashScheme::Argon2,
                HashCap::Argon2Memory,
                4_194_304,
            ),
            (
                ARGON2_MANY_ITERATIONS,
                HashScheme::Argon2,
                HashCap::Argon2Iterations,
                1000,
            ),
            (
                ARGON2_MANY_LANES,
                HashScheme::Argon2,
                HashCap::Argon2Parallelism,
                64,
            ),
            (BCRYPT_COST_31, HashScheme::Bcrypt, HashCap::BcryptCost, 31),
            (
                PASSLIB_BILLION,
                HashScheme::Pbkdf2Sha256,
                HashCap::Pbkdf2Rounds,
                1_000_000_000,
            ),
            (
                DJANGO_BILLION,
                HashScheme::DjangoPbkdf2Sha256,
                HashCap::Pbkdf2Rounds,
                1_000_000_000,
            ),
        ] {
            match hasher.classify(stored) {
                Err(UnusableHash::OverCap {
                    scheme: s,
                    cap: c,
                    value: v,
                    ..
                }) => assert_eq!((s, c, v), (scheme, cap, value), "{stored}"),
                other => panic!("{stored}: {other:?}"),
            }
            // Returns promptly: the caps stop the work before it starts.
            assert_eq!(hasher.verify(&pw(PW), stored), Verification::Mismatch);
        }
        let message = hasher.classify(BCRYPT_COST_31).unwrap_err().to_string();
        assert_eq!(
            message,
            "bcrypt hash asks for 31, over the bcrypt_max_cost cap of 15"
        );
    }

    #[test]
    fn caps_can_be_raised_or_lowered_but_never_below_the_servers_own_params() {
        let strict = cheap().with_limits(HashLimits {
            argon2_max_memory_kib: 8,
            argon2_max_iterations: 1,
            argon2_max_parallelism: 1,
            bcrypt_max_cost: 4,
            pbkdf2_max_rounds: 1000,
        });
        let own = strict.hash(&pw(PW));
        assert_eq!(
            strict.verify(&pw(PW), &own),
            Verification::Match { outdated: false }
        );
        assert_eq!(strict.verify(&pw(UNI), PASSLIB_CHEAP_UNI), OUTDATED);
        assert!(matches!(
            strict.classify(PASSLIB_DEFAULT),
            Err(UnusableHash::OverCap {
                cap: HashCap::Pbkdf2Rounds,
                ..
            })
        ));
        assert!(matches!(
            strict.classify(BCRYPT_2A_UNI),
            Err(UnusableHash::OverCap {
                cap: HashCap::BcryptCost,
                ..
            })
        ));
        assert!(matches!(
            strict.classify(ARGON2I),
            Err(UnusableHash::OverCap {
                cap: HashCap::Argon2Iterations,
                ..
            })
        ));
        let generous = cheap().with_limits(HashLimits {
            bcrypt_max_cost: 31,
            ..HashLimits::default()
        });
        assert_eq!(generous.classify(BCRYPT_COST_31), Ok(HashScheme::Bcrypt));
    }

    #[test]
    fn malformed_and_unknown_hashes_are_unusable() {
        let hasher = cheap();
        let unknown = [
            "",
            "garbage",
            "$1$saltsalt$hash",
            "$6$rounds=5000$salt$hash",
            "$pbkdf2-sha512$1000$c2FsdA$aGFzaA",
            "pbkdf2_sha1$1000$salt$aGFzaA==",
            "argon2$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2g",
            "!",
        ];
        for stored in unknown {
            assert_eq!(
                hasher.classify(stored),
                Err(UnusableHash::UnknownFormat),
                "{stored}"
            );
        }
        let malformed = [
            // argon2
            "$argon2id$",
            "$argon2x$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$lb88+/fGadH75Lx8QJx2u8GQdiz4CH8SQPprk3jhsEk",
            "$argon2id$v=19$m=1024,t=1,p=1$c29tZXNhbHRzb21lc2FsdA",
            "$argon2id$v=19$m=1024,t=0,p=1$c29tZXNhbHRzb21lc2FsdA$lb88+/fGadH75Lx8QJx2u8GQdiz4CH8SQPprk3jhsEk",
            "$argon2id$v=19$m=1024,t=1,p=1,x=3$c29tZXNhbHRzb21lc2FsdA$lb88+/fGadH75Lx8QJx2u8GQdiz4CH8SQPprk3jhsEk",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$lb88+/fGadH75Lx8QJx2u8GQdiz4CH8SQPprk3jhsEk",
            // bcrypt
            "$2b$04$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9M",
            "$2b$03$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9MG",
            "$2b$32$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9MG",
            "$2b$4$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9MGx",
            "$2b$04$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9M!",
            "$2b$04$RHnVdTUqgylAn6OUpX6/dOMqyL9oEC/.SpTuKJ6kd4Ere/SbXb9é",
            // passlib
            "$pbkdf2-sha256$29000$PuccY6x1jvFeq5US4nwvRQ",
            "$pbkdf2-sha256$0$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA",
            "$pbkdf2-sha256$029000$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA",
            "$pbkdf2-sha256$+29000$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA",
            "$pbkdf2-sha256$99999999999$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA",
            "$pbkdf2-sha256$29000$Puc!Y6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA",
            "$pbkdf2-sha256$29000$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAng",
            "$pbkdf2-sha256$29000$PuccY6x1jvFeq5US4nwvRQ$ZoRFpSN90HoSXCJB6.SmssFFRZDGdh6auiu46wAngSA$",
            // django
            "pbkdf2_sha256$1000$$YPBZmnksCdWEgov0/Zy548F/SMhqjvqcdnhoxNNIu9w=",
            "pbkdf2_sha256$1000$s0mEsAlTvAlUe$YPBZmnksCdWEgov0/Zy548F/SMhqjvqcdnhoxNNIu9w",
            "pbkdf2_sha256$1000$s0mEsAlTvAlUe$YPBZmnksCdWEgov0",
            "pbkdf2_sha256$abc$s0mEsAlTvAlUe$YPBZmnksCdWEgov0/Zy548F/SMhqjvqcdnhoxNNIu9w=",
        ];
        for stored in malformed {
            assert!(
                matches!(hasher.classify(stored), Err(UnusableHash::Malformed { .. })),
                "{stored}: {:?}",
                hasher.classify(stored)
            );
            assert_eq!(hasher.verify(&pw(PW), stored), Verification::Mismatch);
        }
    }

    /// Random strings, truncations and single-character mutations of real hashes: classify and
    /// verify must never panic, and whatever is unusable never matches.
    #[test]
    fn parsing_never_panics() {
        let hasher = cheap();
        let password = pw(PW);
        let seeds = [
            ARGON2_CFFI_DEFAULT,
            ARGON2I,
            ARGON2D_V16,
            BCRYPT_2B,
            BCRYPT_2A_UNI,
            PASSLIB_DEFAULT,
            DJANGO_CHEAP_UNI,
        ];
        for seed in seeds {
            for (end, _) in seed.char_indices() {
                let truncated = &seed[..end];
                let _ = hasher.classify(truncated);
                assert_eq!(hasher.verify(&password, truncated), Verification::Mismatch);
            }
        }
        let alphabet: Vec<char> =
            "$$$$$=,.+/0123456789mtpvabcdefghijklmnopqrstuvwxyzABCXYZ_-é🔑\0 "
                .chars()
                .collect();
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            let candidate: String = if rng.gen_bool(0.5) {
                let len = rng.gen_range(0..100);
                (0..len)
                    .map(|_| alphabet[rng.gen_range(0..alphabet.len())])
                    .collect()
            } else {
                let seed = seeds[rng.gen_range(0..seeds.len())];
                let mut chars: Vec<char> = seed.chars().collect();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..chars.len());
                    let c = alphabet[rng.gen_range(0..alphabet.len())];
                    match rng.gen_range(0..3) {
                        0 => chars[at] = c,
                        1 => chars.insert(at, c),
                        _ => {
                            chars.remove(at);
                        }
                    }
                }
                chars.into_iter().collect()
            };
            // Only classify: a mutation can be a valid hash of real (capped) cost, and verifying
            // twenty thousand of those would make the test slow, not more thorough.
            let _ = hasher.classify(&candidate);
        }
    }
}
