"""A dev PKI of its own, served over HTTP on a free loopback port, for long-term signatures.

The shipped dev PKI names ``http://127.0.0.1:8080/pki/...`` in its certificates; tests must
not need that port. :func:`ltv_pki` generates a fresh dev PKI whose URLs name a port chosen
by the OS, and serves a kyso app on it in a background thread (werkzeug): its ``/pki``
endpoints (CRLs, OCSP, CA certificates) and its built-in TSA at ``/tsa``. pdfsig checks OCSP
live against it, and a production-style service (``dev_pki = false``) fetches from it.

The PKI is made once per test process (about two seconds of key generation) and shared by
every folder that imports these fixtures (``tests/api/conftest.py``, and the signer tests
import them directly, their folder's conftest being another's).
"""

from __future__ import annotations

import atexit
import functools
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from support import Service
from verifiers import make_nss_db
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from kyso.api import create_app
from kyso.certs import devpki
from kyso.config import Config, load_config
from kyso.service import Kyso

SHORT_LIVED = "short-lived"  # a clinician certificate that expires at the end of 2030
SHORT_LIVED_UNTIL = datetime(2030, 12, 31, 23, 59, 59, tzinfo=UTC)
HIS_KEYS = ("hospital-seal", "lab-seal", "dr-an", "dr-binh", "dr-revoked", SHORT_LIVED)


@dataclass
class LtvPki:
    """A generated dev PKI, the kyso app serving it, and where."""

    directory: Path
    base_url: str
    server: BaseWSGIServer
    kyso: Kyso  # the instance behind base_url (dev_pki on, this PKI)
    extra_keys: list[str] = field(default_factory=list)

    @property
    def root_pem(self) -> Path:
        return self.directory / "root-ca.cert.pem"

    @property
    def chain_pem(self) -> Path:
        return self.directory / "chain.pem"

    def config(self, data_dir: Path, toml: str = "", dev_pki: bool = True) -> Config:
        """A configuration on this PKI, loaded from a TOML file as production does.

        ``dev_pki`` on: every dev alias from this directory, the in-process revocation
        source and /pki. Off: only the keys and settings ``toml`` names."""
        data_dir.mkdir(parents=True, exist_ok=True)
        head = f'data_dir = "{data_dir}"\ndev_pki = {"true" if dev_pki else "false"}\n'
        if dev_pki:
            head += f'dev_pki_path = "{self.directory}"\n'
            head += "".join(self.key_toml(alias) for alias in self.extra_keys)
        path = data_dir / "kyso.toml"
        path.write_text(head + toml, encoding="utf-8")
        return load_config(path, env={})

    def key_toml(self, alias: str) -> str:
        """A ``[[keys]]`` entry for a key of this PKI (dev passphrase)."""
        d = self.directory
        return (
            f'[[keys]]\nalias = "{alias}"\nkey_file = "{d / f"{alias}.key.pem"}"\n'
            f'cert_file = "{d / f"{alias}.cert.pem"}"\n'
            f'chain_files = ["{d / "intermediate-ca.cert.pem"}", "{d / "root-ca.cert.pem"}"]\n'
            "dev_passphrase = true\n"
        )


def _intermediate(directory: Path):
    """The generated intermediate CA: (certificate, key), as cryptography objects."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert = x509.load_pem_x509_certificate((directory / "intermediate-ca.cert.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (directory / "intermediate-ca.key.pem").read_bytes(), devpki.DEV_PASSPHRASE
    )
    return cert, key


def _issue(directory: Path, spec: devpki.LeafSpec, base_url: str):
    """A leaf of the intermediate for ``spec``, made as the generator makes its own."""
    inter, inter_key = _intermediate(directory)
    key = devpki._new_key(spec.key)
    return devpki._issue_leaf(spec, key.public_key(), inter, inter_key, base_url), key


class QuietHandler(WSGIRequestHandler):
    """No access log lines in the test output."""

    def log_request(self, *args, **kwargs) -> None:
        pass


def serve(app, name: str) -> BaseWSGIServer:
    """Serve a WSGI app on a free loopback port in a daemon thread; stop with shutdown()."""
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=QuietHandler)
    threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
    return server


class _Dispatcher:
    """The WSGI app of the server, set once the PKI (which needs the port) exists."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


@functools.cache
def start_ltv_pki() -> LtvPki:
    """Generate the PKI and serve it; once per process, stopped at exit."""
    directory = Path(tempfile.mkdtemp(prefix="kyso-ltv-"))
    dispatcher = _Dispatcher()
    server = serve(dispatcher, "ltv-pki")  # answers once dispatcher.app is set below
    base_url = f"http://127.0.0.1:{server.server_port}"
    pki_dir = directory / "pki"
    devpki.generate_dev_pki(pki_dir, base_url)
    spec = devpki.LeafSpec(
        SHORT_LIVED, "BS. Đỗ Thị Hạnh", "ec-p256", "clinician",
        "clinician whose certificate expires at the end of 2030", unit="Khoa Nội",
        not_after=SHORT_LIVED_UNTIL,
    )  # fmt: skip
    cert, key = _issue(pki_dir, spec, base_url)
    devpki._write_pair(pki_dir, spec.name, cert, key, devpki.DEV_PASSPHRASE)
    pki = LtvPki(pki_dir, base_url, server, kyso=None, extra_keys=[SHORT_LIVED])  # type: ignore[arg-type]
    pki.kyso = Kyso.open(pki.config(directory / "server"))
    dispatcher.app = create_app(kyso=pki.kyso)

    def stop() -> None:
        server.shutdown()
        pki.kyso.close()
        shutil.rmtree(directory, ignore_errors=True)

    atexit.register(stop)
    return pki


def open_service(pki: LtvPki, data_dir: Path, toml: str = "", dev_pki: bool = True) -> Service:
    """A kyso service on ``pki`` with a ``his`` client granted every key and an auditor."""
    kyso = Kyso.open(pki.config(data_dir, toml, dev_pki))
    granted = tuple(a for a in HIS_KEYS if a in kyso.keystore)
    keys = {
        "his": kyso.add_client("test", "his", "his", granted),
        "auditor": kyso.add_client("test", "auditor", "auditor"),
    }
    return Service(kyso, create_app(kyso=kyso).test_client(), keys)


# -- fixtures (imported by the conftest.py of a test folder, or by a test module) ---------


@pytest.fixture(scope="session")
def ltv_pki() -> LtvPki:
    return start_ltv_pki()


@pytest.fixture(scope="session")
def ltv_nssdb(ltv_pki: LtvPki, tmp_path_factory: pytest.TempPathFactory) -> str:
    """An NSS database trusting the generated root, for pdfsig."""
    return make_nss_db(tmp_path_factory.mktemp("ltv-nss"), ltv_pki.root_pem)


@pytest.fixture(scope="module")
def ltv_service(ltv_pki: LtvPki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service on the generated PKI (dev_pki on: revocation data issued in-process)."""
    service = open_service(ltv_pki, tmp_path_factory.mktemp("ltv-kyso"))
    yield service
    service.kyso.close()


def dead_url() -> str:
    """A loopback URL where nothing listens (a port the OS just gave out, closed again)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def issue_leaf(pki: LtvPki, name: str, base_url: str):
    """A clinician certificate of the generated intermediate whose CRL and OCSP URLs name
    ``base_url``; returns (certificate, key) as cryptography objects."""
    spec = devpki.LeafSpec(name, f"BS. {name}", "ec-p256", "clinician", "test leaf")
    return _issue(pki.directory, spec, base_url)
