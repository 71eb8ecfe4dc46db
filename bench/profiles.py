"""Where the time goes, for a figure that misses its target: py-spy samples of a running
process (the server's worker, a writer), or cProfile of a call in this process.

Both come back as a short text table, the functions with the most samples: ``total`` is
the share of samples in which the function is on the stack, ``self`` the share in which it
is the one running (or waiting: py-spy's ``--idle`` keeps threads that wait on a lock, a
socket or the disk, which is where a server spends much of a request).
"""

from __future__ import annotations

import cProfile
import io
import pstats
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

TOP = 14
ROOT = str(Path(__file__).resolve().parents[1]) + "/"  # the repository: the kyso package
ROOT_NAME = Path(ROOT).name + "/"


def py_spy() -> str | None:
    """The py-spy executable beside this Python (the ``bench`` extra), or on the PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def sample(
    pid: int, seconds: float, load: Callable[[], object] | None = None, keep: str = "",
    gil: bool = False,
) -> str:  # fmt: skip
    """py-spy samples of process ``pid`` for ``seconds`` (idle threads included; with
    ``gil``, only the thread holding the GIL: what the process spends its Python CPU on,
    without the threads that wait for the GIL or in C code that released it), while
    ``load`` runs here; only stacks holding a frame that contains ``keep``. A summary."""
    exe = py_spy()
    if exe is None:
        return "(py-spy is not installed: pip install -e '.[bench]')"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "stacks.txt"
        command = [exe, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                   "--rate", "200", "--gil" if gil else "--idle", "--format", "raw",
                   "--output", str(out), "--nonblocking"]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        worker = threading.Thread(target=load, daemon=True) if load is not None else None
        if worker is not None:
            worker.start()
        _, err = spy.communicate(timeout=seconds + 60)
        if worker is not None:
            worker.join()
        if not out.exists():
            return f"(py-spy could not sample pid {pid}: {err.strip()[-300:]})"
        return summarize(out.read_text(encoding="utf-8", errors="replace"), keep)


def summarize(raw: str, keep: str = "") -> str:
    """Two short tables from py-spy's collapsed stacks: the functions the samples are in
    (``self``), and kyso's own functions on the stack (``total``): where the time is, and
    which of kyso's steps it belongs to."""
    total, inclusive, own = 0, Counter[str](), Counter[str]()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or (keep and keep not in stack):
            continue
        frames = [_short(frame) for frame in stack.split(";")]
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    if not total:
        return "(no samples)"

    def share(n: int) -> str:
        return f"{100 * n / total:5.1f}%"

    rows = [f"{total} samples. Where they are (self):"]
    rows += [f"  {share(n)}  {frame}" for frame, n in own.most_common(TOP // 2)]
    rows.append("kyso's functions on the stack (total):")
    ours = [(f, n) for f, n in inclusive.most_common() if "(kyso/" in f and n < 0.97 * total]
    rows += [f"  {share(n)}  {frame}" for frame, n in ours[:TOP]]
    return "\n".join(rows)


def memory_steps(pid: int, load: Callable[[], object], step: int = 10_000_000) -> str:
    """Where process ``pid`` grows while ``load`` runs here: each time its resident memory
    has grown by ``step`` bytes more, the stack of its thread serving a request (py-spy
    dump), innermost frames first."""
    exe, rows, done = py_spy(), [], threading.Event()
    if exe is None:
        return "(py-spy is not installed: pip install -e '.[bench]')"

    def watch() -> None:
        base = last = _rss(pid)
        while not done.is_set():
            now = _rss(pid)
            if now - last >= step:
                last = now
                dump = subprocess.run([exe, "dump", "--nonblocking", "--pid", str(pid)],
                                      capture_output=True, text=True, timeout=30).stdout
                rows.append(f"+{(now - base) / 1e6:4.0f} MB  {_request_frames(dump)}")
            time.sleep(0.002)
        rows.append(f"peak +{(_rss(pid, 'VmHWM') - base) / 1e6:.0f} MB over its size before")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        load()
    finally:
        done.set()
        watcher.join()
    return "\n".join(rows)


def _rss(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _request_frames(dump: str, frames: int = 3) -> str:
    """The innermost frames of the thread that serves a request, from a py-spy dump."""
    for thread in dump.split("\nThread ")[1:]:
        if "wsgi_app" in thread:
            lines = [_short(line.strip()) for line in thread.splitlines()[1:] if line.strip()]
            ours = next((line for line in lines if "(kyso/" in line), "")
            inner = " < ".join(lines[:frames])
            return inner + (f" ... < {ours}" if ours and ours not in lines[:frames] else "")
    return "(no request on the stack)"


def profile_call(call: Callable[[], object]) -> str:
    """cProfile of ``call`` in this process: the functions with the most time, with callees."""
    profiler = cProfile.Profile()
    profiler.runcall(call)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(TOP)
    lines = [line.replace(ROOT, "kyso/") for line in text.getvalue().splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def _short(frame: str) -> str:
    """``function (/long/path/site-packages/pkg/file.py:12)`` as ``function (pkg/file.py:12)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for root in (ROOT, ROOT_NAME):  # py-spy shortens paths to their last parts
        if where.startswith(root):
            where = "kyso/" + where[len(root) :]
            break
    for marker in ("site-packages/", "/lib/python3."):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    return f"{name} ({where})" if where else name
