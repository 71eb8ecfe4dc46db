"""A loopback remote-signing gateway that follows the published NEAC contract, for tests.

No public test server exists for the national remote-signing interface; this one follows
the contract kyso's client follows (see :mod:`kyso.sessions.remote.neac`: Decision
769/QD-BTTTT as implemented by VNPT SmartCA's sp769 gateway and Methics' client): ``get_certificate``, ``sign`` (asynchronous, or synchronous
with ``sync``) and the transaction ``status``. The clinicians are the dev PKI's (DEV ONLY keys):
their "phones" are this object's methods, so a test confirms, rejects or lets a transaction
expire when it wants. It can also fail (``down``), answer slowly (``delay``), sign wrongly
(``corrupt``) or leave out the ``tran_status`` member as VNPT does (``vnpt_style``).
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from flask import Flask, jsonify, request
from werkzeug.serving import make_server

from kyso.certs.devpki import DEV_PASSPHRASE

SP_ID = "kyso-hospital"
SP_SECRET = "sp-secret-TEST-ONLY-41c9"
# citizen ids (CCCD, made up) -> dev PKI clinicians
USERS = {
    "001099012345": "dr-an",  # RSA
    "001099054321": "dr-binh",  # ECDSA P-256
    "079099000001": "dr-revoked",
    "079099000002": "dr-expired",
}


@dataclass
class Transaction:
    transaction_id: str
    tran_code: str
    user_id: str
    description: str
    files: list[dict[str, Any]]
    state: str = "PENDING"  # PENDING, CONFIRMED, REJECTED, EXPIRED
    polls: int = 0


@dataclass
class NeacGateway:
    pki: Path
    port: int = 0
    sync: bool = False  # answer the sign request with the signatures (the clinician is quick)
    down: bool = False
    delay: float = 0.0
    corrupt: bool = False
    vnpt_style: bool = False  # no tran_status: the state is in status_code and message only
    transactions: dict[str, Transaction] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sca/sp769"

    def reset(self) -> None:
        self.sync = self.down = self.corrupt = self.vnpt_style = False
        self.delay = 0.0
        self.calls.clear()

    # -- the clinician's phone ---------------------------------------------------

    def transaction(self, transaction_id: str) -> Transaction:
        with self._lock:
            return next(t for t in self.transactions.values() if t.transaction_id == transaction_id)

    def confirm(self, transaction_id: str) -> None:
        self.transaction(transaction_id).state = "CONFIRMED"

    def reject(self, transaction_id: str) -> None:
        self.transaction(transaction_id).state = "REJECTED"

    def expire(self, transaction_id: str) -> None:
        self.transaction(transaction_id).state = "EXPIRED"

    # -- signing -------------------------------------------------------------------

    def _key(self, user_id: str) -> Any:
        name = USERS[user_id]
        return serialization.load_pem_private_key((self.pki / f"{name}.key.pem").read_bytes(), DEV_PASSPHRASE)

    def _signatures(self, tx: Transaction) -> list[dict[str, Any]]:
        key = self._key(tx.user_id)
        out = []
        for item in tx.files:
            digest = bytes.fromhex(item["data_to_be_signed"])
            if isinstance(key, rsa.RSAPrivateKey):
                value = key.sign(digest, padding.PKCS1v15(), Prehashed(hashes.SHA256()))
            else:
                assert isinstance(key, ec.EllipticCurvePrivateKey)
                value = key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
            if self.corrupt:
                value = value[:-1] + bytes([value[-1] ^ 1])
            out.append({"doc_id": item["doc_id"], "signature_value": base64.b64encode(value).decode(),
                        "timestamp_signature": None})
        return out

    # -- the HTTP side ---------------------------------------------------------------

    def app(self) -> Flask:
        app = Flask("neac-gateway")

        @app.before_request
        def _gate() -> Any:
            body = request.get_json(silent=True) or {}
            self.calls.append((request.path.rsplit("/sp769/", 1)[-1], body))
            if self.delay:
                time.sleep(self.delay)
            if self.down:
                return jsonify({"status_code": 500, "message": "SERVAR_INTERNAL_ERROR"}), 500
            if (body.get("sp_id"), body.get("sp_password")) != (SP_ID, SP_SECRET):
                return jsonify({"status_code": 401, "message": "SP_CREDENTIAL_INVALID"})
            return None

        @app.post("/sca/sp769/v1/credentials/get_certificate")
        def get_certificate() -> Any:
            body = request.get_json()
            name = USERS.get(body.get("user_id"))
            if name is None:
                return jsonify({"status_code": 400, "message": "USER_NOT_FOUND"})

            def der(n: str) -> str:
                return base64.b64encode(_der(self.pki / f"{n}.cert.pem")).decode()

            entry = {
                "cert_id": secrets.token_hex(8),
                "serial_number": secrets.token_hex(8),
                "cert_status": "Đang hoạt động",
                "cert_data": der(name),
                "chain_data": {"ca_cert": der("intermediate-ca"), "root_cert": der("root-ca")},
                "transaction_id": body.get("transaction_id"),
            }
            return jsonify({"status_code": 200, "message": "SUCCESS", "data": {"user_certificates": [entry]}})

        @app.post("/sca/sp769/v1/signatures/sign")
        def sign() -> Any:
            body = request.get_json()
            if body.get("user_id") not in USERS or not body.get("sign_files"):
                return jsonify({"status_code": 400, "message": "BAD_REQUEST"})
            tx = Transaction(body["transaction_id"], secrets.token_hex(16), body["user_id"],
                             body.get("transaction_desc", ""), list(body["sign_files"]))
            with self._lock:
                self.transactions[tx.tran_code] = tx
            data: dict[str, Any] = {"transaction_id": tx.transaction_id, "tran_code": tx.tran_code}
            if self.sync:
                tx.state = "CONFIRMED"
                data["signed_files"] = self._signatures(tx)
                return jsonify({"status_code": 200, "message": "SUCCESS", "data": data})
            return jsonify({"status_code": 200, "message": "sig_wait_for_user_confirm", "data": data})

        @app.post("/sca/sp769/v1/signatures/sign/<tran_code>/status")
        def status(tran_code: str) -> Any:
            with self._lock:
                tx = self.transactions.get(tran_code)
            if tx is None:
                return jsonify({"status_code": 404, "message": "TRANSACTION_NOT_FOUND"})
            tx.polls += 1
            data: dict[str, Any] = {"transaction_id": tx.transaction_id, "tran_code": tx.tran_code}
            if not self.vnpt_style:
                data["tran_status"] = tx.state
            if tx.state == "CONFIRMED":
                data["signatures"] = self._signatures(tx)
                return jsonify({"status_code": 200, "message": "SUCCESS", "data": data})
            if tx.state == "PENDING":
                return jsonify({"status_code": 200, "message": "sig_wait_for_user_confirm", "data": data})
            message = {"REJECTED": "USER_REJECTED", "EXPIRED": "TRANSACTION_EXPIRED"}[tx.state]
            return jsonify({"status_code": 200 if not self.vnpt_style else 400, "message": message, "data": data})

        return app

    def start(self, threaded: bool = True) -> NeacGateway:
        """Serve on a free loopback port; ``threaded=False`` answers in one thread
        (``self.thread``), whose CPU time a benchmark can subtract."""
        self._server = make_server("127.0.0.1", 0, self.app(), threaded=threaded)
        self.port = self._server.server_port
        self.thread = threading.Thread(target=self._server.serve_forever, name="neac-gateway", daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()


def _der(pem_path: Path) -> bytes:
    return x509.load_pem_x509_certificate(pem_path.read_bytes()).public_bytes(serialization.Encoding.DER)
