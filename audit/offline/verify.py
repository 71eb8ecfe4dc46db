"""The offline verifier of an audit export (SPEC 7): no service, no database.

An export is JSON Lines: every entry, in seq order, as the exact JCS bytes that were hashed,
then the checkpoints. :func:`verify_export` reads it once, front to back
(:mod:`kyso.audit.offline.export_scan`), then checks every checkpoint against the entries
(:mod:`kyso.audit.offline.checkpoint_verify`), and names the first entry that was changed,
removed, inserted or reordered, or the checkpoint that no longer matches (a log
rewritten and re-hashed, or cut off at the end). It judges content, not formatting: a
line re-serialized after the export (``jq``, ``json.dumps``) verifies through its
canonical form, with a note (:mod:`kyso.audit.offline.line_chain`).

Memory: the leaf hashes go to a temporary file and only perfect subtrees of 256 leaves and
up stay in memory (:mod:`kyso.audit.offline.spilled_tree`), about n/4 bytes for n entries.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, BinaryIO, cast

from kyso.audit.merkle import tree_root
from kyso.audit.offline.checkpoint_trust import CheckpointTrust
from kyso.audit.offline.checkpoint_verify import (
    CheckpointCheck,
    check_checkpoints,
    checkpoint_problems,
    load_checkpoints,
    verify_checkpoint_signature,
)
from kyso.audit.offline.export_scan import (
    ChainProblem,
    ExportScan,
    file_batches,
    trailing_checkpoints,
)
from kyso.audit.offline.line_chain import reserialized_note
from kyso.audit.offline.parallel_scan import parallel_workers, scan_in_parallel
from kyso.audit.offline.spilled_tree import SpilledTree

__all__ = ["VerifyReport", "load_checkpoints", "verify_checkpoint_signature", "verify_export"]


@dataclass
class VerifyReport:
    """What :func:`verify_export` found.

    ``problem`` is one sentence naming the first entry that broke (by seq) or the
    checkpoint that no longer matches; ``first_bad_seq`` is that entry (missing, changed or
    out of place; for an inserted line, the seq that belongs where it stands) when it is
    known. ``bad_checkpoint`` is the checkpoint's (tree_size, origin) when a checkpoint is
    the problem. ``notes`` hold further problems, or what a success does not cover.
    ``root_hash`` and ``chain_head`` (hex) describe all the entries, when they verified.
    ``signed_by`` and ``timestamped_by`` name the subjects of the log key and TSA
    certificates of the checkpoints whose signatures held. ``reserialized`` counts the entry
    lines that are not the canonical bytes the log hashed (re-serialized after the export,
    by ``jq`` or ``json.dumps``) and verified by their content, through their canonical
    form, as SPEC 7 defines the entry hash; ``first_reserialized_seq`` is the first; a note
    says so.
    """

    ok: bool
    entries: int = 0
    checkpoints_checked: int = 0
    first_bad_seq: int | None = None
    problem: str = ""
    bad_checkpoint: tuple[int, str] | None = None
    notes: list[str] = field(default_factory=list)
    root_hash: str | None = None
    chain_head: str | None = None
    signed_by: list[str] = field(default_factory=list)
    timestamped_by: list[str] = field(default_factory=list)
    processes: int = 1  # that read the entries (kyso.audit.offline.parallel_scan)
    reserialized: int = 0  # entry lines verified by their content, not their bytes
    first_reserialized_seq: int | None = None


def verify_export(
    lines: Iterable[bytes | str],
    checkpoints: Iterable[dict[str, Any]] = (),
    trust: Iterable[Any] = (),
    progress: Callable[[int], None] | None = None,
    *,
    full: bool = False,
    workers: int | None = None,
) -> VerifyReport:
    """Verify an export, given as its lines, against its own and the given ``checkpoints``.

    ``lines`` is any iterable of lines, bytes (best: a file opened in binary) or str, with
    or without their newlines. ``checkpoints`` are checkpoint objects the auditor kept
    (``--checkpoint`` files, :func:`load_checkpoints`): only they prove that a log rewritten
    as a whole, or cut short together with its later checkpoints, is not the one that was
    published. ``trust`` goes to :func:`verify_checkpoint_signature`. ``progress`` is
    called with the number of entries read so far. ``full=True`` also parses and
    re-canonicalises every line (about 30 times slower), which matters only to test a log
    writer: a line that something later commits to is already proven to be what was hashed.
    Either way the report's ``reserialized`` says whether every line held the canonical
    bytes the log wrote.

    A binary file is read in blocks; a regular file is first cut into ``workers`` ranges
    checked in parallel (:mod:`kyso.audit.offline.parallel_scan`). ``workers`` None uses every
    core for a file of 8 MB or more, in a process without other threads; 1 reads it in one
    process.
    """
    given = [(f"given checkpoint {i + 1}", cp) for i, cp in enumerate(checkpoints)]
    anchors = CheckpointTrust(trust)
    with SpilledTree() as tree:
        state, batches = None, None
        if not full and isinstance(getattr(lines, "read", None) and lines.read(0), bytes):  # type: ignore[attr-defined]
            file = cast(BinaryIO, lines)
            if (processes := parallel_workers(file, workers)) > 1:

                def precheck() -> None:  # while the other processes start on the entries
                    try:
                        for _, cp in given + trailing_checkpoints(file):
                            if not checkpoint_problems(cp):
                                verify_checkpoint_signature(cp, anchors)
                    except Exception:  # noqa: BLE001 - only saves time: _report checks them all again
                        pass

                state = scan_in_parallel(file, processes, tree, progress, meanwhile=precheck)
                file.seek(state.offset)
            batches = file_batches(file)
            lines = itertools.chain.from_iterable(batches)
        scan = ExportScan(iter(lines), tree, progress, full, batches, state)
        scan.run()
        report = _report(scan, tree, given + scan.checkpoints, anchors)
        report.processes = state.processes if state is not None else 1
        return report


def _report(
    scan: ExportScan, tree: SpilledTree, checkpoints: list[tuple[str, Any]], trust: CheckpointTrust
) -> VerifyReport:
    """Check the checkpoints against the verified entries and pick the first problem."""
    chain = scan.problem
    # Entries before the first bad one have an intact chain; checkpoints are checked on those.
    verified = scan.count if chain is None or chain.seq is None else min(chain.seq, scan.count)
    results = check_checkpoints(
        checkpoints, tree, verified, cut_off_possible=chain is None, trust=trust
    )
    report = VerifyReport(
        ok=True, entries=scan.count, checkpoints_checked=sum(r.checked for r in results)
    )
    failures = [r for r in results if r.problem]
    # A mismatch at tree size b means a change before b <= verified, so before any chain
    # break; then the chain break; then what concerns later entries or the checkpoints.
    ordered: list[CheckpointCheck | ChainProblem] = [r for r in failures if r.kind == "mismatch"]
    ordered += [chain] if chain else []
    for kind in ("cut_off", "signature", "malformed"):
        ordered += [r for r in failures if r.kind == kind]
    if ordered:
        first = ordered[0]
        report.ok, report.first_bad_seq = False, first.seq
        report.problem = _text(first)
        if isinstance(first, CheckpointCheck):
            report.bad_checkpoint = (first.tree_size, first.origin)
        report.notes = [_text(other) for other in ordered[1:]]
    else:
        report.root_hash = tree_root(tree, scan.count).hex()
        report.chain_head = scan.prev_hex.decode()
        report.notes = _coverage_notes(results, scan.count)
    report.notes += [r.note for r in results if r.note]
    report.reserialized = scan.chain.reserialized
    report.first_reserialized_seq = scan.chain.first_reserialized
    if report.reserialized:
        report.notes.append(reserialized_note(report.reserialized, report.first_reserialized_seq))
    report.signed_by, report.timestamped_by = sorted(trust.signers), sorted(trust.tsas)
    if not trust and any(r.checked for r in results):
        report.notes.append(
            "no --trust certificate was given: checkpoint signatures and timestamps were checked "
            "against the certificates they carry, which proves they are intact but not whose they "
            "are; give the log key's certificate or its root (and the TSA's root) with --trust"
        )
    return report


def _text(problem: CheckpointCheck | ChainProblem) -> str:
    return problem.problem if isinstance(problem, CheckpointCheck) else problem.text


def _coverage_notes(results: list[CheckpointCheck], count: int) -> list[str]:
    """What a successful verification does not prove, for lack of checkpoints."""
    if not results:
        return [
            "no checkpoint was given or exported: the hash chain is consistent, but only a "
            "signed checkpoint proves that the log was not rewritten as a whole"
        ]
    covered = max((r.tree_size for r in results if r.checked), default=0)
    if covered < count:
        return [
            f"entries seq {covered} to {count - 1} come after the last checkpoint; only the hash chain covers them"
        ]
    return []
