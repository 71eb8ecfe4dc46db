"""Paths and helpers shared by the tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from kyso.api import create_app
from kyso.config import Config, load_config
from kyso.service import Kyso

# Everything the suite reads lives in the checkout (tests/data) or in the virtual environment.
DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "corpus"
VECTORS = DATA / "vectors"
# kyso's console script in the virtual environment that runs the tests, as a user runs it
# (not resolved: the interpreter is a symbolic link out of the environment).
KYSO = str(Path(sys.executable).parent / "kyso")
# The databases a test marked ``each_database`` runs on (tests/conftest.py).
DATABASES = ("sqlite", "postgresql")


@dataclass
class Service:
    kyso: Kyso
    client: object  # flask.testing.FlaskClient
    keys: dict[str, str]  # client name -> API key

    def auth(self, name: str = "his") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[name]}"}


def make_config(data_dir: Path, **overrides: object) -> Config:
    config = load_config(env={"KYSO_DATA_DIR": str(data_dir)})
    return Config(**{**config.__dict__, **overrides})


def new_database_url(request: pytest.FixtureRequest, database: str) -> str | None:
    """None for SQLite in the service's data directory; else a new database on the
    session's PostgreSQL server (the ``postgres`` fixture, started on first use)."""
    if database == "sqlite":
        return None
    return request.getfixturevalue("postgres").create_database()


def open_service(data_dir: Path, database_url: str | None = None, **overrides: object) -> Service:
    """A service on the embedded default (with ``overrides`` of its configuration) and
    clients of every role."""
    kyso = Kyso.open(make_config(data_dir, database_url=database_url, **overrides))
    keys = {
        "his": kyso.add_client("test", "his", "his", ("hospital-seal", "lab-seal", "dr-revoked", "dr-expired", "dr-future")),
        "his-lab": kyso.add_client("test", "his-lab", "his", ("lab-seal",)),
        "auditor": kyso.add_client("test", "auditor", "auditor"),
        "admin": kyso.add_client("test", "admin", "admin"),
    }
    return Service(kyso, create_app(kyso=kyso).test_client(), keys)


def corpus_pdfs() -> list[Path]:
    found = sorted((CORPUS / "pdf").glob("*/*.pdf"))
    # Counted, so that a missing folder fails the suite instead of emptying a parametrisation.
    assert len(found) == 31, f"the PDF corpus under {CORPUS} is incomplete"
    return found


def corpus_records() -> list[Path]:
    found = sorted((CORPUS / "records").glob("*.json"))
    assert len(found) == 3, f"the JSON records under {CORPUS} are incomplete"
    return found
