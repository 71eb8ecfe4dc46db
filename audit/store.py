"""Appending to the audit log: entries, with what must commit with them, and checkpoints.

Appends are group-committed (:mod:`kyso.audit.group_commit`): the appends that the
threads of one process make at the same time share one transaction and one commit.
One caller leads it: lock the chain head once, number and hash every entry in memory,
insert them all and the Merkle nodes they complete (one statement each), run each caller's
writes (the record registry row, a session, an idempotency reservation's fulfilment) on
the same connection, move the head, commit once. Each caller returns only once the
commit holding its entries is done: nothing is acknowledged before it is durable. A
caller whose writes raise gets that error and leaves nothing behind (the transaction
goes back to a savepoint and is written again without it); if the commit fails, every
caller of the transaction gets the error.

The lock that makes one chain is the database's, never the process's, so that every
worker of every host writes one chain: SQLite's ``BEGIN IMMEDIATE`` (:mod:`kyso.db`,
which also makes a host's processes queue on a lock file beside the database), and on
PostgreSQL ``SELECT ... FOR UPDATE`` of the singleton ``audit_head`` row. Under READ
COMMITTED a second transaction blocks on that row and, once the first commits, reads its
new version (size and head hash): there is no "read the tail, then insert" window to
fork in.

Reading the log (proofs, entries, the export, the registry) is :mod:`kyso.audit.reads`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import Connection, bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from kyso.audit.entry import entry_canonical, format_time, line_hash
from kyso.audit.group_commit import Combiner, Waiting
from kyso.audit.node_rows import nodes_completed_by_leaves
from kyso.audit.reads import LogReader
from kyso.audit.rows import LoggedEntry, TreeState, iso_seconds
from kyso.db import Database, audit_entries, audit_head, checkpoints, merkle_nodes, signatures
from kyso.formats import canonical_json

__all__ = ["AppendedEntry", "AuditLog", "EntryDraft", "TreeState", "register_signature"]

log = logging.getLogger(__name__)

OUTCOMES = ("ok", "denied", "error")

T = TypeVar("T")


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


def _new_entry(draft: EntryDraft, seq: int, prev_hash: str) -> tuple[AppendedEntry, dict[str, Any]]:
    """Number and hash one entry; the entry and its ``audit_entries`` row."""
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
    canonical = entry_canonical(entry)
    appended = AppendedEntry(seq, LoggedEntry.from_json(entry), line_hash(canonical).hex())
    row = {
        "seq": seq,
        "entry_hash": appended.entry_hash,
        "time": entry["time"],
        "action": draft.action,
        "actor": draft.actor,
        "record_id": draft.record_id,
        "document_sha256": draft.document_sha256,
        "signature_sha256": draft.signature_sha256,
        "canonical": canonical.decode("utf-8"),
    }
    return appended, row


def _insert_entries(
    conn: Connection, drafts: Sequence[EntryDraft], size: int, head_hash: str
) -> list[AppendedEntry]:
    """Number, hash and insert ``drafts`` as entries ``size``, ``size + 1``, ... after the
    entry ``head_hash``, with the Merkle nodes they complete: one insert each, after one
    read of the stored left siblings (head lock held)."""
    appended: list[AppendedEntry] = []
    rows: list[dict[str, Any]] = []
    for draft in drafts:
        entry, row = _new_entry(draft, size + len(appended), head_hash)
        appended.append(entry)
        rows.append(row)
        head_hash = entry.entry_hash
    leaves = [bytes.fromhex(a.entry_hash) for a in appended]
    conn.execute(_INSERT_ENTRY, rows)
    nodes = nodes_completed_by_leaves(conn, size, leaves)
    conn.execute(_INSERT_NODES, [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in nodes])
    return appended


class AppendBatch:
    """The entries of one :meth:`AuditLog.appending` transaction, appended in order under
    the head lock.

    ``conn`` is the transaction's connection: rows written on it commit with the entries
    or not at all (:func:`register_signature`, a session, an idempotency reservation).
    """

    def __init__(self, conn: Connection, size: int, head_hash: str) -> None:
        self.conn = conn
        self.size = size  # the tree size after the entries appended so far
        self.head_hash = head_hash
        self.appended: list[AppendedEntry] = []

    def append(self, draft: EntryDraft) -> AppendedEntry:
        _check_outcomes([draft])
        (appended,) = _insert_entries(self.conn, [draft], self.size, self.head_hash)
        self.appended.append(appended)
        self.size, self.head_hash = self.size + 1, appended.entry_hash
        return appended


class _Append(Waiting, Generic[T]):
    """One caller's append waiting for a group commit: its drafts and what it writes with
    them; once done, its entries and what ``write`` returned."""

    def __init__(
        self, drafts: Sequence[EntryDraft], write: Callable[[Connection, list[AppendedEntry]], T]
    ) -> None:
        super().__init__()
        self.drafts = drafts
        self.write = write
        self.appended: list[AppendedEntry] = []
        self.result: T | None = None


class _WriteFailed(Exception):
    """A caller's ``write`` raised: that caller alone fails."""

    def __init__(self, request: _Append[Any], error: Exception) -> None:
        super().__init__(str(error))
        self.request, self.error = request, error


def _nothing(conn: Connection, appended: list[AppendedEntry]) -> None:
    return None


def _check_outcomes(drafts: Sequence[EntryDraft]) -> None:
    for draft in drafts:
        if draft.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")


class AuditLog(LogReader):
    """The hash-chained, Merkle-tree audit log over one database (reads: :class:`LogReader`)."""

    def __init__(self, db: Database, max_batch: int = 64):
        super().__init__(db)
        # Called with (new tree size, entries appended) after each append has committed:
        # how the checkpointer learns that a multiple of checkpoint_every was reached.
        self.listeners: list[Callable[[int, int], None]] = []
        self._combiner: Combiner[_Append[Any]] = Combiner(self._commit_group, max_batch)

    def waiting_appends(self) -> int:
        """How many appends of this process wait for the next group commit."""
        return self._combiner.queued()

    def append(
        self,
        draft: EntryDraft,
        with_entry: Callable[[Connection, AppendedEntry], None] | None = None,
    ) -> AppendedEntry:
        """Append one entry; ``with_entry`` writes rows that must commit with it."""
        if with_entry is None:
            return self.append_many([draft])[0]
        write = with_entry
        return self.append_many([draft], lambda conn, appended: write(conn, appended[0]))[0]

    def append_many(
        self,
        drafts: Sequence[EntryDraft],
        with_entries: Callable[[Connection, list[AppendedEntry]], None] | None = None,
    ) -> list[AppendedEntry]:
        """Append ``drafts`` in order as consecutive entries, in one transaction: all of them
        (with what ``with_entries`` writes) or none."""
        return self.append_and_write(drafts, with_entries or _nothing)[0]

    def append_and_write(
        self, drafts: Sequence[EntryDraft], write: Callable[[Connection, list[AppendedEntry]], T]
    ) -> tuple[list[AppendedEntry], T]:
        """Append ``drafts`` as consecutive entries and ``write(conn, entries)`` the rows that
        must commit with them; return the entries and what ``write`` returned, once
        committed.

        Appends that arrive together share one transaction and one commit (the module
        docstring). ``write`` runs in that transaction, perhaps on another caller's thread
        and perhaps more than once (the last run is the one committed): it must write on
        ``conn`` only, and rely on nothing thread-local. If it raises, this call raises
        that and writes nothing; the other appends of the transaction commit.
        """
        if not drafts:
            raise ValueError("nothing to append")
        _check_outcomes(drafts)
        request = _Append(drafts, write)
        self._combiner.submit(request)
        return request.appended, cast(T, request.result)

    def _commit_group(self, requests: list[_Append[Any]]) -> None:
        """One transaction for ``requests``: their entries in order under one hold of the
        head lock, each one's writes, one commit. A request whose writes fail is left out
        (rolled back to a savepoint, the others written again without it)."""
        pending = list(requests)
        with self.db.writing() as conn:
            head = conn.execute(_LOCK_HEAD).one()
            size, head_hash = head.size, head.head_hash
            while pending:
                try:
                    size, head_hash = self._write_group(conn, pending, head.size, head.head_hash)
                    break
                except _WriteFailed as failed:
                    failed.request.error = failed.error
                    pending.remove(failed.request)
            if pending:
                conn.execute(_MOVE_HEAD, {"new_size": size, "new_head": head_hash})
        if pending:
            self._notify(size, size - head.size)

    def _write_group(
        self, conn: Connection, requests: list[_Append[Any]], size: int, head_hash: str
    ) -> tuple[int, str]:
        """Insert the entries of ``requests`` after entry ``size - 1`` and run their writes;
        the new size and head. With several requests of which some write, inside a
        savepoint: one whose writes raise is named (:class:`_WriteFailed`) once the
        savepoint is rolled back."""
        writes = any(request.write is not _nothing for request in requests)
        savepoint = conn.begin_nested() if writes and len(requests) > 1 else None
        drafts = [draft for request in requests for draft in request.drafts]
        appended = _insert_entries(conn, drafts, size, head_hash)
        start = 0
        for request in requests:
            request.appended = appended[start : start + len(request.drafts)]
            start += len(request.drafts)
            if request.write is _nothing:
                continue
            try:
                request.result = request.write(conn, request.appended)
            except Exception as exc:
                if savepoint is None:
                    raise
                savepoint.rollback()
                raise _WriteFailed(request, exc) from exc
        if savepoint is not None:
            savepoint.commit()
        return size + len(appended), appended[-1].entry_hash

    @contextmanager
    def appending(self) -> Iterator[AppendBatch]:
        """One append transaction of its own, not grouped with others: ``batch.append(draft)``
        for each entry, rows that must commit with them on ``batch.conn``; committed when
        the block ends, rolled back (nothing written) if it raises. Prefer
        :meth:`append_and_write`, which shares commits."""
        with self.db.writing() as conn:
            head = conn.execute(_LOCK_HEAD).one()
            batch = AppendBatch(conn, head.size, head.head_hash)
            yield batch
            if batch.appended:
                conn.execute(_MOVE_HEAD, {"new_size": batch.size, "new_head": batch.head_hash})
        if batch.appended:
            self._notify(batch.size, len(batch.appended))

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
            with self.db.writing() as conn:
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
