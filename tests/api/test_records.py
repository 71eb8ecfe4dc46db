"""The record registry over HTTP (SPEC 3): the listing, a record never signed, and sign
calls whose body is not of the media type they say."""

from __future__ import annotations

import pytest
from support import Service, corpus_pdfs, corpus_xml

from kyso.api import answers
from kyso.api.answers import check


def sign_json(service: Service, record_id: str) -> int:
    body = {"key": "lab-seal", "payload": {"r": record_id}, "level": "B-B", "record_id": record_id}
    resp = service.client.post("/api/v1/sign/json", json=body, headers=service.auth())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.json["audit_seq"]


def listing(service: Service, role: str = "auditor", **query: str):
    resp = service.client.get("/api/v1/records", query_string=query, headers=service.auth(role))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    check(answers.RecordList, resp.json)
    return resp.json


def test_records_are_listed_newest_first_without_extend_before(service: Service) -> None:
    seqs = [sign_json(service, f"list/{n}") for n in range(3)]
    sign_json(service, "list/0")  # signed again: now the newest
    records = listing(service, record_id_prefix="list/")["records"]
    assert [r["record_id"] for r in records] == ["list/0", "list/2", "list/1"]
    assert records[1]["audit_seq"] == seqs[2] and records[0]["level"] == "B-B"


def test_a_listing_is_paged_with_the_cursor_it_answers(service: Service) -> None:
    for n in range(5):
        sign_json(service, f"paged/{n}")
    seen, cursor, pages = [], None, 0
    while True:
        query = {"record_id_prefix": "paged/", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = listing(service, "his", **query)
        seen += [r["record_id"] for r in page["records"]]
        pages += 1
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"paged/{n}" for n in range(4, -1, -1)] and pages == 3


def test_the_prefix_is_literal_and_since_and_until_bound_the_newest_signature(service: Service) -> None:
    sign_json(service, "lit%/1")
    sign_json(service, "litX/1")
    assert [r["record_id"] for r in listing(service, record_id_prefix="lit%")["records"]] == ["lit%/1"]
    newest = listing(service, record_id_prefix="lit")["records"][0]
    assert listing(service, record_id_prefix="lit", since=newest["time"])["records"] == [newest]
    assert newest not in listing(service, record_id_prefix="lit", until=newest["time"])["records"]
    assert listing(service, record_id_prefix="lit", since="2999-01-01")["records"] == []


def test_records_due_still_answer_with_extend_before_and_refuse_a_cursor(service: Service) -> None:
    due = service.client.get("/api/v1/records?extend_before=2999-01-01", headers=service.auth())
    assert due.status_code == 200 and check(answers.RecordsDue, due.json)
    paged = service.client.get("/api/v1/records?extend_before=2999-01-01&cursor=5", headers=service.auth())
    assert (paged.status_code, paged.json["code"]) == (400, "invalid_request")


@pytest.mark.parametrize("query", ["limit=0", "cursor=abc", "since=yesterday", "until=2026-13"])
def test_bad_listing_parameters_are_invalid_requests(service: Service, query: str) -> None:
    resp = service.client.get(f"/api/v1/records?{query}", headers=service.auth())
    assert (resp.status_code, resp.json["code"]) == (400, "invalid_request")


def test_a_record_never_signed_is_not_found(service: Service) -> None:
    before = service.kyso.audit.size()
    resp = service.client.get("/api/v1/records/never/signed", headers=service.auth("auditor"))
    assert (resp.status_code, resp.json["code"]) == (404, "not_found")
    entry = service.kyso.audit.entries(after=before - 1, limit=1)[0]
    assert (entry["action"], entry["outcome"], entry["record_id"]) == ("record.read", "error", "never/signed")
    sign_json(service, "now/signed")
    found = service.client.get("/api/v1/records/now/signed", headers=service.auth("auditor"))
    assert found.status_code == 200 and len(found.json["signatures"]) == 1


SIGN_WITH_WRONG_TYPE = [
    ("/api/v1/sign/pdf?key=hospital-seal", "pdf", "application/json"),
    ("/api/v1/sign/pdf?key=hospital-seal", "pdf", "text/plain"),
    ("/api/v1/sign/pdf?key=hospital-seal", "pdf", "application/xml"),
    ("/api/v1/sign/json", "json", "application/pdf"),
    ("/api/v1/sign/json", "json", "text/plain"),
    ("/api/v1/sign/xml?key=hospital-seal", "xml", "application/pdf"),
    ("/api/v1/sign/xml?key=hospital-seal", "xml", "application/json"),
]


@pytest.mark.parametrize(("path", "kind", "media_type"), SIGN_WITH_WRONG_TYPE)
def test_a_sign_call_whose_media_type_is_not_its_body_s_is_415(
    service: Service, path: str, kind: str, media_type: str
) -> None:
    body = {
        "pdf": corpus_pdfs()[0].read_bytes(),
        "json": b'{"key": "lab-seal", "payload": {"a": 1}}',
        "xml": corpus_xml()[0].read_bytes(),
    }[kind]
    before = service.kyso.audit.size()
    resp = service.client.post(path, data=body, headers={**service.auth(), "Content-Type": media_type})
    assert (resp.status_code, resp.json["code"]) == (415, "unsupported_media_type"), resp.json
    entries = service.kyso.audit.entries(after=before - 1, limit=10)
    assert [(e["outcome"], e["signature_sha256"]) for e in entries] == [("error", None)]


# Every other call that takes a body: a PDF, a JSON object or an XML record.
BODY_WITH_WRONG_TYPE = [
    ("/api/v1/extend/pdf?level=B-LT", "pdf", "text/plain"),
    ("/api/v1/extend/pdf?level=B-LTA", "pdf", "application/json"),
    ("/api/v1/verify/pdf", "pdf", "text/plain"),
    ("/api/v1/verify/pdf", "pdf", "application/xml"),
    ("/api/v1/verify/pdf", "pdf", "multipart/form-data; boundary=x"),
    ("/api/v1/verify/json", "json", "text/plain"),
    ("/api/v1/verify/json", "json", "application/pdf"),
    ("/api/v1/verify/xml", "xml", "application/pdf"),
    ("/api/v1/verify/xml", "xml", "text/plain"),
    ("/api/v1/signing-sessions", "json", "text/plain"),
    ("/api/v1/signing-sessions", "json", "application/x-www-form-urlencoded"),
    ("/api/v1/signing-sessions/abc123/complete", "json", "text/plain"),
]


@pytest.mark.parametrize(("path", "kind", "media_type"), BODY_WITH_WRONG_TYPE)
def test_every_call_with_a_body_refuses_another_media_type_with_415(
    service: Service, path: str, kind: str, media_type: str
) -> None:
    body = {
        "pdf": corpus_pdfs()[0].read_bytes(),
        "json": b'{"signature": "x", "documents": [], "signatures": []}',
        "xml": corpus_xml()[0].read_bytes(),
    }[kind]
    before = service.kyso.audit.size()
    resp = service.client.post(path, data=body, headers={**service.auth(), "Content-Type": media_type})
    assert (resp.status_code, resp.json["code"]) == (415, "unsupported_media_type"), resp.json
    assert resp.mimetype == "application/problem+json"
    entries = service.kyso.audit.entries(after=before - 1, limit=10)
    assert [e["outcome"] for e in entries] == ["error"]


@pytest.mark.parametrize("media_type", [None, "application/pdf", "application/octet-stream"])
def test_verify_pdf_takes_a_pdf_sent_as_pdf_as_bytes_or_untyped(service: Service, media_type: str | None) -> None:
    headers = service.auth() | ({"Content-Type": media_type} if media_type else {})
    resp = service.client.post("/api/v1/verify/pdf", data=corpus_pdfs()[0].read_bytes(), headers=headers)
    assert resp.status_code == 200 and "indication" in resp.json, resp.json
