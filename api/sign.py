"""POST /api/v1/sign/pdf and /sign/json."""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, request

from kyso.api import idempotency
from kyso.api.auth import endpoint, require_key_grant
from kyso.api.params import parse_bool, parse_box, parse_int, query_str
from kyso.errors import InvalidJson, InvalidRequest
from kyso.formats import parse_json_strict
from kyso.service import Actor, sha256_hex
from kyso.signer.pades import PdfSignOptions

bp = Blueprint("sign", __name__)


def _kyso():
    return current_app.extensions["kyso"]


def _signed_pdf_response(appended: Any, signed: Any) -> Response:
    resp = Response(signed.pdf, mimetype="application/pdf")
    resp.headers["Kyso-Audit-Seq"] = str(appended.seq)
    resp.headers["Kyso-Document-SHA256"] = signed.sha256
    if signed.repaired:
        resp.headers["Kyso-Repaired"] = "true"
    return resp


@bp.post("/sign/pdf")
@endpoint("sign.pdf", "his")
def sign_pdf() -> Response:
    alias = query_str("key", required=True)
    assert alias is not None  # required
    record_id = query_str("record_id")
    g.audit.update(key=alias, record_id=record_id)
    require_key_grant(alias)
    replay = idempotency.begin()
    if replay is not None:
        return replay
    data = request.get_data()
    g.audit["document_sha256"] = sha256_hex(data)
    g.signature_labels = ("pdf", alias, request.args.get("level") or "B-T")
    options = PdfSignOptions(
        level=query_str("level") or "B-T",
        reason=query_str("reason"),
        location=query_str("location"),
        field=query_str("field"),
        certify=parse_bool("certify"),
        visible=parse_bool("visible"),
        page=parse_int("page", 1),
        box=parse_box("box"),
        repair=parse_bool("repair"),
    )
    actor = Actor(g.client.name, g.client.role)
    return idempotency.run(
        lambda also: _kyso().sign_pdf(actor, alias, data, options, record_id, with_entry=also),
        _signed_pdf_response,
    )


def json_body() -> dict[str, Any]:
    if request.mimetype not in ("application/json", "") and not request.mimetype.endswith("+json"):
        raise InvalidJson(f"send the body as application/json, not {request.mimetype}")
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
def sign_json() -> Response:
    body = json_body()
    unknown = set(body) - {"key", "payload", "level", "record_id", "detached"}
    if unknown:
        raise InvalidRequest(f"unknown member(s) {', '.join(sorted(unknown))}")
    alias = body.get("key")
    if not isinstance(alias, str) or not alias:
        raise InvalidRequest("'key' (a key alias) is required")
    record_id = body.get("record_id")
    if record_id is not None and not isinstance(record_id, str):
        raise InvalidRequest("'record_id' must be a string")
    g.audit.update(key=alias, record_id=record_id)
    require_key_grant(alias)
    if "payload" not in body:
        raise InvalidRequest("'payload' (the JSON record to sign) is required")
    level = body.get("level", "B-T")
    detached = body.get("detached", False)
    if not isinstance(detached, bool):
        raise InvalidRequest("'detached' must be true or false")
    replay = idempotency.begin()
    if replay is not None:
        return replay
    g.signature_labels = ("json", alias, str(level))
    actor = Actor(g.client.name, g.client.role)
    return idempotency.run(
        lambda also: _kyso().sign_json(actor, alias, body["payload"], level, detached, record_id, with_entry=also),
        _signed_json_response,
    )
