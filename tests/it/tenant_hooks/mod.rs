//! Per-tenant hooks (issue 9) over real HTTP: the management API, its authorisation, hook
//! sources and their order, isolation, hot swap, replicas and the outbound address check.

mod allow_list;
mod api;
mod delivery;
mod gates;
mod permissions;
mod replicas;
pub(crate) mod support;
