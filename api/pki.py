"""/pki: the dev PKI's CA certificates, CRLs and OCSP responder, as its certificates name them.

The dev certificates point their AIA and CRL distribution points here
(``http://127.0.0.1:8080/pki/...`` for the shipped PKI), so pdfsig, pyHanko and OpenSSL
can check revocation offline against a running ``kyso serve``. Served only when
``dev_pki`` is on; a production instance answers 404 (its CA publishes its own).

- ``GET /pki/<ca>.cer``: the CA certificate (DER), for ``caIssuers``;
- ``GET /pki/<ca>.crl``: a CRL issued now (DER), ``nextUpdate`` in 7 days;
- ``POST /pki/ocsp`` and ``GET /pki/ocsp/<base64 request>``: RFC 6960 (appendix A.1).
"""

from __future__ import annotations

import base64
import binascii

from flask import Blueprint, Response, current_app, request

from kyso.certs.responder import DevRevocation
from kyso.errors import NotFound, UnsupportedMediaType

bp = Blueprint("pki", __name__)

OCSP_REQUEST = "application/ocsp-request"
OCSP_RESPONSE = "application/ocsp-response"


def _revocation() -> DevRevocation:
    source = current_app.extensions["kyso"].dev_revocation
    if source is None:
        raise NotFound("this instance does not serve the dev PKI (dev_pki is off)")
    return source


def _authority(source: DevRevocation, name: str) -> str:
    if name not in source.authorities:
        raise NotFound(f"no CA named {name!r} in the dev PKI")
    return name


@bp.get("/<name>.cer")
def ca_certificate(name: str) -> Response:
    source = _revocation()
    der = source.ca_certificate(_authority(source, name))
    return Response(der, mimetype="application/pkix-cert")


@bp.get("/<name>.crl")
def crl(name: str) -> Response:
    source = _revocation()
    der = source.crl(_authority(source, name))
    resp = Response(der, mimetype="application/pkix-crl")
    resp.headers["Cache-Control"] = "no-cache"
    return resp


@bp.post("/ocsp")
def ocsp_post() -> Response:
    source = _revocation()
    if request.mimetype != OCSP_REQUEST:
        raise UnsupportedMediaType(f"send an RFC 6960 request as {OCSP_REQUEST}")
    return _ocsp_answer(source.ocsp_response(request.get_data()))


@bp.get("/ocsp/<path:encoded>")
def ocsp_get(encoded: str) -> Response:
    source = _revocation()
    # RFC 6960 A.1: base64 of the DER request, URL-encoded (Flask has undone the latter).
    # Some clients send the URL-safe alphabet or drop the padding: accept both.
    text = encoded.strip().replace("-", "+").replace("_", "/")
    try:
        der = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        der = b""  # answered as malformedRequest, as the RFC wants
    return _ocsp_answer(source.ocsp_response(der))


def _ocsp_answer(der: bytes) -> Response:
    resp = Response(der, mimetype=OCSP_RESPONSE)
    resp.headers["Cache-Control"] = "no-cache"
    return resp
