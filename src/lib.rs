//! hookauth: a self-hosted authentication server whose flows are customised by sandboxed
//! WebAssembly hooks.
//!
//! Data flows inward: [`http`] (parse, authorise, map errors) → [`flows`] (one use case per
//! file) → [`store`] (sqlx, SQLite or PostgreSQL), [`crypto`], [`events`] and [`domain`].

pub mod app;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dev;
pub mod domain;
pub mod events;
pub mod flows;
pub mod hooks;
pub mod hooks_admin;
pub mod http;
pub mod import;
pub mod metrics;
pub mod oauth;
pub mod remote;
pub mod store;
