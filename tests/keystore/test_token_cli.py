"""The clinician's command line: the certificate chain off the token, a whole session from
files in one command against a real server, and clean refusals (exit 2, no traceback)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests
import softhsm
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from serving import kyso_serve
from support import CORPUS
from verifiers import make_nss_db, pdfsig

from kyso.certs.devpki import DEV_PASSPHRASE

KYSO = str(Path(sys.executable).parent / "kyso")
PIN = "clinician-pin-7431"
TOKEN = "workstation-an"  # no other token label is a prefix of it (pkcs11-tool matches by prefix)
SCAN = Path(CORPUS) / "pdf" / "018-base64-image" / "base64image.pdf"  # 2.2 MB: too big for a command line


@pytest.fixture(scope="module")
def token(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> str:
    """dr-an's RSA key and certificate, and dr-binh's P-256 key under its own label."""
    softhsm.process_softhsm(tmp_path_factory.mktemp("softhsm"))
    softhsm.init_token(TOKEN, softhsm.SO_PIN, PIN)
    for index, name in enumerate(("dr-an", "dr-binh"), start=1):
        key = serialization.load_pem_private_key((pki / f"{name}.key.pem").read_bytes(), DEV_PASSPHRASE)
        cert = x509.load_pem_x509_certificate((pki / f"{name}.cert.pem").read_bytes())
        softhsm.import_key_and_cert(TOKEN, PIN, key, cert, name, bytes([index]))  # type: ignore[arg-type]
    return TOKEN


def kyso(*args: str, pin: str | None = PIN, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if k not in ("KYSO_TOKEN_PIN", "KYSO_API_KEY")}
    if pin is not None:
        full["KYSO_TOKEN_PIN"] = pin
    full.update(env)
    return subprocess.run([KYSO, *args], capture_output=True, text=True, env=full, timeout=180,
                          stdin=subprocess.DEVNULL)  # fmt: skip


def test_token_list_pem_prints_the_chosen_certificate_for_a_session(token, pki):
    many = kyso("token", "list", "--module", softhsm.MODULE, "--pem", "--token-label", token)
    assert many.returncode == 2 and "--label" in many.stderr  # two end-entity certificates
    done = kyso("token", "list", "--module", softhsm.MODULE, "--pem", "--token-label", token,
                "--label", "dr-an")  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = x509.load_pem_x509_certificates(done.stdout.encode())
    expected = x509.load_pem_x509_certificate((pki / "dr-an.cert.pem").read_bytes())
    assert printed == [expected]


def test_a_session_of_a_large_scan_and_a_record_is_signed_from_files_in_one_command(token, pki, tmp_path):
    record = tmp_path / "xuat-vien.json"
    record.write_text(json.dumps({"resourceType": "Bundle", "id": "xuất-viện-7"}, ensure_ascii=False))
    (tmp_path / "var").mkdir()
    with kyso_serve(tmp_path / "var") as (url, _proc, _log):
        keys = (tmp_path / "var" / "dev-api-keys.txt").read_text()
        api_key = next(line.split()[2] for line in keys.splitlines() if line.startswith("dev-his "))
        done = kyso(
            "session", "sign", str(SCAN), str(record), "--url", url, "--module", softhsm.MODULE,
            "--token-label", token, "--key-label", "dr-an", "--label", "dr-an",
            "--chain", str(pki / "intermediate-ca.cert.pem"), "--record-id", "scan/1",
            "--record-id", "bundle/7", "--out", str(tmp_path / "out"), KYSO_API_KEY=api_key,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        auth = {"Authorization": f"Bearer {api_key}"}
        records = {
            r: requests.get(f"{url}/api/v1/records/{r}", headers=auth, timeout=30).json()
            for r in ("scan/1", "bundle/7")
        }
    signed = tmp_path / "out" / "base64image.signed.pdf"
    (verdict,) = pdfsig(signed, make_nss_db(tmp_path / "nss", pki / "root-ca.cert.pem"))
    assert verdict.valid and verdict.trusted, verdict.text
    assert "Nguyễn Văn An" in verdict.text
    jws = json.loads((tmp_path / "out" / "xuat-vien.jws.json").read_text())
    assert jws["protected"] and jws["signature"]
    assert [len(records[r]["signatures"]) for r in ("scan/1", "bundle/7")] == [1, 1]


def test_without_a_pin_and_without_a_terminal_the_command_says_so_and_exits_2(token, tmp_path):
    session = {"id": "s", "documents": [{"record_id": None, "algorithm": "RSASSA-PSS-SHA256",
                                          "data_to_sign": "eA==", "digest": "LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE="}]}  # fmt: skip
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session))
    done = kyso("token", "sign-session", str(path), "--module", softhsm.MODULE,
                "--token-label", token, "--key-label", "dr-an", pin=None)  # fmt: skip
    assert done.returncode == 2
    assert "KYSO_TOKEN_PIN" in done.stderr
    assert "Aborted" not in done.stderr and "Traceback" not in done.stderr


def test_an_ec_session_signed_with_an_rsa_key_is_refused_cleanly(token, tmp_path):
    session = {"id": "s", "documents": [{"record_id": None, "algorithm": "ECDSA-SHA256",
                                          "data_to_sign": "eA==", "digest": "LXEWQrcmsEQBYnyp+6wy9chTD7GQPMTbAiWHF5IaSIE="}]}  # fmt: skip
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session))
    done = kyso("token", "sign-session", str(path), "--module", softhsm.MODULE,
                "--token-label", token, "--key-label", "dr-an")  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "does not apply to an RSA key" in done.stderr
    assert "Traceback" not in done.stderr and PIN not in done.stderr + done.stdout
