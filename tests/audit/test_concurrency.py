"""One chain under load: several workers, two servers on one PostgreSQL, and a kill -9.

Each test runs real ``kyso serve`` processes (gunicorn) and signs small JSON records and
PDFs from a dozen client threads, noting every acknowledged ``audit_seq`` with the hashes
it must name. Afterwards the log must be one contiguous chain (seq 0..n-1, no gap, no
duplicate, no fork), verify offline with its checkpoints (made during the load), and hold
every acknowledged signature under its seq with the right document and signature hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from serving import kyso_serve
from support import KYSO, corpus_pdfs

from kyso.audit.offline.verify import verify_export
from kyso.audit.store import AuditLog
from kyso.db import open_database

PDF = min(corpus_pdfs(), key=lambda p: p.stat().st_size).read_bytes()
THREADS = 12
CONFIG = """
dev_pki = true
[audit]
checkpoint_every = 16
checkpoint_seconds = 1
"""


@dataclass(frozen=True)
class Ack:
    """An answer the service gave: the seq it names and the hashes that entry must hold."""

    seq: int
    action: str
    document_sha256: str
    signature_sha256: str


def environment(data_dir: Path, database_url: str | None = None) -> dict[str, str]:
    config = data_dir / "kyso.toml"
    config.write_text(CONFIG)
    env = {"KYSO_DATA_DIR": str(data_dir), "KYSO_CONFIG": str(config)}
    if database_url:
        env["KYSO_DATABASE_URL"] = database_url
    return env


def add_client(env: dict[str, str], name: str, role: str, keys: str = "") -> str:
    """`kyso clients add`: the API key is alone on the last line."""
    args = [KYSO, "clients", "add", name, "--role", role]
    if keys:
        args += ["--keys", keys]
    result = subprocess.run(
        args, env={**os.environ, **env}, capture_output=True, text=True, check=True
    )
    return result.stdout.strip().splitlines()[-1]


def sign_one(session: requests.Session, url: str, n: int) -> Ack:
    """Sign a JSON record (three in four) or a PDF; the ack it answers with."""
    if n % 4:
        payload = {"resourceType": "Observation", "id": f"obs-{n}", "value": n}
        r = session.post(
            f"{url}/api/v1/sign/json",
            json={"key": "lab-seal", "payload": payload, "level": "B-B"},
            timeout=60,
        )
        r.raise_for_status()
        body = r.json()
        signature = hashlib.sha256(body["signature"]["signature"].encode("ascii")).hexdigest()
        return Ack(body["audit_seq"], "sign.json", body["payload_sha256"], signature)
    r = session.post(
        f"{url}/api/v1/sign/pdf?key=lab-seal&level=B-B",
        data=PDF,
        headers={"Content-Type": "application/pdf"},
        timeout=60,
    )
    r.raise_for_status()
    assert hashlib.sha256(r.content).hexdigest() == r.headers["Kyso-Document-SHA256"]
    return Ack(
        int(r.headers["Kyso-Audit-Seq"]),
        "sign.pdf",
        hashlib.sha256(PDF).hexdigest(),
        r.headers["Kyso-Document-SHA256"],
    )


def load(
    urls: list[str],
    api_key: str,
    per_thread: int | None,
    stop: threading.Event | None = None,
    acks: list[Ack] | None = None,
) -> list[Ack]:
    """THREADS threads, spread over ``urls``, signing ``per_thread`` times each (or until
    ``stop``); the acks of every answer received whole (appended to ``acks`` as they come,
    when given). Errors after ``stop`` are expected."""
    acks = [] if acks is None else acks
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {api_key}"
        i = 0
        while (per_thread is None or i < per_thread) and not (stop and stop.is_set()):
            try:
                acks.append(sign_one(session, urls[t % len(urls)], t * 10_000 + i))
            except (requests.RequestException, OSError) as exc:
                if stop is None or not stop.is_set():
                    errors.append(exc)
                return
            i += 1

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors[:3]
    return acks


def check_one_chain(database_url: str, acks: list[Ack], dev_root: list) -> list[dict]:
    """The log is one contiguous, verifying chain holding every ack; its entries."""
    db = open_database(database_url)
    try:
        lines = list(AuditLog(db).export_lines())
    finally:
        db.dispose()
    entries = [json.loads(line) for line in lines if line.startswith(b'{"action"')]
    assert [e["seq"] for e in entries] == list(range(len(entries)))  # no gap, no duplicate
    report = verify_export(lines, trust=dev_root)  # one chain: every prev_hash links
    assert report.ok, report.problem
    assert report.checkpoints_checked >= 2, "checkpoints should have been made during the load"
    assert len({a.seq for a in acks}) == len(acks)
    for ack in acks:
        entry = entries[ack.seq]
        assert (
            entry["action"],
            entry["document_sha256"],
            entry["signature_sha256"],
            entry["outcome"],
        ) == (ack.action, ack.document_sha256, ack.signature_sha256, "ok"), ack
    return entries


def sqlite_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'kyso.sqlite3'}"


def test_three_workers_under_load_write_one_chain(tmp_path, dev_root):
    env = environment(tmp_path)
    api_key = add_client(env, "load", "his", "lab-seal")
    with kyso_serve(tmp_path, "--workers", "3", env=env) as (url, _proc, _log):
        acks = load([url], api_key, per_thread=10)
    assert len(acks) == THREADS * 10
    check_one_chain(sqlite_url(tmp_path), acks, dev_root)


def test_two_servers_on_one_postgresql_write_one_chain(tmp_path, pg_url, dev_root):
    env = environment(tmp_path, pg_url)
    api_key = add_client(env, "load", "his", "lab-seal")
    with (
        kyso_serve(tmp_path, "--workers", "2", env=env) as (first, _p1, _l1),
        kyso_serve(tmp_path, "--workers", "2", env=env) as (second, _p2, _l2),
    ):
        acks = load([first, second], api_key, per_thread=10)
    assert len(acks) == THREADS * 10
    check_one_chain(pg_url, acks, dev_root)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_nothing_acknowledged_is_lost_when_the_server_is_killed_under_load(
    tmp_path, request, backend, dev_root
):
    database_url = request.getfixturevalue("pg_url") if backend == "postgresql" else None
    env = environment(tmp_path, database_url)
    api_key = add_client(env, "load", "his", "lab-seal")
    stop = threading.Event()
    acks: list[Ack] = []

    def kill_under_load(proc: subprocess.Popen) -> None:
        """SIGKILL after 2 s of load and 20 answers at least, however slow this machine is."""
        started = time.monotonic()
        while time.monotonic() - started < 60 and (time.monotonic() - started < 2 or len(acks) < 20):
            time.sleep(0.05)
        stop.set()
        os.killpg(proc.pid, signal.SIGKILL)

    with kyso_serve(tmp_path, "--workers", "2", env=env) as (url, proc, _log):
        killer = threading.Thread(target=kill_under_load, args=(proc,))
        killer.start()
        load([url], api_key, per_thread=None, stop=stop, acks=acks)
        killer.join()
        proc.wait(timeout=10)
    assert len(acks) > 10, "the load should have been acknowledged a while before the kill"
    # Restart on the same database: it opens, and the log holds every acknowledged signature.
    with kyso_serve(tmp_path, "--workers", "1", env=env) as (url, _proc, _log):
        more = load([url], api_key, per_thread=2)
    entries = check_one_chain(database_url or sqlite_url(tmp_path), acks + more, dev_root)
    assert len(entries) >= len(acks) + len(more)
