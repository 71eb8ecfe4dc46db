"""Revocation, served and enforced: the dev PKI's CRLs and OCSP responder under /pki, checked
by OpenSSL and pdfsig over loopback, and the refusal of revoked, expired and not yet valid
signer certificates before anything is signed."""

from __future__ import annotations

import asyncio
import base64
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from asn1crypto import ocsp as asn1_ocsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from ltv_support import LtvPki, dead_url, issue_leaf, open_service
from support import Service, corpus_pdfs
from verifiers import pdfsig

from kyso.certs.responder import DevRevocation, Revoked
from kyso.errors import RevocationUnavailable
from kyso.keystore.software import load_certificates
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.trust.revocation import RevocationChecker
from kyso.trust.store import TrustStore


def cert_pem(pki: LtvPki, name: str) -> Path:
    return pki.directory / f"{name}.cert.pem"


def load(pki: LtvPki, name: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate(cert_pem(pki, name).read_bytes())


def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def ocsp_request(pki: LtvPki, name: str, tmp_path: Path, issuer: Path | None = None) -> bytes:
    """A DER OCSP request (with a nonce) about ``name``, as OpenSSL makes it."""
    out = tmp_path / f"{name}.req"
    issuer = issuer or cert_pem(pki, "intermediate-ca")
    subprocess.run(
        ["openssl", "ocsp", "-issuer", str(issuer), "-cert", str(cert_pem(pki, name)),
         "-reqout", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    return out.read_bytes()


# -- what /pki publishes --------------------------------------------------------------------


@pytest.mark.parametrize("ca", ["root-ca", "intermediate-ca"])
def test_each_ca_publishes_a_crl_issued_now_that_openssl_verifies(
    ltv_pki: LtvPki, tmp_path: Path, ca: str
) -> None:
    resp = requests.get(f"{ltv_pki.base_url}/pki/{ca}.crl", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/pkix-crl"
    crl = x509.load_der_x509_crl(resp.content)
    now = datetime.now(UTC)
    assert crl.last_update_utc.microsecond == 0
    assert abs((now - crl.last_update_utc).total_seconds()) < 60
    assert crl.next_update_utc - crl.last_update_utc == timedelta(days=7)
    (tmp_path / "crl.der").write_bytes(resp.content)
    check = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(tmp_path / "crl.der"), "-noout",
         "-CAfile", str(ltv_pki.chain_pem)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "verify OK" in check.stdout + check.stderr, check.stderr


def test_the_intermediate_crl_lists_the_revoked_clinician(ltv_pki: LtvPki) -> None:
    crl = x509.load_der_x509_crl(
        requests.get(f"{ltv_pki.base_url}/pki/intermediate-ca.crl", timeout=10).content
    )
    entry = crl.get_revoked_certificate_by_serial_number(load(ltv_pki, "dr-revoked").serial_number)
    assert entry is not None
    assert (
        entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
        == x509.ReasonFlags.key_compromise
    )
    assert (
        crl.get_revoked_certificate_by_serial_number(load(ltv_pki, "dr-an").serial_number) is None
    )


def test_the_ca_certificates_are_published_in_der(ltv_pki: LtvPki) -> None:
    resp = requests.get(f"{ltv_pki.base_url}/pki/intermediate-ca.cer", timeout=10)
    assert resp.status_code == 200
    assert resp.content == load(ltv_pki, "intermediate-ca").public_bytes(serialization.Encoding.DER)
    assert requests.get(f"{ltv_pki.base_url}/pki/no-such-ca.crl", timeout=10).status_code == 404


@pytest.mark.parametrize(
    "name, status", [("dr-an", "good"), ("dr-revoked", "revoked"), ("lab-seal", "good")]
)
def test_openssl_gets_a_signed_ocsp_answer_with_its_nonce(
    ltv_pki: LtvPki, tmp_path: Path, name: str, status: str
) -> None:
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(cert_pem(ltv_pki, "intermediate-ca")),
         "-cert", str(cert_pem(ltv_pki, name)), "-url", f"{ltv_pki.base_url}/pki/ocsp",
         "-CAfile", str(ltv_pki.root_pem)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "Response verify OK" in result.stderr, result.stderr
    assert "nonce" not in result.stderr.lower(), result.stderr  # neither missing nor wrong
    assert f"{cert_pem(ltv_pki, name)}: {status}" in result.stdout, result.stdout
    if status == "revoked":
        assert "Reason: keyCompromise" in result.stdout


def test_ocsp_times_are_whole_seconds_as_nss_requires(ltv_pki: LtvPki, tmp_path: Path) -> None:
    resp = requests.post(
        f"{ltv_pki.base_url}/pki/ocsp",
        data=ocsp_request(ltv_pki, "dr-an", tmp_path),
        headers={"Content-Type": "application/ocsp-request"},
        timeout=10,
    )
    assert resp.headers["Content-Type"] == "application/ocsp-response"
    data = asn1_ocsp.OCSPResponse.load(resp.content).basic_ocsp_response["tbs_response_data"]
    (single,) = data["responses"]
    times = [data["produced_at"], single["this_update"], single["next_update"]]
    assert all(t.contents.endswith(b"Z") and b"." not in t.contents for t in times)
    assert single["cert_status"].name == "good"


def test_a_get_request_is_answered_like_a_post(
    ltv_service: Service, ltv_pki: LtvPki, tmp_path: Path
) -> None:
    encoded = base64.b64encode(ocsp_request(ltv_pki, "dr-revoked", tmp_path)).decode()
    resp = ltv_service.client.get(f"/pki/ocsp/{requests.utils.quote(encoded, safe='')}")
    assert resp.status_code == 200
    basic = asn1_ocsp.OCSPResponse.load(resp.data).basic_ocsp_response
    assert basic["tbs_response_data"]["responses"][0]["cert_status"].name == "revoked"


def test_a_certificate_of_another_issuer_is_unknown(
    ltv_service: Service, tmp_path: Path, pki: Path
) -> None:
    """The shipped dev PKI's certificates are another CA's: this responder does not know them."""
    out = tmp_path / "foreign.req"
    subprocess.run(
        ["openssl", "ocsp", "-issuer", str(pki / "intermediate-ca.cert.pem"),
         "-cert", str(pki / "hospital-seal.cert.pem"), "-reqout", str(out)],
        check=True, capture_output=True,
    )  # fmt: skip
    resp = ltv_service.client.post(
        "/pki/ocsp", data=out.read_bytes(), content_type="application/ocsp-request"
    )
    basic = asn1_ocsp.OCSPResponse.load(resp.data).basic_ocsp_response
    assert basic["tbs_response_data"]["responses"][0]["cert_status"].name == "unknown"


def test_a_malformed_ocsp_request_gets_malformed_request(ltv_service: Service) -> None:
    resp = ltv_service.client.post(
        "/pki/ocsp", data=b"not DER", content_type="application/ocsp-request"
    )
    assert resp.status_code == 200  # RFC 6960: the error is in the OCSP response
    assert asn1_ocsp.OCSPResponse.load(resp.data)["response_status"].native == "malformed_request"


def test_pdfsig_checks_ocsp_live_and_sees_the_revoked_signer(
    ltv_pki: LtvPki, ltv_nssdb: str, tmp_path: Path
) -> None:
    """Signed below the service (which refuses dr-revoked) to see what a validator says."""
    pdf = corpus_pdfs()[0].read_bytes()
    for name, expected in (
        ("dr-revoked", "Certificate has been Revoked."),
        ("dr-an", "Certificate is Trusted."),
    ):
        key = ltv_pki.kyso.keystore.get(name)
        signed = asyncio.run(async_sign_pdf(pdf, key, PdfSignOptions(level="B-B"), None)).pdf
        out = tmp_path / f"{name}.pdf"
        out.write_bytes(signed)
        (verdict,) = pdfsig(out, ltv_nssdb, ocsp=True)
        assert verdict.valid and expected in verdict.text, verdict.text


def test_pki_endpoints_are_absent_without_the_dev_pki(ltv_pki: LtvPki, tmp_path: Path) -> None:
    service = open_service(
        ltv_pki, tmp_path / "prod", f'[trust]\nroots = ["{ltv_pki.root_pem}"]\n', dev_pki=False
    )
    try:
        for path in ("/pki/root-ca.crl", "/pki/root-ca.cer"):
            resp = service.client.get(path)
            assert resp.status_code == 404 and resp.json["code"] == "not_found"
    finally:
        service.kyso.close()


# -- refusing certificates that cannot sign ---------------------------------------------------


def last_entry(service: Service) -> dict:
    return service.kyso.audit.entries(after=service.kyso.audit.size() - 2, limit=1)[0]


def test_a_revoked_signer_is_refused_and_only_the_refusal_is_recorded(ltv_service: Service) -> None:
    size = ltv_service.kyso.audit.size()
    resp = ltv_service.client.post(
        "/api/v1/sign/pdf",
        data=corpus_pdfs()[0].read_bytes(),
        query_string={"key": "dr-revoked", "record_id": "revoked/1"},
        headers={**ltv_service.auth(), "Content-Type": "application/pdf"},
    )
    assert resp.status_code == 422
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json["code"] == "certificate_revoked"
    assert "revoked on 2025-06-01" in resp.json["detail"]
    assert ltv_service.kyso.audit.size() == size + 1
    entry = last_entry(ltv_service)
    assert (entry["action"], entry["outcome"], entry["key"]) == ("sign.pdf", "error", "dr-revoked")
    assert entry["detail"]["code"] == "certificate_revoked"
    assert entry["signature_sha256"] is None
    assert ltv_service.kyso.audit.record_signatures("revoked/1") == []


def test_a_revoked_signer_cannot_sign_json_either(ltv_service: Service) -> None:
    resp = ltv_service.client.post(
        "/api/v1/sign/json",
        json={"key": "dr-revoked", "payload": {"resourceType": "Bundle"}},
        headers=ltv_service.auth(),
    )
    assert (resp.status_code, resp.json["code"]) == (422, "certificate_revoked")


@pytest.mark.parametrize(
    "alias, code",
    [("dr-expired", "certificate_expired"), ("dr-future", "certificate_not_yet_valid")],
)
def test_expired_and_not_yet_valid_signers_keep_their_own_codes(
    service: Service, alias: str, code: str
) -> None:
    resp = service.client.post(
        "/api/v1/sign/pdf",
        data=corpus_pdfs()[0].read_bytes(),
        query_string={"key": alias},
        headers={**service.auth(), "Content-Type": "application/pdf"},
    )
    assert (resp.status_code, resp.json["code"]) == (422, code)


def test_a_revocation_status_is_remembered_until_it_is_stale(ltv_pki: LtvPki) -> None:
    """A certificate revoked after it was checked is refused once the cached answer expires."""
    responder = DevRevocation.from_dir(ltv_pki.directory)  # our own: its list is changed below
    roots = tuple(load_certificates(ltv_pki.root_pem))
    now = [1000.0]
    checker = RevocationChecker(
        TrustStore(tuple(c.dump() for c in roots), in_process=responder), ttl_seconds=300, clock=lambda: now[0]
    )
    cert, chain = asn1(load(ltv_pki, "dr-binh")), (asn1(load(ltv_pki, "intermediate-ca")),)
    assert checker.status(cert, chain).status == "good"
    responder.revoked.append(
        Revoked(
            "intermediate-ca",
            cert.serial_number,
            datetime(2026, 1, 1, tzinfo=UTC),
            x509.ReasonFlags.superseded,
        )
    )
    now[0] += 299
    assert checker.status(cert, chain).status == "good"
    now[0] += 2
    revoked = checker.status(cert, chain)
    assert (revoked.status, revoked.revoked_at) == ("revoked", datetime(2026, 1, 1, tzinfo=UTC))


def _production(pki: LtvPki, data_dir: Path, revocation: str) -> Service:
    toml = (
        f'[trust]\nroots = ["{pki.root_pem}"]\nrevocation = "{revocation}"\nfetch_timeout_seconds = 2\n'
        "fetch_allow_private = true\n"  # the generated PKI serves its CRLs and OCSP on loopback
    )
    return open_service(pki, data_dir, toml, dev_pki=False)


def test_a_production_service_fetches_the_status_from_the_certificate_urls(
    ltv_pki: LtvPki, tmp_path: Path
) -> None:
    service = _production(ltv_pki, tmp_path / "prod", "require")
    try:
        chain = (asn1(load(ltv_pki, "intermediate-ca")),)
        assert service.kyso.check_not_revoked(asn1(load(ltv_pki, "dr-an")), chain) == "good"
    finally:
        service.kyso.close()


@pytest.mark.parametrize("revocation", ["soft-fail", "require"])
def test_an_unreachable_responder_passes_under_soft_fail_and_refuses_under_require(
    ltv_pki: LtvPki, tmp_path: Path, revocation: str
) -> None:
    cert, _ = issue_leaf(ltv_pki, "offline", dead_url())
    chain = (asn1(load(ltv_pki, "intermediate-ca")),)
    service = _production(ltv_pki, tmp_path / revocation, revocation)
    try:
        if revocation == "soft-fail":
            assert service.kyso.check_not_revoked(asn1(cert), chain) == "unknown"
        else:
            with pytest.raises(RevocationUnavailable, match="cannot be established"):
                service.kyso.check_not_revoked(asn1(cert), chain)
    finally:
        service.kyso.close()
