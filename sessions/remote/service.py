"""Signing sessions whose clinician signs remotely: start one, and read where it stands.

:func:`start_remote_session` fetches the clinician's certificate from the provider and checks
it (validity, key usage, path, revocation) before anything else, prepares every document as
a two-step session does (:mod:`kyso.signer.external`), asks the provider for all the
signatures in one transaction, and stores the session with its transaction and its
``session.start`` entry in one database transaction. The session is then ``pending`` until
:func:`kyso.sessions.remote.progress.advance` (the poller, or a status read) finishes it.

A provider that cannot be reached or refuses is ``503 remote_signer_unavailable``; a signature
it returns at once that does not verify with the clinician's certificate is
``invalid_signature``: either way nothing is stored or signed, and the failure's audit entry
names the provider and the transaction id (never the user id, which is the clinician's
citizen id, nor any content).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509
from sqlalchemy import Connection

from kyso.audit.store import AppendedEntry, EntryDraft
from kyso.db.reservations import Reservation, fulfil
from kyso.errors import InvalidRequest, InvalidSignature, KysoError, RemoteSignerUnavailable
from kyso.service import Actor, Kyso, sha256_hex
from kyso.sessions.remote import store as remote_store
from kyso.sessions.remote.providers import HashToSign, ProviderAnswer, SignatureRequest
from kyso.sessions.service import async_check_signer_certificate, check_session_request, prepare_all
from kyso.sessions.state import (
    STATE_VERSION,
    DocumentRequest,
    PreparedDocument,
    SessionRequest,
    b64,
)
from kyso.sessions.store import find_session, insert_session
from kyso.signer import external as twostep
from kyso.signer.algorithms import ALGORITHMS, Algorithm, algorithm_for, check_signature

MAX_NAME = 200  # characters of a document name or description sent to the provider


@dataclass(frozen=True)
class RemoteStarted:
    id: str
    expires_at: float
    provider: str
    transaction_id: str
    documents: tuple[PreparedDocument, ...]
    names: tuple[str, ...]

    def answer(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": "pending",
            "expires_at": _iso(self.expires_at),
            "provider": self.provider,
            "transaction_id": self.transaction_id,
            "documents": [
                {
                    "record_id": d.record_id,
                    "name": name,
                    "digest": b64(hashlib.sha256(d.data_to_sign).digest()),
                    "algorithm": d.algorithm,
                }
                for d, name in zip(self.documents, self.names, strict=True)
            ],
        }


@dataclass(frozen=True)
class SessionStatus:
    """What ``GET /api/v1/signing-sessions/<id>`` answers."""

    id: str
    status: str  # pending | completed | rejected | expired | failed
    expires_at: float
    provider: str | None = None
    transaction_id: str | None = None
    documents: list[dict[str, Any]] | None = None  # once completed remotely
    error: dict[str, Any] | None = None  # rejected, expired, failed: code and detail

    def answer(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": self.id, "status": self.status, "expires_at": _iso(self.expires_at)}
        if self.provider is not None:
            body["provider"] = self.provider
            body["transaction_id"] = self.transaction_id
        if self.documents is not None:
            body["documents"] = self.documents
        if self.error is not None:
            body["error"] = self.error
        return body


# -- start -------------------------------------------------------------------


def start_remote_session(
    kyso: Kyso, actor: Actor, request: SessionRequest, reservation: Reservation | None = None
) -> tuple[RemoteStarted, AppendedEntry]:
    """Check the clinician's certificate, prepare the documents (one event loop), ask the
    provider, store (with the fulfilment of ``reservation``, the caller's Idempotency-Key)."""
    assert request.signer is not None
    check_session_request(kyso, request)
    kyso.check_may_add(actor, [d.record_id for d in request.documents])
    provider = kyso.remote_providers.get(request.signer.provider)
    session_id = secrets.token_urlsafe(24)
    transaction_id = f"kyso-{uuid.uuid4().hex}"

    def failed(error: KysoError) -> KysoError:
        return record_failure(kyso, actor.name, "session.start", error, session_id, provider.name, transaction_id)

    try:
        signer = provider.certificate(request.signer.user_id)
    except RemoteSignerUnavailable as exc:
        raise failed(exc) from None
    leaf, issuers = signer.certificate, signer.chain

    async def checked_and_prepared() -> tuple[Algorithm, tuple[PreparedDocument, ...]]:
        await async_check_signer_certificate(kyso, leaf, issuers)  # 422 before anything is asked
        offered = provider.schemes(leaf.public_key.algorithm)
        # Unasked, RSA signs RSASSA-PSS where the provider makes it, else as the provider signs.
        default = "pss" if "pss" in offered else "pkcs1v15"
        algorithm = algorithm_for(leaf, request.rsa_scheme or default)
        if algorithm.scheme not in offered:
            raise InvalidRequest(
                f"remote signing provider {provider.name!r} does not make {algorithm.name} signatures"
            )
        chain = (leaf, *issuers)
        return algorithm, await prepare_all(replace(request, chain=chain), algorithm, kyso.pdf_bounds)

    algorithm, documents = asyncio.run(checked_and_prepared())
    names = document_names(request.documents)
    description = (request.description or _default_description(len(documents)))[:MAX_NAME]
    asked = SignatureRequest(
        transaction_id=transaction_id,
        user_id=request.signer.user_id,
        credential=signer.credential,
        description=description,
        scheme=algorithm.scheme,
        documents=tuple(
            HashToSign(name, hashlib.sha256(d.data_to_sign).digest(), d.kind)
            for d, name in zip(documents, names, strict=True)
        ),
    )
    try:
        answer = provider.request_signatures(asked)
        signatures = _checked_now(answer, documents, names, leaf)
    except (RemoteSignerUnavailable, InvalidSignature) as exc:
        raise failed(exc) from None
    now = time.time()
    session = RemoteStarted(
        session_id, now + kyso.config.session_minutes * 60, provider.name, transaction_id, documents, names
    )
    state = {
        "version": STATE_VERSION,
        "level": request.level,
        "chain": [b64(c.dump()) for c in (leaf, *issuers)],
        "documents": [d.state() | {"name": n} for d, n in zip(documents, names, strict=True)],
        "remote": {"provider": provider.name, "transaction_id": transaction_id},
    }

    draft = EntryDraft(
        action="session.start",
        actor=actor.name,
        key=f"session:{session_id}",
        detail={
            "session": session_id,
            "level": request.level,
            "signer": twostep.signer_label(leaf),
            "signer_sha256": sha256_hex(leaf.dump()),
            "provider": provider.name,
            "transaction_id": transaction_id,
            "documents": [
                {"record_id": d.record_id, "document_sha256": d.document_sha256} for d in documents
            ],
        },
    )
    first_poll = now if signatures else min(now + provider.poll_seconds, session.expires_at)

    def write(conn: Connection, appended: AppendedEntry) -> None:
        insert_session(conn, session_id, actor.name, session.expires_at, state)
        remote_store.insert_transaction(
            conn, session_id, provider.name, transaction_id, answer.reference, signatures, first_poll
        )
        if reservation is not None:
            fulfil(conn, reservation, appended.seq)

    return session, kyso.audit.append(draft, write)


def _checked_now(
    answer: ProviderAnswer,
    documents: Sequence[PreparedDocument],
    names: Sequence[str],
    leaf: x509.Certificate,
) -> list[bytes]:
    """Signatures the provider returned at once (in document order), each checked; none
    for a pending transaction."""
    if answer.state == "pending":
        return []
    if answer.state != "signed":
        raise RemoteSignerUnavailable(
            f"the provider answered the signature request with {answer.state!r}"
            + (f" ({answer.message})" if answer.message else "")
        )
    signatures = in_document_order(answer, names)
    for index, (doc, signature) in enumerate(zip(documents, signatures, strict=True)):
        try:
            check_signature(leaf, doc.data_to_sign, signature, ALGORITHMS[doc.algorithm])
        except InvalidSignature:
            raise InvalidSignature(
                f"documents[{index}]: the signature the provider returned does not verify with "
                "the clinician's certificate; nothing was signed"
            ) from None
    return signatures


def in_document_order(answer: ProviderAnswer, names: Sequence[str]) -> list[bytes]:
    """The provider's signatures in document order: by the doc ids it echoed, else as given."""
    given = answer.signatures
    if len(given) != len(names):
        raise InvalidSignature(
            f"the provider returned {len(given)} signature(s) for {len(names)} document(s)"
        )
    if all(doc_id is not None for doc_id, _ in given):
        by_id = {doc_id: value for doc_id, value in given}
        if set(by_id) != set(names):
            raise InvalidSignature("the provider returned signatures for other documents")
        return [by_id[name] for name in names]
    return [value for _, value in given]


def document_names(documents: Sequence[DocumentRequest]) -> tuple[str, ...]:
    """What the clinician sees for each document: its name, else its record id; made
    unique (the provider gives the signatures back by them)."""
    names: list[str] = []
    for index, doc in enumerate(documents):
        name = (doc.name or doc.record_id or f"document {index + 1}")[:MAX_NAME]
        names.append(name if name not in names else f"{name} ({index + 1})")
    return tuple(names)


def _default_description(count: int) -> str:
    return f"Ký {count} hồ sơ bệnh án / Sign {count} medical record(s)"


def record_failure(
    kyso: Kyso,
    actor: str | None,
    action: str,
    error: KysoError,
    session_id: str,
    provider: str,
    transaction_id: str,
) -> KysoError:
    """The audit entry of a remote session's failure, with the provider and the transaction;
    the error is marked as audited (the HTTP layer writes no second entry)."""
    kyso.audit.append(
        EntryDraft(
            action=action,
            actor=actor,
            outcome="error",
            key=f"session:{session_id}",
            detail={
                "code": error.code,
                "status": error.status,
                "session": session_id,
                "provider": provider,
                "transaction_id": transaction_id,
            },
        )
    )
    error.audited = True
    return error


# -- status ------------------------------------------------------------------


def session_status(kyso: Kyso, actor: Actor, session_id: str) -> SessionStatus:
    """Where a session stands; a remote one whose time to ask has come is advanced first
    (the provider asked, or the answered documents finished), as the poller would."""
    from kyso.sessions.remote.progress import advance

    row = find_session(kyso.db, actor.name, session_id)
    transaction = remote_store.read(kyso.db, session_id)
    if transaction is None:
        status = "completed" if row.used else "expired" if row.expires_at < time.time() else "pending"
        return SessionStatus(session_id, status, row.expires_at)
    if transaction.status in remote_store.OPEN and transaction.next_poll_at <= time.time():
        advance(kyso, session_id)
        transaction = remote_store.read(kyso.db, session_id) or transaction
    status = "pending" if transaction.status in remote_store.OPEN else transaction.status
    result = transaction.result or {}
    return SessionStatus(
        session_id,
        status,
        transaction.expires_at,
        transaction.provider,
        transaction.transaction_id,
        documents=result.get("documents"),
        error=result.get("error"),
    )


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
