"""Collector hook: POSTs the analytics record of each login to an HTTP collector.

On `after_login` and `after_oauth_login` it builds the record analytics.py logs (login_record.py)
and POSTs it as JSON to config `collector_url`, with secret `api_key` as `Authorization: Bearer`
and the event id as `Idempotency-Key` (delivery is at least once: the collector drops repeats).
A refused request (host not in `allowed_hosts`) or a non-2xx answer makes `handle` return err,
so the server logs the failure.

Built without --stub-wasi for the `collector-hook` world (wit/world.wit): the `hook` world plus
wasi:http/outgoing-handler. The host refuses every raw socket, so wasi:http is the only way out.
"""

import json
from urllib.parse import urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host, outgoing_handler
from wit_world.imports.hookauth_hooks_types import Event, EventKind, Registration
from wit_world.imports.wasi_http_types import (
    Fields,
    Method_Post,
    OutgoingBody,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
)

from login_record import analytics_record


class Handler(exports.Handler):
    def register(self) -> Registration:
        return Registration(
            events=[EventKind.AFTER_LOGIN, EventKind.AFTER_OAUTH_LOGIN],
            config=["collector_url"],
            secrets=["api_key"],
        )

    def handle(self, event: Event) -> None:
        record = analytics_record(event)
        if record is None:
            return  # not subscribed: the host never sends anything else
        url = host.config_get("collector_url")
        if url is None:
            raise Err("config `collector_url` is not set")
        key = host.secret_get("api_key")
        if key is None:
            raise Err("secret `api_key` is not set")
        body = json.dumps(record, separators=(",", ":")).encode()
        status = post_json(
            url,
            [
                ("authorization", f"Bearer {key}"),
                ("idempotency-key", record["event_id"]),
            ],
            body,
        )
        if not 200 <= status < 300:
            raise Err(f"POST {url}: the collector answered {status}")
        host.log(
            host.Level.INFO,
            "collector: login sent",
            [("event_id", record["event_id"]), ("status", str(status))],
        )


def post_json(url: str, headers: list[tuple[str, str]], body: bytes) -> int:
    """A blocking POST over wasi:http/outgoing-handler; the response status."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        scheme = Scheme_Https()
    elif parts.scheme == "http":
        scheme = Scheme_Http()
    else:
        raise Err(f"collector_url {url!r} is not http(s)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query

    fields = Fields.from_list(
        [("content-type", b"application/json")]
        + [(name, value.encode()) for name, value in headers]
    )
    request = OutgoingRequest(fields)
    request.set_method(Method_Post())
    request.set_scheme(scheme)
    request.set_authority(parts.netloc)
    request.set_path_with_query(path)

    outgoing = request.body()
    # The stream is a child of the body: it must be dropped before the body is finished.
    with outgoing.write() as stream:
        # blocking_write_and_flush takes at most 4096 bytes per call.
        for i in range(0, len(body), 4096):
            stream.blocking_write_and_flush(body[i : i + 4096])
    OutgoingBody.finish(outgoing, None)

    try:
        pending = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(f"POST {url}: {error_name(e.value)}")
    with pending:
        while (answer := pending.get()) is None:
            with pending.subscribe() as ready:
                ready.block()
    if isinstance(answer, Err):
        raise Err(f"POST {url}: the response was already taken")
    response = answer.value
    if isinstance(response, Err):
        # e.g. HttpRequestDenied: the host refused it, the host is not in allowed_hosts.
        raise Err(f"POST {url}: {error_name(response.value)}")
    with response.value as incoming:
        return incoming.status()


def error_name(code: object) -> str:
    """`ErrorCode_HttpRequestDenied()` -> `HttpRequestDenied`, plus its details if any."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    value = getattr(code, "value", None)
    return name if value is None else f"{name}({value!r})"
