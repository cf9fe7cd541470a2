//! The real `hookauth` binary as a separate process on a given database, for tests that must
//! kill it with SIGKILL.

use std::path::Path;

use crate::process::{Process, hookauth};

/// A running `hookauth serve`; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub addr: String,
    process: Process,
}

impl ServerProcess {
    /// Starts `hookauth serve` on `database_url` with the given extra environment, and waits
    /// for its readiness line.
    pub fn start(database_url: &str, dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = hookauth(dir);
        cmd.env("HOOKAUTH_DATABASE_URL", database_url)
            .env("HOOKAUTH_RATE_LIMIT__ENABLED", "false")
            .envs(env.iter().copied())
            .args(["serve", "--bind", "127.0.0.1:0"]);
        let process = Process::spawn(cmd);
        Self {
            addr: process.addr.clone(),
            process,
        }
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1/auth{path}", self.addr)
    }

    /// SIGKILL: no shutdown code runs, claims stay in the database as they were.
    pub fn kill_9(self) {
        self.process.kill_9();
    }
}
