"""No fetch on behalf of untrusted input, on a real ``kyso serve``.

A record sent anonymously to the public page, with a self-made certificate whose addresses
point at a server of the test's, makes kyso fetch nothing, even where the configuration
allows loopback addresses; a stalling address costs nothing and is never a 500. For chains
that reach a configured root, revocation data is fetched, within one time budget per
request however many signatures point at a stalling responder. The embedded default judges
the revocation of the dev PKI in process: a PDF signed with its published revoked key is
REVOKED although nothing listens on 127.0.0.1:8080.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from forged import leaf_pointing_at, own_ca
from hostile_net import CountingServer, StallingServer
from serving import kyso_serve
from support import corpus_pdfs

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.keystore.software import load_software_key
from kyso.signer.jades import sign_json
from kyso.signer.pades import PdfSignOptions, async_sign_pdf

PKI = dev_pki_dir()
PDF = corpus_pdfs()[0].read_bytes()


def page_verify(url: str, **kwargs) -> tuple[requests.Response, float]:
    started = time.monotonic()
    r = requests.post(f"{url}/page/verify", timeout=120, **kwargs)
    return r, time.monotonic() - started


def signed_pdf(key, times: int = 1) -> bytes:
    data = PDF
    for _ in range(times):
        data = asyncio.run(async_sign_pdf(data, key, PdfSignOptions(level="B-B"), None)).pdf
    return data


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[CountingServer, StallingServer]]:
    counting, stalling = CountingServer(), StallingServer()
    yield counting, stalling
    counting.close()
    stalling.close()


@pytest.fixture(scope="module")
def loose_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The embedded default (dev PKI), told that loopback addresses may be fetched from."""
    data_dir = tmp_path_factory.mktemp("loose")
    config = data_dir / "kyso.toml"
    config.write_text("dev_pki = true\n[trust]\nfetch_allow_private = true\n")
    with kyso_serve(data_dir, env={"KYSO_CONFIG": str(config)}) as (url, _proc, _log):
        yield url


def test_an_anonymous_record_with_a_self_made_certificate_makes_kyso_fetch_nothing(
    loose_default, servers
) -> None:
    counting, _ = servers
    ca, ca_key = own_ca("Nobody's CA")
    key = leaf_pointing_at(ca, ca_key, counting.base)
    jws = sign_json({"resourceType": "Bundle"}, key, "B-B", False, None).jws
    r, _ = page_verify(loose_default, json={"signature": jws})
    assert r.status_code == 200 and r.json()["signatures"][0]["sub_indication"] == "NO_CERTIFICATE_CHAIN_FOUND"
    r, _ = page_verify(loose_default, data=signed_pdf(key), headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200 and r.json()["indication"] != "TOTAL_PASSED"
    assert counting.requests == []


def test_a_stalling_address_of_an_untrusted_certificate_costs_nothing(loose_default, servers) -> None:
    _, stalling = servers
    ca, ca_key = own_ca("Nobody's CA")
    key = leaf_pointing_at(ca, ca_key, stalling.base)
    jws = sign_json({"resourceType": "Bundle"}, key, "B-B", False, None).jws
    r, elapsed = page_verify(loose_default, json={"signature": jws})
    assert r.status_code == 200, r.text
    assert elapsed < 3, elapsed
    r, elapsed = page_verify(loose_default, data=signed_pdf(key, 3), headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200 and elapsed < 5, elapsed


@pytest.fixture(scope="module")
def trusting_own_ca(tmp_path_factory: pytest.TempPathFactory):
    """A production service (no dev PKI) whose one root is a CA of the test's, fetching
    from loopback with a 1 s timeout and a 2 s budget per request."""
    data_dir = tmp_path_factory.mktemp("prod")
    ca, ca_key = own_ca("Configured CA")
    root = data_dir / "root.pem"
    root.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    config = data_dir / "kyso.toml"
    config.write_text(
        f'[trust]\nroots = ["{root}"]\nfetch_allow_private = true\n'
        "fetch_timeout_seconds = 1\nfetch_budget_seconds = 2\n"
    )
    with kyso_serve(data_dir, env={"KYSO_CONFIG": str(config)}) as (url, _proc, _log):
        yield url, ca, ca_key


def test_revocation_of_a_trusted_chain_is_fetched(trusting_own_ca, servers) -> None:
    url, ca, ca_key = trusting_own_ca
    counting, _ = servers
    key = leaf_pointing_at(ca, ca_key, counting.base)
    before = len(counting.requests)
    r, _ = page_verify(url, data=signed_pdf(key), headers={"Content-Type": "application/pdf"})
    (sig,) = r.json()["signatures"]
    assert (sig["trusted"], sig["revocation"]) == (True, "unknown")
    asked = counting.requests[before:]
    assert "/ca.crl" in asked and "/ocsp" in asked
    assert not any(path.startswith("/issuer-") for path in asked)  # no issuer chasing


def test_many_signatures_pointing_at_a_stalling_responder_share_one_budget(
    trusting_own_ca, servers
) -> None:
    url, ca, ca_key = trusting_own_ca
    _, stalling = servers
    key = leaf_pointing_at(ca, ca_key, stalling.base)
    data = signed_pdf(key, 6)
    r, elapsed = page_verify(url, data=data, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text
    assert [s["revocation"] for s in r.json()["signatures"]] == ["unknown"] * 6
    assert elapsed < 5, elapsed  # 6 signatures x 1 s without the 2 s budget


@pytest.fixture(scope="module")
def embedded_default(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("default")
    with kyso_serve(data_dir) as (url, _proc, _log):
        assert not url.endswith(":8080")
        yield url


def _dev_key(alias: str):
    chain = (str(PKI / "intermediate-ca.cert.pem"), str(PKI / "root-ca.cert.pem"))
    return load_software_key(alias, PKI / f"{alias}.key.pem", DEV_PASSPHRASE, PKI / f"{alias}.cert.pem", chain)


def test_the_published_revoked_dev_key_is_revoked_without_a_server_on_8080(embedded_default) -> None:
    key = _dev_key("dr-revoked")
    r, _ = page_verify(embedded_default, data=signed_pdf(key), headers={"Content-Type": "application/pdf"})
    (sig,) = r.json()["signatures"]
    assert (sig["indication"], sig["sub_indication"], sig["revocation"]) == ("TOTAL_FAILED", "REVOKED", "revoked")
    jws = sign_json({"id": 1}, key, "B-B", False, None).jws
    r, _ = page_verify(embedded_default, json={"signature": jws})
    (sig,) = r.json()["signatures"]
    assert (sig["indication"], sig["revocation"]) == ("TOTAL_FAILED", "revoked")
    good = page_verify(embedded_default, data=signed_pdf(_dev_key("hospital-seal")), headers={"Content-Type": "application/pdf"})
    assert good[0].json()["signatures"][0]["revocation"] == "good"


