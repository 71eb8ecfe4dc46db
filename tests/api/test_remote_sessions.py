"""A clinician's remote signature in a signing session, through the API: a loopback gateway
that follows the published NEAC contract (the clinician's phone is the test), and a CSC
service (certomancer-csc-dummy). Start, poll, results; every bad path clean and audited."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from csc_server import CscService
from jwcrypto import jwk, jws
from jwcrypto.common import JWSEHeaderParameter
from neac_server import SP_SECRET, NeacGateway
from remote_support import (
    AN,
    BINH,
    EXPIRED,
    REVOKED,
    entries_of,
    gateway,
    open_service,
    pdf_doc,
    phone,
    remote_config,
    start,
    status,
    wait_for,
)
from support import Service
from verifiers import openssl_cms_verify, pdfsig, signatures_of

from kyso.db import signing_sessions

__all__ = ["gateway", "phone"]  # fixtures

RECORD = {"resourceType": "Bundle", "id": "chuyen-vien-7", "entry": [{"glucose_mmol_l": 5.6}]}


@pytest.fixture(scope="module")
def remote(tmp_path_factory, gateway: NeacGateway, csc_service: CscService, root_pem: Path) -> Iterator[Service]:
    config = remote_config(tmp_path_factory.mktemp("kyso-remote"), gateway, csc_service, root_pem)
    service = open_service(config)
    yield service
    service.kyso.close()


def jwcrypto_verify(signature: dict) -> dict:
    header = json.loads(base64.urlsafe_b64decode(signature["protected"] + "=="))
    from cryptography import x509

    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    token = jws.JWS(header_registry={"sigT": JWSEHeaderParameter("Signing time (JAdES)", True, True, None)})
    token.allowed_algs = ["RS256", "PS256", "ES256"]
    token.deserialize(json.dumps(signature))
    token.verify(jwk.JWK.from_pyca(leaf.public_key()))
    return header


def test_the_clinician_confirms_on_the_phone_and_kyso_completes_the_session(remote, phone, nssdb, root_pem, pki, tmp_path):
    documents = [pdf_doc(0, "Giấy ra viện"), pdf_doc(1, "Tóm tắt bệnh án"), {"record_id": "transfer/7", "json": RECORD}]
    resp = start(remote, "smartca", AN, documents, description="Ký hồ sơ ra viện", level="B-T")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    started = resp.json
    assert started["status"] == "pending" and started["provider"] == "smartca"
    assert [d["name"] for d in started["documents"]] == ["Giấy ra viện", "Tóm tắt bệnh án", "transfer/7"]

    # What the clinician's phone shows: one transaction, the documents' names, kyso's transaction id.
    tx = phone.transaction(started["transaction_id"])
    assert tx.description == "Ký hồ sơ ra viện"
    assert [f["doc_id"] for f in tx.files] == ["Giấy ra viện", "Tóm tắt bệnh án", "transfer/7"]
    assert [bytes.fromhex(f["data_to_be_signed"]) for f in tx.files] == [
        base64.b64decode(d["digest"]) for d in started["documents"]
    ]
    assert status(remote, started["id"])["status"] == "pending"

    phone.confirm(started["transaction_id"])
    done = wait_for(remote, started["id"], "completed")
    assert [d["record_id"] for d in done["documents"]] == ["encounter/0/discharge", "encounter/1/discharge", "transfer/7"]
    for doc in done["documents"][:2]:
        signed = base64.b64decode(doc["pdf"])
        out = tmp_path / "signed.pdf"
        out.write_bytes(signed)
        verdict = pdfsig(out, nssdb)[-1]
        assert verdict.valid and verdict.trusted, verdict.text
        assert "Nguyễn Văn An" in verdict.text  # the clinician signed, not a seal
        cms_der, signed_bytes = signatures_of(signed)[-1]
        result = openssl_cms_verify(cms_der, signed_bytes, root_pem, tmp_path)
        assert result.returncode == 0, result.stderr
    header = jwcrypto_verify(done["documents"][2]["signature"])
    assert base64.b64decode(header["x5c"][0]) == _der(pki / "dr-an.cert.pem")
    assert header["alg"] == "RS256"
    assert status(remote, started["id"]) == done  # read again: the same answer

    entries = entries_of(remote, started["id"])
    actions = [e["action"] for e in entries]
    assert actions == ["session.start", "sign.pdf", "sign.pdf", "sign.json", "session.complete"]
    for entry in (entries[0], entries[-1]):
        assert entry["detail"]["provider"] == "smartca"
        assert entry["detail"]["transaction_id"] == started["transaction_id"]
    text = json.dumps(entries, ensure_ascii=False)
    assert AN not in text and SP_SECRET not in text and "Giấy ra viện" not in text


def test_an_ec_clinician_who_confirms_at_once_is_completed_at_the_first_read(remote, phone):
    phone.sync = True
    resp = start(remote, "smartca", BINH, [{"record_id": "r/ec", "json": RECORD}], level="B-B")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert resp.json["documents"][0]["algorithm"] == "ECDSA-SHA256"
    done = status(remote, resp.json["id"])
    assert done["status"] == "completed"
    assert jwcrypto_verify(done["documents"][0]["signature"])["alg"] == "ES256"


@pytest.mark.parametrize("vnpt_style", [False, True], ids=["tran_status", "message-only"])
def test_a_clinician_who_rejects_leaves_the_session_rejected_and_nothing_signed(remote, phone, vnpt_style):
    phone.vnpt_style = vnpt_style
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    session, tx = resp.json["id"], resp.json["transaction_id"]
    phone.reject(tx)
    answer = wait_for(remote, session, "rejected")
    assert answer["error"]["code"] == "rejected"
    assert "documents" not in answer
    entries = entries_of(remote, session)
    assert [e["action"] for e in entries] == ["session.start", "session.reject"]
    assert entries[-1]["outcome"] == "denied"
    assert entries[-1]["detail"]["transaction_id"] == tx and entries[-1]["detail"]["provider"] == "smartca"


def test_a_transaction_the_provider_expires_leaves_the_session_expired(remote, phone):
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    phone.expire(resp.json["transaction_id"])
    answer = wait_for(remote, resp.json["id"], "expired")
    assert answer["error"]["code"] == "session_expired"
    assert [e["action"] for e in entries_of(remote, resp.json["id"])] == ["session.start", "session.expire"]


def test_an_unreachable_provider_is_503_with_nothing_stored_and_one_audit_entry(remote, phone):
    phone.down = True
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    assert resp.status_code == 503
    problem = resp.json
    assert problem["code"] == "remote_signer_unavailable"
    assert SP_SECRET not in resp.get_data(as_text=True) and AN not in resp.get_data(as_text=True)
    entry = _last_entries(remote, 1)[0]  # one entry: the API wrote no second one
    assert entry["action"] == "session.start" and entry["outcome"] == "error"
    assert entry["detail"]["provider"] == "smartca"
    assert entry["detail"]["code"] == "remote_signer_unavailable"
    with remote.kyso.db.reader.connect() as conn:
        assert conn.execute(signing_sessions.select().where(signing_sessions.c.id == entry["detail"]["session"])).first() is None


def test_a_provider_that_fails_the_sign_request_is_audited_with_the_transaction_id(remote, phone):
    phone.delay = 3  # longer than the provider's 2 s timeout: the request is given up
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    assert resp.status_code == 503
    assert "no answer within 2 s" in resp.json["detail"]
    entry = _last_entries(remote, 1)[0]
    assert entry["action"] == "session.start" and entry["detail"]["provider"] == "smartca"


def test_a_provider_down_while_the_clinician_decides_is_asked_again_later(remote, phone):
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    phone.down = True
    assert status(remote, resp.json["id"])["status"] == "pending"
    phone.down = False
    phone.confirm(resp.json["transaction_id"])
    wait_for(remote, resp.json["id"], "completed")


def test_a_signature_that_does_not_verify_fails_the_session_and_signs_nothing(remote, phone):
    phone.corrupt = True
    resp = start(remote, "smartca", AN, [pdf_doc(0), pdf_doc(1)], level="B-B")
    phone.confirm(resp.json["transaction_id"])
    answer = wait_for(remote, resp.json["id"], "failed")
    assert answer["error"]["code"] == "invalid_signature"
    entries = entries_of(remote, resp.json["id"])
    assert [e["action"] for e in entries] == ["session.start", "session.fail"]
    assert entries[-1]["detail"]["code"] == "invalid_signature"


def test_a_wrong_signature_returned_at_once_is_invalid_signature_and_nothing_is_stored(remote, phone):
    phone.sync = phone.corrupt = True
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    assert resp.status_code == 400
    assert resp.json["code"] == "invalid_signature"
    entry = _last_entries(remote, 1)[0]
    assert entry["action"] == "session.start" and entry["detail"]["code"] == "invalid_signature"
    assert entry["detail"]["transaction_id"]


@pytest.mark.parametrize(("user", "code"), [(REVOKED, "certificate_revoked"), (EXPIRED, "certificate_expired")])
def test_a_revoked_or_expired_certificate_is_refused_before_anything_is_asked(remote, phone, user, code):
    resp = start(remote, "smartca", user, [pdf_doc(0)], level="B-B")
    assert resp.status_code == 422
    assert resp.json["code"] == code
    assert [path for path, _ in phone.calls] == ["v1/credentials/get_certificate"]


def test_a_csc_credential_signs_a_session_of_three_documents_under_one_authorisation(remote, csc_service, tmp_path):
    csc_service.reset()
    from verifiers import make_nss_db

    documents = [pdf_doc(0, "Giấy ra viện"), pdf_doc(1), pdf_doc(2)]
    resp = start(remote, "cloudca", csc_service.credential("dr-csc"), documents, level="B-T", description="3 hồ sơ")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    assert csc_service.methods().count("credentials/authorize") == 1
    assert csc_service.methods().count("signatures/signHash") == 1
    authorize = next(body for method, body, _ in csc_service.calls if method == "credentials/authorize")
    assert authorize["numSignatures"] == 3 and len(authorize["hash"]) == 3
    assert authorize["description"] == "3 hồ sơ"
    done = status(remote, resp.json["id"])
    assert done["status"] == "completed"
    nss = make_nss_db(tmp_path / "nss", csc_service.root_pem)
    for doc in done["documents"]:
        out = tmp_path / "signed.pdf"
        out.write_bytes(base64.b64decode(doc["pdf"]))
        verdict = pdfsig(out, nss, ocsp=True)[-1]  # no OCSP address in these certificates
        assert verdict.valid and verdict.trusted, verdict.text
        assert "CSC clinician" in verdict.text
    complete = entries_of(remote, resp.json["id"])[-1]
    assert complete["action"] == "session.complete" and complete["detail"]["provider"] == "cloudca"


def test_an_expired_csc_credential_is_refused(remote, csc_service):
    csc_service.reset()
    resp = start(remote, "cloudca", csc_service.credential("dr-csc-expired"), [pdf_doc(0)], level="B-B")
    assert resp.status_code == 422 and resp.json["code"] == "certificate_expired"
    assert "credentials/authorize" not in csc_service.methods()


def test_a_session_names_a_signer_or_a_chain_and_a_configured_provider(remote):
    both = {"signer": {"provider": "smartca", "user_id": AN}, "certificate_chain": ["x"], "documents": [pdf_doc(0)]}
    resp = remote.client.post("/api/v1/signing-sessions", json=both, headers=remote.auth())
    assert resp.status_code == 400 and "exactly one" in resp.json["detail"]
    resp = start(remote, "nobody", AN, [pdf_doc(0)])
    assert resp.status_code == 400 and "smartca" in resp.json["detail"]
    bad = {"signer": {"provider": "smartca"}, "documents": [pdf_doc(0)]}
    assert remote.client.post("/api/v1/signing-sessions", json=bad, headers=remote.auth()).status_code == 400


def test_a_remote_session_is_not_completed_with_signatures_from_the_his(remote, phone):
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    done = remote.client.post(
        f"/api/v1/signing-sessions/{resp.json['id']}/complete", json={"signatures": ["AAAA"]}, headers=remote.auth()
    )
    assert done.status_code == 400 and "GET /api/v1/signing-sessions" in done.json["detail"]


def test_another_client_cannot_read_a_session(remote, phone):
    resp = start(remote, "smartca", AN, [pdf_doc(0)], level="B-B")
    other = remote.kyso.add_client("test", f"his-{resp.json['id'][:6]}", "his")
    read = remote.client.get(f"/api/v1/signing-sessions/{resp.json['id']}", headers={"Authorization": f"Bearer {other}"})
    assert read.status_code == 403
    assert remote.client.get("/api/v1/signing-sessions/nope", headers=remote.auth()).status_code == 404


def test_a_token_session_reports_its_status_too(remote, pki):
    chain = [(pki / "dr-an.cert.pem").read_text(), (pki / "intermediate-ca.cert.pem").read_text()]
    body = {"certificate_chain": chain, "documents": [{"record_id": "t", "json": RECORD}], "level": "B-B"}
    resp = remote.client.post("/api/v1/signing-sessions", json=body, headers=remote.auth())
    assert resp.status_code == 201
    assert status(remote, resp.json["id"]) | {"expires_at": None} == {
        "id": resp.json["id"], "status": "pending", "expires_at": None
    }
    with remote.kyso.db.writer.begin() as conn:
        conn.execute(signing_sessions.update().where(signing_sessions.c.id == resp.json["id"]).values(used=True))
    assert status(remote, resp.json["id"])["status"] == "completed"


def _der(path: Path) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    return x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(serialization.Encoding.DER)


def _last_entries(service: Service, count: int) -> list[dict]:
    from sqlalchemy import select

    from kyso.db import audit_entries

    with service.kyso.db.reader.connect() as conn:
        rows = conn.execute(
            select(audit_entries.c.canonical).order_by(audit_entries.c.seq.desc()).limit(count)
        ).all()
    return [json.loads(canonical) for (canonical,) in reversed(rows)]


def test_digests_are_those_of_the_data_to_sign(remote, phone):
    resp = start(remote, "smartca", AN, [{"record_id": "d", "json": RECORD}], level="B-B")
    tx = phone.transaction(resp.json["transaction_id"])
    assert len(bytes.fromhex(tx.files[0]["data_to_be_signed"])) == hashlib.sha256().digest_size
