"""Slow and idle clients against a real ``kyso serve``: they hold no worker (the front reads
every request whole), and they are cut off at the read deadlines."""

from __future__ import annotations

import socket
import threading
import time
import urllib.request
from pathlib import Path

from serving import kyso_serve

TRICKLE = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"


def healthz_seconds(url: str) -> float:
    started = time.monotonic()
    with urllib.request.urlopen(url + "/healthz", timeout=10) as resp:
        assert resp.status == 200
    return time.monotonic() - started


def trickle(port: int, count: int, every: float, until: float, stop: threading.Event) -> None:
    """``count`` connections sending one header byte each ``every`` seconds until ``until``."""
    conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(count)]
    sent = 0
    while time.monotonic() < until and not stop.is_set():
        for conn in conns:
            try:
                conn.send(TRICKLE[sent : sent + 1])
            except OSError:
                pass
        sent += 1
        stop.wait(every)
    for conn in conns:
        conn.close()


def test_a_hundred_slow_clients_leave_healthz_answering_within_a_second(tmp_path: Path) -> None:
    with kyso_serve(tmp_path) as (url, _proc, _log):
        port = int(url.rsplit(":", 1)[1])
        stop = threading.Event()
        until = time.monotonic() + 8
        slow = threading.Thread(target=trickle, args=(port, 100, 2.0, until, stop))
        slow.start()
        try:
            time.sleep(1)
            latencies = []
            while time.monotonic() < until - 0.5:
                latencies.append(healthz_seconds(url))
                time.sleep(0.25)
        finally:
            stop.set()
            slow.join(20)
    print(
        f"/healthz under 100 slow connections: {len(latencies)} calls, worst {max(latencies) * 1000:.0f} ms"
    )
    assert len(latencies) >= 10
    assert max(latencies) < 1.0, latencies  # the default server before: 27 s with five


def test_an_idle_connection_and_a_slow_head_are_closed_at_the_header_deadline(
    tmp_path: Path,
) -> None:
    config = tmp_path / "kyso.toml"
    config.write_text(
        "dev_pki = true\n[server]\nheader_timeout_seconds = 2\nkeepalive_seconds = 1\n"
    )
    with kyso_serve(tmp_path, env={"KYSO_CONFIG": str(config)}) as (url, _proc, _log):
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as idle:
            started = time.monotonic()
            assert idle.recv(1024) == b""  # closed without a word: nothing was asked
            assert 1.5 < time.monotonic() - started < 4
        with socket.create_connection(("127.0.0.1", port), timeout=10) as slow:
            started = time.monotonic()
            answer = b""
            for byte in TRICKLE:
                try:
                    slow.send(bytes([byte]))
                except OSError:
                    break
                time.sleep(0.5)
                if time.monotonic() - started > 6:
                    break
                slow.setblocking(False)
                try:
                    answer += slow.recv(4096)
                except BlockingIOError:
                    pass
                finally:
                    slow.setblocking(True)
                if answer:
                    break
            took = time.monotonic() - started
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"application/problem+json" in answer
        assert took < 4
        # A client that keeps its connection between requests gets keepalive_seconds.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as kept:
            kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            first = kept.recv(65536)
            assert first.startswith(b"HTTP/1.1 200")
            started = time.monotonic()
            while kept.recv(65536):
                pass
            assert time.monotonic() - started < 3
