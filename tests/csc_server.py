"""A Cloud Signature Consortium API service for tests: certomancer-csc-dummy on a free
127.0.0.1 port, in a thread of this process, over a PKI generated at test time.

Every private key here is made when the fixture starts, written under the test's temporary
directory, and is TEST ONLY. The service is scriptable: require a bearer token (or OAuth2
client credentials), refuse every call (``down``), answer slowly (``delay``), or return
signatures that do not verify (``corrupt``); it records the calls it received.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from asn1crypto import pem
from certomancer.registry import ArchLabel, CertLabel, CertomancerConfig
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from csc_dummy.csc_dummy_server import CSCWithCertomancer, DummyServiceParams

ARCH = "kyso-test"
# label -> (key type, common name, validity); every end-entity certificate may sign records
END_ENTITIES = {
    "seal": ("rsa", "Benh vien Da khoa Kyso (CSC seal, TEST ONLY)", None),
    "seal-ec": ("ec", "Phong xet nghiem Kyso (CSC EC seal, TEST ONLY)", None),
    "dr-csc": ("rsa", "BS. Le Thi Cloud (CSC clinician, TEST ONLY)", None),
    "dr-csc-expired": (
        "rsa",
        "BS. Het Han (expired CSC clinician, TEST ONLY)",
        ("2020-01-01T00:00:00+0000", "2021-01-01T00:00:00+0000"),
    ),
}
VALIDITY = ("2024-01-01T00:00:00+0000", "2046-01-01T00:00:00+0000")
OAUTH_CLIENT = ("kyso-his", "oauth-secret-TEST-ONLY")


def _write_key(path: Path, kind: str) -> None:
    key: Any = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )


def _usage(*params: str) -> dict[str, Any]:
    return {
        "id": "key_usage",
        "critical": True,
        "smart-value": {"schema": "key-usage", "params": list(params)},
    }


def certomancer_config(directory: Path) -> CertomancerConfig:
    """A root, an intermediate and the END_ENTITIES, with fresh TEST ONLY keys."""
    keys = directory / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    labels = {"root": "rsa", "interm": "rsa", **{k: v[0] for k, v in END_ENTITIES.items()}}
    for label, kind in labels.items():
        _write_key(keys / f"{label}.key.pem", kind)
    ca_usage = _usage("digital_signature", "key_cert_sign", "crl_sign")
    certs: dict[str, Any] = {
        "root": {
            "subject": "root",
            "issuer": "root",
            "validity": {"valid-from": VALIDITY[0], "valid-to": VALIDITY[1]},
            "extensions": [{"id": "basic_constraints", "critical": True, "value": {"ca": True}}, ca_usage],
        },
        "interm": {
            "subject": "interm",
            "issuer": "root",
            "validity": {"valid-from": VALIDITY[0], "valid-to": VALIDITY[1]},
            "extensions": [
                {"id": "basic_constraints", "critical": True, "value": {"ca": True, "path_len_constraint": 0}},
                ca_usage,
            ],
        },
    }
    for label, (_, _, validity) in END_ENTITIES.items():
        start, end = validity or VALIDITY
        certs[label] = {
            "subject": label,
            "issuer": "interm",
            "validity": {"valid-from": start, "valid-to": end},
            "extensions": [
                _usage("digital_signature", "non_repudiation"),
                # NSS (pdfsig) checks the signer for S/MIME signing: emailProtection.
                {"id": "extended_key_usage", "value": ["email_protection", "1.3.6.1.5.5.7.3.36"]},
            ],
        }
    entities = {"root": {"common-name": "Kyso CSC Test Root (TEST ONLY)"},
                "interm": {"common-name": "Kyso CSC Test Issuing CA (TEST ONLY)"}}
    entities.update({label: {"common-name": cn} for label, (_, cn, _) in END_ENTITIES.items()})
    config = {
        "keysets": {"csc-keys": {"path-prefix": str(keys),
                                 "keys": {label: {"path": f"{label}.key.pem"} for label in labels}}},
        "pki-architectures": {
            ARCH: {
                "keyset": "csc-keys",
                "entity-defaults": {"country-name": "VN", "organization-name": "Kyso CSC Test PKI"},
                "entities": entities,
                "certs": certs,
            }
        },
    }
    return CertomancerConfig(config, key_search_dir=str(directory))


@dataclass
class CscService:
    """A running dummy CSC service and its knobs."""

    app: web.Application
    directory: Path
    arch: Any
    port: int = 0
    token: str | None = None  # the bearer token every call must carry (None: any)
    down: bool = False
    corrupt: bool = False
    delay: float = 0.0
    calls: list[tuple[str, Any, str]] = field(default_factory=list)  # (method, body, auth)
    _loop: asyncio.AbstractEventLoop | None = None
    _runner: web.AppRunner | None = None
    _thread: threading.Thread | None = None

    @property
    def thread(self) -> threading.Thread | None:
        """The thread that serves (and signs): a benchmark subtracts its CPU time."""
        return self._thread

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base}/csc/v1"

    def credential(self, label: str) -> str:
        return f"{ARCH}/{label}"

    def cert_pem(self, label: str) -> str:
        return pem.armor("CERTIFICATE", self.arch.get_cert(CertLabel(label)).dump()).decode("ascii")

    @property
    def root_pem(self) -> Path:
        path = self.directory / "csc-root.pem"
        if not path.exists():
            path.write_text(self.cert_pem("root"))
        return path

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]

    def reset(self) -> None:
        self.calls.clear()
        self.down = self.corrupt = False
        self.delay = 0.0
        self.token = None

    # -- the server ------------------------------------------------------------

    @web.middleware
    async def _control(self, request: web.Request, handler: Any) -> web.StreamResponse:
        method = request.path.removeprefix("/csc/v1/")
        body: Any = None
        if request.content_type == "application/json":
            body = await request.json()
        auth = request.headers.get("Authorization", "")
        self.calls.append((method, body, auth))
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.down:
            return web.json_response({"error": "temporarily_unavailable"}, status=503)
        if method != "oauth2/token" and self.token is not None and auth != f"Bearer {self.token}":
            return web.json_response({"error": "invalid_token"}, status=401)
        response = await handler(request)
        if self.corrupt and method == "signatures/signHash":
            answer = json.loads(response.body)
            answer["signatures"] = [_flip(s) for s in answer["signatures"]]
            return web.json_response(answer)
        return response

    async def _oauth_token(self, request: web.Request) -> web.Response:
        form = await request.post()
        if (form.get("grant_type"), form.get("client_id"), form.get("client_secret")) != (
            "client_credentials", *OAUTH_CLIENT
        ):
            return web.json_response({"error": "invalid_client"}, status=401)
        self.token = "oauth-access-token-TEST-ONLY"
        return web.json_response({"access_token": self.token, "token_type": "Bearer", "expires_in": 600})

    def start(self) -> CscService:
        self.app.middlewares.append(self._control)
        self.app.router.add_post("/csc/v1/oauth2/token", self._oauth_token)
        loop = self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="csc-dummy", daemon=True)
        self._thread.start()
        self._runner = web.AppRunner(self.app)
        asyncio.run_coroutine_threadsafe(self._runner.setup(), loop).result()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        asyncio.run_coroutine_threadsafe(site.start(), loop).result()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    def stop(self) -> None:
        assert self._loop is not None and self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)


def start_csc_service(directory: Path, scal: int = 2, multisign: int = 100) -> CscService:
    """certomancer-csc-dummy over a fresh PKI, on a free loopback port."""
    directory.mkdir(parents=True, exist_ok=True)
    config = certomancer_config(directory)
    params = DummyServiceParams(hash_pinning_required=scal >= 2, multisign=multisign)
    with warnings.catch_warnings():  # aiohttp's NotAppKeyWarning about the dummy's own code
        warnings.simplefilter("ignore")
        csc = CSCWithCertomancer(config, service_params=params)
    csc.register_routes()
    return CscService(csc.app, directory, config.get_pki_arch(ArchLabel(ARCH))).start()


def _flip(value: str) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[len(raw) // 2] ^= 0x01
    return base64.b64encode(bytes(raw)).decode("ascii")
