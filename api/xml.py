"""POST /api/v1/sign/xml and /verify/xml: XML records (the health-insurance facility
signature, XAdES baseline). Bad or hostile XML is ``400 invalid_xml`` and nothing is signed."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from kyso.api import idempotency
from kyso.api.auth import endpoint, require_key_grant
from kyso.api.language import explained
from kyso.api.params import query_str
from kyso.errors import UnsupportedMediaType
from kyso.service import Actor, sha256_hex
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
    resp = Response(signed.xml, mimetype="application/xml")
    resp.headers["Kyso-Audit-Seq"] = str(appended.seq)
    resp.headers["Kyso-Document-SHA256"] = signed.sha256
    return resp


@bp.post("/sign/xml")
@endpoint("sign.xml", "his")
def sign_xml() -> Response:
    alias = query_str("key", required=True)
    assert alias is not None
    record_id = query_str("record_id")
    g.audit.update(key=alias, record_id=record_id)
    require_key_grant(alias)
    options = XmlSignOptions(level=query_str("level") or "B-T", profile=query_str("profile"))
    options.check()
    replay = idempotency.begin()
    if replay is not None:
        return replay
    data = xml_body()
    g.audit["document_sha256"] = sha256_hex(data)
    g.signature_labels = ("xml", alias, options.level)
    actor = Actor(g.client.name, g.client.role)
    kyso = current_app.extensions["kyso"]
    return idempotency.run(
        lambda also: kyso.sign_xml(actor, alias, data, options, record_id, with_entry=also),
        _signed_xml_response,
    )


@bp.post("/verify/xml")
@endpoint("verify.xml", "his", "auditor", "admin")
def verify_xml() -> Response:
    data = xml_body()
    g.audit["document_sha256"] = sha256_hex(data)
    report = current_app.extensions["kyso"].verify_xml(Actor(g.client.name, g.client.role), data)
    return explained(report)
