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
