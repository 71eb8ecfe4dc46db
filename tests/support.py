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



def corpus_xml() -> list[Path]:
    found = sorted((CORPUS / "xml").glob("*.xml"))
    assert len(found) == 4, f"the XML records under {CORPUS} are incomplete"
    return found


# XML that kyso refuses with invalid_xml before anything is signed: name -> body.
HOSTILE_XML: dict[str, bytes] = {
    "billion-laughs": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        + b"".join(b'<!ENTITY lol%d "%s">' % (i, b"&lol%d;" % (i - 1) * 10 if i > 1 else b"&lol;" * 10) for i in range(1, 10))
        + b"]><HSDANHMUC>&lol9;<CHUKYDONVI/></HSDANHMUC>"
    ),
    "external-entity": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b"<HSDANHMUC><TEN>&x;</TEN><CHUKYDONVI/></HSDANHMUC>"
    ),
    "external-dtd": b'<?xml version="1.0"?><!DOCTYPE r SYSTEM "http://127.0.0.1:9/x.dtd"><r><CHUKYDONVI/></r>',
    "parameter-entity": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/p.dtd"> %p;]><r/>'
    ),
    "undeclared-entity": b"<HSDANHMUC><TEN>&x;</TEN><CHUKYDONVI/></HSDANHMUC>",
    "deep-nesting": b"<a>" * 5000 + b"</a>" * 5000,
    "utf-7": b'<?xml version="1.0" encoding="UTF-7"?><r>+ADw-CHUKYDONVI/+AD4-</r>',
    "utf-16": '<?xml version="1.0" encoding="UTF-16"?><r><CHUKYDONVI/></r>'.encode("utf-16"),
    "xinclude": (
        b'<HSDANHMUC xmlns:xi="http://www.w3.org/2001/XInclude">'
        b'<xi:include href="file:///etc/passwd" parse="text"/><CHUKYDONVI/></HSDANHMUC>'
    ),
    "not-well-formed": b"<HSDANHMUC><TEN>x</HSDANHMUC>",
    "not-xml": b"%PDF-1.7\n",
    "empty": b"",
}
