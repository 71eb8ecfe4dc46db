"""Health, readiness, OpenAPI, keys, metrics, the built-in TSA and the verification page."""

from __future__ import annotations

import re

from support import Service


def test_healthz_answers_ok_without_a_key(service: Service) -> None:
    resp = service.client.get("/healthz")
    assert resp.status_code == 200 and resp.json == {"status": "ok"}


def test_readyz_checks_the_database_every_key_and_the_tsa(service: Service) -> None:
    resp = service.client.get("/readyz")
    assert resp.status_code == 200, resp.json
    checks = resp.json["checks"]
    assert checks["database"] == "ok" and checks["tsa"] == "ok"
    assert checks["key:hospital-seal"] == "ok" and checks["key:lab-seal"] == "ok"


def test_the_openapi_document_describes_every_route_of_the_app(service: Service) -> None:
    doc = service.client.get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.1")
    app = service.client.application
    documented = set(doc["paths"])
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-z_]+)>", r"{\1}", rule.rule)
        assert path in documented, f"{rule.rule} is not in openapi.json"
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in doc["paths"][path], f"{method} {rule.rule} is not in openapi.json"


def test_keys_lists_only_the_aliases_granted_to_the_client(service: Service) -> None:
    keys = service.client.get("/api/v1/keys", headers=service.auth("his-lab")).json["keys"]
    assert [k["alias"] for k in keys] == ["lab-seal"]
    lab = keys[0]
    assert lab["kind"] == "software" and lab["algorithm"] == "EC-P256" and lab["jws_alg"] == "ES256"
    assert lab["subject"] and lab["not_after"].startswith("2055")
    assert len(lab["chain"]) == 3 and all(p.startswith("-----BEGIN CERTIFICATE-----") for p in lab["chain"])
    admin = service.client.get("/api/v1/keys", headers=service.auth("admin")).json["keys"]
    assert {"hospital-seal", "lab-seal", "tsa", "audit-log"} <= {k["alias"] for k in admin}
    assert service.client.get("/api/v1/keys", headers=service.auth("auditor")).status_code == 403


def test_metrics_count_signatures_by_key_and_level(service: Service) -> None:
    body = {"key": "lab-seal", "payload": {"x": 1}, "level": "B-B"}
    assert service.client.post("/api/v1/sign/json", json=body, headers=service.auth()).status_code == 200
    text = service.client.get("/metrics").get_data(as_text=True)
    assert re.search(r'kyso_signatures_total\{key="lab-seal",kind="json",level="B-B"\} [1-9]', text)
    assert "kyso_http_request_seconds_bucket" in text
    assert re.search(r"^kyso_audit_entries [1-9]", text, re.M)


def test_the_builtin_tsa_refuses_another_media_type(service: Service) -> None:
    resp = service.client.post("/tsa", data=b"x", headers={"Content-Type": "text/plain"})
    assert resp.status_code == 415 and resp.json["code"] == "unsupported_media_type"


def test_the_verification_page_is_served_in_vietnamese_and_english(service: Service) -> None:
    page = service.client.get("/").get_data(as_text=True)
    assert "Kiểm tra chữ ký số" in page and "Verify a signed medical record" in page
