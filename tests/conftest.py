"""Fixtures shared by every test folder: the dev PKI, a kyso service on a temporary
data directory, its Flask test client and API keys, and an NSS database for pdfsig."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from csc_server import CscService, start_csc_service
from support import Service, make_config
from verifiers import make_nss_db

from kyso.api import create_app
from kyso.certs.devpki import dev_pki_dir
from kyso.service import Kyso


@pytest.fixture(scope="session")
def pki() -> Path:
    return dev_pki_dir()


@pytest.fixture(scope="session")
def root_pem(pki: Path) -> Path:
    return pki / "root-ca.cert.pem"


@pytest.fixture(scope="session")
def chain_pem(pki: Path) -> Path:
    return pki / "chain.pem"


@pytest.fixture(scope="session")
def nssdb(tmp_path_factory: pytest.TempPathFactory, root_pem: Path) -> str:
    return make_nss_db(tmp_path_factory.mktemp("nss"), root_pem)


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service on the embedded default with clients of every role."""
    config = make_config(tmp_path_factory.mktemp("kyso"))
    kyso = Kyso.open(config)
    keys = {
        "his": kyso.add_client("test", "his", "his", ("hospital-seal", "lab-seal", "dr-revoked", "dr-expired", "dr-future")),
        "his-lab": kyso.add_client("test", "his-lab", "his", ("lab-seal",)),
        "auditor": kyso.add_client("test", "auditor", "auditor"),
        "admin": kyso.add_client("test", "admin", "admin"),
    }
    app = create_app(kyso=kyso)
    yield Service(kyso, app.test_client(), keys)
    kyso.close()



@pytest.fixture(scope="session")
def csc_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CscService]:
    """certomancer-csc-dummy on a free loopback port over a PKI made now (TEST ONLY keys);
    a test that turns its knobs resets them (``CscService.reset``)."""
    service = start_csc_service(tmp_path_factory.mktemp("csc"))
    yield service
    service.stop()
