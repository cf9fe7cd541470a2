//! The smallest useful hook: subscribes to `after_login` and does nothing. A template, and the
//! guest the invocation benchmark runs.

wit_bindgen::generate!({ world: "hook", path: "../../../wit/v0.1.0" });

use exports::hookauth::hooks::handler::Guest;
use hookauth::hooks::types::{Event, EventKind, Registration};

struct Minimal;

impl Guest for Minimal {
    fn register() -> Registration {
        Registration {
            events: vec![EventKind::AfterLogin],
            config: vec![],
            secrets: vec![],
        }
    }

    fn handle(_event: Event) -> Result<(), String> {
        Ok(())
    }
}

export!(Minimal);
