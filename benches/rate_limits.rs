//! What sharing rate limits between replicas costs a request on PostgreSQL: `POST /refresh`
//! (a write transaction of its own) with the limit counted in the database (the default on
//! PostgreSQL) against rate limits off, two servers on one fresh database in one process,
//! alternating rounds, concurrency 1. Each request comes from one of 1,000 client addresses
//! (`X-Forwarded-For`, trusted), so windows hold a handful of hits, as with real traffic.
//!
//! `cargo bench --bench rate_limits` (needs `HOOKAUTH_TEST_POSTGRES_URL`, e.g.
//! postgres://postgres@127.0.0.1:5432/test). Under `cargo test` a short pass; without the
//! variable it says so and does nothing.

#[path = "common/measure.rs"]
#[allow(dead_code, reason = "the bench uses only percentiles")]
mod measure;
#[path = "common/server.rs"]
mod server;

use std::path::Path;
use std::time::{Duration, Instant};

use measure::percentile;
use serde_json::{Value, json};
use server::BenchServer;

async fn start(database_url: &str, hooks: &Path, limits_on: bool) -> BenchServer {
    let enabled = if limits_on { "true" } else { "false" };
    BenchServer::start(
        database_url,
        hooks,
        &[
            ("HOOKAUTH_RATE_LIMIT__ENABLED", enabled),
            ("HOOKAUTH_RATE_LIMIT__LIMITS__REFRESH", "1000"),
            (
                "HOOKAUTH_RATE_LIMIT__TRUSTED_PROXY_HEADER",
                "X-Forwarded-For",
            ),
            ("HOOKAUTH_LOG", "warn"),
        ],
    )
    .await
}

async fn fresh_database(server_url: &str) -> String {
    use sqlx::Connection;
    // `hookauth_test_` so .ci/run drops it with the tests' databases.
    let name = format!("hookauth_test_bench_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(server_url).await.unwrap();
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .unwrap();
    let (root, _) = server_url.rsplit_once('/').unwrap();
    format!("{root}/{name}")
}

/// `n` sequential refreshes, rotating the token each time; latencies.
async fn refreshes(
    http: &reqwest::Client,
    base: &str,
    token: &mut String,
    n: usize,
) -> Vec<Duration> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let client = format!("198.18.{}.{}", (i / 250) % 4, i % 250 + 1);
        let started = Instant::now();
        let response = http
            .post(format!("{base}/refresh"))
            .header("X-Forwarded-For", client)
            .json(&json!({"refresh_token": token}))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "{}", response.status());
        let body: Value = response.json().await.unwrap();
        samples.push(started.elapsed());
        *token = body["refresh_token"].as_str().unwrap().to_owned();
    }
    samples
}

async fn run(server_url: &str, quick: bool) {
    let database = fresh_database(server_url).await;
    let hooks = tempfile::tempdir().unwrap();
    let on = start(&database, hooks.path(), true).await;
    let off = start(&database, hooks.path(), false).await;
    let http = reqwest::Client::new();
    let creds = json!({"email": "bench@example.com", "password": "correct horse battery staple"});
    http.post(format!("{}/register", off.base))
        .json(&creds)
        .send()
        .await
        .unwrap();
    let login: Value = http
        .post(format!("{}/login", off.base))
        .json(&creds)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut token = login["refresh_token"].as_str().unwrap().to_owned();
    let (rounds, per_round) = if quick { (1, 20) } else { (3, 1000) };
    let (mut counted, mut uncounted) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        uncounted.extend(refreshes(&http, &off.base, &mut token, per_round).await);
        counted.extend(refreshes(&http, &on.base, &mut token, per_round).await);
    }
    counted.sort();
    uncounted.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    for (what, s) in [("limits off", &uncounted), ("limits shared (PG)", &counted)] {
        println!(
            "rate_limits bench: refresh, {what:<20} n={:<5} p50 {:>6.2} ms  p99 {:>6.2} ms",
            s.len(),
            ms(percentile(s, 0.5)),
            ms(percentile(s, 0.99))
        );
    }
    println!(
        "rate_limits bench: p50 shared / off = {:.2}",
        percentile(&counted, 0.5).as_secs_f64() / percentile(&uncounted, 0.5).as_secs_f64()
    );
    on.stop().await;
    off.stop().await;
}

fn main() {
    let quick = !std::env::args().any(|a| a == "--bench");
    let Some(server_url) = std::env::var("HOOKAUTH_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    else {
        println!("rate_limits bench: HOOKAUTH_TEST_POSTGRES_URL is not set; nothing measured");
        return;
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(&server_url, quick));
}
