"""Bearer API keys and roles.

Each view declares its audit action and the roles it admits with :func:`endpoint`;
the caller is authenticated before the body is read, so an unknown caller costs
nothing but a hash and an audit entry. The view gets the request's
:class:`~kyso.api.context.RequestContext` as its first argument.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, request

from kyso.api import context
from kyso.api.context import RequestContext
from kyso.api.limits import limit, limit_address
from kyso.db.clients import Client
from kyso.errors import Forbidden, KeyNotGranted, Unauthorized

F = TypeVar("F", bound=Callable[..., Any])


def current_client() -> Client:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send an API key as 'Authorization: Bearer <key>'")
    client = current_app.extensions["kyso"].authenticate(token.strip())
    if client is None:
        # The presented key is never logged or echoed.
        raise Unauthorized("the API key is not valid (unknown or revoked)")
    return client


def endpoint(action: str | None, *roles: str) -> Callable[[F], F]:
    """Mark a view with its audit ``action`` and the ``roles`` that may call it
    (no roles: public); the view is called as ``view(ctx, **url_values)``."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx = context.current()
            ctx.action = action
            if roles:
                try:
                    ctx.client = client = current_client()
                except Unauthorized:
                    limit_address()  # each failure costs an audit entry: not without end
                    raise
                limit("client", client.name, f"client {client.name!r}")
                if client.role not in roles:
                    raise Forbidden(
                        f"client {client.name!r} has role {client.role!r}; this call needs {' or '.join(roles)}"
                    )
            return view(ctx, *args, **kwargs)

        wrapper.kyso_action = action  # type: ignore[attr-defined]  # for refusals before the view
        return wrapper  # type: ignore[return-value]

    return decorate


def require_key_grant(ctx: RequestContext, alias: str) -> None:
    """Refuse a key alias the calling client may not use (unknown aliases first)."""
    keystore = current_app.extensions["kyso"].keystore
    keystore.get(alias)  # UnknownKey
    client: Client = ctx.caller
    if not client.may_use(alias):
        raise KeyNotGranted(f"client {client.name!r} is not granted key alias {alias!r}")
