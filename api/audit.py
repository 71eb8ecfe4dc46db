"""The audit log and the record registry over HTTP: entries, export, checkpoints, proofs.

Proof parameters are checked strictly: a missing, non-integer or negative value, a
``seq`` outside its tree, or ``first`` not in ``0 < first <= second`` is ``400
invalid_request``; a tree size larger than the log holds is ``404 not_found`` (that tree
does not exist yet: retry later). ``tree_size`` and ``second`` default to the log's size.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, g, jsonify, request, stream_with_context

from kyso.api import fields
from kyso.api.auth import endpoint
from kyso.errors import InvalidRequest, NotFound

bp = Blueprint("audit", __name__)

_MAX = 2**62


def _kyso():
    return current_app.extensions["kyso"]


def _int_arg(name: str, default: int | None, lo: int, hi: int) -> int | None:
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


def _required_int(name: str) -> int:
    value = _int_arg(name, None, 0, _MAX)
    if value is None:
        raise InvalidRequest(f"query parameter {name!r} is required")
    return value


@bp.get("/audit/entries")
@endpoint("audit.entries", "auditor", "admin")
def entries():
    after = _int_arg("after", -1, -1, _MAX)
    limit = _int_arg("limit", 100, 1, 1000)
    assert after is not None and limit is not None
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


@bp.get("/audit/checkpoint")
@endpoint("audit.checkpoint.read", "auditor", "admin")
def latest_checkpoint():
    checkpoint = _kyso().audit.latest_checkpoint()
    if checkpoint is None:
        raise NotFound("the log has no checkpoint yet (POST /api/v1/audit/checkpoint makes one)")
    return jsonify(checkpoint)


@bp.post("/audit/checkpoint")
@endpoint("audit.checkpoint", "admin")
def make_checkpoint():
    from kyso.audit.checkpoint import checkpointer_for

    kyso = _kyso()
    checkpointer = current_app.extensions.get("kyso.checkpointer") or checkpointer_for(kyso)
    # The request's own entry comes first, so the new checkpoint covers it.
    kyso.record_access(g.client.name, "audit.checkpoint")
    return jsonify(checkpointer.checkpoint()), 201


@bp.get("/audit/proof/inclusion")
@endpoint("audit.proof", "auditor", "admin")
def inclusion_proof():
    seq = _required_int("seq")
    tree_size = _int_arg("tree_size", None, 0, _MAX)
    return jsonify(_kyso().audit.inclusion(seq, tree_size))


@bp.get("/audit/proof/consistency")
@endpoint("audit.proof", "auditor", "admin")
def consistency_proof():
    first = _required_int("first")
    second = _int_arg("second", None, 0, _MAX)
    return jsonify(_kyso().audit.consistency(first, second))


@bp.get("/records/<path:record_id>")
@endpoint("record.read", "his", "auditor", "admin")
def record(record_id: str):
    fields.record_id(record_id)
    g.audit["record_id"] = record_id
    _kyso().record_access(g.client.name, "record.read", record_id=record_id)
    return jsonify(
        {"record_id": record_id, "signatures": _kyso().audit.record_signatures(record_id)}
    )


@bp.get("/records")
@endpoint("records.due", "his", "auditor", "admin")
def records_due():
    """Records whose newest signed PDF must be extended before ``extend_before`` (a date
    or an ISO 8601 time), soonest first (:mod:`kyso.signer.archive_dates`)."""
    from kyso.signer.archive_dates import parse_deadline

    raw = request.args.get("extend_before")
    if raw is None or len(raw) > 64:
        raise InvalidRequest("give extend_before=YYYY-MM-DD: the records to extend before that day")
    before = parse_deadline(raw)
    limit = _int_arg("limit", 1000, 1, 10_000)
    assert limit is not None
    _kyso().record_access(g.client.name, "records.due")
    return jsonify({"extend_before": raw, "records": _kyso().audit.records_due(before, limit)})
