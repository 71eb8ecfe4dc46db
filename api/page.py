"""GET /: a verification page for anyone holding a signed record (Vietnamese, English).

The page posts the file to ``POST /page/verify``, which answers the same report as
``/api/v1/verify/*`` without an API key; both are off when
``verify_page_public = false``.
"""

from __future__ import annotations

import re
from importlib import resources

from flask import Blueprint, Response, current_app, jsonify, request

from kyso.api import context
from kyso.api.headers import page_policy
from kyso.api.limits import limit_address
from kyso.api.models import Jws, PageVerifyRequest, parse_body
from kyso.api.sign import json_body
from kyso.errors import InvalidRequest, NotFound
from kyso.service import Actor, sha256_hex

bp = Blueprint("page", __name__)

_BASE64URL = re.compile(r"^[A-Za-z0-9_-]+$")


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
        return jsonify(kyso.verify_pdf(anonymous, data))
    if request.mimetype == "application/json":
        body = json_body()
        signature = body.get("signature")
        if isinstance(signature, dict) or (isinstance(signature, str) and not _BASE64URL.match(signature)):
            parse_body(PageVerifyRequest, body)  # a JWS with its payload, or a sign/json answer
            return jsonify(kyso.verify_json(anonymous, signature, body.get("payload"), "payload" in body))
        parse_body(Jws, body)  # a bare flattened JWS: its "signature" is the signature value
        return jsonify(kyso.verify_json(anonymous, body, None, False))
    raise InvalidRequest("send a PDF (application/pdf) or a signed JSON (application/json)")


verify.kyso_action = "verify.page"  # type: ignore[attr-defined]  # a refusal before the view
