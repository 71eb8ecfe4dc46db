"""``kyso config check`` names every part of a configuration that is wrong, and exits 2."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from kyso.certs.devpki import dev_pki_dir

KYSO = str(Path(sys.executable).parent / "kyso")


def run(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full = {**os.environ, "KYSO_DATA_DIR": str(tmp_path / "var"), **(env or {})}
    full.pop("KYSO_CONFIG", None)
    return subprocess.run([KYSO, *args], env=full, capture_output=True, text=True, timeout=120)


def dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again: nothing listens there


def test_the_embedded_default_passes_every_check(tmp_path):
    result = run(tmp_path, "config", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "FAIL" not in result.stdout
    assert "ok    key hospital-seal" in result.stdout
    assert "ok    tsa: the built-in TSA" in result.stdout


def test_each_broken_part_is_named_and_the_check_exits_2(tmp_path):
    pki = dev_pki_dir()
    config = tmp_path / "kyso.toml"
    config.write_text(
        f"""
dev_pki = false
database_url = "sqlite:///{tmp_path / 'kyso.sqlite3'}"

[[keys]]
alias = "seal-no-secret"
kind = "software"
key_file = "{pki / 'hospital-seal.key.pem'}"
cert_file = "{pki / 'hospital-seal.cert.pem'}"
passphrase_env = "KYSO_TEST_UNSET_PASSPHRASE"

[[keys]]
alias = "seal-wrong-secret"
kind = "software"
key_file = "{pki / 'hospital-seal.key.pem'}"
cert_file = "{pki / 'hospital-seal.cert.pem'}"
passphrase_env = "KYSO_TEST_WRONG_PASSPHRASE"

[[keys]]
alias = "timestamping-cert"
kind = "software"
key_file = "{pki / 'tsa.key.pem'}"
cert_file = "{pki / 'tsa.cert.pem'}"
passphrase_env = "KYSO_TEST_DEV_PASSPHRASE"

[tsa]
urls = ["http://127.0.0.1:{dead_port()}/tsr"]

[trust]
roots = ["{tmp_path / 'no-such-root.pem'}"]
""",
        encoding="utf-8",
    )
    env = {
        "KYSO_TEST_WRONG_PASSPHRASE": "not the passphrase",
        "KYSO_TEST_DEV_PASSPHRASE": "kyso-dev-only",
    }
    result = run(tmp_path, "--config", str(config), "config", "check", env=env)
    out = result.stdout
    assert result.returncode == 2, out + result.stderr
    assert "FAIL  trust:" in out and "no-such-root.pem" in out
    assert "FAIL  key seal-no-secret:" in out and "KYSO_TEST_UNSET_PASSPHRASE is not set" in out
    assert "FAIL  key seal-wrong-secret:" in out
    assert "not the passphrase" not in out + result.stderr  # a secret never reaches the output
    assert "FAIL  key timestamping-cert:" in out and "certificate_not_for_signing" in out
    assert "FAIL  tsa http://127.0.0.1:" in out and "tsa_unavailable" in out
    assert "ok    database:" in out


def test_a_configuration_that_does_not_parse_is_one_clear_line(tmp_path):
    config = tmp_path / "kyso.toml"
    config.write_text("database_url = [unclosed\n", encoding="utf-8")
    result = run(tmp_path, "--config", str(config), "config", "check")
    assert result.returncode == 2
    assert result.stdout.startswith("FAIL  configuration")
    assert "Traceback" not in result.stdout + result.stderr
