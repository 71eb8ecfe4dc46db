"""POST /api/v1/extend/pdf: long-term validation data for a signed PDF (B-LT, B-LTA).

An archive sends a signed record back before its certificates expire; the answer is the
same PDF with an incremental update holding the validation data (DSS) and, for ``B-LTA``,
a fresh archive timestamp over everything.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app

from kyso.api import fields, idempotency
from kyso.api.auth import endpoint
from kyso.api.context import RequestContext
from kyso.api.models import ExtendPdfQuery, parse_query
from kyso.api.sign import pdf_body, signed_file_response
from kyso.service import sha256_hex

bp = Blueprint("extend", __name__)


def _extended_pdf_response(appended: Any, extended: Any) -> Response:
    return signed_file_response(appended, extended.pdf, "application/pdf", extended.sha256)


@bp.post("/extend/pdf")
@endpoint("extend.pdf", "his")
def extend_pdf(ctx: RequestContext) -> Response:
    query = parse_query(ExtendPdfQuery)
    level, record_id = query.level, fields.record_id(query.record_id)
    ctx.audit.record_id = record_id
    data = pdf_body()
    ctx.audit.document_sha256 = sha256_hex(data)
    kyso = current_app.extensions["kyso"]
    return idempotency.run(
        ctx,
        lambda reservation: kyso.extend_pdf(ctx.actor, data, level, record_id, reservation),
        _extended_pdf_response,
    )
