"""The audit log and the record registry over HTTP: entries, export, checkpoints, proofs.

Proof parameters are checked strictly: a missing, non-integer or negative value, a
``seq`` outside its tree, or ``first`` not in ``0 < first <= second`` is ``400
invalid_request``; a tree size larger than the log holds is ``404 not_found`` (that tree
does not exist yet: retry later). ``tree_size`` and ``second`` default to the log's size.
"""

from __future__ import annotations

from dataclasses import replace

from flask import Blueprint, Response, current_app, jsonify, stream_with_context

from kyso.api import fields
from kyso.api.auth import endpoint
from kyso.api.context import RequestContext
from kyso.api.models import (
    ConsistencyQuery,
    EntriesQuery,
    InclusionQuery,
    RecordsQuery,
    parse_query,
)
from kyso.audit.checkpoint import Checkpointer, CurrentCheckpoint, checkpointer_for
from kyso.audit.entry import format_time
from kyso.audit.rows import RecordFilter
from kyso.errors import InvalidRequest, KysoError, NotFound

bp = Blueprint("audit", __name__)

def _kyso():
    return current_app.extensions["kyso"]


@bp.get("/audit/entries")
@endpoint("audit.entries", "auditor", "admin")
def entries(ctx: RequestContext):
    query = parse_query(EntriesQuery)
    limit = query.limit
    rows = _kyso().audit.entries(after=query.after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify({"entries": [r.to_json() for r in rows], "next": rows[-1].seq if more else None})


def _checkpointer() -> Checkpointer:
    return current_app.extensions.get("kyso.checkpointer") or checkpointer_for(_kyso())


@bp.get("/audit/export")
@endpoint("audit.export", "auditor", "admin")
def export(ctx: RequestContext) -> Response:
    kyso = _kyso()
    checkpointer = _checkpointer()
    # A checkpoint of the log as it is, first: if the log key or the TSA cannot make one,
    # the answer is 503 and no entry says that an export was made.
    checkpointer.closing()
    # The export's own entry comes next, so the export includes it; the checkpoint made
    # then covers it, and the export ends with that checkpoint (SPEC 7).
    kyso.record_access(ctx.caller.name, "audit.export")
    size = checkpointer.closing()
    lines = kyso.audit.export_lines(size=size)
    return Response(stream_with_context(lines), mimetype="application/jsonl")


@bp.get("/audit/checkpoint")
@endpoint("audit.checkpoint.read", "auditor", "admin")
def current_checkpoint(ctx: RequestContext) -> Response:
    """A checkpoint of the log's size now (made on demand, at most once per ``[audit]
    on_demand_seconds``); within that window the latest, saying how far it is behind."""
    try:
        checkpointer = _checkpointer()
    except KysoError:  # no log key or TSA: the stored checkpoints are all there is
        checkpointer = None
    if checkpointer is None:
        document = _kyso().audit.latest_checkpoint()
        if document is None:
            raise NotFound("the log has no checkpoint yet and cannot make one (no log key or TSA)")
        current = CurrentCheckpoint(document, _kyso().audit.size(), 0.0)
    else:
        current = checkpointer.current(_kyso().config.audit.on_demand_seconds)
    resp = jsonify({**current.document, "log_size": current.log_size, "behind": current.behind})
    resp.headers["Kyso-Checkpoint-Age"] = str(int(current.age_seconds))
    resp.headers["Kyso-Checkpoint-Behind"] = str(current.behind)
    return resp


@bp.post("/audit/checkpoint")
@endpoint("audit.checkpoint", "admin")
def make_checkpoint(ctx: RequestContext):
    checkpointer = _checkpointer()
    # The request's own entry comes first, so the new checkpoint covers it.
    _kyso().record_access(ctx.caller.name, "audit.checkpoint")
    return jsonify(checkpointer.checkpoint()), 201


@bp.get("/audit/proof/inclusion")
@endpoint("audit.proof", "auditor", "admin")
def inclusion_proof(ctx: RequestContext):
    query = parse_query(InclusionQuery)
    return jsonify(_kyso().audit.inclusion(query.seq, query.tree_size).to_json())


@bp.get("/audit/proof/consistency")
@endpoint("audit.proof", "auditor", "admin")
def consistency_proof(ctx: RequestContext):
    query = parse_query(ConsistencyQuery)
    return jsonify(_kyso().audit.consistency(query.first, query.second).to_json())


@bp.get("/records/<path:record_id>")
@endpoint("record.read", "his", "auditor", "admin")
def record(ctx: RequestContext, record_id: str):
    fields.record_id(record_id)
    ctx.audit.record_id = record_id
    rows = _kyso().audit.record_signatures(record_id)
    if not rows:
        raise NotFound(f"no signature was ever made for record {fields.shown(record_id)!r}")
    _kyso().record_access(ctx.caller.name, "record.read", record_id=record_id)
    return jsonify({"record_id": record_id, "signatures": [r.to_json() for r in rows]})


@bp.get("/records")
@endpoint("records.list", "his", "auditor", "admin")
def records(ctx: RequestContext):
    """Records by their newest signature, newest first, a page at a time (``cursor``: the
    ``next`` of the page before). With ``extend_before`` (a date or an ISO 8601 time): the
    records whose newest signed PDF must be extended before it, soonest first
    (:mod:`kyso.signer.archive_dates`), in one answer."""
    from kyso.signer.archive_dates import parse_deadline

    query = parse_query(RecordsQuery)
    since, until = (
        None if text is None else format_time(parse_deadline(text)) for text in (query.since, query.until)
    )
    which = RecordFilter(query.record_id_prefix, since, until)
    if query.extend_before is not None:
        if query.cursor is not None:
            raise InvalidRequest("the records due (extend_before) come in one answer: give no cursor")
        before = parse_deadline(query.extend_before)
        _kyso().record_access(ctx.caller.name, "records.due")
        due = _kyso().audit.records_due(before, query.limit or 1000, which)
        return jsonify({"extend_before": query.extend_before, "records": [r.to_json() for r in due]})
    limit = query.limit or 100
    if query.cursor is not None:
        which = replace(which, before_seq=int(query.cursor))
    _kyso().record_access(ctx.caller.name, "records.list")
    rows = _kyso().audit.records(which, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return jsonify({
        "records": [r.to_json() for r in rows],
        "next": str(rows[-1].audit_seq) if more else None,
    })
