"""Appending to the audit log: entries, with what must commit with them, and checkpoints.

An append is one transaction (:meth:`AuditLog.appending`): lock the chain head, number
each entry, hash it, insert it with its Merkle nodes, write whatever must be recorded
with it (the record registry row, a session, an idempotency reservation's fulfilment),
move the head, commit. Nothing is acknowledged before that commit, and nothing
half-written survives a failure inside it.

The lock is the database's, never the process's, so that every worker of every host
writes one chain: SQLite's ``BEGIN IMMEDIATE`` (:mod:`kyso.db`), and on PostgreSQL
``SELECT ... FOR UPDATE`` of the singleton ``audit_head`` row. Under READ COMMITTED a
second appender blocks on that row and, once the first commits, reads its new version
(size and head hash): there is no "read the tail, then insert" window to fork in.

Reading the log (proofs, entries, the export, the registry) is :mod:`kyso.audit.reads`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from kyso.audit.entry import format_time, line_hash
from kyso.audit.merkle import nodes_completed_by
from kyso.audit.node_rows import fetch_nodes, left_siblings
from kyso.audit.reads import LogReader
from kyso.audit.rows import LoggedEntry, TreeState, iso_seconds
from kyso.db import Database, audit_entries, audit_head, checkpoints, merkle_nodes, signatures
from kyso.formats import canonical_json

__all__ = ["AppendedEntry", "AuditLog", "EntryDraft", "TreeState", "register_signature"]

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "denied", "error")


@dataclass
class EntryDraft:
    """What a caller knows of an entry; the log adds seq, time and prev_hash."""

    action: str
    actor: str | None
    outcome: str = "ok"
    key: str | None = None
    record_id: str | None = None
    document_sha256: str | None = None
    signature_sha256: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AppendedEntry:
    """An entry as appended: its number, the hashed entry and its hash (hex)."""

    seq: int
    entry: LoggedEntry
    entry_hash: str


# Built once: SQLAlchemy then compiles and caches each statement once, which matters
# when an append costs a few milliseconds.
_LOCK_HEAD = (
    select(audit_head.c.size, audit_head.c.head_hash).where(audit_head.c.id == 1).with_for_update()
)
_MOVE_HEAD = (
    update(audit_head)
    .where(audit_head.c.id == 1)
    .values(size=bindparam("new_size"), head_hash=bindparam("new_head"))
)
_INSERT_ENTRY = insert(audit_entries)
_INSERT_NODES = insert(merkle_nodes)


def _insert_entry(conn: Connection, draft: EntryDraft, seq: int, prev_hash: str) -> AppendedEntry:
    """Number, hash and insert one entry with the Merkle nodes it completes (head lock held)."""
    entry = {
        "seq": seq,
        "time": format_time(datetime.now(UTC)),
        "actor": draft.actor,
        "action": draft.action,
        "key": draft.key,
        "record_id": draft.record_id,
        "document_sha256": draft.document_sha256,
        "signature_sha256": draft.signature_sha256,
        "outcome": draft.outcome,
        "detail": draft.detail,
        "prev_hash": prev_hash,
    }
    canonical = canonical_json(entry)
    leaf = line_hash(canonical)
    appended = AppendedEntry(seq, LoggedEntry.from_json(entry), leaf.hex())
    conn.execute(
        _INSERT_ENTRY,
        {
            "seq": seq,
            "entry_hash": appended.entry_hash,
            "time": entry["time"],
            "action": draft.action,
            "actor": draft.actor,
            "record_id": draft.record_id,
            "document_sha256": draft.document_sha256,
            "signature_sha256": draft.signature_sha256,
            "canonical": canonical.decode("utf-8"),
        },
    )
    completed = nodes_completed_by(fetch_nodes(conn, left_siblings(seq)), seq, leaf)
    conn.execute(_INSERT_NODES, [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in completed])
    return appended


class AppendBatch:
    """The entries of one append transaction, appended in order under the head lock.

    ``conn`` is the transaction's connection: rows written on it commit with the entries
    or not at all (:func:`register_signature`, a session, an idempotency reservation).
    """

    def __init__(self, conn: Connection, size: int, head_hash: str) -> None:
        self.conn = conn
        self.size = size  # the tree size after the entries appended so far
        self.head_hash = head_hash
        self.appended: list[AppendedEntry] = []

    def append(self, draft: EntryDraft) -> AppendedEntry:
        if draft.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        appended = _insert_entry(self.conn, draft, self.size, self.head_hash)
        self.appended.append(appended)
        self.size, self.head_hash = self.size + 1, appended.entry_hash
        return appended


class AuditLog(LogReader):
    """The hash-chained, Merkle-tree audit log over one database (reads: :class:`LogReader`)."""

    def __init__(self, db: Database):
        super().__init__(db)
        # Called with (new tree size, entries appended) after each append has committed:
        # how the checkpointer learns that a multiple of checkpoint_every was reached.
        self.listeners: list[Callable[[int, int], None]] = []

    @contextmanager
    def appending(self) -> Iterator[AppendBatch]:
        """One append transaction: ``batch.append(draft)`` for each entry, rows that must
        commit with them on ``batch.conn``; committed when the block ends, rolled back
        (nothing written) if it raises."""
        with self.db.writer.begin() as conn:
            head = conn.execute(_LOCK_HEAD).one()
            batch = AppendBatch(conn, head.size, head.head_hash)
            yield batch
            if batch.appended:
                conn.execute(_MOVE_HEAD, {"new_size": batch.size, "new_head": batch.head_hash})
        if batch.appended:
            self._notify(batch.size, len(batch.appended))

    def append(
        self,
        draft: EntryDraft,
        with_entry: Callable[[Connection, AppendedEntry], None] | None = None,
    ) -> AppendedEntry:
        """Append one entry; ``with_entry`` writes rows that must commit with it."""
        with self.appending() as batch:
            appended = batch.append(draft)
            if with_entry is not None:
                with_entry(batch.conn, appended)
        return appended

    def append_many(
        self,
        drafts: Sequence[EntryDraft],
        with_entries: Callable[[Connection, list[AppendedEntry]], None] | None = None,
    ) -> list[AppendedEntry]:
        """Append ``drafts`` in order as consecutive entries, in ONE transaction under one hold
        of the head lock: all of them (with what ``with_entries`` writes) or none."""
        if not drafts:
            raise ValueError("nothing to append")
        for draft in drafts:
            if draft.outcome not in OUTCOMES:
                raise ValueError(f"outcome must be one of {OUTCOMES}")
        with self.appending() as batch:
            appended = [batch.append(draft) for draft in drafts]
            if with_entries is not None:
                with_entries(batch.conn, appended)
        return appended

    def _notify(self, size: int, count: int) -> None:
        for listener in self.listeners:
            try:
                listener(size, count)
            except Exception:  # the entries are committed; a listener must not make them an error
                log.exception("audit append listener failed")

    # -- checkpoints -------------------------------------------------------------

    def add_checkpoint(self, document: dict[str, Any], created: datetime) -> dict[str, Any]:
        """Store a checkpoint; if one exists at its tree size already, that one is kept and returned."""
        try:
            with self.db.writer.begin() as conn:
                conn.execute(
                    insert(checkpoints).values(
                        tree_size=document["tree_size"],
                        created=created,
                        document=canonical_json(document).decode("utf-8"),
                    )
                )
        except IntegrityError:  # another worker or host made the same one first
            existing = self.checkpoint(document["tree_size"])
            if existing is None:
                raise
            return existing
        return document


def register_signature(
    conn: Connection,
    appended: AppendedEntry,
    kind: str,
    level: str,
    extend_before: datetime | None = None,
) -> None:
    """The record registry row of a signature, written in the audit entry's transaction;
    ``extend_before`` is when a signed PDF must be extended again
    (:mod:`kyso.signer.archive_dates`)."""
    e = appended.entry
    conn.execute(
        insert(signatures).values(
            audit_seq=appended.seq,
            record_id=e.record_id,
            time=e.time,
            key=e.key,  # None for an extension: no key alias of ours signed it
            kind=kind,
            level=level,
            document_sha256=e.document_sha256,
            signature_sha256=e.signature_sha256,
            extend_before=iso_seconds(extend_before),
        )
    )
