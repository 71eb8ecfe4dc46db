"""An online copy of the embedded SQLite database: ``kyso db backup FILE``.

The audit log is the record's trail: losing the database loses it. SQLite's online
backup API copies the database page by page in one step, under one read transaction, so
the copy is a consistent snapshot even while the service goes on writing (in WAL mode
readers and the writer do not block each other). The copy is written next to its
destination, checked (``PRAGMA integrity_check``, and the chain head it holds), flushed
to disk and only then renamed into place: a backup that exists is a whole one.

PostgreSQL has its own tools for this (``pg_dump``, or base backups with WAL
archiving); kyso does not copy a PostgreSQL database.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from kyso.errors import ConfigError


@dataclass(frozen=True)
class Backup:
    """A finished backup: where, how large, and the audit chain it holds."""

    path: Path
    bytes: int
    entries: int
    head_hash: str


def backup_sqlite(url: str, target: Path) -> Backup:
    """Copy the SQLite database at ``url`` to ``target`` (which must not exist yet)."""
    parsed = make_url(url)
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        raise ConfigError(
            "kyso db backup copies the embedded SQLite database; back up PostgreSQL with "
            "pg_dump, or with base backups and WAL archiving"
        )
    source_path = Path(parsed.database)
    if not source_path.is_file():
        raise ConfigError(f"there is no database at {source_path}")
    if target.exists():
        raise ConfigError(f"{target} exists already; a backup never overwrites a file")
    if not target.parent.is_dir():
        raise ConfigError(f"there is no folder {target.parent} to put the backup in: make it first")
    partial = target.with_name(target.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        entries, head_hash = _copy(source_path, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    _sync_directory(target.parent)
    return Backup(target, target.stat().st_size, entries, head_hash)


def _copy(source_path: Path, partial: Path) -> tuple[int, str]:
    """Copy, check and flush; the audit size and chain head of the copy."""
    source = sqlite3.connect(source_path, timeout=60)
    try:
        copy = sqlite3.connect(partial)
        try:
            source.backup(copy)  # all pages in one step: one consistent snapshot
            copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
            problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
            if problems != ["ok"]:
                raise ConfigError("the copy failed its integrity check: " + "; ".join(problems[:5]))
            head = copy.execute("SELECT size, head_hash FROM audit_head").fetchone()
        finally:
            copy.close()
    finally:
        source.close()
    if head is None:
        raise ConfigError("the database holds no audit log (run kyso db upgrade first)")
    with open(partial, "rb") as written:
        os.fsync(written.fileno())
    return int(head[0]), str(head[1])


def _sync_directory(path: Path) -> None:
    """Make the rename durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
