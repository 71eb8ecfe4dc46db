"""A checkpoint is the log's own: its signature, timestamp and certificates, checked offline."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime

import pytest
from asn1crypto import pem
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509 import load_pem_x509_certificate

from kyso.audit.checkpoint import make_checkpoint
from kyso.audit.checkpoint_format import checkpoint_body
from kyso.audit.offline import checkpoint_trust
from kyso.audit.offline.checkpoint_trust import CheckpointTrust
from kyso.audit.offline.checkpoint_verify import CHECKPOINT_FIELDS, verify_checkpoint_signature
from kyso.audit.store import TreeState
from kyso.keystore.software import load_certificates
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import TimestampClient, TimestampSource

ORIGIN = "kyso.test/audit"
STATE = TreeState(7, hashlib.sha256(b"root").digest(), hashlib.sha256(b"head").hexdigest())


def timestamper_at(tsa_key, moment: datetime) -> TimestampClient:
    tsa = TimestampAuthority(tsa_key, clock=lambda: moment)
    return TimestampClient([TimestampSource("tsa", tsa.respond)])


@pytest.fixture(scope="module")
def keys(dev_keys):
    return dev_keys


@pytest.fixture
def signed(log_signer) -> dict:
    return make_checkpoint(STATE, ORIGIN, log_signer.key, log_signer.timestamper)


def check(cp: dict, trust=()) -> str | None:
    return verify_checkpoint_signature(cp, trust)


def test_a_checkpoint_has_exactly_the_members_of_the_spec(signed):
    assert tuple(signed) == CHECKPOINT_FIELDS
    assert signed["body"] == checkpoint_body(ORIGIN, 7, STATE.root_hash, STATE.chain_head)
    leaf = load_pem_x509_certificate(signed["certificate"].encode())
    assert "kyso" in leaf.subject.rfc4514_string()


def test_a_signed_checkpoint_verifies_against_the_dev_root_and_without_trust(signed, dev_root):
    assert check(signed, dev_root) is None
    assert check(signed) is None


def test_the_log_key_certificate_may_be_the_trust_anchor_with_the_tsa_root_beside_it(
    signed, pki, root_pem
):
    log_cert = load_certificates(pki / "audit-log.cert.pem")
    assert check(signed, log_cert + load_certificates(root_pem)) is None
    # Trusting the log key alone leaves the TSA unvouched for.
    assert "TSA certificate" in check(signed, log_cert)


def test_trust_given_as_cryptography_certificates_works(signed, root_pem):
    assert check(signed, [load_pem_x509_certificate(root_pem.read_bytes())]) is None


def test_an_unsigned_checkpoint_is_refused(signed):
    for member in ("signature", "certificate", "timestamp_token"):
        assert "missing" in check(dict(signed, **{member: ""}))


def test_a_signature_over_another_body_is_refused(signed, log_signer):
    other = make_checkpoint(
        TreeState(8, STATE.root_hash, STATE.chain_head),
        ORIGIN,
        log_signer.key,
        log_signer.timestamper,
    )
    forged = dict(
        other,
        signature=signed["signature"],
        timestamp_token=signed["timestamp_token"],
        time=signed["time"],
    )
    assert check(forged) == "its signature does not verify with the log key certificate it carries"


def test_a_timestamp_of_another_signature_is_refused(signed, log_signer):
    other = make_checkpoint(
        STATE, ORIGIN, log_signer.key, log_signer.timestamper
    )  # ECDSA: new signature
    assert "not over this signature" in check(
        dict(signed, timestamp_token=other["timestamp_token"])
    )


def test_a_corrupted_timestamp_token_is_refused(signed):
    token = bytearray(base64.b64decode(signed["timestamp_token"]))
    token[-5] ^= 0xFF  # inside the TSA's signature value
    assert "timestamp_token does not verify" in check(
        dict(signed, timestamp_token=base64.b64encode(token).decode())
    )
    assert "not base64" in check(dict(signed, timestamp_token="***"))
    assert "malformed" in check(dict(signed, timestamp_token=base64.b64encode(b"junk").decode()))


def test_a_changed_time_is_refused_because_the_timestamp_vouches_for_it(signed):
    assert "not the genTime of its timestamp" in check(
        dict(signed, time="2020-01-01T00:00:00.000000Z")
    )


def test_another_certificate_is_refused(signed, pki):
    other = (pki / "lab-seal.cert.pem").read_text()
    assert "does not verify" in check(dict(signed, certificate=other))
    assert "not PEM" in check(
        dict(signed, certificate="-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    )


def test_a_checkpoint_forged_with_another_key_fails_only_against_the_trust_anchor(
    keys, log_signer, root_pem
):
    # Someone who rewrites the log signs with a key of their own (here: a dev seal key).
    forged = make_checkpoint(STATE, ORIGIN, keys["lab-seal"], log_signer.timestamper)
    assert check(forged) is None  # intact, but whose?
    trusted = [keys["audit-log"].info.certificate, *load_certificates(root_pem)]
    assert (
        check(make_checkpoint(STATE, ORIGIN, keys["audit-log"], log_signer.timestamper), trusted)
        is None
    )
    # The dev root issued the seal key too, so trust the log key and the TSA's chain only:
    tsa_only = [keys["audit-log"].info.certificate, keys["tsa"].info.certificate]
    assert "log key certificate" in check(forged, tsa_only) and "does not chain" in check(
        forged, tsa_only
    )


def test_an_rsa_log_key_signs_with_pkcs1_v15(keys, log_signer, dev_root):
    cp = make_checkpoint(STATE, ORIGIN, keys["hospital-seal"], log_signer.timestamper)
    assert check(cp, dev_root) is None


def test_a_raw_ecdsa_signature_as_pkcs11_returns_it_is_accepted(signed, log_signer, dev_root):
    r, s = decode_dss_signature(base64.b64decode(signed["signature"]))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    # The timestamp is over the signature bytes, so the raw form needs a timestamp of its own.
    assert "not over this signature" in check(
        dict(signed, signature=base64.b64encode(raw).decode())
    )
    token = log_signer.timestamper.timestamp(hashlib.sha256(raw).digest())
    gen_time = token["content"]["encap_content_info"]["content"].parsed["gen_time"].native
    cp = dict(
        signed,
        signature=base64.b64encode(raw).decode(),
        timestamp_token=base64.b64encode(token.dump()).decode(),
        time=gen_time.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    )
    assert check(cp, dev_root) is None


def test_a_timestamp_outside_the_certificates_validity_is_refused(keys, dev_root):
    late = timestamper_at(keys["tsa"], datetime(2060, 1, 1, tzinfo=UTC))
    cp = make_checkpoint(STATE, ORIGIN, keys["audit-log"], late)
    assert "was not valid at 2060-01-01" in check(cp, dev_root)


def test_paths_are_validated_once_per_certificate(signed, dev_root, log_signer):
    trust = CheckpointTrust(dev_root)
    assert check(signed, trust) is None
    cached = dict(trust._windows)
    assert len(cached) == 2  # the log key and the TSA
    again = make_checkpoint(STATE, ORIGIN, log_signer.key, log_signer.timestamper)
    assert check(again, trust) is None and trust._windows == cached


def test_the_certificate_member_carries_the_intermediate_for_offline_path_building(signed):
    blocks = list(pem.unarmor(signed["certificate"].encode(), multiple=True))
    assert len(blocks) == 2  # the log key, its issuing CA; the root comes from --trust


def test_a_checkpoint_is_checked_once_however_often_it_is_asked(signed, dev_root, monkeypatch):
    trust = CheckpointTrust(dev_root)
    calls: list[str] = []
    real = checkpoint_trust._authenticity
    monkeypatch.setattr(
        checkpoint_trust, "_authenticity", lambda cp, t: calls.append(cp["time"]) or real(cp, t)
    )
    assert check(signed, trust) is None and check(dict(signed), trust) is None
    assert len(calls) == 1 and trust.signers and trust.tsas
    forged = dict(signed, signature=base64.b64encode(b"\x00" * 64).decode())
    assert "signature does not verify" in check(forged, trust)
    assert "signature does not verify" in check(forged, trust)
    assert len(calls) == 2
