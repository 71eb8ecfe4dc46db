"""Fixtures shared by every test folder: the dev PKI, a kyso service on a temporary
data directory (on SQLite, or on PostgreSQL for tests marked ``each_database``), its Flask
test client and API keys, services of a test's own, a PostgreSQL server, and an NSS database
for pdfsig."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from csc_server import CscService, start_csc_service
from pg import PostgresServer
from support import DATABASES, Service, new_database_url, open_service
from verifiers import make_nss_db

from kyso.certs.devpki import dev_pki_dir


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


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked ``each_database`` runs once per database of :data:`support.DATABASES`."""
    if "database" in metafunc.fixturenames and metafunc.definition.get_closest_marker("each_database"):
        metafunc.parametrize("database", DATABASES, indirect=True, scope="module")



@pytest.fixture(scope="session")
def csc_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CscService]:
    """certomancer-csc-dummy on a free loopback port over a PKI made now (TEST ONLY keys);
    a test that turns its knobs resets them (``CscService.reset``)."""
    service = start_csc_service(tmp_path_factory.mktemp("csc"))
    yield service
    service.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the session (about 3 s to start, and only if a test asks
    for it); each test or module that uses it makes a database of its own."""
    with PostgresServer(fsync=False) as server:
        yield server


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    """A new, empty PostgreSQL database (SQLAlchemy URL, psycopg 3)."""
    return postgres.create_database()


@pytest.fixture(scope="module")
def database(request: pytest.FixtureRequest) -> str:
    """The database of the ``service`` fixture: ``sqlite`` unless the test is marked
    ``each_database`` (then ``sqlite`` and ``postgresql`` in turn)."""
    return getattr(request, "param", "sqlite")


@pytest.fixture(scope="module")
def service(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, database: str
) -> Iterator[Service]:
    """A service with clients of every role, shared by the tests of a module (per database):
    its tests must not depend on each other, so they compare with the state they start from."""
    opened = open_service(tmp_path_factory.mktemp("kyso"), new_database_url(request, database))
    yield opened
    opened.kyso.close()


@pytest.fixture
def new_service(
    request: pytest.FixtureRequest, tmp_path: Path, database: str
) -> Iterator[Callable[..., Service]]:
    """Open services of the test's own (keywords override their configuration), on the
    test's database, for a test that needs an empty log or another configuration; each is
    closed after the test."""
    opened: list[Service] = []

    def make(**overrides: object) -> Service:
        data_dir = tmp_path / f"kyso-{len(opened)}"
        opened.append(open_service(data_dir, new_database_url(request, database), **overrides))
        return opened[-1]

    yield make
    for service in opened:
        service.kyso.close()
