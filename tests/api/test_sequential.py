"""Several people sign one record in turn; a change made after signing is caught.

The hospital certifies the record (DocMDP: form filling and further signatures allowed), the
laboratory and the physician sign after it; every signature stays valid in pdfsig and kyso
reports what changed after each. Then the "shadow attack": an incremental update that
replaces a page's content after signing. pdfsig, which checks only the signed bytes, still
calls every signature valid; kyso's difference analysis must not.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pytest
from ltv_support import LtvPki
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from support import Service, corpus_pdfs
from verifiers import pdfsig

from kyso.keystore.software import load_certificates
from kyso.signer.verify.pdf import verify_pdf
from kyso.signer.verify.report import VerifySettings

SIGNERS = ("hospital-seal", "lab-seal", "dr-an")


def sign(service: Service, pdf: bytes, key: str, **query: str):
    return service.client.post(
        "/api/v1/sign/pdf", data=pdf, query_string={"key": key, **query},
        headers={**service.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip


def settings(pki: LtvPki) -> VerifySettings:
    return VerifySettings(tuple(load_certificates(pki.root_pem)), allow_fetching=False)


STAMP = {"visible": "true", "page": "1", "box": "330,60,560,120", "reason": "Bác sĩ điều trị"}


def sign_in_turn(service: Service, pdf: bytes, certify: bool, **query: str) -> bytes:
    """Signed by each of SIGNERS in turn, the first certifying if asked; ``query`` for the
    last signer."""
    for n, key in enumerate(SIGNERS):
        extra = {"certify": "true"} if certify and n == 0 else {}
        extra.update(query if n == len(SIGNERS) - 1 else {})
        resp = sign(service, pdf, key, record_id="seq/1", **extra)
        assert resp.status_code == 200, resp.get_data(as_text=True)
        pdf = resp.get_data()
    return pdf


@pytest.fixture(scope="module")
def signed_in_turn(ltv_service: Service) -> bytes:
    """Certified by the hospital seal, then signed by the lab seal and by dr-an."""
    return sign_in_turn(ltv_service, corpus_pdfs()[0].read_bytes(), certify=True)


def test_every_signature_stays_valid_in_pdfsig(
    signed_in_turn: bytes, ltv_nssdb: str, tmp_path: Path
) -> None:
    out = tmp_path / "in-turn.pdf"
    out.write_bytes(signed_in_turn)
    verdicts = pdfsig(out, ltv_nssdb, ocsp=True)
    assert [v.field for v in verdicts] == ["Signature1", "Signature2", "Signature3"]
    assert all(v.valid and v.trusted for v in verdicts), [v.text for v in verdicts]
    assert verdicts[-1].total_document


def test_the_report_says_what_changed_after_each_signature(
    signed_in_turn: bytes, ltv_pki: LtvPki
) -> None:
    report = verify_pdf(signed_in_turn, settings(ltv_pki))
    assert report.indication == "TOTAL_PASSED"
    assert [(s.field, s.indication, s.modifications, s.coverage) for s in report.signatures] == [
        ("Signature1", "TOTAL_PASSED", "FORM_FILLING", "ENTIRE_REVISION"),
        ("Signature2", "TOTAL_PASSED", "FORM_FILLING", "ENTIRE_REVISION"),
        ("Signature3", "TOTAL_PASSED", "NONE", "ENTIRE_FILE"),
    ]


def test_the_certification_allows_form_filling_and_further_signatures(
    signed_in_turn: bytes,
) -> None:
    reader = PdfFileReader(BytesIO(signed_in_turn), strict=False)
    first = reader.embedded_regular_signatures[0]
    assert first.docmdp_level is not None and first.docmdp_level.name == "FILL_FORMS"
    assert [s.docmdp_level for s in reader.embedded_regular_signatures[1:]] == [None, None]


def test_a_new_visible_signature_is_refused_on_a_certified_document(
    ltv_service: Service, signed_in_turn: bytes
) -> None:
    """pyHanko's difference analysis (so kyso's report) counts a new visible signature
    field after a DocMDP P=2 certification as a forbidden change: kyso does not make one."""
    size = ltv_service.kyso.audit.size()
    resp = sign(ltv_service, signed_in_turn, "dr-binh", **STAMP)
    assert (resp.status_code, resp.json["code"]) == (400, "invalid_request")
    assert "DocMDP P=2" in resp.json["detail"]
    assert ltv_service.kyso.audit.entries(after=size - 1, limit=1)[0]["outcome"] == "error"


def test_signers_of_an_uncertified_record_may_all_show_a_stamp(
    ltv_service: Service, ltv_pki: LtvPki, ltv_nssdb: str, tmp_path: Path
) -> None:
    pdf = corpus_pdfs()[0].read_bytes()
    for key, box in zip(
        SIGNERS, ("40,60,200,120", "210,60,370,120", "380,60,560,120"), strict=True
    ):
        resp = sign(ltv_service, pdf, key, **{**STAMP, "box": box})
        assert resp.status_code == 200, resp.get_data(as_text=True)
        pdf = resp.get_data()
    report = verify_pdf(pdf, settings(ltv_pki))
    assert [(s.indication, s.modifications) for s in report.signatures] == [
        ("TOTAL_PASSED", "FORM_FILLING"), ("TOTAL_PASSED", "FORM_FILLING"), ("TOTAL_PASSED", "NONE"),
    ]  # fmt: skip
    out = tmp_path / "stamped.pdf"
    out.write_bytes(pdf)
    verdicts = pdfsig(out, ltv_nssdb, ocsp=True)
    assert len(verdicts) == 3  # `all` over nothing would pass
    assert all(v.valid and v.trusted for v in verdicts)


def test_a_document_is_certified_only_by_its_first_signature(
    ltv_service: Service, signed_in_turn: bytes
) -> None:
    resp = sign(ltv_service, signed_in_turn, "lab-seal", certify="true")
    assert (resp.status_code, resp.json["code"]) == (400, "invalid_request")
    assert "first signature" in resp.json["detail"]


def test_a_sequentially_signed_record_extends_to_b_lta_and_stays_valid(
    ltv_service: Service, signed_in_turn: bytes, ltv_pki: LtvPki
) -> None:
    resp = ltv_service.client.post(
        "/api/v1/extend/pdf?level=B-LTA", data=signed_in_turn,
        headers={**ltv_service.auth(), "Content-Type": "application/pdf"},
    )  # fmt: skip
    assert resp.status_code == 200, resp.get_data(as_text=True)
    report = verify_pdf(resp.get_data(), settings(ltv_pki))
    assert [(s.indication, s.level) for s in report.signatures] == [("TOTAL_PASSED", "B-LTA")] * 3


# -- the shadow attack ----------------------------------------------------------------------


def rewrite_first_page(pdf: bytes) -> bytes:
    """An incremental update that replaces page 1's content stream with other text: the
    signed bytes stay as they were, what a viewer shows does not."""
    writer = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
    page = writer.root["/Pages"]["/Kids"][0].get_object()
    forged = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (Ket qua: AM TINH) Tj ET")
    page["/Contents"] = writer.add_object(forged)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


@pytest.fixture(scope="module")
def shadowed(signed_in_turn: bytes) -> bytes:
    return rewrite_first_page(signed_in_turn)


def test_pdfsig_still_calls_every_signature_valid_after_the_page_was_rewritten(
    shadowed: bytes, ltv_nssdb: str, tmp_path: Path
) -> None:
    out = tmp_path / "shadowed.pdf"
    out.write_bytes(shadowed)
    verdicts = pdfsig(out, ltv_nssdb, ocsp=True)
    assert len(verdicts) == 3
    assert all(v.valid for v in verdicts), [v.text for v in verdicts]
    assert not any(v.total_document for v in verdicts)


def test_kyso_reports_the_rewritten_page_as_other_modifications(
    shadowed: bytes, ltv_pki: LtvPki
) -> None:
    report = verify_pdf(shadowed, settings(ltv_pki))
    assert report.indication != "TOTAL_PASSED"
    assert all(s.indication != "TOTAL_PASSED" for s in report.signatures)
    assert [s.modifications for s in report.signatures] == ["OTHER"] * 3
    assert all(s.intact for s in report.signatures)  # the signed bytes themselves are untouched


def test_a_single_signature_is_caught_the_same_way(ltv_service: Service, ltv_pki: LtvPki) -> None:
    signed = sign(ltv_service, corpus_pdfs()[3].read_bytes(), "lab-seal", level="B-LTA")
    assert signed.status_code == 200
    (sig,) = verify_pdf(rewrite_first_page(signed.get_data()), settings(ltv_pki)).signatures
    assert (sig.modifications, sig.indication) == ("OTHER", "TOTAL_FAILED")
