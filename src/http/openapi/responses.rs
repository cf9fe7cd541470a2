//! The error answers, as reusable response components: each is the `Error` schema as JSON,
//! with the headers `ApiError` adds to it.

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};

fn error(description: &str, headers: &[(&str, Type, &str)]) -> RefOr<Response> {
    let content = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("Error")))
        .build();
    let mut response = ResponseBuilder::new()
        .description(description)
        .content("application/json", content);
    for (name, ty, about) in headers {
        let header = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(ty.clone()))
            .description(Some(*about))
            .build();
        response = response.header(*name, header);
    }
    RefOr::T(response.build())
}

macro_rules! error_response {
    ($(#[$doc:meta])* $name:ident, $description:expr $(, $header:expr)* $(,)?) => {
        $(#[$doc])*
        pub(crate) struct $name;

        impl<'r> utoipa::ToResponse<'r> for $name {
            fn response() -> (&'r str, RefOr<Response>) {
                (stringify!($name), error($description, &[$($header),*]))
            }
        }
    };
}

error_response!(
    BadRequest,
    "Refused by the flow: `no_valid_fields`, `current_password_incorrect`, \
     `invalid_redirect_uri`, `oauth_failed`, `last_sign_in_method`"
);
error_response!(
    /// Every authentication failure looks the same.
    Unauthorized,
    "Missing, invalid, expired or revoked credentials (`invalid_credentials`)",
    ("WWW-Authenticate", Type::String, "`Bearer`"),
);
error_response!(
    Forbidden,
    "Refused: `forbidden` (not enough permissions), `current_password_incorrect`, \
     `reauthentication_required`, or `denied_by_hook` (a gate hook said no; its own code, if \
     any, in `hook_code`)"
);
error_response!(
    NotFound,
    "Not found: `not_found`, `oauth_provider_not_found`, or `unknown_tenant` (a \
     `/t/{tenant}/...` path naming a tenant that does not exist)"
);
error_response!(
    RequestTimeout,
    "The request body did not arrive in time (`request_timeout`); the connection is closed",
    ("Connection", Type::String, "`close`"),
);
error_response!(
    Conflict,
    "Conflict: `email_taken`, `tenant_exists`, `oauth_account_taken`, \
     `oauth_provider_already_linked`"
);
error_response!(
    PayloadTooLarge,
    "The request body is over the size limit (`payload_too_large`)"
);
error_response!(
    Unprocessable,
    "The request is invalid: `validation_error` (`detail` lists every problem), \
     `password_policy`, `unknown_fields`, `invalid_path`, `invalid_query`, `invalid_body`, or \
     the management API's own codes (`invalid_multipart`, `invalid_provider`, \
     `invalid_secret_key`, `invalid_tenant`, ...)"
);
error_response!(
    RateLimited,
    "Too many requests from this client (`rate_limited`)",
    (
        "Retry-After",
        Type::Integer,
        "Seconds until a request may succeed"
    ),
    (
        "X-RateLimit-Limit",
        Type::Integer,
        "Requests allowed per window"
    ),
    ("X-RateLimit-Remaining", Type::Integer, "Always 0"),
    (
        "X-RateLimit-Reset",
        Type::Integer,
        "Seconds until a request may succeed"
    ),
);
error_response!(
    NotReady,
    "Hooks are still loading, just after start (`not_ready`)",
    ("Retry-After", Type::Integer, "Seconds (1)"),
);
