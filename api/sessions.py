"""POST /api/v1/signing-sessions, /signing-sessions/<id>/complete and
GET /signing-sessions/<id> (SPEC sections 6 and 10).

This module only reads requests and writes answers; :mod:`kyso.sessions.service` does the work.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from asn1crypto import pem, x509
from flask import Blueprint, Response, current_app

from kyso.api import fields, idempotency
from kyso.api.auth import endpoint
from kyso.api.context import RequestContext
from kyso.api.models import SessionCompleteRequest, SessionStartRequest, parse_body
from kyso.api.sign import json_body
from kyso.errors import InvalidRequest, NotFound
from kyso.sessions.remote.service import RemoteStarted, session_status, start_remote_session
from kyso.sessions.service import complete_session, start_session
from kyso.sessions.state import (
    CompletedSession,
    DocumentRequest,
    RemoteSignerRequest,
    SessionRequest,
    StartedSession,
)

bp = Blueprint("sessions", __name__)

_LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")  # B-LT and B-LTA are refused with a reason later


def _kyso():
    return current_app.extensions["kyso"]


def _json_response(body: dict[str, Any], status: int, audit_seq: int) -> Response:
    resp = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    resp.headers["Kyso-Audit-Seq"] = str(audit_seq)
    return resp


# -- start -------------------------------------------------------------------


def _started(appended: Any, session: StartedSession | RemoteStarted) -> Response:
    return _json_response(session.answer(), 201, appended.seq)


@bp.post("/signing-sessions")
@endpoint("session.start", "his")
def start(ctx: RequestContext) -> Response:
    body = json_body()
    parse_body(SessionStartRequest, body)  # shapes; certificates and documents are read below
    request = parse_session_request(body)
    if request.signer is not None:  # the clinician signs on the phone: kyso completes it
        return idempotency.run(
            ctx, lambda reservation: start_remote_session(_kyso(), ctx.actor, request, reservation), _started
        )
    return idempotency.run(
        ctx, lambda reservation: start_session(_kyso(), ctx.actor, request, reservation), _started
    )


def parse_session_request(body: dict[str, Any]) -> SessionRequest:
    """The session request in ``body``; every bad member is a 400 that names it."""
    if ("signer" in body) == ("certificate_chain" in body):
        raise InvalidRequest(
            "send exactly one of 'certificate_chain' (the clinician's token signs) and "
            "'signer' ({provider, user_id}: the clinician signs through a remote provider)"
        )
    signer = _parse_signer(body["signer"]) if "signer" in body else None
    return SessionRequest(
        chain=_parse_chain(body["certificate_chain"]) if signer is None else (),
        documents=_parse_documents(body.get("documents")),
        level=fields.choice(body.get("level", "B-T"), "level", _LEVELS),
        reason=fields.text(body.get("reason"), "reason"),
        location=fields.text(body.get("location"), "location"),
        rsa_scheme=(
            fields.choice(body["rsa_scheme"], "rsa_scheme", ("pkcs1v15", "pss"))
            if "rsa_scheme" in body
            else None
        ),
        signer=signer,
        description=fields.text(body.get("description"), "description"),
    )


def _parse_signer(value: Any) -> RemoteSignerRequest:
    if (
        not isinstance(value, dict)
        or set(value) != {"provider", "user_id"}
        or not all(isinstance(v, str) and 0 < len(v) <= 200 for v in value.values())
    ):
        raise InvalidRequest(
            "'signer' must be {\"provider\": NAME, \"user_id\": ID}: a configured remote signing "
            "provider and the clinician's id there"
        )
    return RemoteSignerRequest(value["provider"], value["user_id"])


def _parse_chain(value: Any) -> tuple[x509.Certificate, ...]:
    """PEM certificates, the signer's first; a string may hold several PEM blocks."""
    if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(
            "'certificate_chain' must be a list of PEM certificates, the signer's first"
        )
    chain = []
    for index, text in enumerate(value):
        try:
            blocks = list(pem.unarmor(text.encode("ascii"), multiple=True))
            certs = [x509.Certificate.load(der) for kind, _, der in blocks if kind == "CERTIFICATE"]
            for cert in certs:
                cert.not_valid_after  # noqa: B018 - parse now: asn1crypto parses lazily
        except (ValueError, TypeError, UnicodeEncodeError):
            raise InvalidRequest(f"certificate_chain[{index}] is not a PEM certificate") from None
        if not certs:
            raise InvalidRequest(f"certificate_chain[{index}] holds no PEM certificate")
        chain.extend(certs)
    return tuple(chain)


def _parse_documents(value: Any) -> tuple[DocumentRequest, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidRequest(
            "'documents' must be a non-empty list of {record_id, pdf}, {record_id, json} or {record_id, xml}"
        )
    return tuple(_parse_document(index, doc) for index, doc in enumerate(value))


def _parse_document(index: int, doc: Any) -> DocumentRequest:
    where = f"documents[{index}]"
    if not isinstance(doc, dict):
        raise InvalidRequest(f"{where} must be an object")
    fields.only_members(doc, ("record_id", "pdf", "json", "xml", "profile", "name"), f"{where}: ")
    record_id = fields.record_id(doc.get("record_id"), f"{where}.record_id")
    name = doc.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise InvalidRequest(f"{where}.name must be a string of 1 to 200 characters")
    kinds = [kind for kind in ("pdf", "json", "xml") if kind in doc]
    if len(kinds) != 1:
        raise InvalidRequest(
            f"{where} needs exactly one of 'pdf' (base64), 'json' (the record) and 'xml' (base64)"
        )
    if "profile" in doc and kinds != ["xml"]:
        raise InvalidRequest(f"{where}.profile is for XML records only")
    if "json" in doc:
        return DocumentRequest(record_id, "json", payload=doc["json"], name=name)
    kind = kinds[0]
    if not isinstance(doc[kind], str):
        raise InvalidRequest(f"{where}.{kind} must be the {kind.upper()} record in base64")
    try:
        data = base64.b64decode(doc[kind], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}.{kind} is not valid base64") from None
    if kind == "pdf":
        return DocumentRequest(record_id, "pdf", pdf=data, name=name)
    profile = doc.get("profile")
    if profile not in (None, "bhyt", "xades"):
        raise InvalidRequest(f"{where}.profile must be 'bhyt' or 'xades'")
    return DocumentRequest(record_id, "xml", xml=data, profile=profile, name=name)


# -- status ------------------------------------------------------------------


@bp.get("/signing-sessions/<session_id>")
@endpoint(None, "his")
def status(ctx: RequestContext, session_id: str) -> Response:
    """Where a session stands; a remote one's signed documents once it is completed."""
    if not fields.is_session_id(session_id):
        raise NotFound("no such signing session")
    answer = session_status(_kyso(), ctx.actor, session_id).answer()
    return Response(json.dumps(answer, ensure_ascii=False), status=200, mimetype="application/json")


# -- complete ----------------------------------------------------------------


def _completed(appended: list[Any], completed: CompletedSession) -> Response:
    documents = [
        doc.answer(entry) for doc, entry in zip(completed.documents, appended, strict=False)
    ]
    return _json_response({"documents": documents}, 200, appended[-1].seq)


@bp.post("/signing-sessions/<session_id>/complete")
@endpoint("session.complete", "his")
def complete(ctx: RequestContext, session_id: str) -> Response:
    if not fields.is_session_id(session_id):
        raise NotFound("no such signing session")
    ctx.audit.key = f"session:{session_id}"
    body = json_body()
    parse_body(SessionCompleteRequest, body)
    signatures = _parse_signatures(body.get("signatures"))
    return idempotency.run(
        ctx,
        lambda reservation: complete_session(_kyso(), ctx.actor, session_id, signatures, reservation),
        _completed,
    )


def _parse_signatures(value: Any) -> list[bytes]:
    """Signature values in base64 (standard, or base64url as JOSE tools write it)."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidRequest(
            "'signatures' must be a list of base64 signature values, in document order"
        )
    decoded = []
    for index, text in enumerate(value):
        try:
            decoded.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            try:
                padded = text + "=" * (-len(text) % 4)
                decoded.append(base64.b64decode(padded, altchars=b"-_", validate=True))
            except (binascii.Error, ValueError):
                raise InvalidRequest(f"signatures[{index}] is not valid base64") from None
    return decoded
