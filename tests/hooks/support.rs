//! Helpers: hook directories, sample events and log capture (tests/common/hook_support.rs);
//! guest builds, WAT fixtures and the HTTP sink (tests/common/shared.rs).

pub use crate::hook_support::*;
pub use crate::shared::{CRATE_DIR, Sink, fixture, gate_probe, guest};
