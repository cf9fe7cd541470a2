"""Analytics hook: one record per login, by password or OAuth.

On `after_login` and `after_oauth_login` it builds an analytics record (who, when, from where,
how) and writes it to the server log as one line, `analytics: login`, whose `record` field is the
record as JSON (for a log shipper to forward) next to `user_id`, `method` and `event_id`.

Needs no capability. Built with `componentize-py --stub-wasi`, so it imports no WASI at all (no
print(): log through host.log). collector.py sends the same record to an HTTP collector.
"""

import json

from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import Event, EventKind, Registration

from login_record import analytics_record


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
