"""Remote signing sessions in tests: a kyso with a NEAC-style gateway and a CSC service as
providers, and the HIS side of the API (start, poll, results)."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from csc_server import CscService
from neac_server import SP_ID, SP_SECRET, NeacGateway
from support import Service, corpus_pdfs, make_config

from kyso.api import create_app
from kyso.config import Config, RemoteSigningConfig, TrustConfig
from kyso.service import Kyso

AN = "001099012345"  # the gateway's RSA clinician (dev PKI dr-an)
BINH = "001099054321"  # ECDSA P-256 (dr-binh)
REVOKED = "079099000001"
EXPIRED = "079099000002"


@pytest.fixture(scope="session")
def gateway(pki: Path) -> Iterator[NeacGateway]:
    server = NeacGateway(pki).start()
    yield server
    server.stop()


@pytest.fixture
def phone(gateway: NeacGateway) -> Iterator[NeacGateway]:
    """The gateway with its knobs reset around the test."""
    gateway.reset()
    yield gateway
    gateway.reset()


def remote_config(
    data: Path,
    gateway: NeacGateway,
    csc: CscService,
    root_pem: Path,
    timeout: float = 2.0,
    **overrides: Any,
) -> Config:
    data.mkdir(parents=True, exist_ok=True)
    secret = data / "sp-secret"
    secret.write_text(SP_SECRET + "\n")
    token = data / "csc-token"
    token.write_text("any-token\n")
    providers = (
        RemoteSigningConfig(
            name="smartca", kind="neac", url=gateway.url, sp_id=SP_ID, sp_secret_file=str(secret),
            timeout_seconds=timeout, poll_seconds=0.2, poll_max_seconds=1.0,
        ),
        RemoteSigningConfig(
            name="cloudca", kind="csc", url=csc.url, token_file=str(token), credential_from="user_id",
            timeout_seconds=timeout, poll_seconds=0.2, poll_max_seconds=1.0,
        ),
    )
    settings: dict[str, Any] = {
        "remote_signing": providers,
        "trust": TrustConfig(roots=(str(root_pem), str(csc.root_pem))),
        **overrides,
    }
    return make_config(data, **settings)


def open_service(config: Config, app: bool = True) -> Service:
    """kyso on ``config`` with an HIS client; with its app (and so its poller) if ``app``."""
    kyso = Kyso.open(config)
    existing = {c.name for c in kyso.clients.list()}
    keys = {}
    if "his" not in existing:
        keys["his"] = kyso.add_client("test", "his", "his", ("hospital-seal",))
        keys["auditor"] = kyso.add_client("test", "auditor", "auditor")
    client = create_app(kyso=kyso).test_client() if app else None
    return Service(kyso, client, keys)


def pdf_doc(index: int, name: str | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "record_id": f"encounter/{index}/discharge",
        "pdf": base64.b64encode(corpus_pdfs()[index].read_bytes()).decode(),
    }
    if name:
        doc["name"] = name
    return doc


def start(service: Service, provider: str, user_id: str, documents: list[dict], **extra: Any):
    body = {"signer": {"provider": provider, "user_id": user_id}, "documents": documents, **extra}
    return service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth())


def status(service: Service, session_id: str) -> dict[str, Any]:
    resp = service.client.get(f"/api/v1/signing-sessions/{session_id}", headers=service.auth())
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.json


def wait_for(service: Service, session_id: str, wanted: str, timeout: float = 15.0) -> dict[str, Any]:
    """Poll as an HIS does, until the session is ``wanted`` (or ends otherwise)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = status(service, session_id)
        if answer["status"] != "pending" or time.monotonic() > deadline:
            assert answer["status"] == wanted, answer
            return answer
        time.sleep(0.1)


def entries_of(service: Service, session_id: str) -> list[dict[str, Any]]:
    """The audit entries that name the session (``key`` or ``detail.session``)."""
    import json

    from sqlalchemy import select

    from kyso.db import audit_entries

    with service.kyso.db.reader.connect() as conn:
        rows = conn.execute(select(audit_entries.c.canonical).order_by(audit_entries.c.seq)).all()
    found = []
    for (canonical,) in rows:
        entry = json.loads(canonical)
        if entry.get("key") == f"session:{session_id}" or (entry.get("detail") or {}).get("session") == session_id:
            found.append(entry)
    return found
