"""The offline verifier judges content, not formatting (SPEC 7: the entry hash is over the
JCS form): an export re-serialized by json.dumps or jq verifies with a note, in every path,
and a re-serialized line whose content changed is still named."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from chains import ORIGIN, build_chain, export, signed_checkpoint

from kyso.audit.offline import parallel_scan
from kyso.audit.offline import verify as verify_module
from kyso.audit.offline.verify import VerifyReport, verify_export

ENTRIES = 60

# How a line gets re-serialized: from the entry as the writer built it (members in the
# writer's order) or as parsed back from the export line (in canonical order).
RESERIALIZERS: dict[str, Callable[[dict], bytes]] = {
    "json.dumps": lambda e: json.dumps(e).encode(),
    "json.dumps sort_keys": lambda e: json.dumps(e, sort_keys=True).encode(),
    "json.dumps ensure_ascii=False": lambda e: json.dumps(e, ensure_ascii=False).encode(),
    # Compact, sorted and ASCII-escaped: the fast path's patterns are all there.
    "json.dumps compact sorted ascii": lambda e: json.dumps(
        e, sort_keys=True, separators=(",", ":")
    ).encode(),
    # A pretty-printed record folded onto one line (JSON Lines holds one record a line).
    "json.dumps indent, folded": lambda e: json.dumps(e, indent=2).replace("\n", " ").encode(),
    "json.dumps indent, ensure_ascii=False, folded": lambda e: (
        json.dumps(e, indent="\t", ensure_ascii=False).replace("\n", " ").encode()
    ),
    "crlf": lambda e: export([e])[0][:-1] + b"\r",
}


@pytest.fixture(scope="module")
def pristine(log_signer) -> tuple[list[dict], list[dict]]:
    chain = build_chain(ENTRIES)
    return chain, [signed_checkpoint(log_signer, chain, size) for size in (10, 40, ENTRIES)]


@pytest.fixture(params=["fast", "full", "parallel"])
def mode(request, monkeypatch) -> str:
    if request.param == "parallel":
        monkeypatch.setattr(parallel_scan, "MIN_PIECE", 3000)  # a few entries a piece
    return request.param


def verify(mode: str, tmp: Path, lines: list[bytes], **kwargs) -> VerifyReport:
    """verify_export as lines (fast or full) or as a file read by two processes; there, how
    many entries the pieces took goes to ``taken_in_pieces``."""
    if mode != "parallel":
        return verify_export(lines, full=mode == "full", **kwargs)
    path = tmp / "export.jsonl"
    path.write_bytes(b"".join(lines))
    real = parallel_scan.scan_in_parallel

    def spy(*args, **options):
        state = real(*args, **options)
        taken_in_pieces.append(state.count)
        return state

    taken_in_pieces.clear()
    with pytest.MonkeyPatch.context() as patch, path.open("rb") as file:
        patch.setattr(verify_module, "scan_in_parallel", spy)
        report = verify_export(file, workers=2, **kwargs)
    assert report.processes == 2
    return report


taken_in_pieces: list[int] = []


def reserialized(entries: list[dict], how: str, which: range | None = None) -> list[bytes]:
    """Export lines with the entries in ``which`` (all by default) re-serialized."""
    lines = export(entries)
    for seq in which if which is not None else range(len(entries)):
        lines[seq] = RESERIALIZERS[how](entries[seq]) + b"\n"
    return lines


@pytest.mark.parametrize("how", RESERIALIZERS)
def test_a_reserialized_export_verifies_with_a_note(pristine, mode, how, tmp_path, dev_root):
    chain, cps = pristine
    canonical = verify_export(export(chain, cps), trust=dev_root)
    lines = reserialized(chain, how) + export([], cps)
    report = verify(mode, tmp_path, lines, trust=dev_root)
    assert report.ok, report.problem
    assert (report.entries, report.checkpoints_checked) == (ENTRIES, 3)
    assert (report.root_hash, report.chain_head) == (canonical.root_hash, canonical.chain_head)
    assert (report.reserialized, report.first_reserialized_seq) == (ENTRIES, 0)
    assert any(f"{ENTRIES} entry lines (the first: seq 0)" in note for note in report.notes)
    if mode == "parallel":  # the pieces read re-serialized lines too, on every core
        assert taken_in_pieces == [ENTRIES]


@pytest.mark.parametrize("how", RESERIALIZERS)
@pytest.mark.parametrize("which", [range(7, 8), range(30, 33), range(ENTRIES - 1, ENTRIES)])
def test_some_reserialized_lines_among_canonical_ones_verify_with_a_note(
    pristine, mode, how, which, tmp_path
):
    chain, cps = pristine
    report = verify(mode, tmp_path, reserialized(chain, how, which) + export([], cps))
    assert report.ok, report.problem
    assert report.checkpoints_checked == 3 and report.root_hash == cps[-1]["root_hash"]
    assert (report.reserialized, report.first_reserialized_seq) == (len(which), which[0])


@pytest.mark.parametrize("how", RESERIALIZERS)
@pytest.mark.parametrize("seq", [0, 20, 31])
def test_a_reserialized_line_whose_content_changed_is_named(pristine, mode, how, seq, tmp_path):
    chain, _ = pristine
    changed = copy.deepcopy(chain)
    changed[seq]["actor"] = "intruder"
    for which in (range(ENTRIES), range(seq, seq + 1)):  # all lines re-serialized, or that one
        report = verify(mode, tmp_path, reserialized(changed, how, which))
        assert not report.ok and report.first_bad_seq == seq, report.problem
        assert f"entry seq {seq}" in report.problem


@pytest.mark.parametrize("how", ["json.dumps", "json.dumps compact sorted ascii", "crlf"])
def test_a_changed_reserialized_last_entry_is_caught_by_a_checkpoint_covering_it(
    pristine, mode, how, tmp_path
):
    chain, cps = pristine
    changed = copy.deepcopy(chain)
    changed[-1]["outcome"] = "error" if changed[-1]["outcome"] != "error" else "ok"
    report = verify(mode, tmp_path, reserialized(changed, how), checkpoints=[cps[-1]])
    assert not report.ok and report.bad_checkpoint == (ENTRIES, ORIGIN)


@pytest.mark.parametrize("how", ["json.dumps", "json.dumps compact sorted ascii"])
@pytest.mark.parametrize("tamper", ["removed", "inserted", "swapped", "seq"])
def test_tampering_with_a_reserialized_export_is_named_as_in_a_canonical_one(
    pristine, how, tamper, tmp_path
):
    chain, _ = pristine

    def tampered(lines: list[bytes]) -> list[bytes]:
        lines = list(lines)
        if tamper == "removed":
            del lines[20]
        elif tamper == "inserted":
            lines.insert(21, lines[20])
        elif tamper == "swapped":
            lines[20], lines[21] = lines[21], lines[20]
        return lines

    entries = copy.deepcopy(chain)
    if tamper == "seq":
        entries[20]["seq"] = 99
    canonical = verify_export(tampered(export(entries)))
    for mode in ("fast", "full"):
        report = verify(mode, tmp_path, tampered(reserialized(entries, how)))
        assert (report.first_bad_seq, report.problem) == (
            canonical.first_bad_seq,
            canonical.problem,
        )


def test_an_entry_with_an_extra_member_is_still_named_when_reserialized(pristine, mode, tmp_path):
    chain, _ = pristine
    changed = copy.deepcopy(chain)
    changed[20]["patient_name"] = "Nguyễn Văn A"
    report = verify(mode, tmp_path, reserialized(changed, "json.dumps"))
    assert report.first_bad_seq == 20 and "unexpected member(s): patient_name" in report.problem


@pytest.mark.skipif(shutil.which("jq") is None, reason="jq is not installed")
@pytest.mark.parametrize("options", [["-c"], ["-c", "-a"], ["-c", "-S"]])
def test_an_export_passed_through_jq_verifies(pristine, mode, options, tmp_path, dev_root):
    chain, cps = pristine
    # jq keeps members in the order it reads them: feed it the writer's order too.
    source = b"".join(reserialized(chain, "json.dumps ensure_ascii=False") + export([], cps))
    out = subprocess.run(["jq", *options, "."], input=source, capture_output=True, check=True)
    lines = out.stdout.splitlines(keepends=True)
    assert len(lines) == ENTRIES + len(cps)
    report = verify(mode, tmp_path, lines, trust=dev_root)
    assert report.ok and report.checkpoints_checked == 3, report.problem
    differ = sum(line != want for line, want in zip(lines, export(chain), strict=False))
    assert report.reserialized == differ
