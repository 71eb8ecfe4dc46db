"""POST /api/v1/sign/xml and /verify/xml: every sample signed in both profiles with RSA
(PSS and PKCS#1 v1.5) and EC keys at B-B and B-T, proven with libxmlsec1 and openssl;
audited and registered; hostile XML refused with nothing signed."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from lxml import etree
from support import HOSTILE_XML, Service, corpus_xml, make_config
from verifiers import (
    libxmlsec13_verify,
    openssl_ts_verify,
    xml_signature_timestamps,
    xmlsec1_verify,
)

from kyso.api import create_app
from kyso.certs.devpki import dev_pki_dir
from kyso.config import KeyConfig
from kyso.service import Kyso

DS = "{http://www.w3.org/2000/09/xmldsig#}"
PKI = dev_pki_dir()
# key alias -> the SignatureMethod of its XAdES signatures
SIGNERS = {
    "hospital-seal": "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
    "seal-pkcs1": "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "lab-seal": "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
}


@pytest.fixture(scope="module")
def xml_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service with one more alias: the hospital seal set to PKCS#1 v1.5 for receivers that need it."""
    data_dir = tmp_path_factory.mktemp("kyso-xml")
    base = make_config(data_dir)
    # The per-key setting is rsa_scheme where the configuration has it, else jws_alg.
    names = {f.name for f in dataclasses.fields(KeyConfig)}
    setting = {"rsa_scheme": "pkcs1v15"} if "rsa_scheme" in names else {"jws_alg": "RS256"}
    v15 = KeyConfig(
        alias="seal-pkcs1",
        key_file=str(PKI / "hospital-seal.key.pem"),
        cert_file=str(PKI / "hospital-seal.cert.pem"),
        chain_files=(str(PKI / "intermediate-ca.cert.pem"), str(PKI / "root-ca.cert.pem")),
        dev_passphrase=True,
        **setting,  # type: ignore[arg-type]
    )
    kyso = Kyso.open(make_config(data_dir, keys=(*base.keys, v15)))
    keys = {
        "his": kyso.add_client("test", "his", "his", ("hospital-seal", "seal-pkcs1", "lab-seal")),
        "auditor": kyso.add_client("test", "auditor", "auditor"),
    }
    yield Service(kyso, create_app(kyso=kyso).test_client(), keys)
    kyso.close()


def sign(service: Service, data: bytes, headers: dict | None = None, **query: str):
    return service.client.post(
        "/api/v1/sign/xml", data=data, query_string=query,
        headers={**service.auth(), "Content-Type": "application/xml", **(headers or {})},
    )  # fmt: skip


def has_slot(path: Path) -> bool:
    return etree.parse(str(path)).getroot().find(".//CHUKYDONVI") is not None


CASES = [
    pytest.param(sample, profile, alias, level, id=f"{sample.stem}-{profile}-{alias}-{level}")
    for sample in corpus_xml()
    for profile in ("bhyt", "xades")
    if profile == "xades" or has_slot(sample)
    for alias in SIGNERS
    for level in ("B-B", "B-T")
]


@pytest.mark.parametrize(("sample", "profile", "alias", "level"), CASES)
def test_every_sample_is_signed_through_the_api_and_verified_independently(
    xml_service: Service, sample: Path, profile: str, alias: str, level: str,
    tmp_path: Path, root_pem: Path, chain_pem: Path,
) -> None:
    record_id = f"xml/{sample.stem}/{profile}/{alias}/{level}"
    resp = sign(xml_service, sample.read_bytes(), key=alias, level=level, profile=profile, record_id=record_id)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.mimetype == "application/xml"
    body = resp.get_data()
    assert resp.headers["Kyso-Document-SHA256"] == hashlib.sha256(body).hexdigest()
    seq = int(resp.headers["Kyso-Audit-Seq"])

    method = etree.fromstring(body).find(f".//{DS}SignatureMethod").get("Algorithm")
    expected = SIGNERS[alias] if profile == "xades" or alias == "lab-seal" else SIGNERS["seal-pkcs1"]
    assert method == expected
    out = tmp_path / "signed.xml"
    out.write_bytes(body)
    if method.endswith("MGF1"):
        libxmlsec13_verify(body, root_pem, chain_pem)
    else:
        result = xmlsec1_verify(out, root_pem, chain_pem)
        assert result.returncode == 0, result.stderr
    for token, covered in xml_signature_timestamps(body):
        checked = openssl_ts_verify(token, covered, root_pem, chain_pem, tmp_path)
        assert checked.returncode == 0, checked.stderr
    assert len(xml_signature_timestamps(body)) == (level == "B-T")

    entry = xml_service.kyso.audit.entries(after=seq - 1, limit=1)[0]
    assert (entry["seq"], entry["action"], entry["outcome"], entry["key"]) == (seq, "sign.xml", "ok", alias)
    assert entry["document_sha256"] == hashlib.sha256(sample.read_bytes()).hexdigest()
    assert entry["detail"] == {"level": level, "profile": profile}
    rows = xml_service.client.get(f"/api/v1/records/{record_id}", headers=xml_service.auth()).json["signatures"]
    assert [(r["audit_seq"], r["level"]) for r in rows] == [(seq, level)]

    report = xml_service.client.post(
        "/api/v1/verify/xml", data=body, headers={**xml_service.auth("auditor"), "Content-Type": "application/xml"}
    ).json
    assert report["indication"] == "TOTAL_PASSED", report
    assert entry["signature_sha256"] == resp.headers["Kyso-Document-SHA256"]
    assert report["signatures"][0]["registered"] == {"audit_seq": seq, "record_id": record_id}
    changed = xml_service.client.post(
        "/api/v1/verify/xml", data=body.replace(b"?>\n", b"?>\n\n", 1), headers={**xml_service.auth(), "Content-Type": "application/xml"}
    ).json  # the same signed content, but not the file kyso returned
    assert changed["indication"] == "TOTAL_PASSED" and changed["signatures"][0]["registered"] is None


def test_the_profile_is_bhyt_when_the_record_has_chukydonvi_and_xades_otherwise(xml_service: Service) -> None:
    for sample in corpus_xml():
        resp = sign(xml_service, sample.read_bytes(), key="lab-seal", level="B-B")
        signature = etree.fromstring(resp.get_data()).find(f".//{DS}Signature")
        assert signature.getparent().tag == ("CHUKYDONVI" if has_slot(sample) else etree.fromstring(sample.read_bytes()).tag)


def sign_xml_entries(service: Service) -> list[dict]:
    return [e for e in service.kyso.audit.entries(after=-1, limit=100_000) if e["action"] == "sign.xml"]


@pytest.mark.parametrize("name", sorted(HOSTILE_XML))
def test_hostile_xml_gets_400_invalid_xml_and_nothing_is_signed(xml_service: Service, name: str) -> None:
    before = sign_xml_entries(xml_service)
    resp = sign(xml_service, HOSTILE_XML[name], key="hospital-seal", record_id=f"hostile/{name}")
    assert resp.status_code == 400, resp.get_data(as_text=True)
    assert resp.mimetype == "application/problem+json" and resp.json["code"] == "invalid_xml"
    after = sign_xml_entries(xml_service)
    new = after[len(before):]
    assert [(e["outcome"], e["detail"]["code"]) for e in new] == [("error", "invalid_xml")]
    rows = xml_service.client.get(f"/api/v1/records/hostile/{name}", headers=xml_service.auth())
    assert (rows.status_code, rows.json["code"]) == (404, "not_found")
    verified = xml_service.client.post(
        "/api/v1/verify/xml", data=HOSTILE_XML[name], headers={**xml_service.auth(), "Content-Type": "application/xml"}
    )
    assert verified.status_code == 400 and verified.json["code"] == "invalid_xml"


def test_a_retry_with_the_same_idempotency_key_gets_the_same_bytes_and_no_second_entry(xml_service: Service) -> None:
    data = corpus_xml()[0].read_bytes()
    first = sign(xml_service, data, {"Idempotency-Key": "xml-1"}, key="hospital-seal", record_id="idem/xml")
    count = len(sign_xml_entries(xml_service))
    again = sign(xml_service, data, {"Idempotency-Key": "xml-1"}, key="hospital-seal", record_id="idem/xml")
    assert again.status_code == 200 and again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Kyso-Audit-Seq"] == first.headers["Kyso-Audit-Seq"]
    assert len(sign_xml_entries(xml_service)) == count
    other = sign(xml_service, data, {"Idempotency-Key": "xml-1"}, key="lab-seal", record_id="idem/xml")
    assert other.status_code == 409 and other.json["code"] == "idempotency_conflict"


@pytest.mark.parametrize(
    ("query", "data", "code"),
    [
        ({"profile": "bhyt"}, "hl7-cda-discharge-excerpt.xml", "invalid_request"),
        ({"profile": "pades"}, "giay-chung-sinh.xml", "invalid_request"),
        ({"level": "B-LT"}, "giay-chung-sinh.xml", "invalid_request"),
        ({"key": "nope"}, "giay-chung-sinh.xml", "unknown_key"),
        # the limits on names every route keeps (kyso.api.fields), as sign/pdf keeps them
        ({"record_id": "hs/\u200b42"}, "giay-chung-sinh.xml", "invalid_request"),
        ({"record_id": " hs/42"}, "giay-chung-sinh.xml", "invalid_request"),
    ],
)
def test_bad_requests_are_named(xml_service: Service, query: dict, data: str, code: str) -> None:
    path = next(p for p in corpus_xml() if p.name == data)
    resp = sign(xml_service, path.read_bytes(), **{"key": "hospital-seal", **query})
    assert resp.status_code == 400 and resp.json["code"] == code, resp.json


def test_a_signed_record_is_not_signed_again_and_other_media_types_are_refused(xml_service: Service) -> None:
    signed = sign(xml_service, corpus_xml()[0].read_bytes(), key="lab-seal", level="B-B").get_data()
    again = sign(xml_service, signed, key="lab-seal", level="B-B", profile="xades")
    assert again.status_code == 400 and "already carries" in again.json["detail"]
    wrong = sign(xml_service, signed, {"Content-Type": "application/pdf"}, key="lab-seal")
    assert wrong.status_code == 415 and wrong.json["code"] == "unsupported_media_type"


def test_an_auditor_verifies_but_does_not_sign(xml_service: Service) -> None:
    data = corpus_xml()[0].read_bytes()
    resp = xml_service.client.post(
        "/api/v1/sign/xml?key=lab-seal", data=data, headers={**xml_service.auth("auditor"), "Content-Type": "application/xml"}
    )
    assert resp.status_code == 403
    report = xml_service.client.post(
        "/api/v1/verify/xml", data=data, headers={**xml_service.auth("auditor"), "Content-Type": "text/xml"}
    )
    assert report.status_code == 200 and report.json["signatures"] == [] and report.json["indication"] == "TOTAL_FAILED"
    entry = xml_service.kyso.audit.entries(after=-1, limit=100_000)[-1]
    assert (entry["action"], entry["actor"]) == ("verify.xml", "auditor")
