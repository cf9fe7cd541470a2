//! The real `hookauth` binary as a separate process, for tests that must kill it with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::helpers::SECRET;

/// A running `hookauth serve`; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    pub addr: String,
    child: Child,
}

impl ServerProcess {
    /// Starts `hookauth serve` on `database_url` with the given extra environment, and waits
    /// for its readiness line.
    pub fn start(database_url: &str, dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookauth"));
        cmd.current_dir(dir)
            .env_remove("HOOKAUTH_TEST_POSTGRES_URL")
            .env("HOOKAUTH_SECRET_KEY", SECRET)
            .env("HOOKAUTH_DATABASE_URL", database_url)
            .env("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024")
            .env("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1")
            .env("HOOKAUTH_RATE_LIMIT__ENABLED", "false")
            .env("HOOKAUTH_LOG", "info");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .spawn()
            .expect("hookauth starts");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        // The address comes first; then, once hooks are loaded, the ready line.
        let mut addr = None;
        loop {
            let line = lines
                .next()
                .expect("server printed its address and became ready")
                .expect("readable stderr");
            eprintln!("[hookauth {}] {line}", child.id());
            if let Some(rest) = line.split("listening on http://").nth(1) {
                addr = Some(rest.split_whitespace().next().unwrap().to_owned());
            }
            if line.contains("hooks loaded: ready") {
                break;
            }
        }
        let addr = addr.expect("the address is printed before the ready line");
        // Keep reading, or the server would block on a full pipe when it logs.
        let pid = child.id();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                eprintln!("[hookauth {pid}] {line}");
            }
        });
        Self { addr, child }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}/api/v1/auth{path}", self.addr)
    }

    /// SIGKILL: no shutdown code runs, claims stay in the database as they were.
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().unwrap();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
