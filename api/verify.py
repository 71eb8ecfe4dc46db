"""POST /api/v1/verify/pdf and /verify/json: validation reports (SPEC section 5), explained
in the language of ``Accept-Language`` (Vietnamese or English)."""

from __future__ import annotations

from flask import Blueprint, current_app, g, request

from kyso.api import fields
from kyso.api.auth import endpoint
from kyso.api.language import explained
from kyso.api.sign import json_body
from kyso.errors import InvalidRequest
from kyso.service import Actor, sha256_hex

bp = Blueprint("verify", __name__)


@bp.post("/verify/pdf")
@endpoint("verify.pdf", "his", "auditor", "admin")
def verify_pdf():
    data = request.get_data()
    g.audit["document_sha256"] = sha256_hex(data)
    report = current_app.extensions["kyso"].verify_pdf(Actor(g.client.name, g.client.role), data)
    return explained(report)


@bp.post("/verify/json")
@endpoint("verify.json", "his", "auditor", "admin")
def verify_json():
    body = json_body()
    if "signature" not in body:
        raise InvalidRequest("'signature' (the JWS, flattened JSON serialization) is required")
    fields.only_members(body, ("signature", "payload"))
    report = current_app.extensions["kyso"].verify_json(
        Actor(g.client.name, g.client.role), body["signature"], body.get("payload"), "payload" in body
    )
    return explained(report)
