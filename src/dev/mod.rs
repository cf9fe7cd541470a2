//! Tools for trying hookauth on a laptop, never for production: `hookauth dev mailbox`.

pub mod mailbox;
