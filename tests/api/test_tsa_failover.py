"""Timestamp authorities: the built-in one against OpenSSL, and failover past TSAs that are
dead or lie, down to 503 tsa_unavailable (never a weaker signature than asked for)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import tsp
from ltv_support import LtvPki, dead_url, open_service, serve
from support import Service, corpus_pdfs
from verifiers import openssl_ts_verify, signature_timestamp_of, signatures_of

from kyso.signer.timestamp.client import make_query

# -- the built-in TSA as OpenSSL sees it ------------------------------------------------------


def openssl_query(tmp_path: Path, *extra: str) -> Path:
    data = tmp_path / "record.bin"
    data.write_bytes(b"Phieu xet nghiem 2026-11-24\n")
    query = tmp_path / "q.tsq"
    subprocess.run(
        ["openssl", "ts", "-query", "-data", str(data), "-sha256", "-cert", *extra, "-out", str(query)],
        check=True, capture_output=True,
    )  # fmt: skip
    return query


def post_query(service: Service, query: bytes, content_type: str = "application/timestamp-query"):
    return service.client.post("/tsa", data=query, headers={"Content-Type": content_type})


@pytest.mark.parametrize("nonce", [True, False])
def test_the_builtin_tsa_answers_openssl_with_a_reply_openssl_verifies(
    service: Service, tmp_path: Path, root_pem: Path, chain_pem: Path, nonce: bool
) -> None:
    query = openssl_query(tmp_path, *(() if nonce else ("-no_nonce",)))
    resp = post_query(service, query.read_bytes())
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/timestamp-reply"
    reply = tmp_path / "r.tsr"
    reply.write_bytes(resp.get_data())
    verdict = subprocess.run(
        ["openssl", "ts", "-verify", "-queryfile", str(query), "-in", str(reply),
         "-CAfile", str(root_pem), "-untrusted", str(chain_pem)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert "Verification: OK" in verdict.stdout, verdict.stdout + verdict.stderr
    text = subprocess.run(
        ["openssl", "ts", "-reply", "-in", str(reply), "-text"], capture_output=True, text=True
    ).stdout
    assert "Status: Granted." in text
    assert f"Policy OID: {service.kyso.config.tsa.policy_oid}" in text
    assert ("Nonce: unspecified" in text) != nonce


def test_the_builtin_tsa_refuses_what_is_not_a_query(service: Service, tmp_path: Path) -> None:
    resp = post_query(service, b"not a query")
    reply = tmp_path / "r.tsr"
    reply.write_bytes(resp.get_data())
    text = subprocess.run(
        ["openssl", "ts", "-reply", "-in", str(reply), "-text"], capture_output=True, text=True
    ).stdout
    assert "Status: Rejected." in text
    assert (
        post_query(service, openssl_query(tmp_path).read_bytes(), "text/plain").status_code == 415
    )


# -- failover ---------------------------------------------------------------------------------


def lying_tsa_app(pki: LtvPki):
    """A TSA at /<lie> that answers every query through the generated PKI's real TSA, and
    then lies: a token for another imprint, with another nonce, with a broken signature, or
    no reply at all."""
    real = pki.kyso.tsa

    def app(environ, start_response):
        lie = environ["PATH_INFO"].strip("/")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        query = tsp.TimeStampReq.load(environ["wsgi.input"].read(length))
        imprint = query["message_imprint"]["hashed_message"].native
        nonce = query["nonce"].native
        if lie == "imprint":
            reply = real.respond(make_query(bytes(32), nonce).dump())
        elif lie == "nonce":
            reply = real.respond(make_query(imprint, nonce + 1).dump())
        elif lie == "signature":
            parsed = tsp.TimeStampResp.load(real.respond(query.dump()))
            signer = parsed["time_stamp_token"]["content"]["signer_infos"][0]
            value = bytearray(signer["signature"].native)
            value[-1] ^= 1
            signer["signature"] = bytes(value)
            reply = parsed.dump(force=True)
        else:
            reply = b"<html>Service Unavailable</html>"
        start_response("200 OK", [("Content-Type", "application/timestamp-reply")])
        return [reply]

    return app


@pytest.fixture(scope="module")
def liar(ltv_pki: LtvPki) -> Iterator[str]:
    server = serve(lying_tsa_app(ltv_pki), "lying-tsa")
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def service_with_tsas(pki: LtvPki, data_dir: Path, urls: list[str]) -> Service:
    quoted = ", ".join(f'"{u}"' for u in urls)
    return open_service(pki, data_dir, f"[tsa]\nurls = [{quoted}]\ntimeout_seconds = 3\n")


@pytest.fixture(scope="module")
def failing_over(ltv_pki: LtvPki, liar: str, tmp_path_factory) -> Iterator[Service]:
    urls = [
        dead_url(),
        f"{liar}/imprint",
        f"{liar}/nonce",
        f"{liar}/signature",
        f"{ltv_pki.base_url}/tsa",
    ]
    service = service_with_tsas(ltv_pki, tmp_path_factory.mktemp("failover"), urls)
    yield service
    service.kyso.close()


@pytest.fixture(scope="module")
def all_failing(ltv_pki: LtvPki, liar: str, tmp_path_factory) -> Iterator[Service]:
    urls = [dead_url(), f"{liar}/imprint", f"{liar}/garbage"]
    service = service_with_tsas(ltv_pki, tmp_path_factory.mktemp("no-tsa"), urls)
    yield service
    service.kyso.close()


def sign_pdf(service: Service, level: str, key: str = "hospital-seal"):
    return service.client.post(
        "/api/v1/sign/pdf", data=corpus_pdfs()[0].read_bytes(),
        query_string={"key": key, "level": level},
        headers={**service.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip


def entries_since(service: Service, size: int) -> list[dict]:
    return service.kyso.audit.entries(after=size - 1, limit=100)


def test_a_dead_tsa_and_three_lying_ones_are_skipped_and_named_in_the_audit_entry(
    failing_over: Service, ltv_pki: LtvPki, tmp_path: Path
) -> None:
    size = failing_over.kyso.audit.size()
    resp = sign_pdf(failing_over, "B-T")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    (entry,) = entries_since(failing_over, size)
    assert (entry["action"], entry["outcome"]) == ("sign.pdf", "ok")
    failures = entry["detail"]["tsa_failures"]
    urls = failing_over.kyso.config.tsa.urls
    reasons = {
        urls[0]: "ConnectionError",
        urls[1]: "message imprint is not ours",
        urls[2]: "nonce is not ours",
        urls[3]: "signature does not verify",
    }
    for url, reason in reasons.items():
        assert any(f.startswith(f"{url}: ") and reason in f for f in failures), (url, failures)
    assert not any(f.startswith(urls[4]) for f in failures)
    ((cms_der, _),) = signatures_of(resp.get_data())
    token, covered = signature_timestamp_of(cms_der)
    verdict = openssl_ts_verify(token, covered, ltv_pki.root_pem, ltv_pki.chain_pem, tmp_path)
    assert "Verification: OK" in verdict.stdout, verdict.stdout + verdict.stderr


def test_failover_serves_json_signatures_too(failing_over: Service) -> None:
    resp = failing_over.client.post(
        "/api/v1/sign/json",
        json={"key": "lab-seal", "payload": {"a": 1}},
        headers=failing_over.auth(),
    )
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert "etsiU" in resp.json["signature"]["header"]


@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
def test_when_no_tsa_answers_the_signature_is_refused_not_weakened(
    all_failing: Service, level: str
) -> None:
    size = all_failing.kyso.audit.size()
    resp = sign_pdf(all_failing, level)
    assert resp.status_code == 503
    assert resp.json["code"] == "tsa_unavailable"
    for url in all_failing.kyso.config.tsa.urls:
        assert url in resp.json["detail"]
    entries = entries_since(all_failing, size)
    assert [(e["action"], e["outcome"]) for e in entries] == [("sign.pdf", "error")]
    assert entries[0]["detail"]["code"] == "tsa_unavailable"


def test_when_no_tsa_answers_json_and_extension_are_refused_too(
    all_failing: Service, ltv_service: Service
) -> None:
    resp = all_failing.client.post(
        "/api/v1/sign/json",
        json={"key": "lab-seal", "payload": {"a": 1}},
        headers=all_failing.auth(),
    )
    assert (resp.status_code, resp.json["code"]) == (503, "tsa_unavailable")
    signed = sign_pdf(ltv_service, "B-T").get_data()  # a document signed elsewhere
    resp = all_failing.client.post(
        "/api/v1/extend/pdf?level=B-LTA", data=signed,
        headers={**all_failing.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert (resp.status_code, resp.json["code"]) == (503, "tsa_unavailable")


def test_b_b_needs_no_tsa(all_failing: Service) -> None:
    resp = sign_pdf(all_failing, "B-B")
    assert resp.status_code == 200
    ((cms_der, _),) = signatures_of(resp.get_data())
    assert signature_timestamp_of(cms_der) is None
