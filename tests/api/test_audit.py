"""The audit log over HTTP: checkpoints, inclusion and consistency proofs, the export."""

from __future__ import annotations

import hashlib
import json

import pytest
from support import Service

from kyso.audit.merkle import verify_consistency, verify_inclusion
from kyso.audit.offline.checkpoint_verify import CHECKPOINT_FIELDS
from kyso.audit.offline.verify import verify_export
from kyso.config import AuditConfig
from kyso.formats import canonical_json
from kyso.keystore.software import load_certificates
from kyso.signer.timestamp.client import TimestampClient, http_source

PROOF = "/api/v1/audit/proof"


def leaf(service: Service, seq: int) -> bytes:
    """The leaf hash of entry ``seq``, recomputed from the entries API."""
    entry = service.client.get(
        f"/api/v1/audit/entries?after={seq - 1}&limit=1", headers=service.auth("auditor")
    ).json
    return hashlib.sha256(b"\x00" + canonical_json(entry["entries"][0])).digest()


def make_checkpoint(service: Service) -> dict:
    resp = service.client.post("/api/v1/audit/checkpoint", headers=service.auth("admin"))
    assert resp.status_code == 201, resp.get_data(as_text=True)
    return resp.json


def ask_checkpoint(service: Service):
    resp = service.client.get("/api/v1/audit/checkpoint", headers=service.auth("auditor"))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp


def test_the_checkpoint_asked_for_covers_the_log_as_it_is_now(new_service) -> None:
    service = new_service(audit=AuditConfig(on_demand_seconds=0))
    assert service.kyso.audit.latest_checkpoint() is None
    first = ask_checkpoint(service)
    assert first.json["tree_size"] == service.kyso.audit.size() == first.json["log_size"]
    assert first.json["behind"] == 0 and first.headers["Kyso-Checkpoint-Behind"] == "0"
    service.kyso.record_access("test", "record.read", record_id="r-1")
    second = ask_checkpoint(service)
    assert second.json["tree_size"] == first.json["tree_size"] + 1 and second.json["behind"] == 0
    stored = service.kyso.audit.latest_checkpoint()
    assert stored == {k: v for k, v in second.json.items() if k in CHECKPOINT_FIELDS}


def test_within_the_window_the_latest_checkpoint_says_what_it_does_not_cover(new_service) -> None:
    service = new_service(audit=AuditConfig(on_demand_seconds=3600))
    made = ask_checkpoint(service).json  # none yet: one is made whatever the window
    for n in range(2):
        service.kyso.record_access("test", "record.read", record_id=f"r-{n}")
    again = ask_checkpoint(service)
    assert again.json["tree_size"] == made["tree_size"] and again.json["behind"] == 2
    assert again.json["log_size"] == made["tree_size"] + 2
    assert again.headers["Kyso-Checkpoint-Behind"] == "2"
    assert int(again.headers["Kyso-Checkpoint-Age"]) >= 0


def test_an_export_ends_with_a_checkpoint_of_its_last_entry(service: Service, root_pem) -> None:
    service.kyso.record_access("test", "record.read", record_id="after-the-checkpoints")
    resp = service.client.get("/api/v1/audit/export", headers=service.auth("auditor"))
    values = [json.loads(line) for line in resp.get_data().splitlines()]
    entries = [v for v in values if "seq" in v]
    assert entries[-1]["action"] == "audit.export"
    assert values[-1]["tree_size"] == len(entries) == entries[-1]["seq"] + 1
    report = verify_export(resp.get_data().splitlines(keepends=True), trust=load_certificates(root_pem))
    assert report.ok, report.problem


def test_an_admin_makes_a_checkpoint_that_covers_its_own_request(service: Service) -> None:
    checkpoint = make_checkpoint(service)
    assert set(checkpoint) == set(CHECKPOINT_FIELDS)
    size = service.kyso.audit.size()
    assert checkpoint["tree_size"] == size
    last = service.kyso.audit.entries(after=size - 2, limit=1)[0]
    assert (last["action"], last["actor"], last["outcome"]) == ("audit.checkpoint", "admin", "ok")
    assert checkpoint["chain_head"] == hashlib.sha256(b"\x00" + canonical_json(last)).hexdigest()
    latest = service.client.get("/api/v1/audit/checkpoint", headers=service.auth("auditor"))
    assert latest.status_code == 200 and latest.json == {**checkpoint, "log_size": size, "behind": 0}


def test_only_an_admin_may_make_one_and_a_his_may_not_read_one(service: Service) -> None:
    assert (
        service.client.post("/api/v1/audit/checkpoint", headers=service.auth("auditor")).status_code
        == 403
    )
    resp = service.client.get("/api/v1/audit/checkpoint", headers=service.auth("his"))
    assert resp.status_code == 403 and resp.json["code"] == "forbidden"
    size = service.kyso.audit.size()
    denied = service.kyso.audit.entries(after=size - 2, limit=1)[0]
    assert (denied["action"], denied["actor"], denied["outcome"]) == (
        "audit.checkpoint.read",
        "his",
        "denied",
    )


def test_an_inclusion_proof_shows_an_entry_in_a_checkpoint(service: Service) -> None:
    checkpoint = make_checkpoint(service)
    size = checkpoint["tree_size"]
    for seq in (0, size // 2, size - 1):
        resp = service.client.get(
            f"{PROOF}/inclusion?seq={seq}&tree_size={size}", headers=service.auth("auditor")
        )
        assert resp.status_code == 200
        proof = resp.json
        assert set(proof) == {"leaf_index", "tree_size", "root_hash", "hashes"}
        assert (proof["leaf_index"], proof["tree_size"], proof["root_hash"]) == (
            seq,
            size,
            checkpoint["root_hash"],
        )
        hashes = [bytes.fromhex(h) for h in proof["hashes"]]
        assert verify_inclusion(
            leaf(service, seq), seq, size, hashes, bytes.fromhex(checkpoint["root_hash"])
        )


def test_a_consistency_proof_links_two_checkpoints(service: Service) -> None:
    first = make_checkpoint(service)
    service.kyso.record_access("test", "record.read", record_id="x")
    second = make_checkpoint(service)
    query = f"first={first['tree_size']}&second={second['tree_size']}"
    resp = service.client.get(f"{PROOF}/consistency?{query}", headers=service.auth("admin"))
    assert resp.status_code == 200
    proof = resp.json
    assert set(proof) == {"first", "second", "first_root", "second_root", "hashes"}
    assert (proof["first_root"], proof["second_root"]) == (first["root_hash"], second["root_hash"])
    assert verify_consistency(
        first["tree_size"],
        second["tree_size"],
        bytes.fromhex(first["root_hash"]),
        bytes.fromhex(second["root_hash"]),
        [bytes.fromhex(h) for h in proof["hashes"]],
    )


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("inclusion", 400),
        ("inclusion?seq=abc", 400),
        ("inclusion?seq=-1", 400),
        ("inclusion?seq=3&tree_size=3", 400),
        ("inclusion?seq=0&tree_size=x", 400),
        ("inclusion?seq=0&tree_size=999999999", 404),
        ("consistency", 400),
        ("consistency?first=0&second=3", 400),
        ("consistency?first=4&second=3", 400),
        ("consistency?first=1&second=999999999", 404),
    ],
)
def test_bad_proof_parameters_are_400_and_trees_beyond_the_log_404(
    service: Service, query: str, status: int
) -> None:
    resp = service.client.get(f"{PROOF}/{query}", headers=service.auth("auditor"))
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.json["code"] == ("invalid_request" if status == 400 else "not_found")


def test_the_exported_log_with_its_checkpoints_verifies_offline(service: Service, root_pem) -> None:
    make_checkpoint(service)
    resp = service.client.get("/api/v1/audit/export", headers=service.auth("auditor"))
    assert resp.status_code == 200
    lines = resp.get_data().splitlines(keepends=True)
    report = verify_export(lines, trust=load_certificates(root_pem))
    assert report.ok, report.problem
    assert report.checkpoints_checked >= 1 and report.signed_by


def unreachable_tsa(service: Service) -> None:
    """The checkpointer of ``service`` times stamps with a TSA nobody listens at."""
    checkpointer = service.client.application.extensions["kyso.checkpointer"]
    checkpointer.timestamper = TimestampClient([http_source("http://127.0.0.1:9/tsr", 2.0)])


def test_an_export_that_cannot_end_with_a_checkpoint_is_refused_and_no_export_is_logged(
    new_service,
) -> None:
    service = new_service()
    before = service.kyso.audit.size()
    unreachable_tsa(service)
    resp = service.client.get("/api/v1/audit/export", headers=service.auth("auditor"))
    assert (resp.status_code, resp.json["code"]) == (503, "tsa_unavailable")
    entries = service.kyso.audit.entries(after=before - 1)
    assert [(e["action"], e["outcome"]) for e in entries] == [("audit.export", "error")]


def test_without_a_tsa_the_latest_checkpoint_is_answered_with_what_it_misses(new_service) -> None:
    service = new_service(audit=AuditConfig(on_demand_seconds=0))
    made = ask_checkpoint(service).json
    service.kyso.record_access("test", "record.read", record_id="r-1")
    unreachable_tsa(service)
    latest = ask_checkpoint(service)
    assert latest.json["tree_size"] == made["tree_size"] and latest.json["behind"] == 1
