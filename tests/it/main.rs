//! One integration-test binary. Every test starts the real server on a free loopback port and
//! talks HTTP to it; tests named under `sqlite::` run on a fresh SQLite file, those under
//! `postgres::` on a fresh PostgreSQL database when `HOOKAUTH_TEST_POSTGRES_URL` is set.

mod helpers;
#[path = "../common/shared.rs"]
mod shared;

mod account;
mod admin;
mod binary;
mod cli_remote;
mod config_example;
mod delivery;
mod email;
mod events;
mod hooks;
mod me;
mod replicas;
mod security;
mod server_edge;
mod server_process;
mod sessions;
mod tenant_hooks;
mod tenants;
