"""Two-step signing sessions: clinicians sign on their own (SoftHSM) tokens with
``kyso token sign-session``, the service checks and embeds, pdfsig/openssl/jwcrypto agree."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import softhsm
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from jwcrypto import jwk, jws
from jwcrypto.common import JWSEHeaderParameter
from sqlalchemy import select, update
from support import CORPUS, KYSO, Service, corpus_pdfs
from verifiers import (
    openssl_cms_verify,
    openssl_ts_verify,
    pdfsig,
    signature_timestamp_of,
    signatures_of,
)

from kyso.certs.devpki import DEV_PASSPHRASE
from kyso.db import signing_sessions
from kyso.signer.timestamp.client import TimestampClient, http_source

PIN = "clinician-pin-2580"
AN_CN = "BS. Nguyễn Văn An"
RECORD = {"resourceType": "Bundle", "id": "xuất-viện-42", "entry": [{"glucose_mmol_l": 5.6}]}


@dataclass(frozen=True)
class Clinician:
    name: str  # dev PKI name: dr-an, dr-binh
    token: str
    chain: list[str]  # PEM: the clinician's certificate, then the intermediate
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey  # the same key, as a file (DEV ONLY)


@pytest.fixture(scope="module")
def clinicians(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> dict[str, Clinician]:
    """Tokens ``clinician-an`` (dr-an's RSA key) and ``clinician-binh`` (dr-binh's P-256 key),
    each holding the dev PKI key and certificate under the key label of its name."""
    softhsm.process_softhsm(tmp_path_factory.mktemp("softhsm"))
    found = {}
    for name, token in (("dr-an", "clinician-an"), ("dr-binh", "clinician-binh")):
        key = serialization.load_pem_private_key(
            (pki / f"{name}.key.pem").read_bytes(), DEV_PASSPHRASE
        )
        cert_pem = (pki / f"{name}.cert.pem").read_text()
        softhsm.init_token(token, softhsm.SO_PIN, PIN)
        cert = x509.load_pem_x509_certificate(cert_pem.encode())
        softhsm.import_key_and_cert(token, PIN, key, cert, name, b"\x01")  # type: ignore[arg-type]
        chain = [cert_pem, (pki / "intermediate-ca.cert.pem").read_text()]
        found[name] = Clinician(name, token, chain, key)  # type: ignore[arg-type]
    return found


def kyso_cli(
    *args: str, pin: str | None = PIN, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("KYSO_TOKEN_PIN", None)
    if pin is not None:
        env["KYSO_TOKEN_PIN"] = pin
    return subprocess.run(
        [KYSO, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
    )


def start(
    service: Service, clinician: Clinician, documents: list[dict], client: str = "his", **extra
):
    body = {"certificate_chain": clinician.chain, "documents": documents, **extra}
    return service.client.post("/api/v1/signing-sessions", json=body, headers=service.auth(client))


def complete(
    service: Service, session_id: str, signatures: list[str], client: str = "his", **headers: str
):
    return service.client.post(
        f"/api/v1/signing-sessions/{session_id}/complete",
        json={"signatures": signatures},
        headers={**service.auth(client), **headers},
    )


def sign_on_token(clinician: Clinician, session: dict, tmp_path: Path) -> list[str]:
    """``kyso token sign-session`` in a subprocess, as on the clinician's workstation."""
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session))
    args = ["token", "sign-session", str(path), "--module", softhsm.MODULE]
    done = kyso_cli(*args, "--token-label", clinician.token, "--key-label", clinician.name)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["signatures"]


def sign_in_software(key, session: dict) -> list[str]:
    """The same signatures as the token makes, from the key file (quicker, for refusals)."""
    out = []
    for doc in session["documents"]:
        data = base64.b64decode(doc["data_to_sign"])
        if isinstance(key, rsa.RSAPrivateKey) and doc["algorithm"] == "RSASSA-PSS-SHA256":
            out.append(key.sign(data, padding.PSS(padding.MGF1(hashes.SHA256()), 32), hashes.SHA256()))
        elif isinstance(key, rsa.RSAPrivateKey):
            out.append(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
        else:
            out.append(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return [base64.b64encode(s).decode() for s in out]


def pdf_doc(index: int, record_id: str) -> dict:
    return {
        "record_id": record_id,
        "pdf": base64.b64encode(corpus_pdfs()[index].read_bytes()).decode(),
    }


def jwcrypto_verify(signature: dict) -> dict:
    """Verify with the key of x5c[0], sigT registered as understood; the protected header."""
    header = json.loads(base64.urlsafe_b64decode(signature["protected"] + "=="))
    leaf = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    token = jws.JWS(
        header_registry={"sigT": JWSEHeaderParameter("Signing time (JAdES)", True, True, None)}
    )
    token.allowed_algs = ["RS256", "PS256", "ES256"]
    token.deserialize(json.dumps(signature))
    token.verify(jwk.JWK.from_pyca(leaf.public_key()))
    return header


def entries_after(service: Service, seq: int) -> list[dict]:
    return [e for e in service.kyso.audit.entries(after=seq, limit=1000)]


def check_pdf(
    signed: bytes, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path, timestamped: bool
) -> str:
    """pdfsig, openssl cms (and openssl ts) on the last signature; pdfsig's signer name."""
    path = tmp_path / "signed.pdf"
    path.write_bytes(signed)
    last = pdfsig(path, nssdb)[-1]
    assert last.valid and last.trusted and last.total_document, last.text
    cms_der, signed_bytes = signatures_of(signed)[-1]
    result = openssl_cms_verify(cms_der, signed_bytes, root_pem, tmp_path)
    assert result.returncode == 0 and "Verification successful" in result.stderr, result.stderr
    ts = signature_timestamp_of(cms_der)
    assert (ts is not None) == timestamped
    if ts is not None:
        result = openssl_ts_verify(ts[0], ts[1], root_pem, chain_pem, tmp_path)
        assert "Verification: OK" in result.stdout, result.stdout + result.stderr
    return last.text.split("Signer Certificate Common Name: ")[1].splitlines()[0]


def test_two_pdfs_and_a_json_signed_on_the_clinicians_token_validate_everywhere(
    service: Service, clinicians, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path
) -> None:
    an = clinicians["dr-an"]
    pdfs = [corpus_pdfs()[0].read_bytes(), corpus_pdfs()[1].read_bytes()]
    documents = [
        pdf_doc(0, "enc/1/discharge"),
        pdf_doc(1, "enc/1/lab"),
        {"record_id": "enc/1/bundle", "json": RECORD},
    ]
    before = service.kyso.audit.size() - 1
    resp = start(
        service, an, documents, level="B-T", reason="Ký hồ sơ xuất viện", location="Hà Nội"
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    session = resp.json
    assert [d["record_id"] for d in session["documents"]] == [
        "enc/1/discharge",
        "enc/1/lab",
        "enc/1/bundle",
    ]
    for doc in session["documents"]:
        assert doc["algorithm"] == "RSASSA-PSS-SHA256"  # RSA: PSS unless asked otherwise
        digest = hashlib.sha256(base64.b64decode(doc["data_to_sign"])).digest()
        assert base64.b64decode(doc["digest"]) == digest
    jws_input = base64.b64decode(session["documents"][2]["data_to_sign"]).decode("ascii")
    assert jws_input.count(".") == 1  # ASCII(protected) '.' payload

    signatures = sign_on_token(an, session, tmp_path)
    resp = complete(service, session["id"], signatures)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.json["documents"]

    for doc, original in zip(out[:2], pdfs, strict=True):
        signed = base64.b64decode(doc["pdf"])
        assert signed.startswith(original)  # an incremental update: the record is untouched
        assert check_pdf(signed, tmp_path, nssdb, root_pem, chain_pem, timestamped=True) == AN_CN
    header = jwcrypto_verify(out[2]["signature"])
    assert header["kid"] == AN_CN and header["alg"] == "PS256" and header["crit"] == ["sigT"]
    assert len(header["x5c"]) == 2  # clinician and intermediate, not the root
    token = base64.b64decode(
        out[2]["signature"]["header"]["etsiU"][0]["sigTst"]["tstTokens"][0]["val"]
    )
    result = openssl_ts_verify(
        token, out[2]["signature"]["signature"].encode(), root_pem, chain_pem, tmp_path
    )
    assert "Verification: OK" in result.stdout

    entries = entries_after(service, before)
    assert [e["action"] for e in entries] == [
        "session.start",
        "sign.pdf",
        "sign.pdf",
        "sign.json",
        "session.complete",
    ]
    signed_entries = entries[1:4]
    assert {e["key"] for e in signed_entries} == {
        "CN=BS. Nguyễn Văn An,OU=Khoa Nội,O=kyso DEV ONLY,C=VN"
    }
    assert [e["document_sha256"] for e in signed_entries[:2]] == [
        hashlib.sha256(p).hexdigest() for p in pdfs
    ]
    assert (
        signed_entries[0]["signature_sha256"]
        == hashlib.sha256(base64.b64decode(out[0]["pdf"])).hexdigest()
    )
    signature_ascii = out[2]["signature"]["signature"].encode()
    assert signed_entries[2]["signature_sha256"] == hashlib.sha256(signature_ascii).hexdigest()
    assert [d["audit_seq"] for d in out] == [e["seq"] for e in signed_entries]
    record = service.client.get("/api/v1/records/enc/1/lab", headers=service.auth()).json
    assert [s["level"] for s in record["signatures"]] == ["B-T"]


def test_an_ec_token_signs_at_b_b_and_raw_or_der_ecdsa_values_are_both_accepted(
    service: Service, clinicians, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path
) -> None:
    binh = clinicians["dr-binh"]
    resp = start(
        service,
        binh,
        [pdf_doc(2, "enc/2/note"), {"record_id": "enc/2/obs", "json": RECORD}],
        level="B-B",
    )
    assert resp.status_code == 201, resp.get_data(as_text=True)
    session = resp.json
    assert {d["algorithm"] for d in session["documents"]} == {"ECDSA-SHA256"}
    raw = [base64.b64decode(s) for s in sign_on_token(binh, session, tmp_path)]
    assert [len(s) for s in raw] == [64, 64]  # r||s, as PKCS#11 returns it
    der = encode_dss_signature(
        int.from_bytes(raw[0][:32], "big"), int.from_bytes(raw[0][32:], "big")
    )
    resp = complete(
        service, session["id"], [base64.b64encode(der).decode(), base64.b64encode(raw[1]).decode()]
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.json["documents"]
    signer = check_pdf(
        base64.b64decode(out[0]["pdf"]), tmp_path, nssdb, root_pem, chain_pem, timestamped=False
    )
    assert signer == "BS. Trần Thị Bình"
    assert jwcrypto_verify(out[1]["signature"])["alg"] == "ES256"
    assert "header" not in out[1]["signature"]  # B-B: no timestamp


def test_rsa_pkcs1_v15_is_used_where_the_session_asks_for_it(
    service: Service, clinicians, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path
) -> None:
    an = clinicians["dr-an"]
    documents = [pdf_doc(0, "enc/v15/a"), {"record_id": "enc/v15/b", "json": RECORD}]
    session = start(service, an, documents, level="B-B", rsa_scheme="pkcs1v15").json
    assert {d["algorithm"] for d in session["documents"]} == {"RSASSA-PKCS1-v1_5-SHA256"}
    resp = complete(service, session["id"], sign_on_token(an, session, tmp_path))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.json["documents"]
    signed = base64.b64decode(out[0]["pdf"])
    assert check_pdf(signed, tmp_path, nssdb, root_pem, chain_pem, timestamped=False) == AN_CN
    assert jwcrypto_verify(out[1]["signature"])["alg"] == "RS256"


@pytest.mark.each_database
def test_an_impostor_signature_is_refused_and_nothing_is_written_as_signed(
    service: Service, clinicians
) -> None:
    an = clinicians["dr-an"]
    resp = start(
        service, an, [pdf_doc(0, "enc/3/a"), {"record_id": "enc/3/b", "json": RECORD}], level="B-B"
    )
    session = resp.json
    seq = service.kyso.audit.size() - 1
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    genuine = sign_in_software(an.key, session)
    forged = sign_in_software(impostor, session)

    resp = complete(service, session["id"], [genuine[0], forged[1]])
    assert resp.status_code == 400 and resp.json["code"] == "invalid_signature", resp.get_data(
        as_text=True
    )
    assert "documents[1]" in resp.json["detail"]
    (failure,) = entries_after(service, seq)
    assert (failure["action"], failure["outcome"], failure["key"]) == (
        "session.complete", "error", f"session:{session['id']}",
    )  # fmt: skip
    assert failure["detail"]["code"] == "invalid_signature"
    for record_id in ("enc/3/a", "enc/3/b"):
        assert service.client.get(f"/api/v1/records/{record_id}", headers=service.auth()).status_code == 404

    # The clinician's own signatures still complete the session: the refusal consumed nothing.
    assert complete(service, session["id"], genuine).status_code == 200


@pytest.mark.each_database
def test_an_expired_session_is_refused(service: Service, clinicians) -> None:
    session = start(
        service, clinicians["dr-an"], [{"record_id": "enc/4", "json": RECORD}], level="B-B"
    ).json
    signatures = sign_in_software(clinicians["dr-an"].key, session)
    with service.kyso.db.writer.begin() as conn:
        conn.execute(
            update(signing_sessions)
            .where(signing_sessions.c.id == session["id"])
            .values(expires_at=time.time() - 1)
        )
    resp = complete(service, session["id"], signatures)
    assert (resp.status_code, resp.json["code"]) == (409, "session_expired")


@pytest.mark.each_database
def test_a_session_expired_a_day_ago_is_deleted_when_the_next_one_starts(
    service: Service, clinicians
) -> None:
    an = clinicians["dr-an"]
    old, recent = (
        start(service, an, [{"record_id": f"enc/purge/{n}", "json": RECORD}], level="B-B").json
        for n in (1, 2)
    )
    with service.kyso.db.writer.begin() as conn:
        for session, hours in ((old, 25), (recent, 23)):  # expired a day and an hour / 23 h ago
            conn.execute(
                update(signing_sessions)
                .where(signing_sessions.c.id == session["id"])
                .values(expires_at=time.time() - hours * 3600)
            )
    assert start(service, an, [{"record_id": "enc/purge/3", "json": RECORD}], level="B-B").status_code == 201
    with service.kyso.db.reader.connect() as conn:
        kept = conn.execute(
            select(signing_sessions.c.id).where(signing_sessions.c.id.in_([old["id"], recent["id"]]))
        ).scalars().all()
    assert kept == [recent["id"]]
    resp = complete(service, old["id"], sign_in_software(an.key, old))
    assert (resp.status_code, resp.json["code"]) == (404, "not_found")
    resp = complete(service, recent["id"], sign_in_software(an.key, recent))
    assert (resp.status_code, resp.json["code"]) == (409, "session_expired")


@pytest.mark.each_database
def test_a_session_is_single_use_and_a_retry_with_the_idempotency_key_gets_the_first_answer(
    service: Service, clinicians
) -> None:
    session = start(
        service, clinicians["dr-an"], [{"record_id": "enc/5", "json": RECORD}], level="B-B"
    ).json
    signatures = sign_in_software(clinicians["dr-an"].key, session)
    first = complete(service, session["id"], signatures, **{"Idempotency-Key": "complete-enc-5"})
    assert first.status_code == 200
    size = service.kyso.audit.size()
    again = complete(service, session["id"], signatures, **{"Idempotency-Key": "complete-enc-5"})
    assert again.get_data() == first.get_data() and again.headers["Idempotent-Replayed"] == "true"
    assert service.kyso.audit.size() == size
    reused = complete(service, session["id"], signatures)
    assert (reused.status_code, reused.json["code"]) == (409, "session_used")


@pytest.mark.each_database
def test_of_simultaneous_completions_exactly_one_signs(service: Service, clinicians) -> None:
    session = start(
        service, clinicians["dr-an"], [{"record_id": "enc/9", "json": RECORD}], level="B-B"
    ).json
    signatures = sign_in_software(clinicians["dr-an"].key, session)
    size = service.kyso.audit.size()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: complete(service, session["id"], signatures), range(4)))
    assert sorted(r.status_code for r in answers) == [200, 409, 409, 409]
    entries = [(e["action"], e["outcome"]) for e in entries_after(service, size - 1)]
    assert (
        entries.count(("sign.json", "ok")) == 1 and entries.count(("session.complete", "ok")) == 1
    )
    assert entries.count(("session.complete", "error")) == 3  # each refusal is in the log too
    with service.kyso.db.reader.connect() as conn:
        row = conn.execute(
            select(signing_sessions).where(signing_sessions.c.id == session["id"])
        ).one()
    assert row.used and bytes(row.state) == b"{}"  # a completed session keeps no document


@pytest.mark.each_database
def test_starting_a_session_is_idempotent(service: Service, clinicians) -> None:
    documents = [{"record_id": "enc/6", "json": RECORD}]
    headers = {**service.auth(), "Idempotency-Key": "start-enc-6"}
    body = {"certificate_chain": clinicians["dr-an"].chain, "documents": documents}
    first = service.client.post("/api/v1/signing-sessions", json=body, headers=headers)
    size = service.kyso.audit.size()
    again = service.client.post("/api/v1/signing-sessions", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.get_data() == first.get_data() and service.kyso.audit.size() == size


@pytest.mark.each_database
def test_a_timestamp_authority_failure_is_503_and_the_session_stays_usable(
    service: Service, clinicians
) -> None:
    session = start(service, clinicians["dr-an"], [pdf_doc(0, "enc/7")], level="B-T").json
    signatures = sign_in_software(clinicians["dr-an"].key, session)
    working = service.kyso.timestamper
    service.kyso.timestamper = TimestampClient(
        [http_source("http://127.0.0.1:9/tsr", 2.0)]
    )  # nothing listens
    try:
        resp = complete(service, session["id"], signatures)
    finally:
        service.kyso.timestamper = working
    assert (resp.status_code, resp.json["code"]) == (503, "tsa_unavailable")
    assert service.client.get("/api/v1/records/enc/7", headers=service.auth()).status_code == 404
    assert complete(service, session["id"], signatures).status_code == 200


@pytest.mark.each_database
def test_only_the_client_that_started_a_session_may_complete_it(
    service: Service, clinicians
) -> None:
    session = start(
        service, clinicians["dr-an"], [{"record_id": "enc/8", "json": RECORD}], level="B-B"
    ).json
    signatures = sign_in_software(clinicians["dr-an"].key, session)
    resp = complete(service, session["id"], signatures, client="his-lab")
    assert (resp.status_code, resp.json["code"]) == (403, "forbidden")
    resp = complete(service, "no-such-session", signatures)
    assert (resp.status_code, resp.json["code"]) == (404, "not_found")
    resp = complete(service, session["id"], signatures * 2)
    assert (resp.status_code, resp.json["code"]) == (400, "invalid_request")


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("dr-expired", 422, "certificate_expired"),
        ("dr-future", 422, "certificate_not_yet_valid"),
        ("dr-revoked", 422, "certificate_revoked"),
    ],
)
def test_a_certificate_that_cannot_sign_now_is_refused(
    service: Service, pki: Path, name: str, status: int, code: str
):
    chain = [(pki / f"{name}.cert.pem").read_text(), (pki / "intermediate-ca.cert.pem").read_text()]
    resp = service.client.post(
        "/api/v1/signing-sessions",
        json={"certificate_chain": chain, "documents": [{"json": RECORD}]},
        headers=service.auth(),
    )
    assert (resp.status_code, resp.json["code"]) == (status, code)


@pytest.mark.each_database
def test_a_certificate_from_outside_the_trust_roots_is_refused(service: Service) -> None:
    ca = softhsm.TestCa.create("an unknown CA")
    stranger = ca.issue(ec.generate_private_key(ec.SECP256R1()).public_key(), "BS. Người Lạ")
    chain = [stranger.public_bytes(serialization.Encoding.PEM).decode()]
    resp = service.client.post(
        "/api/v1/signing-sessions",
        json={"certificate_chain": chain, "documents": [{"json": RECORD}]},
        headers=service.auth(),
    )
    assert (resp.status_code, resp.json["code"]) == (400, "invalid_request")
    assert "trusted root" in resp.json["detail"]


@pytest.mark.each_database
@pytest.mark.parametrize(
    ("document", "extra", "code"),
    [
        ({"pdf": "not base64!"}, {}, "invalid_request"),
        ({"pdf": base64.b64encode(b"just text, no PDF").decode()}, {}, "invalid_pdf"),
        (
            {
                "pdf": base64.b64encode(
                    (CORPUS / "pdf")
                    .glob("*/libreoffice-writer-password.pdf")
                    .__next__()
                    .read_bytes()
                ).decode()
            },
            {},
            "encrypted_pdf",
        ),
        ({"json": RECORD}, {"level": "B-LT"}, "invalid_request"),
        ({"pdf": "", "json": RECORD}, {}, "invalid_request"),
    ],
    ids=["bad-base64", "not-a-pdf", "encrypted", "b-lt", "both-pdf-and-json"],
)
def test_bad_documents_are_refused_with_their_code(
    service: Service, clinicians, document, extra, code
) -> None:
    resp = start(service, clinicians["dr-an"], [document], **extra)
    assert (resp.status_code, resp.json["code"]) == (400, code), resp.get_data(as_text=True)


def test_token_list_shows_the_token_and_the_clinicians_certificate(clinicians) -> None:
    done = kyso_cli("token", "list", "--module", softhsm.MODULE, pin=None)
    assert done.returncode == 0, done.stderr
    assert "token 'clinician-an'" in done.stdout
    assert AN_CN in done.stdout and "BS. Trần Thị Bình" in done.stdout


def test_a_wrong_pin_fails_the_cli_without_showing_the_pin(clinicians, tmp_path: Path) -> None:
    session = {"id": "x", "documents": [{"record_id": "r", "data_to_sign": "YQ==", "algorithm": "ECDSA-SHA256",
                                         "digest": base64.b64encode(hashlib.sha256(b"a").digest()).decode()}]}  # fmt: skip
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session))
    args = ["--module", softhsm.MODULE, "--token-label", "clinician-binh", "--key-label", "dr-binh"]
    done = kyso_cli("token", "sign-session", str(path), *args, pin="wrong-PIN-3141")
    assert done.returncode == 2
    assert "token_unavailable" in done.stderr and "wrong PIN" in done.stderr
    assert "wrong-PIN-3141" not in done.stderr + done.stdout


def test_without_kyso_token_pin_the_pin_is_asked_for_and_not_printed(
    clinicians, tmp_path: Path
) -> None:
    digest = base64.b64encode(hashlib.sha256(b"a").digest()).decode()
    session = {
        "documents": [{"data_to_sign": "YQ==", "digest": digest, "algorithm": "ECDSA-SHA256"}]
    }
    path = tmp_path / "session.json"
    path.write_text(json.dumps(session))
    args = ["--module", softhsm.MODULE, "--token-label", "clinician-binh", "--key-label", "dr-binh"]
    done = kyso_cli("token", "sign-session", str(path), *args, pin=None, stdin=PIN + "\n")
    assert done.returncode == 0, done.stderr
    assert "PIN: " in done.stderr and PIN not in done.stderr + done.stdout
    (signature,) = json.loads(done.stdout)["signatures"]
    public_key = clinicians["dr-binh"].key.public_key()
    raw = base64.b64decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public_key.verify(der, b"a", ec.ECDSA(hashes.SHA256()))
