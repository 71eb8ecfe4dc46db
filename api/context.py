"""The request context: what one API call carries from authentication to its answer.

One :class:`RequestContext` is made per request (:func:`begin`), filled by
:func:`kyso.api.auth.endpoint` (the audit action, the authenticated client), handed to
the view as its first argument, and read back in one place each by the error handler
(:func:`kyso.api.problems.audit_failure`: which entry to write for a refused call) and
the metrics (:mod:`kyso.api.metrics`); its ``request_id`` (the caller's ``X-Request-Id``
when sane) is sent back on every answer (:mod:`kyso.api.headers`) and put on every log
line written during the request (:mod:`kyso.api.logs`, through :func:`existing`). It lives in
``flask.g`` under one name and is reached only through :func:`current` and :func:`existing`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from flask import g, request

from kyso.api.logs import new_request_id, sane_request_id
from kyso.db.clients import Client
from kyso.service import Actor

_NAME = "kyso_context"
REQUEST_ID_HEADER = "X-Request-Id"


def request_id_of(offered: str | None) -> str:
    """The caller's request id when it is sane (:func:`kyso.api.logs.sane_request_id`), else a new one."""
    return offered if offered is not None and sane_request_id(offered) else new_request_id()


@dataclass
class AuditFields:
    """What the audit entry of a failed call names (the entry of a success is the domain's)."""

    key: str | None = None
    record_id: str | None = None
    document_sha256: str | None = None


@dataclass
class RequestContext:
    """One API call: who, which audited action, and what its answer should count."""

    started: float = field(default_factory=time.perf_counter)
    request_id: str = field(default_factory=new_request_id)  # X-Request-Id, logs
    action: str | None = None  # the audit action; None: a failure writes no entry
    client: Client | None = None  # once authenticated
    audit: AuditFields = field(default_factory=AuditFields)
    signature_labels: tuple[str, str, str] | None = None  # (kind, key, level) for /metrics
    error_code: str | None = None  # the code of the problem answered, if one was
    replayed: bool = False  # the answer is an Idempotency-Key replay: nothing was signed
    body_fingerprint: str | None = None  # Idempotency-Key's, of a body read once as it came
    failure_recorded: bool = False

    @property
    def actor(self) -> Actor:
        """The caller as the domain knows it (``Actor(None)`` before authentication)."""
        return Actor(self.client.name, self.client.role) if self.client else Actor(None)

    @property
    def caller(self) -> Client:
        """The authenticated client (a view behind :func:`kyso.api.auth.endpoint` roles has one)."""
        if self.client is None:
            raise RuntimeError("this view needs an authenticated client")
        return self.client


def begin() -> RequestContext:
    """Start the context of the current request (``before_request``)."""
    context = RequestContext(request_id=request_id_of(request.headers.get(REQUEST_ID_HEADER)))
    setattr(g, _NAME, context)
    return context


def existing() -> RequestContext | None:
    """The current request's context if it has begun (for log lines, which make none)."""
    return g.get(_NAME)


def current() -> RequestContext:
    """The current request's context (made now if the request failed before it began)."""
    context: RequestContext | None = g.get(_NAME)
    return context if context is not None else begin()
