"""Request and response models of the HTTP API (pydantic), the one source of its schemas.

Views parse JSON bodies and query strings with :func:`parse_body` / :func:`parse_query`;
:mod:`kyso.api.openapi` builds the document's schemas and query parameters from the same
classes, so what the document accepts and what the API accepts cannot drift apart
(``tests/api/test_schema_agrees.py`` runs schemathesis over the app to hold them to it).

A request the models refuse is ``400 invalid_request`` (``invalid_json`` when the body is
not a JSON object, or a JWS sent as JSON text in a string does not parse) with an RFC 9457 ``errors`` member: one ``{"pointer", "detail"}`` per
problem, the pointer a JSON Pointer into the body (``#/documents/0/pdf``) or the query
parameter's name. A refusal for what a schema cannot say (an unknown key alias, a PDF
that does not parse, a certificate that is not one) has its own code and no ``errors``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from flask import request
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    ValidationError,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from kyso.api import fields
from kyso.config import KEY_ALIAS
from kyso.errors import InvalidJson, InvalidRequest
from kyso.formats import parse_json_strict

MAX_SEQ = 2**62

Base64 = Annotated[
    str, Field(pattern=r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$")
]
Base64OrUrl = Annotated[str, Field(pattern=r"^[A-Za-z0-9+/_-]+={0,2}$")]
Base64Url = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$")]
Hex64 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# The limits of kyso.api.fields, which the views still apply for what a JSON Schema pattern
# cannot say portably (no control, format or unassigned character; no space at either end).
RecordId = Annotated[str, Field(min_length=1, max_length=fields.MAX_RECORD_ID)]
KeyAlias = Annotated[str, Field(pattern=f"^{KEY_ALIAS.pattern}$", description="Key alias")]
Text = Annotated[str, Field(max_length=fields.MAX_TEXT)]
FieldName = Annotated[str, Field(min_length=1, max_length=fields.MAX_FIELD_NAME)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
Pem = Annotated[str, Field(pattern=r"-----BEGIN CERTIFICATE-----", max_length=65536)]


class Model(BaseModel):
    """A request member set: exact (unknown members are refused) and strictly typed."""

    model_config = ConfigDict(extra="forbid", strict=True)


# -- request bodies ------------------------------------------------------------


class SignJsonRequest(Model):
    """``POST /api/v1/sign/json``."""

    key: KeyAlias
    payload: JsonValue = Field(description="The JSON record to sign")
    level: Literal["B-B", "B-T"] = "B-T"
    record_id: RecordId | None = None
    detached: bool = False


class Jws(BaseModel):
    """A JWS in flattened JSON serialization (RFC 7515 section 7.2.2)."""

    model_config = ConfigDict(extra="allow", strict=True)

    protected: Base64Url
    payload: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]*$")] | None = None
    signature: Base64Url
    header: dict[str, JsonValue] | None = None


CompactJws = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+$",
        description="A JWS in compact serialization (RFC 7515 section 7.1)",
    ),
]


def _json_text(value: Any) -> Any:
    """A flattened JWS sent as JSON text in a string is taken as the object it holds."""
    if isinstance(value, str) and value.lstrip().startswith("{"):
        try:
            return parse_json_strict(value.encode("utf-8"))
        except InvalidJson as exc:
            # Its own error type: the refusal is then invalid_json, as for a body that is not JSON.
            raise PydanticCustomError("invalid_json", "{detail}", {"detail": exc.detail}) from None
    return value


AnyJws = Annotated[Jws | CompactJws, BeforeValidator(_json_text)]


class VerifyJsonRequest(Model):
    """``POST /api/v1/verify/json``: the JWS (flattened, or compact) and, when it is
    detached, the payload."""

    signature: AnyJws
    payload: JsonValue = None


class PageVerifyRequest(BaseModel):
    """What the verification page posts as JSON when it is not a bare JWS: a JWS with its
    payload, or a ``sign/json`` answer kept as a file (its other members are ignored)."""

    model_config = ConfigDict(extra="allow", strict=True)

    signature: AnyJws
    payload: JsonValue = None


class PdfDocument(Model):
    record_id: RecordId | None = None
    name: Name | None = Field(None, description="Shown to the clinician by a remote provider")
    pdf: Base64 = Field(description="The PDF, base64")


class JsonDocument(Model):
    record_id: RecordId | None = None
    name: Name | None = None
    json_: JsonValue = Field(alias="json", description="The JSON record")


class XmlDocument(Model):
    record_id: RecordId | None = None
    name: Name | None = None
    xml: Base64 = Field(description="The XML record, base64")
    profile: Literal["bhyt", "xades"] | None = Field(
        None, description="bhyt (default when the record has CHUKYDONVI) or xades"
    )


class RemoteSigner(Model):
    provider: Name = Field(description="A configured [[remote_signing]] provider")
    user_id: Name = Field(description="The clinician's id at that provider")


class SessionStartRequest(Model):
    """``POST /api/v1/signing-sessions``: exactly one of ``certificate_chain`` (the
    clinician's token signs) and ``signer`` (a remote provider: kyso completes it)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"oneOf": [{"required": ["certificate_chain"]}, {"required": ["signer"]}]},
    )

    # Either member may be left out, not sent as null (SkipJsonSchema: no null in the schema).
    certificate_chain: Annotated[list[Pem], Field(min_length=1)] | SkipJsonSchema[None] = Field(
        None, description="PEM, the signer's first"
    )
    signer: RemoteSigner | SkipJsonSchema[None] = None
    description: Text | None = Field(None, description="What a remote provider shows the clinician")
    documents: list[PdfDocument | JsonDocument | XmlDocument] = Field(min_length=1, max_length=100)
    level: Literal["B-B", "B-T"] = "B-T"
    rsa_scheme: Literal["pss", "pkcs1v15"] | SkipJsonSchema[None] = Field(
        None, description="RSA keys: pss unless asked (a remote provider: as it signs)"
    )
    reason: Text | None = None
    location: Text | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_signer(cls, body: Any) -> Any:
        """Before the members' shapes: which kind of session it is comes first."""
        if isinstance(body, dict) and ("certificate_chain" in body) == ("signer" in body):
            raise ValueError(
                "send exactly one of 'certificate_chain' (the clinician's token signs) and "
                "'signer' ({provider, user_id}: the clinician signs through a remote provider)"
            )
        return body


class SessionCompleteRequest(Model):
    """``POST /api/v1/signing-sessions/<id>/complete``: one signature per document, in order."""

    signatures: list[Base64OrUrl] = Field(max_length=100)


# -- query strings -------------------------------------------------------------


class Query(BaseModel):
    """Query parameters: strings from the URL, converted (``"7"`` is 7), unknown ones ignored."""

    model_config = ConfigDict(extra="ignore")


class SignPdfQuery(Query):
    key: KeyAlias
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = Field("B-T", description="PAdES level")
    record_id: RecordId | None = Field(None, description="Record identifier (may contain /)")
    reason: Text | None = None
    location: Text | None = None
    field: FieldName | None = Field(None, description="Signature field name")
    certify: bool = Field(False, description="Certify (DocMDP) on the first signature")
    visible: bool = Field(False, description="A visible stamp")
    page: int = Field(1, ge=1, le=100_000, description="1-based page of the stamp")
    box: Annotated[
        str,
        Field(
            pattern=r"^ *-?\d{1,5}(\.\d{1,3})? *(, *-?\d{1,5}(\.\d{1,3})? *){3}$",
            description="x1,y1,x2,y2 in PDF points, x2 > x1 and y2 > y1",
        ),
    ] | None = None
    repair: bool = Field(False, description="Rebuild a damaged PDF and sign the rebuilt file")


class SignXmlQuery(Query):
    key: KeyAlias
    level: Literal["B-B", "B-T"] = "B-T"
    record_id: RecordId | None = Field(None, description="Record identifier (may contain /)")
    profile: Literal["bhyt", "xades"] | None = Field(
        None, description="bhyt (default when the record has CHUKYDONVI) or xades"
    )


class ExtendPdfQuery(Query):
    level: Literal["B-LT", "B-LTA"]
    record_id: RecordId | None = None


class EntriesQuery(Query):
    after: int = Field(-1, ge=-1, le=MAX_SEQ, description="Entries with a larger seq")
    limit: int = Field(100, ge=1, le=1000)


class InclusionQuery(Query):
    seq: int = Field(ge=0, le=MAX_SEQ, description="The entry (below tree_size)")
    tree_size: int | None = Field(None, ge=1, le=MAX_SEQ, description="Default: the log's size")


class ConsistencyQuery(Query):
    first: int = Field(ge=1, le=MAX_SEQ, description="The earlier tree size (at most second)")
    second: int | None = Field(None, ge=1, le=MAX_SEQ, description="Default: the log's size")


_MOMENT = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"


class RecordsQuery(Query):
    """``GET /api/v1/records``: the listing, or with ``extend_before`` the records due."""

    limit: int | None = Field(
        None, ge=1, le=10_000, description="Default 100 (1000 with extend_before)"
    )
    cursor: str | None = Field(
        None, pattern=r"^[0-9]{1,18}$", description="The `next` of the previous page"
    )
    record_id_prefix: RecordId | None = Field(None, description="Records whose id starts so")
    since: str | None = Field(
        None, pattern=_MOMENT, description="Newest signature at or after (date or ISO 8601 time)"
    )
    until: str | None = Field(
        None, pattern=_MOMENT, description="Newest signature before (date or ISO 8601 time)"
    )
    extend_before: str | None = Field(
        None,
        pattern=_MOMENT,
        description="Instead: records whose newest signed PDF must be extended before this "
        "date or time, soonest first (not paged)",
    )


# -- parsing ---------------------------------------------------------------------

M = TypeVar("M", bound=BaseModel)


def parse_body(model: type[M], body: Any) -> M:
    """``body`` (parsed JSON) as ``model``, or ``invalid_request`` naming every problem."""
    try:
        return model.model_validate(body, by_alias=True)
    except ValidationError as exc:
        raise _refusal(exc, "#") from None


def parse_query(model: type[M]) -> M:
    """The request's query string as ``model`` (an empty value counts as not given)."""
    given = {k: v for k, v in request.args.items() if v != ""}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise _refusal(exc, None) from None


def _cut(part: Any) -> str:
    """A location part as shown back: a caller's member name at most fields.SHOWN characters."""
    text = str(part)
    return text if len(text) <= fields.SHOWN else fields.shown(text)


# Where a union was tried, pydantic names the branch in the location: not part of the body.
_BRANCHES = {"PdfDocument", "JsonDocument", "XmlDocument", "Jws", "str", "constrained-str"}


def _is_branch(part: Any) -> bool:
    return isinstance(part, str) and (part in _BRANCHES or "[" in part or part == "none")


def _refusal(exc: ValidationError, root: str | None) -> InvalidRequest | InvalidJson:
    errors, malformed = [], False
    for error in exc.errors(include_url=False):
        malformed = malformed or error["type"] == "invalid_json"
        parts = [_cut(p) for p in error["loc"] if not _is_branch(p)]
        if root is None:  # a query parameter: its name
            pointer = parts[0] if parts else ""
            where = f"query parameter {pointer!r}"
        else:
            pointer = "/".join([root, *parts])
            where = f"'{'.'.join(parts)}'" if parts else "the body"
        errors.append({"pointer": pointer, "detail": f"{where}: {error['msg']}"})
    unique = list({e["pointer"]: e for e in errors}.values())
    if malformed:  # JSON text inside a member that does not parse
        return InvalidJson("; ".join(e["detail"] for e in unique), errors=unique)
    return InvalidRequest("; ".join(e["detail"] for e in unique), errors=unique)
