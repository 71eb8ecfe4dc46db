"""The typed state of a two-step signing session: what the HIS asked, what was prepared,
what is kept between the two steps, and what was finished."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from asn1crypto import x509

from kyso.audit.store import AppendedEntry
from kyso.signer import external as twostep
from kyso.signer.xml import SignedXml

SESSION_LEVELS = ("B-B", "B-T")
MAX_DOCUMENTS = 100
STATE_VERSION = 1
# A session expired this long ago is deleted (its completion is then 404, not 409).
FORGET_AFTER_SECONDS = 24 * 3600


@dataclass(frozen=True)
class DocumentRequest:
    """One record to sign: a PDF (``pdf`` bytes), a JSON value (``payload``) or an XML
    record (``xml`` bytes, in ``profile`` ``bhyt`` or ``xades``, or as its content says)."""

    record_id: str | None
    kind: Literal["pdf", "json", "xml"]
    pdf: bytes = b""
    payload: Any = None
    xml: bytes = b""
    profile: str | None = None
    name: str | None = None  # what a remote signer's clinician sees on the phone


@dataclass(frozen=True)
class RemoteSignerRequest:
    """A clinician who signs through a remote signing provider (``[[remote_signing]]``)."""

    provider: str
    user_id: str  # the clinician's id at the provider (citizen id): sent to it, never logged


@dataclass(frozen=True)
class SessionRequest:
    chain: tuple[x509.Certificate, ...]  # the clinician's certificate first, then its issuers
    documents: tuple[DocumentRequest, ...]
    level: str = "B-T"
    reason: str | None = None
    location: str | None = None
    # None: RSASSA-PSS (Circular 15/2025), or for a remote signer what its provider makes
    rsa_scheme: str | None = None
    signer: RemoteSignerRequest | None = None  # instead of ``chain``
    description: str | None = None  # a remote signer's transaction, as the clinician sees it


@dataclass(frozen=True)
class PreparedDocument:
    """A document waiting for its signature, as stored in the session's state."""

    record_id: str | None
    kind: str
    document_sha256: str  # of the record as received (for JSON: its JCS bytes)
    algorithm: str
    data_to_sign: bytes
    prepared: dict[str, Any]  # PreparedPdf / PreparedJws / PreparedXml state

    def state(self) -> dict[str, Any]:
        """What the session keeps (the data to sign is derived again from ``prepared``)."""
        keep = ("record_id", "kind", "document_sha256", "algorithm", "prepared")
        return {name: getattr(self, name) for name in keep}

    def answer(self) -> dict[str, Any]:
        return {
            "record_id": self.record_id,
            "data_to_sign": b64(self.data_to_sign),
            "digest": b64(hashlib.sha256(self.data_to_sign).digest()),
            "algorithm": self.algorithm,
        }


@dataclass(frozen=True)
class StartedSession:
    id: str
    expires_at: float  # epoch seconds
    documents: tuple[PreparedDocument, ...]

    def answer(self) -> dict[str, Any]:
        expires = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "id": self.id,
            "expires_at": expires,
            "documents": [d.answer() for d in self.documents],
        }


@dataclass(frozen=True)
class FinishedDocument:
    record_id: str | None
    kind: str
    document_sha256: str
    output: twostep.SignedPdf | twostep.SignedJson | SignedXml

    @property
    def signature_sha256(self) -> str:
        return (
            self.output.sha256
            if isinstance(self.output, (twostep.SignedPdf, SignedXml))
            else self.output.signature_sha256
        )

    def answer(self, entry: AppendedEntry) -> dict[str, Any]:
        answer: dict[str, Any] = {"record_id": self.record_id, "audit_seq": entry.seq}
        if isinstance(self.output, twostep.SignedPdf):
            answer["pdf"] = b64(self.output.pdf)
        elif isinstance(self.output, SignedXml):
            answer["xml"] = b64(self.output.xml)
        else:
            answer["signature"] = self.output.jws
        return answer


@dataclass(frozen=True)
class CompletedSession:
    id: str
    documents: tuple[FinishedDocument, ...]


def data_to_sign(doc: dict[str, Any]) -> bytes:
    prepared = doc["prepared"]
    if doc["kind"] == "pdf":
        return base64.b64decode(prepared["signed_attrs"])
    if doc["kind"] == "xml":
        return base64.b64decode(prepared["signed_info"])  # the canonical SignedInfo
    return f"{prepared['protected']}.{prepared['payload']}".encode("ascii")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
