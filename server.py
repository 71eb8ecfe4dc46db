"""Gunicorn, embedded: ``kyso serve`` runs the app in N worker processes.

The app is built in each worker after the fork (never in the master), so every
worker opens its own database pool and its own PKCS#11 session, as tokens require.
"""

from __future__ import annotations

from gunicorn.app.base import BaseApplication


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
    KysoServer(config_path, options).run()
