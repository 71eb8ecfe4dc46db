"""The national remote-signing interface (NEAC), as Vietnamese public CAs expose it.

What is followed, and where it comes from (the only published wire contract is the
"SP <-> CA" interface of Decision 769/QD-BTTTT (2022), as implemented by Methics'
laverca-neac-ca-client v1.2.0 and VNPT's "Tai lieu tich hop VNPT SmartCA" (sp769 gateway);
Circulars 15/2025 and 17/2025/TT-BKHCN publish requirements, not a JSON schema):

- every call is ``POST`` with a JSON body that carries ``sp_id`` and ``sp_password`` (the
  service provider's account at the CA); no header authentication;
- ``{url}/v1/credentials/get_certificate`` with ``user_id`` (the clinician's citizen id)
  and a ``transaction_id``: ``data.user_certificates[]`` (or ``data`` as a list, Methics)
  with ``cert_data`` (base64 DER), ``chain_data`` (``{ca_cert, root_cert}``, VNPT, or a list,
  Methics) and ``serial_number``;
- ``{url}/v1/signatures/sign`` with ``user_id``, ``transaction_id`` (unique), ``transaction_desc``
  (shown on the phone, VNPT), ``serial_number``, ``time_stamp`` (``YYYYMMDDHHMMSSZ``) and
  ``sign_files[]`` of ``{doc_id, data_to_be_signed, file_type, sign_type: "hash"}``: the
  ``doc_id`` is shown on the phone with the request, the data is the SHA-256 digest in
  lowercase hex; one transaction for all the documents (one confirmation). The answer is
  asynchronous (``data.tran_code``, VNPT) or synchronous (``data.signed_files[]``, allowed by
  the interface and Methics' client);
- ``{url}/v1/signatures/sign/{tran_code}/status``: ``message`` ``SUCCESS`` with
  ``data.signatures[]`` (``doc_id``, ``signature_value``) once confirmed. The published
  interface names no state for a pending, rejected or expired transaction beyond the
  ``status_code`` and ``message``: kyso reads ``data.tran_status`` (PENDING, CONFIRMED,
  REJECTED, EXPIRED, FAILED) where a gateway gives it, and otherwise the message.
- errors are ``status_code`` 400, 401 (provider account), 403 (certificate invalid,
  revoked or expired), 500, in the body or as the HTTP status.

``signature_value`` is taken as the raw signature (RSA PKCS#1 v1.5 or ECDSA) of the digest;
a CMS SignedData without signed attributes is unwrapped to its signature value.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from asn1crypto import cms, x509

from kyso.config import RemoteSigningConfig
from kyso.errors import ConfigError, RemoteSignerUnavailable
from kyso.keystore.base import Scheme
from kyso.sessions.remote.providers import (
    ProviderAnswer,
    RemoteProvider,
    SignatureRequest,
    SignerCertificate,
    State,
)

CONNECT_TIMEOUT_MAX = 5.0
_TRAN_STATES: dict[str, State] = {
    "PENDING": "pending",
    "WAITING": "pending",
    "CONFIRMED": "signed",
    "SUCCESS": "signed",
    "REJECTED": "rejected",
    "EXPIRED": "expired",
    "FAILED": "failed",
}


class NeacProvider(RemoteProvider):
    kind = "neac"

    def __init__(
        self,
        name: str,
        url: str,
        sp_id: str,
        sp_secret: Any,
        timeout: float = 10.0,
        poll_seconds: float = 2.0,
        poll_max_seconds: float = 30.0,
    ) -> None:
        super().__init__(name, poll_seconds, poll_max_seconds)
        self.url = url.rstrip("/")
        self.host = urlsplit(self.url).netloc or self.url
        self._sp_id = sp_id
        self._sp_secret = sp_secret  # a callable: the secret is read when a call needs it
        self.timeout = (min(timeout, CONNECT_TIMEOUT_MAX), timeout)
        self._http = requests.Session()

    @classmethod
    def from_config(
        cls, settings: RemoteSigningConfig, env: Mapping[str, str], owner: str
    ) -> NeacProvider:
        from kyso.keystore import read_secret

        if not settings.url or not settings.sp_id:
            raise ConfigError(f"{owner}: url and sp_id are required for a neac provider")
        if not (settings.sp_secret_env or settings.sp_secret_file):
            raise ConfigError(f"{owner}: sp_secret_env or sp_secret_file is required")

        def secret() -> str | None:
            return read_secret(
                settings.name, "sp secret", settings.sp_secret_env, settings.sp_secret_file, env, owner
            )

        secret()  # a missing variable or file is a configuration error at start
        return cls(
            settings.name,
            settings.url,
            settings.sp_id,
            secret,
            settings.timeout_seconds,
            settings.poll_seconds,
            settings.poll_max_seconds,
        )

    def schemes(self, key_type: str) -> tuple[Scheme, ...]:
        # The interface names no algorithm: the CA signs PKCS#1 v1.5 (RSA) or ECDSA.
        return ("pkcs1v15",) if key_type == "rsa" else ("ecdsa",)

    # -- the three calls -----------------------------------------------------

    def certificate(self, user_id: str) -> SignerCertificate:
        body = {
            "user_id": user_id,
            "serial_number": "",
            "transaction_id": f"kyso-cert-{secrets.token_hex(8)}",
        }
        answer = self._ok("get_certificate", self._post("v1/credentials/get_certificate", body))
        data = answer.get("data")
        entries = data.get("user_certificates") if isinstance(data, dict) else data
        if not isinstance(entries, list) or not entries:
            raise self._unavailable("get_certificate", "the provider holds no certificate for this user")
        read = [certificate_entry(e) for e in entries if isinstance(e, dict)]
        found = [f for f in read if f is not None]
        if not found:
            raise self._unavailable("get_certificate", "no readable certificate in the answer")
        now = datetime.now(UTC)
        current = [f for f in found if f.certificate.not_valid_before <= now <= f.certificate.not_valid_after]
        return (current or found)[0]  # an expired one is refused by kyso's own check, by name

    def request_signatures(self, request: SignatureRequest) -> ProviderAnswer:
        body = {
            "user_id": request.user_id,
            "transaction_id": request.transaction_id,
            "transaction_desc": request.description,
            "serial_number": request.credential or "",
            "time_stamp": datetime.now(UTC).strftime("%Y%m%d%H%M%SZ"),
            "sign_files": [
                {
                    "doc_id": doc.doc_id,
                    "data_to_be_signed": doc.digest.hex(),
                    "file_type": doc.kind,
                    "sign_type": "hash",
                }
                for doc in request.documents
            ],
        }
        answer = self._ok("sign", self._post("v1/signatures/sign", body))
        data = _data(answer)
        signatures = _signatures(data.get("signed_files") or data.get("signatures"))
        if signatures:
            return ProviderAnswer("signed", signatures, data.get("tran_code"), answer.get("message"))
        return ProviderAnswer(
            "pending", reference=data.get("tran_code") or request.transaction_id,
            message=answer.get("message"),
        )

    def status(self, transaction_id: str, reference: str | None) -> ProviderAnswer:
        tran = quote(reference or transaction_id, safe="")
        answer = self._post(f"v1/signatures/sign/{tran}/status", {"transaction_id": transaction_id})
        return status_answer(answer)

    # -- HTTP ----------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        method = path.rsplit("/", 1)[-1] if not path.endswith("/status") else "status"
        full = {"sp_id": self._sp_id, "sp_password": self._sp_secret(), **body}
        try:
            resp = self._http.post(f"{self.url}/{path}", json=full, timeout=self.timeout)
        except requests.Timeout:
            raise self._unavailable(method, f"no answer within {self.timeout[1]:g} s") from None
        except requests.RequestException as exc:
            raise self._unavailable(method, f"cannot connect ({type(exc).__name__})") from None
        try:
            answer = resp.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self._unavailable(method, f"HTTP {resp.status_code}, an answer that is not JSON")
        if resp.status_code >= 500:
            raise self._unavailable(method, f"HTTP {resp.status_code}{_words(answer)}")
        if resp.status_code >= 400 and "status_code" not in answer:
            answer["status_code"] = resp.status_code
        return answer

    def _ok(self, method: str, answer: dict[str, Any]) -> dict[str, Any]:
        code = answer.get("status_code", answer.get("code", 200))
        if code != 200:
            raise self._unavailable(method, f"status_code {code}{_words(answer)}")
        return answer

    def _unavailable(self, method: str, why: str) -> RemoteSignerUnavailable:
        return RemoteSignerUnavailable(
            f"remote signing provider {self.name!r} ({self.host}) failed {method}: {why}; "
            "nothing was signed"
        )

    def close(self) -> None:
        self._http.close()


def certificate_entry(entry: dict[str, Any]) -> SignerCertificate | None:
    try:
        cert = x509.Certificate.load(base64.b64decode(entry["cert_data"]))
        chain_data = entry.get("chain_data") or []
        if isinstance(chain_data, dict):  # VNPT: {"ca_cert", "root_cert"}
            chain_data = [chain_data.get("ca_cert"), chain_data.get("root_cert")]
        chain = tuple(x509.Certificate.load(base64.b64decode(c)) for c in chain_data if c)
        for c in (cert, *chain):
            c.not_valid_after  # noqa: B018 - parse now: asn1crypto parses lazily
    except (KeyError, TypeError, ValueError, binascii.Error):
        return None
    serial = entry.get("serial_number")
    return SignerCertificate(cert, chain, str(serial) if serial else None)


def _signatures(items: Any) -> tuple[tuple[str | None, bytes], ...]:
    if not isinstance(items, list):
        return ()
    found = []
    for item in items:
        if not isinstance(item, dict) or not item.get("signature_value"):
            return ()
        try:
            value = base64.b64decode(item["signature_value"], validate=True)
        except (TypeError, ValueError, binascii.Error):
            return ()
        doc_id = item.get("doc_id")
        found.append((str(doc_id) if doc_id is not None else None, unwrap_cms(value)))
    return tuple(found)


def status_answer(answer: dict[str, Any]) -> ProviderAnswer:
    """The state of a transaction from a status answer (see the module's notes)."""
    data = _data(answer)
    message = str(answer.get("message") or "")
    code = answer.get("status_code", answer.get("code", 200))
    signatures = _signatures(data.get("signatures") or data.get("signed_files"))
    state = _TRAN_STATES.get(str(data.get("tran_status") or "").upper())
    if state is None:
        words = message.lower()
        if code == 200 and signatures:
            state = "signed"
        elif any(w in words for w in ("reject", "refus", "cancel", "deni", "tu choi")):
            state = "rejected"
        elif any(w in words for w in ("expire", "timeout", "time out", "het han")):
            state = "expired"
        elif code == 200:
            state = "pending"
        else:
            state = "failed"
    if state == "signed" and not signatures:
        state = "failed"
        message = message or "confirmed, but the answer holds no signature"
    return ProviderAnswer(state, signatures, data.get("tran_code"), message[:200] or None)


def unwrap_cms(value: bytes) -> bytes:
    """The signature value of a CMS SignedData without signed attributes (some gateways wrap
    the raw signature so); any other value as it is."""
    if value[:1] != b"\x30":
        return value
    try:
        info = cms.ContentInfo.load(value)
        if info["content_type"].native != "signed_data":
            return value
        signer = info["content"]["signer_infos"][0]
        if signer["signed_attrs"].native:
            return value  # a signature over other bytes: it will not verify, and says so
        return bytes(signer["signature"].native)
    except (ValueError, TypeError, KeyError, IndexError):
        return value


def _data(answer: dict[str, Any]) -> dict[str, Any]:
    data = answer.get("data")
    return data if isinstance(data, dict) else {}


def _words(answer: dict[str, Any]) -> str:
    message = answer.get("message")
    return f": {str(message)[:200]}" if message else ""
