"""A CSC credential as a key alias, through the API: PDF and JSON signed by
certomancer-csc-dummy on loopback, and XML records, accepted by pdfsig, OpenSSL, jwcrypto and
xmlsec1, with the
credential's certificate as the signer; audit checkpoints signed by it; its outage named."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from certomancer.registry import CertLabel
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from csc_server import CscService
from jwcrypto import jwk, jws
from jwcrypto.common import JWSEHeaderParameter
from support import Service, corpus_pdfs, make_config
from verifiers import make_nss_db, openssl_cms_verify, pdfsig, signatures_of

from kyso.api import create_app
from kyso.config import AuditConfig, KeyConfig, TrustConfig
from kyso.service import Kyso

TOKEN = "csc-bearer-TEST-ONLY-api"


@pytest.fixture(scope="module")
def csc_kyso(tmp_path_factory: pytest.TempPathFactory, csc_service: CscService, root_pem: Path) -> Iterator[Service]:
    """kyso with ``remote-seal`` (RSA) and ``remote-lab`` (P-256) held by the CSC service, the
    CSC root trusted, and ``remote-seal`` signing the audit checkpoints."""
    data = tmp_path_factory.mktemp("kyso-csc")
    token_file = data / "csc-token"
    token_file.write_text(TOKEN)
    base = make_config(data)
    remote = tuple(
        KeyConfig(alias=alias, kind="csc", url=csc_service.url, credential_id=csc_service.credential(label), token_file=str(token_file))
        for alias, label in (("remote-seal", "seal"), ("remote-lab", "seal-ec"))
    )
    config = make_config(
        data,
        keys=base.keys + remote,
        trust=TrustConfig(roots=(str(root_pem), str(csc_service.root_pem))),
        audit=AuditConfig(log_key="remote-seal", checkpoint_every=0, checkpoint_seconds=0),
    )
    kyso = Kyso.open(config)
    keys = {
        "his": kyso.add_client("test", "his", "his", ("remote-seal", "remote-lab")),
        "admin": kyso.add_client("test", "admin", "admin"),
    }
    yield Service(kyso, create_app(kyso=kyso).test_client(), keys)
    kyso.close()


@pytest.fixture
def csc(csc_service: CscService) -> Iterator[CscService]:
    csc_service.reset()
    csc_service.token = TOKEN
    yield csc_service
    csc_service.reset()


@pytest.fixture(scope="module")
def csc_nssdb(tmp_path_factory: pytest.TempPathFactory, csc_service: CscService) -> str:
    return make_nss_db(tmp_path_factory.mktemp("nss-csc"), csc_service.root_pem)


def credential_der(csc: CscService, label: str) -> bytes:
    return csc.arch.get_cert(CertLabel(label)).dump()


@pytest.mark.parametrize(("alias", "label"), [("remote-seal", "seal"), ("remote-lab", "seal-ec")])
def test_a_csc_key_signs_a_pdf_that_pdfsig_and_openssl_accept(csc_kyso, csc, csc_nssdb, tmp_path, alias, label):
    pdf = corpus_pdfs()[0].read_bytes()
    resp = csc_kyso.client.post(
        "/api/v1/sign/pdf",
        data=pdf,
        query_string={"key": alias, "level": "B-T", "record_id": f"csc/{alias}"},
        headers={**csc_kyso.auth(), "Content-Type": "application/pdf"},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signed = resp.get_data()
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    # These certificates name no CRL or OCSP address: pdfsig's "no OCSP" policy then fails
    # them ("Unknown issue"), its default policy has nothing to fetch and checks the chain.
    verdict = pdfsig(out, csc_nssdb, ocsp=True)[-1]
    assert verdict.valid and verdict.trusted, verdict.text
    cms_der, signed_bytes = signatures_of(signed)[-1]
    result = openssl_cms_verify(cms_der, signed_bytes, csc.root_pem, tmp_path)
    assert result.returncode == 0, result.stderr
    signer_info = cms.ContentInfo.load(cms_der)["content"]
    serial = signer_info["signer_infos"][0]["sid"].chosen["serial_number"].native
    assert serial == asn1_x509.Certificate.load(credential_der(csc, label)).serial_number
    assert csc.methods().count("signatures/signHash") == 1  # one signature: one call


def test_a_csc_key_signs_json_that_jwcrypto_verifies_with_the_credential_certificate(csc_kyso, csc):
    resp = csc_kyso.client.post(
        "/api/v1/sign/json",
        json={"key": "remote-seal", "payload": {"resourceType": "Bundle", "id": "csc-1"}, "level": "B-T"},
        headers=csc_kyso.auth(),
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signature = resp.json["signature"]
    header = json.loads(base64.urlsafe_b64decode(signature["protected"] + "=="))
    assert base64.b64decode(header["x5c"][0]) == credential_der(csc, "seal")
    assert header["kid"] == "remote-seal"
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    token = jws.JWS(header_registry={"sigT": JWSEHeaderParameter("Signing time (JAdES)", True, True, None)})
    token.allowed_algs = ["RS256", "PS256", "ES256"]
    token.deserialize(json.dumps(signature))
    token.verify(jwk.JWK.from_pyca(leaf.public_key()))


def test_the_keys_list_shows_the_csc_key_and_its_chain(csc_kyso, csc):
    keys = {k["alias"]: k for k in csc_kyso.client.get("/api/v1/keys", headers=csc_kyso.auth()).json["keys"]}
    assert keys["remote-seal"]["kind"] == "csc"
    assert keys["remote-lab"]["algorithm"] == "EC-P256"
    assert len(keys["remote-seal"]["chain"]) == 3


def test_an_audit_checkpoint_is_signed_by_the_csc_key(csc_kyso, csc):
    resp = csc_kyso.client.post("/api/v1/audit/checkpoint", headers=csc_kyso.auth("admin"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    checkpoint = resp.json
    cert = x509.load_pem_x509_certificate(checkpoint["certificate"].encode())
    assert cert.public_bytes(serialization.Encoding.DER) == credential_der(csc, "seal")
    cert.public_key().verify(  # type: ignore[union-attr, call-arg]
        base64.b64decode(checkpoint["signature"]), checkpoint["body"].encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_an_unreachable_service_is_503_remote_signer_unavailable_and_readyz_names_the_key(csc_kyso, csc):
    csc.down = True
    csc_kyso.kyso.keystore.get("remote-seal").forget()  # type: ignore[attr-defined]
    resp = csc_kyso.client.post(
        "/api/v1/sign/json", json={"key": "remote-seal", "payload": {"a": 1}, "level": "B-B"}, headers=csc_kyso.auth()
    )
    assert resp.status_code == 503
    assert resp.json["code"] == "remote_signer_unavailable"
    assert TOKEN not in resp.get_data(as_text=True)
    ready = csc_kyso.client.get("/readyz")
    assert ready.status_code == 503
    assert "key:remote-seal" in ready.json["failing"]
    assert ready.json["checks"]["key:remote-seal"] == "failing: remote_signer_unavailable"
    keys = {k["alias"]: k for k in csc_kyso.client.get("/api/v1/keys", headers=csc_kyso.auth()).json["keys"]}
    assert keys["remote-seal"] == {"alias": "remote-seal", "kind": "csc", "health": "remote_signer_unavailable"}
    csc.down = False
    assert csc_kyso.client.get("/readyz").json["checks"]["key:remote-seal"] == "ok"


@pytest.mark.parametrize(("alias", "profile"), [("remote-seal", "bhyt"), ("remote-lab", "xades")])
def test_a_csc_key_signs_an_xml_record_that_xmlsec1_accepts(csc_kyso, csc, tmp_path, alias, profile):
    from support import corpus_xml
    from verifiers import xmlsec1_verify

    record = next(p for p in corpus_xml() if p.name == "bhyt-giamdinhhs-4750.xml").read_bytes()
    resp = csc_kyso.client.post(
        "/api/v1/sign/xml",
        data=record,
        query_string={"key": alias, "level": "B-B", "record_id": f"csc-xml/{alias}", "profile": profile},
        headers={**csc_kyso.auth(), "Content-Type": "application/xml"},
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = tmp_path / "signed.xml"
    out.write_bytes(resp.get_data())
    result = xmlsec1_verify(out, csc.root_pem, csc.root_pem)
    assert result.returncode == 0, result.stderr
    label = "seal" if alias == "remote-seal" else "seal-ec"
    from lxml import etree

    first = etree.fromstring(resp.get_data()).find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    embedded = base64.b64decode("".join(first.text.split()))
    assert embedded == credential_der(csc, label)  # the signer is the credential's certificate
    assert csc.methods().count("signatures/signHash") == 1
