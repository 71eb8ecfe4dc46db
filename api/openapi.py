"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of this API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from kyso import __version__

bp = Blueprint("openapi", __name__)

_PROBLEM = {"$ref": "#/components/responses/Problem"}
_AUTH_ERRORS = {"401": _PROBLEM, "403": _PROBLEM, "429": _PROBLEM}


def _op(summary: str, roles: str | None, ok: dict[str, Any], errors: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok}
    for status in errors:
        responses[status] = _PROBLEM
    if roles:
        responses.update(_AUTH_ERRORS)
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if roles:
        op["description"] = f"Roles: {roles}."
    else:
        op["security"] = []
    return op


def _json(schema: dict[str, Any] | None = None, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema or {"type": "object"}}}}


def _q(name: str, description: str, required: bool = False, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description,
            "schema": schema or {"type": "string"}}


_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 255},
                "description": "A retry with the same key returns the first answer byte for byte (kept 24 hours)."}
_LANGUAGE = {"name": "Accept-Language", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "vi or en (default): the language of the report's explanation members."}
_PDF_BODY = {"required": True, "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}}
_PDF_OK = {"description": "The signed PDF", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}},
           "headers": {"Kyso-Audit-Seq": {"schema": {"type": "integer"}},
                       "Kyso-Document-SHA256": {"schema": {"type": "string"}}}}
_REPORT = {"$ref": "#/components/schemas/ValidationReport"}
_XML = {"schema": {"type": "string"}}
_XML_BODY = {"required": True, "content": {"application/xml": _XML, "text/xml": _XML}}
_XML_OK = {"description": "The signed XML record", "content": {"application/xml": _XML},
           "headers": _PDF_OK["headers"]}
_LEVEL = {"type": "string", "enum": ["B-B", "B-T", "B-LT", "B-LTA"]}
_PKI_NAME = {"name": "name", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["root-ca", "intermediate-ca"]}}
_OCSP_OK = {"description": "OCSPResponse (RFC 6960)", "content": {"application/ocsp-response": {}}}
_CHECKPOINT_MEMBERS = ("origin", "tree_size", "root_hash", "chain_head", "time", "body", "signature",
                       "certificate", "timestamp_token")
_CHECKPOINT = {"type": "object", "required": list(_CHECKPOINT_MEMBERS),
               "properties": {m: {"type": "integer" if m == "tree_size" else "string"} for m in _CHECKPOINT_MEMBERS}}


def document() -> dict[str, Any]:
    sign_errors = ("400", "409", "413", "422", "503")
    return {
        "openapi": "3.1.0",
        "info": {"title": "kyso", "version": __version__,
                 "description": "Signing and record-integrity service for electronic medical records."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": {
            "/healthz": {"get": _op("Liveness", None, _json())},
            "/readyz": {"get": _op("Readiness: database, each key alias, TSA", None, _json(), ("503",))},
            "/metrics": {"get": _op("Prometheus metrics", None, {"description": "text/plain exposition format"})},
            "/tsa": {"post": _op("Built-in RFC 3161 TSA", None,
                                 {"description": "TimeStampResp", "content": {"application/timestamp-reply": {}}},
                                 ("404", "415", "429"), requestBody={"content": {"application/timestamp-query": {}}})},
            "/": {"get": _op("Verification page (Vietnamese and English)", None, {"description": "HTML"})},
            "/page/verify": {"post": _op("Verification for the public page", None, _json(_REPORT), ("400", "404", "413", "429"),
                                         requestBody={"content": {"application/pdf": {}, "application/json": {}}},
                                         parameters=[_LANGUAGE])},
            "/api/v1/openapi.json": {"get": _op("This document", None, _json())},
            "/api/v1/keys": {"get": _op("Key aliases the caller may use", "his, admin", _json())},
            "/api/v1/sign/pdf": {"post": _op(
                "Sign a PDF (PAdES)", "his", _PDF_OK, sign_errors,
                parameters=[_q("key", "Key alias", True), _q("level", "PAdES level", schema=_LEVEL),
                            _q("record_id", "Record identifier (may contain /)"), _q("reason", "Reason"),
                            _q("location", "Location"), _q("field", "Signature field name"),
                            _q("certify", "Certify (DocMDP) on the first signature", schema={"type": "boolean"}),
                            _q("visible", "Visible stamp", schema={"type": "boolean"}),
                            _q("page", "1-based page of the stamp", schema={"type": "integer"}),
                            _q("box", "x1,y1,x2,y2 in PDF points"),
                            _q("repair", "Rebuild a damaged PDF and sign the rebuilt file", schema={"type": "boolean"}),
                            _IDEMPOTENCY],
                requestBody=_PDF_BODY)},
            "/api/v1/sign/json": {"post": _op(
                "Sign a JSON record (JWS / JAdES)", "his",
                _json({"type": "object", "properties": {"signature": {"type": "object"}, "payload_sha256": {"type": "string"},
                                                        "audit_seq": {"type": "integer"}}}),
                sign_errors, parameters=[_IDEMPOTENCY],
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["key", "payload"],
                    "properties": {"key": {"type": "string"}, "payload": {}, "level": {"type": "string", "enum": ["B-B", "B-T"]},
                                   "record_id": {"type": "string"}, "detached": {"type": "boolean"}}}}}})},
            "/api/v1/sign/xml": {"post": _op(
                "Sign an XML record: the health-insurance facility signature in CHUKYDONVI (bhyt) or XAdES",
                "his", _XML_OK, (*sign_errors, "415"),
                parameters=[_q("key", "Key alias", True),
                            _q("level", "B-B or B-T", schema={"type": "string", "enum": ["B-B", "B-T"]}),
                            _q("record_id", "Record identifier (may contain /)"),
                            _q("profile", "bhyt (default when the record has CHUKYDONVI) or xades",
                               schema={"type": "string", "enum": ["bhyt", "xades"]}),
                            _IDEMPOTENCY],
                requestBody=_XML_BODY)},
            "/api/v1/extend/pdf": {"post": _op(
                "Extend a signed PDF: validation data (B-LT) and a fresh archive timestamp (B-LTA)", "his",
                {**_PDF_OK, "description": "The extended PDF"}, ("400", "409", "413", "503"),
                parameters=[_q("level", "B-LT or B-LTA", True, {"type": "string", "enum": ["B-LT", "B-LTA"]}),
                            _q("record_id", "Record identifier (may contain /)"), _IDEMPOTENCY],
                requestBody=_PDF_BODY)},
            "/api/v1/signing-sessions": {"post": {**_op(
                "Start a signing session: the clinician's token (certificate_chain) or a remote signing "
                "provider (signer: the clinician confirms on the phone, kyso completes the session)",
                "his", _json(), ("400", "409", "413", "422", "503"),
                parameters=[_IDEMPOTENCY],
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["documents"],
                    "oneOf": [{"required": ["certificate_chain"]}, {"required": ["signer"]}],
                    "properties": {"certificate_chain": {"type": "array", "items": {"type": "string"}},
                                   "signer": {"type": "object", "required": ["provider", "user_id"],
                                              "properties": {"provider": {"type": "string"},
                                                             "user_id": {"type": "string"}}},
                                   "description": {"type": "string", "maxLength": 1024},
                                   "level": {"type": "string", "enum": ["B-B", "B-T"]},
                                   "rsa_scheme": {"type": "string", "enum": ["pss", "pkcs1v15"], "default": "pss"},
                                   "reason": {"type": "string"}, "location": {"type": "string"},
                                   "documents": {"type": "array", "items": {"type": "object"}, "description":
                                                 "{record_id, pdf: base64}, {record_id, json: record} or "
                                                 "{record_id, xml: base64, profile: bhyt|xades}"}}}}}}),
                "responses": {"201": _json(description="Created: id, expires_at, documents[record_id, data_to_sign, digest, algorithm]"),
                              "400": _PROBLEM, "401": _PROBLEM, "403": _PROBLEM, "409": _PROBLEM, "413": _PROBLEM,
                              "422": _PROBLEM, "429": _PROBLEM, "503": _PROBLEM}}},
            "/api/v1/signing-sessions/{session_id}": {"get": _op(
                "A session's status (pending, completed, rejected, expired, failed); a remote session's "
                "signed documents once completed", "his",
                _json({"type": "object", "required": ["id", "status", "expires_at"]}), ("404",),
                parameters=[{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}])},
            "/api/v1/signing-sessions/{session_id}/complete": {"post": _op(
                "Complete a signing session with the token's signatures", "his", _json(), ("400", "404", "409", "413", "503"),
                parameters=[{"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}, _IDEMPOTENCY],
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["signatures"],
                    "properties": {"signatures": {"type": "array", "items": {"type": "string"}}}}}}})},
            "/api/v1/audit/checkpoint": {
                "get": _op("The latest signed checkpoint", "auditor, admin", _json(_CHECKPOINT), ("404",)),
                "post": {**_op("Make a signed, timestamped checkpoint now", "admin", _json(_CHECKPOINT), ("503",)),
                         "responses": {"201": _json(_CHECKPOINT, "Created"), "401": _PROBLEM, "403": _PROBLEM,
                                       "429": _PROBLEM, "503": _PROBLEM}}},
            "/api/v1/audit/proof/inclusion": {"get": _op(
                "RFC 9162 inclusion proof", "auditor, admin",
                _json({"type": "object", "required": ["leaf_index", "tree_size", "root_hash", "hashes"]}), ("400", "404"),
                parameters=[_q("seq", "The entry", True, {"type": "integer"}),
                            _q("tree_size", "Tree size (default: the log's size)", schema={"type": "integer"})])},
            "/api/v1/audit/proof/consistency": {"get": _op(
                "RFC 9162 consistency proof", "auditor, admin",
                _json({"type": "object", "required": ["first", "second", "first_root", "second_root", "hashes"]}), ("400", "404"),
                parameters=[_q("first", "The earlier tree size (> 0)", True, {"type": "integer"}),
                            _q("second", "The later tree size (default: the log's size)", schema={"type": "integer"})])},
            "/pki/{name}.cer": {"get": _op(
                "Dev PKI: a CA certificate (DER); 404 unless dev_pki", None,
                {"description": "DER certificate", "content": {"application/pkix-cert": {}}}, ("404",),
                parameters=[_PKI_NAME])},
            "/pki/{name}.crl": {"get": _op(
                "Dev PKI: a CRL issued now, valid 7 days (DER); 404 unless dev_pki", None,
                {"description": "DER CRL", "content": {"application/pkix-crl": {}}}, ("404",),
                parameters=[_PKI_NAME])},
            "/pki/ocsp": {"post": _op(
                "Dev PKI: OCSP responder; 404 unless dev_pki", None, _OCSP_OK, ("404", "415"),
                requestBody={"content": {"application/ocsp-request": {}}})},
            "/pki/ocsp/{encoded}": {"get": _op(
                "Dev PKI: OCSP by GET (RFC 6960 A.1: base64 of the DER request); 404 unless dev_pki", None,
                _OCSP_OK, ("404",),
                parameters=[{"name": "encoded", "in": "path", "required": True, "schema": {"type": "string"}}])},
            "/api/v1/verify/pdf": {"post": _op("Validate a signed PDF", "his, auditor, admin", _json(_REPORT),
                                               ("400", "413"), requestBody=_PDF_BODY, parameters=[_LANGUAGE])},
            "/api/v1/verify/json": {"post": _op(
                "Validate a JWS", "his, auditor, admin", _json(_REPORT), ("400", "413"), parameters=[_LANGUAGE],
                requestBody={"required": True, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["signature"],
                    "properties": {"signature": {"type": "object"}, "payload": {}}}}}})},
            "/api/v1/verify/xml": {"post": _op("Validate the XML signatures of a record", "his, auditor, admin",
                                               _json(_REPORT), ("400", "413", "415"), requestBody=_XML_BODY,
                                               parameters=[_LANGUAGE])},
            "/api/v1/records": {"get": _op(
                "Records whose newest signed PDF must be extended before a date, soonest first",
                "his, auditor, admin",
                _json({"type": "object", "properties": {"extend_before": {"type": "string"}, "records": {
                    "type": "array", "items": {"type": "object", "properties": {
                        "record_id": {"type": "string"}, "audit_seq": {"type": "integer"},
                        "level": {"type": "string"}, "signature_sha256": {"type": "string"},
                        "extend_before": {"type": "string"}}}}}}),
                ("400",),
                parameters=[_q("extend_before", "A date (YYYY-MM-DD) or ISO 8601 time", True),
                            _q("limit", "At most this many (1..10000)", schema={"type": "integer"})])},
            "/api/v1/records/{record_id}": {"get": _op(
                "Signatures made for a record, oldest first", "his, auditor, admin", _json(),
                parameters=[{"name": "record_id", "in": "path", "required": True, "schema": {"type": "string"}}])},
            "/api/v1/audit/entries": {"get": _op(
                "Audit entries in order", "auditor, admin", _json(), ("400",),
                parameters=[_q("after", "Entries with a larger seq", schema={"type": "integer"}),
                            _q("limit", "At most this many (1..1000)", schema={"type": "integer"})])},
            "/api/v1/audit/export": {"get": _op(
                "The whole log as JSON Lines, entries then checkpoints", "auditor, admin",
                {"description": "JSON Lines", "content": {"application/jsonl": {}}})},
        },
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "API key made by `kyso clients add`"}},
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {"application/problem+json": {
                "schema": {"type": "object", "required": ["type", "title", "status", "detail", "code"],
                           "properties": {"type": {"type": "string"}, "title": {"type": "string"},
                                          "status": {"type": "integer"}, "detail": {"type": "string"},
                                          "code": {"type": "string"}}}}}}},
            "schemas": {"ValidationReport": {
                "type": "object", "required": ["indication", "document_sha256", "signatures"],
                "properties": {"indication": {"type": "string", "enum": ["TOTAL_PASSED", "INDETERMINATE", "TOTAL_FAILED"]},
                               "document_sha256": {"type": "string"},
                               "signatures": {"type": "array", "items": {"type": "object"}},
                               "explanation": {"type": "object", "description": "lang, verdict, summary, labels; each "
                                               "signature has its own (verdict, signer, time, changes, trust, revocation, "
                                               "log, terms), in the language of Accept-Language"}}}},
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
