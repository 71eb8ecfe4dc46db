"""Paths and helpers shared by the tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kyso.config import Config, load_config
from kyso.service import Kyso

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
CORPUS = SHARED / "corpus"
VECTORS = SHARED / "vectors"


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


def corpus_pdfs() -> list[Path]:
    return sorted((CORPUS / "pdf").glob("*/*.pdf"))


def corpus_records() -> list[Path]:
    return sorted((CORPUS / "records").glob("*.json"))


def corpus_xml() -> list[Path]:
    return sorted((CORPUS / "xml").glob("*.xml"))


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
