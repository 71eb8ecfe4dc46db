"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import text

from kyso.api.metrics import key_health
from kyso.errors import KysoError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    kyso = current_app.extensions["kyso"]
    checks: dict[str, str] = {}
    try:
        with kyso.db.reader.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any driver error means: not ready
        checks["database"] = f"failing: {exc.__class__.__name__}"
    for alias in kyso.keystore.aliases():
        try:
            kyso.keystore.get(alias).check()
            checks[f"key:{alias}"] = "ok"
        except KysoError as exc:
            checks[f"key:{alias}"] = f"failing: {exc.code}"
        key_health(alias, checks[f"key:{alias}"] == "ok")
    checks["tsa"] = "ok" if kyso.timestamper is not None else "failing: no timestamp authority configured"
    failing = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "ok" if not failing else "failing", "checks": checks, "failing": failing}
    return jsonify(body), (200 if not failing else 503)
