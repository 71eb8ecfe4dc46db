"""Gunicorn, embedded: ``kyso serve`` runs the app in N worker processes.

The app is built in each worker after the fork (never in the master), so every
worker opens its own database pool and its own PKCS#11 session, as tokens require.

Each worker counts its own requests; so that ``/metrics`` answers for the whole server
whichever worker it reaches, the workers keep their counters in prometheus_client's
multiprocess files, in a directory made for this run (or the operator's own
``PROMETHEUS_MULTIPROC_DIR``) before any worker, or prometheus_client, starts.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

from gunicorn.app.base import BaseApplication

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


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

        return create_app(load_config(self.config_path))


def run(config_path: str | None, host: str, port: int, workers: int, threads: int) -> None:
    options = {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        "timeout": 120,
        "graceful_timeout": 30,
        "accesslog": "-",
        # Query strings can hold record ids; never secrets (those are headers or bodies).
        "access_log_format": '%(h)s "%(r)s" %(s)s %(b)s %(M)sms',
        "preload_app": False,
        # Several kyso servers on one host must not share gunicorn's control socket.
        "control_socket_disable": True,
    }
    with _shared_metrics():
        KysoServer(config_path, options).run()


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
