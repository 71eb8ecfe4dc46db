"""Real answers have the shapes the document publishes (kyso.api.answers), member for member."""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from support import Service, corpus_pdfs

from kyso.api import answers
from kyso.api.answers import check
from kyso.api.openapi import document

PDF = corpus_pdfs()[0].read_bytes()
RECORD = {"resourceType": "Bundle", "id": "answers-1"}


def test_every_answer_model_is_in_the_document(service: Service) -> None:
    published = service.client.get("/api/v1/openapi.json").json["components"]["schemas"]
    assert published == document()["components"]["schemas"]
    for name in ("SignJsonAnswer", "ValidationReport", "SessionStarted", "SessionCompleted", "Problem"):
        assert published[name]["additionalProperties"] is False


def test_signing_and_verifying_answer_in_their_models(service: Service) -> None:
    signed = service.client.post(
        "/api/v1/sign/json", json={"key": "lab-seal", "payload": RECORD, "record_id": "answers/1"},
        headers=service.auth(),
    )
    assert signed.status_code == 200
    check(answers.SignJsonAnswer, signed.json)
    report = service.client.post(
        "/api/v1/verify/json", json={"signature": signed.json["signature"]}, headers=service.auth()
    )
    assert check(answers.ValidationReport, report.json).signatures[0].registered is not None
    pdf = service.client.post(
        "/api/v1/sign/pdf?key=hospital-seal&level=B-B&record_id=answers/1",
        data=PDF, headers={**service.auth(), "Content-Type": "application/pdf"},
    )
    report = service.client.post(
        "/api/v1/verify/pdf", data=pdf.get_data(), headers={**service.auth(), "Content-Type": "application/pdf"}
    )
    check(answers.ValidationReport, report.json)
    records = service.client.get("/api/v1/records/answers/1", headers=service.auth())
    assert len(check(answers.RecordSignatures, records.json).signatures) == 2
    due = service.client.get("/api/v1/records?extend_before=2999-01-01", headers=service.auth())
    check(answers.RecordsDue, due.json)
    check(answers.Keys, service.client.get("/api/v1/keys", headers=service.auth()).json)


def test_the_audit_log_answers_in_its_models(service: Service) -> None:
    admin = service.auth("admin")
    made = service.client.post("/api/v1/audit/checkpoint", headers=admin)
    assert made.status_code == 201
    checkpoint = check(answers.Checkpoint, made.json)
    check(answers.CurrentCheckpoint, service.client.get("/api/v1/audit/checkpoint", headers=admin).json)
    entries = service.client.get("/api/v1/audit/entries?limit=5", headers=admin).json
    assert check(answers.AuditEntries, entries).next == 4
    size = checkpoint.tree_size
    proof = service.client.get(f"/api/v1/audit/proof/inclusion?seq=1&tree_size={size}", headers=admin)
    check(answers.InclusionProof, proof.json)
    proof = service.client.get(f"/api/v1/audit/proof/consistency?first=2&second={size}", headers=admin)
    check(answers.ConsistencyProof, proof.json)
    check(answers.Health, service.client.get("/healthz").json)
    check(answers.Readiness, service.client.get("/readyz").json)


def test_a_refusal_by_the_request_models_names_each_problem_by_pointer(service: Service) -> None:
    resp = service.client.post(
        "/api/v1/sign/json", json={"key": "", "payload": 1, "level": "B-LT", "extra": 1}, headers=service.auth()
    )
    problem = check(answers.Problem, resp.json)
    assert (resp.status_code, problem.code) == (400, "invalid_request")
    assert {e.pointer for e in problem.errors or []} == {"#/key", "#/level", "#/extra"}
    resp = service.client.get("/api/v1/audit/entries?limit=0", headers=service.auth("admin"))
    assert [e.pointer for e in check(answers.Problem, resp.json).errors or []] == ["limit"]
    resp = service.client.post(
        "/api/v1/sign/json", json={"key": "no-such-key", "payload": 1}, headers=service.auth()
    )
    assert check(answers.Problem, resp.json).errors is None  # content, not shape: unknown_key


def test_a_two_step_session_answers_in_its_models(service: Service, pki: Path) -> None:
    chain = [(pki / f"{name}.cert.pem").read_text() for name in ("dr-an", "intermediate-ca")]
    documents = [{"record_id": "answers/s1", "json": RECORD},
                 {"record_id": "answers/s2", "pdf": base64.b64encode(PDF).decode()}]
    started = service.client.post(
        "/api/v1/signing-sessions",
        json={"certificate_chain": chain, "documents": documents, "level": "B-B", "rsa_scheme": "pkcs1v15"},
        headers=service.auth(),
    )
    assert started.status_code == 201, started.json
    session = check(answers.SessionStarted, started.json)
    key = serialization.load_pem_private_key((pki / "dr-an.key.pem").read_bytes(), b"kyso-dev-only")
    signatures = [
        base64.b64encode(
            key.sign(base64.b64decode(doc.data_to_sign), padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg, union-attr]
        ).decode()
        for doc in session.documents
    ]
    done = service.client.post(
        f"/api/v1/signing-sessions/{session.id}/complete", json={"signatures": signatures}, headers=service.auth()
    )
    assert done.status_code == 200, done.json
    assert len(check(answers.SessionCompleted, done.json).documents) == 2
