"""GET /api/v1/openapi.json: the OpenAPI 3.1 document of this API.

Paths, summaries and status codes are written here; every JSON schema in it (request and
answer bodies, query parameters) is generated from the models the views validate with
(:mod:`kyso.api.models`) and answer in (:mod:`kyso.api.answers`), so that the document
and the validation say the same thing.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, jsonify
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from kyso import __version__
from kyso.api import answers, fields, models

bp = Blueprint("openapi", __name__)

_REF = "#/components/schemas/{model}"
_REQUESTS: tuple[type[BaseModel], ...] = (
    models.SignJsonRequest,
    models.VerifyJsonRequest,
    models.SessionStartRequest,
    models.SessionCompleteRequest,
    models.PageVerifyRequest,
    models.Jws,
)
_ANSWERS: tuple[type[BaseModel], ...] = (
    answers.SignJsonAnswer,
    answers.ValidationReport,
    answers.SessionStarted,
    answers.RemoteSessionStarted,
    answers.SessionStatus,
    answers.SessionCompleted,
    answers.Keys,
    answers.RecordSignatures,
    answers.RecordsDue,
    answers.RecordList,
    answers.AuditEntries,
    answers.InclusionProof,
    answers.ConsistencyProof,
    answers.Checkpoint,
    answers.CurrentCheckpoint,
    answers.Health,
    answers.Readiness,
    answers.Problem,
)

_CHECKPOINT_HEADERS = {
    "Kyso-Checkpoint-Age": {"schema": {"type": "integer"}, "description": "Seconds since it was made"},
    "Kyso-Checkpoint-Behind": {"schema": {"type": "integer"}, "description": "Entries it does not cover"},
}
_PROBLEM = {"$ref": "#/components/responses/Problem"}
_AUTH_ERRORS = ("401", "403", "429")


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(model: type[BaseModel] | None = None, description: str = "OK") -> dict[str, Any]:
    schema = _ref(model) if model else {"type": "object"}
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {"required": True, "content": {media: {"schema": schema}}}


def _op(summary: str, roles: str | None, ok: dict[str, Any], errors: tuple[str, ...] = (),
        status: str = "200", **extra: Any) -> dict[str, Any]:
    responses: dict[str, Any] = {status: ok}
    for code in (*errors, *(_AUTH_ERRORS if roles else ())):
        responses[code] = _PROBLEM
    op: dict[str, Any] = {"summary": summary, "responses": responses, **extra}
    if roles:
        op["description"] = f"Roles: {roles}."
    else:
        op["security"] = []
    return op


def query_parameters(model: type[models.Query]) -> list[dict[str, Any]]:
    """The query parameters of ``model``: one per field, with the field's schema (a
    parameter that may be left out is not nullable: it is absent)."""
    schema = model.model_json_schema(ref_template=_REF)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = dict(prop)
        description = prop.pop("description", name.replace("_", " "))
        prop.pop("title", None)
        choices = [c for c in prop.pop("anyOf", []) if c != {"type": "null"}]
        if choices:
            prop.update(choices[0])
        if prop.get("default", 0) is None:
            del prop["default"]
        parameters.append({"name": name, "in": "query", "required": name in required,
                           "description": description, "schema": prop})
    return parameters


_IDEMPOTENCY = {"name": "Idempotency-Key", "in": "header", "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
                "description": "A retry with the same key returns the first answer byte for byte (kept 24 hours)."}
_BINARY = {"type": "string", "format": "binary"}
_LANGUAGE = {"name": "Accept-Language", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "vi or en (default): the language of the report's explanation members."}
_PDF_BODY = _body(_BINARY, "application/pdf")
_PDF_OK = {"description": "The signed PDF", "content": {"application/pdf": {"schema": _BINARY}},
           "headers": {"Kyso-Audit-Seq": {"schema": {"type": "integer"}},
                       "Kyso-Document-SHA256": {"schema": {"type": "string"}}}}
_PKI_NAME = {"name": "name", "in": "path", "required": True,
             "schema": {"type": "string", "enum": ["root-ca", "intermediate-ca"]}}
_OCSP_OK = {"description": "OCSPResponse (RFC 6960)", "content": {"application/ocsp-response": {}}}
_PATH_TEXT = {"type": "string", "minLength": 1, "maxLength": fields.MAX_RECORD_ID}
_SESSION_ID = {"name": "session_id", "in": "path", "required": True,
               "schema": {"type": "string", "pattern": f"^{fields.SESSION_ID.pattern}$"}}
_XML = {"schema": {"type": "string"}}
_XML_CONTENT = {"application/xml": _XML, "text/xml": _XML}
_XML_BODY = {"required": True, "content": _XML_CONTENT}
_XML_OK = {"description": "The signed XML record", "content": {"application/xml": _XML},
           "headers": _PDF_OK["headers"]}


def _paths() -> dict[str, Any]:
    sign_errors = ("400", "409", "413", "415", "422", "503")
    report = _json(answers.ValidationReport)
    return {
        "/healthz": {"get": _op("Liveness", None, _json(answers.Health))},
        "/readyz": {"get": _op("Readiness: database, each key alias, TSA", None, _json(answers.Readiness))},
        "/metrics": {"get": _op("Prometheus metrics", None, {"description": "text/plain exposition format"})},
        "/tsa": {"post": _op("Built-in RFC 3161 TSA", None,
                             {"description": "TimeStampResp", "content": {"application/timestamp-reply": {}}},
                             ("404", "415", "429"),
                             requestBody=_body(_BINARY, "application/timestamp-query"))},
        "/": {"get": _op("Verification page (Vietnamese and English)", None, {"description": "HTML"})},
        "/page/verify": {"post": _op(
            "Verification for the public page: a PDF, or a JWS (alone or with its payload)", None, report,
            ("400", "404", "413", "415", "429"), parameters=[_LANGUAGE],
            requestBody={"required": True, "content": {
                "application/pdf": {"schema": _BINARY},
                "application/json": {"schema": {"anyOf": [_ref(models.PageVerifyRequest), _ref(models.Jws)]}},
                **_XML_CONTENT}})},
        "/api/v1/openapi.json": {"get": _op("This document", None, _json())},
        "/api/v1/keys": {"get": _op("Key aliases the caller may use", "his, admin", _json(answers.Keys))},
        "/api/v1/sign/pdf": {"post": _op(
            "Sign a PDF (PAdES)", "his", _PDF_OK, sign_errors,
            parameters=[*query_parameters(models.SignPdfQuery), _IDEMPOTENCY], requestBody=_PDF_BODY)},
        "/api/v1/sign/json": {"post": _op(
            "Sign a JSON record (JWS / JAdES)", "his", _json(answers.SignJsonAnswer), sign_errors,
            parameters=[_IDEMPOTENCY], requestBody=_body(_ref(models.SignJsonRequest)))},
        "/api/v1/sign/xml": {"post": _op(
            "Sign an XML record: the health-insurance facility signature in CHUKYDONVI (bhyt) or XAdES",
            "his", _XML_OK, sign_errors,
            parameters=[*query_parameters(models.SignXmlQuery), _IDEMPOTENCY], requestBody=_XML_BODY)},
        "/api/v1/verify/xml": {"post": _op("Validate the XML signatures of a record", "his, auditor, admin",
                                           report, ("400", "413", "415"), requestBody=_XML_BODY,
                                           parameters=[_LANGUAGE])},
        "/api/v1/extend/pdf": {"post": _op(
            "Extend a signed PDF: validation data (B-LT) and a fresh archive timestamp (B-LTA)", "his",
            {**_PDF_OK, "description": "The extended PDF"}, ("400", "409", "413", "415", "503"),
            parameters=[*query_parameters(models.ExtendPdfQuery), _IDEMPOTENCY], requestBody=_PDF_BODY)},
        "/api/v1/signing-sessions": {"post": _op(
            "Start a signing session: the clinician's token (certificate_chain) or a remote signing "
            "provider (signer: the clinician confirms on the phone, kyso completes the session)", "his",
            {"description": "Created", "content": {"application/json": {"schema": {
                "anyOf": [_ref(answers.SessionStarted), _ref(answers.RemoteSessionStarted)]}}}},
            ("400", "403", "409", "413", "415", "422", "503"), status="201",
            parameters=[_IDEMPOTENCY], requestBody=_body(_ref(models.SessionStartRequest)))},
        "/api/v1/signing-sessions/{session_id}": {"get": _op(
            "A session's status (pending, completed, rejected, expired, failed); a remote session's "
            "signed documents once completed", "his", _json(answers.SessionStatus), ("404",),
            parameters=[_SESSION_ID])},
        "/api/v1/signing-sessions/{session_id}/complete": {"post": _op(
            "Complete a signing session with the token's signatures", "his", _json(answers.SessionCompleted),
            ("400", "404", "409", "413", "415", "422", "503"),
            parameters=[_SESSION_ID, _IDEMPOTENCY],
            requestBody=_body(_ref(models.SessionCompleteRequest)))},
        "/api/v1/audit/checkpoint": {
            "get": _op(
                "A signed checkpoint of the log's size now: made on demand at most once per [audit] "
                "on_demand_seconds; within that window the latest, with the entries it does not cover",
                "auditor, admin", {**_json(answers.CurrentCheckpoint), "headers": _CHECKPOINT_HEADERS},
                ("404", "503")),
            "post": _op("Make a signed, timestamped checkpoint now", "admin", _json(answers.Checkpoint, "Created"),
                        ("503",), status="201")},
        "/api/v1/audit/proof/inclusion": {"get": _op(
            "RFC 9162 inclusion proof", "auditor, admin", _json(answers.InclusionProof), ("400", "404"),
            parameters=query_parameters(models.InclusionQuery))},
        "/api/v1/audit/proof/consistency": {"get": _op(
            "RFC 9162 consistency proof", "auditor, admin", _json(answers.ConsistencyProof), ("400", "404"),
            parameters=query_parameters(models.ConsistencyQuery))},
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
            requestBody=_body(_BINARY, "application/ocsp-request"))},
        "/pki/ocsp/{encoded}": {"get": _op(
            "Dev PKI: OCSP by GET (RFC 6960 A.1: base64 of the DER request); 404 unless dev_pki", None,
            _OCSP_OK, ("404",),
            parameters=[{"name": "encoded", "in": "path", "required": True, "schema": {"type": "string"}}])},
        "/api/v1/verify/pdf": {"post": _op("Validate a signed PDF", "his, auditor, admin", report,
                                           ("400", "413", "415"), requestBody=_PDF_BODY,
                                           parameters=[_LANGUAGE])},
        "/api/v1/verify/json": {"post": _op(
            "Validate a JWS", "his, auditor, admin", report, ("400", "413", "415"), parameters=[_LANGUAGE],
            requestBody=_body(_ref(models.VerifyJsonRequest)))},
        "/api/v1/records": {"get": _op(
            "Records by their newest signature, newest first, paged; with extend_before, the records "
            "whose newest signed PDF must be extended before it, soonest first",
            "his, auditor, admin",
            {"description": "OK", "content": {"application/json": {"schema": {
                "anyOf": [_ref(answers.RecordList), _ref(answers.RecordsDue)]}}}},
            ("400",), parameters=query_parameters(models.RecordsQuery))},
        "/api/v1/records/{record_id}": {"get": _op(
            "Signatures made for a record, oldest first", "his, auditor, admin", _json(answers.RecordSignatures),
            ("404",), parameters=[{"name": "record_id", "in": "path", "required": True, "schema": _PATH_TEXT}])},
        "/api/v1/audit/entries": {"get": _op(
            "Audit entries in order", "auditor, admin", _json(answers.AuditEntries), ("400",),
            parameters=query_parameters(models.EntriesQuery))},
        "/api/v1/audit/export": {"get": _op(
            "The whole log as JSON Lines, entries then checkpoints; the last checkpoint covers the last entry",
            "auditor, admin",
            {"description": "JSON Lines", "content": {"application/jsonl": {}}}, ("503",))},
    }


@cache
def schemas() -> dict[str, Any]:
    """``components/schemas``: every request and answer model, and what they refer to."""
    requests = [(m, "validation") for m in _REQUESTS]
    answered = [(m, "serialization") for m in _ANSWERS]
    _, generated = models_json_schema([*requests, *answered], ref_template=_REF)  # type: ignore[list-item]
    return generated["$defs"]


def document() -> dict[str, Any]:
    paths = _paths()
    paths["/readyz"]["get"]["responses"]["503"] = _json(answers.Readiness, "Not ready: the failing checks")
    return {
        "openapi": "3.1.0",
        "info": {"title": "kyso", "version": __version__,
                 "description": "Signing and record-integrity service for electronic medical records."},
        "servers": [{"url": "/"}],
        "security": [{"apiKey": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"apiKey": {"type": "http", "scheme": "bearer",
                                           "description": "API key made by `kyso clients add`"}},
            "responses": {"Problem": {"description": "RFC 9457 problem", "content": {
                "application/problem+json": {"schema": _ref(answers.Problem)}}}},
            "schemas": schemas(),
        },
    }


@bp.get("/openapi.json")
def openapi_json():
    return jsonify(document())
