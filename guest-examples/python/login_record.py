"""The analytics record of a login, shared by analytics.py (logs it) and collector.py (POSTs it)."""

# componentize-py names a bindings module after its interface, and prefixes the package only when
# two interfaces share a name: in the `hook` world hookauth's types are `types`, in the
# `collector-hook` world (which also has wasi:http/types) they are `hookauth_hooks_types`.
try:
    from wit_world.imports.types import Event, Payload_AfterLogin, Payload_AfterOauthLogin
except ImportError:
    from wit_world.imports.hookauth_hooks_types import (
        Event,
        Payload_AfterLogin,
        Payload_AfterOauthLogin,
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
