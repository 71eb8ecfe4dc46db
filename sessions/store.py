"""Where sessions are kept between the two steps: the ``signing_sessions`` table.

A session row holds the client that started it, when it expires, whether it was used, and
its state (:mod:`kyso.sessions.state`) as JSON. A session expired a day ago is deleted at
the next start.
"""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from kyso.db import Database, signing_sessions
from kyso.errors import Forbidden, NotFound, SessionExpired, SessionUsed
from kyso.sessions.state import FORGET_AFTER_SECONDS


def insert_session(
    conn: Connection, session_id: str, client: str | None, expires_at: float, state: dict[str, Any]
) -> None:
    """Store a new session, and forget those that expired long ago."""
    forgotten = time.time() - FORGET_AFTER_SECONDS
    conn.execute(delete(signing_sessions).where(signing_sessions.c.expires_at < forgotten))
    conn.execute(
        insert(signing_sessions).values(
            id=session_id,
            client=client,
            expires_at=expires_at,
            used=False,
            state=json.dumps(state).encode("utf-8"),
        )
    )


def open_session(db: Database, client: str | None, session_id: str) -> Any:
    """The session, refused if unknown, another client's, used or expired."""
    with db.reader.connect() as conn:
        row = conn.execute(
            select(signing_sessions).where(signing_sessions.c.id == session_id)
        ).first()
    if row is None:
        raise NotFound(f"no signing session {session_id!r}")
    if row.client != client:
        raise Forbidden(
            "this signing session was started by another client; only that client may complete it"
        )
    if row.used:
        raise SessionUsed("this signing session was completed already; start a new one")
    if row.expires_at < time.time():
        raise SessionExpired("this signing session has expired; start a new one and sign again")
    return row


def claim(conn: Connection, session_id: str) -> None:
    """Mark the session used, atomically: only one completion finds it unused."""
    claimed = conn.execute(
        update(signing_sessions)
        .where(signing_sessions.c.id == session_id, signing_sessions.c.used.is_(False))
        .values(used=True, state=b"{}")  # the prepared documents are not needed any more
    )
    if claimed.rowcount != 1:
        raise SessionUsed("this signing session was completed already; start a new one")




def find_session(db: Database, client: str | None, session_id: str) -> Any:
    """The session whatever its state, refused if unknown or another client's."""
    with db.reader.connect() as conn:
        row = conn.execute(
            select(signing_sessions).where(signing_sessions.c.id == session_id)
        ).first()
    if row is None:
        raise NotFound(f"no signing session {session_id!r}")
    if row.client != client:
        raise Forbidden("this signing session was started by another client")
    return row
