"""Two-step signing sessions (SPEC section 6): a clinician's own token signs what kyso prepared.

:func:`start_session` checks the clinician's certificate chain, prepares every document
(PDF placeholder and CMS signed attributes; JWS signing input; the canonical
``SignedInfo`` of an XML record's signature) and stores the session with
its ``session.start`` audit entry, in one transaction.

:func:`complete_session` checks EVERY returned signature against the certificate before
anything is embedded, finishes the documents (with the timestamp for ``B-T``), and then, in
ONE transaction: claims the session (``UPDATE ... WHERE used = false``; a second claim
finds no row and is ``session_used``), appends one ``sign.pdf``/``sign.json``/``sign.xml`` entry per
document with its record registry row, and a ``session.complete`` entry. Until that commit
nothing is written: an impostor signature, or a timestamp authority that fails, leaves the
session as it was, usable again until it expires. A completed session keeps no documents, and
a session is deleted a day after it expired (completing it is then ``not_found``).

:func:`finish_session` is that second half, shared with the sessions a remote signing
provider signs (:mod:`kyso.sessions.remote`), which kyso completes itself.

Audit entries of a session name it in ``key`` as ``session:<id>``; the signature entries
name the signer instead, by the RFC 4514 subject of the clinician's certificate, so that a
record's history shows who signed it. Their ``detail`` holds the session id and the
certificate's SHA-256.
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from asn1crypto import x509
from sqlalchemy import Connection

from kyso.audit.store import AppendedEntry, EntryDraft, register_signature
from kyso.db.reservations import Reservation, fulfil
from kyso.errors import (
    InvalidRequest,
    InvalidSignature,
    KysoError,
)
from kyso.keystore.base import Scheme
from kyso.service import Actor, Kyso, sha256_hex
from kyso.sessions.remote import store as remote_store
from kyso.sessions.state import (
    MAX_DOCUMENTS,
    SESSION_LEVELS,
    STATE_VERSION,
    CompletedSession,
    DocumentRequest,
    FinishedDocument,
    PreparedDocument,
    SessionRequest,
    StartedSession,
    b64,
    data_to_sign,
)
from kyso.sessions.store import claim, insert_session, open_session
from kyso.signer import external as twostep
from kyso.signer.algorithms import (
    ALGORITHMS,
    ECDSA,
    PKCS1V15,
    PSS,
    Algorithm,
    algorithm_for,
    check_signature,
)
from kyso.signer.archive_dates import async_extend_before
from kyso.signer.bounds import PdfBounds, releasing_cycles
from kyso.signer.external import PreparedPdf
from kyso.signer.xml import PreparedXml, SignedXml, XmlSignOptions, finish_xml, prepare_xml
from kyso.trust.policy import async_check_signer_path

# -- start -------------------------------------------------------------------


def start_session(
    kyso: Kyso, actor: Actor, request: SessionRequest, reservation: Reservation | None = None
) -> tuple[StartedSession, AppendedEntry]:
    """Check the chain, prepare every document (one event loop), store the session and its
    audit entry (with the fulfilment of ``reservation``, the caller's Idempotency-Key)."""
    check_session_request(kyso, request)
    kyso.check_may_add(actor, [d.record_id for d in request.documents])
    leaf = request.chain[0]

    async def checked_and_prepared() -> tuple[PreparedDocument, ...]:
        await async_check_signer_certificate(kyso, leaf, request.chain[1:])
        algorithm = algorithm_for(leaf, request.rsa_scheme or "pss")
        return await prepare_all(request, algorithm, kyso.pdf_bounds)

    with releasing_cycles():
        documents = asyncio.run(checked_and_prepared())
    session = StartedSession(
        secrets.token_urlsafe(24), time.time() + kyso.config.session_minutes * 60, documents
    )
    state = {
        "version": STATE_VERSION,
        "level": request.level,
        "chain": [b64(c.dump()) for c in request.chain],
        "documents": [d.state() for d in documents],
    }

    draft = EntryDraft(
        action="session.start",
        actor=actor.name,
        key=f"session:{session.id}",
        detail={
            "session": session.id,
            "level": request.level,
            "signer": twostep.signer_label(leaf),
            "signer_sha256": sha256_hex(leaf.dump()),
            "documents": [
                {"record_id": d.record_id, "document_sha256": d.document_sha256} for d in documents
            ],
        },
    )

    def write(conn: Connection, appended: AppendedEntry) -> None:
        insert_session(conn, session.id, actor.name, session.expires_at, state)
        if reservation is not None:
            fulfil(conn, reservation, appended.seq)

    return session, kyso.audit.append(draft, write)


def check_session_request(kyso: Kyso, request: SessionRequest) -> None:
    """Refuse a level or a number of documents a session does not offer."""
    if request.level not in SESSION_LEVELS:
        raise InvalidRequest(
            f"level must be B-B or B-T for a signing session, not {request.level!r}; B-LT and B-LTA "
            "are not offered for two-step signing yet (extend the signed PDF afterwards)"
        )
    if request.level == "B-T" and kyso.timestamper is None:
        raise InvalidRequest("B-T needs a timestamp authority; none is configured")
    if not 1 <= len(request.documents) <= MAX_DOCUMENTS:
        raise InvalidRequest(f"a session holds 1 to {MAX_DOCUMENTS} documents")


async def async_check_signer_certificate(
    kyso: Kyso, leaf: x509.Certificate, issuers: Sequence[x509.Certificate]
) -> None:
    """Refuse a certificate that may not sign now (:func:`kyso.trust.policy.check_signer_path`:
    validity, key usage, key size, a path to a configured trust anchor), or that is revoked:
    the service's own revocation check (the dev PKI's CRLs, or the certificate's CRL and OCSP
    addresses)."""
    await async_check_signer_path(leaf, issuers, kyso.trust)
    # CertificateRevoked (RevocationUnavailable under "require")
    await kyso.async_check_not_revoked(leaf, issuers)


async def prepare_all(
    request: SessionRequest, algorithm: Algorithm, bounds: PdfBounds
) -> tuple[PreparedDocument, ...]:
    """Prepare every document for the signer of ``request.chain``; a document that cannot be
    prepared is refused with its index."""
    leaf, issuers = request.chain[0], request.chain[1:]
    preparation = twostep.PdfPreparation(leaf, issuers, algorithm, request.level)
    prepared = []
    for index, doc in enumerate(request.documents):
        try:
            prepared.append(await _prepare_one(doc, preparation, algorithm, request, bounds))
        except KysoError as exc:
            raise type(exc)(f"documents[{index}]: {exc.detail}") from None
    return tuple(prepared)


async def _prepare_one(
    doc: DocumentRequest,
    preparation: twostep.PdfPreparation,
    algorithm: Algorithm,
    request: SessionRequest,
    bounds: PdfBounds,
) -> PreparedDocument:
    leaf, issuers = request.chain[0], request.chain[1:]
    if doc.kind == "pdf":
        pdf = await twostep.prepare_pdf(
            doc.pdf,
            leaf,
            issuers,
            algorithm,
            request.level,
            request.reason,
            request.location,
            bounds,
            preparation,
        )
        return PreparedDocument(
            doc.record_id,
            "pdf",
            sha256_hex(doc.pdf),
            algorithm.name,
            pdf.signed_attrs,
            pdf.to_state(),
        )
    if doc.kind == "xml":
        return _prepare_xml(doc, leaf, issuers, algorithm, request.level)
    jws = twostep.prepare_json(doc.payload, leaf, issuers, twostep.signer_kid(leaf), algorithm)
    state = twostep.prepared_jws_state(jws)
    return PreparedDocument(
        doc.record_id, "json", jws.payload_sha256, algorithm.name, jws.signing_input, state
    )


def _prepare_xml(
    doc: DocumentRequest,
    leaf: x509.Certificate,
    issuers: Sequence[x509.Certificate],
    algorithm: Algorithm,
    level: str,
) -> PreparedDocument:
    """The XML record with its signature in place; the bhyt profile signs RSA with PKCS#1
    v1.5 whatever the session asks (the document's own ``algorithm`` says so)."""
    rsa_scheme: Scheme = "pss" if algorithm is PSS else "pkcs1v15"
    options = XmlSignOptions(level=level, profile=doc.profile, rsa_scheme=rsa_scheme)
    prepared = prepare_xml(doc.xml, leaf, issuers, options)
    used = {"pkcs1v15": PKCS1V15, "pss": PSS, "ecdsa": ECDSA}[prepared.scheme]
    return PreparedDocument(
        doc.record_id, "xml", prepared.document_sha256, used.name, prepared.data_to_sign, prepared.to_state()
    )


# -- complete ----------------------------------------------------------------


def complete_session(
    kyso: Kyso,
    actor: Actor,
    session_id: str,
    signatures: Sequence[bytes],
    reservation: Reservation | None = None,
) -> tuple[CompletedSession, list[AppendedEntry]]:
    """Check every signature, finish every document, and record them all at once (with
    the fulfilment of ``reservation``, the caller's Idempotency-Key, if given)."""
    row = open_session(kyso.db, actor.name, session_id)
    state = json.loads(bytes(row.state))
    if "remote" in state:
        raise InvalidRequest(
            "this session is signed through a remote signing provider and kyso completes it "
            f"itself; read its status with GET /api/v1/signing-sessions/{session_id}"
        )
    return finish_session(kyso, actor, session_id, state, signatures, reservation)


def finish_session(
    kyso: Kyso,
    actor: Actor,
    session_id: str,
    state: dict[str, Any],
    signatures: Sequence[bytes],
    reservation: Reservation | None = None,
    detail: dict[str, Any] | None = None,
    conclude_remote: bool = False,
) -> tuple[CompletedSession, list[AppendedEntry]]:
    """Check every signature against the session's certificate, finish every document and
    append its entries with the ``session.complete`` one (``detail`` added to it), claiming
    the session in the same transaction: nothing is written unless everything succeeded.
    ``reservation`` (an HTTP caller's Idempotency-Key) is fulfilled, and with
    ``conclude_remote`` a remote session's transaction is concluded with its answer, in
    that transaction too."""
    docs = state["documents"]
    if len(signatures) != len(docs):
        raise InvalidRequest(
            f"the session has {len(docs)} document(s); send exactly one signature for each, in order"
        )
    chain = [x509.Certificate.load(base64.b64decode(c)) for c in state["chain"]]
    leaf, issuers = chain[0], chain[1:]
    checked = [
        _check_one(leaf, doc, sig, index)
        for index, (doc, sig) in enumerate(zip(docs, signatures, strict=True))
    ]
    level = state["level"]
    timestamper = kyso.timestamper if level == "B-T" else None

    async def finished_and_dated() -> tuple[tuple[FinishedDocument, ...], list[datetime | None]]:
        finished = await _finish_all(docs, checked, leaf, issuers, timestamper)
        deadlines = [
            await async_extend_before(doc.output.pdf, kyso.trust)
            if isinstance(doc.output, twostep.SignedPdf)
            else None
            for doc in finished
        ]
        return finished, deadlines

    with releasing_cycles():
        finished, deadlines = asyncio.run(finished_and_dated())
    completed = CompletedSession(session_id, finished)
    drafts = [_sign_draft(actor, session_id, leaf, level, doc) for doc in finished]
    drafts.append(
        EntryDraft(
            action="session.complete",
            actor=actor.name,
            key=f"session:{session_id}",
            detail={"session": session_id, "documents": len(finished), **(detail or {})},
        )
    )

    def write(conn: Connection, appended: list[AppendedEntry]) -> None:
        kyso.check_may_add(actor, [doc.record_id for doc in finished], conn)
        claim(conn, session_id)
        for entry, doc, deadline in zip(appended, finished, deadlines, strict=False):
            register_signature(conn, entry, doc.kind, level, deadline)
        if reservation is not None:
            fulfil(conn, reservation, appended[-1].seq)
        if conclude_remote:  # a remote session's answer, kept for GET .../<id>
            answers = [doc.answer(entry) for doc, entry in zip(finished, appended, strict=False)]
            remote_store.conclude(conn, session_id, "completed", {"documents": answers})

    return completed, kyso.audit.append_many(drafts, write)


def _check_one(leaf: x509.Certificate, doc: dict[str, Any], signature: bytes, index: int) -> bytes:
    algorithm = ALGORITHMS[doc["algorithm"]]
    try:
        return check_signature(leaf, data_to_sign(doc), signature, algorithm)
    except InvalidSignature as exc:
        raise InvalidSignature(
            f"documents[{index}] (record {doc['record_id']!r}): {exc.detail}"
        ) from None


async def _finish_all(
    docs: list[dict[str, Any]],
    signatures: list[bytes],
    leaf: x509.Certificate,
    issuers: Sequence[x509.Certificate],
    timestamper: Any,
) -> tuple[FinishedDocument, ...]:
    finished = []
    for doc, signature in zip(docs, signatures, strict=True):
        algorithm = ALGORITHMS[doc["algorithm"]]
        output: twostep.SignedPdf | twostep.SignedJson | SignedXml
        if doc["kind"] == "xml":
            level = "B-T" if timestamper is not None else "B-B"
            prepared_xml = PreparedXml.from_state(doc["prepared"], leaf)
            output = await asyncio.to_thread(finish_xml, prepared_xml, signature, level, timestamper)
        elif doc["kind"] == "pdf":
            prepared = PreparedPdf.from_state(doc["prepared"])
            output = await twostep.finish_pdf(
                prepared, signature, leaf, issuers, algorithm, timestamper
            )
        else:
            prepared_jws = twostep.prepared_jws_from_state(doc["prepared"])
            output = await asyncio.to_thread(
                twostep.finish_json, prepared_jws, signature, timestamper
            )
        finished.append(
            FinishedDocument(doc["record_id"], doc["kind"], doc["document_sha256"], output)
        )
    return tuple(finished)


def _sign_draft(
    actor: Actor, session_id: str, leaf: x509.Certificate, level: str, doc: FinishedDocument
) -> EntryDraft:
    detail: dict[str, Any] = {
        "level": level,
        "session": session_id,
        "signer_sha256": sha256_hex(leaf.dump()),
    }
    if isinstance(doc.output, twostep.SignedPdf):
        detail["field"] = doc.output.field
    if isinstance(doc.output, SignedXml):
        detail["profile"] = doc.output.profile
    return EntryDraft(
        action=f"sign.{doc.kind}",
        actor=actor.name,
        key=twostep.signer_label(leaf),
        record_id=doc.record_id,
        document_sha256=doc.document_sha256,
        signature_sha256=doc.signature_sha256,
        detail=detail,
    )
