"""A remote session over time: no answer before it expires, an answer that comes too late,
a kyso restart while the clinician decides (in-process, and ``kyso serve`` killed and
started again), and several workers on one database."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

from neac_server import SP_ID, SP_SECRET
from remote_support import (
    AN,
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
from serving import kyso_serve
from support import Service

from kyso.sessions.remote import store
from kyso.sessions.remote.progress import advance

__all__ = ["gateway", "phone"]  # fixtures

SHORT = 0.05  # minutes: a session of 3 seconds


def test_no_answer_before_the_session_expires_is_expired_and_the_provider_is_asked_with_back_off(
    tmp_path, gateway, phone, csc_service, root_pem
):
    service = open_service(remote_config(tmp_path, gateway, csc_service, root_pem, session_minutes=SHORT))
    try:
        resp = start(service, "smartca", AN, [pdf_doc(0)], level="B-B")
        assert resp.status_code == 201
        answer = wait_for(service, resp.json["id"], "expired", timeout=10)
        assert answer["error"]["code"] == "session_expired"
        # 0.2, 0.4, 0.8, 1.0, 1.0 s apart (poll_seconds 0.2, at most 1 s), the last just before the end
        assert 3 <= phone.transaction(resp.json["transaction_id"]).polls <= 7
        entries = entries_of(service, resp.json["id"])
        assert [e["action"] for e in entries] == ["session.start", "session.expire"]
        assert entries[-1]["detail"]["transaction_id"] == resp.json["transaction_id"]
    finally:
        service.kyso.close()


def test_a_confirmation_that_comes_after_the_session_expired_signs_nothing(tmp_path, gateway, phone, csc_service, root_pem):
    service = open_service(remote_config(tmp_path, gateway, csc_service, root_pem, session_minutes=SHORT))
    try:
        resp = start(service, "smartca", AN, [pdf_doc(0)], level="B-B")
        wait_for(service, resp.json["id"], "expired", timeout=10)
        phone.confirm(resp.json["transaction_id"])  # the clinician answers late
        time.sleep(0.5)
        assert status(service, resp.json["id"])["status"] == "expired"
        assert [e["action"] for e in entries_of(service, resp.json["id"])] == ["session.start", "session.expire"]
    finally:
        service.kyso.close()


def test_a_kyso_restarted_while_the_clinician_decides_completes_the_session_itself(
    tmp_path, gateway, phone, csc_service, root_pem
):
    config = remote_config(tmp_path, gateway, csc_service, root_pem)
    first = open_service(config)
    resp = start(first, "smartca", AN, [pdf_doc(0), pdf_doc(1)], level="B-T")
    assert resp.status_code == 201
    first.kyso.close()  # kyso stops, its poller with it
    phone.confirm(resp.json["transaction_id"])
    second = open_service(config)
    second = Service(second.kyso, second.client, first.keys)
    try:
        # Nobody reads: the new process's poller finds the session in the database.
        deadline = time.monotonic() + 15
        while (row := store.read(second.kyso.db, resp.json["id"])) and row.status != "completed":
            assert time.monotonic() < deadline, row
            time.sleep(0.1)
        done = status(second, resp.json["id"])
        assert done["status"] == "completed" and len(done["documents"]) == 2
        actions = [e["action"] for e in entries_of(second, resp.json["id"])]
        assert actions == ["session.start", "sign.pdf", "sign.pdf", "session.complete"]
    finally:
        second.kyso.close()


def test_of_several_workers_on_one_database_exactly_one_completes_a_session(tmp_path, gateway, phone, csc_service, root_pem):
    from kyso.api import create_app

    config = remote_config(tmp_path, gateway, csc_service, root_pem)
    first = open_service(config, app=False)  # makes the HIS client
    workers = [first.kyso] + [open_service(config, app=False).kyso for _ in range(3)]
    app = create_app(kyso=first.kyso)
    app.extensions["kyso.remote_poller"].stop()  # the workers below are the only ones to advance
    service = Service(first.kyso, app.test_client(), first.keys)
    started = start(service, "smartca", AN, [pdf_doc(0)], level="B-B").json
    phone.confirm(started["transaction_id"])
    results: list[str | None] = []
    barrier = threading.Barrier(len(workers))

    def work(kyso) -> None:
        barrier.wait()
        results.append(advance(kyso, started["id"], time.time() + 5))

    threads = [threading.Thread(target=work, args=(k,)) for k in workers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert sorted(r for r in results if r is not None) == ["completed"]
        actions = [e["action"] for e in entries_of(service, started["id"])]
        assert actions == ["session.start", "sign.pdf", "session.complete"]
    finally:
        for kyso in workers:
            kyso.close()


def test_kyso_serve_killed_and_started_again_resumes_polling(tmp_path, gateway, phone, root_pem):
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "kyso.toml"
    config.write_text(
        f"""dev_pki = true
session_minutes = 2.0

[trust]
roots = ["{root_pem}"]

[[remote_signing]]
name = "smartca"
kind = "neac"
url = "{gateway.url}"
sp_id = "{SP_ID}"
sp_secret_env = "KYSO_SMARTCA_SECRET"
timeout_seconds = 2.0
poll_seconds = 0.2
poll_max_seconds = 0.5
""",
        encoding="utf-8",
    )
    env = {"KYSO_CONFIG": str(config), "KYSO_SMARTCA_SECRET": SP_SECRET}
    with kyso_serve(data, env=env) as (url, _proc, _log):
        key = next(
            line.split()[2] for line in (data / "dev-api-keys.txt").read_text().splitlines() if line.startswith("dev-his ")
        )
        body = {"signer": {"provider": "smartca", "user_id": AN}, "documents": [pdf_doc(0)], "level": "B-B"}
        started = _http(url, "/api/v1/signing-sessions", key, body)
        assert started["status"] == "pending"
    # the server is down; the clinician confirms meanwhile
    phone.confirm(started["transaction_id"])
    with kyso_serve(data, env=env) as (url, _proc, log):
        deadline = time.monotonic() + 20
        while (answer := _http(url, f"/api/v1/signing-sessions/{started['id']}", key))["status"] == "pending":
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        assert answer["status"] == "completed"
        assert SP_SECRET not in log.read_text() and AN not in log.read_text()


def _http(url: str, path: str, key: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url + path, data=data, headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())
