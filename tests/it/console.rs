//! The admin console (`/admin`) end to end in a real headless Chromium driven over WebDriver
//! (chromedriver from the system packages; .ci/run installs both): sign in as the operator,
//! see a tenant's hook, replay a failure, watch the chart update; sign in as a tenant admin
//! and see only that tenant. Also the page's own protections (CSP, no framing).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use hookauth::domain::TenantId;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, Options, PASSWORD, TestApp, totp};
use crate::tenant_hooks::support::{OPERATOR, call, create_tenant, deploy, register, superuser};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Self {
        for path in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                std::path::Path::new(path).exists(),
                "{path} is missing: install Debian's chromium and chromium-driver \
                 (.ci/run does)"
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        Self { child, port }
    }

    async fn browser(&self) -> Client {
        // fantoccini's connector is rustls; the process picks ring, as the server does.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1280,900"],
            }),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&format!("http://127.0.0.1:{}", self.port))
                .await
            {
                Ok(client) => return client,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => panic!("no WebDriver session: {e}"),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `check` answers `Some` (panics after 20 s, naming `what`).
async fn until<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn text_of(browser: &Client, css: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

async fn attr_of(browser: &Client, css: &str, attr: &str) -> Option<String> {
    browser
        .find(Locator::Css(css))
        .await
        .ok()?
        .attr(attr)
        .await
        .ok()
        .flatten()
}

async fn click(browser: &Client, css: &str) {
    until(&format!("{css} to click"), async || {
        browser
            .find(Locator::Css(css))
            .await
            .ok()?
            .click()
            .await
            .ok()
    })
    .await;
}

async fn type_into(browser: &Client, css: &str, text: &str) {
    let field = browser.find(Locator::Css(css)).await.unwrap();
    field.clear().await.unwrap();
    field.send_keys(text).await.unwrap();
}

/// The tenant `acme` with a well-behaved hook, one that always fails, and one failed event.
async fn acme(app: &TestApp) {
    create_tenant(app, "acme").await;
    let fixture = crate::shared::fixture;
    for (name, wat) in [("ok-hook", "log-ok"), ("failing", "guest-error")] {
        let (status, body) = deploy(app, "acme", name, Some(OPERATOR), &fixture(wat), None).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    assert_eq!(
        register(app, "acme", "first@example.com").await,
        StatusCode::ACCEPTED
    );
    app.settle_tenants(&[TenantId::parse("acme").unwrap()])
        .await;
}

async fn monitor_of(app: &TestApp, hook: &str) -> Value {
    let (status, monitor) = call(app, Method::GET, "acme", "/monitor", Some(OPERATOR), None).await;
    assert_eq!(status, StatusCode::OK, "{monitor}");
    monitor["hooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == hook)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_console_signs_in_shows_hooks_replays_a_failure_and_charts_live() {
    let app = TestApp::spawn_with(
        Backend::Sqlite,
        Options::default()
            .env("HOOKAUTH_OPERATOR_TOKEN", OPERATOR)
            .env("HOOKAUTH_DELIVERY__MAX_ATTEMPTS", "1"),
    )
    .await;
    acme(&app).await;
    let driver = Driver::start();
    let browser = driver.browser().await;
    let base = format!("http://{}", app.addr);
    browser
        .goto(&format!("{base}/admin?interval=300"))
        .await
        .unwrap();

    // A wrong token is refused on the page.
    type_into(
        &browser,
        "#operator-token",
        "not-the-operator-token-0123456789abcdef",
    )
    .await;
    click(&browser, "#signin-operator").await;
    until("the refusal", async || {
        text_of(&browser, "#message")
            .await
            .filter(|t| !t.is_empty())
    })
    .await;
    assert!(
        !browser
            .find(Locator::Css("#console"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );

    // The operator sees every tenant and acme's hooks with their live figures.
    type_into(&browser, "#operator-token", OPERATOR).await;
    click(&browser, "#signin-operator").await;
    click(&browser, r#"#tenant-list [data-tenant="acme"]"#).await;
    let sha = until("acme's hooks", async || {
        attr_of(&browser, r#"tr[data-hook="ok-hook"] td[title]"#, "title").await
    })
    .await;
    let (_, hooks) = call(&app, Method::GET, "acme", "/hooks", Some(OPERATOR), None).await;
    let deployed = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "ok-hook")
        .unwrap();
    assert_eq!(sha, deployed["sha256"].as_str().unwrap());
    let row = text_of(&browser, r#"tr[data-hook="ok-hook"]"#)
        .await
        .unwrap();
    assert!(row.contains("api"), "{row}");
    until("the failing hook's failure count", async || {
        text_of(&browser, r#"tr[data-hook="failing"] .col-failures"#)
            .await
            .filter(|t| t == "1")
    })
    .await;
    let whoami = text_of(&browser, "#whoami").await.unwrap();
    assert!(whoami.contains("operator"), "{whoami}");

    // Replay the failure from the page: the failing hook runs again.
    assert_eq!(monitor_of(&app, "failing").await["failures"], 1);
    let error = until("the failure row", async || {
        text_of(&browser, "#failures-table tr[data-failure-id]").await
    })
    .await;
    assert!(error.contains("mailer said no"), "{error}");
    click(
        &browser,
        "#failures-table tr[data-failure-id] button.replay",
    )
    .await;
    let message = until("the replay confirmation", async || {
        text_of(&browser, "#message")
            .await
            .filter(|t| t.contains("queued for redelivery"))
    })
    .await;
    assert!(message.starts_with("Event "), "{message}");
    app.settle_tenants(&[TenantId::parse("acme").unwrap()])
        .await;
    assert_eq!(monitor_of(&app, "failing").await["failures"], 2);

    // The chart keeps sampling, and shows new traffic.
    let samples = |s: Option<String>| s.and_then(|s| s.parse::<u32>().ok()).unwrap_or(0);
    let before = samples(attr_of(&browser, "#chart", "data-samples").await);
    let points_before = attr_of(&browser, "#chart polyline.series-latency", "points").await;
    assert_eq!(
        register(&app, "acme", "second@example.com").await,
        StatusCode::ACCEPTED
    );
    app.settle_tenants(&[TenantId::parse("acme").unwrap()])
        .await;
    until("new chart samples", async || {
        (samples(attr_of(&browser, "#chart", "data-samples").await) >= before + 3).then_some(())
    })
    .await;
    let points_after = attr_of(&browser, "#chart polyline.series-latency", "points").await;
    assert_ne!(
        points_before, points_after,
        "the latency series was redrawn"
    );
    until("the hook's invocations in the table", async || {
        text_of(&browser, r#"tr[data-hook="ok-hook"] .col-invocations"#)
            .await
            .filter(|t| t.trim() == "2")
    })
    .await;

    // A tenant admin, with two-factor sign-in on, sees only their tenant.
    let admin = superuser(&app, "acme", "acme-admin@example.com").await;
    let secret = enrol_totp(&app, &admin).await;
    click(&browser, "#signout").await;
    type_into(&browser, "#tenant-name", "acme").await;
    type_into(&browser, "#admin-email", "acme-admin@example.com").await;
    type_into(&browser, "#admin-password", PASSWORD).await;
    click(&browser, "#signin-admin").await;
    until("the code field after the password", async || {
        let field = browser.find(Locator::Css("#admin-mfa")).await.ok()?;
        field.is_displayed().await.ok()?.then_some(())
    })
    .await;
    // The enrolment used this step's code: the next one signs in.
    app.shift_clock(30_000);
    type_into(
        &browser,
        "#admin-mfa-code",
        &totp(&secret, app.server_now_secs()),
    )
    .await;
    click(&browser, "#signin-admin").await;
    until("the admin's tenant", async || {
        browser
            .find(Locator::Css(r#"#tenant-list [data-tenant="acme"]"#))
            .await
            .ok()
    })
    .await;
    let tenants = browser
        .find_all(Locator::Css("#tenant-list [data-tenant]"))
        .await
        .unwrap();
    assert_eq!(tenants.len(), 1);
    until("acme's hooks for its admin", async || {
        browser
            .find(Locator::Css(r#"tr[data-hook="ok-hook"]"#))
            .await
            .ok()
    })
    .await;
    browser.close().await.unwrap();
    app.stop().await;
}

#[tokio::test]
async fn the_console_is_served_with_a_policy_that_runs_only_its_own_files() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for (path, kind) in [
        ("/admin", "text/html"),
        ("/admin/console.js", "text/javascript"),
        ("/admin/console.css", "text/css"),
    ] {
        let response = app
            .http()
            .get(format!("http://{}{path}", app.addr))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let csp = header("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(header("x-frame-options"), "DENY");
        assert_eq!(header("x-content-type-options"), "nosniff");
    }
    // The page carries no inline script or handler the policy would have to allow.
    let page = app
        .http()
        .get(format!("http://{}/admin", app.addr))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lower = page.to_lowercase();
    assert!(
        lower.contains(r#"<script src="/admin/console.js""#),
        "{page}"
    );
    assert!(!lower.contains("<script>"), "inline script in {page}");
    assert!(
        !lower.contains(" onclick=") && !lower.contains(" onload="),
        "{page}"
    );
    assert!(!lower.contains("style="), "inline style in {page}");
    // The script never writes markup from data.
    let script = include_str!("../../src/http/console/console.js");
    for sink in [
        "innerHTML",
        "outerHTML",
        "insertAdjacentHTML",
        "document.write",
        "eval(",
    ] {
        assert!(!script.contains(sink), "console.js uses {sink}");
    }
    app.stop().await;
}

/// Turns on TOTP for the user of `token` (through the API); answers the secret.
async fn enrol_totp(app: &TestApp, token: &str) -> String {
    let prefix = format!("http://{}/t/acme/api/v1/auth", app.addr);
    let (status, body) = crate::helpers::send(
        app.http(),
        Method::POST,
        format!("{prefix}/mfa/enroll"),
        Some(token),
        Some(json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["secret"].as_str().unwrap().to_owned();
    let (status, body) = crate::helpers::send(
        app.http(),
        Method::POST,
        format!("{prefix}/mfa/confirm"),
        Some(token),
        Some(json!({"code": totp(&secret, app.server_now_secs())})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    secret
}
