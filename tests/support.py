"""Paths and helpers shared by the tests (importable: tests/ is on pythonpath)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from kyso.config import Config, load_config
from kyso.service import Kyso

# Everything the suite reads lives in the checkout (tests/data) or in the virtual environment.
DATA = Path(__file__).resolve().parent / "data"
CORPUS = DATA / "corpus"
VECTORS = DATA / "vectors"
# kyso's console script in the virtual environment that runs the tests, as a user runs it
# (not resolved: the interpreter is a symbolic link out of the environment).
KYSO = str(Path(sys.executable).parent / "kyso")


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
    found = sorted((CORPUS / "pdf").glob("*/*.pdf"))
    # Counted, so that a missing folder fails the suite instead of emptying a parametrisation.
    assert len(found) == 31, f"the PDF corpus under {CORPUS} is incomplete"
    return found


def corpus_records() -> list[Path]:
    found = sorted((CORPUS / "records").glob("*.json"))
    assert len(found) == 3, f"the JSON records under {CORPUS} are incomplete"
    return found
