"""GET /: a verification page for anyone holding a signed record (Vietnamese, English).

The page posts the file to ``POST /page/verify``, which answers the same report as
``/api/v1/verify/*`` without an API key, explained in the language of ``Accept-Language``
(the page asks for Vietnamese first); both are off when ``verify_page_public = false``.
"""

from __future__ import annotations

from importlib import resources

from flask import Blueprint, Response, current_app, request

from kyso.api import context
from kyso.api.headers import page_policy
from kyso.api.language import explained
from kyso.api.limits import limit_address
from kyso.api.models import Jws, PageVerifyRequest, parse_body
from kyso.api.sign import json_body
from kyso.errors import NotFound, UnsupportedMediaType
from kyso.service import Actor, sha256_hex

bp = Blueprint("page", __name__)
XML_TYPES = ("application/xml", "text/xml")


def _public() -> None:
    if not current_app.extensions["kyso"].config.verify_page_public:
        raise NotFound("the verification page is not served by this instance")


@bp.get("/")
def index() -> Response:
    _public()
    html = resources.files("kyso.api").joinpath("static/verify.html").read_text(encoding="utf-8")
    resp = Response(html, mimetype="text/html")
    resp.headers["Content-Security-Policy"] = page_policy(html)
    return resp


@bp.post("/page/verify")
def verify() -> Response:
    _public()
    limit_address()
    kyso = current_app.extensions["kyso"]
    ctx = context.current()
    ctx.action = "verify.page"
    anonymous = Actor(None)
    if request.mimetype == "application/pdf":
        data = request.get_data()
        ctx.audit.document_sha256 = sha256_hex(data)
        return explained(kyso.verify_pdf(anonymous, data))
    if request.mimetype == "application/json":
        body = json_body()
        if "protected" in body or "signature" not in body:
            parse_body(Jws, body)  # a JWS file as kyso returns it (its own member "signature" too)
            return explained(kyso.verify_json(anonymous, body, None, False))
        parse_body(PageVerifyRequest, body)  # {"signature": <JWS>, "payload": ...}, or a sign/json answer
        return explained(kyso.verify_json(anonymous, body["signature"], body.get("payload"), "payload" in body))
    if request.mimetype in XML_TYPES:  # a health-insurance XML record (bhyt or XAdES)
        data = request.get_data()
        ctx.audit.document_sha256 = sha256_hex(data)
        return explained(kyso.verify_xml(anonymous, data))
    raise UnsupportedMediaType(
        "send a PDF (application/pdf), a signed JSON (application/json) or a signed XML "
        "(application/xml)"
    )


verify.kyso_action = "verify.page"  # type: ignore[attr-defined]  # a refusal before the view
