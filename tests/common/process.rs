//! The real `hookauth` binary as a child process, for tests/it, tests/guests and tests/hooks:
//! the one place that builds its command line (test secret key, cheap hashing), reads its log
//! and parses its "listening on" line. Every wait has a deadline, so a server that hangs fails
//! the test instead of blocking it.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

#[allow(dead_code, reason = "tests/hooks registers no users")]
pub const PASSWORD: &str = "correct-horse-battery";
pub const SECRET: &str = "test-secret-key-0123456789abcdef0123456789";

/// How long a server may take to print its address: hooks are compiled before it (seconds for
/// the JavaScript and Python engines, more on a busy machine). A deadline for a hang, not a
/// speed requirement.
const STARTUP: Duration = Duration::from_secs(180);

/// `hookauth` run in `dir`, with the test's secret key, cheap password hashing and info logs;
/// the test run's own PostgreSQL URL is not passed on.
pub fn hookauth(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookauth"));
    cmd.current_dir(dir)
        .env_remove("HOOKAUTH_TEST_POSTGRES_URL")
        .env("HOOKAUTH_SECRET_KEY", SECRET)
        .env("HOOKAUTH_PASSWORD__ARGON2_MEMORY_KIB", "1024")
        .env("HOOKAUTH_PASSWORD__ARGON2_ITERATIONS", "1")
        .env("HOOKAUTH_LOG", "info");
    cmd
}

/// A running `hookauth serve`: its address, and its log (stderr) as read so far. Killed
/// (SIGKILL) when dropped.
pub struct Process {
    child: Child,
    /// `host:port` from the "listening on http://..." line.
    pub addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Spawns `cmd` (a `serve` command binding 127.0.0.1:0) with stderr piped, and waits for
    /// its address. Its log is read on a thread for as long as it runs (a full pipe would
    /// block the server), kept, and echoed to the test's output with the pid.
    pub fn spawn(mut cmd: Command) -> Self {
        let mut child = cmd
            .stderr(Stdio::piped())
            .spawn()
            .expect("the hookauth binary runs");
        let pid = child.id();
        let stderr = child.stderr.take().unwrap();
        let log: Arc<Mutex<Vec<String>>> = Arc::default();
        let lines = Arc::clone(&log);
        let (address_tx, address_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[hookauth {pid}] {line}");
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    // Text or JSON log: the address ends where its characters do.
                    let addr: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_hexdigit() || matches!(c, '.' | ':' | '[' | ']'))
                        .collect();
                    let _ = address_tx.send(addr);
                }
                if line.contains("hooks loaded: ready") {
                    let _ = ready_tx.send(());
                }
                lines.lock().unwrap().push(line);
            }
        });
        // The address comes as soon as the listener is bound; the ready line once hooks are
        // loaded (events wait in the outbox meanwhile, but tests expect their hooks in place).
        let started = address_rx
            .recv_timeout(STARTUP)
            .and_then(|addr| ready_rx.recv_timeout(STARTUP).map(|()| addr));
        let addr = match started {
            Ok(addr) => addr,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "the server printed no address or never became ready ({e}); it logged:\n{}",
                    log.lock().unwrap().join("\n")
                );
            }
        };
        Self { child, addr, log }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// Waits (up to `within`) for a log line containing every one of `needles`, and returns
    /// it.
    #[allow(dead_code, reason = "tests/hooks waits only for the ready line")]
    pub async fn wait_for_line(&self, needles: &[&str], within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let found = self
                .log
                .lock()
                .unwrap()
                .iter()
                .find(|line| needles.iter().all(|n| line.contains(n)))
                .cloned();
            if let Some(line) = found {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line with {needles:?}; the server logged:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM and waits (up to `within`) for the exit.
    #[allow(dead_code, reason = "tests/guests never stops a server gracefully")]
    pub fn terminate(&mut self, within: Duration) -> ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success(), "kill -TERM {pid}");
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM within {within:?}:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL: no shutdown code runs, claims stay in the database as they were.
    #[allow(dead_code, reason = "tests/guests never kills a server mid-work")]
    pub fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL delivered");
        self.child.wait().unwrap();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
