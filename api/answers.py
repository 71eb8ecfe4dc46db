"""Response models of the HTTP API (pydantic): the shapes SPEC sections 3 to 7 give.

They describe what the views answer; :mod:`kyso.api.openapi` publishes them, and
``tests/api/test_answers.py`` checks real answers against them (schemathesis checks the
answers it provokes too). Members are exact (``extra="forbid"``): a member added to an
answer must be added here, and so to the document.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from kyso.api.models import Hex64, Jws

Indication = Literal["TOTAL_PASSED", "INDETERMINATE", "TOTAL_FAILED"]
Level = Literal["B-B", "B-T", "B-LT", "B-LTA"]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SignJsonAnswer(Answer):
    signature: Jws
    payload_sha256: Hex64
    audit_seq: int


class Registration(Answer):
    audit_seq: int
    record_id: str | None


class Signer(Answer):
    subject: str
    issuer: str
    serial: str
    sha256: Hex64


class Timestamp(Answer):
    time: str | None
    tsa: str
    valid: bool


class SignatureVerdict(Answer):
    id: str
    field: str | None
    indication: Indication
    sub_indication: str | None
    intact: bool
    trusted: bool
    signer: Signer | None
    signing_time: str | None
    timestamp: Timestamp | None
    level: Level
    coverage: Literal["ENTIRE_FILE", "ENTIRE_REVISION", "PARTIAL"] | None
    modifications: Literal["NONE", "FORM_FILLING", "ANNOTATIONS", "OTHER"] | None
    revocation: Literal["good", "revoked", "unknown"]
    registered: Registration | None
    chain: list[str] = Field(description="Subjects, the signer first, up to the trust anchor")
    message: str | None = Field(None, description="Why it did not pass, in English")
    explanation: dict[str, JsonValue] | None = Field(
        None, description="In the language of Accept-Language: verdict, signer, time, changes, trust, ..."
    )


class ValidationReport(Answer):
    """SPEC section 5."""

    indication: Indication
    document_sha256: Hex64
    signatures: list[SignatureVerdict]
    explanation: dict[str, JsonValue] | None = Field(
        None, description="lang, verdict, summary, labels, in the language of Accept-Language"
    )


class DocumentToSign(Answer):
    record_id: str | None
    data_to_sign: str = Field(description="Base64: CMS signed attributes (PDF) or JWS signing input")
    digest: str = Field(description="Base64 SHA-256 of data_to_sign")
    algorithm: str


class SessionStarted(Answer):
    id: str
    expires_at: str
    documents: list[DocumentToSign]


class RemoteDocument(Answer):
    record_id: str | None
    name: str
    digest: str = Field(description="Base64 SHA-256 of what the clinician signs")
    algorithm: str


class RemoteSessionStarted(Answer):
    """A session signed through a remote provider: pending until the clinician confirms."""

    id: str
    status: Literal["pending"]
    expires_at: str
    provider: str
    transaction_id: str
    documents: list[RemoteDocument]


class SignedPdfDocument(Answer):
    record_id: str | None
    audit_seq: int
    pdf: str = Field(description="The signed PDF, base64")


class SignedJsonDocument(Answer):
    record_id: str | None
    audit_seq: int
    signature: Jws


class SignedXmlDocument(Answer):
    record_id: str | None
    audit_seq: int
    xml: str = Field(description="The signed XML record, base64")


class SessionCompleted(Answer):
    documents: list[SignedPdfDocument | SignedJsonDocument | SignedXmlDocument]


class SessionStatus(Answer):
    id: str
    status: Literal["pending", "completed", "rejected", "expired", "failed"]
    expires_at: str
    provider: str | None = None
    transaction_id: str | None = None
    documents: list[SignedPdfDocument | SignedJsonDocument | SignedXmlDocument] | None = None
    error: dict[str, JsonValue] | None = None


class KeyDescription(Answer):
    alias: str
    kind: Literal["software", "pkcs11", "csc"]
    algorithm: str | None = None
    jws_alg: str | None = None
    subject: str | None = None
    not_after: str | None = None
    chain: list[str] | None = Field(None, description="PEM, leaf first, up to the trust anchor")
    health: str | None = Field(None, description="Why a token's key cannot be described now")


class Keys(Answer):
    keys: list[KeyDescription]


class RecordSignature(Answer):
    audit_seq: int
    time: str
    key: str | None
    level: Level
    document_sha256: Hex64
    signature_sha256: Hex64
    extend_before: str | None


class RecordSignatures(Answer):
    record_id: str
    signatures: list[RecordSignature]


class DueRecord(Answer):
    record_id: str
    audit_seq: int
    level: Level
    signature_sha256: Hex64
    extend_before: str


class RecordsDue(Answer):
    extend_before: str
    records: list[DueRecord]


class ListedRecord(Answer):
    """A record by its newest signature."""

    record_id: str
    audit_seq: int
    time: str
    key: str | None
    level: Level
    signature_sha256: Hex64
    extend_before: str | None


class RecordList(Answer):
    records: list[ListedRecord]
    next: str | None = Field(description="The cursor of the next page; null on the last")


class AuditEntry(Answer):
    """The hashed entry object (SPEC section 7)."""

    seq: int
    time: str
    actor: str | None
    action: str
    key: str | None
    record_id: str | None
    document_sha256: str | None
    signature_sha256: str | None
    outcome: Literal["ok", "denied", "error"]
    detail: dict[str, JsonValue]
    prev_hash: Hex64


class AuditEntries(Answer):
    entries: list[AuditEntry]
    next: int | None


class InclusionProof(Answer):
    leaf_index: int
    tree_size: int
    root_hash: Hex64
    hashes: list[Hex64]


class ConsistencyProof(Answer):
    first: int
    second: int
    first_root: Hex64
    second_root: Hex64
    hashes: list[Hex64]


class Checkpoint(Answer):
    origin: str
    tree_size: int
    root_hash: Hex64
    chain_head: Hex64
    time: str
    body: str
    signature: str
    certificate: str
    timestamp_token: str


class CurrentCheckpoint(Checkpoint):
    """``GET /api/v1/audit/checkpoint``: a stored checkpoint, and how it stands to the log."""

    log_size: int = Field(description="The log's size when asked")
    behind: int = Field(description="Entries of the log the checkpoint does not cover (0: current)")


class Health(Answer):
    status: Literal["ok"]


class Readiness(Answer):
    status: Literal["ok", "failing"]
    checks: dict[str, str]
    failing: list[str]


class ProblemError(Answer):
    pointer: str
    detail: str


class Problem(Answer):
    """RFC 9457 problem details, with kyso's stable ``code``."""

    type: str
    title: str
    status: int
    detail: str
    code: str
    errors: list[ProblemError] | None = Field(None, description="What the request schema refused")
    retry_after: int | None = None


def check(model: type[Answer], body: Any) -> Answer:
    """``body`` validated against ``model`` (a test's assertion that an answer has its shape)."""
    return model.model_validate(body)
