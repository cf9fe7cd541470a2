//! What the server counts, for `/metrics` (Prometheus/OpenMetrics text) and the admin console.
//!
//! One [`Metrics`] per server, never a global registry: two servers in one process (the tests,
//! a benchmark) each report exactly their own traffic. The parts of the server that observe
//! something (the HTTP layer, hook invocations, the dispatcher, the rate limiter, the lockout)
//! each get an `Arc<Metrics>` and call one `record_*` method; gauges that describe the database
//! (the outbox) are read when scraped.
//!
//! Label values a client controls are never used as they are: an unmatched path is `unmatched`,
//! an unusual method `other`; tenants and hooks exist before they are counted, and the number
//! of hook series kept for the console is capped.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use serde::Serialize;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Invocations kept per (tenant, hook) for the console's "last outcomes" and percentiles.
pub const RECENT_PER_HOOK: usize = 100;

/// (tenant, hook) pairs kept for the console; past this, new pairs are counted in Prometheus
/// only. Bounds the memory a flood of tenants or hook names can take.
pub const MAX_TRACKED_HOOKS: usize = 10_000;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: &'static str,
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: &'static str,
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookOutcomeLabels {
    tenant: String,
    hook: String,
    event: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HookLabels {
    tenant: String,
    hook: String,
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TenantLabels {
    tenant: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    route: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn seconds_histogram() -> Histogram {
    // 0.25 ms .. ~8 s.
    Histogram::new(exponential_buckets(0.000_25, 2.0, 16))
}

fn fuel_histogram() -> Histogram {
    // 1 000 .. ~4.4e12: the largest budget a hook may have fits.
    Histogram::new(exponential_buckets(1_000.0, 4.0, 16))
}

/// One hook invocation, as the console lists it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecentInvocation {
    /// Unix milliseconds when it ended.
    pub at: i64,
    pub event: String,
    /// `ok`, or the failure's label (`out_of_fuel`, `timeout`, `guest_error`, ...).
    pub outcome: String,
    pub duration_ms: f64,
}

/// One hook's recent invocations on this replica.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookActivity {
    pub name: String,
    /// Since this replica started.
    pub invocations: u64,
    pub failures: u64,
    /// Over the last [`RECENT_PER_HOOK`] invocations; `None` before the first.
    #[schema(required = true)]
    pub p50_ms: Option<f64>,
    #[schema(required = true)]
    pub p95_ms: Option<f64>,
    /// Oldest first.
    pub recent: Vec<RecentInvocation>,
}

#[derive(Default)]
struct Activity {
    invocations: u64,
    failures: u64,
    recent: VecDeque<RecentInvocation>,
}

/// A tenant's outbox as `/metrics` and the console report it.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutboxDepth {
    /// Deliveries (one per event and hook) not yet done, plus events not yet fanned out.
    pub pending: i64,
    /// Age of the oldest of those events, 0 when none.
    pub oldest_pending_seconds: f64,
}

/// The server's counters and histograms. Cheap to share (`Arc`), safe from every thread.
pub struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    hook_invocations: Family<HookOutcomeLabels, Counter>,
    hook_duration: HistogramFamily<HookLabels>,
    hook_fuel: HistogramFamily<HookLabels>,
    deliveries: Family<HookLabels, Counter>,
    delivery_retries: Family<HookLabels, Counter>,
    delivery_failures: Family<HookLabels, Counter>,
    rate_limited: Family<LimitLabels, Counter>,
    lockouts: Family<TenantLabels, Counter>,
    outbox_pending: Family<TenantLabels, Gauge>,
    outbox_oldest: Family<TenantLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    activity: Mutex<HashMap<(String, String), Activity>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http_requests = Family::<HttpLabels, Counter>::default();
        // prometheus-client appends `_total` to counters.
        registry.register(
            "hookauth_http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration = HistogramFamily::<RouteLabels>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        registry.register(
            "hookauth_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            http_duration.clone(),
        );
        let hook_invocations = Family::<HookOutcomeLabels, Counter>::default();
        registry.register(
            "hookauth_hook_invocations",
            "Hook invocations (events, gate decisions, load-time registration) by outcome: \
             ok or the failure (guest_error, out_of_fuel, timeout, memory_limit, ...)",
            hook_invocations.clone(),
        );
        let hook_duration = HistogramFamily::<HookLabels>::new_with_constructor(
            seconds_histogram as fn() -> Histogram,
        );
        registry.register(
            "hookauth_hook_duration_seconds",
            "Wall-clock time of one hook invocation (after waiting for a slot)",
            hook_duration.clone(),
        );
        let hook_fuel = HistogramFamily::<HookLabels>::new_with_constructor(
            fuel_histogram as fn() -> Histogram,
        );
        registry.register(
            "hookauth_hook_fuel_consumed",
            "Fuel one hook invocation consumed",
            hook_fuel.clone(),
        );
        let deliveries = Family::<HookLabels, Counter>::default();
        registry.register(
            "hookauth_deliveries",
            "Event deliveries a hook handled successfully",
            deliveries.clone(),
        );
        let delivery_retries = Family::<HookLabels, Counter>::default();
        registry.register(
            "hookauth_delivery_retries",
            "Failed delivery attempts that will be retried",
            delivery_retries.clone(),
        );
        let delivery_failures = Family::<HookLabels, Counter>::default();
        registry.register(
            "hookauth_delivery_failures",
            "Deliveries given up (attempts used up, or the hook is gone): listed by \
             `hookauth hooks failures`, replayable",
            delivery_failures.clone(),
        );
        let rate_limited = Family::<LimitLabels, Counter>::default();
        registry.register(
            "hookauth_rate_limited",
            "Requests refused with 429 by a rate limit, by the limited route",
            rate_limited.clone(),
        );
        let lockouts = Family::<TenantLabels, Counter>::default();
        registry.register(
            "hookauth_lockouts",
            "Accounts locked after too many failed sign-ins",
            lockouts.clone(),
        );
        let outbox_pending = Family::<TenantLabels, Gauge>::default();
        registry.register(
            "hookauth_outbox_pending",
            "Deliveries not yet done plus events not yet fanned out, per tenant (read from \
             the database when scraped: every replica reports the same)",
            outbox_pending.clone(),
        );
        let outbox_oldest =
            Family::<TenantLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
        registry.register(
            "hookauth_outbox_oldest_pending_seconds",
            "Age of the oldest event still waiting for a hook, per tenant",
            outbox_oldest.clone(),
        );
        Self {
            registry,
            http_requests,
            http_duration,
            hook_invocations,
            hook_duration,
            hook_fuel,
            deliveries,
            delivery_retries,
            delivery_failures,
            rate_limited,
            lockouts,
            outbox_pending,
            outbox_oldest,
            activity: Mutex::default(),
        }
    }

    /// One answered request. `route` is the matched route template (`None`: no route matched).
    pub fn record_http(
        &self,
        method: &http::Method,
        route: Option<&str>,
        status: u16,
        took: Duration,
    ) {
        let method = method_label(method);
        let route = route.unwrap_or("unmatched").to_owned();
        self.http_requests
            .get_or_create(&HttpLabels {
                method,
                route: route.clone(),
                status,
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels { method, route })
            .observe(took.as_secs_f64());
    }

    /// One hook invocation.
    pub fn record_hook(&self, run: &HookRun<'_>) {
        let HookRun {
            tenant,
            hook,
            event,
            outcome,
            took,
            fuel,
        } = *run;
        let labels = HookLabels {
            tenant: tenant.to_owned(),
            hook: hook.to_owned(),
            event: event.to_owned(),
        };
        self.hook_invocations
            .get_or_create(&HookOutcomeLabels {
                tenant: labels.tenant.clone(),
                hook: labels.hook.clone(),
                event: labels.event.clone(),
                outcome: outcome.to_owned(),
            })
            .inc();
        self.hook_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        self.hook_fuel.get_or_create(&labels).observe(fuel as f64);

        let mut activity = self.activity.lock().expect("metrics lock");
        let key = (labels.tenant, labels.hook);
        if !activity.contains_key(&key) && activity.len() >= MAX_TRACKED_HOOKS {
            return;
        }
        let entry = activity.entry(key).or_default();
        entry.invocations += 1;
        if outcome != "ok" {
            entry.failures += 1;
        }
        if entry.recent.len() == RECENT_PER_HOOK {
            entry.recent.pop_front();
        }
        entry.recent.push_back(RecentInvocation {
            // Wall-clock time for people reading the console; nothing is decided on it.
            at: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as i64),
            event: labels.event,
            outcome: outcome.to_owned(),
            duration_ms: took.as_secs_f64() * 1000.0,
        });
    }

    /// One settled delivery attempt.
    pub fn record_delivery(&self, tenant: &str, hook: &str, event: &str, attempt: Delivery) {
        let labels = HookLabels {
            tenant: tenant.to_owned(),
            hook: hook.to_owned(),
            event: event.to_owned(),
        };
        let family = match attempt {
            Delivery::Delivered => &self.deliveries,
            Delivery::Retry => &self.delivery_retries,
            Delivery::GaveUp => &self.delivery_failures,
        };
        family.get_or_create(&labels).inc();
    }

    /// A request refused by the rate limit of `route` (the limited route's path).
    pub fn record_rate_limited(&self, route: &str) {
        self.rate_limited
            .get_or_create(&LimitLabels {
                route: route.to_owned(),
            })
            .inc();
    }

    /// An account of `tenant` was locked.
    pub fn record_lockout(&self, tenant: &str) {
        self.lockouts
            .get_or_create(&TenantLabels {
                tenant: tenant.to_owned(),
            })
            .inc();
    }

    /// Replaces the outbox gauges with `depths` (tenant → depth): a tenant whose outbox emptied
    /// reports 0 until the next scrape drops it.
    pub fn set_outbox(&self, depths: &[(String, OutboxDepth)]) {
        self.outbox_pending.clear();
        self.outbox_oldest.clear();
        for (tenant, depth) in depths {
            let labels = TenantLabels {
                tenant: tenant.clone(),
            };
            self.outbox_pending
                .get_or_create(&labels)
                .set(depth.pending);
            self.outbox_oldest
                .get_or_create(&labels)
                .set(depth.oldest_pending_seconds);
        }
    }

    /// The registry in the OpenMetrics text format ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }

    /// The recent activity of `tenant`'s hooks on this replica, by hook name.
    pub fn hook_activity(&self, tenant: &str) -> Vec<HookActivity> {
        let activity = self.activity.lock().expect("metrics lock");
        let mut hooks: Vec<HookActivity> = activity
            .iter()
            .filter(|((t, _), _)| t == tenant)
            .map(|((_, hook), a)| {
                let mut durations: Vec<f64> = a.recent.iter().map(|r| r.duration_ms).collect();
                durations.sort_by(f64::total_cmp);
                HookActivity {
                    name: hook.clone(),
                    invocations: a.invocations,
                    failures: a.failures,
                    p50_ms: percentile(&durations, 0.50),
                    p95_ms: percentile(&durations, 0.95),
                    recent: a.recent.iter().cloned().collect(),
                }
            })
            .collect();
        hooks.sort_by(|a, b| a.name.cmp(&b.name));
        hooks
    }
}

/// One hook invocation, as [`Metrics::record_hook`] counts it.
#[derive(Debug, Clone, Copy)]
pub struct HookRun<'a> {
    pub tenant: &'a str,
    pub hook: &'a str,
    /// The event kind, the gate's decision point, or `register` (at load time).
    pub event: &'a str,
    /// `ok`, or the failure's label.
    pub outcome: &'a str,
    pub took: Duration,
    pub fuel: u64,
}

/// What became of one delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    Retry,
    GaveUp,
}

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// The standard methods by name; anything a client invents is `other`.
fn method_label(method: &http::Method) -> &'static str {
    use http::Method as M;
    match *method {
        M::GET => "GET",
        M::POST => "POST",
        M::PUT => "PUT",
        M::PATCH => "PATCH",
        M::DELETE => "DELETE",
        M::HEAD => "HEAD",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_render_with_the_documented_names_and_labels() {
        let m = Metrics::new();
        m.record_http(
            &http::Method::POST,
            Some("/api/v1/auth/login"),
            200,
            Duration::from_millis(3),
        );
        m.record_http(
            &http::Method::from_bytes(b"BREW").unwrap(),
            None,
            404,
            Duration::from_millis(1),
        );
        let run = |outcome, ms, fuel| HookRun {
            tenant: "acme",
            hook: "audit",
            event: "after_login",
            outcome,
            took: Duration::from_millis(ms),
            fuel,
        };
        m.record_hook(&run("ok", 2, 5_000));
        m.record_hook(&run("out_of_fuel", 9, 9));
        m.record_delivery("acme", "audit", "after_login", Delivery::Retry);
        m.record_rate_limited("/login");
        m.record_lockout("acme");
        m.set_outbox(&[(
            "acme".into(),
            OutboxDepth {
                pending: 3,
                oldest_pending_seconds: 1.5,
            },
        )]);
        let text = m.render();
        for line in [
            r#"hookauth_http_requests_total{method="POST",route="/api/v1/auth/login",status="200"} 1"#,
            r#"hookauth_http_requests_total{method="other",route="unmatched",status="404"} 1"#,
            r#"hookauth_hook_invocations_total{tenant="acme",hook="audit",event="after_login",outcome="ok"} 1"#,
            r#"hookauth_hook_invocations_total{tenant="acme",hook="audit",event="after_login",outcome="out_of_fuel"} 1"#,
            r#"hookauth_hook_duration_seconds_count{tenant="acme",hook="audit",event="after_login"} 2"#,
            r#"hookauth_hook_fuel_consumed_sum{tenant="acme",hook="audit",event="after_login"} 5009.0"#,
            r#"hookauth_delivery_retries_total{tenant="acme",hook="audit",event="after_login"} 1"#,
            r#"hookauth_rate_limited_total{route="/login"} 1"#,
            r#"hookauth_lockouts_total{tenant="acme"} 1"#,
            r#"hookauth_outbox_pending{tenant="acme"} 3"#,
            r#"hookauth_outbox_oldest_pending_seconds{tenant="acme"} 1.5"#,
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
        }
        // An emptied outbox is dropped at the next scrape.
        m.set_outbox(&[]);
        assert!(!m.render().contains("hookauth_outbox_pending{"));
    }

    #[test]
    fn activity_keeps_the_last_invocations_and_their_percentiles() {
        let m = Metrics::new();
        for i in 1..=(RECENT_PER_HOOK as u64 + 20) {
            let outcome = if i % 10 == 0 { "timeout" } else { "ok" };
            m.record_hook(&HookRun {
                tenant: "t",
                hook: "h",
                event: "after_login",
                outcome,
                took: Duration::from_millis(i),
                fuel: 1,
            });
        }
        m.record_hook(&HookRun {
            tenant: "other",
            hook: "h",
            event: "after_login",
            outcome: "ok",
            took: Duration::from_millis(1),
            fuel: 1,
        });
        let hooks = m.hook_activity("t");
        assert_eq!(hooks.len(), 1);
        let h = &hooks[0];
        assert_eq!(h.invocations, 120);
        assert_eq!(h.failures, 12);
        assert_eq!(h.recent.len(), RECENT_PER_HOOK);
        assert_eq!(h.recent.first().unwrap().duration_ms, 21.0);
        assert_eq!(h.recent.last().unwrap().duration_ms, 120.0);
        // The last 100 took 21..=120 ms: nearest-rank p50 is the 50th (70 ms), p95 the 95th.
        assert_eq!(h.p50_ms, Some(70.0));
        assert_eq!(h.p95_ms, Some(115.0));
        assert!(m.hook_activity("nobody").is_empty());
    }

    #[test]
    fn percentile_of_one_value_and_of_none() {
        assert_eq!(percentile(&[], 0.5), None);
        assert_eq!(percentile(&[4.0], 0.95), Some(4.0));
        assert_eq!(percentile(&[1.0, 2.0], 0.5), Some(1.0));
    }
}
