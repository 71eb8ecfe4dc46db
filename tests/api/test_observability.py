"""What `kyso serve` tells its operators: JSON log lines that name each request by the
X-Request-Id its answer carries, no secret in any of them, and the TSA, key and audit
metrics in /metrics."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from ltv_support import dead_url
from serving import api_key, config_env, free_port, kyso_serve
from support import corpus_pdfs

from kyso.certs.devpki import DEV_PASSPHRASE

DEV = Path(__file__).resolve().parents[2] / "certs" / "dev"
CANARY_PASSPHRASE = "canary-passphrase-5b1e9c"
CANARY_API_KEY = "canary-api-key-0d7f42"
CANARY_BODY = "canary-body-a9c3e1"


def request(url: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None):
    """(status, headers, body) of one call; errors are answers too."""
    req = urllib.request.Request(url + path, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def log_lines(log: Path) -> list[dict]:
    """Every line the server wrote, each of which must be one JSON object."""
    lines = []
    for line in log.read_text().splitlines():
        parsed = json.loads(line)  # a line that is not JSON fails here
        assert {"time", "level", "logger", "message"} <= set(parsed), line
        lines.append(parsed)
    return lines


def access_line(log: Path, request_id: str) -> dict:
    """The access log line of a request; gunicorn writes it once the answer is sent, so
    it may come a moment after the client has the answer."""
    deadline = time.monotonic() + 10
    while True:
        found = [
            line for line in log_lines(log)
            if line["logger"] == "gunicorn.access" and line.get("request_id") == request_id
        ]
        if found or time.monotonic() > deadline:
            assert found, f"no access line names {request_id}"
            return found[0]
        time.sleep(0.05)


def canary_key_toml(tmp_path: Path) -> str:
    """A software key whose passphrase is the canary (the dev seal, encrypted again)."""
    key = serialization.load_pem_private_key((DEV / "hospital-seal.key.pem").read_bytes(), DEV_PASSPHRASE)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(CANARY_PASSPHRASE.encode()),
    )  # fmt: skip
    (tmp_path / "canary.key.pem").write_bytes(pem)
    return (
        f'[[keys]]\nalias = "canary-seal"\nkind = "software"\nkey_file = "{tmp_path / "canary.key.pem"}"\n'
        f'cert_file = "{DEV / "hospital-seal.cert.pem"}"\n'
        f'chain_files = ["{DEV / "intermediate-ca.cert.pem"}", "{DEV / "root-ca.cert.pem"}"]\n'
        'passphrase_env = "KYSO_CANARY_PASSPHRASE"\n'
    )


def metric(text: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples whose labels include ``labels``."""
    total = 0.0
    for sample_labels, value in re.findall(rf"^{name}\{{([^}}]*)\}} (\S+)$", text, re.M):
        if all(f'{k}="{v}"' in sample_labels for k, v in labels.items()):
            total += float(value)
    return total


def test_every_log_line_is_json_and_names_the_request_its_answer_names(tmp_path: Path) -> None:
    with kyso_serve(tmp_path, "--workers", "2") as (url, _proc, log):
        status, headers, _ = request(url, "/healthz", {"X-Request-Id": "his-7f3a/batch 12"})
        assert status == 200 and headers["X-Request-Id"] == "his-7f3a/batch 12"  # a sane id is kept
        for insane in ("x" * 129, "tab\there", "bad\x7fbyte"):
            status, headers, _ = request(url, "/healthz", {"X-Request-Id": insane})
            assert status == 200 and headers["X-Request-Id"] != insane
            assert re.fullmatch(r"[0-9a-f]{32}", headers["X-Request-Id"])
        status, headers, _ = request(url, "/no/such/page?record_id=r-1")
        assert status == 404 and headers["Content-Type"] == "application/problem+json"
        missing = headers["X-Request-Id"]
        status, headers, _ = request(url, "/api/v1/keys")  # no Authorization: a problem
        assert status == 401 and headers["X-Request-Id"]
        unauthorized = headers["X-Request-Id"]
        assert missing != unauthorized
        line = access_line(log, missing)
        assert (line["method"], line["path"], line["status"]) == ("GET", "/no/such/page", 404)
        assert "record_id" not in json.dumps(line) and line["duration_ms"] >= 0
        assert access_line(log, unauthorized)["status"] == 401
        assert access_line(log, "his-7f3a/batch 12")["path"] == "/healthz"
        # The front's own refusals (nothing reached the app) name a request id too.
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"NOT HTTP AT ALL\r\n\r\n")
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 400") and re.search(rb"(?im)^x-request-id: [0-9a-f]{32}\r$", answer)


def test_tsa_key_and_audit_metrics_after_a_signature_and_no_secret_in_any_log_line(tmp_path: Path) -> None:
    port = free_port()
    dead, live = dead_url(), f"http://127.0.0.1:{port}/tsa"
    env = config_env(tmp_path, f'[tsa]\nurls = ["{dead}", "{live}"]\nbuiltin = true\ntimeout_seconds = 3\n' + canary_key_toml(tmp_path))
    env["KYSO_CANARY_PASSPHRASE"] = CANARY_PASSPHRASE
    with kyso_serve(tmp_path, "--workers", "2", "--threads", "4", env=env, port=port) as (url, _proc, log):
        his = api_key(tmp_path, "dev-his")
        status, _headers, _ = request(url, "/readyz")
        status, headers, body = request(
            url, "/api/v1/sign/pdf?key=hospital-seal&level=B-T&record_id=obs-1", body=corpus_pdfs()[0].read_bytes(),
            headers={"Authorization": f"Bearer {his}", "Content-Type": "application/pdf", "X-Request-Id": "sign-obs-1"},
        )  # fmt: skip
        assert status == 200, body[:300]
        assert headers["X-Request-Id"] == "sign-obs-1"
        status, _headers, _ = request(
            url, "/api/v1/sign/json", body=json.dumps({"key": "lab-seal", "payload": {"note": CANARY_BODY}}).encode(),
            headers={"Authorization": f"Bearer {CANARY_API_KEY}", "Content-Type": "application/json"},
        )  # fmt: skip
        assert status == 401
        status, _headers, text_bytes = request(url, "/metrics")
        text = text_bytes.decode()
        lines = log_lines(log)
    assert metric(text, "kyso_tsa_request_seconds_count", tsa=live) >= 1
    assert metric(text, "kyso_tsa_failures_total", tsa=dead) >= 1
    assert metric(text, "kyso_tsa_failures_total", tsa=live) == 0
    assert metric(text, "kyso_key_up", alias="hospital-seal") == 1
    assert metric(text, "kyso_key_up", alias="canary-seal") == 1  # /readyz checked it
    assert re.search(r"^kyso_audit_entries \d+", text, re.M)
    assert float(re.search(r"^kyso_audit_entries (\S+)", text, re.M)[1]) >= 1  # type: ignore[index]
    # The dead TSA's warning was written during the signing request, and says which one.
    warning = next(line for line in lines if "timestamp source failed" in line["message"])
    assert warning["request_id"] == "sign-obs-1" and dead in warning["message"]
    everything = log.read_text()
    for secret in (CANARY_PASSPHRASE, CANARY_API_KEY, CANARY_BODY, his, DEV_PASSPHRASE.decode()):
        assert secret not in everything
