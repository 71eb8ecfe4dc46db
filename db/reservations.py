"""``Idempotency-Key`` reservations: one operation per key, and the answer kept for retries.

A request with a key first **claims** it (:meth:`Reservations.claim`): a row with the
request's fingerprint and a fresh token, committed before any work. The operation then
**fulfils** the reservation inside its own audit transaction (:func:`fulfil` writes the
audit seq on the row), so an operation and the mark that it was done exist together or
not at all. After that commit the HTTP layer stores the **answer** (status, headers,
body) on the row; a retry gets it byte for byte. A failed operation **releases** the
key (the row is deleted): a failure is not remembered, and a retry runs again.

A concurrent request with the same key finds the row claimed and waits for the answer
(:class:`InProgress`); one with another request is ``idempotency_conflict``. What a
crash leaves behind:

- before the audit commit: a claimed row with no audit seq. Nothing was done under it,
  so after :data:`LEASE_SECONDS` the next request with that key takes it over (a new
  token) and runs the operation; should the first still be running, its fulfilment
  finds the token changed (:class:`ReservationLost`) and its transaction rolls back.
- between the audit commit and the stored answer: a row with an audit seq and no
  answer. The operation was done once and its answer is lost; it is never run again
  under that key: a retry is told, once the lease has passed, which audit entry
  recorded it (``idempotency_conflict``).

Rows are kept for ``[service] idempotency_hours`` (24 by default) and then forgotten.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from kyso.db import Database, idempotency
from kyso.errors import IdempotencyConflict

# How long a claimed key whose operation has not committed is held for it: longer than
# any signature takes (a large PDF at B-LTA with every TSA timing out).
LEASE_SECONDS = 600.0


@dataclass(frozen=True)
class IdempotentCall:
    """A request with an ``Idempotency-Key``: the calling client, the key, the request's hash."""

    client: str
    key: str
    request_hash: str


@dataclass(frozen=True)
class Reservation:
    """A key claimed for one operation; it is fulfilled in that operation's audit transaction."""

    client: str
    key: str
    token: str


@dataclass(frozen=True)
class StoredAnswer:
    """The answer kept for retries: status, the headers that matter, the body's bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


@dataclass(frozen=True)
class InProgress:
    """The key is claimed by another request: not yet done (``audit_seq`` None), or done
    as entry ``audit_seq`` with its answer not stored yet (or lost)."""

    audit_seq: int | None
    claimed_at: float  # epoch seconds

    def abandoned(self, now: float | None = None) -> bool:
        """Whether the claim is older than the lease: its answer will not come."""
        return self.claimed_at < (time.time() if now is None else now) - LEASE_SECONDS


class ReservationLost(Exception):
    """The reservation was taken over after its lease: the operation must not commit."""


def fulfil(conn: Connection, reservation: Reservation, audit_seq: int) -> None:
    """Mark ``reservation`` done by audit entry ``audit_seq``, on the audit transaction's
    connection; :class:`ReservationLost` (rolling the transaction back) if it is no longer ours."""
    done = conn.execute(
        update(idempotency)
        .where(
            idempotency.c.client == reservation.client,
            idempotency.c.key == reservation.key,
            idempotency.c.token == reservation.token,
            idempotency.c.audit_seq.is_(None),
        )
        .values(audit_seq=audit_seq)
    )
    if done.rowcount != 1:
        raise ReservationLost(f"the reservation of Idempotency-Key {reservation.key!r} was taken over")


class Reservations:
    """The reservations and kept answers of one database, kept ``keep_seconds``."""

    def __init__(self, db: Database, keep_seconds: float) -> None:
        self.db = db
        self.keep_seconds = keep_seconds

    def claim(self, call: IdempotentCall) -> Reservation | StoredAnswer | InProgress:
        """Claim ``call``'s key, or say why not: its kept answer, or another request's claim.

        ``IdempotencyConflict`` if the key was used for a different request.
        """
        for _ in range(3):  # PostgreSQL: two first claims race on the primary key
            try:
                with self.db.writing() as conn:
                    return self._claim(conn, call, time.time())
            except IntegrityError:
                continue
        raise IdempotencyConflict(
            f"Idempotency-Key {call.key!r} is being claimed by concurrent requests; retry"
        )

    def _claim(
        self, conn: Connection, call: IdempotentCall, now: float
    ) -> Reservation | StoredAnswer | InProgress:
        where = (idempotency.c.client == call.client, idempotency.c.key == call.key)
        row = conn.execute(select(idempotency).where(*where)).first()
        if row is not None and row.created < now - self.keep_seconds:
            conn.execute(delete(idempotency).where(*where))
            row = None
        token = secrets.token_hex(16)
        if row is None:
            conn.execute(
                insert(idempotency).values(
                    client=call.client,
                    key=call.key,
                    request_hash=call.request_hash,
                    token=token,
                    created=now,
                )
            )
            return Reservation(call.client, call.key, token)
        claim = InProgress(row.audit_seq, row.created)
        if row.audit_seq is None and row.status is None and claim.abandoned(now):
            # Nothing was done under the old claim: this request takes the key over.
            conn.execute(
                update(idempotency)
                .where(*where)
                .values(request_hash=call.request_hash, token=token, created=now)
            )
            return Reservation(call.client, call.key, token)
        if row.request_hash != call.request_hash:
            raise IdempotencyConflict(
                f"Idempotency-Key {call.key!r} was used for a different request; "
                "use a new key for a new request"
            )
        if row.status is not None:
            return StoredAnswer(row.status, json.loads(row.headers), bytes(row.body))
        return claim

    def answer(self, reservation: Reservation, answer: StoredAnswer) -> None:
        """Keep the answer of a fulfilled reservation for its retries."""
        with self.db.writing() as conn:
            conn.execute(
                update(idempotency)
                .where(
                    idempotency.c.client == reservation.client,
                    idempotency.c.key == reservation.key,
                    idempotency.c.token == reservation.token,
                )
                .values(status=answer.status, headers=json.dumps(answer.headers), body=answer.body)
            )

    def release(self, reservation: Reservation) -> None:
        """Give the key up after a failed operation (never once it was fulfilled)."""
        with self.db.writing() as conn:
            conn.execute(
                delete(idempotency).where(
                    idempotency.c.client == reservation.client,
                    idempotency.c.key == reservation.key,
                    idempotency.c.token == reservation.token,
                    idempotency.c.audit_seq.is_(None),
                )
            )
