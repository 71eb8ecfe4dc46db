"""A throw-away PostgreSQL server for tests and benchmarks (Debian's postgresql package).

``initdb`` refuses to run as root, so the cluster belongs to the ``postgres`` user (run
through ``runuser`` when we are root) and lives in a temporary directory that user owns;
it listens on a free port on 127.0.0.1 and keeps its Unix socket in that directory, so
it touches nothing outside it. :meth:`PostgresServer.create_database` makes a database and
a user with a password and returns a ``postgresql+psycopg://`` URL; :meth:`stop` stops
the server and deletes the directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import psycopg

SUPERUSER = "postgres"


def server_binaries() -> Path:
    """The bin directory of the newest PostgreSQL that Debian's packages installed
    (``/usr/lib/postgresql/<major>/bin``: 15 on Debian 12, 17 on Debian 13)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parents[1].name)
    )
    if not found:
        raise RuntimeError("no PostgreSQL server found: run scripts/bootstrap --test")
    return found[-1].parent


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    """One PostgreSQL cluster in a temporary directory; a context manager."""

    def __init__(self, *, fsync: bool = True) -> None:
        # fsync=False is for tests: durability against a killed *kyso* needs only commits,
        # not a disk flush; benchmarks keep PostgreSQL's default (fsync on).
        self.fsync = fsync
        self.bin = server_binaries()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="kyso-pg-"))
        self.data = self.root / "data"
        self.password = secrets.token_hex(16)
        self._as_root = os.geteuid() == 0
        self._databases = 0

    def __enter__(self) -> PostgresServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """initdb, then start the server and wait until it accepts connections."""
        if self._as_root:
            shutil.chown(self.root, SUPERUSER, SUPERUSER)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if self._as_root:
            shutil.chown(pwfile, SUPERUSER, SUPERUSER)
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        )
        pwfile.unlink()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c max_connections=200"
        )
        if not self.fsync:
            options += " -c fsync=off -c full_page_writes=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-o",
            options,
            "-w",
            "start",
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str, user: str, password: str) -> str:
        return f"postgresql+psycopg://{user}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database owned by a new user; its SQLAlchemy URL."""
        self._databases += 1
        name = name or f"kyso{self._databases}"
        password = secrets.token_hex(12)
        with psycopg.connect(
            host="127.0.0.1",
            port=self.port,
            user=SUPERUSER,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        ) as conn:
            conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")
            conn.execute(f"CREATE DATABASE {name} OWNER {name}")
        return self.url(name, name, password)

    def _run(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._as_root:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, cwd=self.root)
        if result.returncode != 0:
            log = self.root / "log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed: {result.stderr.strip()}\n{tail}")
