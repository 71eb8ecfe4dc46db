"""The HTTP figures of issue 13, against ``kyso serve`` run as production runs it (gunicorn,
the default worker count, loopback), each beside the bare library in this process.

- JSON B-B with 8 client threads against a bare JCS + JWS ES256 loop (ratio >= 0.15), with
  the server's CPU per request (front and workers) and the client's; when it misses, what
  ``GET /healthz`` reaches over the same stack with the same clients (the ceiling of the
  HTTP plumbing alone: front, gunicorn and Flask, no work) and where the worker's time and
  CPU go;
- P-256 and RSA-2048 PDF B-B, median of sequential requests, against stock pyHanko's
  ``SimpleSigner`` in process (<= 1.25 and <= 1.0);
- a 50 MB scanned PDF B-B: seconds against 3 x one SHA-256 pass over it + 1 s, and the
  worker's resident memory growth against 2 x the file.

A figure that misses its target is measured once more under py-spy, in the worker, to show
where its time goes (:mod:`profiles`).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pikepdf
from asn1crypto import tsp
from profiles import memory_steps, sample
from report import Figure
from serving import kyso_serve
from signing import PDF, RECORD, bare_jws, rate, stock_pyhanko

JSON_THREADS = 8
SCAN_BYTES = 50_000_000


@dataclass
class Server:
    """A running ``kyso serve``: where it listens, the pids of its front and of its gunicorn
    workers, and an API key."""

    host: str
    port: int
    front: int
    workers: tuple[int, ...]
    api_key: str

    @property
    def worker(self) -> int:
        """One worker (the one profiled; a request reaches whichever is free)."""
        return self.workers[0]

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=120)

    def headers(self, content_type: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}", "Content-Type": content_type}


@contextmanager
def production_server(data_dir: Path) -> Iterator[Server]:
    """``kyso serve`` as production runs it (the front, gunicorn with its default of one
    worker of four threads per core, SQLite in ``data_dir``), stopped at the end."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with kyso_serve(data_dir) as (url, proc, _log):
        keys = (data_dir / "dev-api-keys.txt").read_text(encoding="utf-8").splitlines()
        api_key = next(line.split()[2] for line in keys if line.startswith("dev-his "))
        host, port = url.removeprefix("http://").split(":")
        yield Server(host, int(port), proc.pid, _workers(proc.pid), api_key)


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _workers(front: int, timeout: float = 30.0) -> tuple[int, ...]:
    """The gunicorn workers: the children of the front's one child (the gunicorn master),
    once there are as many as ``kyso serve`` starts by default (one per core)."""
    want = max(1, min(64, len(os.sched_getaffinity(0))))
    deadline = time.monotonic() + timeout
    while True:
        master = _children(front)[0]
        workers = _children(master)
        if len(workers) >= want or time.monotonic() > deadline:
            return tuple(workers)
        time.sleep(0.1)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds process ``pid`` has used (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Load:
    """Requests a second under load, and the CPU milliseconds a request cost in the front,
    in the workers, and in this process (the benchmark's own HTTP client)."""

    rate: float
    front_ms: float
    workers_ms: float
    client_ms: float

    def cpu(self) -> str:
        return (f"{self.front_ms:.2f} ms CPU in the front + {self.workers_ms:.2f} ms in the workers "
                f"a request, {self.client_ms:.2f} ms in the benchmark's client")


def post(conn: http.client.HTTPConnection, path: str, body: bytes | object, headers: dict[str, str]) -> int:
    """POST ``body`` (bytes, or a file streamed), read the whole answer; its length."""
    conn.request("POST", path, body=body, headers=headers)  # type: ignore[arg-type]
    response = conn.getresponse()
    size = 0
    while chunk := response.read(1 << 20):
        size += len(chunk)
    if response.status != 200:
        raise RuntimeError(f"POST {path}: {response.status}")
    return size


def get(conn: http.client.HTTPConnection, path: str) -> int:
    conn.request("GET", path)
    response = conn.getresponse()
    size = len(response.read())
    if response.status != 200:
        raise RuntimeError(f"GET {path}: {response.status}")
    return size


def http_load(
    server: Server, call: Callable[[http.client.HTTPConnection], object], seconds: float,
    threads: int = JSON_THREADS,
) -> Load:  # fmt: skip
    """``threads`` clients, each on one keep-alive connection, making ``call`` as fast as
    it is answered for ``seconds``: the rate, and the CPU each side spent a request."""
    done = [0] * threads
    ready = threading.Barrier(threads + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        conn = server.connect()
        call(conn)  # warm: the connection, and the worker's first statements
        ready.wait(timeout=120)
        while time.perf_counter() < deadline[0]:
            call(conn)
            done[i] += 1
        conn.close()

    clients = [threading.Thread(target=client, args=(i,)) for i in range(threads)]
    for c in clients:
        c.start()
    pids = (server.front, *server.workers)
    deadline[0] = time.perf_counter() + seconds
    before = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    start = time.perf_counter()
    ready.wait(timeout=120)
    for c in clients:
        c.join()
    took = time.perf_counter() - start
    after = [cpu_seconds(pid) for pid in pids] + [time.process_time()]
    spent = [b - a for a, b in zip(before, after, strict=True)]
    n = max(sum(done), 1)
    return Load(
        sum(done) / took, 1000 * spent[0] / n, 1000 * sum(spent[1:-1]) / n, 1000 * spent[-1] / n
    )


def json_load(server: Server, seconds: float, threads: int = JSON_THREADS) -> Load:
    """Signed JSON records a second, ``threads`` clients posting as fast as answered."""
    body = json.dumps({"key": "lab-seal", "payload": RECORD, "level": "B-B"}).encode()
    headers = server.headers("application/json")
    return http_load(server, lambda conn: post(conn, "/api/v1/sign/json", body, headers), seconds, threads)


def health_load(server: Server, seconds: float, threads: int = JSON_THREADS) -> Load:
    """``GET /healthz`` a second over the same front and workers: the HTTP plumbing alone."""
    return http_load(server, lambda conn: get(conn, "/healthz"), seconds, threads)


def pdf_latencies(server: Server, alias: str, n: int, level: str = "B-B") -> list[float]:
    """Seconds of each of ``n`` sequential PDF requests with key ``alias`` at ``level``."""
    conn, headers = server.connect(), server.headers("application/pdf")
    path = f"/api/v1/sign/pdf?key={alias}&level={level}"
    post(conn, path, PDF, headers)
    times = []
    for _ in range(n):
        start = time.perf_counter()
        post(conn, path, PDF, headers)
        times.append(time.perf_counter() - start)
    conn.close()
    return times


def tsa_latencies(server: Server, n: int) -> list[float]:
    """Seconds of each of ``n`` sequential timestamp requests (RFC 3161 over HTTP) to the
    server's ``POST /tsa``: one TSA round trip."""
    conn = server.connect()
    headers = {"Content-Type": "application/timestamp-query"}

    def query() -> bytes:
        return tsp.TimeStampReq({
            "version": 1,
            "message_imprint": {
                "hash_algorithm": {"algorithm": "sha256"},
                "hashed_message": hashlib.sha256(os.urandom(32)).digest(),
            },
            "nonce": int.from_bytes(os.urandom(8), "big"),
            "cert_req": True,
        }).dump()

    times = call_latencies(lambda: post(conn, "/tsa", query(), headers), n)
    conn.close()
    return times


def call_latencies(call: Callable[[], object], n: int) -> list[float]:
    call()
    times = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return times


def scanned_pdf(path: Path, size: int = SCAN_BYTES) -> Path:
    """A PDF of about ``size`` bytes, a page per 5 MB of noise images, as a scanner writes
    (images that do not compress)."""
    pdf, per_page = pikepdf.new(), 5_000_000
    for i in range(max(1, size // per_page)):
        image = pikepdf.Stream(pdf, os.urandom(per_page))
        image.Type, image.Subtype = pikepdf.Name.XObject, pikepdf.Name.Image
        image.Width, image.Height = 2500, per_page // 2500
        image.ColorSpace, image.BitsPerComponent = pikepdf.Name.DeviceGray, 8
        page = pdf.add_blank_page(page_size=(595, 842))
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image))
        page.Contents = pikepdf.Stream(pdf, b"q 595 0 0 842 0 0 cm /Im0 Do Q")
        del i
    pdf.save(path, compress_streams=False)
    return path


def sha256_pass(path: Path) -> float:
    """Seconds of one SHA-256 pass over the file (read from the page cache)."""
    start = time.perf_counter()
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return time.perf_counter() - start


def _rss(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def big_pdf(server: Server, path: Path, n: int = 3) -> tuple[list[float], int, str]:
    """Seconds of ``n`` B-B requests with the scanned PDF, the largest growth of the
    worker's resident memory during one (its peak, reset before each, over its size
    before), and where it grew during the first (:func:`profiles.memory_steps`)."""
    headers = {**server.headers("application/pdf"), "Content-Length": str(path.stat().st_size)}
    times, growth, steps = [], 0, ""

    def request() -> None:
        conn = server.connect()
        start = time.perf_counter()
        with path.open("rb") as body:
            post(conn, "/api/v1/sign/pdf?key=lab-seal&level=B-B", body, headers)
        times.append(time.perf_counter() - start)
        conn.close()

    for i in range(n):
        before = {pid: _rss(pid, "VmRSS") for pid in server.workers}
        for pid in server.workers:
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak
            except OSError:
                pass
        if i == 0:
            steps = memory_steps(server.worker, request, step=5_000_000)
        else:
            request()
        growth = max(growth, *(_rss(pid, "VmHWM") - before[pid] for pid in server.workers))
    return times, growth, steps


def json_miss(server: Server, served: Load, bare: float) -> str:
    """Why the JSON figure misses: the plumbing's own ceiling beside it, then py-spy samples of
    a worker, idle threads included (where the wall time goes: waits on locks and the disk),
    and of its thread holding the GIL (what a request costs in Python)."""
    ceiling = health_load(server, 5)
    cores = len(os.sched_getaffinity(0))
    lines = [
        f"The HTTP plumbing alone (GET /healthz over the same front and {len(server.workers)} "
        f"gunicorn workers, {JSON_THREADS} client threads, one keep-alive connection each, same "
        f"run): {ceiling.rate:,.0f}/s = {ceiling.rate / bare:.2f} x the bare loop; {ceiling.cpu()}.",
        f"JSON B-B: {served.rate:,.0f}/s; {served.cpu()}.",
        f"The target, 0.15 x {bare:,.0f}/s = {0.15 * bare:,.0f}/s on {cores} cores shared by the "
        "server, the clients and the bare loop, is "
        + ("above what the plumbing alone reaches." if 0.15 * bare > ceiling.rate
           else "within what the plumbing alone reaches."),
        "",
        "A worker, idle threads included:",
        sample(server.worker, 6, lambda: json_load(server, 6), keep="wsgi_app"),
        "",
        "A worker, the thread holding the GIL only (its Python CPU):",
        sample(server.worker, 6, lambda: json_load(server, 6), keep="wsgi_app", gil=True),
    ]
    return "\n".join(lines)


def measure(data_dir: Path, seconds: float = 10.0, n: int = 30) -> list[Figure]:
    """Every HTTP figure, with a profile of each miss."""
    figures: list[Figure] = []
    with production_server(data_dir) as server:
        served = json_load(server, seconds)
        bare = rate(bare_jws(), 3.0)
        ratio = served.rate / bare
        figures.append(Figure(
            f"JSON B-B over HTTP, {JSON_THREADS} client threads",
            f"{served.rate:,.0f}/s, server CPU {served.front_ms + served.workers_ms:.1f} ms a request",
            f"rfc8785 + cryptography ES256 in process {bare:,.0f}/s",
            ratio, "ratio >= 0.15", ratio >= 0.15,
        ))
        if ratio < 0.15:
            figures[-1].profile = json_miss(server, served, bare)
        for alias, name, target in (("lab-seal", "P-256", 1.25), ("hospital-seal", "RSA-2048", 1.0)):
            ours = statistics.median(pdf_latencies(server, alias, n))
            stock = statistics.median(call_latencies(stock_pyhanko(alias), n))
            figures.append(Figure(
                f"{name} PDF B-B over HTTP, median of {n}",
                f"{1000 * ours:.1f} ms", f"stock pyHanko SimpleSigner {1000 * stock:.1f} ms",
                ours / stock, f"ratio <= {target}", ours / stock <= target,
            ))
            if ours / stock > target:
                figures[-1].profile = sample(
                    server.worker, 6, lambda alias=alias: pdf_latencies(server, alias, 60),
                    keep="wsgi_app",
                )
        bb = statistics.median(pdf_latencies(server, "lab-seal", n))
        bt = statistics.median(pdf_latencies(server, "lab-seal", n, level="B-T"))
        trip = statistics.median(tsa_latencies(server, n))
        figures.append(Figure(
            f"P-256 PDF B-T over HTTP (the built-in TSA), median of {n}",
            f"{1000 * bt:.1f} ms",
            f"B-B {1000 * bb:.1f} ms + one TSA round trip (POST /tsa over HTTP) {1000 * trip:.1f} ms",
            bt / (bb + trip), "B-T <= B-B + one TSA round trip", bt <= bb + trip,
        ))
        if bt > bb + trip:
            figures[-1].profile = sample(
                server.worker, 6, lambda: pdf_latencies(server, "lab-seal", 60, level="B-T"),
                keep="wsgi_app",
            )
        scan = scanned_pdf(data_dir / "scanned.pdf")
        size, sha = scan.stat().st_size, min(sha256_pass(scan) for _ in range(3))
        times, growth, steps = big_pdf(server, scan)
        took, bound = statistics.median(times), 3 * sha + 1
        figures.append(Figure(
            f"{size / 1e6:.0f} MB scanned PDF B-B over HTTP, median of {len(times)}",
            f"{took:.2f} s", f"one SHA-256 pass {1000 * sha:.0f} ms",
            took / bound, f"<= 3 x SHA-256 + 1 s = {bound:.2f} s", took <= bound,
        ))
        if took > bound:
            figures[-1].profile = sample(
                server.worker, 3 * took, lambda: big_pdf(server, scan, 2), keep="wsgi_app"
            )
        figures.append(Figure(
            f"{size / 1e6:.0f} MB scanned PDF B-B over HTTP, worker RSS growth",
            f"{growth / 1e6:.0f} MB", f"file {size / 1e6:.0f} MB",
            growth / size, "<= 2 x file", growth <= 2 * size,
        ))
        if growth > 2 * size:
            figures[-1].profile = (
                "Where the worker's resident memory grew during the first request (py-spy dump "
                "of the request's thread at each 5 MB more, innermost frames first):\n" + steps
            )
        scan.unlink()
    return figures
