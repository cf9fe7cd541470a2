//! Everything a guest controls that the host does, keeps or writes is capped per invocation
//! (and outbound connections per hook too): outbound requests, memories and tables together,
//! log and stdout output, the err string, handles, random bytes. Past a cap the guest gets an
//! error or its output is cut with a marker; the host never traps, and reports it once.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookauth::hooks::{FailureKind, HookHost, SandboxCaps};

use crate::support::{CRATE_DIR, HookDir, Logs, Sink, after_register, fixture, guest_error};

/// The outbound-flood fixture aimed at the sink's port.
fn outbound_flood(port: u16) -> Vec<u8> {
    assert!(
        port >= 10_000,
        "the fixture has room for a five-digit port, got {port}"
    );
    let path = std::path::Path::new(CRATE_DIR).join("tests/fixtures/hooks/outbound-flood.wat");
    let text = std::fs::read_to_string(path)
        .unwrap()
        .replace("127.0.0.1:PPPPP", &format!("127.0.0.1:{port}"));
    wat::parse_str(&text).unwrap()
}

fn flood_dir(port: u16) -> HookDir {
    HookDir::new()
        .hook("flood", &outbound_flood(port))
        .manifest(&format!(
            "[hooks.flood]\nallowed_hosts = [\"127.0.0.1:{port}\"]\ntimeout_ms = 10000\n"
        ))
}

#[tokio::test]
async fn one_invocation_cannot_open_more_than_its_outbound_caps() {
    let sink = Sink::start().await;
    let dir = flood_dir(sink.port);
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    let event = after_register();
    let failure = host.hooks()[0].invoke(&event).await.unwrap_err();
    // The guest saw the refusals as an error code, not a trap of the host.
    assert_eq!(guest_error(&failure), "connection-limit-reached");
    let caps = SandboxCaps::default();
    let sent = failure.usage.outbound_sent.len();
    // It keeps every response open, so at most the concurrency cap ever got through; and all
    // 64 attempts were either sent or refused by a cap.
    assert!(sent >= 1, "{:?}", failure.usage);
    assert!(sent <= caps.outbound_concurrent as usize, "{sent}");
    assert_eq!(sink.connections(), sent, "connections the server saw");
    assert_eq!(failure.usage.outbound_limited as usize, 64 - sent);

    // Logged once, with hook, tenant and event.
    let limited: Vec<_> = logs
        .all()
        .into_iter()
        .filter(|l| l.message == "outbound requests limited")
        .collect();
    assert_eq!(limited.len(), 1, "{limited:?}");
    let f = &limited[0].fields;
    assert_eq!(f["hook"], "flood");
    assert_eq!(f["tenant"], "default");
    assert_eq!(f["event"], "after_register");
    assert_eq!(f["event_id"], event.id);
    assert_eq!(
        f["over_requests"],
        (64 - caps.outbound_requests).to_string()
    );
}

/// Connections an API has seen: open now, the most open at once, and in all.
#[derive(Default)]
struct Open {
    now: AtomicUsize,
    peak: AtomicUsize,
    total: AtomicUsize,
}

/// An API on loopback that accepts connections and never answers: every request holds its
/// connection until the client closes it (its invocation ended).
async fn silent_api() -> (u16, Arc<Open>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let open: Arc<Open> = Arc::default();
    let count = Arc::clone(&open);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.total.fetch_add(1, Ordering::SeqCst);
            let now = count.now.fetch_add(1, Ordering::SeqCst) + 1;
            count.peak.fetch_max(now, Ordering::SeqCst);
            let count = Arc::clone(&count);
            tokio::spawn(async move {
                // Read (and ignore) the request until the client closes the connection.
                let mut buf = [0u8; 1024];
                while socket.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                count.now.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (port, open)
}

/// Eight invocations of one hook each send a request (the guest waits for each response
/// before its next), which the API never answers: eight connections at once without a
/// per-hook cap. The hook's share of four keeps it to four at once; the other requests wait
/// for the share instead of failing, and go out only if a holder's invocation ends before
/// their own deadline.
#[tokio::test]
async fn concurrent_invocations_of_one_hook_queue_for_its_connection_share() {
    let (port, open) = silent_api().await;
    let dir = HookDir::new()
        .hook("flood", &outbound_flood(port))
        .manifest(&format!(
            "[hooks.flood]\nallowed_hosts = [\"127.0.0.1:{port}\"]\ntimeout_ms = 1500\n"
        ));
    let mut settings = dir.settings();
    let share = SandboxCaps::default().outbound_concurrent as usize;
    settings.caps.outbound_concurrent_per_hook = share as u32;
    let host = HookHost::load(&settings).await.unwrap();
    let hook = Arc::clone(&host.hooks()[0]);
    let runs: Vec<_> = (0..8)
        .map(|_| {
            let hook = Arc::clone(&hook);
            tokio::spawn(async move { hook.invoke(&after_register()).await })
        })
        .collect();
    let mut sent = 0;
    for run in runs {
        let failure = run.await.unwrap().unwrap_err();
        // Waiting, not refused: no response ever came, so the deadline ended it.
        assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
        sent += failure.usage.outbound_sent.len();
    }
    assert_eq!(sent, 8, "each invocation sent its first request");
    let peak = open.peak.load(Ordering::SeqCst);
    assert!(
        (1..=share).contains(&peak),
        "{peak} connections at once for a share of {share}"
    );
    // The share is free again once the invocations are over: four more connect at once.
    let before = open.total.load(Ordering::SeqCst);
    let runs: Vec<_> = (0..share)
        .map(|_| {
            let hook = Arc::clone(&hook);
            tokio::spawn(async move { hook.invoke(&after_register()).await })
        })
        .collect();
    for run in runs {
        let failure = run.await.unwrap().unwrap_err();
        assert_eq!(failure.kind, FailureKind::Timeout, "{failure}");
    }
    assert_eq!(open.total.load(Ordering::SeqCst) - before, share);
}

#[tokio::test]
async fn one_memory_cap_covers_all_memories_of_the_instance() {
    let dir = HookDir::new()
        .hook("mems", &fixture("many-memories"))
        .manifest("[hooks.mems]\nmemory_mib = 16\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0].invoke(&after_register()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::MemoryLimit);
    let total = failure.usage.linear_memory;
    // Four memories grown together: never above the cap in total (a cap per memory let this
    // component reach ~64 MiB), and close to it.
    assert!(total <= 16 << 20, "{total}");
    assert!(total > 12 << 20, "{total}");
}

#[tokio::test]
async fn tables_count_against_the_memory_cap() {
    let dir = HookDir::new()
        .hook("tables", &fixture("table-bomb"))
        .manifest("[hooks.tables]\nmemory_mib = 1\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0].invoke(&after_register()).await.unwrap_err();
    assert_eq!(failure.kind, FailureKind::MemoryLimit);
}

#[tokio::test]
async fn a_huge_err_string_is_cut_escaped_and_marked_before_it_is_logged_or_stored() {
    let dir = HookDir::new().hook("huge-err", &fixture("huge-err"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    let failure = host.hooks()[0].invoke(&after_register()).await.unwrap_err();
    let cap = SandboxCaps::default().error_bytes;
    let message = guest_error(&failure);
    assert!(
        message.starts_with("bad\\nFORGED lineAAA"),
        "{}",
        &message[..40]
    );
    assert!(!message.contains('\n'));
    // `cap` bytes kept, escaped: the "\n" takes two of them for one byte of the original.
    let cut = (12 << 20) - (cap - 1);
    assert!(
        message.ends_with(&format!("… [{cut} bytes cut]")),
        "{}",
        &message[cap - 20..]
    );
    assert!(message.len() < cap + 64, "{}", message.len());
    assert_eq!(failure.usage.error_bytes_cut, cut);

    // What the handler reports (the delivery's last error) and the log are as bounded.
    let err = host.handlers()[0]
        .handle(&after_register())
        .await
        .unwrap_err();
    assert!(err.0.len() < cap + 256, "{}", err.0.len());
    let reasons: Vec<_> = logs
        .all()
        .into_iter()
        .filter(|l| l.message == "hook failed")
        .map(|l| l.fields["reason"].clone())
        .collect();
    assert_eq!(reasons.len(), 2);
    assert!(
        reasons
            .iter()
            .all(|r| r.len() < cap + 64 && !r.contains('\n'))
    );
}

#[tokio::test]
async fn log_lines_and_bytes_are_capped_per_invocation_and_the_drop_is_reported_once() {
    let dir = HookDir::new().hook("flood", &fixture("log-flood"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    let event = after_register();
    let usage = host.hooks()[0].invoke(&event).await.unwrap();
    let caps = SandboxCaps::default();
    let lines: Vec<_> = logs
        .of_event(&event.id)
        .into_iter()
        .filter(|l| l.message.starts_with("mmm"))
        .collect();
    // 6,001 bytes a line: as many as fit the byte budget, then nothing more.
    let fit = caps.log_bytes / 6001;
    assert_eq!(lines.len(), fit);
    let logged: usize = lines
        .iter()
        .map(|l| l.message.len() + l.fields["fields"].len())
        .sum();
    assert!(logged <= caps.log_bytes + 64 * fit, "{logged}");
    assert_eq!(usage.log_dropped_lines as usize, 1000 - fit);
    let dropped: Vec<_> = logs
        .all()
        .into_iter()
        .filter(|l| l.message == "hook log lines past the cap were dropped")
        .collect();
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].fields["dropped_lines"], (1000 - fit).to_string());
    assert_eq!(dropped[0].fields["hook"], "flood");
}

#[tokio::test]
async fn a_log_message_cannot_forge_a_log_line_or_send_terminal_escapes() {
    let dir = HookDir::new().hook("forge", &fixture("log-forge"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    host.hooks()[0].invoke(&after_register()).await.unwrap();
    assert_eq!(
        logs.messages_where("hook", "forge"),
        ["ok\\nhookauth: FORGED admin login\\u{1b}[2K\\r"]
    );
}

#[tokio::test]
async fn stdout_records_are_capped_in_lines_and_escaped() {
    let dir = HookDir::new().hook("flood", &fixture("stdout-flood"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let (logs, _guard) = Logs::capture();
    let usage = host.hooks()[0].invoke(&after_register()).await.unwrap();
    let lines = logs.messages_where("stream", "stdout");
    let records = lines
        .iter()
        .filter(|l| *l != "hook output past the cap was dropped");
    assert_eq!(records.count(), hookauth::hooks::stdio::STDIO_LINES);
    assert_eq!(lines[0], "a\\rB\\u{1b}[2K");
    assert_eq!(
        usage.stdio_dropped_lines,
        5001 - hookauth::hooks::stdio::STDIO_LINES
    );
    let warning = logs
        .all()
        .into_iter()
        .find(|l| l.message == "hook output past the cap was dropped")
        .expect("the drop is reported");
    assert_eq!(
        warning.fields["dropped_lines"],
        (5001 - hookauth::hooks::stdio::STDIO_LINES).to_string()
    );
}

#[tokio::test]
async fn a_guest_cannot_hoard_handles_past_the_resource_cap() {
    let dir = HookDir::new()
        .hook("hoard", &fixture("handle-hoard"))
        .manifest("[hooks.hoard]\nfuel = 1_000_000_000\ntimeout_ms = 10000\n");
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0].invoke(&after_register()).await.unwrap_err();
    match &failure.kind {
        FailureKind::Trap(m) => assert!(m.contains("resource table"), "{m}"),
        other => panic!("expected a trap on the full resource table, got {other:?}"),
    }
}

#[tokio::test]
async fn one_random_call_cannot_make_the_host_build_megabytes() {
    let dir = HookDir::new().hook("random", &fixture("random-bomb"));
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let failure = host.hooks()[0].invoke(&after_register()).await.unwrap_err();
    match &failure.kind {
        FailureKind::Trap(m) => assert!(m.contains("exceeds limit"), "{m}"),
        other => panic!("expected the 2 MiB request to be refused, got {other:?}"),
    }
}
