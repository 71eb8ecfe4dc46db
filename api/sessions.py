"""POST /api/v1/signing-sessions and /signing-sessions/<id>/complete (SPEC section 6).

This module only reads requests and writes answers; :mod:`kyso.sessions.service` does the work.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from asn1crypto import pem, x509
from flask import Blueprint, Response, current_app, g

from kyso.api import idempotency
from kyso.api.auth import endpoint
from kyso.api.sign import json_body
from kyso.errors import InvalidRequest, NotFound
from kyso.service import Actor
from kyso.sessions.service import complete_session, start_session
from kyso.sessions.state import CompletedSession, DocumentRequest, SessionRequest, StartedSession

bp = Blueprint("sessions", __name__)

_START_MEMBERS = {"certificate_chain", "level", "documents", "reason", "location", "rsa_scheme"}
MAX_SESSION_ID = 64


def _kyso():
    return current_app.extensions["kyso"]


def _json_response(body: dict[str, Any], status: int, audit_seq: int) -> Response:
    resp = Response(
        json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json"
    )
    resp.headers["Kyso-Audit-Seq"] = str(audit_seq)
    return resp


# -- start -------------------------------------------------------------------


def _started(appended: Any, session: StartedSession) -> Response:
    return _json_response(session.answer(), 201, appended.seq)


@bp.post("/signing-sessions")
@endpoint("session.start", "his")
def start() -> Response:
    body = json_body()
    unknown = set(body) - _START_MEMBERS
    if unknown:
        raise InvalidRequest(f"unknown member(s) {', '.join(sorted(unknown))}")
    request = parse_session_request(body)
    replay = idempotency.begin()
    if replay is not None:
        return replay
    actor = Actor(g.client.name, g.client.role)
    return idempotency.run(lambda also: start_session(_kyso(), actor, request, also), _started)


def parse_session_request(body: dict[str, Any]) -> SessionRequest:
    """The session request in ``body``; every bad member is a 400 that names it."""
    level = body.get("level", "B-T")
    rsa_scheme = body.get("rsa_scheme", "pss")
    for name, value in (("level", level), ("rsa_scheme", rsa_scheme)):
        if not isinstance(value, str):
            raise InvalidRequest(f"'{name}' must be a string")
    return SessionRequest(
        chain=_parse_chain(body.get("certificate_chain")),
        documents=_parse_documents(body.get("documents")),
        level=level,
        reason=_optional_str(body, "reason"),
        location=_optional_str(body, "location"),
        rsa_scheme=rsa_scheme,
    )


def _optional_str(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    if value is not None and (not isinstance(value, str) or len(value) > 1024):
        raise InvalidRequest(f"'{name}' must be a string of at most 1024 characters")
    return value


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
    unknown = set(doc) - {"record_id", "pdf", "json", "xml", "profile"}
    if unknown:
        raise InvalidRequest(f"{where}: unknown member(s) {', '.join(sorted(unknown))}")
    record_id = doc.get("record_id")
    if record_id is not None and (not isinstance(record_id, str) or len(record_id) > 1024):
        raise InvalidRequest(f"{where}.record_id must be a string of at most 1024 characters")
    kinds = [kind for kind in ("pdf", "json", "xml") if kind in doc]
    if len(kinds) != 1:
        raise InvalidRequest(
            f"{where} needs exactly one of 'pdf' (base64), 'json' (the record) and 'xml' (base64)"
        )
    if "profile" in doc and kinds != ["xml"]:
        raise InvalidRequest(f"{where}.profile is for XML records only")
    if "json" in doc:
        return DocumentRequest(record_id, "json", payload=doc["json"])
    kind = kinds[0]
    if not isinstance(doc[kind], str):
        raise InvalidRequest(f"{where}.{kind} must be the {kind.upper()} record in base64")
    try:
        data = base64.b64decode(doc[kind], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidRequest(f"{where}.{kind} is not valid base64") from None
    if kind == "pdf":
        return DocumentRequest(record_id, "pdf", pdf=data)
    profile = doc.get("profile")
    if profile not in (None, "bhyt", "xades"):
        raise InvalidRequest(f"{where}.profile must be 'bhyt' or 'xades'")
    return DocumentRequest(record_id, "xml", xml=data, profile=profile)


# -- complete ----------------------------------------------------------------


def _completed(appended: list[Any], completed: CompletedSession) -> Response:
    documents = [
        doc.answer(entry) for doc, entry in zip(completed.documents, appended, strict=False)
    ]
    return _json_response({"documents": documents}, 200, appended[-1].seq)


@bp.post("/signing-sessions/<session_id>/complete")
@endpoint("session.complete", "his")
def complete(session_id: str) -> Response:
    if len(session_id) > MAX_SESSION_ID:
        raise NotFound("no such signing session")
    g.audit["key"] = f"session:{session_id}"
    body = json_body()
    unknown = set(body) - {"signatures"}
    if unknown:
        raise InvalidRequest(f"unknown member(s) {', '.join(sorted(unknown))}")
    signatures = _parse_signatures(body.get("signatures"))
    replay = idempotency.begin()
    if replay is not None:
        return replay
    actor = Actor(g.client.name, g.client.role)
    return idempotency.run(
        lambda also: complete_session(_kyso(), actor, session_id, signatures, also), _completed
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
