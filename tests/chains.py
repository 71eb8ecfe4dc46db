"""Audit logs built for the verifier's tests: valid chains, re-chained ones, checkpoints."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from kyso.audit.checkpoint import make_checkpoint
from kyso.audit.entry import GENESIS_PREV_HASH, entry_hash, entry_hash_hex, entry_line, format_time
from kyso.audit.merkle import root_from_leaves
from kyso.audit.store import TreeState

ORIGIN = "kyso.test/audit"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def build_chain(n: int) -> list[dict]:
    """A valid log of ``n`` entries, varied the way real ones are."""
    entries: list[dict] = []
    for seq in range(n):
        entries.append(
            {
                "seq": seq,
                "time": format_time(T0 + timedelta(seconds=seq, microseconds=seq)),
                "actor": None if seq % 7 == 3 else "his-main",
                "action": ("sign.pdf", "verify.json", "session.start")[seq % 3],
                "key": "hospital-seal" if seq % 3 == 0 else None,
                "record_id": f"encounter/{seq}/phiếu-ra-viện",
                "document_sha256": hashlib.sha256(b"document %d" % seq).hexdigest(),
                "signature_sha256": hashlib.sha256(b"signed %d" % seq).hexdigest()
                if seq % 2
                else None,
                "outcome": ("ok", "ok", "denied", "error")[seq % 4],
                "detail": {"level": "B-T", "bytes": 1000 + seq} if seq % 5 else {},
                "prev_hash": "",
            }
        )
    return rechain(entries)


def rechain(entries: list[dict], start: int = 0) -> list[dict]:
    """Recompute every prev_hash from ``start`` on, as someone rewriting the log would."""
    for seq in range(start, len(entries)):
        entries[seq]["prev_hash"] = entry_hash_hex(entries[seq - 1]) if seq else GENESIS_PREV_HASH
    return entries


def signed_checkpoint(signer: Any, entries: list[dict], size: int) -> dict:
    """A checkpoint of the first ``size`` entries, signed and timestamped by ``signer``
    (the LogSigner fixture)."""
    root = root_from_leaves(entry_hash(e) for e in entries[:size])
    head = entry_hash_hex(entries[size - 1]) if size else GENESIS_PREV_HASH
    return make_checkpoint(TreeState(size, root, head), ORIGIN, signer.key, signer.timestamper)


def export(entries: list[dict], checkpoints: list[dict] = ()) -> list[bytes]:
    """The export lines: each entry's JCS bytes, then the checkpoints."""
    return [entry_line(e) for e in entries] + [
        json.dumps(cp).encode() + b"\n" for cp in checkpoints
    ]
