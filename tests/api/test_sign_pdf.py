"""Signing every corpus PDF through the API, checked by tools that are not ours."""

from __future__ import annotations

import hashlib
from io import BytesIO
from pathlib import Path

import pikepdf
import pytest
from fontTools.ttLib import TTFont
from support import Service, corpus_pdfs
from verifiers import (
    openssl_cms_verify,
    openssl_ts_verify,
    pdfsig,
    signature_timestamp_of,
    signatures_of,
)

from kyso.signer.stamp import find_font

ENCRYPTED = "libreoffice-writer-password.pdf"
# 1.1 MB of this file are zeroed: its page tree, one of four pages and the fonts of two
# others are gone. A signature would attest to a mutilated record, so kyso refuses it.
DAMAGED = "unreadablemetadata.pdf"


def sign(service: Service, pdf: bytes, **query: str):
    query.setdefault("key", "hospital-seal")
    return service.client.post(
        "/api/v1/sign/pdf",
        data=pdf,
        query_string=query,
        headers={**service.auth(), "Content-Type": "application/pdf"},
    )


def check_independently(signed: bytes, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path, timestamped: bool) -> None:
    out = tmp_path / "signed.pdf"
    out.write_bytes(signed)
    verdicts = pdfsig(out, nssdb)
    assert verdicts, "pdfsig found no signature"
    last = verdicts[-1]
    assert last.valid, last.text
    assert last.trusted, last.text
    found = signatures_of(signed)
    assert len(found) == len(verdicts), "openssl must check every signature that pdfsig found"
    for cms_der, signed_bytes in found:
        result = openssl_cms_verify(cms_der, signed_bytes, root_pem, tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Verification successful" in result.stderr
        ts = signature_timestamp_of(cms_der)
        if timestamped:
            assert ts is not None, "B-T signature without a signature timestamp"
            token, covered = ts
            result = openssl_ts_verify(token, covered, root_pem, chain_pem, tmp_path)
            assert "Verification: OK" in result.stdout, result.stdout + result.stderr


@pytest.mark.parametrize("path", [p for p in corpus_pdfs() if p.name not in (ENCRYPTED, DAMAGED)], ids=lambda p: p.name)
def test_every_corpus_pdf_is_signed_at_b_t_and_passes_pdfsig_openssl_cms_and_ts(
    service: Service, path: Path, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path
) -> None:
    resp = sign(service, path.read_bytes(), record_id=f"corpus/{path.name}")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signed = resp.get_data()
    assert resp.headers["Content-Type"] == "application/pdf"
    assert resp.headers["Kyso-Document-SHA256"] == hashlib.sha256(signed).hexdigest()
    seq = int(resp.headers["Kyso-Audit-Seq"])
    (entry,) = service.kyso.audit.entries(after=seq - 1, limit=1)
    assert (entry["seq"], entry["action"], entry["record_id"]) == (seq, "sign.pdf", f"corpus/{path.name}")
    assert entry["document_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entry["signature_sha256"] == resp.headers["Kyso-Document-SHA256"]
    check_independently(signed, tmp_path, nssdb, root_pem, chain_pem, timestamped=True)


@pytest.mark.parametrize("level", ["B-B", "B-T"])
@pytest.mark.parametrize("key", ["hospital-seal", "lab-seal"])
def test_rsa_and_ec_keys_sign_at_b_b_and_b_t(
    service: Service, key: str, level: str, tmp_path: Path, nssdb: str, root_pem: Path, chain_pem: Path
) -> None:
    data = corpus_pdfs()[0].read_bytes()
    resp = sign(service, data, key=key, level=level)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    signed = resp.get_data()
    check_independently(signed, tmp_path, nssdb, root_pem, chain_pem, timestamped=level == "B-T")
    if level == "B-B":
        found = signatures_of(signed)
        assert len(found) == 1  # the corpus file had none: `all` over nothing proves nothing
        assert all(signature_timestamp_of(c) is None for c, _ in found)


@pytest.mark.each_database
def test_the_destroyed_corpus_pdf_is_refused_with_what_it_lost_even_with_repair(service: Service) -> None:
    path = next(p for p in corpus_pdfs() if p.name == DAMAGED)
    resp = sign(service, path.read_bytes(), repair="true")
    assert resp.status_code == 400
    assert resp.json["code"] == "invalid_pdf"
    assert "only 3 of its 4 pages survive" in resp.json["detail"]
    assert any("destroyed" in d for d in resp.json["damage"])


@pytest.mark.each_database
def test_a_damaged_pdf_is_not_rebuilt_unless_the_caller_asks(service: Service) -> None:
    path = next(p for p in corpus_pdfs() if p.name == DAMAGED)
    resp = sign(service, path.read_bytes())
    assert resp.status_code == 400
    assert resp.json["code"] == "invalid_pdf"
    assert "repair=true" in resp.json["detail"]
    assert "damage" not in resp.json  # nothing was rebuilt, not even on trial


@pytest.mark.each_database
def test_the_password_protected_corpus_pdf_is_refused_as_encrypted(service: Service) -> None:
    path = next(p for p in corpus_pdfs() if p.name == ENCRYPTED)
    resp = sign(service, path.read_bytes())
    assert resp.status_code == 400
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json["code"] == "encrypted_pdf"


@pytest.mark.each_database
def test_a_second_signature_gets_the_next_free_field_and_both_stay_valid(
    service: Service, tmp_path: Path, nssdb: str
) -> None:
    first = sign(service, corpus_pdfs()[1].read_bytes(), key="hospital-seal").get_data()
    second = sign(service, first, key="lab-seal")
    assert second.status_code == 200
    out = tmp_path / "twice.pdf"
    out.write_bytes(second.get_data())
    verdicts = pdfsig(out, nssdb)
    assert [v.field for v in verdicts] == ["Signature1", "Signature2"]
    assert all(v.valid and v.trusted for v in verdicts)


@pytest.mark.each_database
def test_a_named_field_is_used(service: Service) -> None:
    resp = sign(service, corpus_pdfs()[0].read_bytes(), field="BacSiKy", level="B-B")
    assert resp.status_code == 200
    assert b"/T (BacSiKy)" in resp.get_data() or b"/T(BacSiKy)" in resp.get_data()


@pytest.mark.each_database
def test_the_record_registry_lists_the_signatures_of_a_record_id_with_slashes(service: Service) -> None:
    record_id = "encounter/123/discharge"
    pdf = corpus_pdfs()[2].read_bytes()
    first = sign(service, pdf, record_id=record_id, level="B-B")
    second = sign(service, first.get_data(), record_id=record_id, key="lab-seal", level="B-B")
    resp = service.client.get(f"/api/v1/records/{record_id}", headers=service.auth("auditor"))
    assert resp.status_code == 200
    body = resp.json
    assert body["record_id"] == record_id
    sigs = body["signatures"]
    assert [s["audit_seq"] for s in sigs] == [int(first.headers["Kyso-Audit-Seq"]), int(second.headers["Kyso-Audit-Seq"])]
    assert [s["key"] for s in sigs] == ["hospital-seal", "lab-seal"]
    assert sigs[0]["document_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert sigs[1]["signature_sha256"] == second.headers["Kyso-Document-SHA256"]
    assert all(s["level"] == "B-B" for s in sigs)


STAMP_FONT = "KysoStampTest"  # the PostScript name of a font that only the test below has


def renamed_font(directory: Path) -> Path:
    """The font that visible stamps use by default, copied under the name STAMP_FONT."""
    font = TTFont(str(find_font()))
    for record in list(font["name"].names):
        if record.nameID in (1, 4, 6, 16):  # family, full name, PostScript name, typographic family
            font["name"].setName(STAMP_FONT, record.nameID, record.platformID, record.platEncID, record.langID)
    path = directory / f"{STAMP_FONT}.ttf"
    font.save(str(path))
    return path


def font_names(pdf: bytes) -> set[str]:
    """The /BaseFont of every font object in the PDF (object streams included)."""
    with pikepdf.open(BytesIO(pdf)) as doc:
        return {
            str(obj.BaseFont)
            for obj in doc.objects
            if isinstance(obj, pikepdf.Dictionary) and obj.get("/Type") == "/Font" and "/BaseFont" in obj
        }


def test_the_configured_stamp_font_is_the_font_of_a_visible_stamp(
    new_service, service: Service, tmp_path: Path
) -> None:
    pdf = corpus_pdfs()[0].read_bytes()
    stamp = {"level": "B-B", "visible": "true", "page": "1", "box": "50,50,300,120", "reason": "Xác nhận"}
    configured = sign(new_service(stamp_font=str(renamed_font(tmp_path))), pdf, **stamp)
    assert configured.status_code == 200, configured.get_data(as_text=True)
    added = font_names(configured.get_data()) - font_names(pdf)
    assert added and all(f"+{STAMP_FONT}" in name for name in added), added  # ABCDEF+name
    by_default = sign(service, pdf, **stamp)  # no stamp_font: the same stamp in another font
    assert by_default.status_code == 200, by_default.get_data(as_text=True)
    default_added = font_names(by_default.get_data()) - font_names(pdf)
    assert default_added and not any(STAMP_FONT in name for name in default_added), default_added


def test_a_body_without_a_length_is_read_to_its_end_and_refused_one_byte_over_the_limit(
    service: Service,
) -> None:
    """As a server that ends chunked bodies itself hands them over (wsgi.input_terminated):
    the app reads the body once, into a file, and a byte past the limit is 413, never a
    body cut short at the limit and signed as its first revision."""
    pdf = corpus_pdfs()[5].read_bytes()
    limit = service.kyso.config.max_body_bytes
    headers = {**service.auth(), "Content-Type": "application/pdf"}

    def post(body: bytes):
        return service.client.post(
            "/api/v1/sign/pdf", query_string={"key": "hospital-seal", "level": "B-B"},
            input_stream=BytesIO(body), headers={**headers, "Transfer-Encoding": "chunked"},
            environ_overrides={"wsgi.input_terminated": True},
        )  # fmt: skip

    r = post(pdf)
    assert r.status_code == 200, r.get_data()[:300]
    assert r.headers["Kyso-Document-SHA256"] == hashlib.sha256(r.get_data()).hexdigest()
    grown = pdf + b"\n% a later revision\n" + b"0" * (limit + 1 - len(pdf) - 20)
    assert len(grown) == limit + 1
    r = post(grown)
    assert (r.status_code, r.json["code"]) == (413, "payload_too_large"), r.get_data()[:300]
    assert r.json["detail"].startswith("the request body is larger"), r.json  # read, not announced
    assert post(grown[:limit]).status_code != 413  # the limit itself is accepted
