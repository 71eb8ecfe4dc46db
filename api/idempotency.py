"""``Idempotency-Key``: a retry gets the first answer byte for byte, and no second entry.

Every state-changing view answers through :func:`run`::

    return idempotency.run(
        ctx,
        lambda reservation: kyso.sign_json(ctx.actor, alias, payload, level, detached, record_id, reservation),
        _signed_json_response,  # (entry, result) -> Response, built after the commit
    )

Without the header the operation just runs (``reservation`` None). With it, the key is
claimed first (:class:`kyso.db.reservations.Reservations`); the domain fulfils the
reservation in the operation's audit transaction (so the operation and the mark that it
was done exist together or not at all), and the answer built from the returned entry is
kept after that commit. A concurrent retry waits for that answer; a failure releases
the key. :mod:`kyso.db.reservations` says what a crash between the steps leaves.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, request

from kyso.api import fields
from kyso.api.context import RequestContext
from kyso.db.reservations import (
    IdempotentCall,
    InProgress,
    Reservation,
    ReservationLost,
    Reservations,
    StoredAnswer,
)
from kyso.errors import IdempotencyConflict

log = logging.getLogger(__name__)

_KEPT_HEADERS = ("Content-Type", "Kyso-Audit-Seq", "Kyso-Document-SHA256", "Kyso-Repaired")
WAIT_SECONDS = 60.0  # how long a retry waits for a concurrent first request to answer
_POLL_SECONDS = 0.05

R = TypeVar("R")  # the domain result
E = TypeVar("E")  # the audit entry (or entries) that recorded it

Operation = Callable[[Reservation | None], tuple[R, E]]


def request_fingerprint() -> str:
    h = fingerprint_head()
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def fingerprint_head() -> Any:
    """The request's fingerprint hash fed with all but its body (a body read once, as it
    comes, feeds it then: :func:`kyso.api.spool.spool_body`; its digest goes to
    ``RequestContext.body_fingerprint``)."""
    h = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1"), request.mimetype):
        h.update(part.encode("utf-8") + b"\x00")
    return h


def idempotent_call(ctx: RequestContext) -> IdempotentCall | None:
    """The request's ``Idempotency-Key`` call, or None without the header."""
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    fields.idempotency_key(key)
    return IdempotentCall(ctx.caller.name, key, ctx.body_fingerprint or request_fingerprint())


def _reservations() -> Reservations:
    kyso = current_app.extensions["kyso"]
    return Reservations(kyso.db, kyso.config.idempotency_hours * 3600)


def run(ctx: RequestContext, operation: Operation[R, E], build: Callable[[E, R], Response]) -> Response:
    """Run ``operation`` once per Idempotency-Key and answer with ``build(entry, result)``;
    a retry (or a request that lost the race) gets the first answer, replayed."""
    call = idempotent_call(ctx)
    if call is None:
        result, entry = operation(None)
        return build(entry, result)
    reservations = _reservations()
    while True:
        claimed = _claim(reservations, call)
        if isinstance(claimed, StoredAnswer):
            ctx.replayed = True
            return replay(claimed)
        try:
            result, entry = operation(claimed)
        except ReservationLost:
            continue  # held past its lease and taken over: wait for the new holder's answer
        except BaseException:
            reservations.release(claimed)  # a failure is not remembered
            raise
        response = build(entry, result)
        try:
            reservations.answer(claimed, stored(response))
        except Exception:  # done and durable: a retry is told its entry (kyso.db.reservations)
            log.exception("could not keep the answer for Idempotency-Key %r", call.key)
        return response


def _claim(reservations: Reservations, call: IdempotentCall) -> Reservation | StoredAnswer:
    """Claim the key, waiting while a concurrent request with it is under way."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        claimed = reservations.claim(call)
        if not isinstance(claimed, InProgress):
            return claimed
        if claimed.audit_seq is not None and claimed.abandoned():
            raise IdempotencyConflict(
                f"the request with Idempotency-Key {call.key!r} was done (audit entry "
                f"{claimed.audit_seq}) but its answer was lost; it is not repeated. Read the "
                "record's signatures, or use a new key to sign again"
            )
        if time.monotonic() > deadline:
            raise IdempotencyConflict(
                f"a request with Idempotency-Key {call.key!r} is still in progress; retry later"
            )
        time.sleep(_POLL_SECONDS)


def stored(response: Response) -> StoredAnswer:
    """What is kept of an answer: its status, the headers that matter, its body."""
    headers = {h: response.headers[h] for h in _KEPT_HEADERS if h in response.headers}
    return StoredAnswer(response.status_code, headers, response.get_data())


def replay(answer: StoredAnswer) -> Response:
    resp = Response(answer.body, status=answer.status)
    for name, value in answer.headers.items():
        resp.headers[name] = value
    resp.headers["Idempotent-Replayed"] = "true"
    return resp
