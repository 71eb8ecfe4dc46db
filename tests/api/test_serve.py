"""`kyso serve` on the embedded default, as the README's run command starts it."""

from __future__ import annotations

import json
import re
import socket
import stat
import time
import urllib.request
from pathlib import Path

from serving import kyso_serve
from support import corpus_pdfs


def test_serve_with_no_configuration_creates_dev_clients_and_says_where_their_keys_are(tmp_path: Path) -> None:
    with kyso_serve(tmp_path) as (url, _proc, log):
        keys_file = tmp_path / "dev-api-keys.txt"
        assert keys_file.exists()
        assert stat.S_IMODE(keys_file.stat().st_mode) == 0o600
        printed = log.read_text()
        assert f"listening on {url}" in printed
        assert str(keys_file.name) in printed
        names = {line.split()[0]: line.split()[2] for line in keys_file.read_text().splitlines() if not line.startswith("#")}
        assert set(names) == {"dev-his", "dev-auditor"}
        req = urllib.request.Request(url + "/api/v1/keys", headers={"Authorization": f"Bearer {names['dev-his']}"})
        with urllib.request.urlopen(req) as r:
            aliases = {k["alias"] for k in json.load(r)["keys"]}
        assert {"hospital-seal", "lab-seal", "dr-revoked"} <= aliases


def test_a_body_over_the_limit_is_refused_from_its_content_length_before_it_is_sent(tmp_path: Path) -> None:
    with kyso_serve(tmp_path) as (url, _proc, _log):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            # Announce 1 GiB and send none of it: the answer must come anyway.
            s.sendall(
                b"POST /api/v1/sign/pdf?key=hospital-seal HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/pdf\r\nContent-Length: 1073741824\r\n\r\n"
            )
            started = time.monotonic()
            answer = s.recv(65536)
            while b"\r\n\r\n" not in answer:
                answer += s.recv(65536)
            head, _, body = answer.partition(b"\r\n\r\n")
            length = int(next(h for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")).split(b":")[1])
            while len(body) < length:
                body += s.recv(65536)
            assert time.monotonic() - started < 5
        assert head.startswith(b"HTTP/1.1 413")
        assert b"application/problem+json" in head
        assert b'"payload_too_large"' in body


def test_metrics_count_the_requests_of_every_worker(tmp_path: Path) -> None:
    with kyso_serve(tmp_path, "--workers", "3", "--threads", "2") as (url, _proc, _log):
        for _ in range(40):  # a new connection each: gunicorn spreads them over the workers
            with urllib.request.urlopen(url + "/healthz", timeout=10) as r:
                assert r.status == 200
        counts = []
        for _ in range(6):
            with urllib.request.urlopen(url + "/metrics", timeout=10) as r:
                text = r.read().decode()
            assert "kyso_audit_entries" in text
            found = re.findall(r'kyso_http_requests_total\{[^}]*endpoint="([^"]+)"[^}]*\} ([0-9.e+]+)', text)
            counts.append(sum(float(v) for name, v in found if name.endswith("healthz")))
    assert min(counts) >= 40, counts  # one worker alone saw about a third of them


def chunked_post(url: str, path: str, headers: dict[str, str], body: bytes) -> tuple[bytes, bytes]:
    """POST ``body`` with Transfer-Encoding: chunked (no Content-Length); (head, body) of the answer."""
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        lines = [f"POST {path} HTTP/1.1", "Host: x", "Transfer-Encoding: chunked", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        try:
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                s.sendall(b"%x\r\n" % len(piece) + piece + b"\r\n")
            s.sendall(b"0\r\n\r\n")
        except OSError:  # the server may answer and close before the body ends
            pass
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    head, _, rest = answer.partition(b"\r\n\r\n")
    return head, rest


def test_a_chunked_body_is_read_whole_and_one_over_the_limit_is_refused_not_cut_short(tmp_path: Path) -> None:
    pdf = corpus_pdfs()[5].read_bytes()
    limit = len(pdf) + 1000
    with kyso_serve(tmp_path, env={"KYSO_MAX_BODY_BYTES": str(limit)}) as (url, _proc, _log):
        his = next(line.split()[-1] for line in (tmp_path / "dev-api-keys.txt").read_text().splitlines() if "dev-his" in line)
        headers = {"Authorization": f"Bearer {his}", "Content-Type": "application/pdf"}
        head, body = chunked_post(url, "/api/v1/sign/pdf?key=hospital-seal&level=B-B", headers, pdf)
        assert head.startswith(b"HTTP/1.1 200"), head + body[:300]
        # A body that grew past the limit (an incremental update appended to the same
        # PDF) must not be signed as its first revision, which its first bytes still are.
        grown = pdf + b"\n% a later revision\n" + b"0" * 2000
        head, body = chunked_post(url, "/api/v1/sign/pdf?key=hospital-seal&level=B-B", headers, grown)
        assert head.startswith(b"HTTP/1.1 413"), head + body[:300]
        assert b'"payload_too_large"' in body
