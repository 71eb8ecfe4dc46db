"""PKCS#11 key aliases behind the HTTP API: signatures that independent tools accept, many
threads in several gunicorn workers on one token, a wrong PIN that only its alias feels, and
a PIN that nothing the service writes or answers ever contains."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import requests
from cryptography import x509
from jwcrypto import jwk, jws
from jwcrypto.common import JWSEHeaderParameter
from support import KYSO, Service, corpus_pdfs, make_config
from verifiers import (
    openssl_cms_verify,
    openssl_ts_verify,
    pdfsig,
    signature_timestamp_of,
    signatures_of,
)

from kyso.api import create_app
from kyso.config import KeyConfig, load_config
from kyso.service import Kyso

PIN_ENV = "KYSO_TEST_HSM_PIN"
CANARY_PIN = (
    "canary-PIN-7f3a9"  # kyso-api's PIN (tests/keystore/conftest.py), also used as a wrong one
)
RECORD = {"resourceType": "Observation", "mã": "HbA1c", "value": 6.1}
PDF = corpus_pdfs()[0].read_bytes()


def pkcs11_alias(alias: str, token: str, module: str, pki: Path, pin_env: str) -> KeyConfig:
    chain = (str(pki / "intermediate-ca.cert.pem"), str(pki / "root-ca.cert.pem"))
    return KeyConfig(alias=alias, kind="pkcs11", module=module, token_label=token, key_label=alias,
                     pin_env=pin_env, chain_files=chain)  # fmt: skip


def jwcrypto_verify(signature: dict) -> dict:
    """Verify with the key of x5c[0], sigT registered as understood; the protected header."""
    header = json.loads(base64.urlsafe_b64decode(signature["protected"] + "=="))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    token = jws.JWS(
        header_registry={"sigT": JWSEHeaderParameter("Signing time (JAdES)", True, True, None)}
    )
    token.allowed_algs = ["PS256", "ES256"]
    token.deserialize(json.dumps(signature))
    token.verify(jwk.JWK.from_pyca(leaf.public_key()))
    return header


def check_cms(signed: bytes, root_pem: Path, tmp_path: Path) -> bytes:
    """openssl cms -verify of the PDF's last signature; its CMS."""
    cms_der, signed_bytes = signatures_of(signed)[-1]
    result = openssl_cms_verify(cms_der, signed_bytes, root_pem, tmp_path)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    return cms_der


# -- in this process, through the Flask test client ------------------------------


@pytest.fixture(scope="module")
def hsm_service(
    tmp_path_factory: pytest.TempPathFactory, dev_tokens: Any, pki: Path
) -> Iterator[Service]:
    assert dev_tokens.canary_pin == CANARY_PIN
    os.environ[PIN_ENV] = CANARY_PIN
    base = make_config(tmp_path_factory.mktemp("kyso-hsm"))
    extra = tuple(
        pkcs11_alias(a, "kyso-api", dev_tokens.module, pki, PIN_ENV) for a in ("hsm-rsa", "hsm-ec")
    )
    kyso = Kyso.open(replace(base, keys=base.keys + extra))
    his = kyso.add_client("test", "his", "his", ("hsm-rsa", "hsm-ec"))
    yield Service(kyso, create_app(kyso=kyso).test_client(), {"his": his})
    kyso.close()
    os.environ.pop(PIN_ENV, None)


@pytest.mark.parametrize("level", ["B-B", "B-T"])
@pytest.mark.parametrize("alias", ["hsm-rsa", "hsm-ec"])
def test_token_keys_sign_pdfs_that_pdfsig_and_openssl_accept(
    hsm_service: Service,
    alias: str,
    level: str,
    tmp_path: Path,
    nssdb: str,
    root_pem: Path,
    chain_pem: Path,
) -> None:
    resp = hsm_service.client.post(
        "/api/v1/sign/pdf",
        data=PDF,
        query_string={"key": alias, "level": level},
        headers={**hsm_service.auth(), "Content-Type": "application/pdf"},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signed = resp.get_data()
    (tmp_path / "signed.pdf").write_bytes(signed)
    (verdict,) = pdfsig(tmp_path / "signed.pdf", nssdb)
    assert verdict.valid and verdict.trusted, verdict.text
    assert "HSM" in verdict.text and "seal" in verdict.text
    timestamp = signature_timestamp_of(check_cms(signed, root_pem, tmp_path))
    assert (timestamp is not None) == (level == "B-T")
    if timestamp is not None:
        result = openssl_ts_verify(*timestamp, root_pem, chain_pem, tmp_path)
        assert "Verification: OK" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("level", ["B-B", "B-T"])
@pytest.mark.parametrize(("alias", "alg"), [("hsm-rsa", "PS256"), ("hsm-ec", "ES256")])
def test_token_keys_sign_json_that_jwcrypto_and_openssl_ts_accept(
    hsm_service: Service,
    alias: str,
    alg: str,
    level: str,
    tmp_path: Path,
    root_pem: Path,
    chain_pem: Path,
) -> None:
    resp = hsm_service.client.post(
        "/api/v1/sign/json",
        json={"key": alias, "payload": RECORD, "level": level},
        headers=hsm_service.auth(),
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signature = resp.json["signature"]
    header = jwcrypto_verify(signature)
    assert (header["alg"], header["kid"]) == (alg, alias)
    assert ("header" in signature) == (level == "B-T")
    if level == "B-T":
        token = base64.b64decode(signature["header"]["etsiU"][0]["sigTst"]["tstTokens"][0]["val"])
        result = openssl_ts_verify(
            token, signature["signature"].encode(), root_pem, chain_pem, tmp_path
        )
        assert "Verification: OK" in result.stdout, result.stdout + result.stderr


# -- kyso serve: gunicorn workers, each with its own token session -------------


@dataclass
class Server:
    """A ``kyso serve`` subprocess, and everything it answered (for the PIN search)."""

    url: str
    process: subprocess.Popen
    data_dir: Path
    output: Path  # the server's stdout and stderr
    keys: dict[str, str]
    answers: list[bytes] = field(default_factory=list)

    def call(
        self, method: str, path: str, client: str | None = "his", **kwargs
    ) -> requests.Response:
        headers = kwargs.pop("headers", {})
        if client is not None:
            headers["Authorization"] = f"Bearer {self.keys[client]}"
        resp = requests.request(method, self.url + path, headers=headers, timeout=60, **kwargs)
        self.answers.append(f"{resp.status_code} {dict(resp.headers)}\n".encode() + resp.content)
        return resp

    def sign(self, kind: str, alias: str, level: str = "B-B") -> requests.Response:
        if kind == "pdf":
            return self.call("POST", "/api/v1/sign/pdf", params={"key": alias, "level": level}, data=PDF,
                             headers={"Content-Type": "application/pdf"})  # fmt: skip
        return self.call(
            "POST", "/api/v1/sign/json", json={"key": alias, "payload": RECORD, "level": level}
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _config_toml(dev_tokens: Any, pki: Path) -> str:
    """hsm-rsa and hsm-ec on kyso-api with its real PIN, hsm-b on kyso-second with a wrong one."""
    chain = json.dumps([str(pki / "intermediate-ca.cert.pem"), str(pki / "root-ca.cert.pem")])
    lines = ["dev_pki = true"]
    for alias, token, pin_env in (
        ("hsm-rsa", "kyso-api", "KYSO_HSM_PIN"),
        ("hsm-ec", "kyso-api", "KYSO_HSM_PIN"),
        ("hsm-b", "kyso-second", "KYSO_HSM_B_PIN"),
    ):
        lines += ["", "[[keys]]", f'alias = "{alias}"', 'kind = "pkcs11"', f'module = "{dev_tokens.module}"',
                  f'token_label = "{token}"', f'key_label = "{alias}"', f'pin_env = "{pin_env}"',
                  f"chain_files = {chain}"]  # fmt: skip
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, dev_tokens: Any, pki: Path
) -> Iterator[Server]:
    """A server shared by the tests of this module that leave it running."""
    with _serve(tmp_path_factory.mktemp("kyso-serve"), dev_tokens, pki) as running:
        yield running


@pytest.fixture
def own_server(tmp_path: Path, dev_tokens: Any, pki: Path) -> Iterator[Server]:
    """A server of the test's own, for a test that stops it."""
    with _serve(tmp_path, dev_tokens, pki) as running:
        yield running


@contextmanager
def _serve(home: Path, dev_tokens: Any, pki: Path) -> Iterator[Server]:
    """``kyso serve`` with three workers of four threads, on the configuration above."""
    data_dir, config = home / "data", home / "kyso.toml"
    config.write_text(_config_toml(dev_tokens, pki))
    env = {**os.environ, "KYSO_CONFIG": str(config), "KYSO_DATA_DIR": str(data_dir),
           "KYSO_HSM_PIN": CANARY_PIN, "KYSO_HSM_B_PIN": CANARY_PIN}  # fmt: skip
    # The clients are made here rather than with `kyso clients add`: two interpreters fewer.
    kyso = Kyso.open(load_config(config, env=env))
    try:
        keys = {
            "his": kyso.add_client(
                "test", "his", "his", ("hsm-rsa", "hsm-ec", "hsm-b", "hospital-seal")
            ),
            "auditor": kyso.add_client("test", "auditor", "auditor"),
        }
    finally:
        kyso.close()
    port = _free_port()
    output = home / "server.log"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [KYSO, "serve", "--workers", "3", "--threads", "4", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    running = Server(f"http://127.0.0.1:{port}", process, data_dir, output, keys)
    try:
        _wait_until_up(running)
        yield running
    finally:
        running.stop()


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.process.poll() is None, server.output.read_text()
        try:
            if requests.get(server.url + "/healthz", timeout=2).status_code == 200:
                return
        except requests.RequestException:  # not listening yet, or a worker still booting
            time.sleep(0.2)
    raise AssertionError(f"kyso serve did not start:\n{server.output.read_text()}")


def sign_from_eight_threads(server: Server) -> list[tuple[str, requests.Response]]:
    """40 signatures, PDF and JSON, with both keys of kyso-api, from 8 threads at once."""

    def work(thread: int) -> list[tuple[str, requests.Response]]:
        done = []
        for n in range(5):
            kind = "pdf" if (thread + n) % 2 == 0 else "json"
            alias = ("hsm-rsa", "hsm-ec")[(thread // 2 + n) % 2]
            done.append((kind, server.sign(kind, alias, "B-T" if n == 2 else "B-B")))
        return done

    with ThreadPoolExecutor(8) as pool:
        return [item for batch in pool.map(work, range(8)) for item in batch]


def test_eight_threads_sign_on_one_token_through_three_workers_without_error(
    server: Server, tmp_path: Path, nssdb: str, root_pem: Path
) -> None:
    results = sign_from_eight_threads(server)
    assert len(results) == 40
    failed = [r.text for _, r in results if r.status_code != 200]
    assert failed == [], server.output.read_text()[-20000:]
    for index, (kind, resp) in enumerate(results):
        if kind == "json":
            jwcrypto_verify(resp.json()["signature"])
            continue
        check_cms(resp.content, root_pem, tmp_path)
        if index < 4:  # pdfsig is slower; openssl has checked every one
            (tmp_path / "signed.pdf").write_bytes(resp.content)
            verdicts = pdfsig(tmp_path / "signed.pdf", nssdb)
            assert len(verdicts) == 1  # `all` over nothing would pass
            assert all(v.valid and v.trusted for v in verdicts)
    assert server.output.read_text().count("Booting worker") == 3


def test_a_wrong_pin_makes_only_its_alias_unavailable_and_readyz_names_it(server: Server) -> None:
    refused = server.sign("pdf", "hsm-b")
    assert refused.status_code == 503, refused.text
    assert refused.json()["code"] == "token_unavailable"
    assert "hsm-b" in refused.json()["detail"] and "wrong PIN" in refused.json()["detail"]
    ready = server.call("GET", "/readyz", client=None)
    assert ready.status_code == 503
    assert "key:hsm-b" in ready.json()["failing"]
    assert not {"key:hsm-rsa", "key:hsm-ec", "key:hospital-seal"} & set(ready.json()["failing"])
    for alias in ("hsm-rsa", "hsm-ec", "hospital-seal"):
        assert server.sign("json", alias).status_code == 200


def test_the_canary_pin_appears_in_nothing_the_service_wrote_or_answered(own_server: Server) -> None:
    server = own_server
    # Both uses of the canary in this run: the real PIN of kyso-api, a wrong PIN for kyso-second.
    under_load = sign_from_eight_threads(server)
    assert [r.status_code for _, r in under_load] == [200] * 40, server.output.read_text()[-20000:]
    assert server.sign("pdf", "hsm-rsa").status_code == 200
    assert server.sign("json", "hsm-b").status_code == 503
    server.call("GET", "/readyz", client=None)
    server.call("GET", "/api/v1/keys")
    export = server.call("GET", "/api/v1/audit/export", client="auditor")
    assert export.status_code == 200 and b'"action":"sign.pdf"' in export.content
    server.stop()

    written = {str(p): p.read_bytes() for p in server.data_dir.rglob("*") if p.is_file()}
    assert any(
        b"sign.pdf" in data for name, data in written.items() if "sqlite" in name
    )  # the real database
    haystacks = {**written, "server output": server.output.read_bytes()}
    haystacks |= {f"answer {i}": answer for i, answer in enumerate(server.answers)}
    needles = [
        CANARY_PIN.encode(),
        CANARY_PIN.encode("utf-16-le"),
        base64.b64encode(CANARY_PIN.encode()),
    ]
    leaks = [name for name, data in haystacks.items() if any(n in data for n in needles)]
    assert leaks == []
    assert len(server.answers) > 40  # the answers under load were searched too
