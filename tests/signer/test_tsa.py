"""The built-in RFC 3161 TSA, judged by OpenSSL's ``ts`` command and by pyHanko."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from asn1crypto import cms, pem, tsp
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation.generic_cms import validate_tst_signed_data
from pyhanko.sign.validation.status import TimestampSignatureStatus
from pyhanko_certvalidator import ValidationContext
from support import CORPUS

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.errors import ConfigError, InvalidRequest, TokenUnavailable
from kyso.keystore.base import KeyInfo, Scheme, SigningKey
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.timestamp import authority as tsa_module
from kyso.signer.timestamp.authority import DEFAULT_POLICY_OID, TimestampAuthority, TimeStampResp
from kyso.signer.timestamp.client import TimestampClient, TimestampSource
from kyso.signer.verify.pdf import verify_pdf
from kyso.signer.verify.report import VerifySettings

PKI = dev_pki_dir()
ROOT = PKI / "root-ca.cert.pem"
INTERMEDIATE = PKI / "intermediate-ca.cert.pem"
MINIMAL = CORPUS / "pdf/001-trivial/minimal-document.pdf"


def asn1_certs(path: Path) -> list[asn1_x509.Certificate]:
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(path.read_bytes(), True)]


class DevFileKey(SigningKey):
    """A minimal SigningKey over a dev PKI key file, so these tests need no keystore."""

    def __init__(self, name: str) -> None:
        pem_key = (PKI / f"{name}.key.pem").read_bytes()
        self.private_key = serialization.load_pem_private_key(pem_key, DEV_PASSPHRASE)
        cert = asn1_certs(PKI / f"{name}.cert.pem")[0]
        chain = tuple(asn1_certs(PKI / "chain.pem"))
        self.info = KeyInfo(name, "software", cert, chain)

    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        if scheme == "ecdsa":
            return self.private_key.sign(data, ec.ECDSA(hashes.SHA256()))
        if scheme == "pss":
            pss = padding.PSS(padding.MGF1(hashes.SHA256()), 32)
            return self.private_key.sign(data, pss, hashes.SHA256())
        return self.private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())


class UnpluggedKey(DevFileKey):
    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        raise TokenUnavailable("token removed")


class ConfusedKey(DevFileKey):
    """Signs with the right algorithm but over the wrong bytes."""

    def sign(self, data: bytes, scheme: Scheme) -> bytes:
        return super().sign(data + b"!", scheme)


@pytest.fixture(scope="module", params=["tsa", "tsa-ec"])
def tsa(request: pytest.FixtureRequest) -> TimestampAuthority:
    return TimestampAuthority(DevFileKey(request.param))


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "record.pdf"
    path.write_bytes("Hồ sơ bệnh án điện tử\n".encode() * 100)
    return path


def openssl(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, check=False)


def query_for(data: Path, *options: str) -> Path:
    """An ``openssl ts -query`` file for ``data`` (SHA-256 unless an option says otherwise)."""
    out = data.with_suffix(".tsq")
    result = openssl("ts", "-query", "-data", data, *(options or ("-sha256",)), "-out", out)
    assert result.returncode == 0, result.stderr
    return out


def reply_to(tsa: TimestampAuthority, query: Path) -> Path:
    out = query.with_suffix(".tsr")
    out.write_bytes(tsa.respond(query.read_bytes()))
    return out


def reply_text(reply: Path) -> str:
    result = openssl("ts", "-reply", "-in", reply, "-text")
    assert result.returncode == 0, result.stderr
    return result.stdout


def verify_with_query(query: Path, reply: Path, untrusted: Path = INTERMEDIATE):
    return openssl(
        "ts", "-verify", "-queryfile", query, "-in", reply, "-CAfile", ROOT, "-untrusted", untrusted
    )


def failure_of(reply: bytes) -> tuple[str, set[str]]:
    status = TimeStampResp.load(reply)["status"].native
    return status["status"], status["fail_info"]


def test_openssl_verifies_a_granted_reply_against_its_query(
    tsa: TimestampAuthority, data_file: Path
) -> None:
    query = query_for(data_file, "-sha256", "-cert")
    result = verify_with_query(query, reply_to(tsa, query))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verification: OK" in result.stdout


def test_openssl_verifies_the_token_against_the_data_with_only_the_root(
    tsa: TimestampAuthority, data_file: Path
) -> None:
    reply = reply_to(tsa, query_for(data_file, "-sha256", "-cert"))
    result = openssl("ts", "-verify", "-data", data_file, "-in", reply, "-CAfile", ROOT)
    assert "Verification: OK" in result.stdout, result.stderr


def test_reply_shows_the_kyso_policy_and_echoes_the_nonce(
    tsa: TimestampAuthority, data_file: Path
) -> None:
    query = query_for(data_file, "-sha256", "-cert")
    text = reply_text(reply_to(tsa, query))
    query_text = openssl("ts", "-query", "-in", query, "-text").stdout
    nonce_line = next(line for line in query_text.splitlines() if line.startswith("Nonce:"))
    assert f"Policy OID: {DEFAULT_POLICY_OID}" in text
    assert "Status: Granted." in text
    assert nonce_line in text and "unspecified" not in nonce_line
    assert "Accuracy: 0x01 seconds" in text


def test_query_without_nonce_gets_a_token_without_nonce(
    tsa: TimestampAuthority, data_file: Path
) -> None:
    query = query_for(data_file, "-sha256", "-cert", "-no_nonce")
    reply = reply_to(tsa, query)
    assert "Nonce: unspecified" in reply_text(reply)
    assert "Verification: OK" in verify_with_query(query, reply).stdout


def test_without_cert_req_the_token_carries_no_certificate(
    tsa: TimestampAuthority, data_file: Path, tmp_path: Path
) -> None:
    query = query_for(data_file, "-sha256")
    reply = reply_to(tsa, query)
    token = TimeStampResp.load(reply.read_bytes())["time_stamp_token"]
    assert not token["content"]["certificates"]
    assert "Verification: OK" not in verify_with_query(query, reply).stdout
    bundle = tmp_path / "tsa-and-intermediate.pem"
    bundle.write_bytes(
        (PKI / f"{tsa.key.info.alias}.cert.pem").read_bytes() + INTERMEDIATE.read_bytes()
    )
    assert "Verification: OK" in verify_with_query(query, reply, untrusted=bundle).stdout


def test_token_carries_the_tsa_certificate_and_intermediate_but_not_the_root(
    tsa: TimestampAuthority,
) -> None:
    token = tsa.timestamp(hashlib.sha256(b"x").digest())
    carried = [c.chosen.subject for c in token["content"]["certificates"]]
    expected = [c.subject for c in asn1_certs(PKI / f"{tsa.key.info.alias}.cert.pem")]
    assert carried == expected + [asn1_certs(INTERMEDIATE)[0].subject]


def test_a_tampered_data_file_fails_openssl_verification(
    tsa: TimestampAuthority, data_file: Path
) -> None:
    reply = reply_to(tsa, query_for(data_file, "-sha256", "-cert"))
    data_file.write_bytes(data_file.read_bytes().replace(b"\n", b" ", 1))
    result = openssl(
        "ts",
        "-verify",
        "-data",
        data_file,
        "-in",
        reply,
        "-CAfile",
        ROOT,
        "-untrusted",
        INTERMEDIATE,
    )
    assert result.returncode != 0
    assert "Verification: FAILED" in result.stdout


@pytest.mark.parametrize("option", ["-sha384", "-sha512"])
def test_sha384_and_sha512_imprints_are_granted(
    tsa: TimestampAuthority, data_file: Path, option: str
) -> None:
    query = query_for(data_file, option, "-cert")
    assert "Verification: OK" in verify_with_query(query, reply_to(tsa, query)).stdout


def test_a_sha1_imprint_is_rejected_with_bad_alg(tsa: TimestampAuthority, data_file: Path) -> None:
    reply = reply_to(tsa, query_for(data_file, "-sha1", "-cert"))
    assert failure_of(reply.read_bytes()) == ("rejection", {"bad_alg"})
    assert "unrecognized or unsupported algorithm identifier" in reply_text(reply)


def test_a_foreign_policy_is_rejected_as_unaccepted(
    tsa: TimestampAuthority, data_file: Path
) -> None:
    reply = reply_to(tsa, query_for(data_file, "-sha256", "-tspolicy", "1.2.3.4"))
    assert failure_of(reply.read_bytes()) == ("rejection", {"unaccepted_policy"})
    assert "policy is not supported" in reply_text(reply)


def test_asking_for_our_own_policy_is_granted(tsa: TimestampAuthority, data_file: Path) -> None:
    query = query_for(data_file, "-sha256", "-cert", "-tspolicy", DEFAULT_POLICY_OID)
    assert "Verification: OK" in verify_with_query(query, reply_to(tsa, query)).stdout


@pytest.mark.parametrize(
    "garbage",
    [b"", b"garbage", b"\x30\x03\x02\x01\x01", b"\x30\x80" + b"\x00" * 40, bytes(range(256))],
)
def test_garbage_gets_a_rejection_that_openssl_reads(
    tsa: TimestampAuthority, tmp_path: Path, garbage: bytes
) -> None:
    reply = tmp_path / "garbage.tsr"
    reply.write_bytes(tsa.respond(garbage))
    assert failure_of(reply.read_bytes()) == ("rejection", {"bad_data_format"})
    text = reply_text(reply)
    assert "Status: Rejected." in text
    assert "the data submitted has the wrong format" in text


def test_a_query_with_trailing_bytes_is_rejected(tsa: TimestampAuthority, data_file: Path) -> None:
    query = query_for(data_file).read_bytes() + b"\x00"
    assert failure_of(tsa.respond(query)) == ("rejection", {"bad_data_format"})


def make_query(**fields) -> bytes:
    imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x11" * 32}
    return tsp.TimeStampReq({"version": "v1", "message_imprint": imprint, **fields}).dump()


def test_a_digest_of_the_wrong_length_is_bad_data_format(tsa: TimestampAuthority) -> None:
    imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": b"\x11" * 20}
    assert failure_of(tsa.respond(make_query(message_imprint=imprint))) == (
        "rejection",
        {"bad_data_format"},
    )


def test_an_unknown_version_is_a_bad_request(tsa: TimestampAuthority) -> None:
    assert failure_of(tsa.respond(make_query(version=2))) == ("rejection", {"bad_request"})


def test_a_request_extension_is_not_accepted(tsa: TimestampAuthority) -> None:
    extension = {"extn_id": "1.2.3.4.5", "critical": False, "extn_value": b"\x05\x00"}
    reply = tsa.respond(make_query(extensions=[extension]))
    assert failure_of(reply) == ("rejection", {"unaccepted_extensions"})


def test_an_unplugged_key_gives_system_failure_instead_of_raising(data_file: Path) -> None:
    tsa = TimestampAuthority(UnpluggedKey("tsa"))
    reply = tsa.respond(query_for(data_file).read_bytes())
    assert failure_of(reply) == ("rejection", {"system_failure"})


def test_a_key_that_signs_the_wrong_bytes_never_yields_a_token(data_file: Path) -> None:
    tsa = TimestampAuthority(ConfusedKey("tsa-ec"))
    assert failure_of(tsa.respond(query_for(data_file).read_bytes())) == (
        "rejection",
        {"system_failure"},
    )
    with pytest.raises(TokenUnavailable):
        tsa.timestamp(hashlib.sha256(b"x").digest())


@pytest.mark.parametrize("name", ["hospital-seal", "ocsp"])
def test_a_certificate_without_the_critical_timestamping_eku_is_refused(name: str) -> None:
    with pytest.raises(ConfigError):
        TimestampAuthority(DevFileKey(name))


def test_gen_time_comes_from_the_clock_in_whole_seconds() -> None:
    moment = datetime(2031, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    tsa = TimestampAuthority(DevFileKey("tsa"), clock=lambda: moment)
    token = tsa.timestamp(hashlib.sha256(b"x").digest(), nonce=42)
    info = token["content"]["encap_content_info"]["content"].parsed
    assert info["gen_time"].native == moment.replace(microsecond=0)
    assert info["nonce"].native == 42
    assert info["policy"].dotted == DEFAULT_POLICY_OID
    attrs = {
        a["type"].native: a["values"][0]
        for a in token["content"]["signer_infos"][0]["signed_attrs"]
    }
    assert attrs["signing_time"].native == moment.replace(microsecond=0)
    assert attrs["content_type"].native == "tst_info"


def test_signing_certificate_v2_names_the_tsa_certificate_by_an_explicit_sha512(
    tsa: TimestampAuthority,
) -> None:
    token = tsa.timestamp(hashlib.sha256(b"x").digest())
    attrs = token["content"]["signer_infos"][0]["signed_attrs"]
    ess = next(a for a in attrs if a["type"].native == "signing_certificate_v2")["values"][0]
    cert_id = ess["certs"][0]
    # Explicit and not the DEFAULT (see signer/tsa.py): the encoded bytes must carry it.
    assert cert_id["hash_algorithm"]["algorithm"].native == "sha512"
    assert cert_id["cert_hash"].native == hashlib.sha512(tsa.certificate.dump()).digest()
    assert b"\x06\x09\x60\x86\x48\x01\x65\x03\x04\x02\x03" in ess.dump()  # id-sha512
    assert cert_id["issuer_serial"]["serial_number"].native == tsa.certificate.serial_number


def test_every_token_has_its_own_serial_number(tsa: TimestampAuthority) -> None:
    digest = hashlib.sha256(b"x").digest()
    serials = {
        tsa.timestamp(digest)["content"]["encap_content_info"]["content"]
        .parsed["serial_number"]
        .native
        for _ in range(20)
    }
    assert len(serials) == 20


def test_in_process_timestamp_refuses_a_digest_of_the_wrong_length(tsa: TimestampAuthority) -> None:
    with pytest.raises(InvalidRequest):
        tsa.timestamp(b"\x00" * 20)


def test_pyhanko_validates_the_token_as_intact_valid_and_trusted(tsa: TimestampAuthority) -> None:
    digest = hashlib.sha256(b"ban ghi").digest()
    token = tsa.timestamp(digest, nonce=7)
    context = ValidationContext(trust_roots=asn1_certs(ROOT), allow_fetching=False)
    found = asyncio.run(validate_tst_signed_data(token["content"], context, lambda _alg: digest))
    status = TimestampSignatureStatus(**found)
    assert status.intact and status.valid and status.trusted


def test_a_token_naming_its_tsa_by_the_default_sha256_is_embedded_byte_for_byte(
    monkeypatch,
) -> None:
    # Many TSAs name their certificate in ESSCertIDv2 by SHA-256, the DEFAULT, which DER
    # then omits. asn1crypto marks such a structure changed once it is parsed; a token
    # re-encoded into the signature would cost time and could lose its signature.
    real = tsa_module._signing_certificate_v2

    def by_default_sha256(cert: asn1_x509.Certificate) -> cms.CMSAttribute:
        return real(cert, "sha256")

    monkeypatch.setattr(tsa_module, "_signing_certificate_v2", by_default_sha256)
    foreign = TimestampAuthority(DevFileKey("tsa"))
    issued: list[bytes] = []

    def respond(query: bytes) -> bytes:
        reply = foreign.respond(query)
        issued.append(TimeStampResp.load(reply)["time_stamp_token"].dump())
        return reply

    cert_id = tsp.ESSCertIDv2.load(
        by_default_sha256(foreign.certificate)["values"][0]["certs"][0].dump()
    )
    assert cert_id.contents[:1] == b"\x04"  # the certHash comes first: no hashAlgorithm encoded

    timestamper = TimestampClient([TimestampSource("foreign", respond)])
    options = PdfSignOptions(level="B-T")
    signed = asyncio.run(
        async_sign_pdf(MINIMAL.read_bytes(), DevFileKey("hospital-seal"), options, timestamper)
    )
    embedded = PdfFileReader(BytesIO(signed.pdf)).embedded_signatures[0]
    assert issued[-1] in bytes(embedded.pkcs7_content)  # the first one sized the signature
    report = verify_pdf(
        signed.pdf, VerifySettings(trust_roots=tuple(asn1_certs(ROOT)), allow_fetching=False)
    )
    assert report.indication == "TOTAL_PASSED", report.to_json()


# -- the client keeps its connection to a TSA ---------------------------------------------


class KeptAliveTsa:
    """``tsa`` served over HTTP/1.1 on loopback, counting the connections it accepts."""

    def __init__(self, tsa: TimestampAuthority) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.connections = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                outer.connections += 1
                super().setup()

            def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
                reply = tsa.respond(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/tsa"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_b_t_signatures_one_after_another_reuse_one_connection_to_the_tsa(
    tsa: TimestampAuthority, dev_key
) -> None:
    from kyso.signer.timestamp.client import http_source

    served = KeptAliveTsa(tsa)
    try:
        client = TimestampClient([http_source(served.url, 10)])
        key, options = dev_key("lab-seal"), PdfSignOptions(level="B-T")
        for _ in range(3):
            asyncio.run(async_sign_pdf(MINIMAL.read_bytes(), key, options, client))
        assert served.connections == 1
    finally:
        served.close()
