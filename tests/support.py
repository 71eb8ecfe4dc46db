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
