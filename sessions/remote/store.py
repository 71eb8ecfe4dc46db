"""Where a remote session's provider transaction is kept: the ``remote_transactions`` table.

A worker that asks the provider (or finishes the session) first takes the row for a while
(:func:`take`: one conditional UPDATE, so that of several workers or hosts exactly one
succeeds), and gives it back with the next time to ask (:func:`reschedule`). A session's
end (completed, rejected, expired, failed) is written with its audit entry, in the audit
transaction (:func:`conclude`), and only over a row still open: a second end finds none.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, and_, delete, insert, or_, select, update

from kyso.db import Database, remote_transactions, signing_sessions
from kyso.errors import SessionUsed

OPEN = ("pending", "signed")  # pending: ask the provider; signed: finish the documents
FINAL = ("completed", "rejected", "expired", "failed")
LEASE_SECONDS = 120.0  # longer than a provider call and the finishing of 100 documents


@dataclass(frozen=True)
class RemoteTransaction:
    """A remote session's transaction, with what is needed of its session."""

    session_id: str
    provider: str
    transaction_id: str
    reference: str | None
    status: str
    signatures: tuple[bytes, ...]  # in document order, once the provider answered
    result: dict[str, Any] | None
    attempts: int
    next_poll_at: float
    client: str
    expires_at: float
    state: dict[str, Any]  # the session's state (empty once completed)


def insert_transaction(
    conn: Connection,
    session_id: str,
    provider: str,
    transaction_id: str,
    reference: str | None,
    signatures: Sequence[bytes],
    next_poll_at: float,
) -> None:
    """The transaction of a session being stored (same transaction as the session row)."""
    conn.execute(
        delete(remote_transactions).where(
            ~remote_transactions.c.session_id.in_(select(signing_sessions.c.id))
        )
    )  # rows of sessions forgotten by insert_session
    conn.execute(
        insert(remote_transactions).values(
            session_id=session_id,
            provider=provider,
            transaction_id=transaction_id,
            reference=reference,
            status="signed" if signatures else "pending",
            signatures=_pack(signatures) if signatures else None,
            attempts=0,
            next_poll_at=next_poll_at,
            updated=time.time(),
        )
    )


def read(db: Database, session_id: str) -> RemoteTransaction | None:
    with db.reader.connect() as conn:
        row = conn.execute(_joined().where(remote_transactions.c.session_id == session_id)).first()
    return _typed(row) if row is not None else None


def due(db: Database, now: float, limit: int = 20) -> list[str]:
    """Open transactions whose time to ask has come and that no worker holds."""
    with db.reader.connect() as conn:
        rows = conn.execute(
            select(remote_transactions.c.session_id)
            .join(signing_sessions, signing_sessions.c.id == remote_transactions.c.session_id)
            .where(_takeable(now))
            .order_by(remote_transactions.c.next_poll_at)
            .limit(limit)
        ).all()
    return [row.session_id for row in rows]


def take(db: Database, session_id: str, now: float) -> RemoteTransaction | None:
    """Hold the transaction for :data:`LEASE_SECONDS` if it is open, due and free."""
    with db.writing() as conn:
        taken = conn.execute(
            update(remote_transactions)
            .where(remote_transactions.c.session_id == session_id, _takeable(now))
            .values(lease_until=now + LEASE_SECONDS)
        )
        if taken.rowcount != 1:
            return None
        row = conn.execute(_joined().where(remote_transactions.c.session_id == session_id)).first()
    return _typed(row) if row is not None else None


def reschedule(db: Database, session_id: str, next_poll_at: float, attempts: int) -> None:
    """Give the transaction back, to be asked about again at ``next_poll_at``."""
    with db.writing() as conn:
        conn.execute(
            update(remote_transactions)
            .where(remote_transactions.c.session_id == session_id)
            .values(
                next_poll_at=next_poll_at, attempts=attempts, lease_until=None, updated=time.time()
            )
        )


def answered(db: Database, session_id: str, signatures: Sequence[bytes], reference: str | None) -> None:
    """The provider gave the signatures (in document order): finish the session next."""
    with db.writing() as conn:
        conn.execute(
            update(remote_transactions)
            .where(remote_transactions.c.session_id == session_id, remote_transactions.c.status == "pending")
            .values(status="signed", signatures=_pack(signatures), updated=time.time())
        )
        if reference:
            conn.execute(
                update(remote_transactions)
                .where(remote_transactions.c.session_id == session_id)
                .values(reference=reference)
            )


def conclude(conn: Connection, session_id: str, status: str, result: dict[str, Any]) -> None:
    """End the transaction, in the audit entry's transaction: raises SessionUsed (and so
    rolls the entry back) if another worker ended it first."""
    ended = conn.execute(
        update(remote_transactions)
        .where(remote_transactions.c.session_id == session_id, remote_transactions.c.status.in_(OPEN))
        .values(
            status=status,
            result=json.dumps(result, ensure_ascii=False).encode("utf-8"),
            signatures=None,
            lease_until=None,
            updated=time.time(),
        )
    )
    if ended.rowcount != 1:
        raise SessionUsed("this signing session has ended already")
    conn.execute(
        update(signing_sessions)
        .where(signing_sessions.c.id == session_id)
        .values(used=True, state=b"{}")  # its prepared documents are not needed any more
    )


def _takeable(now: float) -> Any:
    return and_(
        remote_transactions.c.status.in_(OPEN),
        remote_transactions.c.next_poll_at <= now,
        or_(remote_transactions.c.lease_until.is_(None), remote_transactions.c.lease_until < now),
    )


def _joined() -> Any:
    return select(
        remote_transactions,
        signing_sessions.c.client,
        signing_sessions.c.expires_at,
        signing_sessions.c.state,
    ).join(signing_sessions, signing_sessions.c.id == remote_transactions.c.session_id)


def _typed(row: Any) -> RemoteTransaction:
    return RemoteTransaction(
        session_id=row.session_id,
        provider=row.provider,
        transaction_id=row.transaction_id,
        reference=row.reference,
        status=row.status,
        signatures=_unpack(row.signatures),
        result=json.loads(bytes(row.result)) if row.result is not None else None,
        attempts=row.attempts,
        next_poll_at=row.next_poll_at,
        client=row.client,
        expires_at=row.expires_at,
        state=json.loads(bytes(row.state)),
    )


def _pack(signatures: Sequence[bytes]) -> bytes:
    return json.dumps([base64.b64encode(s).decode("ascii") for s in signatures]).encode("ascii")


def _unpack(value: bytes | None) -> tuple[bytes, ...]:
    if value is None:
        return ()
    return tuple(base64.b64decode(s) for s in json.loads(bytes(value)))
