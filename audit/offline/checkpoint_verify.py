"""Checking checkpoints against the entries of an export (part of the offline verifier).

A checkpoint (SPEC 7) is ``{"origin", "tree_size", "root_hash", "chain_head", "time",
"body", "signature", "certificate", "timestamp_token"}``. It matches an export when the
Merkle root of the export's first ``tree_size`` entries is ``root_hash`` and the entry
hash of seq ``tree_size - 1`` is ``chain_head``. A checkpoint that matches proves those
entries are the ones the log signed; one that does not, while the hash chain of the
export is intact, proves the entries were rewritten and re-hashed after it was made.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kyso.audit.checkpoint_format import parse_checkpoint_body
from kyso.audit.entry import GENESIS_PREV_HASH
from kyso.audit.merkle import NodeSource, tree_root
from kyso.audit.offline.checkpoint_trust import CheckpointTrust, authenticity_problem
from kyso.errors import InvalidJson
from kyso.formats import parse_json_strict

CHECKPOINT_FIELDS: tuple[str, ...] = (
    "origin",
    "tree_size",
    "root_hash",
    "chain_head",
    "time",
    "body",
    "signature",
    "certificate",
    "timestamp_token",
)

_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class CheckpointCheck:
    """The outcome for one checkpoint.

    ``kind`` is ``ok``, ``mismatch`` (root or chain head differ), ``cut_off`` (it covers
    entries the export does not hold), ``malformed``, ``signature`` (the signature hook
    refused it) or ``unchecked`` (the export breaks before its tree size).
    """

    label: str
    kind: str
    tree_size: int = -1
    origin: str = ""
    problem: str = ""
    note: str = ""
    seq: int | None = None
    root_ok: bool = True
    head_ok: bool = True

    @property
    def checked(self) -> bool:
        """Whether it was compared with the entries."""
        return self.kind in ("ok", "mismatch", "cut_off")


def is_checkpoint(value: Any) -> bool:
    """Whether a parsed export line is a checkpoint (it has no ``seq``; it has a size or body)."""
    return (
        isinstance(value, dict) and "seq" not in value and ("tree_size" in value or "body" in value)
    )


def checkpoint_problems(cp: Any) -> list[str]:
    """What the verifier cannot use in ``cp``: missing or mistyped core members."""
    if not isinstance(cp, dict):
        return ["a checkpoint must be a JSON object"]
    problems = []
    size = cp.get("tree_size")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        problems.append("tree_size must be a non-negative integer")
    for name in ("origin", "body"):
        if not isinstance(cp.get(name), str):
            problems.append(f"{name} must be a string")
    for name in ("root_hash", "chain_head"):
        if not isinstance(cp.get(name), str) or not _HEX64.fullmatch(cp[name]):
            problems.append(f"{name} must be 64 lowercase hex digits")
    return problems


def verify_checkpoint_signature(
    cp: dict[str, Any], trust: Sequence[Any] | CheckpointTrust
) -> str | None:
    """Check a checkpoint's own authenticity; None when it holds, else what is wrong.

    ``body`` (the signed text) must state the same origin, tree_size, root_hash and
    chain_head as the checkpoint's members; then the signature, the RFC 3161 timestamp of
    the signature and, when ``trust`` holds anchors, the certificates' paths to them
    (:mod:`kyso.audit.offline.checkpoint_trust`). ``trust`` is a list of certificates
    (asn1crypto or cryptography) or a :class:`CheckpointTrust`, which caches paths.
    """
    try:
        body = parse_checkpoint_body(cp["body"])
    except ValueError as exc:
        return f"its body is not a checkpoint note: {exc}"
    differences = []
    if body.origin != cp["origin"]:
        differences.append("origin")
    if body.tree_size != cp["tree_size"]:
        differences.append("tree_size")
    if body.root_hash.hex() != cp["root_hash"]:
        differences.append("root_hash")
    if body.chain_head != cp["chain_head"]:
        differences.append("chain_head")
    if differences:
        return "its signed body states a different " + ", ".join(differences) + " than its members"
    if not isinstance(trust, CheckpointTrust):
        trust = CheckpointTrust(trust)
    return authenticity_problem(cp, trust)


def check_checkpoints(
    checkpoints: Sequence[tuple[str, Any]],
    tree: NodeSource,
    verified: int,
    *,
    cut_off_possible: bool,
    trust: Sequence[Any] | CheckpointTrust = (),
) -> list[CheckpointCheck]:
    """Check each (label, checkpoint) against the first ``verified`` entries of ``tree``.

    ``verified`` entries have an intact hash chain. ``cut_off_possible`` says the export
    ended normally there, so a checkpoint beyond it proves entries were cut off. Results
    come sorted by tree size, mismatches explained with the help of the matching ones.
    """
    if not isinstance(trust, CheckpointTrust):
        trust = CheckpointTrust(trust)
    results = [
        _check_one(label, cp, tree, verified, cut_off_possible, trust) for label, cp in checkpoints
    ]
    results.sort(key=lambda r: r.tree_size)
    matching = sorted(r.tree_size for r in results if r.kind == "ok")
    for result in results:
        if result.kind == "mismatch":
            _explain_mismatch(result, matching)
    return results


def load_checkpoints(data: bytes) -> list[dict[str, Any]]:
    """Checkpoints from a file's bytes: one JSON object, an array of them, or JSON Lines."""
    try:
        value = parse_json_strict(data)
    except InvalidJson:
        lines = [line for line in data.splitlines() if line.strip()]
        if len(lines) < 2:
            raise
        value = [parse_json_strict(line) for line in lines]
    values = value if isinstance(value, list) else [value]
    for item in values:
        if not is_checkpoint(item):
            raise InvalidJson(
                "not a checkpoint: expected an object with tree_size, root_hash, body, ..."
            )
    return values


def describe(cp: dict[str, Any], label: str) -> str:
    """How messages name a checkpoint."""
    return f"checkpoint {cp.get('origin')!r} at tree_size {cp.get('tree_size')} ({label})"


def _check_one(
    label: str,
    cp: Any,
    tree: NodeSource,
    verified: int,
    cut_off_possible: bool,
    trust: CheckpointTrust,
) -> CheckpointCheck:
    """Compare one checkpoint with the entries."""
    if problems := checkpoint_problems(cp):
        return CheckpointCheck(
            label, "malformed", problem=f"{label}: malformed checkpoint: " + "; ".join(problems)
        )
    size, origin, name = cp["tree_size"], cp["origin"], describe(cp, label)
    result = CheckpointCheck(label, "ok", size, origin)
    if problem := verify_checkpoint_signature(cp, trust):
        result.kind, result.problem = "signature", f"{name}: {problem}"
    elif size > verified and cut_off_possible:
        held = f"ends after seq {verified - 1}" if verified else "holds no entries"
        result.kind, result.seq = "cut_off", verified
        result.problem = (
            f"{name} covers {size} entries, but the export {held}: "
            f"entries seq {verified} to {size - 1} were cut off (removed)"
        )
    elif size > verified:
        result.kind, result.note = (
            "unchecked",
            f"{name} was not checked: the export breaks before its end",
        )
    else:
        result.root_ok = tree_root(tree, size).hex() == cp["root_hash"]
        head = tree.node(0, size - 1).hex() if size else GENESIS_PREV_HASH
        result.head_ok = head == cp["chain_head"]
        if not (result.root_ok and result.head_ok):
            result.kind, result.problem = "mismatch", name
    return result


def _explain_mismatch(result: CheckpointCheck, matching: list[int]) -> None:
    """Say what a mismatching checkpoint shows, narrowed by the matching ones before it."""
    size, name = result.tree_size, result.problem
    what = []
    if not result.root_ok:
        what.append(f"its root_hash is not the Merkle root of entries seq 0 to {size - 1}")
    if not result.head_ok:
        what.append(f"its chain_head is not the entry hash of seq {size - 1}")
    text = f"{name} no longer matches the export: " + " and ".join(what)
    later = [s for s in matching if s >= size]
    if result.root_ok != result.head_ok:
        text += "; its root and chain head cannot both come from one log, so it is not this log's checkpoint"
    elif later:
        text += f"; yet the checkpoint at tree_size {later[0]} matches, so this one is not from this log"
    else:
        below = max((s for s in matching if s < size), default=0)
        since = f" (the checkpoint at tree_size {below} still matches)" if below in matching else ""
        text += (
            "; the hash chain of the export is intact, so entries were rewritten and re-hashed: "
        )
        if below == size - 1:
            text += f"entry seq {below} was changed{since}"
            result.seq = below
        else:
            text += f"the first changed entry is among seq {below} to {size - 1}{since}"
    result.problem = text
