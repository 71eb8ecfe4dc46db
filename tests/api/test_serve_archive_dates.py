"""Dates kyso keeps come from what it verified, on a real ``kyso serve``: a PDF that brings
forged document timestamps (one in a field, signed by a TSA of nobody's; one that no field
refers to), both ending in 9999, is due when kyso's own signature certificate ends. And a
record belongs to the client that registered it."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from forged import add_document_timestamp, client_of, rogue_tsa, with_unreferenced_timestamp
from serving import dev_api_keys, kyso_serve
from support import corpus_pdfs

SEAL_END = "2055-12-31T23:59:59Z"  # the dev hospital seal's certificate


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path, dict[str, str]]]:
    data_dir = tmp_path_factory.mktemp("serve")
    with kyso_serve(data_dir) as (url, _proc, _log):
        yield url, data_dir, dev_api_keys(data_dir)


def forged_pdf() -> bytes:
    rogue = rogue_tsa()
    stamped = asyncio.run(add_document_timestamp(corpus_pdfs()[5].read_bytes(), client_of(rogue), "Archive1"))
    return with_unreferenced_timestamp(stamped, rogue.timestamp(hashlib.sha256(b"x").digest()))


def test_forged_document_timestamps_do_not_move_a_records_deadline(served) -> None:
    url, _data_dir, keys = served
    his = {"Authorization": f"Bearer {keys['dev-his']}"}
    r = requests.post(
        f"{url}/api/v1/sign/pdf",
        params={"key": "hospital-seal", "level": "B-B", "record_id": "forged/1"},
        data=forged_pdf(),
        headers={**his, "Content-Type": "application/pdf"},
        timeout=60,
    )
    assert r.status_code == 200, r.text
    due = requests.get(
        f"{url}/api/v1/records",
        params={"extend_before": "2056-01-01"},
        headers={"Authorization": f"Bearer {keys['dev-auditor']}"},
        timeout=60,
    ).json()["records"]
    (mine,) = [row for row in due if row["record_id"] == "forged/1"]
    assert mine["extend_before"] == SEAL_END


def test_another_client_may_not_add_to_a_record(served) -> None:
    url, data_dir, keys = served
    added = subprocess.run(
        [sys.executable, "-m", "kyso", "clients", "add", "lis", "--role", "his", "--keys", "lab-seal"],
        env={**os.environ, "KYSO_DATA_DIR": str(data_dir)},
        capture_output=True,
        text=True,
        check=True,
    )
    lis = {"Authorization": f"Bearer {added.stdout.strip().splitlines()[-1]}"}
    his = {"Authorization": f"Bearer {keys['dev-his']}"}
    body = {"key": "lab-seal", "payload": {"n": 1}, "level": "B-B", "record_id": "owned/1"}
    assert requests.post(f"{url}/api/v1/sign/json", json=body, headers=his, timeout=60).status_code == 200
    r = requests.post(f"{url}/api/v1/sign/json", json=body, headers=lis, timeout=60)
    assert (r.status_code, r.json()["code"]) == (403, "forbidden"), r.text
    body["record_id"] = "lis/1"
    assert requests.post(f"{url}/api/v1/sign/json", json=body, headers=lis, timeout=60).status_code == 200
