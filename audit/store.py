"""Appending to and reading the audit log in the database: entries, proofs, checkpoints.

An append is one transaction: lock the chain head, number the entry, hash it, insert
it with its Merkle nodes and whatever the caller must record with it (the record
registry row, the idempotency result), move the head, commit. Nothing is acknowledged
before that commit, and nothing half-written survives a failure inside it.

The lock is the database's, never the process's, so that every worker of every host
writes one chain: SQLite's ``BEGIN IMMEDIATE`` (:mod:`kyso.db`), and on PostgreSQL
``SELECT ... FOR UPDATE`` of the singleton ``audit_head`` row. Under READ COMMITTED a
second appender blocks on that row and, once the first commits, reads its new version
(size and head hash): there is no "read the tail, then insert" window to fork in.

Proofs and roots read only the O(log n) perfect-subtree hashes they need from
``merkle_nodes`` (written with each entry), all in one query: the nodes a proof reads
depend only on the sizes (:func:`kyso.audit.merkle.nodes_needed`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from kyso.audit.entry import GENESIS_PREV_HASH, format_time, line_hash
from kyso.audit.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    nodes_completed_by,
    nodes_needed,
    tree_root,
)
from kyso.audit.node_rows import fetch_nodes, left_siblings
from kyso.db import Database, audit_entries, audit_head, checkpoints, merkle_nodes, signatures
from kyso.errors import InvalidRequest, NotFound
from kyso.formats import canonical_json

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
    seq: int
    entry: dict[str, Any]
    entry_hash: str


@dataclass(frozen=True)
class TreeState:
    """The log at one size: its Merkle root and the entry hash of its last entry (hex)."""

    tree_size: int
    root_hash: bytes
    chain_head: str


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
    appended = AppendedEntry(seq, entry, leaf.hex())
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


class AuditLog:
    """The hash-chained, Merkle-tree audit log over one database."""

    def __init__(self, db: Database):
        self.db = db
        # Called with (new tree size, entries appended) after each append has committed:
        # how the checkpointer learns that a multiple of checkpoint_every was reached.
        self.listeners: list[Callable[[int, int], None]] = []

    def append(
        self,
        draft: EntryDraft,
        with_entry: Callable[[Connection, AppendedEntry], None] | None = None,
    ) -> AppendedEntry:
        """Append one entry; ``with_entry`` writes rows that must commit with it."""

        def with_entries(conn: Connection, appended: list[AppendedEntry]) -> None:
            if with_entry is not None:
                with_entry(conn, appended[0])

        return self.append_many([draft], with_entries)[0]

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
        with self.db.writer.begin() as conn:
            head = conn.execute(_LOCK_HEAD).one()
            appended: list[AppendedEntry] = []
            seq, prev_hash = head.size, head.head_hash
            for draft in drafts:
                appended.append(_insert_entry(conn, draft, seq, prev_hash))
                seq, prev_hash = seq + 1, appended[-1].entry_hash
            if with_entries is not None:
                with_entries(conn, appended)
            conn.execute(_MOVE_HEAD, {"new_size": seq, "new_head": prev_hash})
        for listener in self.listeners:
            try:
                listener(seq, len(drafts))
            except Exception:  # the entries are committed; a listener must not make them an error
                log.exception("audit append listener failed")
        return appended

    # -- Merkle roots and proofs -------------------------------------------------

    def state(self, tree_size: int | None = None) -> TreeState:
        """Root and chain head of the log at ``tree_size`` (default: now), read consistently."""
        with self.db.reader.connect() as conn:
            size = self._size(conn)
            if tree_size is None:
                tree_size = size
            self._check_size("tree_size", tree_size, size)
            if tree_size == 0:
                return TreeState(0, EMPTY_ROOT, GENESIS_PREV_HASH)
            nodes = fetch_nodes(conn, [*nodes_needed(tree_root, tree_size), (0, tree_size - 1)])
            return TreeState(
                tree_size, tree_root(nodes, tree_size), nodes.node(0, tree_size - 1).hex()
            )

    def inclusion(self, seq: int, tree_size: int | None = None) -> dict[str, Any]:
        """RFC 9162 inclusion proof of entry ``seq`` in the tree of ``tree_size`` (default: now).

        ``{"leaf_index", "tree_size", "root_hash", "hashes"}`` (hex). ``InvalidRequest``
        for a seq outside the tree, ``NotFound`` for a tree larger than the log.
        """
        with self.db.reader.connect() as conn:
            size = self._size(conn)
            tree_size = size if tree_size is None else tree_size
            self._check_size("tree_size", tree_size, size)
            if not 0 <= seq < tree_size:
                raise InvalidRequest(
                    f"seq {seq} is not in a tree of size {tree_size} (0 <= seq < tree_size)"
                )
            needed = nodes_needed(tree_root, tree_size) + nodes_needed(
                inclusion_proof, seq, tree_size
            )
            nodes = fetch_nodes(conn, needed)
        return {
            "leaf_index": seq,
            "tree_size": tree_size,
            "root_hash": tree_root(nodes, tree_size).hex(),
            "hashes": [h.hex() for h in inclusion_proof(nodes, seq, tree_size)],
        }

    def consistency(self, first: int, second: int | None = None) -> dict[str, Any]:
        """RFC 9162 consistency proof from tree size ``first`` to ``second`` (default: now).

        ``{"first", "second", "first_root", "second_root", "hashes"}`` (hex); empty
        ``hashes`` when the sizes are equal. ``InvalidRequest`` unless
        ``0 < first <= second``, ``NotFound`` for a tree larger than the log.
        """
        with self.db.reader.connect() as conn:
            size = self._size(conn)
            second = size if second is None else second
            self._check_size("second", second, size)
            if not 0 < first <= second:
                raise InvalidRequest(
                    f"no consistency proof from tree size {first} to {second}: "
                    "it needs 0 < first <= second (RFC 9162 has none from the empty tree)"
                )
            needed = (
                nodes_needed(tree_root, first)
                + nodes_needed(tree_root, second)
                + nodes_needed(consistency_proof, first, second)
            )
            nodes = fetch_nodes(conn, needed)
        return {
            "first": first,
            "second": second,
            "first_root": tree_root(nodes, first).hex(),
            "second_root": tree_root(nodes, second).hex(),
            "hashes": [h.hex() for h in consistency_proof(nodes, first, second)],
        }

    @staticmethod
    def _size(conn: Connection) -> int:
        return conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1)).scalar_one()

    @staticmethod
    def _check_size(name: str, tree_size: int, size: int) -> None:
        if tree_size < 0:
            raise InvalidRequest(f"{name} must not be negative")
        if tree_size > size:
            raise NotFound(f"{name} {tree_size} is beyond the log, which holds {size} entries")

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

    def checkpoint(self, tree_size: int) -> dict[str, Any] | None:
        """The stored checkpoint at ``tree_size``, if any."""
        with self.db.reader.connect() as conn:
            text = conn.execute(
                select(checkpoints.c.document).where(checkpoints.c.tree_size == tree_size)
            ).scalar()
        return None if text is None else json.loads(text)

    def latest_checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint with the largest tree size, or None before the first."""
        with self.db.reader.connect() as conn:
            text = conn.execute(
                select(checkpoints.c.document).order_by(checkpoints.c.tree_size.desc()).limit(1)
            ).scalar()
        return None if text is None else json.loads(text)

    def latest_checkpoint_mark(self) -> tuple[int, datetime] | None:
        """(tree_size, created) of the latest checkpoint: what the checkpointer's schedule needs."""
        with self.db.reader.connect() as conn:
            row = conn.execute(
                select(checkpoints.c.tree_size, checkpoints.c.created)
                .order_by(checkpoints.c.tree_size.desc())
                .limit(1)
            ).first()
        if row is None:
            return None
        created = row.created if row.created.tzinfo else row.created.replace(tzinfo=UTC)
        return row.tree_size, created

    # -- reading -------------------------------------------------------------------

    def size(self) -> int:
        with self.db.reader.connect() as conn:
            return conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1)).scalar_one()

    def entries(self, after: int = -1, limit: int = 100) -> list[dict[str, Any]]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.canonical)
                .where(audit_entries.c.seq > after)
                .order_by(audit_entries.c.seq)
                .limit(limit)
            )
            return [json.loads(r.canonical) for r in rows]

    def export_lines(self, batch: int = 1000) -> Iterator[bytes]:
        """The log as JSON Lines: entries (the exact hashed bytes), then checkpoints.

        The export is the log as it stood when it began: the entries below the size read
        then, and the checkpoints of at most that size. Entries and checkpoints written
        while it streams are left for the next export; a checkpoint beyond the exported
        entries would otherwise say that they were cut off.
        """
        with self.db.reader.connect() as conn:
            size = self._size(conn)
        after = -1
        while after + 1 < size:
            with self.db.reader.connect() as conn:
                rows = conn.execute(
                    select(audit_entries.c.seq, audit_entries.c.canonical)
                    .where(audit_entries.c.seq > after, audit_entries.c.seq < size)
                    .order_by(audit_entries.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                break
            for r in rows:
                yield r.canonical.encode("utf-8") + b"\n"
            after = rows[-1].seq
        with self.db.reader.connect() as conn:
            documents = conn.execute(
                select(checkpoints.c.document)
                .where(checkpoints.c.tree_size <= size)
                .order_by(checkpoints.c.tree_size)
            )
            for r in documents:
                yield r.document.encode("utf-8") + b"\n"

    def record_signatures(self, record_id: str) -> list[dict[str, Any]]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                select(signatures)
                .where(signatures.c.record_id == record_id)
                .order_by(signatures.c.audit_seq)
            )
            return [
                {
                    "audit_seq": r.audit_seq,
                    "time": r.time,
                    "key": r.key,
                    "level": r.level,
                    "document_sha256": r.document_sha256,
                    "signature_sha256": r.signature_sha256,
                    "extend_before": r.extend_before,
                }
                for r in rows
            ]

    def records_due(self, before: datetime, limit: int = 1000) -> list[dict[str, Any]]:
        """Records whose newest signed PDF must be extended before ``before``, soonest first.

        Only the newest registered PDF of each record counts: it is the one an archive keeps
        (each signature or extension returns a new file holding everything before it).
        """
        newest = (
            select(signatures.c.record_id, func.max(signatures.c.audit_seq).label("seq"))
            .where(signatures.c.kind == "pdf", signatures.c.record_id.is_not(None))
            .group_by(signatures.c.record_id)
            .subquery()
        )
        query = (
            select(signatures)
            .join(newest, signatures.c.audit_seq == newest.c.seq)
            .where(signatures.c.extend_before < _iso_seconds(before))
            .order_by(signatures.c.extend_before, signatures.c.audit_seq)
            .limit(limit)
        )
        with self.db.reader.connect() as conn:
            return [
                {
                    "record_id": r.record_id,
                    "audit_seq": r.audit_seq,
                    "level": r.level,
                    "signature_sha256": r.signature_sha256,
                    "extend_before": r.extend_before,
                }
                for r in conn.execute(query)
            ]

    def find_signature(self, signature_sha256: str) -> dict[str, Any] | None:
        """The registry row of a signed output, by the SHA-256 of what was returned."""
        with self.db.reader.connect() as conn:
            r = conn.execute(
                select(signatures).where(signatures.c.signature_sha256 == signature_sha256)
            ).first()
            return None if r is None else {"audit_seq": r.audit_seq, "record_id": r.record_id}


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
            record_id=e["record_id"],
            time=e["time"],
            key=e["key"],  # None for an extension: no key alias of ours signed it
            kind=kind,
            level=level,
            document_sha256=e["document_sha256"],
            signature_sha256=e["signature_sha256"],
            extend_before=_iso_seconds(extend_before),
        )
    )


def _iso_seconds(moment: datetime | None) -> str | None:
    """``moment`` as ``YYYY-MM-DDThh:mm:ssZ`` (UTC), which sorts as it compares."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
