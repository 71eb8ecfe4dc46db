"""The verifier's parallel pass (kyso.audit.offline.parallel_scan): an export file cut into pieces
checked by forked processes must give exactly the report the line-by-line scan gives."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from chains import build_chain, export, rechain, signed_checkpoint
from support import KYSO

from kyso.audit.offline import parallel_scan
from kyso.audit.offline.export_scan import trailing_checkpoints
from kyso.audit.offline.range_scan import scan_range
from kyso.audit.offline.verify import VerifyReport, verify_export

ENTRIES = 600
SIZES = (100, 256, 300, 512, 600)


@pytest.fixture(scope="module")
def pristine(log_signer) -> tuple[list[dict], list[dict]]:
    chain = build_chain(ENTRIES)
    return chain, [signed_checkpoint(log_signer, chain, size) for size in SIZES]


@pytest.fixture(autouse=True)
def small_pieces(monkeypatch):
    monkeypatch.setattr(parallel_scan, "MIN_PIECE", 4096)  # about ten entries a piece


def write(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"".join(lines))
    return path


def verify(path: Path, workers: int, **kwargs) -> VerifyReport:
    with path.open("rb") as file:
        return verify_export(file, workers=workers, **kwargs)


def same_but_in_pieces(report: VerifyReport, alone: VerifyReport, workers: int = 2) -> bool:
    """The report read by ``workers`` processes, otherwise equal to the one-process one."""
    return report.processes == workers and replace(report, processes=1) == alone


def test_pieces_checked_by_every_process_give_the_line_by_line_report(pristine, tmp_path, dev_root):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    alone = verify(path, 1, trust=dev_root)
    assert alone.ok and alone.entries == ENTRIES and alone.checkpoints_checked == len(SIZES)
    with path.open("rb") as file:
        assert len(parallel_scan._cut(file.fileno(), 0, path.stat().st_size, 3, 4096)) > 10
    for workers in (2, 3):
        assert same_but_in_pieces(verify(path, workers, trust=dev_root), alone, workers)


def test_the_forked_processes_take_pieces_too(pristine, tmp_path, monkeypatch):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    taken: list[int] = []
    finish = parallel_scan._Worker.finish

    def counting(self, tick):
        results = finish(self, tick)
        taken.append(sum(result.count for result, _ in results.values()))
        return results

    monkeypatch.setattr(parallel_scan._Worker, "finish", counting)
    assert verify(path, 2).ok  # meanwhile this process checks the checkpoints' signatures
    assert len(taken) == 1 and 0 < taken[0] <= ENTRIES


@pytest.mark.parametrize("seq", [0, 1, 9, 10, 11, 255, 256, 299, 300, 301, 444, 598, 599])
def test_a_changed_entry_in_any_piece_is_named_as_the_line_by_line_scan_names_it(
    pristine, tmp_path, seq
):
    chain, cps = pristine
    lines = export(chain, cps)
    lines[seq] = lines[seq].replace(b'"outcome":"', b'"outcome":"x')
    path = write(tmp_path / "audit.jsonl", lines)
    alone = verify(path, 1)
    assert not alone.ok and alone.first_bad_seq == seq, alone.problem
    assert same_but_in_pieces(verify(path, 2), alone)


@pytest.mark.parametrize(
    "how",
    [
        "removed",
        "inserted",
        "swapped",
        "blank",
        "crlf",
        "json.dumps",
        "json.dumps compact ascii",
        "entries-after-checkpoints",
        "rehashed",
    ],
)
def test_each_kind_of_tampering_gives_the_same_report_in_pieces(pristine, tmp_path, how):
    chain, cps = pristine
    chain = [dict(entry) for entry in chain]
    lines = export(chain, cps)
    if how == "removed":
        del lines[333]
    elif how == "inserted":
        lines.insert(333, lines[100])
    elif how == "swapped":
        lines[333], lines[334] = lines[334], lines[333]
    elif how == "blank":
        lines.insert(333, b"\n")
    elif how == "crlf":
        lines = [line.replace(b"\n", b"\r\n") for line in lines]
    elif how == "json.dumps":
        lines[:ENTRIES] = [json.dumps(entry).encode() + b"\n" for entry in chain]
    elif how == "json.dumps compact ascii":
        compact = {"sort_keys": True, "separators": (",", ":")}
        lines[:ENTRIES] = [json.dumps(entry, **compact).encode() + b"\n" for entry in chain]
    elif how == "entries-after-checkpoints":
        lines = export(chain[:300], cps[:3]) + export(chain[300:])
    else:
        chain[333]["actor"] = "intruder"
        lines = export(rechain(chain, 334), cps)
    path = write(tmp_path / "audit.jsonl", lines)
    alone = verify(path, 1)
    intact = ("blank", "crlf", "json.dumps", "json.dumps compact ascii")
    assert alone.ok == (how in intact), alone.problem
    assert alone.reserialized == (ENTRIES if how in intact[1:] else 0)  # content, not formatting
    assert same_but_in_pieces(verify(path, 2), alone)


def test_a_worker_that_fails_leaves_its_pieces_to_the_line_by_line_scan(
    pristine, tmp_path, monkeypatch
):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    alone = verify(path, 1)

    def broken(*args):
        raise RuntimeError("a worker that fails")

    monkeypatch.setattr(parallel_scan, "_child", broken)
    assert same_but_in_pieces(verify(path, 2), alone)


def test_progress_counts_up_to_every_entry(pristine, tmp_path):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    seen: list[int] = []
    assert verify(path, 2, progress=seen.append).ok
    assert seen[-1] == ENTRIES and max(seen) == ENTRIES


def test_only_a_large_regular_file_is_cut_into_pieces_by_default(pristine, tmp_path, monkeypatch):
    chain, _ = pristine
    path = write(tmp_path / "audit.jsonl", export(chain))
    threads = [1]
    monkeypatch.setattr(parallel_scan.threading, "active_count", lambda: threads[0])
    with path.open("rb") as file:
        assert parallel_scan.parallel_workers(file, None) == 0  # smaller than MIN_BYTES
        assert parallel_scan.parallel_workers(file, 3) == 3
        monkeypatch.setattr(parallel_scan, "MIN_BYTES", 1)
        assert parallel_scan.parallel_workers(file, None) == len(os.sched_getaffinity(0))
        threads[0] = 2  # another thread might hold a lock a forked child would need
        assert parallel_scan.parallel_workers(file, None) == 0
        assert parallel_scan.parallel_workers(file, 2) == 2
    read_end, write_end = os.pipe()
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert parallel_scan.parallel_workers(pipe, 2) == 0  # a pipe cannot be read at offsets


def test_a_piece_that_does_not_start_with_an_entry_stops_where_it_starts(pristine, tmp_path):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain[:3], cps[:1]) + export(chain[3:10]))
    first_checkpoint = sum(len(line) for line in export(chain[:3]))
    fd = os.open(path, os.O_RDONLY)
    try:
        result = scan_range(fd, first_checkpoint, path.stat().st_size, lambda data: None)
        assert (result.count, result.stop) == (0, first_checkpoint)
        result = scan_range(fd, 0, path.stat().st_size, lambda data: None)
        assert (result.first_seq, result.count, result.stop) == (0, 3, first_checkpoint)
    finally:
        os.close(fd)


def test_a_piece_claiming_more_entries_before_it_than_bytes_allow_is_not_taken(tmp_path):
    chain = build_chain(5)
    chain[0]["seq"] = 10**15  # its leaf index would lie far beyond the file
    path = write(tmp_path / "audit.jsonl", export(chain))
    fd = os.open(path, os.O_RDONLY)
    try:
        result = scan_range(fd, 0, path.stat().st_size, lambda data: None)
        assert (result.count, result.stop) == (0, 0)
    finally:
        os.close(fd)


def test_the_checkpoints_at_the_end_are_found_reading_backwards(pristine, tmp_path):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    with path.open("rb") as file:
        found = trailing_checkpoints(file, block=1000)  # many blocks, lines across them
        assert [cp for _, cp in found] == cps and file.tell() == 0
    path = write(tmp_path / "plain.jsonl", export(chain))
    with path.open("rb") as file:
        assert trailing_checkpoints(file) == []


def test_kyso_audit_verify_reads_an_export_of_8_mb_on_every_core(log_signer, tmp_path, root_pem):
    chain = build_chain(20_000)  # about 9 MB
    cps = [signed_checkpoint(log_signer, chain, size) for size in (5_000, 20_000)]
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    assert path.stat().st_size >= parallel_scan.MIN_BYTES
    cores = len(os.sched_getaffinity(0))
    on = f" ({cores} processes)" if cores > 1 else ""

    def kyso_audit_verify() -> subprocess.CompletedProcess:
        command = [
            KYSO,
            "audit",
            "verify",
            str(path),
            "--trust",
            str(root_pem),
        ]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    result = kyso_audit_verify()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: 20000 entries, 2 checkpoint(s) verified{on}" in result.stdout
    assert "20000 entries checked" in result.stderr  # the progress
    lines = export(chain, cps)
    lines[14_444] = lines[14_444].replace(b'"outcome":"', b'"outcome":"x')
    write(path, lines)
    result = kyso_audit_verify()
    assert result.returncode == 1 and "FAILED: entry seq 14444" in result.stdout, result.stdout


def test_when_no_process_can_be_forked_this_one_checks_every_piece(pristine, tmp_path, monkeypatch):
    chain, cps = pristine
    path = write(tmp_path / "audit.jsonl", export(chain, cps))
    alone = verify(path, 1)

    def no_fork() -> int:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(parallel_scan.os, "fork", no_fork)
    assert verify(path, 3) == alone  # in pieces, all read by this process
