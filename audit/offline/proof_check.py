"""Proofs checked offline against checkpoints an auditor kept, without the export.

As a certificate-transparency client checks one certificate or one step of a log's
growth, an auditor can check, from a few small files:

- :func:`check_inclusion`: that one entry is in the log a kept checkpoint describes. The
  entry (``GET /api/v1/audit/entries``), an RFC 9162 inclusion proof of it at the
  checkpoint's tree size (``GET /api/v1/audit/proof/inclusion?seq=&tree_size=``) and the
  checkpoint suffice: the entry's hash, ``SHA-256(0x00 || JCS(entry))``, is followed to
  the checkpoint's ``root_hash`` (the root the proof answer states is not trusted), and
  with a file, its SHA-256 must be the entry's ``signature_sha256`` (what kyso returned)
  or ``document_sha256`` (what it received).
- :func:`check_consistency`: that the log of a later checkpoint extends the log of an
  earlier one, nothing removed or changed in between: an RFC 9162 consistency proof
  (``GET /api/v1/audit/proof/consistency?first=&second=``) from one root to the other.

Every checkpoint involved must be the log's own: its signed body, signature, timestamp,
and with ``trust`` the certificates' paths
(:func:`kyso.audit.offline.checkpoint_verify.verify_checkpoint_signature`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from kyso.audit.entry import entry_hash, validate_entry_shape
from kyso.audit.merkle import root_from_inclusion_proof, verify_consistency
from kyso.audit.offline.checkpoint_trust import CheckpointTrust
from kyso.audit.offline.checkpoint_verify import checkpoint_problems, verify_checkpoint_signature


@dataclass
class ProofReport:
    """What a check found: ``problems`` empty when the proof holds."""

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
) -> ProofReport:
    """Check that ``entry`` is in the log that ``checkpoint`` describes (module docstring)."""
    report = ProofReport()
    if shape := validate_entry_shape(entry):
        report.problems.append("the entry is not an audit entry: " + "; ".join(shape))
        return report
    if not _authentic(report, {"the checkpoint": checkpoint}, trust):
        return report
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


def check_consistency(
    earlier: Any, later: Any, proof: Any, trust: list[Any] | tuple[Any, ...] = ()
) -> ProofReport:
    """Check that the log of checkpoint ``later`` extends that of ``earlier`` (module docstring)."""
    report = ProofReport()
    if not _authentic(
        report, {"the earlier checkpoint": earlier, "the later checkpoint": later}, trust
    ):
        return report
    first, second = earlier["tree_size"], later["tree_size"]
    asked = (proof.get("first"), proof.get("second")) if isinstance(proof, dict) else None
    if earlier["origin"] != later["origin"]:
        report.problems.append(
            f"the checkpoints are of two logs: {earlier['origin']!r} and {later['origin']!r}"
        )
    elif first > second:
        report.problems.append(
            f"the earlier checkpoint (tree size {first}) is larger than the later one ({second})"
        )
    elif first == 0:
        report.problems.append("the earlier checkpoint is of the empty log, which proves nothing")
    elif asked != (first, second):
        report.problems.append(
            f"the proof is for tree sizes {asked}, not {first} to {second}: "
            f"ask for ?first={first}&second={second}"
        )
    else:
        try:
            hashes = [bytes.fromhex(h) for h in proof["hashes"]]
            roots = bytes.fromhex(earlier["root_hash"]), bytes.fromhex(later["root_hash"])
        except (KeyError, TypeError, ValueError) as exc:
            report.problems.append(f"the proof cannot be used: {exc!r}")
            return report
        if not verify_consistency(first, second, *roots, hashes):
            report.problems.append(
                f"the log of tree size {second} does not extend the log of tree size {first}: an entry "
                f"among the first {first} was changed or removed (or the proof is not theirs)"
            )
    return report


def _authentic(
    report: ProofReport, checkpoints: dict[str, Any], trust: list[Any] | tuple[Any, ...]
) -> bool:
    """Check that each named checkpoint is well formed and the log's own, into ``report``;
    False when one is malformed (its members cannot be used then)."""
    anchors = CheckpointTrust(trust)
    well_formed = True
    for name, checkpoint in checkpoints.items():
        if problems := checkpoint_problems(checkpoint):
            report.problems.append(f"{name} is malformed: " + "; ".join(problems))
            well_formed = False
        elif problem := verify_checkpoint_signature(checkpoint, anchors):
            report.problems.append(f"{name} is not the log's own: {problem}")
    report.signed_by, report.timestamped_by = sorted(anchors.signers), sorted(anchors.tsas)
    return well_formed
