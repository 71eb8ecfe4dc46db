"""Every refusal is audited, on SQLite and on PostgreSQL, by a real ``kyso serve``; and the
security headers and the /metrics guard of that server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.message import Message
from pathlib import Path

import pytest
from pg import PostgresServer
from serving import api_key, kyso_serve, post
from support import corpus_pdfs


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer(fsync=False) as server:
        yield server


def get(url: str, path: str, key: str | None = None) -> tuple[int, Message, bytes]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url + path, headers=headers), timeout=30
        ) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def refuse_from_content_length(url: str, key: str) -> bytes:
    port = int(url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"POST /api/v1/verify/pdf HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                  "Content-Type: application/pdf\r\nContent-Length: 1073741824\r\n\r\n".encode())  # fmt: skip
        return s.recv(65536)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_every_refusal_writes_an_audit_entry(
    tmp_path: Path, database: str, request: pytest.FixtureRequest
) -> None:
    env = {"KYSO_METRICS_TOKEN": "metrics-secret-token"}
    if database == "postgresql":
        env["KYSO_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    config = tmp_path / "kyso.toml"
    config.write_text('dev_pki = true\n[metrics]\ntoken_env = "KYSO_METRICS_TOKEN"\n')
    env["KYSO_CONFIG"] = str(config)
    with kyso_serve(tmp_path, env=env) as (url, _proc, _log):
        his, auditor = api_key(tmp_path, "dev-his"), api_key(tmp_path, "dev-auditor")
        refusals = [
            (
                post(url, "/api/v1/verify/pdf", b"%PDF-1.7 not really", his)[0],
                "verify.pdf",
                "invalid_pdf",
            ),
            (
                post(url, "/api/v1/sign/pdf?key=no-such-key", corpus_pdfs()[0].read_bytes(), his)[
                    0
                ],
                "sign.pdf",
                "unknown_key",
            ),
            (
                post(url, "/api/v1/sign/pdf?key=hospital-seal", b"{}", auditor)[0],
                "sign.pdf",
                "forbidden",
            ),
            (
                post(url, "/api/v1/verify/pdf", b"%PDF", "not-a-key")[0],
                "verify.pdf",
                "unauthorized",
            ),
            (
                post(url, "/api/v1/sign/json", b"{", his, "application/json")[0],
                "sign.json",
                "invalid_json",
            ),
            (get(url, "/api/v1/audit/entries", his)[0], "audit.entries", "forbidden"),
            (get(url, "/metrics")[0], "metrics.read", "unauthorized"),
        ]
        assert refuse_from_content_length(url, his).startswith(b"HTTP/1.1 413")
        refusals.append((413, "verify.pdf", "payload_too_large"))
        assert get(url, "/metrics", "metrics-secret-token")[0] == 200
        status, _, body = get(url, "/api/v1/audit/entries?limit=1000", auditor)
        assert status == 200
        entries = json.loads(body)["entries"]
    refused = [
        (e["action"], e["detail"].get("code"))
        for e in entries
        if e["outcome"] in ("denied", "error")
    ]
    for status, action, code in refusals:
        assert 400 <= status < 500, (action, code, status)
        assert any(a.startswith(action.split(".")[0]) and c == code for a, c in refused), (
            action,
            code,
            refused,
        )


def test_the_page_and_the_api_send_the_security_headers(tmp_path: Path) -> None:
    with kyso_serve(tmp_path) as (url, _proc, _log):
        status, page_headers, html = get(url, "/")
        api_status, api_headers, _ = get(url, "/api/v1/keys")
    assert (status, api_status) == (200, 401)
    for headers in (page_headers, api_headers):
        assert headers["X-Frame-Options"] == "DENY"
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert api_headers["Content-Security-Policy"].startswith("default-src 'none'")
    policy = page_headers["Content-Security-Policy"]
    # The page's own inline script and style, and nothing else, are allowed to run.
    for tag, directive in (("script", "script-src"), ("style", "style-src")):
        blocks = re.findall(rf"<{tag}>(.*?)</{tag}>".encode(), html, re.S)
        assert blocks
        allowed = re.search(rf"{directive} ([^;]+)", policy)
        assert allowed is not None
        for block in blocks:
            digest = base64.b64encode(hashlib.sha256(block).digest()).decode()
            assert f"'sha256-{digest}'" in allowed.group(1).split()
    assert "unsafe-inline" not in policy and "connect-src 'self'" in policy


def test_metrics_can_be_limited_to_an_address_list(tmp_path: Path) -> None:
    config = tmp_path / "kyso.toml"
    config.write_text('dev_pki = true\n[metrics]\nallow = ["10.9.8.0/24"]\n')
    with kyso_serve(tmp_path, env={"KYSO_CONFIG": str(config)}) as (url, _proc, _log):
        status, headers, body = get(url, "/metrics")
    assert status == 403
    assert headers["Content-Type"] == "application/problem+json"
    assert b"127.0.0.1" in body  # the front passed on the client's own address
