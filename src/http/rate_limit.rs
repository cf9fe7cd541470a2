//! Per-(route bucket, client IP) sliding-window rate limits, in process memory: cheap, and a
//! limit that is per replica errs on the side of letting legitimate users in.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::config::RateLimitConfig;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    Login,
    Register,
    Refresh,
    Reauth,
    VerifyEmail,
    PasswordReset,
}

pub struct RateLimiter {
    enabled: bool,
    window: Duration,
    limits: crate::config::RateLimits,
    /// Sharded by IP so concurrent clients rarely contend on one lock.
    shards: Vec<Mutex<Windows>>,
}

/// Recent hit times per (bucket, client).
type Windows = HashMap<(Bucket, IpAddr), VecDeque<Instant>>;

const SHARDS: usize = 16;

impl RateLimiter {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            enabled: config.enabled,
            window: Duration::from_secs(config.window_seconds.max(1)),
            limits: config.limits.clone(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn limit(&self, bucket: Bucket) -> u32 {
        let l = &self.limits;
        match bucket {
            Bucket::Login => l.login,
            Bucket::Register => l.register,
            Bucket::Refresh => l.refresh,
            Bucket::Reauth => l.reauth,
            Bucket::VerifyEmail => l.verify_email,
            Bucket::PasswordReset => l.password_reset,
        }
    }

    /// Counts a hit, or refuses it (a refused hit is not counted).
    pub fn check(&self, bucket: Bucket, ip: IpAddr) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let limit = self.limit(bucket);
        let now = Instant::now();
        let shard = &self.shards[shard_of(ip)];
        let mut map = shard.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 10_000 {
            // Forget clients whose windows have passed, so memory stays bounded.
            map.retain(|_, hits| hits.back().is_some_and(|t| now - *t < self.window));
        }
        let hits = map.entry((bucket, ip)).or_default();
        while hits.front().is_some_and(|t| now - *t >= self.window) {
            hits.pop_front();
        }
        if hits.len() >= limit as usize {
            // Config validation refuses a limit of 0; should one get here anyway, nothing has
            // been counted and the whole window is the wait (never a panic).
            let wait = match hits.front() {
                Some(oldest) => self.window.saturating_sub(now - *oldest),
                None => self.window,
            };
            return Err(ApiError::RateLimited {
                limit,
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            });
        }
        hits.push_back(now);
        Ok(())
    }
}

fn shard_of(ip: IpAddr) -> usize {
    let last = match ip {
        IpAddr::V4(v4) => v4.octets()[3],
        IpAddr::V6(v6) => v6.octets()[15],
    };
    last as usize % SHARDS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_bucket_and_ip_and_does_not_count_refusals() {
        let config = RateLimitConfig {
            limits: crate::config::RateLimits {
                login: 2,
                ..Default::default()
            },
            ..Default::default()
        };
        let limiter = RateLimiter::new(&config);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(limiter.check(Bucket::Login, a).is_ok());
        assert!(limiter.check(Bucket::Login, a).is_ok());
        match limiter.check(Bucket::Login, a) {
            Err(ApiError::RateLimited {
                limit: 2,
                retry_after_secs,
            }) => assert!((59..=60).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limiter.check(Bucket::Login, b).is_ok());
        assert!(limiter.check(Bucket::Register, a).is_ok());
    }

    #[test]
    fn a_zero_limit_refuses_without_panicking() {
        let config = RateLimitConfig {
            limits: crate::config::RateLimits {
                verify_email: 0,
                ..Default::default()
            },
            ..Default::default()
        };
        let limiter = RateLimiter::new(&config);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        assert!(matches!(
            limiter.check(Bucket::VerifyEmail, a),
            Err(ApiError::RateLimited { limit: 0, .. })
        ));
    }
}
