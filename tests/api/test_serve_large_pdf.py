"""A large PDF signed on a real ``kyso serve``: the body goes to a temporary file, is hashed
and signed from it, and the answer is sent from another, so that the worker holds the
document in memory at most once; no temporary file outlives its request."""

from __future__ import annotations

import hashlib
import os
import socket
import time
from pathlib import Path

import pytest
import requests
from hostile import assemble, workers_of
from serving import api_key, kyso_serve
from support import corpus_pdfs
from verifiers import pdfsig

SCAN_BYTES = 40_000_000


def scanned_pdf(size: int) -> bytes:
    """One page showing one image of ``size`` random bytes, as a scanner writes it (noise
    does not compress)."""
    width = 4000
    image = (
        b"<< /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray "
        b"/BitsPerComponent 8 /Length %d >>\nstream\n" % (width, size // width, size // width * width)
        + os.urandom(size // width * width)
        + b"\nendstream"
    )
    return assemble([
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im0 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        image,
        b"<< /Length 31 >>\nstream\nq 595 0 0 842 0 0 cm /Im0 Do Q\nendstream",
    ])  # fmt: skip


def _status(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} for {pid}")


def temporary_files(data_dir: Path, worker: int) -> list[str]:
    """Files in ``<data_dir>/tmp``, and the worker's open files there (deleted or not)."""
    tmp = data_dir / "tmp"
    named = [p.name for p in tmp.iterdir()] if tmp.exists() else []
    held = []
    for fd in Path(f"/proc/{worker}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(tmp)):
            held.append(target)
    return named + held


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("large")
    with kyso_serve(data_dir, "--workers", "1") as (url, proc, _log):
        (worker,) = workers_of(proc.pid)  # one worker to measure
        yield url, data_dir, worker, {"Authorization": f"Bearer {api_key(data_dir, 'dev-his')}"}


def test_a_large_scan_is_signed_from_disk_with_the_worker_growing_by_at_most_twice_the_file(
    server, tmp_path: Path, nssdb: str
) -> None:
    url, data_dir, worker, his = server
    pdf = scanned_pdf(SCAN_BYTES)
    before = _status(worker, "VmRSS")
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # VmHWM from now on
    started = time.monotonic()
    r = requests.post(
        f"{url}/api/v1/sign/pdf", params={"key": "lab-seal", "level": "B-B", "record_id": "scan/1"},
        data=pdf, headers={**his, "Content-Type": "application/pdf"}, timeout=300,
    )  # fmt: skip
    took = time.monotonic() - started
    assert r.status_code == 200, r.text[:300]
    growth = _status(worker, "VmHWM") - before
    print(f"{len(pdf) / 1e6:.0f} MB signed in {took:.2f} s; worker grew by {growth / 1e6:.0f} MB at its peak")
    assert growth <= 2 * len(pdf), (growth, len(pdf))
    signed = r.content
    assert signed.startswith(pdf) and len(signed) > len(pdf)
    assert r.headers["Kyso-Document-SHA256"] == hashlib.sha256(signed).hexdigest()
    assert int(r.headers["Content-Length"]) == len(signed)
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    (verdict,) = pdfsig(out, nssdb)
    assert verdict.valid and verdict.trusted and verdict.total_document, verdict.text
    auditor = {"Authorization": f"Bearer {api_key(data_dir, 'dev-auditor')}"}
    entry = requests.get(f"{url}/api/v1/records/scan/1", headers=auditor, timeout=60).json()["signatures"][-1]
    assert entry["document_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert entry["signature_sha256"] == r.headers["Kyso-Document-SHA256"]
    assert temporary_files(data_dir, worker) == []


def test_no_temporary_file_outlives_a_refused_body(server) -> None:
    url, data_dir, worker, his = server
    pdf = {**his, "Content-Type": "application/pdf"}
    path = f"{url}/api/v1/sign/pdf?key=lab-seal&level=B-B"
    r = requests.post(path, data=b"%PDF-1.7\nnot a pdf at all\n%%EOF\n" * 1000, headers=pdf, timeout=60)
    assert (r.status_code, r.json()["code"]) == (400, "invalid_pdf")
    r = requests.post(path, data=b"<xml/>", headers={**his, "Content-Type": "text/xml"}, timeout=60)
    assert r.status_code == 415
    r = requests.post(path + "&field=a.b", data=corpus_pdfs()[0].read_bytes(), headers=pdf, timeout=60)
    assert r.status_code == 400
    assert temporary_files(data_dir, worker) == []


def test_a_body_over_the_limit_is_refused_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    pdf = corpus_pdfs()[5].read_bytes()
    with kyso_serve(tmp_path, "--workers", "1", env={"KYSO_MAX_BODY_BYTES": str(len(pdf) + 1000)}) as (
        url, proc, _log,
    ):  # fmt: skip
        (worker,) = workers_of(proc.pid)
        his = api_key(tmp_path, "dev-his")
        grown = pdf + b"\n% a later revision\n" + b"0" * 2000
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(
                b"POST /api/v1/sign/pdf?key=lab-seal&level=B-B HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/pdf\r\nConnection: close\r\n"
                b"Authorization: Bearer " + his.encode() + b"\r\nContent-Length: %d\r\n\r\n" % len(grown) + grown
            )
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 413") and b'"payload_too_large"' in answer, answer[:300]
        assert temporary_files(tmp_path, worker) == []
