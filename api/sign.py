"""POST /api/v1/sign/pdf and /sign/json."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, request

from kyso.api import fields, idempotency, spool
from kyso.api.auth import endpoint, require_key_grant
from kyso.api.context import RequestContext
from kyso.api.models import SignJsonRequest, SignPdfQuery, parse_body, parse_query
from kyso.api.params import box_of
from kyso.errors import InvalidJson, UnsupportedMediaType
from kyso.formats import parse_json_strict
from kyso.signer.pades import PdfSignOptions

bp = Blueprint("sign", __name__)


def _kyso():
    return current_app.extensions["kyso"]


def signed_file_response(
    appended: Any, body: bytes, mimetype: str, sha256: str, repaired: bool = False
) -> Response:
    """A signed (or extended) file as returned: its audit seq and the SHA-256 of the bytes."""
    return _signed(Response(body, mimetype=mimetype), appended, sha256, repaired)


def _signed(resp: Response, appended: Any, sha256: str, repaired: bool) -> Response:
    resp.headers["Kyso-Audit-Seq"] = str(appended.seq)
    resp.headers["Kyso-Document-SHA256"] = sha256
    if repaired:
        resp.headers["Kyso-Repaired"] = "true"
    return resp


@bp.post("/sign/pdf")
@endpoint("sign.pdf", "his")
def sign_pdf(ctx: RequestContext) -> Response:
    query = parse_query(SignPdfQuery)
    alias, record_id = fields.key_alias(query.key), fields.record_id(query.record_id)
    ctx.audit.key, ctx.audit.record_id = alias, record_id
    reason, location = fields.text(query.reason, "reason"), fields.text(query.location, "location")
    field = fields.field_name(query.field)
    require_key_grant(ctx, alias)
    kyso = _kyso()
    body = pdf_body_file(ctx)
    ctx.signature_labels = ("pdf", alias, query.level)
    with body.file:
        options = PdfSignOptions(
            level=query.level,
            reason=reason,
            location=location,
            field=field,
            certify=query.certify,
            visible=query.visible,
            page=query.page,
            box=box_of(query.box),
            repair=query.repair,
        )
        output = spool.temporary_file(kyso.config)
        try:
            resp = idempotency.run(
                ctx,
                lambda reservation: kyso.sign_pdf_stream(
                    ctx.actor, alias, body.file, body.sha256, options, record_id, output, reservation
                ),
                lambda appended, signed: _signed(
                    spool.file_answer(output, signed.size, "application/pdf"),
                    appended, signed.sha256, signed.repaired,
                ),
            )  # fmt: skip
        except BaseException:
            output.close()
            raise
    resp.call_on_close(output.close)  # a replayed answer does not send it
    return resp


# A body sent without a media type, or as bytes, is taken for what the call expects.
_PDF_TYPES = ("application/pdf", "application/octet-stream", "")


def pdf_body() -> bytes:
    """The request body, sent as a PDF (``application/pdf``); another media type is 415."""
    _check_pdf_type()
    data = request.get_data()
    assert isinstance(data, bytes)
    return data


def pdf_body_file(ctx: RequestContext) -> spool.SpooledBody:
    """:func:`pdf_body` read once into a temporary file, hashed as it comes: for the audit
    entry (``ctx.audit``) and, with an ``Idempotency-Key``, the request's fingerprint."""
    _check_pdf_type()
    fingerprint = idempotency.fingerprint_head() if "Idempotency-Key" in request.headers else None
    body = spool.spool_body(_kyso().config, fingerprint)
    ctx.audit.document_sha256 = body.sha256
    if fingerprint is not None:
        ctx.body_fingerprint = fingerprint.hexdigest()
    return body


def _check_pdf_type() -> None:
    if request.mimetype not in _PDF_TYPES:
        raise UnsupportedMediaType(f"send the PDF as application/pdf, not {request.mimetype}")


def json_body() -> dict[str, Any]:
    """The request body, a JSON object (``application/json``, ``*/*+json``); another media
    type is 415, a body that is not one JSON object ``invalid_json``."""
    if request.mimetype not in ("application/json", "") and not request.mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"send the body as application/json, not {request.mimetype}")
    body = parse_json_strict(request.get_data())
    if not isinstance(body, dict):
        raise InvalidJson("the body must be a JSON object")
    return body


def _signed_json_response(appended: Any, signed: Any) -> Response:
    body = {
        "signature": signed.jws,
        "payload_sha256": signed.payload_sha256,
        "audit_seq": appended.seq,
    }
    resp = Response(json.dumps(body, ensure_ascii=False), mimetype="application/json")
    resp.headers["Kyso-Audit-Seq"] = str(appended.seq)
    return resp


@bp.post("/sign/json")
@endpoint("sign.json", "his")
def sign_json(ctx: RequestContext) -> Response:
    body = parse_body(SignJsonRequest, json_body())
    alias, record_id = fields.key_alias(body.key), fields.record_id(body.record_id)
    ctx.audit.key, ctx.audit.record_id = alias, record_id
    require_key_grant(ctx, alias)
    ctx.signature_labels = ("json", alias, body.level)
    return idempotency.run(
        ctx,
        lambda reservation: _kyso().sign_json(
            ctx.actor, alias, body.payload, body.level, body.detached, record_id, reservation
        ),
        _signed_json_response,
    )
