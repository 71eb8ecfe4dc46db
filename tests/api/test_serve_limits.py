"""Every field bounded, the same on SQLite and PostgreSQL, on a real ``kyso serve``.

Identifiers and names outside their limits (kyso.api.fields) are ``400 invalid_request``
before anything reaches the database, the refusal is audited without the refused value,
and the problem document shows only its beginning. Hostile PDFs and TSA queries are
refused as such, never with a 500.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO

import pytest
import requests
from asn1crypto import tsp
from pg import PostgresServer
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from serving import dev_api_keys, kyso_serve
from support import corpus_pdfs

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.keystore.software import load_software_key
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.timestamp.authority import TimeStampResp

PKI = dev_pki_dir()
PDF = corpus_pdfs()[0].read_bytes()
MEGABYTE = "x" * 1_000_000


@dataclass(frozen=True)
class Served:
    url: str
    his: dict[str, str]
    auditor: dict[str, str]

    def post(self, path: str, **kwargs) -> requests.Response:
        headers = {**self.his, **kwargs.pop("headers", {})}
        return requests.post(f"{self.url}{path}", headers=headers, timeout=60, **kwargs)

    def last_entry(self) -> dict:
        entries, after = [], -1
        for _ in range(100):  # the log is small: read it all, the last entry is the refusal
            r = requests.get(
                f"{self.url}/api/v1/audit/entries",
                params={"after": after, "limit": 1000},
                headers=self.auditor,
                timeout=60,
            )
            page = r.json()
            entries += page["entries"]
            if page["next"] is None:
                return entries[-1]
            after = page["next"]
        raise AssertionError("the audit log is longer than this test reads")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with PostgresServer(fsync=False) as server:
        yield server


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp(request.param)
    env = {}
    if request.param == "postgresql":
        env["KYSO_DATABASE_URL"] = request.getfixturevalue("postgres").create_database()
    with kyso_serve(data_dir, env=env) as (url, _proc, _log):
        keys = dev_api_keys(data_dir)
        yield Served(
            url,
            {"Authorization": f"Bearer {keys['dev-his']}"},
            {"Authorization": f"Bearer {keys['dev-auditor']}"},
        )


def refused(served: Served, r: requests.Response, action: str) -> dict:
    """The problem of a 400 invalid_request, checked short and audited without the value."""
    assert (r.status_code, r.json()["code"]) == (400, "invalid_request"), r.text[:300]
    assert len(r.content) < 1000
    entry = served.last_entry()
    assert (entry["action"], entry["outcome"]) == (action, "error")
    assert entry["detail"]["code"] == "invalid_request"
    assert len(str(entry)) < 2000
    return entry


BAD_RECORD_IDS = ["r" * 1025, "r" * 257, "record\x00one", "line\nbreak", "\u202eevil", " padded"]


@pytest.mark.parametrize("record_id", BAD_RECORD_IDS)
def test_a_bad_record_id_is_refused_and_audited_on_every_signing_route(served, record_id) -> None:
    pdf = {"Content-Type": "application/pdf"}
    query = {"key": "hospital-seal", "level": "B-B", "record_id": record_id}
    entry = refused(served, served.post("/api/v1/sign/pdf", params=query, data=PDF, headers=pdf), "sign.pdf")
    assert entry["record_id"] is None
    body = {"key": "lab-seal", "payload": {"a": 1}, "level": "B-B", "record_id": record_id}
    entry = refused(served, served.post("/api/v1/sign/json", json=body), "sign.json")
    assert entry["record_id"] is None
    query = {"level": "B-LT", "record_id": record_id}
    refused(served, served.post("/api/v1/extend/pdf", params=query, data=PDF, headers=pdf), "extend.pdf")
    chain = [(PKI / "dr-an.cert.pem").read_text(), (PKI / "intermediate-ca.cert.pem").read_text()]
    doc = {"record_id": record_id, "pdf": base64.b64encode(PDF).decode()}
    session = {"certificate_chain": chain, "level": "B-B", "documents": [doc]}
    refused(served, served.post("/api/v1/signing-sessions", json=session), "session.start")
    r = requests.get(f"{served.url}/api/v1/records/{record_id}", headers=served.his, timeout=60)
    if "\n" in record_id:  # no route matches a path with a line break: no such record
        assert r.status_code == 404
    else:
        refused(served, r, "record.read")


def test_megabytes_of_key_or_record_id_are_neither_echoed_nor_logged(served) -> None:
    for body in (
        {"key": MEGABYTE, "payload": {}},
        {"key": "lab-seal", "payload": {}, "record_id": MEGABYTE},
        {"key": "lab-seal", "payload": {}, "level": MEGABYTE},
        {"key": "lab-seal", "payload": {}, MEGABYTE: 1},
    ):
        entry = refused(served, served.post("/api/v1/sign/json", json=body), "sign.json")
        assert entry["key"] in (None, "lab-seal")


def test_a_record_id_at_the_limit_with_slashes_and_vietnamese_is_kept_whole(served) -> None:
    record_id = ("encounter/123/phiếu-ra-viện/" * 10)[:256]
    body = {"key": "lab-seal", "payload": {"a": 1}, "level": "B-B", "record_id": record_id}
    assert served.post("/api/v1/sign/json", json=body).status_code == 200
    r = requests.get(f"{served.url}/api/v1/records/{record_id}", headers=served.his, timeout=60)
    assert (r.status_code, r.json()["record_id"]) == (200, record_id)


@pytest.mark.parametrize(
    ("name", "value"),
    [("field", "\x00"), ("field", "a.b"), ("field", "f" * 65), ("reason", "r" * 257),
     ("location", "tab\there"), ("key", "hospital seal"), ("level", "B-X" * 100),
     ("box", "nan,0,100,100")],
)  # fmt: skip
def test_a_bad_pdf_signing_parameter_is_refused(served, name, value) -> None:
    query = {"key": "hospital-seal", "level": "B-B", "visible": "true", "box": "10,10,200,60"}
    query[name] = value
    r = served.post("/api/v1/sign/pdf", params=query, data=PDF, headers={"Content-Type": "application/pdf"})
    refused(served, r, "sign.pdf")


def test_an_idempotency_key_that_is_not_printable_ascii_is_refused(served) -> None:
    body = {"key": "lab-seal", "payload": {"a": 1}, "level": "B-B"}
    for key in ("a\tb", "k" * 256, "khóa"):  # gunicorn itself refuses other control bytes
        r = served.post("/api/v1/sign/json", json=body, headers={"Idempotency-Key": key.encode("utf-8")})
        refused(served, r, "sign.json")


def test_a_session_id_that_cannot_be_one_is_not_found(served) -> None:
    for session_id in ("a%00b", "x" * 65, "a.b"):
        r = served.post(f"/api/v1/signing-sessions/{session_id}/complete", json={"signatures": []})
        assert (r.status_code, r.json()["code"]) == (404, "not_found"), r.text


def _self_kid_pdf() -> bytes:
    """A PDF whose one form field is its own kid."""
    writer = IncrementalPdfFileWriter(BytesIO(PDF))
    field = generic.DictionaryObject({generic.NameObject("/T"): generic.TextStringObject("Loop")})
    field[generic.NameObject("/FT")] = generic.NameObject("/Sig")
    ref = writer.add_object(field)
    field[generic.NameObject("/Kids")] = generic.ArrayObject([ref])
    writer.root[generic.NameObject("/AcroForm")] = generic.DictionaryObject(
        {generic.NameObject("/Fields"): generic.ArrayObject([ref])}
    )
    writer.update_root()
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_form_field_that_is_its_own_kid_is_an_invalid_pdf_everywhere(served) -> None:
    data, pdf = _self_kid_pdf(), {"Content-Type": "application/pdf"}
    for path, query in (
        ("/api/v1/sign/pdf", {"key": "hospital-seal", "level": "B-B"}),
        ("/api/v1/sign/pdf", {"key": "hospital-seal", "level": "B-B", "field": "Loop"}),
        ("/api/v1/verify/pdf", {}),
        ("/api/v1/extend/pdf", {"level": "B-LT"}),
    ):
        r = served.post(path, params=query, data=data, headers=pdf)
        assert (r.status_code, r.json()["code"]) == (400, "invalid_pdf"), (path, r.text[:300])


def test_a_pdf_signed_elsewhere_into_a_field_named_nul_verifies(served) -> None:
    chain = (str(PKI / "intermediate-ca.cert.pem"), str(PKI / "root-ca.cert.pem"))
    key = load_software_key(
        "seal", PKI / "hospital-seal.key.pem", DEV_PASSPHRASE, PKI / "hospital-seal.cert.pem", chain
    )
    signed = asyncio.run(async_sign_pdf(PDF, key, PdfSignOptions(level="B-B", field="\x00"), None))
    r = served.post("/api/v1/verify/pdf", data=signed.pdf, headers={"Content-Type": "application/pdf"})
    assert r.status_code == 200, r.text[:300]
    assert isinstance(r.json()["signatures"][0]["field"], str)


# -- the built-in TSA ---------------------------------------------------------------------


def _query(nonce: int | None = 1234) -> tsp.TimeStampReq:
    imprint = {"hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"x").digest()}
    return tsp.TimeStampReq({"version": "v1", "message_imprint": imprint, "nonce": nonce, "cert_req": True})


def _tsa(served: Served, body: bytes) -> tuple[str, set | None]:
    r = requests.post(
        f"{served.url}/tsa", data=body, headers={"Content-Type": "application/timestamp-query"}, timeout=60
    )
    assert r.status_code == 200, (len(body), r.text[:300])
    status = TimeStampResp.load(r.content)["status"]
    return status["status"].native, status["fail_info"].native


def test_the_tsa_grants_a_der_query_and_rejects_ber_long_nonces_and_big_bodies(served) -> None:
    assert _tsa(served, _query().dump())[0] == "granted"
    der = _query().dump()
    indefinite = b"\x30\x80" + der[2:] + b"\x00\x00"
    long_length = b"\x30\x81" + der[1:2] + der[2:]
    for body in (indefinite, long_length, _query(2**(8 * 40)).dump(), _query(2**(8 * 16_000_000)).dump()):
        status, fail_info = _tsa(served, body)
        assert (status, fail_info) == ("rejection", {"bad_data_format"}), len(body)
