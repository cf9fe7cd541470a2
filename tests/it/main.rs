//! One integration-test binary. Every test starts the real server on a free loopback port and
//! talks HTTP to it; tests named under `sqlite::` run on a fresh SQLite file, those under
//! `postgres::` on a fresh database of the server `HOOKAUTH_TEST_POSTGRES_URL` names
//! (scripts/test finds the local one). Without it they fail, unless
//! `HOOKAUTH_TEST_POSTGRES=off` skips them explicitly (and scripts/test counts the skips).

mod helpers;
#[path = "../common/oauth_provider.rs"]
mod oauth_provider;
#[path = "../common/process.rs"]
mod process;
#[path = "../common/shared.rs"]
mod shared;

mod account;
mod admin;
mod binary;
mod bodies;
mod cli_remote;
mod config_example;
mod console;
mod cookies;
mod crash_redelivery;
mod delivery;
mod email;
mod email_limits;
mod events;
mod gates;
mod hooks;
mod idn;
mod import;
mod isolation;
mod lockout;
mod me;
mod metrics;
mod mfa;
mod oauth;
mod password_policy;
mod replicas;
mod security;
mod server_edge;
mod server_process;
mod sessions;
mod tenant_hooks;
mod tenants;
mod token_races;
