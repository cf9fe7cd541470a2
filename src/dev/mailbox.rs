//! `hookauth dev mailbox`: a local stand-in for an email API, so the first run with the
//! example hooks shows its emails instead of retrying against nothing. It accepts what the
//! example welcome hook sends (`POST /send`, a JSON object: `to`, `subject`, `template`,
//! `link`, ...), keeps the last [`KEEP`] in memory, and lists them at `/` (a page whose links
//! can be clicked, e.g. the verification link) and `/messages` (JSON). A retried delivery (same
//! `Idempotency-Key`) is kept once.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Html;
use axum::routing::{get, post};
use serde::Serialize;
use serde_json::{Map, Value, json};

/// Messages kept; older ones are dropped.
pub const KEEP: usize = 200;
/// Largest message accepted.
const MAX_MESSAGE_BYTES: usize = 256 * 1024;

#[derive(Clone, Debug, Serialize)]
pub struct Message {
    pub id: u64,
    /// Unix milliseconds.
    pub received_at: i64,
    pub idempotency_key: Option<String>,
    pub body: Map<String, Value>,
}

#[derive(Default)]
struct Mailbox {
    messages: VecDeque<Message>,
    next_id: u64,
}

type Shared = Arc<Mutex<Mailbox>>;

/// Serves the mailbox on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/", get(page))
        .route("/messages", get(list))
        .route("/send", post(receive))
        .layer(DefaultBodyLimit::max(MAX_MESSAGE_BYTES))
        .with_state(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn receive(
    State(mailbox): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let Value::Object(body) = body else {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"detail": "expected a JSON object"})),
        );
    };
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut mailbox = mailbox.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(seen) = key.as_ref().and_then(|k| {
        mailbox
            .messages
            .iter()
            .find(|m| m.idempotency_key.as_ref() == Some(k))
    }) {
        return (StatusCode::OK, Json(json!({"id": seen.id})));
    }
    mailbox.next_id += 1;
    let id = mailbox.next_id;
    let to = body
        .get("to")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    mailbox.messages.push_back(Message {
        id,
        received_at: now_millis(),
        idempotency_key: key,
        body,
    });
    if mailbox.messages.len() > KEEP {
        mailbox.messages.pop_front();
    }
    tracing::info!(id, to = %to, "mailbox: email received");
    (StatusCode::ACCEPTED, Json(json!({"id": id})))
}

async fn list(State(mailbox): State<Shared>) -> Json<Vec<Message>> {
    let mailbox = mailbox.lock().unwrap_or_else(|p| p.into_inner());
    Json(mailbox.messages.iter().rev().cloned().collect())
}

async fn page(State(mailbox): State<Shared>) -> Html<String> {
    let mailbox = mailbox.lock().unwrap_or_else(|p| p.into_inner());
    let mut html = String::from(
        "<!doctype html><meta charset=utf-8><meta http-equiv=refresh content=5>\
         <title>hookauth dev mailbox</title>\
         <style>body{font:15px system-ui;margin:2em}li{margin:1em 0}\
         code{background:#eee;padding:0 .3em}</style>\
         <h1>hookauth dev mailbox</h1><p>Emails the hooks sent, newest first \
         (refreshes every 5 s; JSON at <a href=/messages>/messages</a>).</p><ul>",
    );
    if mailbox.messages.is_empty() {
        html.push_str("<li>No email yet: register a user.</li>");
    }
    for m in mailbox.messages.iter().rev() {
        let field = |k: &str| m.body.get(k).and_then(Value::as_str).unwrap_or("");
        html.push_str(&format!(
            "<li><b>{}</b> to <code>{}</code> <small>({})</small>",
            escape(field("subject")),
            escape(field("to")),
            escape(field("template")),
        ));
        let link = field("link");
        // Only web links are made clickable; anything else is shown as text.
        if link.starts_with("http://") || link.starts_with("https://") {
            html.push_str(&format!("<br><a href=\"{0}\">{0}</a>", escape(link)));
        } else if !link.is_empty() {
            html.push_str(&format!("<br><code>{}</code>", escape(link)));
        }
        html.push_str("</li>");
    }
    html.push_str("</ul>");
    Html(html)
}

/// Everything a hook sent is text, never markup.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&#39;".into(),
            c => c.to_string(),
        })
        .collect()
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn what_a_hook_sent_never_becomes_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
