"""Idempotency-Key: a retry returns the first answer byte for byte and writes no second entry."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import update
from support import Service, corpus_pdfs

from kyso.db import idempotency

PDF = corpus_pdfs()[3].read_bytes()
KEPT_HOURS = 2.0  # idempotency_hours of the service below

pytestmark = pytest.mark.each_database


def sign(service: Service, key: str, client: str = "his", data: bytes = PDF, level: str = "B-T"):
    return service.client.post(
        f"/api/v1/sign/pdf?key=hospital-seal&level={level}&record_id=idem/{client}",  # a record each
        data=data,
        headers={**service.auth(client), "Content-Type": "application/pdf", "Idempotency-Key": key},
    )


def test_a_retry_returns_the_first_answer_byte_for_byte_and_writes_no_second_entry(service: Service) -> None:
    first = sign(service, "k-1")
    assert first.status_code == 200
    size = service.kyso.audit.size()
    again = sign(service, "k-1")
    assert again.status_code == 200
    assert again.get_data() == first.get_data()
    assert again.headers["Kyso-Audit-Seq"] == first.headers["Kyso-Audit-Seq"]
    assert again.headers["Kyso-Document-SHA256"] == first.headers["Kyso-Document-SHA256"]
    assert service.kyso.audit.size() == size


def test_the_same_key_with_another_request_is_409(service: Service) -> None:
    assert sign(service, "k-2").status_code == 200
    resp = sign(service, "k-2", level="B-B")
    assert resp.status_code == 409
    assert resp.json["code"] == "idempotency_conflict"


def test_keys_are_scoped_to_the_calling_client(service: Service) -> None:
    from kyso.service import Kyso  # noqa: F401 - the fixture's service is the one used

    service.keys.setdefault("his-2", service.kyso.add_client("test", "his-2", "his", ("hospital-seal",)))
    a = sign(service, "shared-key")
    b = sign(service, "shared-key", client="his-2")
    assert a.status_code == b.status_code == 200
    assert a.headers["Kyso-Audit-Seq"] != b.headers["Kyso-Audit-Seq"]


def test_json_signing_is_idempotent_too(service: Service) -> None:
    body = {"key": "lab-seal", "payload": {"a": 1}, "level": "B-T"}
    headers = {**service.auth(), "Idempotency-Key": "json-1"}
    first = service.client.post("/api/v1/sign/json", json=body, headers=headers)
    size = service.kyso.audit.size()
    again = service.client.post("/api/v1/sign/json", json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert service.kyso.audit.size() == size


def test_concurrent_retries_sign_once_in_the_log(service: Service) -> None:
    results = []

    def go() -> None:
        results.append(sign(service, "race-1"))

    threads = [threading.Thread(target=go) for _ in range(4)]
    size = service.kyso.audit.size()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in results)
    assert len({r.get_data() for r in results}) == 1
    sign_entries = [e for e in service.kyso.audit.entries(after=size - 1, limit=100) if e["action"] == "sign.pdf"]
    assert len(sign_entries) == 1


def test_a_failed_request_is_not_remembered(service: Service) -> None:
    bad = sign(service, "k-fail", data=b"not a pdf")
    assert bad.status_code == 400
    # The same key with the same (bad) body fails again rather than replaying; a retry
    # of a failure costs nothing and stores nothing.
    again = sign(service, "k-fail", data=b"not a pdf")
    assert again.status_code == 400



def stored_hours_ago(service: Service, key: str, hours: float) -> None:
    """Make the stored result of ``key`` look ``hours`` old."""
    with service.kyso.db.writer.begin() as conn:
        done = conn.execute(
            update(idempotency)
            .where(idempotency.c.client == "his", idempotency.c.key == key)
            .values(created=time.time() - hours * 3600)
        )
    assert done.rowcount == 1


def test_a_result_is_kept_for_the_configured_hours_and_a_retry_after_them_signs_again(
    new_service,
) -> None:
    service = new_service(idempotency_hours=KEPT_HOURS)  # not the default 24
    first = sign(service, "k-kept", level="B-B")
    assert first.status_code == 200
    stored_hours_ago(service, "k-kept", KEPT_HOURS - 0.1)
    size = service.kyso.audit.size()
    within = sign(service, "k-kept", level="B-B")
    assert within.headers["Idempotent-Replayed"] == "true" and within.get_data() == first.get_data()
    assert service.kyso.audit.size() == size

    stored_hours_ago(service, "k-kept", KEPT_HOURS + 0.1)
    after = sign(service, "k-kept", level="B-B")
    assert after.status_code == 200 and "Idempotent-Replayed" not in after.headers
    assert int(after.headers["Kyso-Audit-Seq"]) == size  # a new sign.pdf entry, the last one
    (entry,) = service.kyso.audit.entries(after=size - 1, limit=10)
    assert (entry["action"], entry["actor"], entry["signature_sha256"]) == (
        "sign.pdf", "his", after.headers["Kyso-Document-SHA256"],
    )  # fmt: skip
    again = sign(service, "k-kept", level="B-B")  # the new result is the one kept now
    assert again.headers["Idempotent-Replayed"] == "true" and again.get_data() == after.get_data()
    assert service.kyso.audit.size() == size + 1


def test_an_expired_key_may_be_used_for_another_request(new_service) -> None:
    service = new_service(idempotency_hours=KEPT_HOURS)
    assert sign(service, "k-reused", level="B-B").status_code == 200
    assert sign(service, "k-reused", level="B-T").status_code == 409
    stored_hours_ago(service, "k-reused", KEPT_HOURS + 0.1)
    assert sign(service, "k-reused", level="B-T").status_code == 200
