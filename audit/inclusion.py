"""One entry proven in the log, offline: the entry, an inclusion proof, a kept checkpoint.

An auditor who holds a signed record and a checkpoint need not fetch and verify the whole
export to show that the record's signature was logged: the entry (``GET
/api/v1/audit/entries``), an RFC 9162 inclusion proof of it at the checkpoint's tree size
(``GET /api/v1/audit/proof/inclusion?seq=&tree_size=``) and the checkpoint suffice, as a
certificate-transparency client checks one certificate. :func:`check_inclusion` checks:

- the entry has the shape of SPEC 7, and its hash, ``SHA-256(0x00 || JCS(entry))``, is the
  leaf the proof starts from, at the entry's ``seq``;
- the proof leads to the checkpoint's ``root_hash`` at the checkpoint's ``tree_size`` (the
  root the proof answer states itself is not trusted);
- the checkpoint is the log's own: signed body, signature, timestamp, and with ``trust``
  the certificates' paths (:func:`kyso.audit.checkpoint_verify.verify_checkpoint_signature`);
- and when a file is given, that its SHA-256 is the entry's ``signature_sha256`` (what
  kyso returned) or ``document_sha256`` (what it received).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from kyso.audit.checkpoint_trust import CheckpointTrust
from kyso.audit.checkpoint_verify import checkpoint_problems, verify_checkpoint_signature
from kyso.audit.entry import entry_hash, validate_entry_shape
from kyso.audit.merkle import root_from_inclusion_proof


@dataclass
class InclusionReport:
    """What :func:`check_inclusion` found: ``problems`` empty when the entry is proven."""

    problems: list[str] = field(default_factory=list)
    file_is: str | None = None  # "signature" or "document": which hash the file matched
    signed_by: list[str] = field(default_factory=list)
    timestamped_by: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def check_inclusion(
    entry: Any,
    proof: Any,
    checkpoint: Any,
    trust: list[Any] | tuple[Any, ...] = (),
    file_bytes: bytes | None = None,
) -> InclusionReport:
    """Check that ``entry`` is in the log that ``checkpoint`` describes (module docstring)."""
    report = InclusionReport()
    if shape := validate_entry_shape(entry):
        report.problems.append("the entry is not an audit entry: " + "; ".join(shape))
        return report
    if problems := checkpoint_problems(checkpoint):
        report.problems.append("the checkpoint is malformed: " + "; ".join(problems))
        return report
    anchors = CheckpointTrust(trust)
    if problem := verify_checkpoint_signature(checkpoint, anchors):
        report.problems.append(f"the checkpoint is not the log's own: {problem}")
    report.signed_by, report.timestamped_by = sorted(anchors.signers), sorted(anchors.tsas)
    report.problems += _proof_problems(entry, proof, checkpoint)
    if file_bytes is not None:
        digest = hashlib.sha256(file_bytes).hexdigest()
        if digest == entry.get("signature_sha256"):
            report.file_is = "signature"
        elif digest == entry.get("document_sha256"):
            report.file_is = "document"
        else:
            report.problems.append(
                f"the file (SHA-256 {digest}) is neither what this entry's operation returned "
                "(signature_sha256) nor what it received (document_sha256)"
            )
    return report


def _proof_problems(entry: dict[str, Any], proof: Any, checkpoint: dict[str, Any]) -> list[str]:
    """Why the proof does not put the entry under the checkpoint's root; [] if it does."""
    if not isinstance(proof, dict):
        return ["the proof is not a JSON object"]
    size, seq = checkpoint["tree_size"], entry["seq"]
    if proof.get("leaf_index") != seq:
        return [f"the proof is for leaf {proof.get('leaf_index')!r}, not for entry seq {seq}"]
    if proof.get("tree_size") != size:
        return [
            f"the proof is for tree size {proof.get('tree_size')!r}, but the checkpoint is at "
            f"{size}: ask for ?seq={seq}&tree_size={size}"
        ]
    try:
        hashes = [bytes.fromhex(h) for h in proof.get("hashes", [])]
        root = root_from_inclusion_proof(entry_hash(entry), seq, size, hashes)
    except (TypeError, ValueError) as exc:
        return [f"the proof cannot be used: {exc}"]
    if root.hex() != checkpoint["root_hash"]:
        return [
            f"the proof does not lead from entry seq {seq} to the checkpoint's root: the entry, "
            "the proof or the log differs from what the checkpoint signed"
        ]
    return []
