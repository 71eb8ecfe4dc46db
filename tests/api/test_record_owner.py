"""Who may add a signature to a record: the client that registered it first, the clients
it shares a ``[records] groups`` entry with, and the local operator (kyso.audit.ownership)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Service, corpus_pdfs, make_config

from kyso.api import create_app
from kyso.config import RecordsConfig
from kyso.service import Actor, Kyso

PDF = corpus_pdfs()[3].read_bytes()


def sign_json(service: Service, client: str, record_id: str):
    body = {"key": "lab-seal", "payload": {"n": 1}, "level": "B-B", "record_id": record_id}
    return service.client.post("/api/v1/sign/json", json=body, headers=service.auth(client))


def sign_pdf(service: Service, client: str, record_id: str):
    return service.client.post(
        "/api/v1/sign/pdf",
        query_string={"key": "lab-seal", "level": "B-T", "record_id": record_id},
        data=PDF,
        headers={**service.auth(client), "Content-Type": "application/pdf"},
    )


def open_service(data_dir: Path, groups: tuple[tuple[str, ...], ...] = ()) -> Service:
    kyso = Kyso.open(make_config(data_dir, records=RecordsConfig(groups=groups)))
    keys = {name: kyso.add_client("test", name, "his", ("lab-seal",)) for name in ("his", "lis", "archive")}
    return Service(kyso, create_app(kyso=kyso).test_client(), keys)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    opened = open_service(tmp_path_factory.mktemp("owner"), groups=(("his", "archive"),))
    yield opened
    opened.kyso.close()


def test_another_client_may_not_sign_a_record_it_did_not_register(service: Service) -> None:
    assert sign_json(service, "his", "encounter/1").status_code == 200
    refused = sign_json(service, "lis", "encounter/1")
    assert (refused.status_code, refused.json["code"]) == (403, "forbidden")
    assert "belongs to client 'his'" in refused.json["detail"]
    assert sign_pdf(service, "lis", "encounter/1").status_code == 403
    assert len(service.kyso.audit.record_signatures("encounter/1")) == 1
    entry = service.kyso.audit.entries(after=-1, limit=10_000)[-1]
    assert (entry["actor"], entry["outcome"], entry["record_id"]) == ("lis", "denied", "encounter/1")


def test_the_owner_signs_again_and_its_group_may_add_and_extend(service: Service) -> None:
    assert sign_pdf(service, "his", "encounter/2").status_code == 200
    assert sign_json(service, "his", "encounter/2").status_code == 200
    signed = sign_pdf(service, "his", "encounter/2b")
    extended = service.client.post(
        "/api/v1/extend/pdf",
        query_string={"level": "B-LT", "record_id": "encounter/2b"},
        data=signed.get_data(),
        headers={**service.auth("archive"), "Content-Type": "application/pdf"},
    )
    assert extended.status_code == 200, extended.json
    refused = service.client.post(
        "/api/v1/extend/pdf",
        query_string={"level": "B-LT", "record_id": "encounter/2b"},
        data=signed.get_data(),
        headers={**service.auth("lis"), "Content-Type": "application/pdf"},
    )
    assert (refused.status_code, refused.json["code"]) == (403, "forbidden")


def test_a_session_for_another_clients_record_is_refused_before_anything_is_prepared(
    service: Service, pki: Path
) -> None:
    assert sign_json(service, "his", "encounter/3").status_code == 200
    chain = [(pki / "dr-an.cert.pem").read_text(), (pki / "intermediate-ca.cert.pem").read_text()]
    body = {
        "certificate_chain": chain,
        "level": "B-B",
        "documents": [{"record_id": "encounter/3", "pdf": base64.b64encode(PDF).decode()}],
    }
    resp = service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth("lis"))
    assert (resp.status_code, resp.json["code"]) == (403, "forbidden")


def test_the_local_operator_is_not_bound(service: Service) -> None:
    assert sign_json(service, "his", "encounter/4").status_code == 200
    service.kyso.sign_json(Actor("cli"), "lab-seal", {"n": 2}, "B-B", False, "encounter/4")
    assert len(service.kyso.audit.record_signatures("encounter/4")) == 2


def test_records_without_an_id_belong_to_nobody(service: Service) -> None:
    for client in ("his", "lis"):
        body = {"key": "lab-seal", "payload": {"n": 1}, "level": "B-B"}
        assert service.client.post("/api/v1/sign/json", json=body, headers=service.auth(client)).status_code == 200


def test_of_two_clients_racing_for_a_new_record_the_second_is_refused(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    kyso = service.kyso
    original = kyso.signing_key

    def first_his_signs_then_lis_goes_on(alias: str):
        monkeypatch.setattr(kyso, "signing_key", original)
        kyso.sign_json(Actor("his", "his"), "lab-seal", {"n": 1}, "B-B", False, "encounter/race")
        return original(alias)

    monkeypatch.setattr(kyso, "signing_key", first_his_signs_then_lis_goes_on)
    refused = sign_json(service, "lis", "encounter/race")  # past the check made before signing
    assert (refused.status_code, refused.json["code"]) == (403, "forbidden")
    assert len(kyso.audit.record_signatures("encounter/race")) == 1
