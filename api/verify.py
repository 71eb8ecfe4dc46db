"""POST /api/v1/verify/pdf and /verify/json: validation reports (SPEC section 5), explained
in the language of ``Accept-Language`` (Vietnamese or English)."""

from __future__ import annotations

from flask import Blueprint, current_app

from kyso.api.auth import endpoint
from kyso.api.context import RequestContext
from kyso.api.language import explained
from kyso.api.models import VerifyJsonRequest, parse_body
from kyso.api.sign import json_body, pdf_body
from kyso.service import sha256_hex

bp = Blueprint("verify", __name__)


@bp.post("/verify/pdf")
@endpoint("verify.pdf", "his", "auditor", "admin")
def verify_pdf(ctx: RequestContext):
    data = pdf_body()
    ctx.audit.document_sha256 = sha256_hex(data)
    report = current_app.extensions["kyso"].verify_pdf(ctx.actor, data)
    return explained(report)


@bp.post("/verify/json")
@endpoint("verify.json", "his", "auditor", "admin")
def verify_json(ctx: RequestContext):
    body = json_body()
    parse_body(VerifyJsonRequest, body)  # the JWS's content is the verifier's to judge
    report = current_app.extensions["kyso"].verify_json(
        ctx.actor, body["signature"], body.get("payload"), "payload" in body
    )
    return explained(report)
