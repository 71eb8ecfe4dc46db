"""The schema comes from Alembic migrations, on SQLite and PostgreSQL, once even when raced."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import insert, select, text

from kyso.audit.entry import GENESIS_PREV_HASH
from kyso.db import (
    alembic_config,
    audit_head,
    create_schema,
    head_revision,
    metadata,
    open_database,
    open_schema,
    schema_revision,
    signatures,
)
from kyso.errors import ConfigError


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return f"sqlite:///{tmp_path / 'kyso.sqlite3'}"


def migrate(url: str) -> str | None:
    db = open_database(url)
    try:
        create_schema(db)
        return schema_revision(db)
    finally:
        db.dispose()


def test_the_migrations_build_exactly_the_schema_the_code_describes(url):
    assert migrate(url) == head_revision()
    db = open_database(url)
    try:
        with db.reader.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
            head = conn.execute(select(audit_head)).all()
        assert [tuple(row) for row in head] == [(1, 0, GENESIS_PREV_HASH)]
    finally:
        db.dispose()


MIGRATE = """
import sys
from kyso.db import create_schema, open_database, schema_revision
db = open_database(sys.argv[1])
create_schema(db)
print(schema_revision(db))
"""


def test_hosts_starting_at_once_migrate_once(url):
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", MIGRATE, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(4)
    ]
    for process in starts:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err.decode()
        assert out.decode().strip() == head_revision()
    db = open_database(url)
    try:
        with db.reader.connect() as conn:
            assert len(conn.execute(select(audit_head)).all()) == 1
    finally:
        db.dispose()


def test_a_database_made_before_alembic_is_adopted(url):
    db = open_database(url)
    try:
        metadata.create_all(db.writer)
        assert schema_revision(db) is None
        create_schema(db)
        assert schema_revision(db) == head_revision()
    finally:
        db.dispose()


def test_an_extension_registered_under_0001_names_no_key_after_the_upgrade(url):
    db = open_database(url)
    row = {"time": "2026-01-01T00:00:00.000000Z", "kind": "pdf", "document_sha256": "a" * 64}
    try:
        with db.writer.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
            conn.execute(
                insert(signatures),
                [
                    {
                        **row,
                        "audit_seq": 0,
                        "key": "hospital-seal",
                        "level": "B-T",
                        "signature_sha256": "b" * 64,
                    },
                    {
                        **row,
                        "audit_seq": 1,
                        "key": "",
                        "level": "B-LTA",
                        "signature_sha256": "c" * 64,
                    },
                ],
            )
        assert schema_revision(db) == "0001"
        create_schema(db)
        assert schema_revision(db) == head_revision()
        with db.reader.connect() as conn:
            keys = conn.execute(select(signatures.c.key).order_by(signatures.c.audit_seq)).scalars()
            assert list(keys) == ["hospital-seal", None]
            assert compare_metadata(MigrationContext.configure(conn), metadata) == []
    finally:
        db.dispose()


def test_a_new_database_gets_the_schema_at_the_first_start(url):
    db = open_database(url)
    try:
        open_schema(db)
        assert schema_revision(db) == head_revision()
    finally:
        db.dispose()


def test_the_service_refuses_a_database_older_than_its_migrations_and_says_to_upgrade(url, tmp_path):
    db = open_database(url)
    try:
        with db.writer.begin() as conn:
            command.upgrade(alembic_config(conn), "0001")
        with pytest.raises(ConfigError, match=r"kyso db upgrade"):
            open_schema(db)
        assert schema_revision(db) == "0001"  # refused, not changed behind the operator's back
    finally:
        db.dispose()
    # the same through the command line: `kyso serve` exits 2 and says what to run; upgrade mends it
    env = {**os.environ, "KYSO_DATABASE_URL": url, "KYSO_DATA_DIR": str(tmp_path / "var")}
    kyso = str(Path(sys.executable).parent / "kyso")
    refused = subprocess.run([kyso, "clients", "list"], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "kyso db upgrade" in refused.stderr
    upgraded = subprocess.run([kyso, "db", "upgrade"], env=env, capture_output=True, text=True)
    assert upgraded.returncode == 0, upgraded.stderr
    assert subprocess.run([kyso, "clients", "list"], env=env, capture_output=True).returncode == 0


def test_a_database_from_a_newer_kyso_is_refused(url):
    db = open_database(url)
    try:
        open_schema(db)
        with db.writer.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
        with pytest.raises(ConfigError, match=r"newer kyso"):
            open_schema(db)
    finally:
        db.dispose()
