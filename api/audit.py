"""The audit log and the record registry over HTTP."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request, stream_with_context

from kyso.api.auth import endpoint
from kyso.errors import InvalidRequest

bp = Blueprint("audit", __name__)


def _kyso():
    return current_app.extensions["kyso"]


def _int_arg(name: str, default: int, lo: int, hi: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidRequest(f"query parameter {name!r} must be an integer") from None
    if not lo <= value <= hi:
        raise InvalidRequest(f"query parameter {name!r} must be between {lo} and {hi}")
    return value


@bp.get("/audit/entries")
@endpoint(None, "auditor", "admin")
def entries():
    after = _int_arg("after", -1, -1, 2**62)
    limit = _int_arg("limit", 100, 1, 1000)
    rows = _kyso().audit.entries(after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify({"entries": rows, "next": rows[-1]["seq"] if more else None})


@bp.get("/audit/export")
@endpoint("audit.export", "auditor", "admin")
def export() -> Response:
    kyso = _kyso()
    # The export's own entry is written first, so the export includes it.
    kyso.record_access(g.client.name, "audit.export")
    return Response(stream_with_context(kyso.audit.export_lines()), mimetype="application/jsonl")


@bp.get("/records/<path:record_id>")
@endpoint("record.read", "his", "auditor", "admin")
def record(record_id: str):
    g.audit["record_id"] = record_id
    _kyso().record_access(g.client.name, "record.read", record_id=record_id)
    return jsonify({"record_id": record_id, "signatures": _kyso().audit.record_signatures(record_id)})
