//! Per-(route bucket, client IP) sliding-window rate limits: in process memory on SQLite (one
//! process), in the database on PostgreSQL, where every replica counts against the same
//! window (`flows::count_request`).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::ApiError;
use crate::config::RateLimitConfig;
use crate::flows::{self, Flows};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bucket {
    Login,
    Register,
    Refresh,
    Reauth,
    VerifyEmail,
    PasswordReset,
    /// Second-factor codes (`/mfa/verify`, `/mfa/confirm`): six digits are a small space.
    Mfa,
}

pub struct RateLimiter {
    enabled: bool,
    window: Duration,
    limits: crate::config::RateLimits,
    /// Sharded by IP so concurrent clients rarely contend on one lock.
    shards: Vec<Mutex<Windows>>,
    /// Set: the windows live in the database, shared by every replica.
    shared: Option<Arc<Flows>>,
    /// Where refusals are counted.
    metrics: Option<Arc<crate::metrics::Metrics>>,
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
            shared: None,
            metrics: None,
        }
    }

    /// Counting in the database when it can be shared by replicas (PostgreSQL), in memory
    /// otherwise.
    pub fn for_store(config: &RateLimitConfig, flows: Arc<Flows>) -> Self {
        let metrics = Some(Arc::clone(&flows.metrics));
        let shared = flows::shares_rate_limits(&flows).then_some(flows);
        Self {
            shared,
            metrics,
            ..Self::new(config)
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
            Bucket::Mfa => l.mfa,
        }
    }

    /// Counts a hit, or refuses it (a refused hit is not counted).
    pub async fn check(&self, bucket: Bucket, ip: IpAddr) -> Result<(), ApiError> {
        if !self.enabled {
            return Ok(());
        }
        let limit = self.limit(bucket);
        let counted = if let Some(flows) = &self.shared {
            let key = format!("{}:{ip}", bucket.as_str());
            match flows::count_request(flows, &key, limit, self.window).await? {
                None => Ok(()),
                Some(wait) => Err(refusal(limit, wait)),
            }
        } else {
            self.check_in_memory(bucket, ip, limit)
        };
        if counted.is_err()
            && let Some(metrics) = &self.metrics
        {
            metrics.record_rate_limited(bucket.as_str());
        }
        counted
    }

    fn check_in_memory(&self, bucket: Bucket, ip: IpAddr, limit: u32) -> Result<(), ApiError> {
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
            return Err(refusal(limit, wait));
        }
        hits.push_back(now);
        Ok(())
    }
}

/// 429 with the wait rounded up to whole seconds.
fn refusal(limit: u32, wait: Duration) -> ApiError {
    ApiError::RateLimited {
        limit,
        retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
    }
}

impl Bucket {
    fn as_str(self) -> &'static str {
        match self {
            Bucket::Login => "login",
            Bucket::Register => "register",
            Bucket::Refresh => "refresh",
            Bucket::Reauth => "reauth",
            Bucket::VerifyEmail => "verify_email",
            Bucket::PasswordReset => "password_reset",
            Bucket::Mfa => "mfa",
        }
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

    #[tokio::test]
    async fn limits_per_bucket_and_ip_and_does_not_count_refusals() {
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
        assert!(limiter.check(Bucket::Login, a).await.is_ok());
        assert!(limiter.check(Bucket::Login, a).await.is_ok());
        match limiter.check(Bucket::Login, a).await {
            Err(ApiError::RateLimited {
                limit: 2,
                retry_after_secs,
            }) => assert!((59..=60).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        assert!(limiter.check(Bucket::Login, b).await.is_ok());
        assert!(limiter.check(Bucket::Register, a).await.is_ok());
    }

    #[tokio::test]
    async fn a_zero_limit_refuses_without_panicking() {
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
            limiter.check(Bucket::VerifyEmail, a).await,
            Err(ApiError::RateLimited { limit: 0, .. })
        ));
    }
}
