"""Fixtures of the audit tests: the log key and a TSA to sign checkpoints, and services on
SQLite or PostgreSQL (the server is tests/conftest.py's ``postgres``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import make_config

from kyso.certs.devpki import DEV_PASSPHRASE
from kyso.keystore.base import SigningKey
from kyso.keystore.software import load_certificates, load_software_key
from kyso.service import Kyso
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import TimestampClient, TimestampSource


@dataclass(frozen=True)
class LogSigner:
    """What signs and timestamps checkpoints in tests: the dev log key and the built-in TSA."""

    key: SigningKey
    timestamper: TimestampClient
    tsa: TimestampAuthority


def dev_key(pki: Path, alias: str) -> SigningKey:
    chain = (str(pki / "intermediate-ca.cert.pem"), str(pki / "root-ca.cert.pem"))
    return load_software_key(
        alias, pki / f"{alias}.key.pem", DEV_PASSPHRASE, pki / f"{alias}.cert.pem", chain
    )


@pytest.fixture(scope="session")
def log_signer(pki: Path) -> LogSigner:
    tsa = TimestampAuthority(dev_key(pki, "tsa"))
    return LogSigner(
        dev_key(pki, "audit-log"), TimestampClient([TimestampSource("tsa", tsa.respond)]), tsa
    )


@pytest.fixture(scope="session")
def dev_keys(pki: Path) -> dict[str, SigningKey]:
    """Dev keys by alias, loaded alone (without a whole keystore)."""
    return {
        alias: dev_key(pki, alias) for alias in ("audit-log", "hospital-seal", "lab-seal", "tsa")
    }


@pytest.fixture(scope="session")
def dev_root(root_pem: Path) -> list:
    """The dev root CA: the trust anchor of the log key and of the TSA."""
    return load_certificates(root_pem)


@pytest.fixture
def open_kyso(tmp_path: Path) -> Iterator[Callable[..., Kyso]]:
    """Open services on the embedded default (SQLite in tmp_path, or ``database_url``);
    every one is closed after the test."""
    opened: list[Kyso] = []

    def make(database_url: str | None = None, **audit: object) -> Kyso:
        config = make_config(tmp_path, database_url=database_url)
        if audit:
            from dataclasses import replace

            config = replace(config, audit=replace(config.audit, **audit))
        kyso = Kyso.open(config)
        opened.append(kyso)
        return kyso

    yield make
    for kyso in opened:
        kyso.close()
