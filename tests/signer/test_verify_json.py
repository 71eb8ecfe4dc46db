"""Verification of JWS / JAdES signatures over JSON records: signatures made with the dev
PKI by kyso's own signer, judged by kyso's report and cross-checked with jwcrypto."""

from __future__ import annotations

import base64
import copy
import dataclasses
import hashlib
import json
import random

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_der_x509_certificate
from jwcrypto import jwk
from jwcrypto import jws as jwcrypto_jws
from jwcrypto.common import JWSEHeaderParameter
from support import CORPUS

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.errors import InvalidJson, InvalidRequest, KysoError
from kyso.formats import b64url, b64url_decode, canonical_json
from kyso.keystore.base import SigningKey
from kyso.keystore.software import load_software_key
from kyso.signer.jades import sign_json
from kyso.signer.verify.json import verify_json

RECORDS = CORPUS / "records"
PKI = dev_pki_dir()


@pytest.fixture(scope="module")
def record() -> dict:
    return json.loads((RECORDS / "transfer-record.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def signed(record, dev_key, timestamper):
    """``(alias, level, detached) -> SignedJson``, each made once."""
    cache = {}

    def get(alias: str, level: str = "B-B", detached: bool = False):
        if (alias, level, detached) not in cache:
            cache[(alias, level, detached)] = sign_json(
                record, dev_key(alias), level, detached, timestamper
            )
        return cache[(alias, level, detached)]

    return get


def only(report):
    assert len(report.signatures) == 1
    return report.signatures[0]


def resign(key: SigningKey, header: dict, payload_b64: str) -> dict:
    """A JWS with ``header`` as protected header, really signed by ``key``."""
    protected = b64url(canonical_json(header))
    raw = key.sign(f"{protected}.{payload_b64}".encode("ascii"), "pkcs1v15")
    return {"protected": protected, "payload": payload_b64, "signature": b64url(raw)}


def protected_of(jws: dict) -> dict:
    return json.loads(b64url_decode(jws["protected"]))


@pytest.mark.parametrize("alias", ["hospital-seal", "lab-seal"])
@pytest.mark.parametrize("level", ["B-B", "B-T"])
@pytest.mark.parametrize("detached", [False, True], ids=["attached", "detached"])
def test_rsa_and_ec_signatures_pass_attached_and_detached(
    signed, record, settings, dev_key, alias, level, detached
):
    made = signed(alias, level, detached)
    report = verify_json(made.jws, record if detached else None, settings)
    sig = only(report)
    assert report.indication == sig.indication == "TOTAL_PASSED"
    assert (
        report.document_sha256
        == made.payload_sha256
        == hashlib.sha256(canonical_json(record)).hexdigest()
    )
    assert sig.id == made.signature_sha256
    assert (sig.intact, sig.trusted, sig.level) == (True, True, level)
    assert (sig.field, sig.coverage, sig.modifications) == (None, None, None)
    assert sig.signer.sha256 == dev_key(alias).info.cert_sha256
    assert (sig.timestamp is not None) == (level == "B-T")
    if sig.timestamp:
        assert sig.timestamp.valid and sig.signing_time == sig.timestamp.time


def test_a_pkcs1_v15_key_alias_verifies(record, settings):
    key = load_software_key(
        "v15-seal", PKI / "hospital-seal.key.pem", DEV_PASSPHRASE, PKI / "hospital-seal.cert.pem",
        (str(PKI / "chain.pem"),), rsa_scheme="pkcs1v15",
    )  # fmt: skip
    made = sign_json(record, key, "B-B")
    assert protected_of(made.jws)["alg"] == "RS256"
    assert verify_json(made.jws, None, settings).indication == "TOTAL_PASSED"


def jwcrypto_verifies(jws: dict, cert_b64: str, detached_payload: bytes | None = None) -> bool:
    """The independent verdict of jwcrypto, with ``sigT`` registered as understood."""
    cert = load_der_x509_certificate(base64.b64decode(cert_b64))
    pem_key = cert.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = jwcrypto_jws.JWS(
        header_registry={"sigT": JWSEHeaderParameter("signing time", True, True, None)}
    )
    token.deserialize(json.dumps(jws))
    try:
        token.verify(jwk.JWK.from_pem(pem_key), detached_payload=detached_payload)
    except jwcrypto_jws.InvalidJWSSignature:
        return False
    return True


def test_jwcrypto_agrees_on_valid_and_tampered_signatures(signed, record, settings):
    made = signed("lab-seal", "B-T")
    x5c0 = protected_of(made.jws)["x5c"][0]
    tampered = dict(made.jws, payload=b64url(canonical_json({**record, "tampered": True})))
    assert jwcrypto_verifies(made.jws, x5c0)
    assert only(verify_json(made.jws, None, settings)).intact
    assert not jwcrypto_verifies(tampered, x5c0)
    assert not only(verify_json(tampered, None, settings)).intact


def test_json_text_and_compact_serialization_are_accepted(signed, settings):
    made = signed("hospital-seal")
    compact = f"{made.jws['protected']}.{made.jws['payload']}.{made.jws['signature']}"
    assert verify_json(json.dumps(made.jws), None, settings).indication == "TOTAL_PASSED"
    assert verify_json(compact, None, settings).indication == "TOTAL_PASSED"


def test_changed_payload_fails_the_signature(signed, record, settings):
    made = signed("hospital-seal", "B-T")
    changed = copy.deepcopy(record)
    changed["tampered"] = "chẩn đoán đã sửa"
    tampered = dict(made.jws, payload=b64url(canonical_json(changed)))
    sig = only(verify_json(tampered, None, settings))
    assert (sig.indication, sig.sub_indication, sig.intact) == (
        "TOTAL_FAILED",
        "SIG_CRYPTO_FAILURE",
        False,
    )
    detached = only(verify_json(signed("hospital-seal", "B-B", True).jws, changed, settings))
    assert (detached.indication, detached.sub_indication) == ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")


def test_payload_sent_that_differs_from_the_attached_one_is_a_hash_failure(
    signed, record, settings
):
    sig = only(verify_json(signed("lab-seal").jws, {**record, "extra": 1}, settings))
    assert (sig.indication, sig.sub_indication, sig.intact) == (
        "TOTAL_FAILED",
        "HASH_FAILURE",
        False,
    )


def test_changed_protected_header_fails_the_signature(signed, settings):
    made = signed("lab-seal", "B-T")
    header = protected_of(made.jws)
    header["kid"] = "someone-else"
    tampered = dict(made.jws, protected=b64url(canonical_json(header)))
    sig = only(verify_json(tampered, None, settings))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")


def test_x5c_of_another_certificate_is_refused(signed, dev_key, settings):
    made = signed("hospital-seal")
    header = protected_of(made.jws)
    other = base64.b64encode(dev_key("dr-an").info.certificate.dump()).decode()
    swapped = dict(header, x5c=[other, *header["x5c"][1:]])
    sig = only(
        verify_json(resign(dev_key("hospital-seal"), swapped, made.jws["payload"]), None, settings)
    )
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "NO_SIGNING_CERTIFICATE_FOUND")
    consistent = dict(
        swapped, **{"x5t#S256": b64url(hashlib.sha256(base64.b64decode(other)).digest())}
    )
    sig = only(
        verify_json(
            resign(dev_key("hospital-seal"), consistent, made.jws["payload"]), None, settings
        )
    )
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "SIG_CRYPTO_FAILURE")


def test_signature_under_an_unknown_root_has_no_certificate_chain(
    record, foreign_signing_key, settings
):
    key, _ = foreign_signing_key
    sig = only(verify_json(sign_json(record, key, "B-B").jws, None, settings))
    assert (sig.indication, sig.sub_indication, sig.trusted) == (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        False,
    )
    assert sig.intact


def test_revoked_clinician_fails_as_revoked(record, dev_key, settings_with_crls):
    sig = only(
        verify_json(sign_json(record, dev_key("dr-revoked"), "B-B").jws, None, settings_with_crls)
    )
    assert (sig.indication, sig.sub_indication, sig.revocation) == (
        "TOTAL_FAILED",
        "REVOKED",
        "revoked",
    )


def test_revocation_good_unknown_and_required(signed, settings, settings_with_crls):
    jws = signed("lab-seal").jws
    assert only(verify_json(jws, None, settings_with_crls)).revocation == "good"
    assert only(verify_json(jws, None, settings)).revocation == "unknown"
    required = only(verify_json(jws, None, dataclasses.replace(settings, revocation="require")))
    assert (required.indication, required.sub_indication) == ("INDETERMINATE", "TRY_LATER")


def test_timestamp_of_another_signature_is_not_valid(signed, settings):
    made = signed("hospital-seal", "B-T")
    foreign_token = signed("lab-seal", "B-T").jws["header"]
    sig = only(verify_json(dict(made.jws, header=foreign_token), None, settings))
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "SIG_CONSTRAINTS_FAILURE")
    assert sig.timestamp is not None and not sig.timestamp.valid


def test_unreadable_timestamp_is_a_format_failure(signed, settings):
    made = signed("hospital-seal", "B-T")
    broken = dict(made.jws, header={"etsiU": [{"sigTst": {"tstTokens": [{"val": "AAAA"}]}}]})
    sig = only(verify_json(broken, None, settings))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "FORMAT_FAILURE")


def test_unsupported_algorithm_is_a_format_failure(signed, settings):
    made = signed("hospital-seal")
    header = dict(protected_of(made.jws), alg="none")
    jws = dict(made.jws, protected=b64url(canonical_json(header)))
    sig = only(verify_json(jws, None, settings))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "FORMAT_FAILURE")


def test_registered_is_looked_up_with_the_hash_of_the_signature_member(signed, settings):
    made = signed("lab-seal", "B-T")
    calls = []

    def registry(candidates):
        calls.append(candidates)
        return {"audit_seq": 17, "record_id": "transfer/9"}

    sig = only(verify_json(made.jws, None, settings, registry))
    assert calls == [[hashlib.sha256(made.jws["signature"].encode("ascii")).hexdigest()]]
    assert sig.to_json()["registered"] == {"audit_seq": 17, "record_id": "transfer/9"}


@pytest.mark.parametrize(
    "broken",
    [
        [],
        {"payload": "e30"},
        {"protected": "!!", "signature": "AAAA"},
        {"protected": b64url(b"[1, 2]"), "signature": "AAAA"},
        {"protected": b64url(b"not json"), "signature": "AAAA"},
        {
            "protected": b64url(b'{"alg": "RS256", "x5c": ["bm90IGEgY2VydA=="]}'),
            "signature": "AAAA",
        },
        {"signatures": [], "payload": "e30"},
    ],
    ids=[
        "list",
        "no-signature",
        "bad-base64",
        "header-not-object",
        "header-not-json",
        "x5c-garbage",
        "general",
    ],
)
def test_malformed_jws_is_an_invalid_request(settings, broken):
    with pytest.raises(InvalidRequest):
        verify_json(broken, {"a": 1}, settings)


def test_jws_text_that_is_not_json_is_invalid_json(settings):
    with pytest.raises(InvalidJson):
        verify_json("{not json", None, settings)


def test_detached_jws_without_its_payload_is_an_invalid_request(signed, settings):
    with pytest.raises(InvalidRequest, match="detached"):
        verify_json(signed("lab-seal", "B-B", True).jws, None, settings)


def test_hostile_variations_get_a_report_or_a_kyso_error_and_never_pass_if_signed_parts_changed(
    signed, settings
):
    rng = random.Random(20261123)
    original = signed("lab-seal", "B-T").jws
    alphabet = "AZaz09-_=+/!{ "
    junk = [None, 1, "x", [], {}, [1], {"etsiU": [1]}, ["AAAA"], True]
    for _ in range(150):
        jws = copy.deepcopy(original)
        member = rng.choice(["protected", "payload", "signature", "header"])
        if member == "header" or rng.random() < 0.2:
            jws[member] = rng.choice(junk)
        else:
            chars = list(jws[member])
            position = rng.randrange(len(chars))
            chars[position : position + rng.randrange(3)] = rng.choice(alphabet)
            jws[member] = "".join(chars)
        try:
            report = verify_json(jws, None, settings)
        except KysoError:
            continue
        if any(jws.get(m) != original[m] for m in ("protected", "payload", "signature")):
            assert report.indication != "TOTAL_PASSED", jws


def test_each_signature_names_its_own_second_and_the_keys_certificates(dev_key) -> None:
    from datetime import UTC, datetime, timedelta

    from kyso.signer.jades import prepare_jws

    info = dev_key("lab-seal").info
    first = datetime(2026, 12, 2, 8, 0, 0, 250_000, tzinfo=UTC)
    headers = [
        json.loads(b64url_decode(prepare_jws({"a": 1}, info, moment).protected_b64))
        for moment in (first, first + timedelta(milliseconds=500), first + timedelta(seconds=1))
    ]
    assert [h["sigT"] for h in headers] == [
        "2026-12-02T08:00:00Z", "2026-12-02T08:00:00Z", "2026-12-02T08:00:01Z",
    ]  # fmt: skip
    assert headers[0] == headers[1] and headers[2]["sigT"] != headers[0]["sigT"]
    other = json.loads(b64url_decode(prepare_jws({"a": 1}, dev_key("hospital-seal").info, first).protected_b64))
    assert other["kid"] == "hospital-seal" and other["alg"] == "PS256" and other["x5c"] != headers[0]["x5c"]
    assert base64.b64decode(headers[0]["x5c"][0]) == info.certificate.dump()
