//! A platform hook's `allowed_hosts` (exact `host:port` entries) against a real guest making
//! outbound requests through the host: other ports of the allowed address, every other
//! spelling of it and other internal addresses are refused before any connection, and a
//! redirect from the allowed host is never followed to where the list does not allow.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hookauth::hooks::HookHost;

use crate::support::{HookDir, Sink, after_register, guest, guest_error};

/// The welcome-email guest once per URL, as hooks `p00`, `p01`, ... allowed only
/// `127.0.0.1:{allowed_port}`.
fn probes(allowed_port: u16, urls: &[String]) -> HookDir {
    let mut dir = HookDir::new().env("TEST_MAILER_KEY", "key-123");
    let mut manifest = String::new();
    for (i, url) in urls.iter().enumerate() {
        dir = dir.hook(&format!("p{i:02}"), &guest("welcome-email"));
        manifest.push_str(&format!(
            "[hooks.p{i:02}]\nevents = [\"after_register\"]\n\
             allowed_hosts = [\"127.0.0.1:{allowed_port}\"]\n\
             timeout_ms = 10000\n\
             config = {{ url = \"{url}\" }}\n\
             secrets = {{ api_key = \"TEST_MAILER_KEY\" }}\n\n"
        ));
    }
    dir.manifest(&manifest)
}

#[tokio::test]
async fn only_the_exact_allowed_address_and_port_are_reached() {
    let sink = Sink::start().await;
    let elsewhere = Sink::start().await;
    let p = sink.port;
    let mut urls: Vec<String> = [
        "2130706433",
        "0177.0.0.1",
        "0x7f000001",
        "127.1",
        "017700000001",
        "localhost",
        "0.0.0.0",
        "169.254.169.254",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::127.0.0.1]",
        "[2002:7f00:1::]",
        "[fd00::1]",
        "[fe80::1]",
    ]
    .iter()
    .map(|host| format!("http://{host}:{p}/send"))
    .collect();
    // Another port on the allowed address, and the allowed address with no port (80).
    urls.push(format!("http://127.0.0.1:{}/send", elsewhere.port));
    urls.push("http://127.0.0.1/send".into());
    let refused = urls.len();
    urls.push(format!("http://127.0.0.1:{p}/send"));
    let dir = probes(p, &urls);
    let host = HookHost::load(&dir.settings()).await.unwrap();
    let hooks = host.hooks();
    assert_eq!(hooks.len(), urls.len());

    for (hook, url) in hooks.iter().zip(&urls).take(refused) {
        let failure = hook.invoke(&after_register()).await.unwrap_err();
        let message = guest_error(&failure);
        assert!(message.contains("HttpRequestDenied"), "{url}: {message}");
        assert_eq!(
            failure.usage.outbound_refused.len(),
            1,
            "{url}: {failure:?}"
        );
        assert!(failure.usage.outbound_sent.is_empty(), "{url}");
    }
    assert_eq!(sink.connections(), 0, "a refused request reached the sink");
    assert_eq!(elsewhere.connections(), 0, "another port was reached");

    // The control: the listed address and port itself works, with the same guest.
    let usage = hooks[refused]
        .invoke(&after_register())
        .await
        .expect("the allowed address is reached");
    assert_eq!(usage.outbound_sent.len(), 1);
    assert_eq!(sink.received().len(), 1);
}

/// An allowed "API" that answers every request with a redirect to `location`.
struct Redirector {
    port: u16,
    hits: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Redirector {
    async fn start(location: String) -> Self {
        let hits: Arc<AtomicUsize> = Arc::default();
        let count = hits.clone();
        let app = axum::Router::new().fallback(move || {
            let location = location.clone();
            count.fetch_add(1, Ordering::SeqCst);
            async move {
                (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, location)],
                    "moved",
                )
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { port, hits, task }
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test]
async fn a_redirect_from_an_allowed_host_is_not_followed() {
    let internal = Sink::start().await;
    for location in [
        format!("http://127.0.0.1:{}/send", internal.port),
        format!("http://localhost:{}/send", internal.port),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let redirector = Redirector::start(location.clone()).await;
        let url = format!("http://127.0.0.1:{}/send", redirector.port);
        let dir = probes(redirector.port, std::slice::from_ref(&url));
        let host = HookHost::load(&dir.settings()).await.unwrap();
        let failure = host.hooks()[0].invoke(&after_register()).await.unwrap_err();
        // The guest saw the redirect itself: the host did not chase it.
        let message = guest_error(&failure);
        assert!(message.contains("307"), "{location}: {message}");
        assert_eq!(failure.usage.outbound_sent, [format!("POST {url}")]);
        assert!(failure.usage.outbound_refused.is_empty());
        assert_eq!(redirector.hits.load(Ordering::SeqCst), 1);
    }
    assert_eq!(
        internal.connections(),
        0,
        "a redirect reached the internal sink"
    );
}

/// The connect-time check of tenant hooks (`is_internal`) judges IPv6 spellings that carry an
/// IPv4 address by that address. A tenant hook reaches these only through a name it does not
/// control the answer of, so they are checked here directly rather than through DNS.
#[test]
fn ipv6_spellings_of_internal_ipv4_addresses_are_internal() {
    use hookauth::hooks::outbound::is_internal;
    for ip in [
        // IPv4-compatible (::/96).
        "::127.0.0.1",
        "::7f00:1",
        "::10.0.0.1",
        "::169.254.169.254",
        "::0.0.0.2",
        // IPv4-mapped.
        "::ffff:127.0.0.1",
        "::ffff:169.254.169.254",
        // 6to4 of loopback, private, link-local (metadata) and "this network".
        "2002:7f00:1::",
        "2002:7f00:1::1",
        "2002:a00:1::",
        "2002:c0a8:101::1",
        "2002:a9fe:a9fe::",
        "2002::1",
        // Site-local, Teredo, NAT64 (well-known and local-use), discard-only.
        "fec0::1",
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",
        "64:ff9b::7f00:1",
        "64:ff9b:1::7f00:1",
        "100::1",
        // The rest of the list the tenant test walks through.
        "::1",
        "::",
        "fd00::1",
        "fe80::1",
        "0.0.0.0",
        "127.0.0.1",
        "169.254.169.254",
        "198.18.0.1",
    ] {
        assert!(is_internal(ip.parse().unwrap()), "{ip} is internal");
    }
    // 6to4 of a public address, and ordinary global addresses, stay reachable.
    for ip in [
        "2002:5db8:d822::1",
        "2a00:1450:4001:80b::200e",
        "2606:4700::1111",
        "93.184.216.34",
        "198.20.0.1",
    ] {
        assert!(!is_internal(ip.parse().unwrap()), "{ip} is public");
    }
}
