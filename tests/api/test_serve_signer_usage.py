"""Certificates sign only what they are for, on a real ``kyso serve``: the TSA's
certificate (extended key usage timeStamping alone) starts no signing session, and a record
signed with it is never TOTAL_PASSED; the refusal and the report name the reason."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import pytest
import requests
from serving import dev_api_keys, kyso_serve
from support import corpus_pdfs

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.keystore.software import SoftwareKey, load_software_key
from kyso.signer.jades import sign_json
from kyso.signer.pades import PdfSignOptions, async_sign_pdf

PKI = dev_pki_dir()


def dev_key(alias: str) -> SoftwareKey:
    chain = (str(PKI / "intermediate-ca.cert.pem"), str(PKI / "root-ca.cert.pem"))
    return load_software_key(alias, PKI / f"{alias}.key.pem", DEV_PASSPHRASE, PKI / f"{alias}.cert.pem", chain)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("serve")
    with kyso_serve(data_dir) as (url, _proc, _log):
        keys = dev_api_keys(data_dir)
        yield url, {"Authorization": f"Bearer {keys['dev-his']}"}


def test_a_signing_session_with_the_tsa_certificate_is_refused_naming_its_usage(served) -> None:
    url, auth = served
    chain = [(PKI / "tsa.cert.pem").read_text(), (PKI / "intermediate-ca.cert.pem").read_text()]
    pdf = base64.b64encode(corpus_pdfs()[0].read_bytes()).decode()
    r = requests.post(
        f"{url}/api/v1/signing-sessions",
        json={"certificate_chain": chain, "level": "B-B", "documents": [{"record_id": "r/1", "pdf": pdf}]},
        headers=auth,
        timeout=60,
    )
    assert (r.status_code, r.json()["code"]) == (422, "certificate_not_for_signing"), r.text
    assert "time_stamping" in r.json()["detail"]


def _verified(url: str, auth: dict[str, str], path: str, **kwargs) -> dict:
    headers = {**auth, **kwargs.pop("headers", {})}
    r = requests.post(f"{url}/api/v1/verify/{path}", headers=headers, timeout=60, **kwargs)
    assert r.status_code == 200, r.text
    return r.json()


def test_a_pdf_signed_with_the_tsa_key_is_not_passed_and_the_report_says_why(served) -> None:
    url, auth = served
    signed = asyncio.run(async_sign_pdf(corpus_pdfs()[0].read_bytes(), dev_key("tsa"), PdfSignOptions(level="B-B"), None))
    report = _verified(url, auth, "pdf", data=signed.pdf, headers={"Content-Type": "application/pdf"})
    (sig,) = report["signatures"]
    assert (report["indication"], sig["sub_indication"]) == ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE")
    assert "time_stamping" in sig["message"]


def test_a_jws_signed_with_the_tsa_key_is_not_passed_and_the_report_says_why(served) -> None:
    url, auth = served
    signed = sign_json({"resourceType": "Observation", "id": "o-1"}, dev_key("tsa"), "B-B", False, None)
    report = _verified(url, auth, "json", json={"signature": signed.jws})
    (sig,) = report["signatures"]
    assert (report["indication"], sig["sub_indication"]) == ("INDETERMINATE", "CHAIN_CONSTRAINTS_FAILURE")
    assert "time_stamping" in sig["message"]


def test_a_seal_still_signs_and_verifies(served) -> None:
    url, auth = served
    r = requests.post(
        f"{url}/api/v1/sign/json", json={"key": "lab-seal", "payload": {"id": 1}, "level": "B-B"}, headers=auth, timeout=60
    )
    assert r.status_code == 200, r.text
    report = _verified(url, auth, "json", json={"signature": r.json()["signature"]})
    assert report["indication"] == "TOTAL_PASSED", report
