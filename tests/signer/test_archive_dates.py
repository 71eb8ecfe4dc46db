"""extend_before: when a signed PDF must be extended again, read from its signature values."""

from __future__ import annotations

import pytest
from support import CORPUS, corpus_pdfs, make_config

from kyso.service import Actor, Kyso
from kyso.signer.archive_dates import extend_before
from kyso.signer.pades import PdfSignOptions


@pytest.fixture(scope="module")
def kyso(tmp_path_factory: pytest.TempPathFactory):
    service = Kyso.open(make_config(tmp_path_factory.mktemp("archive-dates")))
    yield service
    service.close()


def sign(kyso: Kyso, data: bytes, alias: str, level: str = "B-B") -> bytes:
    return kyso.sign_pdf(Actor("test"), alias, data, PdfSignOptions(level=level), None)[0].pdf


def test_an_unsigned_pdf_has_no_date_even_with_hex_annotation_text() -> None:
    annotated = (CORPUS / "pdf/024-annotations/annotated_pdf.pdf").read_bytes()
    assert extend_before(annotated) is None
    assert all(extend_before(path.read_bytes()) is None for path in corpus_pdfs()[:6])


def test_without_an_archive_timestamp_the_earliest_signer_certificate_ends_it(kyso: Kyso) -> None:
    seal = kyso.signing_key("hospital-seal").info.certificate.not_valid_after
    clinician = kyso.signing_key("dr-an").info.certificate.not_valid_after
    once = sign(kyso, corpus_pdfs()[5].read_bytes(), "hospital-seal", "B-T")
    assert extend_before(once) == seal
    twice = sign(kyso, once, "dr-an")
    assert extend_before(twice) == min(seal, clinician)


def test_a_value_that_is_no_cms_is_passed_over(kyso: Kyso) -> None:
    signed = sign(kyso, corpus_pdfs()[5].read_bytes(), "hospital-seal")
    junk = b"\n1 0 obj << /Contents <" + b"00" * 64 + b"> >> endobj\n"
    assert extend_before(signed + junk) == extend_before(signed)
