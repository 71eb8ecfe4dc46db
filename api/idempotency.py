"""``Idempotency-Key``: a retry gets the first answer byte for byte, and no second entry.

The stored answer is written in the same transaction as the audit entry of the
operation, so an operation and its remembered answer exist together or not at all.
Two concurrent requests with one key: the second to commit fails on the primary key,
its transaction (audit entry included) rolls back, and it answers with the first's.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, current_app, g, request
from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from kyso.api import fields
from kyso.db import idempotency
from kyso.errors import IdempotencyConflict

_KEPT_HEADERS = ("Content-Type", "Kyso-Audit-Seq", "Kyso-Document-SHA256", "Kyso-Repaired")


@dataclass(frozen=True)
class IdempotentCall:
    client: str
    key: str
    request_hash: str


def request_fingerprint() -> str:
    h = hashlib.sha256()
    for part in (request.method, request.path, request.query_string.decode("latin-1"), request.mimetype):
        h.update(part.encode("utf-8") + b"\x00")
    h.update(request.get_data(cache=True))
    return h.hexdigest()


def _stored(conn: Connection, call: IdempotentCall, max_age: float) -> Response | None:
    row = conn.execute(
        select(idempotency).where(idempotency.c.client == call.client, idempotency.c.key == call.key)
    ).first()
    if row is None or row.created < time.time() - max_age:
        return None
    if row.request_hash != call.request_hash:
        raise IdempotencyConflict(
            f"Idempotency-Key {call.key!r} was used for a different request; use a new key for a new request"
        )
    resp = Response(bytes(row.body), status=row.status)
    for name, value in json.loads(row.headers).items():
        resp.headers[name] = value
    resp.headers["Idempotent-Replayed"] = "true"
    return resp


def begin() -> Response | None:
    """Before an operation: the remembered answer if this is a retry, else None
    (and the call is remembered in ``g`` for :func:`remember`)."""
    key = request.headers.get("Idempotency-Key")
    g.idempotent = None
    if key is None:
        return None
    fields.idempotency_key(key)
    call = IdempotentCall(g.client.name, key, request_fingerprint())
    kyso = current_app.extensions["kyso"]
    max_age = kyso.config.idempotency_hours * 3600
    with kyso.db.reader.connect() as conn:
        stored = _stored(conn, call, max_age)
    if stored is None:
        with kyso.db.writer.begin() as conn:
            conn.execute(
                delete(idempotency).where(
                    idempotency.c.client == call.client,
                    idempotency.c.key == call.key,
                    idempotency.c.created < time.time() - max_age,
                )
            )
    g.idempotent = call
    return stored


def remember(build: Callable[[Any, Any], Response]) -> Callable[[Connection, Any, Any], None] | None:
    """A ``with_entry`` callback that stores the answer built from (entry, result)."""
    call: IdempotentCall | None = g.get("idempotent")
    if call is None:
        return None

    def store(conn: Connection, appended: Any, result: Any) -> None:
        resp = build(appended, result)
        g.idempotent_response = resp
        headers = {h: resp.headers[h] for h in _KEPT_HEADERS if h in resp.headers}
        conn.execute(
            insert(idempotency).values(
                client=call.client,
                key=call.key,
                request_hash=call.request_hash,
                status=resp.status_code,
                headers=json.dumps(headers),
                body=resp.get_data(),
                created=time.time(),
            )
        )

    return store


def replay_after_race() -> Response:
    """The first answer, for a request that lost the race to store it."""
    call: IdempotentCall = g.idempotent
    kyso = current_app.extensions["kyso"]
    with kyso.db.reader.connect() as conn:
        stored = _stored(conn, call, kyso.config.idempotency_hours * 3600)
    if stored is None:  # pragma: no cover - the winner committed before we failed
        raise IdempotencyConflict("a concurrent request with this Idempotency-Key is in progress; retry")
    return stored


def run(operation: Callable[[Any], tuple[Any, Any]], build: Callable[[Any, Any], Response]) -> Response:
    """Run an operation that writes an audit entry, storing its answer (built from the
    entry and the result) in the entry's transaction for an Idempotency-Key retry."""
    try:
        result, appended = operation(remember(build))
    except IntegrityError:
        if g.get("idempotent") is not None:
            return replay_after_race()
        raise
    return build(appended, result)
