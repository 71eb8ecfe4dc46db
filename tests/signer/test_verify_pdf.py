"""Verification of PDF signatures: real signatures made with the dev PKI, judged by
kyso's report (SPEC section 5)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import random
import re
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes, serialization
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import MDPPerm, SigFieldSpec, SigSeedSubFilter
from pyhanko_certvalidator import ValidationContext
from support import CORPUS as SHARED_CORPUS

from kyso.certs.devpki import DEV_PASSPHRASE, dev_pki_dir
from kyso.errors import EncryptedPdf, InvalidPdf
from kyso.signer.cms import KeystoreSigner
from kyso.signer.pades import PdfSignOptions, async_sign_pdf
from kyso.signer.verify.pdf import revision_candidates, verify_pdf
from kyso.signer.verify.report import VerifySettings
from kyso.trust.fetching import FetchPolicy

CORPUS = str(SHARED_CORPUS / "pdf")
MINIMAL = f"{CORPUS}/001-trivial/minimal-document.pdf"
ENCRYPTED = f"{CORPUS}/005-libreoffice-writer-password/libreoffice-writer-password.pdf"
SPEC_MEMBERS = {
    "id", "field", "indication", "sub_indication", "intact", "trusted", "signer", "signing_time",
    "timestamp", "level", "coverage", "modifications", "revocation", "registered",
}  # fmt: skip
ADDED_MEMBERS = {"chain"}  # beyond SPEC section 5: the path to the root, by subject


@pytest.fixture(scope="module")
def unsigned() -> bytes:
    with open(MINIMAL, "rb") as f:
        return f.read()


@pytest.fixture(scope="module")
def sign(timestamper, trust_root, dev_crls):
    """``sign(pdf, key, level, certify=False, timestamper=...)``: the signed bytes."""

    def run(data: bytes, key, level: str, certify: bool = False, tsa=timestamper) -> bytes:
        context = ValidationContext(
            trust_roots=[trust_root], crls=list(dev_crls), allow_fetching=False
        )
        options = PdfSignOptions(level=level, certify=certify)
        return asyncio.run(async_sign_pdf(data, key, options, tsa, context)).pdf

    return run


@pytest.fixture(scope="module")
def signed(unsigned, sign, dev_key) -> dict[tuple[str, str], bytes]:
    """The minimal PDF signed by each seal at B-B and B-T."""
    return {
        (alias, level): sign(unsigned, dev_key(alias), level)
        for alias in ("hospital-seal", "lab-seal")
        for level in ("B-B", "B-T")
    }


def only(report):
    assert len(report.signatures) == 1
    return report.signatures[0]


@pytest.mark.parametrize("alias", ["hospital-seal", "lab-seal"])
@pytest.mark.parametrize("level", ["B-B", "B-T"])
def test_seal_signatures_pass_at_b_b_and_b_t(signed, settings, dev_key, alias, level):
    data = signed[(alias, level)]
    report = verify_pdf(data, settings)
    sig = only(report)
    cert = dev_key(alias).info.certificate
    assert report.indication == sig.indication == "TOTAL_PASSED"
    assert report.document_sha256 == hashlib.sha256(data).hexdigest()
    assert (sig.sub_indication, sig.intact, sig.trusted) == (None, True, True)
    assert (sig.id, sig.field, sig.level) == ("Signature1", "Signature1", level)
    assert (sig.coverage, sig.modifications) == ("ENTIRE_FILE", "NONE")
    assert sig.signer.sha256 == hashlib.sha256(cert.dump()).hexdigest()
    assert int(sig.signer.serial, 16) == cert.serial_number
    assert sig.signer.subject == cert.subject.human_friendly
    assert abs((datetime.now(UTC) - sig.signing_time).total_seconds()) < 600
    if level == "B-T":
        assert sig.timestamp.valid and "kyso" in sig.timestamp.tsa
        assert sig.signing_time == sig.timestamp.time
    else:
        assert sig.timestamp is None


def test_report_has_exactly_the_members_of_the_spec(signed, settings):
    body = verify_pdf(signed[("lab-seal", "B-T")], settings).to_json()
    assert set(body) == {"indication", "document_sha256", "signatures"}
    sig = body["signatures"][0]
    assert set(sig) == SPEC_MEMBERS | ADDED_MEMBERS
    assert set(sig["signer"]) == {"subject", "issuer", "serial", "sha256"}
    assert set(sig["timestamp"]) == {"time", "tsa", "valid"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", sig["signing_time"])


def test_revocation_is_good_with_the_crls_at_hand_and_unknown_without(
    signed, settings, settings_with_crls
):
    data = signed[("hospital-seal", "B-B")]
    assert only(verify_pdf(data, settings_with_crls)).revocation == "good"
    soft = only(verify_pdf(data, settings))
    assert (soft.indication, soft.revocation) == ("TOTAL_PASSED", "unknown")


def test_unknown_revocation_is_try_later_when_revocation_is_required(signed, settings):
    sig = only(
        verify_pdf(
            signed[("hospital-seal", "B-T")], dataclasses.replace(settings, revocation="require")
        )
    )
    assert (sig.indication, sig.sub_indication, sig.revocation) == (
        "INDETERMINATE",
        "TRY_LATER",
        "unknown",
    )
    assert sig.trusted


def test_unsigned_pdf_is_a_failed_report_without_signatures(unsigned, settings):
    report = verify_pdf(unsigned, settings)
    assert report.to_json() == {
        "indication": "TOTAL_FAILED",
        "document_sha256": hashlib.sha256(unsigned).hexdigest(),
        "signatures": [],
    }


@pytest.mark.parametrize("body", [b"", b"hello", b"%PDF-1.7\n1 0 obj\n<<", b"%PDF-1.4\n%%EOF\n"])
def test_what_is_not_a_readable_pdf_is_invalid_pdf(settings, body):
    with pytest.raises(InvalidPdf):
        verify_pdf(body, settings)


def test_truncated_signed_pdf_is_invalid_pdf(signed, settings):
    with pytest.raises(InvalidPdf):
        verify_pdf(signed[("hospital-seal", "B-B")][:-3000], settings)


def test_encrypted_pdf_is_refused(settings):
    with open(ENCRYPTED, "rb") as f:
        with pytest.raises(EncryptedPdf):
            verify_pdf(f.read(), settings)


def test_a_byte_changed_inside_the_signed_range_is_a_hash_failure(signed, settings):
    data = bytearray(signed[("hospital-seal", "B-T")])
    marker = data.index(b"%PDF-1.") + 7  # the minor version digit, inside the first range
    data[marker] = ord("7") if data[marker] != ord("7") else ord("6")
    sig = only(verify_pdf(bytes(data), settings))
    assert (sig.indication, sig.sub_indication, sig.intact) == (
        "TOTAL_FAILED",
        "HASH_FAILURE",
        False,
    )


def test_a_garbage_signature_container_is_a_format_failure(signed, settings):
    data = signed[("lab-seal", "B-B")]
    start = data.index(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    broken = data[:start] + b"0" * (end - start) + data[end:]
    sig = only(verify_pdf(broken, settings))
    assert (sig.indication, sig.sub_indication, sig.field) == (
        "TOTAL_FAILED",
        "FORMAT_FAILURE",
        "Signature1",
    )
    assert sig.message


def rewrite_first_page(data: bytes) -> bytes:
    """Append an incremental update that replaces the first page's /Contents."""
    writer = IncrementalPdfFileWriter(BytesIO(data))
    page_ref, _ = writer.find_page_for_modification(0)
    page = page_ref.get_object()
    forged = generic.StreamObject(stream_data=b"BT /F1 24 Tf 72 700 Td (Chan doan: da sua) Tj ET")
    page["/Contents"] = writer.add_object(forged)
    writer.update_container(page)
    out = BytesIO()
    writer.write(out)
    return out.getvalue()


def test_page_content_rewritten_after_signing_is_never_total_passed(signed, settings_with_crls):
    tampered = rewrite_first_page(signed[("hospital-seal", "B-T")])
    report = verify_pdf(tampered, settings_with_crls)
    sig = only(report)
    assert report.indication == sig.indication == "TOTAL_FAILED"
    assert (sig.sub_indication, sig.modifications) == ("FORMAT_FAILURE", "OTHER")
    assert (sig.intact, sig.coverage) == (True, "ENTIRE_REVISION")


def test_two_sequential_signatures_are_both_intact_and_pass(signed, sign, dev_key, settings):
    twice = sign(signed[("hospital-seal", "B-T")], dev_key("lab-seal"), "B-T")
    report = verify_pdf(twice, settings)
    first, second = report.signatures
    assert report.indication == "TOTAL_PASSED"
    assert (first.field, second.field) == ("Signature1", "Signature2")
    assert first.intact and second.intact
    assert (first.coverage, first.modifications) == ("ENTIRE_REVISION", "FORM_FILLING")
    assert (second.coverage, second.modifications) == ("ENTIRE_FILE", "NONE")


def test_a_certified_document_accepts_a_later_signature(unsigned, sign, dev_key, settings):
    certified = sign(unsigned, dev_key("hospital-seal"), "B-T", certify=True)
    both = sign(certified, dev_key("lab-seal"), "B-B")
    first, second = verify_pdf(both, settings).signatures
    assert (first.indication, first.modifications) == ("TOTAL_PASSED", "FORM_FILLING")
    assert second.indication == "TOTAL_PASSED"


def test_b_b_signature_of_a_revoked_clinician_fails_as_revoked(
    unsigned, sign, dev_key, settings_with_crls
):
    sig = only(verify_pdf(sign(unsigned, dev_key("dr-revoked"), "B-B"), settings_with_crls))
    assert (sig.indication, sig.sub_indication, sig.revocation) == (
        "TOTAL_FAILED",
        "REVOKED",
        "revoked",
    )
    assert not sig.trusted


def test_signature_timestamped_after_the_revocation_fails_as_revoked(
    unsigned, sign, dev_key, settings_with_crls
):
    sig = only(verify_pdf(sign(unsigned, dev_key("dr-revoked"), "B-T"), settings_with_crls))
    assert (sig.indication, sig.sub_indication, sig.revocation) == (
        "TOTAL_FAILED",
        "REVOKED",
        "revoked",
    )


def test_signature_timestamped_before_the_revocation_stays_valid(
    unsigned, sign, dev_key, timestamper_at, settings_with_crls
):
    before = datetime(2025, 5, 1, tzinfo=UTC)  # dr-revoked was revoked on 2025-06-01
    data = sign(unsigned, dev_key("dr-revoked"), "B-T", tsa=timestamper_at(before))
    sig = only(verify_pdf(data, settings_with_crls))
    assert (sig.indication, sig.revocation, sig.trusted) == ("TOTAL_PASSED", "revoked", True)
    assert sig.signing_time == sig.timestamp.time == before
    assert "after the signature timestamp" in sig.message


def test_signature_under_an_unknown_root_has_no_certificate_chain(
    unsigned, sign, foreign_signing_key, settings
):
    key, _ = foreign_signing_key
    sig = only(verify_pdf(sign(unsigned, key, "B-B"), settings))
    assert (sig.indication, sig.sub_indication, sig.trusted) == (
        "INDETERMINATE",
        "NO_CERTIFICATE_CHAIN_FOUND",
        False,
    )
    assert sig.intact


def test_dev_signature_is_untrusted_for_another_trust_root(signed, foreign_signing_key):
    _, foreign_root = foreign_signing_key
    sig = only(
        verify_pdf(
            signed[("lab-seal", "B-T")], VerifySettings((foreign_root,), allow_fetching=False)
        )
    )
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "NO_CERTIFICATE_CHAIN_FOUND")


@pytest.mark.parametrize(
    ("alias", "sub_indication"),
    [("dr-expired", "OUT_OF_BOUNDS_NO_POE"), ("dr-future", "NOT_YET_VALID")],
)
def test_certificates_outside_their_validity_are_indeterminate(
    unsigned, sign, dev_key, settings, alias, sub_indication
):
    sig = only(verify_pdf(sign(unsigned, dev_key(alias), "B-B"), settings))
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", sub_indication)


@pytest.fixture(scope="module")
def long_term(unsigned, sign, short_lived_key) -> dict[str, bytes]:
    """Signatures by a certificate that expires at the end of 2030, at B-T, B-LT and B-LTA."""
    return {level: sign(unsigned, short_lived_key, level) for level in ("B-T", "B-LT", "B-LTA")}


@pytest.mark.parametrize("level", ["B-T", "B-LT", "B-LTA"])
def test_levels_with_validation_data_are_reported(long_term, settings, level):
    report = verify_pdf(long_term[level], settings)
    sig = only(report)  # the document timestamp of B-LTA is not a signature of its own
    assert (sig.indication, sig.level, sig.modifications) == ("TOTAL_PASSED", level, "NONE")
    assert sig.revocation == ("unknown" if level == "B-T" else "good")


def test_b_lt_and_b_lta_survive_the_expiry_of_the_signer_certificate_but_b_t_does_not(
    long_term, settings
):
    """ETSI EN 319 102-1 5.5: the signature timestamp proves the signature existed while
    the certificate was valid; B-LT adds the revocation data of that time, B-LTA also
    protects it with a document timestamp. B-T has no revocation data to show."""
    later = dataclasses.replace(settings, validation_time=datetime(2035, 6, 1, tzinfo=UTC))
    for level in ("B-LT", "B-LTA"):
        sig = only(verify_pdf(long_term[level], later))
        assert (sig.indication, sig.level, sig.trusted, sig.revocation) == (
            "TOTAL_PASSED", level, True, "good",
        ), sig.message  # fmt: skip
    sig = only(verify_pdf(long_term["B-T"], later))
    assert (sig.indication, sig.sub_indication) == ("INDETERMINATE", "OUT_OF_BOUNDS_NO_POE")


def crl_revoking(serial: int, revoked_on: datetime) -> bytes:
    """A CRL of the dev intermediate CA, issued in 2035, that lists ``serial`` as revoked."""
    pki = dev_pki_dir()
    inter = cx509.load_pem_x509_certificate((pki / "intermediate-ca.cert.pem").read_bytes())
    key = serialization.load_pem_private_key(
        (pki / "intermediate-ca.key.pem").read_bytes(), DEV_PASSPHRASE
    )
    entry = (
        cx509.RevokedCertificateBuilder().serial_number(serial).revocation_date(revoked_on).build()
    )
    crl = (
        cx509.CertificateRevocationListBuilder()
        .issuer_name(inter.subject)
        .last_update(datetime(2035, 5, 1, tzinfo=UTC))
        .next_update(datetime(2035, 7, 1, tzinfo=UTC))
        .add_revoked_certificate(entry)
        .sign(key, hashes.SHA256())
    )
    return crl.public_bytes(serialization.Encoding.DER)


@pytest.mark.parametrize(
    "revoked_on", [datetime(2025, 2, 1, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC)]
)
def test_an_expired_b_lt_signer_that_a_crl_lists_as_revoked_is_never_total_passed(
    long_term, settings, short_lived_key, revoked_on
):
    """The DSS says good, a later CRL says revoked: the rescue of an expired certificate
    is refused, whenever the revocation took effect."""
    crl = crl_revoking(short_lived_key.info.certificate.serial_number, revoked_on)
    later = dataclasses.replace(
        settings, validation_time=datetime(2035, 6, 1, tzinfo=UTC), crls=(crl,)
    )
    sig = only(verify_pdf(long_term["B-LT"], later))
    assert sig.indication != "TOTAL_PASSED", sig


def test_an_expired_b_lt_signature_whose_page_was_rewritten_fails(long_term, settings):
    later = dataclasses.replace(settings, validation_time=datetime(2035, 6, 1, tzinfo=UTC))
    sig = only(verify_pdf(rewrite_first_page(long_term["B-LT"]), later))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "FORMAT_FAILURE")


def test_a_b_lt_signature_timestamped_after_its_certificate_expired_fails_as_expired(
    unsigned, sign, short_lived_key, timestamper_at, settings
):
    data = sign(
        unsigned, short_lived_key, "B-LT", tsa=timestamper_at(datetime(2031, 6, 1, tzinfo=UTC))
    )
    later = dataclasses.replace(settings, validation_time=datetime(2035, 6, 1, tzinfo=UTC))
    sig = only(verify_pdf(data, later))
    assert (sig.indication, sig.sub_indication) == ("TOTAL_FAILED", "EXPIRED"), sig


def test_registered_is_looked_up_with_the_hash_of_each_signed_output(
    signed, sign, dev_key, settings
):
    first_output = signed[("hospital-seal", "B-B")]
    second_output = sign(first_output, dev_key("lab-seal"), "B-B")
    first_hash = hashlib.sha256(first_output).hexdigest()
    second_hash = hashlib.sha256(second_output).hexdigest()
    log = {first_hash: 17, second_hash: 18}  # kyso made both outputs
    calls: list[list[str]] = []

    def registry(candidates: list[str]):
        calls.append(candidates)
        seq = next((log[c] for c in candidates if c in log), None)
        return None if seq is None else {"audit_seq": seq, "record_id": "encounter/123/discharge"}

    first, second = verify_pdf(second_output, settings, registry).signatures
    assert calls[0] == [second_hash]  # first: does the log hold this very file?
    assert calls[1][0] == first_hash and second_hash in calls[1]
    assert calls[2] == [second_hash]
    assert first.registered == {"audit_seq": 17, "record_id": "encounter/123/discharge"}
    assert second.registered == {"audit_seq": 18, "record_id": "encounter/123/discharge"}
    assert first.to_json()["registered"]["audit_seq"] == 17


def test_a_file_changed_after_kyso_signed_it_is_not_shown_with_the_original_log_entry(
    signed, settings
):
    """An incremental update leaves the first revision byte for byte kyso's output; the
    report must not reassure with that output's log entry: the log does not hold this file."""
    output = signed[("hospital-seal", "B-B")]
    tampered = rewrite_first_page(output)
    assert tampered.startswith(output)
    logged = {hashlib.sha256(output).hexdigest(): {"audit_seq": 17, "record_id": "r/1"}}

    def registry(candidates: list[str]):
        return next((logged[c] for c in candidates if c in logged), None)

    assert only(verify_pdf(output, settings, registry)).registered == {"audit_seq": 17, "record_id": "r/1"}
    assert only(verify_pdf(tampered, settings, registry)).registered is None


def test_the_report_names_the_path_to_the_root(signed, settings):
    sig = only(verify_pdf(signed[("hospital-seal", "B-B")], settings)).to_json()
    names = sig["chain"]
    assert len(names) == 3 and names[0] == sig["signer"]["subject"]
    assert "Issuing CA" in names[1] and "Root" in names[2]


def test_revision_candidates_start_at_the_signed_revision():
    data = b"%PDF-1.7\nrev1\n%%EOF\nrev2\n%%EOF\r\nrev3\n%%EOF"
    first_eof_end = data.index(b"%%EOF") + 6
    digests = revision_candidates(data, first_eof_end)
    expected_cuts = [first_eof_end, data.index(b"rev3") - 2, data.index(b"rev3"), len(data)]
    assert digests == [hashlib.sha256(data[:cut]).hexdigest() for cut in expected_cuts]


def test_every_corpus_pdf_gets_a_report_or_a_kyso_error(settings):
    outcomes = {}
    for path in sorted(Path(CORPUS).glob("*/*.pdf")):
        try:
            report = verify_pdf(path.read_bytes(), settings)
        except (InvalidPdf, EncryptedPdf) as exc:
            outcomes[path.name] = exc.code
            continue
        assert (report.indication, report.signatures) == ("TOTAL_FAILED", ())
        outcomes[path.name] = "unsigned"
    assert outcomes["libreoffice-writer-password.pdf"] == "encrypted_pdf"
    assert list(outcomes.values()).count("unsigned") > 20


def test_damaged_signed_pdfs_get_a_report_or_invalid_pdf_and_never_pass_if_signed_bytes_changed(
    signed, long_term, settings
):
    rng = random.Random(20261123)
    sources = [signed[("hospital-seal", "B-T")], long_term["B-LTA"]]
    for _ in range(25):
        data = bytearray(rng.choice(sources))
        first_range_end = int(re.search(rb"/ByteRange \[0 (\d+)", data).group(1))
        position = rng.randrange(first_range_end)
        data[position] = (data[position] + rng.randrange(1, 256)) % 256  # a signed byte changes
        if rng.random() < 0.5:  # and perhaps anything else too
            cut = rng.randrange(len(data))
            data[cut : cut + rng.randrange(1, 40)] = rng.randbytes(rng.randrange(40))
        try:
            report = verify_pdf(bytes(data), settings)
        except (InvalidPdf, EncryptedPdf):
            continue
        assert report.indication != "TOTAL_PASSED"


def test_revocation_is_fetched_from_the_crl_distribution_point(
    unsigned, sign, fetching_pki, crl_server
):
    root, key, make_crl = fetching_pki
    data = sign(unsigned, key, "B-B")
    # The CRL server is on loopback, which only an explicit policy allows.
    online = VerifySettings((root,), allow_fetching=True, fetch_policy=FetchPolicy(allow_private=True))
    crl_server.content = None  # the CRL cannot be fetched
    down = only(verify_pdf(data, online))
    assert (down.indication, down.revocation) == ("TOTAL_PASSED", "unknown")
    crl_server.content = make_crl()
    assert (
        only(verify_pdf(data, dataclasses.replace(online, allow_fetching=False))).revocation
        == "unknown"
    )
    fetched = only(verify_pdf(data, online))
    assert (fetched.indication, fetched.revocation) == ("TOTAL_PASSED", "good")
    crl_server.content = make_crl(revoked=True)
    revoked = only(verify_pdf(data, online))
    assert (revoked.indication, revoked.sub_indication, revoked.revocation) == (
        "TOTAL_FAILED",
        "REVOKED",
        "revoked",
    )


def test_a_form_filled_after_a_no_changes_certification_violates_its_docmdp(dev_key, settings):
    with open(f"{CORPUS}/010-pdflatex-forms/pdflatex-forms.pdf", "rb") as f:
        form = f.read()
    # kyso certifies with FILL_FORMS; pyHanko itself can certify with NO_CHANGES.
    meta = signers.PdfSignatureMetadata(
        field_name="Author",
        certify=True,
        docmdp_permissions=MDPPerm.NO_CHANGES,
        subfilter=SigSeedSubFilter.PADES,
    )
    signer = signers.PdfSigner(
        meta, KeystoreSigner(dev_key("hospital-seal")), new_field_spec=SigFieldSpec("Author")
    )
    certified = BytesIO()
    asyncio.run(signer.async_sign_pdf(IncrementalPdfFileWriter(BytesIO(form)), output=certified))
    writer = IncrementalPdfFileWriter(BytesIO(certified.getvalue()))
    text_field = next(
        f.get_object()
        for f in writer.root["/AcroForm"]["/Fields"]
        if f.get_object().get("/FT") == "/Tx"
    )
    text_field["/V"] = generic.TextStringObject("filled in later")
    writer.update_container(text_field)
    filled = BytesIO()
    writer.write(filled)
    sig = only(verify_pdf(filled.getvalue(), settings))
    assert (sig.indication, sig.sub_indication, sig.modifications) == (
        "TOTAL_FAILED",
        "FORMAT_FAILURE",
        "FORM_FILLING",
    )
    assert "DocMDP" in sig.message
