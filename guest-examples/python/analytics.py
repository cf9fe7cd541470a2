"""Analytics hook: one record per login, by password or OAuth.

On `after_login` and `after_oauth_login` it builds an analytics record (who, when, from where,
how) and writes it to the server log as one line, `analytics: login`, whose `record` field is the
record as JSON (for a log shipper to forward) next to `user_id`, `method` and `event_id`.

Needs no capability. Built with `componentize-py --stub-wasi`: this host refuses the
wasi:sockets imports CPython otherwise brings, so the hook uses no WASI at all (no print(), no
outbound HTTP; see README.md).
"""

import json

from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Event,
    EventKind,
    Payload_AfterLogin,
    Payload_AfterOauthLogin,
    Registration,
)


class Handler(exports.Handler):
    def register(self) -> Registration:
        return Registration(
            events=[EventKind.AFTER_LOGIN, EventKind.AFTER_OAUTH_LOGIN],
            config=[],
            secrets=[],
        )

    def handle(self, event: Event) -> None:
        record = analytics_record(event)
        if record is None:
            return  # not subscribed: the host never sends anything else
        host.log(
            host.Level.INFO,
            f"analytics: {record['event']}",
            [
                ("event_id", record["event_id"]),
                ("user_id", record["user_id"]),
                ("method", record["method"]),
                ("record", json.dumps(record, separators=(",", ":"))),
            ],
        )


def analytics_record(event: Event) -> dict | None:
    p = event.payload
    if isinstance(p, Payload_AfterLogin):
        user, method, extra = p.value, "password", {}
    elif isinstance(p, Payload_AfterOauthLogin):
        user, method = p.value.user, "oauth"
        extra = {"provider": p.value.provider, "is_new_user": p.value.is_new_user}
    else:
        return None
    return {
        "event": "login",
        "method": method,
        **extra,
        "event_id": event.context.event_id,
        "tenant": event.tenant,
        "occurred_at": event.occurred_at,
        "user_id": user.id,
        "roles": user.roles,
        "client_ip": event.context.client_ip,
        "user_agent": event.context.user_agent,
    }
