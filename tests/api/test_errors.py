"""Bad input gets a clear 4xx problem+json with a stable code, and an audit entry."""

from __future__ import annotations

import pytest
from support import Service, corpus_pdfs

PDF = corpus_pdfs()[0].read_bytes()

pytestmark = pytest.mark.each_database  # the tests that use `service`


def last_entry(service: Service) -> dict:
    size = service.kyso.audit.size()
    return service.kyso.audit.entries(after=size - 2, limit=1)[0]


def problem(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.headers["Content-Type"] == "application/problem+json"
    body = resp.json
    assert body["code"] == code
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["type"]
    return body


def post_pdf(service: Service, data: bytes, headers: dict | None = None, **query: str):
    query.setdefault("key", "hospital-seal")
    hdrs = {"Content-Type": "application/pdf", **service.auth(), **(headers or {})}
    return service.client.post("/api/v1/sign/pdf", data=data, query_string=query, headers=hdrs)


def test_no_api_key_is_401_and_logged_as_denied_with_no_actor(service: Service) -> None:
    resp = service.client.post("/api/v1/sign/pdf?key=hospital-seal", data=PDF)
    problem(resp, 401, "unauthorized")
    entry = last_entry(service)
    assert entry["outcome"] == "denied" and entry["actor"] is None and entry["action"] == "sign.pdf"


def test_a_wrong_api_key_is_401_and_never_logged(service: Service) -> None:
    presented = "kyso_this-is-not-a-key-0123456789"
    resp = service.client.post(
        "/api/v1/sign/pdf?key=hospital-seal", data=PDF, headers={"Authorization": f"Bearer {presented}"}
    )
    body = problem(resp, 401, "unauthorized")
    assert presented not in resp.get_data(as_text=True)
    entry = last_entry(service)
    assert entry["actor"] is None and entry["outcome"] == "denied"
    assert presented not in str(entry) and presented not in str(body)


def test_a_revoked_clients_api_key_is_401_from_the_revocation_on(service: Service) -> None:
    api_key = service.kyso.add_client("test", "his-leaving", "his", ("lab-seal",))
    headers = {"Authorization": f"Bearer {api_key}"}
    body = {"key": "lab-seal", "payload": {"x": 1}, "level": "B-B"}
    assert service.client.post("/api/v1/sign/json", json=body, headers=headers).status_code == 200
    service.kyso.revoke_client("admin", "his-leaving")
    revoked = last_entry(service)
    assert (revoked["action"], revoked["actor"], revoked["detail"]) == (
        "client.revoke", "admin", {"client": "his-leaving"},
    )  # fmt: skip
    problem(service.client.post("/api/v1/sign/json", json=body, headers=headers), 401, "unauthorized")
    entry = last_entry(service)
    assert (entry["action"], entry["actor"], entry["outcome"]) == ("sign.json", None, "denied")
    problem(service.client.get("/api/v1/keys", headers=headers), 401, "unauthorized")


def test_an_auditor_may_not_sign(service: Service) -> None:
    resp = service.client.post("/api/v1/sign/pdf?key=hospital-seal", data=PDF, headers=service.auth("auditor"))
    problem(resp, 403, "forbidden")
    assert last_entry(service)["actor"] == "auditor"


def test_a_his_may_not_read_the_audit_log(service: Service) -> None:
    problem(service.client.get("/api/v1/audit/entries", headers=service.auth("his")), 403, "forbidden")


def test_an_unknown_key_alias_is_400(service: Service) -> None:
    problem(post_pdf(service, PDF, key="no-such-key"), 400, "unknown_key")


def test_a_key_not_granted_is_403(service: Service) -> None:
    resp = post_pdf(service, PDF, key="hospital-seal", headers=service.auth("his-lab"))
    problem(resp, 403, "key_not_granted")
    entry = last_entry(service)
    assert entry["key"] == "hospital-seal" and entry["outcome"] == "denied"


def test_a_missing_key_parameter_is_400(service: Service) -> None:
    resp = service.client.post("/api/v1/sign/pdf", data=PDF, headers=service.auth())
    problem(resp, 400, "invalid_request")


@pytest.mark.parametrize(
    "data",
    [b"", b"hello, this is not a PDF", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, PDF[: len(PDF) // 2]],
    ids=["empty", "text", "png", "truncated"],
)
def test_what_is_not_a_whole_pdf_is_invalid_pdf(service: Service, data: bytes) -> None:
    problem(post_pdf(service, data), 400, "invalid_pdf")
    assert last_entry(service)["outcome"] == "error"


def test_a_pdf_with_garbage_inside_is_invalid_pdf_not_500(service: Service) -> None:
    broken = b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
    resp = post_pdf(service, broken)
    assert resp.status_code == 400
    assert resp.json["code"] == "invalid_pdf"


def test_a_bad_level_is_400(service: Service) -> None:
    problem(post_pdf(service, PDF, level="B-XL"), 400, "invalid_request")


def test_an_already_signed_named_field_is_400(service: Service) -> None:
    signed = post_pdf(service, PDF, field="Ky1", level="B-B").get_data()
    problem(post_pdf(service, signed, field="Ky1", level="B-B"), 400, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [b"{", b"[1, 2]", b'{"key": "lab-seal", "payload": NaN}', b'{"key": "a", "key": "b", "payload": 1}', b"\xff\xfe"],
    ids=["truncated", "not-object", "nan", "duplicate-member", "not-utf8"],
)
def test_malformed_json_is_invalid_json(service: Service, body: bytes) -> None:
    resp = service.client.post(
        "/api/v1/sign/json", data=body, headers={**service.auth(), "Content-Type": "application/json"}
    )
    problem(resp, 400, "invalid_json")


@pytest.mark.parametrize("text", ['{"protected": "eyJ9"', '{"protected": NaN}', '{"a": 1, "a": 2}'])
def test_a_jws_sent_as_malformed_json_text_is_invalid_json(service: Service, text: str) -> None:
    resp = service.client.post("/api/v1/verify/json", json={"signature": text}, headers=service.auth())
    body = problem(resp, 400, "invalid_json")
    assert body["errors"][0]["pointer"] == "#/signature", body


def test_json_without_payload_is_invalid_request(service: Service) -> None:
    resp = service.client.post("/api/v1/sign/json", json={"key": "lab-seal"}, headers=service.auth())
    problem(resp, 400, "invalid_request")


def test_a_body_over_the_limit_is_413_from_its_content_length(tmp_path) -> None:
    from support import make_config

    from kyso.api import create_app
    from kyso.service import Kyso

    kyso = Kyso.open(make_config(tmp_path, max_body_bytes=1000))
    try:
        api_key = kyso.add_client("test", "h", "his", ("hospital-seal",))
        client = create_app(kyso=kyso).test_client()
        resp = client.post(
            "/api/v1/sign/pdf?key=hospital-seal",
            data=PDF,
            headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/pdf"},
        )
        problem(resp, 413, "payload_too_large")
    finally:
        kyso.close()


def test_unknown_paths_and_methods_are_problems_too(service: Service) -> None:
    problem(service.client.get("/api/v1/nothing-here", headers=service.auth()), 404, "not_found")
    problem(service.client.get("/api/v1/sign/pdf", headers=service.auth()), 405, "method_not_allowed")


@pytest.mark.parametrize(
    ("alias", "code"),
    [("dr-expired", "certificate_expired"), ("dr-future", "certificate_not_yet_valid")],
)
def test_a_certificate_outside_its_validity_is_refused_before_signing(service: Service, alias: str, code: str) -> None:
    size = service.kyso.audit.size()
    problem(post_pdf(service, PDF, key=alias), 422, code)
    assert service.kyso.audit.size() == size + 1  # only the error entry; nothing signed
    assert last_entry(service)["outcome"] == "error"
