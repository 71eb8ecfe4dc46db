"""GET /api/v1/keys: the key aliases the caller may use."""

from __future__ import annotations

from typing import Any

from asn1crypto import pem
from flask import Blueprint, current_app, jsonify

from kyso.api.auth import endpoint
from kyso.api.context import RequestContext
from kyso.errors import KysoError
from kyso.keystore.base import KeyInfo

bp = Blueprint("keys", __name__)


def _pem(cert) -> str:
    return pem.armor("CERTIFICATE", cert.dump()).decode("ascii")


def describe_key(info: KeyInfo) -> dict[str, Any]:
    return {
        "alias": info.alias,
        "kind": info.kind,
        "algorithm": info.algorithm,
        "jws_alg": info.jws_alg,
        "subject": info.subject,
        "not_after": info.not_after.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "chain": [_pem(c) for c in (info.certificate, *info.chain)],
    }


@bp.get("/keys")
@endpoint(None, "his", "admin")
def list_keys(ctx: RequestContext):
    kyso = current_app.extensions["kyso"]
    client = ctx.caller
    aliases = [a for a in kyso.keystore.aliases() if client.role == "admin" or client.may_use(a)]
    keys = []
    for alias in aliases:
        try:
            keys.append(describe_key(kyso.keystore.get(alias).info))
        except KysoError as exc:  # a token or a remote service that is out: say why
            configured = kyso.config.key(alias)
            kind = configured.kind if configured is not None else "unknown"
            keys.append({"alias": alias, "kind": kind, "health": exc.code})
    return jsonify({"keys": keys})
