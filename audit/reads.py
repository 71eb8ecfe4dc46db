"""Reading the audit log: roots and proofs, checkpoints, entries, the export, the registry.

Nothing here writes (:mod:`kyso.audit.store` appends). Proofs and roots read only the
O(log n) perfect-subtree hashes they need from ``merkle_nodes`` (written with each entry),
all in one query: the nodes a proof reads depend only on the sizes
(:func:`kyso.audit.merkle.nodes_needed`). Every answer is a typed row
(:mod:`kyso.audit.rows`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select

from kyso.audit.entry import GENESIS_PREV_HASH
from kyso.audit.merkle import (
    EMPTY_ROOT,
    consistency_proof,
    inclusion_proof,
    nodes_needed,
    tree_root,
)
from kyso.audit.node_rows import fetch_nodes
from kyso.audit.rows import (
    ConsistencyProof,
    DueRecord,
    InclusionProof,
    ListedRecord,
    LoggedEntry,
    RecordFilter,
    RecordSignature,
    Registration,
    TreeState,
    iso_seconds,
)
from kyso.db import Database, audit_entries, audit_head, checkpoints, signatures
from kyso.errors import InvalidRequest, NotFound


class LogReader:
    """Read-only access to the audit log and the record registry of one database."""

    def __init__(self, db: Database):
        self.db = db

    # -- Merkle roots and proofs -------------------------------------------------

    def state(self, tree_size: int | None = None) -> TreeState:
        """Root and chain head of the log at ``tree_size`` (default: now), read consistently."""
        with self.db.reader.connect() as conn:
            size = _size(conn)
            if tree_size is None:
                tree_size = size
            _check_size("tree_size", tree_size, size)
            if tree_size == 0:
                return TreeState(0, EMPTY_ROOT, GENESIS_PREV_HASH)
            nodes = fetch_nodes(conn, [*nodes_needed(tree_root, tree_size), (0, tree_size - 1)])
            return TreeState(
                tree_size, tree_root(nodes, tree_size), nodes.node(0, tree_size - 1).hex()
            )

    def inclusion(self, seq: int, tree_size: int | None = None) -> InclusionProof:
        """RFC 9162 inclusion proof of entry ``seq`` in the tree of ``tree_size`` (default: now).

        ``InvalidRequest`` for a seq outside the tree, ``NotFound`` for a tree larger than
        the log.
        """
        with self.db.reader.connect() as conn:
            size = _size(conn)
            tree_size = size if tree_size is None else tree_size
            _check_size("tree_size", tree_size, size)
            if not 0 <= seq < tree_size:
                raise InvalidRequest(
                    f"seq {seq} is not in a tree of size {tree_size} (0 <= seq < tree_size)"
                )
            needed = nodes_needed(tree_root, tree_size) + nodes_needed(
                inclusion_proof, seq, tree_size
            )
            nodes = fetch_nodes(conn, needed)
        return InclusionProof(
            leaf_index=seq,
            tree_size=tree_size,
            root_hash=tree_root(nodes, tree_size).hex(),
            hashes=[h.hex() for h in inclusion_proof(nodes, seq, tree_size)],
        )

    def consistency(self, first: int, second: int | None = None) -> ConsistencyProof:
        """RFC 9162 consistency proof from tree size ``first`` to ``second`` (default: now).

        Empty ``hashes`` when the sizes are equal. ``InvalidRequest`` unless
        ``0 < first <= second``, ``NotFound`` for a tree larger than the log.
        """
        with self.db.reader.connect() as conn:
            size = _size(conn)
            second = size if second is None else second
            _check_size("second", second, size)
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
        return ConsistencyProof(
            first=first,
            second=second,
            first_root=tree_root(nodes, first).hex(),
            second_root=tree_root(nodes, second).hex(),
            hashes=[h.hex() for h in consistency_proof(nodes, first, second)],
        )

    # -- checkpoints (signed documents, returned as they were stored) ----------------

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

    # -- entries and the export ----------------------------------------------------------

    def size(self) -> int:
        with self.db.reader.connect() as conn:
            return _size(conn)

    def entries(self, after: int = -1, limit: int = 100) -> list[LoggedEntry]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                select(audit_entries.c.canonical)
                .where(audit_entries.c.seq > after)
                .order_by(audit_entries.c.seq)
                .limit(limit)
            )
            return [LoggedEntry.from_json(json.loads(r.canonical)) for r in rows]

    def export_lines(self, batch: int = 1000, size: int | None = None) -> Iterator[bytes]:
        """The log as JSON Lines: entries (the exact hashed bytes), then checkpoints.

        The export is the log as it stood when it began (or at ``size``, the tree size a
        checkpoint was just made at, so that the export ends with it): the entries below
        that size, and the checkpoints of at most that size. Entries and checkpoints written
        while it streams are left for the next export; a checkpoint beyond the exported
        entries would otherwise say that they were cut off.
        """
        size = self.size() if size is None else size
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

    # -- the record registry -----------------------------------------------------------

    def record_signatures(self, record_id: str) -> list[RecordSignature]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                select(signatures)
                .where(signatures.c.record_id == record_id)
                .order_by(signatures.c.audit_seq)
            )
            return [
                RecordSignature(
                    audit_seq=r.audit_seq,
                    time=r.time,
                    key=r.key,
                    level=r.level,
                    document_sha256=r.document_sha256,
                    signature_sha256=r.signature_sha256,
                    extend_before=r.extend_before,
                )
                for r in rows
            ]

    def records(self, which: RecordFilter, limit: int = 100) -> list[ListedRecord]:
        """Records by their newest signature, newest first: at most ``limit`` of ``which``."""
        query = (
            _newest_signatures(which, pdf_only=False)
            .order_by(signatures.c.audit_seq.desc())
            .limit(limit)
        )
        with self.db.reader.connect() as conn:
            return [
                ListedRecord(
                    record_id=r.record_id,
                    audit_seq=r.audit_seq,
                    time=r.time,
                    key=r.key,
                    level=r.level,
                    signature_sha256=r.signature_sha256,
                    extend_before=r.extend_before,
                )
                for r in conn.execute(query)
            ]

    def records_due(
        self, before: datetime, limit: int = 1000, which: RecordFilter | None = None
    ) -> list[DueRecord]:
        """Records whose newest signed PDF must be extended before ``before``, soonest first.

        Only the newest registered PDF of each record counts: it is the one an archive keeps
        (each signature or extension returns a new file holding everything before it).
        """
        query = (
            _newest_signatures(which or RecordFilter(), pdf_only=True)
            .where(signatures.c.extend_before < iso_seconds(before))
            .order_by(signatures.c.extend_before, signatures.c.audit_seq)
            .limit(limit)
        )
        with self.db.reader.connect() as conn:
            return [
                DueRecord(
                    record_id=r.record_id,
                    audit_seq=r.audit_seq,
                    level=r.level,
                    signature_sha256=r.signature_sha256,
                    extend_before=r.extend_before,
                )
                for r in conn.execute(query)
            ]

    def find_signature(self, signature_sha256: str) -> Registration | None:
        """Where a signed output was registered, by the SHA-256 of what was returned."""
        with self.db.reader.connect() as conn:
            r = conn.execute(
                select(signatures.c.audit_seq, signatures.c.record_id).where(
                    signatures.c.signature_sha256 == signature_sha256
                )
            ).first()
        return None if r is None else Registration(r.audit_seq, r.record_id)


def _newest_signatures(which: RecordFilter, pdf_only: bool) -> Select[Any]:
    """The newest signature of each record (of its PDFs, if ``pdf_only``) that ``which`` holds."""
    grouped = select(signatures.c.record_id, func.max(signatures.c.audit_seq).label("seq")).where(
        signatures.c.record_id.is_not(None)
    )
    if pdf_only:
        grouped = grouped.where(signatures.c.kind == "pdf")
    if which.record_id_prefix:
        grouped = grouped.where(signatures.c.record_id.startswith(which.record_id_prefix, autoescape=True))
    newest = grouped.group_by(signatures.c.record_id).subquery()
    query = select(signatures).join(newest, signatures.c.audit_seq == newest.c.seq)
    if which.since is not None:
        query = query.where(signatures.c.time >= which.since)
    if which.until is not None:
        query = query.where(signatures.c.time < which.until)
    if which.before_seq is not None:
        query = query.where(signatures.c.audit_seq < which.before_seq)
    return query


def _size(conn: Connection) -> int:
    return conn.execute(select(audit_head.c.size).where(audit_head.c.id == 1)).scalar_one()


def _check_size(name: str, tree_size: int, size: int) -> None:
    if tree_size < 0:
        raise InvalidRequest(f"{name} must not be negative")
    if tree_size > size:
        raise NotFound(f"{name} {tree_size} is beyond the log, which holds {size} entries")
