"""extend_before: when a signed PDF must be extended again, from the signature values of its
form that validate, never from other bytes of the file."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import UTC, datetime

import pytest
from forged import (
    FixedTimeStamper,
    add_document_timestamp,
    client_of,
    rogue_tsa,
    with_unreferenced_timestamp,
)
from support import CORPUS, corpus_pdfs, make_config

from kyso.service import Actor, Kyso
from kyso.signer.archive_dates import extend_before, read_dictionary
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.trust.store import TrustStore


@pytest.fixture(scope="module")
def kyso(tmp_path_factory: pytest.TempPathFactory):
    service = Kyso.open(make_config(tmp_path_factory.mktemp("archive-dates")))
    yield service
    service.close()


def sign(kyso: Kyso, data: bytes, alias: str, level: str = "B-B") -> bytes:
    return kyso.sign_pdf(Actor("test"), alias, data, PdfSignOptions(level=level), None)[0].pdf


def test_an_unsigned_pdf_has_no_date_even_with_hex_annotation_text(kyso: Kyso) -> None:
    annotated = (CORPUS / "pdf/024-annotations/annotated_pdf.pdf").read_bytes()
    assert extend_before(annotated, kyso.trust) is None
    assert all(extend_before(path.read_bytes(), kyso.trust) is None for path in corpus_pdfs()[:6])


def test_without_an_archive_timestamp_the_earliest_signer_certificate_ends_it(kyso: Kyso) -> None:
    seal = kyso.signing_key("hospital-seal").info.certificate.not_valid_after
    clinician = kyso.signing_key("dr-an").info.certificate.not_valid_after
    once = sign(kyso, corpus_pdfs()[5].read_bytes(), "hospital-seal", "B-T")
    assert extend_before(once, kyso.trust) == seal
    twice = sign(kyso, once, "dr-an")
    assert extend_before(twice, kyso.trust) == min(seal, clinician)


def test_a_value_that_is_no_cms_is_passed_over(kyso: Kyso) -> None:
    signed = sign(kyso, corpus_pdfs()[5].read_bytes(), "hospital-seal")
    junk = b"\n1 0 obj << /Contents <" + b"00" * 64 + b"> >> endobj\n"
    assert extend_before(signed + junk, kyso.trust) == extend_before(signed, kyso.trust)


# -- only what validated counts --------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_trust(trust_root) -> TrustStore:
    return TrustStore((trust_root.dump(),))


@pytest.fixture(scope="module")
def short_signed(short_lived_key) -> bytes:
    """A B-B signature whose certificate ends on 2030-12-31, before every dev certificate."""
    options = PdfSignOptions(level="B-B")
    return asyncio.run(async_sign_pdf(corpus_pdfs()[5].read_bytes(), short_lived_key, options, None)).pdf


SHORT_END = datetime(2030, 12, 31, tzinfo=UTC)
DEV_END = datetime(2055, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_a_signature_counts_until_its_certificate_ends(short_signed, dev_trust) -> None:
    assert extend_before(short_signed, dev_trust) == SHORT_END


def test_an_unreferenced_timestamp_in_the_bytes_changes_nothing(
    short_signed, dev_trust, builtin_tsa
) -> None:
    token = rogue_tsa().timestamp(hashlib.sha256(b"anything").digest())
    assert extend_before(with_unreferenced_timestamp(short_signed, token), dev_trust) == SHORT_END
    genuine = builtin_tsa.timestamp(hashlib.sha256(b"x").digest())
    assert extend_before(with_unreferenced_timestamp(short_signed, genuine), dev_trust) == SHORT_END


def test_a_document_timestamp_of_an_untrusted_tsa_changes_nothing(short_signed, dev_trust) -> None:
    stamped = asyncio.run(add_document_timestamp(short_signed, client_of(rogue_tsa()), "Archive1"))
    assert extend_before(stamped, dev_trust) == SHORT_END


def test_a_genuine_token_over_other_bytes_changes_nothing(
    short_signed, dev_trust, builtin_tsa
) -> None:
    stolen = builtin_tsa.timestamp(hashlib.sha256(b"other").digest())
    stamped = asyncio.run(add_document_timestamp(short_signed, FixedTimeStamper(stolen), "Archive1"))
    assert extend_before(stamped, dev_trust) == SHORT_END


def test_a_genuine_archive_timestamp_moves_it_to_the_tsa_certificate_end(
    short_signed, dev_trust, timestamper, short_lived_key
) -> None:
    stamped = asyncio.run(add_document_timestamp(short_signed, timestamper, "Archive1"))
    assert extend_before(stamped, dev_trust) == DEV_END
    # A signature added after the archive timestamp is not covered by it.
    options = PdfSignOptions(level="B-B")
    again = asyncio.run(async_sign_pdf(stamped, short_lived_key, options, None)).pdf
    assert extend_before(again, dev_trust) == SHORT_END


def test_a_signature_that_does_not_chain_to_a_trust_anchor_has_no_date(
    foreign_signing_key, dev_trust
) -> None:
    key, _ = foreign_signing_key
    options = PdfSignOptions(level="B-B")
    signed = asyncio.run(async_sign_pdf(corpus_pdfs()[5].read_bytes(), key, options, None)).pdf
    assert extend_before(signed, dev_trust) is None


def test_the_signature_dictionary_reader_is_not_fooled_by_strings() -> None:
    pdf = (
        b"%PDF-1.7\n7 0 obj\n<< /Reason (a /ByteRange [0 1 2 3] \\) (nested) ) /Type /Sig "
        b"/M <00ff> /ByteRange [0 10 20 5] /Contents <3000> /Sub << /A [1 0 R (x)] >> >>\nendobj\n"
    )
    entries = read_dictionary(pdf, pdf.index(b"7 0 obj"))
    start, end = entries[b"/ByteRange"]
    assert pdf[start:end] == b"[0 10 20 5]"
    assert pdf[slice(*entries[b"/Contents"])] == b"<3000>"


# -- a signature just made is judged without reading the file again ------------------------


@pytest.mark.parametrize("level", ["B-B", "B-T"])
@pytest.mark.parametrize("signer", ["hospital-seal", "lab-seal", "short", "foreign"])
def test_the_date_of_a_signature_just_made_is_the_date_read_back_from_the_file(
    kyso: Kyso, dev_trust, short_lived_key, foreign_signing_key, level: str, signer: str
) -> None:
    from io import BytesIO

    from kyso.signer.archive_dates import async_own_deadline
    from kyso.signer.pades import async_sign_pdf_stream

    key = {"short": short_lived_key, "foreign": foreign_signing_key[0]}.get(signer)
    key = key or kyso.signing_key(signer)
    for trust in (kyso.trust, dev_trust):
        out = BytesIO()
        made = asyncio.run(async_sign_pdf_stream(
            BytesIO(corpus_pdfs()[5].read_bytes()), out, key, PdfSignOptions(level=level), kyso.timestamper
        ))  # fmt: skip
        own = asyncio.run(async_own_deadline(made.field, made.cms, made.end, made.document_digest, trust))
        assert own == extend_before(out.getvalue(), trust), (signer, level)
        assert (own is None) == (signer == "foreign")
    assert made.sha256 == hashlib.sha256(out.getvalue()).hexdigest() and made.size == len(out.getvalue())
    assert not made.signed_before


def test_a_pdf_signed_before_is_read_again_for_its_date(kyso: Kyso) -> None:
    once = sign(kyso, corpus_pdfs()[5].read_bytes(), "hospital-seal", "B-T")
    _signed, appended = kyso.sign_pdf(Actor("test"), "dr-an", once, PdfSignOptions(level="B-B"), None)
    twice = _signed.pdf
    from sqlalchemy import select

    from kyso.audit.rows import iso_seconds
    from kyso.db import signatures

    with kyso.db.reader.connect() as conn:
        query = select(signatures.c.extend_before).where(signatures.c.audit_seq == appended.seq)
        stored = conn.execute(query).scalar_one()
    expected = extend_before(twice, kyso.trust)
    assert expected is not None and stored == iso_seconds(expected)
