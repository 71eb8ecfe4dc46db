"""XML records in two-step signing sessions: the clinician's side signs the canonical
SignedInfo (here with the dev key files, as a token would: ECDSA raw ``r||s``), kyso embeds
and timestamps; libxmlsec1 and openssl agree."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree
from support import Service, corpus_xml
from verifiers import (
    libxmlsec13_verify,
    openssl_ts_verify,
    xml_signature_timestamps,
    xmlsec1_verify,
)

from kyso.certs.devpki import DEV_PASSPHRASE

DS = "{http://www.w3.org/2000/09/xmldsig#}"
ALGORITHMS = {"RSASSA-PKCS1-v1_5-SHA256", "RSASSA-PSS-SHA256", "ECDSA-SHA256"}


def documents() -> list[dict]:
    """Every sample, in each profile it can take."""
    docs = []
    for path in corpus_xml():
        profiles = ["xades"] + (["bhyt"] if b"CHUKYDONVI" in path.read_bytes() else [])
        for profile in profiles:
            docs.append({
                "record_id": f"session-xml/{path.stem}/{profile}",
                "xml": base64.b64encode(path.read_bytes()).decode("ascii"),
                "profile": profile,
            })
    return docs


def token_sign(pki: Path, name: str, data: bytes, algorithm: str) -> bytes:
    """What a clinician's token returns: RSA as is, ECDSA raw ``r||s`` (PKCS#11 CKM_ECDSA)."""
    key = serialization.load_pem_private_key((pki / f"{name}.key.pem").read_bytes(), DEV_PASSPHRASE)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert isinstance(key, rsa.RSAPrivateKey)
    if algorithm == "RSASSA-PSS-SHA256":
        return key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def chain_of(pki: Path, name: str) -> list[str]:
    return [(pki / f"{name}.cert.pem").read_text(), (pki / "intermediate-ca.cert.pem").read_text()]


@pytest.mark.parametrize("level", ["B-B", "B-T"])
@pytest.mark.parametrize(("name", "rsa_scheme"), [("dr-an", "pkcs1v15"), ("dr-an", "pss"), ("dr-binh", "pkcs1v15")])
def test_every_sample_is_signed_in_a_session_and_verified_independently(
    service: Service, pki: Path, name: str, rsa_scheme: str, level: str,
    tmp_path: Path, root_pem: Path, chain_pem: Path,
) -> None:
    docs = documents()
    body = {"certificate_chain": chain_of(pki, name), "level": level, "rsa_scheme": rsa_scheme, "documents": docs}
    started = service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth())
    assert started.status_code == 201, started.get_data(as_text=True)
    prepared = started.json["documents"]
    assert [d["record_id"] for d in prepared] == [d["record_id"] for d in docs]
    for doc, item in zip(docs, prepared, strict=True):
        data = base64.b64decode(item["data_to_sign"])
        assert data.startswith(b"<SignedInfo") or data.startswith(b"<ds:SignedInfo")
        assert base64.b64decode(item["digest"]) == hashlib.sha256(data).digest()
        expected = "ECDSA-SHA256" if name == "dr-binh" else (
            "RSASSA-PSS-SHA256" if rsa_scheme == "pss" and doc["profile"] == "xades" else "RSASSA-PKCS1-v1_5-SHA256"
        )
        assert item["algorithm"] == expected
    signatures = [
        base64.b64encode(token_sign(pki, name, base64.b64decode(d["data_to_sign"]), d["algorithm"])).decode()
        for d in prepared
    ]
    done = service.client.post(
        f"/api/v1/signing-sessions/{started.json['id']}/complete", json={"signatures": signatures},
        headers=service.auth(),
    )  # fmt: skip
    assert done.status_code == 200, done.get_data(as_text=True)
    for doc, result in zip(docs, done.json["documents"], strict=True):
        xml = base64.b64decode(result["xml"])
        out = tmp_path / "signed.xml"
        out.write_bytes(xml)
        method = etree.fromstring(xml).find(f".//{DS}SignatureMethod").get("Algorithm")
        if method.endswith("MGF1"):
            libxmlsec13_verify(xml, root_pem, chain_pem)
        else:
            checked = xmlsec1_verify(out, root_pem, chain_pem)
            assert checked.returncode == 0, checked.stderr
        stamps = xml_signature_timestamps(xml)
        assert len(stamps) == (level == "B-T")
        for token, covered in stamps:
            assert openssl_ts_verify(token, covered, root_pem, chain_pem, tmp_path).returncode == 0
        entry = service.kyso.audit.entries(after=result["audit_seq"] - 1, limit=1)[0]
        assert (entry["action"], entry["outcome"], entry["record_id"]) == ("sign.xml", "ok", doc["record_id"])
        assert entry["detail"]["profile"] == doc["profile"]
        report = service.client.post(
            "/api/v1/verify/xml", data=xml, headers={**service.auth(), "Content-Type": "application/xml"}
        ).json
        assert report["indication"] == "TOTAL_PASSED", report
        assert report["signatures"][0]["registered"]["record_id"] == doc["record_id"]


def test_a_wrong_signature_is_refused_and_nothing_is_written(service: Service, pki: Path) -> None:
    docs = documents()[:2]
    body = {"certificate_chain": chain_of(pki, "dr-an"), "level": "B-B", "documents": docs}
    started = service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth()).json
    good = [token_sign(pki, "dr-an", base64.b64decode(d["data_to_sign"]), d["algorithm"]) for d in started["documents"]]
    bad = [good[0], token_sign(pki, "dr-an", b"something else", "RSASSA-PKCS1-v1_5-SHA256")]
    before = service.kyso.audit.entries(after=-1, limit=100_000)[-1]["seq"]
    refused = service.client.post(
        f"/api/v1/signing-sessions/{started['id']}/complete",
        json={"signatures": [base64.b64encode(s).decode() for s in bad]}, headers=service.auth(),
    )  # fmt: skip
    assert refused.status_code == 400 and refused.json["code"] == "invalid_signature"
    assert "documents[1]" in refused.json["detail"]
    written = service.kyso.audit.entries(after=before, limit=100)
    assert [e["action"] for e in written if e["outcome"] == "ok"] == []
    retried = service.client.post(
        f"/api/v1/signing-sessions/{started['id']}/complete",
        json={"signatures": [base64.b64encode(s).decode() for s in good]}, headers=service.auth(),
    )  # fmt: skip
    assert retried.status_code == 200, retried.get_data(as_text=True)


@pytest.mark.parametrize(
    ("document", "code"),
    [
        ({"xml": base64.b64encode(b'<!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>').decode()}, "invalid_xml"),
        ({"xml": "not base64!"}, "invalid_request"),
        ({"xml": base64.b64encode(b"<r/>").decode(), "profile": "bhyt"}, "invalid_request"),
        ({"json": {"a": 1}, "profile": "xades"}, "invalid_request"),
    ],
)
def test_bad_xml_documents_are_refused_at_the_start(service: Service, pki: Path, document: dict, code: str) -> None:
    body = {"certificate_chain": chain_of(pki, "dr-an"), "level": "B-B", "documents": [{"record_id": "x", **document}]}
    resp = service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth())
    assert resp.status_code == 400 and resp.json["code"] == code, resp.json
