"""Gunicorn, embedded: ``kyso serve`` runs the app in N worker processes, behind a front.

``kyso serve`` is two processes: the front (:mod:`kyso.cli.front`, this process), which
listens on ``--host``/``--port`` and reads every request whole, and a gunicorn master
(forked before anything else runs) whose workers take complete requests from the front
over a Unix socket in a private directory. The master dies with the front
(``PR_SET_PDEATHSIG``), and the front stops when the master does.

The app is built in each worker after the fork (never in the master), so every
worker opens its own database pool and its own PKCS#11 session, as tokens require.

Each worker counts its own requests; so that ``/metrics`` answers for the whole server
whichever worker it reaches, the workers keep their counters in prometheus_client's
multiprocess files, in a directory made for this run (or the operator's own
``PROMETHEUS_MULTIPROC_DIR``) before any worker, or prometheus_client, starts.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import os
import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from gunicorn.app.base import BaseApplication

from kyso.api.logs import configure as configure_logging
from kyso.cli.front import FrontSettings, serve
from kyso.config import Config

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"
PR_SET_PDEATHSIG = 1


class KysoServer(BaseApplication):
    def __init__(self, config_path: str | None, options: dict):
        self.config_path = config_path
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self):
        from kyso.api import create_app
        from kyso.config import load_config

        app = create_app(load_config(self.config_path))
        # Every PDF request ends with a full collection (kyso.signer.bounds.releasing_cycles);
        # its cost grows with every object the heap holds, and the modules, the app and the
        # keys loaded here (about 85,000 objects, 100 ms a collection on 2 busy cores) live as
        # long as the worker. Frozen, the collection walks only what requests made since.
        gc.collect()
        gc.freeze()
        return app


def run(
    config: Config, config_path: str | None, host: str, port: int, workers: int, threads: int
) -> int:
    """Serve until SIGTERM or SIGINT; the exit status."""
    configure_logging()  # JSON lines, here and in the processes forked below
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server(
        (host, port), family=family, backlog=1024
    )  # a busy port fails now
    runtime = tempfile.mkdtemp(prefix="kyso-serve-")  # mode 0700: the workers' socket is ours
    upstream = os.path.join(runtime, "workers.sock")
    try:
        with _shared_metrics():
            master = os.fork()
            if master == 0:
                listener.close()
                os._exit(_run_master(config_path, upstream, workers, threads))
            settings = FrontSettings(config.server, config.max_body_bytes, upstream)
            return asyncio.run(_front(listener, settings, master))
    finally:
        listener.close()
        shutil.rmtree(runtime, ignore_errors=True)


def _run_master(config_path: str | None, upstream: str, workers: int, threads: int) -> int:
    """The gunicorn master, in the forked child; it ends when the front does."""
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the front still stops it on its way out
        pass
    options = {
        "bind": f"unix:{upstream}",
        "proxy_protocol": "v1",  # the front names each request's client
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 30,
        "accesslog": "-",
        "logger_class": "kyso.cli.gunicorn_logs.JsonLogger",  # JSON lines, path without query
        "preload_app": False,
        # Several kyso servers on one host must not share gunicorn's control socket.
        "control_socket_disable": True,
    }
    try:
        KysoServer(config_path, options).run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        return 1
    return 0


async def _front(listener: socket.socket, settings: FrontSettings, master: int) -> int:
    """The front, until a signal or the master's end; then the master's end."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    status: list[int] = []

    async def watch_master() -> None:
        while not stop.is_set():
            pid, code = os.waitpid(master, os.WNOHANG)
            if pid:
                status.append(os.waitstatus_to_exitcode(code))
                stop.set()
                return
            await asyncio.sleep(0.5)

    watcher = asyncio.create_task(watch_master())
    await serve(listener, settings, stop)
    await watcher
    if not status:  # stopped by a signal: the master stops its workers gracefully
        os.kill(master, signal.SIGTERM)
        code = await asyncio.to_thread(os.waitpid, master, 0)
        status.append(os.waitstatus_to_exitcode(code[1]))
    return status[0]


@contextmanager
def _shared_metrics() -> Iterator[None]:
    """A fresh directory for the workers' metric files, removed when the server stops."""
    if os.environ.get(METRICS_DIR):
        yield  # the operator's, who empties it between runs (prometheus_client's advice)
        return
    path = tempfile.mkdtemp(prefix="kyso-metrics-")
    os.environ[METRICS_DIR] = path
    try:
        yield
    finally:
        del os.environ[METRICS_DIR]
        shutil.rmtree(path, ignore_errors=True)
