"""POST /api/v1/sign/xml and /verify/xml: XML records (the health-insurance facility
signature, XAdES baseline). Bad or hostile XML is ``400 invalid_xml`` and nothing is signed."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from kyso.api import fields, idempotency
from kyso.api.auth import endpoint, require_key_grant
from kyso.api.context import RequestContext
from kyso.api.language import explained
from kyso.api.models import SignXmlQuery, parse_query
from kyso.api.sign import signed_file_response
from kyso.errors import UnsupportedMediaType
from kyso.service import sha256_hex
from kyso.signer.xml import XmlSignOptions

bp = Blueprint("xml", __name__)

_ACCEPTED = ("application/xml", "text/xml", "application/octet-stream", "")


def xml_body() -> bytes:
    """The request body, sent as XML (``application/xml``, ``text/xml``, ``*/*+xml``)."""
    mimetype = request.mimetype
    if mimetype not in _ACCEPTED and not mimetype.endswith("+xml"):
        raise UnsupportedMediaType(f"send the XML record as application/xml, not {mimetype}")
    data = request.get_data()
    assert isinstance(data, bytes)
    return data


def _signed_xml_response(appended: Any, signed: Any) -> Response:
    return signed_file_response(appended, signed.xml, "application/xml", signed.sha256)


@bp.post("/sign/xml")
@endpoint("sign.xml", "his")
def sign_xml(ctx: RequestContext) -> Response:
    query = parse_query(SignXmlQuery)
    alias, record_id = fields.key_alias(query.key), fields.record_id(query.record_id)
    ctx.audit.key, ctx.audit.record_id = alias, record_id
    require_key_grant(ctx, alias)
    options = XmlSignOptions(level=query.level, profile=query.profile)
    options.check()
    data = xml_body()
    ctx.audit.document_sha256 = sha256_hex(data)
    ctx.signature_labels = ("xml", alias, options.level)
    kyso = current_app.extensions["kyso"]
    return idempotency.run(
        ctx,
        lambda reservation: kyso.sign_xml(ctx.actor, alias, data, options, record_id, reservation),
        _signed_xml_response,
    )


@bp.post("/verify/xml")
@endpoint("verify.xml", "his", "auditor", "admin")
def verify_xml(ctx: RequestContext) -> Response:
    data = xml_body()
    ctx.audit.document_sha256 = sha256_hex(data)
    report = current_app.extensions["kyso"].verify_xml(ctx.actor, data)
    return explained(report)
