"""The database: schema and engines (SQLite embedded, PostgreSQL in production).

Writes that must serialise (audit appends) take the write lock at the start of their
transaction: SQLite's ``BEGIN IMMEDIATE``, PostgreSQL's row lock on the singleton
``audit_head`` row. Every write transaction starts with :meth:`Database.writing`: on
SQLite in a file, the writers of all processes wait their turn there on a lock file beside
the database (:class:`WriteQueue`), not in SQLite's busy handler. Readers use a second
engine and never block writers (SQLite WAL).

The tables below describe the schema; Alembic migrations (``kyso/audit/migrations``)
create and change it. :func:`create_schema` runs them, under a lock, so that several
workers or hosts starting at once migrate exactly once. A change to a table here needs a
new migration in ``audit/migrations/versions`` (tests compare the two).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    create_engine,
    event,
    insert,
    inspect,
    select,
    text,
)

metadata = MetaData()

audit_entries = Table(
    "audit_entries",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_hash", String(64), nullable=False, unique=True),
    Column("time", String(32), nullable=False),
    Column("action", String(64), nullable=False),
    Column("actor", String(200)),
    Column("record_id", String(1024), index=True),
    Column("document_sha256", String(64), index=True),
    Column("signature_sha256", String(64), index=True),
    Column("canonical", Text, nullable=False),  # the exact JCS text that was hashed
)

# One row (id = 1): the tree size and the hash of the last entry. Appenders lock it.
audit_head = Table(
    "audit_head",
    metadata,
    Column("id", SmallInteger, primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("head_hash", String(64), nullable=False),
)

# Hashes of complete (perfect) Merkle subtrees: node (level, idx) covers leaves
# [idx * 2**level, (idx + 1) * 2**level). Level 0 is the entry hashes themselves.
merkle_nodes = Table(
    "merkle_nodes",
    metadata,
    Column("level", SmallInteger, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("hash", LargeBinary(32), nullable=False),
)

checkpoints = Table(
    "checkpoints",
    metadata,
    Column("tree_size", BigInteger, primary_key=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("document", Text, nullable=False),  # the checkpoint JSON object
)

signatures = Table(
    "signatures",
    metadata,
    Column("audit_seq", BigInteger, primary_key=True, autoincrement=False),
    Column("record_id", String(1024), index=True),
    Column("time", String(32), nullable=False),
    Column("key", String(200)),  # NULL for an extension: no key alias of ours signed it
    Column("kind", String(8), nullable=False),  # pdf | json
    Column("level", String(8), nullable=False),
    Column("document_sha256", String(64), nullable=False),
    Column("signature_sha256", String(64), nullable=False, index=True),
    Column("extend_before", String(32), index=True),  # PDF: extend again before (ISO UTC)
)

clients = Table(
    "clients",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("role", String(16), nullable=False),
    Column("keys", Text, nullable=False),  # JSON list of granted aliases
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("revoked", Boolean, nullable=False, default=False),
)

# Idempotency-Key reservations and the answers kept for retries (kyso.db.reservations):
# claimed (token), fulfilled in the audit transaction (audit_seq), answered (status...).
idempotency = Table(
    "idempotency",
    metadata,
    Column("client", String(200), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("status", Integer),  # NULL until the answer is stored
    Column("headers", Text),
    Column("body", LargeBinary),
    Column("created", Float, nullable=False),  # epoch seconds: when the key was claimed
    Column("token", String(32)),  # the claim's; NULL for answers kept before reservations
    Column("audit_seq", BigInteger),  # the entry that fulfilled it
)

signing_sessions = Table(
    "signing_sessions",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client", String(200), nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used", Boolean, nullable=False, default=False),
    Column("state", LargeBinary, nullable=False),  # prepared documents (JSON)
)

# The provider's side of a signing session whose clinician signs remotely (one row per
# such session): its transaction, its answer, and when kyso asks it again. A worker takes
# a row for a while (``lease_until``) before it asks, so that one worker asks at a time.
remote_transactions = Table(
    "remote_transactions",
    metadata,
    Column("session_id", String(64), primary_key=True),
    Column("provider", String(100), nullable=False),
    Column("transaction_id", String(64), nullable=False, unique=True, index=True),
    Column("reference", String(200)),  # the provider's own id of the transaction
    # pending | signed (answered, not yet finished) | completed | rejected | expired | failed
    Column("status", String(16), nullable=False, index=True),
    Column("signatures", LargeBinary),  # JSON list of base64 values, once answered
    Column("result", LargeBinary),  # JSON: the signed documents, or the error
    Column("attempts", Integer, nullable=False),
    Column("next_poll_at", Float, nullable=False, index=True),  # epoch seconds
    Column("lease_until", Float),
    Column("updated", Float, nullable=False),
)


class WriteQueue:
    """Where writers of one SQLite file wait their turn, in the kernel rather than in SQLite.

    SQLite's busy handler makes a writer that finds the database locked sleep with back-off
    (up to 100 ms at a time), long after the lock is free again: with several writer
    processes most of their time went there. Holding an exclusive ``flock`` on a file beside
    the database around each write transaction makes them queue and wake as soon as the
    previous one has committed. The file is opened anew in each process (a descriptor
    inherited across ``fork`` would share the lock); threads of one process take turns on a
    process lock first. ``BEGIN IMMEDIATE`` stays the lock that keeps the chain whole: a
    writer that does not take this one (another tool, an older kyso) only waits longer.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._turn = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    @contextmanager
    def held(self) -> Iterator[None]:
        with self._turn:
            fd = self._file()
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)

    def _file(self) -> int:
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            self._pid = os.getpid()
        return self._fd

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None


@dataclass
class Database:
    """A writer engine (serialised appends) and a reader engine."""

    url: str
    writer: Engine
    reader: Engine
    # Called by dispose(), first: background work on this database (the checkpointer) stops.
    on_dispose: list[Callable[[], None]] = field(default_factory=list)
    # SQLite in a file: where its writers queue (:class:`WriteQueue`); None otherwise.
    write_queue: WriteQueue | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """A write transaction that holds the database's write lock from its first statement
        (see the module docstring); with SQLite in a file, taken in turn with the other
        processes' writers (:class:`WriteQueue`)."""
        if self.write_queue is None:
            with self.writer.begin() as conn:
                yield conn
            return
        with self.write_queue.held(), self.writer.begin() as conn:
            yield conn

    def dispose(self) -> None:
        while self.on_dispose:
            self.on_dispose.pop()()
        self.writer.dispose()
        self.reader.dispose()
        if self.write_queue is not None:
            self.write_queue.close()


def _sqlite_engine(url: str, immediate: bool) -> Engine:
    engine = create_engine(url, connect_args={"timeout": 60, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):
        # Let SQLAlchemy, not the driver, decide where transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # durable before acknowledged
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # The default deferred BEGIN reads the chain tail outside the write lock,
        # which forks the chain under concurrency.
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def open_database(url: str) -> Database:
    if url.startswith("sqlite"):
        writer = _sqlite_engine(url, True)
        path = writer.url.database
        # In memory (no file, or ":memory:"): one process, nothing to queue beside.
        queue = WriteQueue(Path(path + ".lock")) if path and path != ":memory:" and not path.startswith("file:") else None
        return Database(url, writer, _sqlite_engine(url, False), write_queue=queue)
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    return Database(url, engine, engine)


MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Any 64-bit number of our own: the PostgreSQL advisory lock that serialises migrations.
_MIGRATION_LOCK = 0x6B79736F_6D696772  # "kysomigr"


def alembic_config(connection=None):
    """The Alembic configuration of kyso's migrations, bound to ``connection`` if given."""
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["connection"] = connection
    return cfg


def schema_revision(db: Database) -> str | None:
    """The Alembic revision the database is at (None: no kyso schema yet, or pre-Alembic)."""
    from alembic.runtime.migration import MigrationContext

    with db.reader.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """The newest migration shipped with this version of kyso."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head


def create_schema(db: Database) -> None:
    """Bring the schema to the newest migration and create the chain head row (idempotent).

    Runs the Alembic migrations in one transaction that holds the database's write lock
    (SQLite ``BEGIN IMMEDIATE``; a PostgreSQL advisory lock), so concurrent starts wait
    for each other instead of racing. A database made by ``metadata.create_all`` before
    kyso used Alembic is adopted: stamped at the first revision, then upgraded.
    """
    from alembic import command

    from kyso.audit.entry import GENESIS_PREV_HASH

    if schema_revision(db) == head_revision() and _has_head_row(db):
        return  # the common case (every worker start): no lock, no write
    with db.writing() as conn:
        if not db.is_sqlite:
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
        cfg = alembic_config(conn)
        tables = set(inspect(conn).get_table_names())
        if "audit_head" in tables and "alembic_version" not in tables:
            command.stamp(cfg, "0001")
        command.upgrade(cfg, "head")
        if conn.execute(select(audit_head.c.id)).first() is None:
            conn.execute(insert(audit_head).values(id=1, size=0, head_hash=GENESIS_PREV_HASH))


def open_schema(db: Database) -> None:
    """At start-up: create the schema in a new, empty database (the first start), and
    refuse a database whose schema is older or newer than this kyso's migrations: those
    are changed only by ``kyso db upgrade``, run on purpose, after a backup."""
    from kyso.errors import ConfigError

    revision, head = schema_revision(db), head_revision()
    if revision == head:
        if not _has_head_row(db):
            create_schema(db)
        return
    if revision is None:
        with db.reader.connect() as conn:
            tables = set(inspect(conn).get_table_names())
        if not tables & set(metadata.tables):
            create_schema(db)  # a new database
            return
    from alembic.script import ScriptDirectory

    known = {r.revision for r in ScriptDirectory.from_config(alembic_config()).walk_revisions()}
    if revision is not None and revision not in known:
        raise ConfigError(
            f"the database schema is at revision {revision}, made by a newer kyso than this one "
            f"(which knows up to {head}); run the newer kyso, or restore a backup"
        )
    raise ConfigError(
        f"the database schema is at revision {revision or 'none (made before migrations)'}, "
        f"older than this kyso's {head}: back the database up, then run `kyso db upgrade`"
    )


def _has_head_row(db: Database) -> bool:
    with db.reader.connect() as conn:
        return conn.execute(select(audit_head.c.id)).first() is not None
