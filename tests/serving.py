"""Run ``kyso serve`` as a subprocess on a free loopback port, for tests that need a real server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import KYSO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"kyso serve exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"kyso serve did not come up at {url}")


@contextmanager
def kyso_serve(
    data_dir: Path, *args: str, env: dict[str, str] | None = None, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen, Path]]:
    """Start ``kyso serve``; yield (base URL, process, log file); stop it at the end."""
    port = port or free_port()
    log = data_dir / f"serve-{port}.log"
    full_env = {**os.environ, "KYSO_DATA_DIR": str(data_dir), **(env or {})}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [KYSO, "serve", "--port", str(port), *args],
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_up(url, proc)
            yield url, proc, log
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def api_key(data_dir: Path, client: str) -> str:
    return next(
        line.split()[-1]
        for line in (data_dir / "dev-api-keys.txt").read_text().splitlines()
        if client in line
    )


def post(
    url: str, path: str, body: bytes, key: str, content_type: str = "application/pdf"
) -> tuple[int, dict | bytes]:
    req = urllib.request.Request(
        url + path,
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": content_type},
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as resp:
            raw = resp.read()
            return resp.status, json.loads(raw) if resp.headers.get_content_type().endswith(
                "json"
            ) else raw
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def config_env(tmp_path: Path, toml: str) -> dict[str, str]:
    path = tmp_path / "kyso.toml"
    path.write_text("dev_pki = true\n" + toml)
    return {"KYSO_CONFIG": str(path)}
def dev_api_keys(data_dir: Path) -> dict[str, str]:
    """The API keys of the dev clients a first ``kyso serve`` wrote, by client name."""
    lines = (data_dir / "dev-api-keys.txt").read_text().splitlines()
    return {line.split()[0]: line.split()[-1] for line in lines if line.strip() and not line.startswith("#")}
