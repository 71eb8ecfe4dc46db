"""Appending to and reading the audit log in the database.

An append is one transaction: lock the chain head, number the entry, hash it, insert
it with its Merkle nodes and whatever the caller must record with it (the record
registry row, the idempotency result), move the head, commit. Nothing is acknowledged
before that commit, and nothing half-written survives a failure inside it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from kyso.audit.entry import format_time, line_hash
from kyso.canonical import canonical_json
from kyso.db import Database, audit_entries, audit_head, checkpoints, merkle_nodes, signatures

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


def _merkle_nodes_for_append(conn: Connection, seq: int, leaf: bytes) -> list[dict[str, Any]]:
    """The complete subtrees that leaf ``seq`` closes, each H(0x01 || left || right)."""
    import hashlib

    rows = [{"level": 0, "idx": seq, "hash": leaf}]
    level, idx, right = 0, seq, leaf
    while idx % 2 == 1:
        left = conn.execute(
            select(merkle_nodes.c.hash).where(merkle_nodes.c.level == level, merkle_nodes.c.idx == idx - 1)
        ).scalar_one()
        right = hashlib.sha256(b"\x01" + bytes(left) + right).digest()
        level, idx = level + 1, idx // 2
        rows.append({"level": level, "idx": idx, "hash": right})
    return rows


class AuditLog:
    """The hash-chained, Merkle-tree audit log over one database."""

    def __init__(self, db: Database):
        self.db = db

    def append(
        self,
        draft: EntryDraft,
        with_entry: Callable[[Connection, AppendedEntry], None] | None = None,
    ) -> AppendedEntry:
        """Append one entry; ``with_entry`` writes rows that must commit with it."""
        if draft.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}")
        with self.db.writer.begin() as conn:
            head = conn.execute(
                select(audit_head.c.size, audit_head.c.head_hash).where(audit_head.c.id == 1).with_for_update()
            ).one()
            seq = head.size
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
                "prev_hash": head.head_hash,
            }
            canonical = canonical_json(entry)
            leaf = line_hash(canonical)
            appended = AppendedEntry(seq, entry, leaf.hex())
            conn.execute(
                insert(audit_entries).values(
                    seq=seq,
                    entry_hash=appended.entry_hash,
                    time=entry["time"],
                    action=draft.action,
                    actor=draft.actor,
                    record_id=draft.record_id,
                    document_sha256=draft.document_sha256,
                    signature_sha256=draft.signature_sha256,
                    canonical=canonical.decode("utf-8"),
                )
            )
            conn.execute(insert(merkle_nodes), _merkle_nodes_for_append(conn, seq, leaf))
            if with_entry is not None:
                with_entry(conn, appended)
            conn.execute(update(audit_head).where(audit_head.c.id == 1).values(size=seq + 1, head_hash=appended.entry_hash))
        return appended

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
        """The whole log as JSON Lines: entries (the exact hashed bytes), then checkpoints."""
        after = -1
        while True:
            with self.db.reader.connect() as conn:
                rows = conn.execute(
                    select(audit_entries.c.seq, audit_entries.c.canonical)
                    .where(audit_entries.c.seq > after)
                    .order_by(audit_entries.c.seq)
                    .limit(batch)
                ).all()
            if not rows:
                break
            for r in rows:
                yield r.canonical.encode("utf-8") + b"\n"
            after = rows[-1].seq
        with self.db.reader.connect() as conn:
            for r in conn.execute(select(checkpoints.c.document).order_by(checkpoints.c.tree_size)):
                yield r.document.encode("utf-8") + b"\n"

    def record_signatures(self, record_id: str) -> list[dict[str, Any]]:
        with self.db.reader.connect() as conn:
            rows = conn.execute(
                select(signatures).where(signatures.c.record_id == record_id).order_by(signatures.c.audit_seq)
            )
            return [
                {
                    "audit_seq": r.audit_seq,
                    "time": r.time,
                    "key": r.key,
                    "level": r.level,
                    "document_sha256": r.document_sha256,
                    "signature_sha256": r.signature_sha256,
                }
                for r in rows
            ]

    def find_signature(self, signature_sha256: str) -> dict[str, Any] | None:
        """The registry row of a signed output, by the SHA-256 of what was returned."""
        with self.db.reader.connect() as conn:
            r = conn.execute(select(signatures).where(signatures.c.signature_sha256 == signature_sha256)).first()
            return None if r is None else {"audit_seq": r.audit_seq, "record_id": r.record_id}


def register_signature(
    conn: Connection, appended: AppendedEntry, kind: str, level: str
) -> None:
    """The record registry row of a signature, written in the audit entry's transaction."""
    e = appended.entry
    conn.execute(
        insert(signatures).values(
            audit_seq=appended.seq,
            record_id=e["record_id"],
            time=e["time"],
            key=e["key"],
            kind=kind,
            level=level,
            document_sha256=e["document_sha256"],
            signature_sha256=e["signature_sha256"],
        )
    )


