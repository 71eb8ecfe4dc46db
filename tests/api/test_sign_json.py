"""JSON records signed as JWS / JAdES, checked with jwcrypto (kyso itself uses joserfc)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509
from jwcrypto import jwk, jws
from jwcrypto.common import JWSEHeaderParameter
from support import Service, corpus_records
from verifiers import openssl_ts_verify

from kyso.formats import canonical_json

pytestmark = pytest.mark.each_database  # the tests that use `service`


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_json(service: Service, body: dict, client: str = "his"):
    return service.client.post("/api/v1/sign/json", json=body, headers=service.auth(client))


def jwcrypto_verify(signature: dict, detached_payload: bytes | None = None) -> jws.JWS:
    """Verify with the public key of x5c[0], sigT registered as understood (RFC 7515 4.1.11)."""
    header = json.loads(b64url_decode(signature["protected"]))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    key = jwk.JWK.from_pyca(leaf.public_key())
    token = jws.JWS(header_registry={"sigT": JWSEHeaderParameter("Signing time (JAdES)", True, True, None)})
    token.allowed_algs = ["RS256", "PS256", "ES256"]
    token.deserialize(json.dumps(signature))
    token.verify(key, detached_payload=detached_payload)
    return token


@pytest.mark.parametrize("path", corpus_records(), ids=lambda p: p.name)
@pytest.mark.parametrize("key", ["hospital-seal", "lab-seal"])
def test_corpus_records_are_signed_at_b_t_and_verify_in_jwcrypto_and_openssl_ts(
    service: Service, path: Path, key: str, tmp_path: Path, root_pem: Path, chain_pem: Path
) -> None:
    record = json.loads(path.read_text(encoding="utf-8"))
    resp = sign_json(service, {"key": key, "payload": record, "record_id": f"records/{path.stem}"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    body = resp.json
    signature = body["signature"]
    jcs = canonical_json(record)
    assert b64url_decode(signature["payload"]) == jcs
    assert body["payload_sha256"] == hashlib.sha256(jcs).hexdigest()
    assert isinstance(body["audit_seq"], int)

    header = json.loads(b64url_decode(signature["protected"]))
    assert header["alg"] == ("ES256" if key == "lab-seal" else "PS256")  # RSA: PSS by default
    assert header["kid"] == key
    assert header["crit"] == ["sigT"]
    assert header["sigT"].endswith("Z") and len(header["sigT"]) == 20
    leaf_der = base64.b64decode(header["x5c"][0])
    assert header["x5t#S256"] == base64.urlsafe_b64encode(hashlib.sha256(leaf_der).digest()).rstrip(b"=").decode()
    assert len(header["x5c"]) == 2  # leaf and intermediate, not the root
    jwcrypto_verify(signature)

    token_b64 = signature["header"]["etsiU"][0]["sigTst"]["tstTokens"][0]["val"]
    token = base64.b64decode(token_b64)
    cms.ContentInfo.load(token)  # it is a CMS ContentInfo
    result = openssl_ts_verify(token, signature["signature"].encode("ascii"), root_pem, chain_pem, tmp_path)
    assert "Verification: OK" in result.stdout, result.stdout + result.stderr


def test_a_detached_signature_omits_the_payload_and_verifies_with_it(service: Service) -> None:
    record = {"bệnh_nhân": "Nguyễn Thị Hoa", "kết_quả": [5.6, 3.9]}
    resp = sign_json(service, {"key": "lab-seal", "payload": record, "detached": True, "level": "B-B"})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signature = resp.json["signature"]
    assert "payload" not in signature
    assert "header" not in signature  # B-B: no timestamp
    jwcrypto_verify(signature, detached_payload=canonical_json(record))
    with pytest.raises(jws.InvalidJWSSignature):
        jwcrypto_verify(signature, detached_payload=canonical_json({**record, "kết_quả": [5.7, 3.9]}))


def test_key_order_and_whitespace_do_not_change_the_signed_bytes(service: Service) -> None:
    a = sign_json(service, {"key": "lab-seal", "payload": {"b": 1, "a": "ă"}, "level": "B-B"}).json
    b = service.client.post(
        "/api/v1/sign/json",
        data='{ "payload" : {"a":"ă",   "b":1.0}, "key":"lab-seal", "level":"B-B"}'.encode(),
        headers={**service.auth(), "Content-Type": "application/json"},
    ).json
    assert a["signature"]["payload"] == b["signature"]["payload"]
    assert a["payload_sha256"] == b["payload_sha256"]


def test_pkcs1_v15_is_used_where_the_alias_keeps_it(tmp_path: Path) -> None:
    from dataclasses import replace

    from support import make_config

    from kyso.service import Actor, Kyso

    config = make_config(tmp_path)
    keys = tuple(replace(k, rsa_scheme="pkcs1v15") if k.alias == "hospital-seal" else k for k in config.keys)
    kyso = Kyso.open(replace(config, keys=keys))
    try:
        signed, _ = kyso.sign_json(Actor("test"), "hospital-seal", {"x": 1}, "B-B", False, None)
        default, _ = kyso.sign_json(Actor("test"), "dr-an", {"x": 1}, "B-B", False, None)
    finally:
        kyso.close()
    assert json.loads(b64url_decode(signed.jws["protected"]))["alg"] == "RS256"
    jwcrypto_verify(signed.jws)
    assert json.loads(b64url_decode(default.jws["protected"]))["alg"] == "PS256"
    jwcrypto_verify(default.jws)
