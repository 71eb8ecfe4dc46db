"""POST /api/v1/verify/pdf and /verify/json, and the public page's verification."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from support import Service, corpus_pdfs, make_config

from kyso.service import Actor, Kyso

PDF = corpus_pdfs()[5].read_bytes()


def sign_pdf(service: Service, **query: str):
    query.setdefault("key", "hospital-seal")
    return service.client.post(
        "/api/v1/sign/pdf", data=PDF, query_string=query,
        headers={**service.auth(), "Content-Type": "application/pdf"},
    )


def verify_pdf(service: Service, data: bytes, client: str = "auditor"):
    return service.client.post(
        "/api/v1/verify/pdf", data=data, headers={**service.auth(client), "Content-Type": "application/pdf"}
    )


def test_a_signed_pdf_passes_and_is_found_in_our_log(service: Service) -> None:
    signed = sign_pdf(service, record_id="verify/1")
    report = verify_pdf(service, signed.get_data()).json
    assert report["indication"] == "TOTAL_PASSED", report
    (sig,) = report["signatures"]
    assert sig["field"] == "Signature1"
    assert sig["intact"] and sig["trusted"]
    assert sig["level"] == "B-T"
    assert sig["timestamp"]["valid"] is True
    assert sig["modifications"] == "NONE" and sig["coverage"] == "ENTIRE_FILE"
    assert "Bệnh viện" in sig["signer"]["subject"]
    assert sig["registered"] == {"audit_seq": int(signed.headers["Kyso-Audit-Seq"]), "record_id": "verify/1"}
    entry = service.kyso.audit.entries(after=service.kyso.audit.size() - 2, limit=1)[0]
    assert entry["action"] == "verify.pdf" and entry["detail"]["indication"] == "TOTAL_PASSED"


def test_a_pdf_changed_after_signing_never_passes(service: Service) -> None:
    signed = bytearray(sign_pdf(service, level="B-B").get_data())
    i = signed.index(b"/Contents") - 300
    signed[i] ^= 0x20
    report = verify_pdf(service, bytes(signed)).json
    assert report["indication"] == "TOTAL_FAILED"
    assert report["signatures"][0]["sub_indication"] == "HASH_FAILURE"


def test_an_unsigned_pdf_is_a_report_with_no_signatures(service: Service) -> None:
    resp = verify_pdf(service, PDF, client="his")
    assert resp.status_code == 200
    assert resp.json["indication"] == "TOTAL_FAILED" and resp.json["signatures"] == []


def test_not_a_pdf_is_400_on_verify_too(service: Service) -> None:
    resp = verify_pdf(service, b"nope")
    assert resp.status_code == 400 and resp.json["code"] == "invalid_pdf"


def test_a_detached_jws_verifies_with_its_payload_and_fails_with_another(service: Service) -> None:
    payload = {"họ_tên": "Trần Văn Bảy", "chẩn_đoán": "J18.9"}
    signed = service.client.post(
        "/api/v1/sign/json", json={"key": "lab-seal", "payload": payload, "detached": True, "record_id": "r/json"},
        headers=service.auth(),
    ).json
    ok = service.client.post("/api/v1/verify/json", json={"signature": signed["signature"], "payload": payload},
                             headers=service.auth("auditor")).json
    assert ok["indication"] == "TOTAL_PASSED", ok
    assert ok["signatures"][0]["level"] == "B-T"
    assert ok["signatures"][0]["registered"]["audit_seq"] == signed["audit_seq"]
    assert ok["document_sha256"] == signed["payload_sha256"]
    bad = service.client.post("/api/v1/verify/json", json={"signature": signed["signature"], "payload": {**payload, "chẩn_đoán": "J18.0"}},
                              headers=service.auth("auditor")).json
    assert bad["indication"] == "TOTAL_FAILED"


def test_the_public_page_verifies_without_a_key(service: Service) -> None:
    signed = sign_pdf(service, level="B-B").get_data()
    resp = service.client.post("/page/verify", data=signed, headers={"Content-Type": "application/pdf"})
    assert resp.status_code == 200 and resp.json["indication"] == "TOTAL_PASSED"
    entry = service.kyso.audit.entries(after=service.kyso.audit.size() - 2, limit=1)[0]
    assert entry["action"] == "verify.pdf" and entry["actor"] is None


def test_threads_verifying_at_once_on_a_fresh_service_all_get_their_report(
    service: Service, tmp_path
) -> None:
    # Every request thread reads the same trust roots (parsed completely before they are
    # shared: asn1crypto parses lazily and is not thread-safe) and one database.
    signed = sign_pdf(service, level="B-B").get_data()
    fresh = Kyso.open(make_config(tmp_path / "fresh"))
    barrier = threading.Barrier(8)

    def verify(_: int) -> str:
        barrier.wait()
        return fresh.verify_pdf(Actor("auditor", "auditor"), signed)["indication"]

    try:
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(verify, range(8))) == ["TOTAL_PASSED"] * 8
    finally:
        fresh.close()


def rewritten_after_signing(pdf: bytes) -> bytes:
    """The signed PDF with its first page replaced in an incremental update."""
    from io import BytesIO

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(BytesIO(pdf))
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    page["/Contents"] = writer.add_object(generic.StreamObject(stream_data=b"BT ET"))
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_accept_language_vi_explains_the_report_in_vietnamese(service: Service) -> None:
    signed = sign_pdf(service, level="B-T", record_id="vi/1")
    headers = {**service.auth("auditor"), "Content-Type": "application/pdf", "Accept-Language": "vi-VN,vi;q=0.9,en;q=0.5"}
    resp = service.client.post("/api/v1/verify/pdf", data=signed.get_data(), headers=headers)
    assert resp.headers["Content-Language"] == "vi" and "Accept-Language" in resp.headers["Vary"]
    report = resp.json
    assert report["explanation"]["verdict"] == "Hợp lệ"
    ex = report["signatures"][0]["explanation"]
    assert "(giờ Việt Nam, UTC+7). Dấu thời gian của" in ex["time"]
    assert ex["changes"] == "Tài liệu không bị sửa đổi sau khi ký."
    assert ex["log"] == f"Nhật ký kyso lưu đúng tệp này: mục số {signed.headers['Kyso-Audit-Seq']}, hồ sơ «vi/1»."


def test_without_accept_language_the_report_is_explained_in_english(service: Service) -> None:
    signed = sign_pdf(service, level="B-B").get_data()
    resp = verify_pdf(service, signed)
    assert resp.headers["Content-Language"] == "en"
    assert resp.json["signatures"][0]["explanation"]["verdict"].startswith("Valid: ")


def test_a_pdf_changed_after_signing_is_not_shown_with_its_log_entry(service: Service) -> None:
    signed = sign_pdf(service, level="B-B", record_id="vi/2").get_data()
    headers = {"Content-Type": "application/pdf", "Accept-Language": "vi"}
    resp = service.client.post("/page/verify", data=rewritten_after_signing(signed), headers=headers)
    (sig,) = resp.json["signatures"]
    assert sig["indication"] == "TOTAL_FAILED" and sig["registered"] is None
    assert sig["explanation"]["verdict"] == "Không hợp lệ: tài liệu đã bị sửa đổi sau khi ký."
    assert sig["explanation"]["log"].startswith("Nhật ký kyso không lưu đúng tệp này")


def test_the_page_takes_a_jws_file_as_kyso_returned_it(service: Service) -> None:
    signed = service.client.post(
        "/api/v1/sign/json", json={"key": "lab-seal", "payload": {"x": 1}, "level": "B-B"}, headers=service.auth()
    ).json["signature"]  # a flattened JWS: it has a member "signature" of its own
    resp = service.client.post("/page/verify", json=signed, headers={"Accept-Language": "vi"})
    assert resp.status_code == 200, resp.json
    assert resp.json["explanation"]["verdict"] == "Hợp lệ"


@pytest.mark.parametrize("media_type", ["text/plain", "multipart/form-data; boundary=x", None])
def test_the_page_refuses_a_file_of_another_media_type_with_415(service: Service, media_type: str | None) -> None:
    headers = {"Content-Type": media_type} if media_type else {}
    resp = service.client.post("/page/verify", data=b"%PDF-1.7\n", headers=headers)
    assert (resp.status_code, resp.json["code"]) == (415, "unsupported_media_type"), resp.json
    assert "application/pdf" in resp.json["detail"]
