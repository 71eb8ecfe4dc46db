"""Who may add a signature to a record that already has one.

A record (``record_id``) belongs to the API client whose signature registered it first.
Another client may add a signature to it, sign it in a session, or extend it (which
changes when it is due: :mod:`kyso.signer.archive_dates`) only when both are named in one
of the ``[records] groups`` of the configuration, for systems that share records (the main
HIS and the archive that extends its PDFs, a laboratory system that co-signs). Anyone else
is ``403 forbidden``, audited. The local operator (the command line) is not bound by it.

The check runs before the work (so that a refused call costs no signature and no
timestamp) and again in the transaction that registers the signature, where appends are
serialised: of two clients that race for a new record, the second is refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, select

from kyso.db import audit_entries, signatures
from kyso.errors import Forbidden


@dataclass(frozen=True)
class RecordSharing:
    """The groups of clients that share their records."""

    groups: tuple[frozenset[str], ...] = ()

    @classmethod
    def of(cls, groups: Iterable[Iterable[str]]) -> RecordSharing:
        return cls(tuple(frozenset(group) for group in groups))

    def may_add(self, owner: str | None, client: str | None) -> bool:
        """Whether ``client`` may sign for a record that ``owner`` registered."""
        if owner is None or owner == client:
            return True
        return any(owner in group and client in group for group in self.groups)


def record_owner(conn: Connection, record_id: str) -> str | None:
    """The client whose signature registered ``record_id`` first; None for a new record."""
    return conn.execute(
        select(audit_entries.c.actor)
        .join(signatures, signatures.c.audit_seq == audit_entries.c.seq)
        .where(signatures.c.record_id == record_id)
        .order_by(signatures.c.audit_seq)
        .limit(1)
    ).scalar()


def check_may_add(
    conn: Connection, record_ids: Iterable[str | None], client: str | None, sharing: RecordSharing
) -> None:
    """Refuse (``forbidden``) a client that may not sign for one of ``record_ids``."""
    for record_id in dict.fromkeys(r for r in record_ids if r is not None):
        owner = record_owner(conn, record_id)
        if not sharing.may_add(owner, client):
            raise Forbidden(
                f"record {record_id!r} belongs to client {owner!r}, which registered it first; "
                f"client {client!r} may add to it only if both are in one of the "
                "[records] groups of the configuration"
            )
