//! Sends emails through an HTTP email API: a welcome email on `after_register`, and the
//! verification link on `send_verification_email`.
//!
//! Config (hooks.toml): `url` (the API endpoint, required), `verify_url` (the page that takes
//! `?token=`; optional, default `https://example.com/verify`). Secret: `api_key`, sent as
//! `Authorization: Bearer ...`. The event id goes in `Idempotency-Key`, so the API can drop the
//! duplicates that at-least-once delivery may produce.

wit_bindgen::generate!({ world: "hook", path: "../../../wit/v0.1.0" });

mod http;
mod json;

use exports::hookauth::hooks::handler::Guest;
use hookauth::hooks::host::{Level, config_get, log, secret_get};
use hookauth::hooks::types::{Event, EventKind, Payload, Registration};

struct WelcomeEmail;

impl Guest for WelcomeEmail {
    fn register() -> Registration {
        Registration {
            events: vec![EventKind::AfterRegister, EventKind::SendVerificationEmail],
            config: vec!["url".into()],
            secrets: vec!["api_key".into()],
        }
    }

    fn handle(event: Event) -> Result<(), String> {
        let email = match &event.payload {
            Payload::AfterRegister(user) => json::object(&[
                ("to", &user.email),
                ("template", "welcome"),
                ("subject", "Welcome!"),
                ("user_id", &user.id),
            ]),
            Payload::SendVerificationEmail(t) => {
                let base =
                    config_get("verify_url").unwrap_or_else(|| "https://example.com/verify".into());
                let link = format!("{base}?token={}", t.token);
                json::object(&[
                    ("to", &t.email),
                    ("template", "verify-email"),
                    ("subject", "Verify your email"),
                    ("link", &link),
                ])
            }
            // Not subscribed: the host never sends anything else.
            _ => return Ok(()),
        };
        let url = config_get("url").ok_or("config `url` is not set")?;
        let key = secret_get("api_key").ok_or("secret `api_key` is not set")?;
        let auth = format!("Bearer {key}");
        let status = http::post_json(
            &url,
            &[
                ("authorization", &auth),
                ("idempotency-key", &event.context.event_id),
            ],
            email.as_bytes(),
        )?;
        if !(200..300).contains(&status) {
            return Err(format!("email API answered {status}"));
        }
        log(
            Level::Info,
            "email sent",
            &[("event_id".into(), event.context.event_id.clone())],
        );
        Ok(())
    }
}

export!(WelcomeEmail);
