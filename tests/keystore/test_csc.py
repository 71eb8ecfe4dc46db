"""Keys of kind ``csc``: a credential of a Cloud Signature Consortium API service
(certomancer-csc-dummy on loopback) used as a key alias."""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from csc_server import OAUTH_CLIENT, CscService

from kyso.config import Config, KeyConfig
from kyso.errors import ConfigError, InvalidSignature, RemoteSignerUnavailable
from kyso.keystore import load_keystore
from kyso.keystore.csc import CscKey, verifies
from kyso.signer.jades import sign_json

TOKEN = "csc-bearer-TEST-ONLY-7f3a"


def csc_config(kc: KeyConfig) -> Config:
    return Config(keys=(kc,), dev_pki=False)


@pytest.fixture
def fresh(csc_service: CscService) -> Iterator[CscService]:
    csc_service.reset()
    yield csc_service
    csc_service.reset()


def key_for(csc: CscService, label: str = "seal", **settings: object) -> CscKey:
    kc = KeyConfig(alias="remote-seal", kind="csc", url=csc.url, credential_id=csc.credential(label), **settings)  # type: ignore[arg-type]
    key = load_keystore(csc_config(kc), env={"KYSO_CSC_TOKEN": TOKEN}).get("remote-seal")
    assert isinstance(key, CscKey)
    return key


@pytest.mark.parametrize(
    ("label", "scheme"), [("seal", "pkcs1v15"), ("seal", "pss"), ("seal-ec", "ecdsa")]
)
def test_the_credential_signs_and_the_signature_verifies_with_its_certificate(fresh, label, scheme):
    key = key_for(fresh, label)
    assert key.info.kind == "csc"
    assert "TEST ONLY" in key.info.subject
    assert len(key.info.chain) == 2  # intermediate and root, as credentials/info sends them
    data = b"ho so benh an 42"
    signature = key.sign(data, scheme)
    assert verifies(key.info.certificate, hashlib.sha256(data).digest(), signature, scheme)
    if scheme == "ecdsa":
        assert signature[0] == 0x30  # DER, as CMS wants it
    assert fresh.methods() == ["credentials/info", "credentials/authorize", "signatures/signHash"]


def test_several_hashes_are_signed_under_one_authorisation_that_pins_them(fresh):
    key = key_for(fresh)
    digests = [hashlib.sha256(bytes([i])).digest() for i in range(5)]
    signatures = key.sign_digests(digests, "pkcs1v15", description="5 ho so")
    assert all(verifies(key.info.certificate, d, s, "pkcs1v15") for d, s in zip(digests, signatures, strict=True))
    assert fresh.methods().count("credentials/authorize") == 1
    assert fresh.methods().count("signatures/signHash") == 1
    authorize = next(body for method, body, _ in fresh.calls if method == "credentials/authorize")
    assert authorize["numSignatures"] == 5
    assert authorize["hash"] == [base64.b64encode(d).decode() for d in digests]  # SCAL 2
    assert authorize["description"] == "5 ho so"


def test_a_pss_signature_asks_for_rsassa_pss_with_its_parameters(fresh):
    key = key_for(fresh)
    key.sign(b"pss", "pss")
    sign_hash = next(body for method, body, _ in fresh.calls if method == "signatures/signHash")
    assert sign_hash["signAlgo"] == "1.2.840.113549.1.1.10"
    assert sign_hash["hashAlgo"] == "2.16.840.1.101.3.4.2.1"
    assert sign_hash["signAlgoParams"]


def test_the_bearer_token_is_sent_and_never_shown(fresh):
    fresh.token = TOKEN
    key = key_for(fresh, token_env="KYSO_CSC_TOKEN")
    key.sign(b"x", "pkcs1v15")
    assert {auth for _, _, auth in fresh.calls} == {f"Bearer {TOKEN}"}
    fresh.token = "another-token"
    key.forget()
    with pytest.raises(RemoteSignerUnavailable) as refused:
        key.sign(b"x", "pkcs1v15")
    assert "HTTP 401" in refused.value.detail and "invalid_token" in refused.value.detail
    assert TOKEN not in refused.value.detail


def test_a_token_file_is_read_at_each_call(fresh, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    fresh.token = "first-token"
    key = key_for(fresh, token_file=str(token_file))
    key.sign(b"x", "pkcs1v15")
    token_file.write_text("rotated-token\n")
    fresh.token = "rotated-token"
    key.sign(b"y", "pkcs1v15")
    assert fresh.calls[-1][2] == "Bearer rotated-token"


def test_oauth2_client_credentials_get_a_token_once(fresh, tmp_path):
    fresh.token = "not-yet-issued"
    secret = tmp_path / "secret"
    secret.write_text(OAUTH_CLIENT[1])
    key = key_for(fresh, client_id=OAUTH_CLIENT[0], client_secret_file=str(secret))
    key.sign(b"a", "pkcs1v15")
    key.sign(b"b", "pkcs1v15")
    assert fresh.methods().count("oauth2/token") == 1
    assert fresh.calls[-1][2] == "Bearer oauth-access-token-TEST-ONLY"


def test_a_missing_token_variable_is_a_configuration_error_at_start():
    kc = KeyConfig(alias="remote-seal", kind="csc", url="http://127.0.0.1:9/csc/v1", credential_id="c", token_env="KYSO_NOT_SET")
    with pytest.raises(ConfigError, match="KYSO_NOT_SET"):
        load_keystore(csc_config(kc), env={})


def test_an_unreachable_service_is_remote_signer_unavailable_within_the_timeout():
    kc = KeyConfig(alias="remote-seal", kind="csc", url="http://127.0.0.1:9/csc/v1", credential_id="c")
    key = load_keystore(csc_config(kc), env={}).get("remote-seal")  # loads without asking
    with pytest.raises(RemoteSignerUnavailable, match="remote-seal.*credentials/info.*cannot connect"):
        key.info  # noqa: B018
    with pytest.raises(RemoteSignerUnavailable):
        key.check()


def test_a_slow_service_is_given_up_after_the_read_timeout(fresh):
    key = key_for(fresh, timeout_seconds=0.5)
    key.info  # noqa: B018
    fresh.delay = 3
    began = time.monotonic()
    with pytest.raises(RemoteSignerUnavailable, match="no answer within 0.5 s"):
        key.sign(b"x", "pkcs1v15")
    assert time.monotonic() - began < 2


def test_a_service_that_fails_is_unavailable_and_nothing_is_returned(fresh):
    key = key_for(fresh)
    key.info  # noqa: B018
    fresh.down = True
    with pytest.raises(RemoteSignerUnavailable, match="HTTP 503"):
        key.sign(b"x", "pkcs1v15")


def test_a_signature_that_does_not_verify_is_refused(fresh):
    key = key_for(fresh)
    fresh.corrupt = True
    with pytest.raises(InvalidSignature, match="does not verify"):
        key.sign(b"x", "pkcs1v15")


def test_a_csc_key_signs_json_with_its_certificate_in_x5c(fresh):
    key = key_for(fresh, "seal-ec")
    signed = sign_json({"a": 1}, key, "B-B")
    header = base64.urlsafe_b64decode(signed.jws["protected"] + "==")
    assert b'"alg":"ES256"' in header
    assert base64.b64encode(key.info.certificate.dump()).decode().encode() in header


def test_readyz_style_check_asks_the_service_again(fresh):
    key = key_for(fresh)
    key.info  # noqa: B018
    key.check()
    assert fresh.methods() == ["credentials/info", "credentials/info"]


def test_the_service_root_is_a_file_for_other_tests(csc_service):
    assert Path(csc_service.root_pem).read_text().startswith("-----BEGIN CERTIFICATE-----")


def test_a_v2_service_gets_the_v2_names_of_the_same_fields(tmp_path):
    """CSC API v2 renames ``hash`` to ``hashes`` and ``hashAlgo`` to ``hashAlgorithmOID``:
    a url ending in /v2 speaks v2 (a small v2 service in this test; the dummy speaks v1)."""
    import datetime as dt
    import threading

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa
    from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
    from cryptography.x509.oid import NameOID
    from flask import Flask, jsonify, request
    from werkzeug.serving import make_server

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # TEST ONLY
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CSC v2 seal (TEST ONLY)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(7).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=9))
        .sign(key, hashes.SHA256())
    )
    der = base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()
    bodies: dict[str, dict] = {}
    app = Flask("csc-v2")

    @app.post("/csc/v2/credentials/info")
    def info():
        bodies["info"] = request.get_json()
        return jsonify({"key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.1"], "len": 2048},
                        "cert": {"status": "valid", "certificates": [der]}, "SCAL": "2", "multisign": 5})

    @app.post("/csc/v2/credentials/authorize")
    def authorize():
        bodies["authorize"] = request.get_json()
        return jsonify({"SAD": "sad-v2", "expiresIn": 300})

    @app.post("/csc/v2/signatures/signHash")
    def sign_hash():
        body = bodies["signHash"] = request.get_json()
        signatures = [
            base64.b64encode(key.sign(base64.b64decode(h), padding.PKCS1v15(), Prehashed(hashes.SHA256()))).decode()
            for h in body["hashes"]
        ]
        return jsonify({"signatures": signatures})

    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        kc = KeyConfig(alias="v2-seal", kind="csc", url=f"http://127.0.0.1:{server.server_port}/csc/v2", credential_id="seal")
        v2 = load_keystore(csc_config(kc), env={}).get("v2-seal")
        digest = hashlib.sha256(b"v2").digest()
        signature = v2.sign(b"v2", "pkcs1v15")
        assert verifies(v2.info.certificate, digest, signature, "pkcs1v15")
    finally:
        server.shutdown()
    assert bodies["authorize"]["hashes"] == [base64.b64encode(digest).decode()]
    assert bodies["authorize"]["hashAlgorithmOID"] == "2.16.840.1.101.3.4.2.1"
    assert bodies["signHash"]["signAlgo"] == "1.2.840.113549.1.1.1"  # the only one offered: with the hash OID
    assert bodies["signHash"]["hashAlgorithmOID"] == "2.16.840.1.101.3.4.2.1"
    assert "hash" not in bodies["signHash"] and "hashAlgo" not in bodies["signHash"]
