"""The observability parts that need no server: the JSON formatter in a request, the key
health gauge as /readyz sets it, and the checkpoint gauges read at scrape time."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable

from support import Service

from kyso.api import context, create_app
from kyso.api.logs import JsonFormatter
from kyso.errors import TokenUnavailable


def sample(text: str, name: str, labels: str = "") -> float:
    match = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.M)
    assert match, f"{name}{labels} not in /metrics"
    return float(match[1])


def test_a_line_logged_during_a_request_is_json_with_its_request_id(service: Service) -> None:
    app = create_app(kyso=service.kyso)
    record = logging.LogRecord("kyso.test", logging.WARNING, __file__, 1, "a %s line", ("warning",), None)
    with app.test_request_context("/healthz", headers={"X-Request-Id": "r-42"}):
        context.begin()
        line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "r-42" and line["message"] == "a warning line"
    assert (line["level"], line["logger"]) == ("warning", "kyso.test")
    outside = json.loads(JsonFormatter().format(record))
    assert "request_id" not in outside and outside["time"].endswith("+00:00")


def test_readyz_sets_each_key_alias_health_to_what_its_check_said(service: Service, monkeypatch) -> None:
    key = service.kyso.keystore.get("lab-seal")

    def unplugged() -> None:
        raise TokenUnavailable("the token is not plugged in")

    monkeypatch.setattr(key, "check", unplugged)
    assert service.client.get("/readyz").status_code == 503
    text = service.client.get("/metrics").get_data(as_text=True)
    assert sample(text, "kyso_key_up", '{alias="lab-seal"}') == 0
    assert sample(text, "kyso_key_up", '{alias="hospital-seal"}') == 1
    monkeypatch.undo()
    service.client.get("/readyz")
    text = service.client.get("/metrics").get_data(as_text=True)
    assert sample(text, "kyso_key_up", '{alias="lab-seal"}') == 1


def test_the_checkpoint_gauges_say_how_old_the_latest_checkpoint_is_and_what_it_covers(
    new_service: Callable[..., Service],
) -> None:
    service = new_service()
    assert "kyso_audit_checkpoint_age_seconds" not in service.client.get("/metrics").get_data(as_text=True)
    signed = service.client.post(
        "/api/v1/sign/json", json={"key": "lab-seal", "payload": {"a": 1}, "level": "B-B"}, headers=service.auth()
    )
    assert signed.status_code == 200
    assert service.client.post("/api/v1/audit/checkpoint", headers=service.auth("admin")).status_code == 201
    text = service.client.get("/metrics").get_data(as_text=True)
    size = service.kyso.audit.size()
    assert sample(text, "kyso_audit_entries") == size
    assert sample(text, "kyso_audit_checkpoint_entries") == size
    assert 0 <= sample(text, "kyso_audit_checkpoint_age_seconds") < 60


def test_a_signature_refused_for_an_unavailable_token_marks_its_key_failing(
    new_service: Callable[..., Service], monkeypatch
) -> None:
    service = new_service()
    key = service.kyso.keystore.get("lab-seal")

    def unplugged(data: bytes, scheme: object) -> bytes:
        raise TokenUnavailable("the token is not plugged in")

    def sign() -> int:
        body = {"key": "lab-seal", "payload": {"a": 1}, "level": "B-B"}
        return service.client.post("/api/v1/sign/json", json=body, headers=service.auth()).status_code

    monkeypatch.setattr(key, "sign", unplugged)
    assert sign() == 503
    text = service.client.get("/metrics").get_data(as_text=True)
    assert sample(text, "kyso_key_up", '{alias="lab-seal"}') == 0
    monkeypatch.undo()
    assert sign() == 200
    text = service.client.get("/metrics").get_data(as_text=True)
    assert sample(text, "kyso_key_up", '{alias="lab-seal"}') == 1
