"""B-LT and B-LTA through the API, and their extension: checked by pdfsig (OCSP live over
loopback), OpenSSL (the CMS, the signature timestamp and the archive timestamps over their
byte ranges), the DSS as a PDF reader sees it, and kyso's report, now and years later."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import crl as asn1_crl
from asn1crypto import ocsp as asn1_ocsp
from cryptography.x509 import load_pem_x509_certificate
from ltv_support import SHORT_LIVED, LtvPki, open_service
from pyhanko.pdf_utils.reader import PdfFileReader
from support import Service, corpus_pdfs
from verifiers import (
    openssl_cms_verify,
    openssl_ts_verify,
    pdfsig,
    signature_timestamp_of,
    signatures_of,
)

from kyso.keystore.software import load_certificates
from kyso.signer.verify.pdf import verify_pdf
from kyso.signer.verify.report import VerifySettings

IN_2035 = datetime(2035, 6, 1, tzinfo=UTC)  # years after SHORT_LIVED expired (end of 2030)


def post(service: Service, path: str, pdf: bytes, **query: str):
    return service.client.post(
        path, data=pdf, query_string=query,
        headers={**service.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip


def sign(service: Service, pdf: bytes, key: str, level: str, **query: str) -> bytes:
    resp = post(service, "/api/v1/sign/pdf", pdf, key=key, level=level, **query)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_data()


def extend(service: Service, pdf: bytes, level: str, **query: str):
    return post(service, "/api/v1/extend/pdf", pdf, level=level, **query)


def dss_of(pdf: bytes) -> dict[str, list[bytes]]:
    """The DER objects of the document's DSS, read as any PDF reader would."""
    dss = PdfFileReader(BytesIO(pdf), strict=False).root["/DSS"]
    return {
        k: [ref.get_object().data for ref in dss.get(k, [])] for k in ("/Certs", "/CRLs", "/OCSPs")
    }


def archive_timestamps(pdf: bytes) -> list[str]:
    return [
        e.field_name
        for e in PdfFileReader(BytesIO(pdf), strict=False).embedded_timestamp_signatures
    ]


def settings(pki: LtvPki, when: datetime | None = None) -> VerifySettings:
    """Offline verification trusting the generated root; at a later moment, with the CRLs
    published then (a validator of that day fetches current revocation data)."""
    crls = tuple(pki.kyso.dev_revocation.crls(now=when)) if when else ()
    return VerifySettings(
        tuple(load_certificates(pki.root_pem)),
        validation_time=when,
        allow_fetching=False,
        crls=crls,
    )


def check_with_openssl(signed: bytes, pki: LtvPki, tmp_path: Path, archived: int) -> None:
    """The CMS and its signature timestamp verify; so does every archive timestamp, as an
    RFC 3161 token over the byte range of its revision."""
    found = signatures_of(signed)
    assert len(found) == 1 + archived
    cms_der, covered = found[0]
    result = openssl_cms_verify(cms_der, covered, pki.root_pem, tmp_path)
    assert "Verification successful" in result.stderr, result.stderr
    token, signature_value = signature_timestamp_of(cms_der)
    result = openssl_ts_verify(token, signature_value, pki.root_pem, pki.chain_pem, tmp_path)
    assert "Verification: OK" in result.stdout, result.stdout + result.stderr
    for token, byte_range in found[1:]:
        result = openssl_ts_verify(token, byte_range, pki.root_pem, pki.chain_pem, tmp_path)
        assert "Verification: OK" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
@pytest.mark.parametrize("key", ["hospital-seal", "lab-seal"])
def test_rsa_and_ec_seals_sign_at_b_lt_and_b_lta_checked_by_every_tool(
    ltv_service: Service, ltv_pki: LtvPki, ltv_nssdb: str, tmp_path: Path, key: str, level: str
) -> None:
    signed = sign(ltv_service, corpus_pdfs()[0].read_bytes(), key, level)
    dss = dss_of(signed)
    issuers = {
        asn1_crl.CertificateList.load(d)["tbs_cert_list"]["issuer"].native["common_name"]
        for d in dss["/CRLs"]
    }
    assert {
        "kyso CA gốc - Root CA (DEV ONLY)",
        "kyso CA trung gian - Issuing CA (DEV ONLY)",
    } <= issuers
    assert len(dss["/Certs"]) >= 3  # the signer's path and the TSA's
    check_with_openssl(signed, ltv_pki, tmp_path, archived=1 if level == "B-LTA" else 0)
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    verdict = pdfsig(out, ltv_nssdb, ocsp=True)[0]
    assert verdict.valid and verdict.trusted, verdict.text
    (sig,) = verify_pdf(signed, settings(ltv_pki)).signatures
    assert (sig.indication, sig.level, sig.revocation, sig.modifications) == (
        "TOTAL_PASSED",
        level,
        "good",
        "NONE",
    )


@pytest.fixture(scope="module")
def short_lived(ltv_service: Service) -> dict[str, bytes]:
    pdf = corpus_pdfs()[1].read_bytes()
    return {level: sign(ltv_service, pdf, SHORT_LIVED, level) for level in ("B-LT", "B-LTA")}


def test_b_lta_passes_years_after_the_signer_certificate_expired(
    short_lived, ltv_pki: LtvPki
) -> None:
    (sig,) = verify_pdf(short_lived["B-LTA"], settings(ltv_pki, IN_2035)).signatures
    assert (sig.indication, sig.level, sig.trusted) == ("TOTAL_PASSED", "B-LTA", True), sig.message


def test_b_lt_passes_years_after_the_signer_certificate_expired(
    short_lived, ltv_pki: LtvPki
) -> None:
    (sig,) = verify_pdf(short_lived["B-LT"], settings(ltv_pki, IN_2035)).signatures
    assert (sig.indication, sig.level) == ("TOTAL_PASSED", "B-LT"), sig.message


def test_a_production_service_fetches_ocsp_over_loopback_for_b_lt(
    ltv_pki: LtvPki, tmp_path: Path, ltv_nssdb: str
) -> None:
    """dev_pki off: revocation data comes from the URLs in the certificates (here the
    generated PKI's server on loopback, which must be allowed), the timestamp from a TSA URL."""
    toml = ltv_pki.key_toml("lab-seal") + (
        f'[trust]\nroots = ["{ltv_pki.root_pem}"]\nrevocation = "require"\nfetch_allow_private = true\n'
        f'[tsa]\nurls = ["{ltv_pki.base_url}/tsa"]\nbuiltin = false\n'
    )
    service = open_service(ltv_pki, tmp_path / "prod", toml, dev_pki=False)
    try:
        signed = sign(service, corpus_pdfs()[0].read_bytes(), "lab-seal", "B-LT")
    finally:
        service.kyso.close()
    dss = dss_of(signed)
    statuses = [
        single["cert_status"].name
        for der in dss["/OCSPs"]
        for single in asn1_ocsp.OCSPResponse.load(der).basic_ocsp_response["tbs_response_data"][
            "responses"
        ]
    ]
    assert statuses and set(statuses) == {"good"}  # the seal's and the TSA's, from /pki/ocsp
    (sig,) = verify_pdf(signed, settings(ltv_pki)).signatures
    assert (sig.indication, sig.level, sig.revocation) == ("TOTAL_PASSED", "B-LT", "good")


# -- extension ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def extended(ltv_service: Service) -> list[bytes]:
    """B-T, then extended to B-LT, to B-LTA, and to B-LTA again."""
    docs = [
        sign(
            ltv_service,
            corpus_pdfs()[2].read_bytes(),
            "hospital-seal",
            "B-T",
            record_id="archive/7",
        )
    ]
    for level in ("B-LT", "B-LTA", "B-LTA"):
        resp = extend(ltv_service, docs[-1], level, record_id="archive/7")
        assert resp.status_code == 200, resp.get_data(as_text=True)
        assert resp.headers["Kyso-Document-SHA256"] == hashlib.sha256(resp.get_data()).hexdigest()
        docs.append(resp.get_data())
    return docs


def test_each_extension_reaches_its_level_and_keeps_what_was_signed(
    extended, ltv_pki: LtvPki
) -> None:
    levels = [verify_pdf(doc, settings(ltv_pki)).signatures[0] for doc in extended]
    assert [(s.indication, s.level) for s in levels] == [
        ("TOTAL_PASSED", "B-T"), ("TOTAL_PASSED", "B-LT"), ("TOTAL_PASSED", "B-LTA"), ("TOTAL_PASSED", "B-LTA"),
    ]  # fmt: skip
    assert [archive_timestamps(doc) for doc in extended] == [
        [],
        [],
        ["Timestamp1"],
        ["Timestamp1", "Timestamp2"],
    ]
    for before, after in zip(extended, extended[1:], strict=False):
        assert after.startswith(before)  # incremental updates only


def test_every_archive_timestamp_verifies_in_openssl(
    extended, ltv_pki: LtvPki, tmp_path: Path
) -> None:
    check_with_openssl(extended[-1], ltv_pki, tmp_path, archived=2)


def test_the_second_archive_timestamp_covers_the_validation_data_of_the_first(extended) -> None:
    """The LTA chain: before a new archive timestamp, the DSS gets what validates the last."""
    reader = PdfFileReader(BytesIO(extended[-1]), strict=False)
    first, second = reader.embedded_timestamp_signatures
    assert second.signed_revision > first.signed_revision
    first_tsa = first.signer_cert.dump()
    covered = PdfFileReader(
        BytesIO(extended[-1][: second.byte_range[2] + second.byte_range[3]]), strict=False
    )
    certs = [ref.get_object().data for ref in covered.root["/DSS"]["/Certs"]]
    assert first_tsa in certs


def cert_end(path: Path) -> str:
    cert = load_pem_x509_certificate(path.read_bytes())
    return cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_each_registered_pdf_says_when_it_must_be_extended_again(
    extended, ltv_service: Service, ltv_pki: LtvPki
) -> None:
    rows = ltv_service.kyso.audit.record_signatures("archive/7")
    signer_end = cert_end(ltv_pki.directory / "hospital-seal.cert.pem")
    tsa_end = cert_end(ltv_pki.directory / "tsa.cert.pem")
    # B-T and B-LT: before the signer certificate ends; B-LTA: before the TSA certificate
    # of the last archive timestamp ends.
    assert [r["extend_before"] for r in rows] == [signer_end, signer_end, tsa_end, tsa_end]
    headers = ltv_service.auth("auditor")
    due = ltv_service.client.get(f"/api/v1/records?extend_before={tsa_end[:10]}", headers=headers)
    assert due.status_code == 200 and "archive/7" not in [r["record_id"] for r in due.json["records"]]
    later = f"{int(tsa_end[:4]) + 1}-01-01"
    due = ltv_service.client.get(f"/api/v1/records?extend_before={later}", headers=headers).json
    (mine,) = [r for r in due["records"] if r["record_id"] == "archive/7"]
    assert (mine["audit_seq"], mine["level"], mine["extend_before"]) == (
        rows[-1]["audit_seq"], "B-LTA", tsa_end,
    )  # fmt: skip
    bad = ltv_service.client.get("/api/v1/records?extend_before=soon", headers=headers)
    assert bad.status_code == 400 and bad.json["code"] == "invalid_request"


def test_extensions_are_audited_and_listed_with_the_record(extended, ltv_service: Service) -> None:
    rows = ltv_service.kyso.audit.record_signatures("archive/7")
    assert [(r["level"], r["key"]) for r in rows] == [
        ("B-T", "hospital-seal"), ("B-LT", None), ("B-LTA", None), ("B-LTA", None),
    ]  # fmt: skip
    assert rows[-1]["signature_sha256"] == hashlib.sha256(extended[-1]).hexdigest()
    assert rows[-1]["document_sha256"] == hashlib.sha256(extended[-2]).hexdigest()
    entry = ltv_service.kyso.audit.entries(after=rows[-1]["audit_seq"] - 1, limit=1)[0]
    assert (entry["action"], entry["outcome"]) == ("extend.pdf", "ok")
    assert entry["detail"] == {
        "level": "B-LTA",
        "signatures": ["Signature1"],
        "archive_timestamp": "Timestamp2",
    }
    # The report names the signature's own registration: the signed output is a prefix.
    report = verify_pdf(
        extended[-1], ltv_service.kyso.verify_settings(), ltv_service.kyso.registered
    )
    assert report.signatures[0].registered == {
        "audit_seq": rows[0]["audit_seq"],
        "record_id": "archive/7",
    }
    assert (
        ltv_service.kyso.registered([rows[-1]["signature_sha256"]])["audit_seq"]
        == rows[-1]["audit_seq"]
    )


def test_an_extension_retried_with_its_idempotency_key_returns_the_same_bytes(
    extended, ltv_service: Service
) -> None:
    headers = {
        **ltv_service.auth(),
        "Content-Type": "application/pdf",
        "Idempotency-Key": "extend-archive-7",
    }
    first = ltv_service.client.post(
        "/api/v1/extend/pdf?level=B-LTA", data=extended[1], headers=headers
    )
    size = ltv_service.kyso.audit.size()
    again = ltv_service.client.post(
        "/api/v1/extend/pdf?level=B-LTA", data=extended[1], headers=headers
    )
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert ltv_service.kyso.audit.size() == size


@pytest.mark.parametrize(
    "query, code",
    [
        ({}, "invalid_request"),
        ({"level": "B-T"}, "invalid_request"),
        ({"level": "B-LTA", "record_id": "x" * 2000}, "invalid_request"),
    ],
)
def test_an_extension_without_a_proper_level_is_refused(
    ltv_service: Service, extended, query, code
) -> None:
    resp = ltv_service.client.post(
        "/api/v1/extend/pdf", data=extended[0], query_string=query,
        headers={**ltv_service.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert (resp.status_code, resp.json["code"]) == (400, code)


def test_documents_that_cannot_be_extended_are_refused_with_the_reason(
    ltv_service: Service,
) -> None:
    unsigned = corpus_pdfs()[0].read_bytes()
    bare = sign(ltv_service, unsigned, "lab-seal", "B-B")
    cases = [
        (unsigned, "invalid_request", "no signature to extend"),
        (bare, "invalid_request", "no signature timestamp"),
        (b"%PDF-1.7 not really", "invalid_pdf", "truncated"),
    ]
    for body, code, words in cases:
        size = ltv_service.kyso.audit.size()
        resp = extend(ltv_service, body, "B-LTA")
        assert (resp.status_code, resp.json["code"]) == (400, code), resp.json
        assert words in resp.json["detail"]
        entry = ltv_service.kyso.audit.entries(after=size - 1, limit=1)[0]
        assert (entry["action"], entry["outcome"]) == ("extend.pdf", "error")


def test_only_his_clients_extend(ltv_service: Service, extended) -> None:
    resp = ltv_service.client.post(
        "/api/v1/extend/pdf?level=B-LT", data=extended[0],
        headers={**ltv_service.auth("auditor"), "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert (resp.status_code, resp.json["code"]) == (403, "forbidden")


def test_the_verify_settings_of_the_service_pass_its_own_b_lta(
    ltv_service: Service, extended
) -> None:
    """The service's own verification (POST /verify/pdf) agrees."""
    resp = ltv_service.client.post(
        "/api/v1/verify/pdf", data=extended[-1],
        headers={**ltv_service.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert resp.status_code == 200
    (sig,) = resp.json["signatures"]
    assert (resp.json["indication"], sig["level"], sig["revocation"]) == (
        "TOTAL_PASSED",
        "B-LTA",
        "good",
    )
