"""One event loop per request: key checks, revocation, signing and timestamps share it."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from support import Service, corpus_pdfs

PDF = corpus_pdfs()[0].read_bytes()


@pytest.fixture
def loops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The coroutines that asyncio.run started, by name, while the test ran."""
    started: list[str] = []
    real_run = asyncio.run

    def counting_run(main, **kwargs):
        started.append(getattr(main, "__qualname__", repr(main)))
        return real_run(main, **kwargs)

    monkeypatch.setattr(asyncio, "run", counting_run)
    return started


def test_a_pdf_signature_runs_one_event_loop(service: Service, loops: list[str]) -> None:
    resp = service.client.post(
        "/api/v1/sign/pdf?key=hospital-seal&level=B-T",
        data=PDF, headers={**service.auth(), "Content-Type": "application/pdf"},
    )
    assert resp.status_code == 200
    assert len(loops) == 1, loops


def test_a_json_signature_runs_one_event_loop_and_none_while_revocation_is_known(
    service: Service, loops: list[str]
) -> None:
    for _ in range(2):
        resp = service.client.post(
            "/api/v1/sign/json", json={"key": "lab-seal", "payload": {"a": 1}}, headers=service.auth()
        )
        assert resp.status_code == 200
    # The first may fetch the key's revocation status (one loop); the second reads it cached.
    assert len(loops) <= 1, loops


def test_a_session_start_runs_one_event_loop(service: Service, pki: Path, loops: list[str]) -> None:
    chain = [(pki / f"{name}.cert.pem").read_text() for name in ("dr-an", "intermediate-ca")]
    resp = service.client.post(
        "/api/v1/signing-sessions",
        json={"certificate_chain": chain, "level": "B-B",
              "documents": [{"pdf": base64.b64encode(PDF).decode()}, {"json": {"a": 1}}]},
        headers=service.auth(),
    )
    assert resp.status_code == 201, resp.json
    assert len(loops) == 1, loops
