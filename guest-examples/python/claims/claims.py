"""Claims gate: adds the claims an HTTP API keeps for a user to their access tokens.

Serves `token-claims` (every access token signed: at login and at refresh): GETs
`{url}/claims/{user id}`, which answers a JSON object, and returns each top-level key as a claim
(name, value as JSON text). The server puts them into the token's `extra` object; a name it
uses itself (`sub`, `roles`, ...) makes the answer one it cannot apply, a failure.

Any failure (the request refused because the host is not in `allowed_hosts`, no connection, a
non-2xx answer, a body that is not a JSON object) returns err, which the server treats as the
hook's `on_error` says: `deny` (the default) refuses the token, `allow` signs it without claims.

Built without --stub-wasi for the `claims-gate` world (wit/world.wit): the `gate-hook` world of
wit/v0.2.0 plus wasi:http/outgoing-handler. Config: `url` (required), the API's base.
"""

import json
from urllib.parse import quote, urlsplit

from componentize_py_types import Err
from wit_world import exports
from wit_world.exports.gate import (
    Decision,
    Decision_Allow,
    DecisionPoint,
    GateContext,
    GateRegistration,
    Grant,
    PasswordDecision,
    PasswordDecision_Allow,
    PasswordReason,
    PasswordSubject,
    RegisterDecision,
    RegisterDecision_Allow,
)
from wit_world.imports import outgoing_handler
from wit_world.imports.hookauth_hooks_types import User
from wit_world.imports.host import config_get
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.wasi_http_types import (
    Fields,
    Method_Get,
    OutgoingRequest,
    Scheme_Http,
    Scheme_Https,
)


class Gate(exports.Gate):
    def register(self) -> GateRegistration:
        return GateRegistration(
            points=[DecisionPoint.TOKEN_CLAIMS], config=["url"], secrets=[]
        )

    def token_claims(
        self, user: User, context: GateContext, grant: Grant
    ) -> list[tuple[str, str]]:
        base = config_get("url")
        if base is None:
            raise Err("config `url` is not set")
        url = f"{base.rstrip('/')}/claims/{quote(user.id, safe='')}"
        status, body = get(url)
        if not 200 <= status < 300:
            raise Err(f"GET {url}: the API answered {status}")
        try:
            claims = json.loads(body)
        except ValueError as e:
            raise Err(f"GET {url}: the body is not JSON ({e})")
        if not isinstance(claims, dict):
            raise Err(f"GET {url}: the body is not a JSON object")
        return [
            (name, json.dumps(value, separators=(",", ":")))
            for name, value in claims.items()
        ]

    # Not served: register() lists only token-claims, so the host never calls these.

    def before_register(
        self, email: str, profile: list[tuple[str, str]], context: GateContext
    ) -> RegisterDecision:
        return RegisterDecision_Allow()

    def before_login(self, user: User, context: GateContext) -> Decision:
        return Decision_Allow()

    def check_password(
        self,
        subject: PasswordSubject,
        password: str,
        why: PasswordReason,
        context: GateContext,
    ) -> PasswordDecision:
        return PasswordDecision_Allow()


def get(url: str) -> tuple[int, bytes]:
    """A blocking GET over wasi:http/outgoing-handler: the status and the body."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        scheme = Scheme_Https()
    elif parts.scheme == "http":
        scheme = Scheme_Http()
    else:
        raise Err(f"url {url!r} is not http(s)")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query

    request = OutgoingRequest(Fields.from_list([("accept", b"application/json")]))
    request.set_method(Method_Get())
    request.set_scheme(scheme)
    request.set_authority(parts.netloc)
    request.set_path_with_query(path)

    try:
        pending = outgoing_handler.handle(request, None)
    except Err as e:
        raise Err(f"GET {url}: {error_name(e.value)}")
    with pending:
        while (answer := pending.get()) is None:
            with pending.subscribe() as ready:
                ready.block()
    if isinstance(answer, Err):
        raise Err(f"GET {url}: the response was already taken")
    response = answer.value
    if isinstance(response, Err):
        # e.g. HttpRequestDenied: the host is not in allowed_hosts.
        raise Err(f"GET {url}: {error_name(response.value)}")
    with response.value as incoming:
        status = incoming.status()
        chunks = []
        with incoming.consume() as body:
            # The stream is a child of the body: it must be dropped before the body is.
            with body.stream() as stream:
                while True:
                    try:
                        chunks.append(stream.blocking_read(64 * 1024))
                    except Err as e:
                        if isinstance(e.value, StreamError_Closed):
                            break
                        raise Err(f"GET {url}: reading the body: {e.value!r}")
    return status, b"".join(chunks)


def error_name(code: object) -> str:
    """`ErrorCode_HttpRequestDenied()` -> `HttpRequestDenied`, plus its details if any."""
    name = type(code).__name__.removeprefix("ErrorCode_")
    value = getattr(code, "value", None)
    return name if value is None else f"{name}({value!r})"
