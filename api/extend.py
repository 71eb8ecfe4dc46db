"""POST /api/v1/extend/pdf: long-term validation data for a signed PDF (B-LT, B-LTA).

An archive sends a signed record back before its certificates expire; the answer is the
same PDF with an incremental update holding the validation data (DSS) and, for ``B-LTA``,
a fresh archive timestamp over everything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, g, request

from kyso.api import fields, idempotency
from kyso.api.auth import endpoint
from kyso.api.params import query_str
from kyso.service import Actor, sha256_hex
from kyso.signer.ltv import EXTENSION_LEVELS

bp = Blueprint("extend", __name__)


def _extended_pdf_response(appended: Any, extended: Any) -> Response:
    resp = Response(extended.pdf, mimetype="application/pdf")
    resp.headers["Kyso-Audit-Seq"] = str(appended.seq)
    resp.headers["Kyso-Document-SHA256"] = extended.sha256
    return resp


@bp.post("/extend/pdf")
@endpoint("extend.pdf", "his")
def extend_pdf() -> Response:
    level = fields.choice(query_str("level", required=True), "level", EXTENSION_LEVELS)
    record_id = fields.record_id(query_str("record_id"))
    g.audit.update(record_id=record_id)
    replay = idempotency.begin()
    if replay is not None:
        return replay
    data = request.get_data()
    g.audit["document_sha256"] = sha256_hex(data)
    actor = Actor(g.client.name, g.client.role)
    kyso = current_app.extensions["kyso"]
    return idempotency.run(
        lambda also: kyso.extend_pdf(actor, data, level, record_id, with_entry=also),
        _extended_pdf_response,
    )
