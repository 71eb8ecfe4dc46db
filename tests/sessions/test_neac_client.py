"""The NEAC client reads what gateways answer: VNPT's and Methics' shapes of a certificate,
the states of a transaction with and without ``tran_status``, wrapped signature values, and
errors that never show the service provider's secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from asn1crypto import algos, cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from neac_server import SP_ID, SP_SECRET, NeacGateway
from remote_support import AN, gateway, phone

from kyso.certs.devpki import DEV_PASSPHRASE
from kyso.config import Config, RemoteSigningConfig
from kyso.errors import ConfigError, RemoteSignerUnavailable
from kyso.sessions.remote.neac import NeacProvider, certificate_entry, status_answer, unwrap_cms
from kyso.sessions.remote.providers import load_providers

__all__ = ["gateway", "phone"]


def b64_cert(pki: Path, name: str) -> str:
    return base64.b64encode(asn1_x509.Certificate.load(_der(pki / f"{name}.cert.pem")).dump()).decode()


def _der(path: Path) -> bytes:
    from asn1crypto import pem

    return pem.unarmor(path.read_bytes())[2]


def test_a_certificate_is_read_from_vnpt_and_methics_shapes(pki):
    vnpt = {"cert_data": b64_cert(pki, "dr-an"), "serial_number": "52341c",
            "chain_data": {"ca_cert": b64_cert(pki, "intermediate-ca"), "root_cert": None}}
    methics = {"cert_data": b64_cert(pki, "dr-an"), "chain_data": [b64_cert(pki, "intermediate-ca"), b64_cert(pki, "root-ca")]}
    read_vnpt, read_methics = certificate_entry(vnpt), certificate_entry(methics)
    assert read_vnpt is not None and read_methics is not None
    assert len(read_vnpt.chain) == 1 and read_vnpt.credential == "52341c"
    assert len(read_methics.chain) == 2 and read_methics.credential is None
    assert certificate_entry({"cert_data": "not base64!"}) is None


SIG = {"doc_id": "a", "signature_value": base64.b64encode(b"\x01\x02").decode()}


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        ({"status_code": 200, "message": "sig_wait_for_user_confirm", "data": {"tran_status": "PENDING"}}, "pending"),
        ({"status_code": 200, "message": "SUCCESS", "data": {"tran_status": "CONFIRMED", "signatures": [SIG]}}, "signed"),
        ({"status_code": 200, "message": "x", "data": {"tran_status": "REJECTED"}}, "rejected"),
        ({"status_code": 200, "message": "x", "data": {"tran_status": "EXPIRED"}}, "expired"),
        # VNPT: no tran_status; the message and status_code say it
        ({"status_code": 200, "message": "sig_wait_for_user_confirm", "data": {}}, "pending"),
        ({"status_code": 200, "message": "SUCCESS", "data": {"signatures": [SIG]}}, "signed"),
        ({"status_code": 400, "message": "USER_REJECTED"}, "rejected"),
        ({"status_code": 400, "message": "Giao dịch hết hạn (het han)"}, "expired"),
        ({"status_code": 403, "message": "CREDENTIAL_STATUS_INVALID"}, "failed"),
        ({"status_code": 200, "message": "SUCCESS", "data": {"tran_status": "CONFIRMED"}}, "failed"),  # no signature
    ],
)
def test_the_state_of_a_transaction_is_read_with_or_without_tran_status(answer, state):
    assert status_answer(answer).state == state


def test_a_cms_without_signed_attributes_is_unwrapped_and_a_der_ecdsa_value_is_not(pki):
    key = serialization.load_pem_private_key((pki / "dr-binh.key.pem").read_bytes(), DEV_PASSPHRASE)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    raw = key.sign(b"data", ec.ECDSA(hashes.SHA256()))
    assert unwrap_cms(raw) == raw
    cert = asn1_x509.Certificate.load(_der(pki / "dr-binh.cert.pem"))
    signed_data = cms.SignedData({
        "version": "v1",
        "digest_algorithms": [algos.DigestAlgorithm({"algorithm": "sha256"})],
        "encap_content_info": {"content_type": "data"},
        "signer_infos": [{
            "version": "v1",
            "sid": cms.SignerIdentifier({"issuer_and_serial_number": {"issuer": cert.issuer, "serial_number": cert.serial_number}}),
            "digest_algorithm": {"algorithm": "sha256"},
            "signature_algorithm": {"algorithm": "sha256_ecdsa"},
            "signature": raw,
        }],
    })
    wrapped = cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()
    assert unwrap_cms(wrapped) == raw
    assert unwrap_cms(b"\x01\x02") == b"\x01\x02"


def test_a_missing_secret_is_a_configuration_error_at_start():
    settings = RemoteSigningConfig(name="smartca", kind="neac", url="http://127.0.0.1:9", sp_id=SP_ID, sp_secret_env="KYSO_X")
    with pytest.raises(ConfigError, match="KYSO_X"):
        load_providers(Config(remote_signing=(settings,), dev_pki=False), env={})
    with pytest.raises(ConfigError, match="sp_secret"):
        load_providers(Config(remote_signing=(RemoteSigningConfig(name="s", kind="neac", url="u", sp_id="i"),), dev_pki=False), env={})
    with pytest.raises(ConfigError, match="unknown kind"):
        load_providers(Config(remote_signing=(RemoteSigningConfig(name="s", kind="other", url="u"),), dev_pki=False), env={})


def test_refused_provider_credentials_never_show_the_secret(phone: NeacGateway):
    provider = NeacProvider("smartca", phone.url, SP_ID, lambda: "wrong-secret-TEST", timeout=2)
    with pytest.raises(RemoteSignerUnavailable) as refused:
        provider.certificate(AN)
    assert "SP_CREDENTIAL_INVALID" in refused.value.detail
    assert "wrong-secret-TEST" not in refused.value.detail and AN not in refused.value.detail
    good = NeacProvider("smartca", phone.url, SP_ID, lambda: SP_SECRET, timeout=2)
    assert good.certificate(AN).certificate.subject.native["common_name"].endswith("Văn An")
    sent = phone.calls[-1][1]
    assert sent["sp_id"] == SP_ID and sent["user_id"] == AN and sent["transaction_id"].startswith("kyso-")


def test_back_off_doubles_up_to_the_maximum():
    provider = NeacProvider("p", "http://127.0.0.1:9", SP_ID, lambda: "s", poll_seconds=2, poll_max_seconds=30)
    assert [provider.next_poll_delay(n) for n in range(6)] == [2, 4, 8, 16, 30, 30]
