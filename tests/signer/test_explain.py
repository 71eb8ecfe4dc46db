"""Reports explained to a clerk: every verdict and code in plain Vietnamese (or English),
times in Vietnam's time, no raw code without its meaning beside it."""

from __future__ import annotations

import re

import pytest

from kyso.signer.verify import words
from kyso.signer.verify.explain import choose_language, explain_report, format_time, render_text

SIGNER = {
    "subject": "Common Name: BS. Nguyễn Văn An, Organization: Bệnh viện Đa khoa, Country: VN",
    "issuer": "Common Name: VNPT SmartCA RS, Organization: VNPT, Country: VN",
    "serial": "1a", "sha256": "00" * 32,
}  # fmt: skip
CHAIN = [SIGNER["subject"], SIGNER["issuer"], "Common Name: Vietnam National Root CA, Country: VN"]
PASSED = {
    "id": "Signature1", "field": "Signature1", "indication": "TOTAL_PASSED", "sub_indication": None,
    "intact": True, "trusted": True, "signer": SIGNER, "signing_time": "2026-12-02T07:59:16Z",
    "timestamp": {"time": "2026-12-02T07:59:16Z", "tsa": "Common Name: TSA quốc gia", "valid": True},
    "level": "B-T", "coverage": "ENTIRE_FILE", "modifications": "NONE", "revocation": "good",
    "registered": {"audit_seq": 17, "record_id": "ba/2026/123"}, "chain": CHAIN,
}  # fmt: skip
TAMPERED = dict(
    PASSED, indication="TOTAL_FAILED", sub_indication="FORMAT_FAILURE", coverage="ENTIRE_REVISION",
    modifications="OTHER", registered=None, message="the document was changed after signing",
)  # fmt: skip
UNTRUSTED = dict(
    PASSED, indication="INDETERMINATE", sub_indication="NO_CERTIFICATE_CHAIN_FOUND", trusted=False,
    timestamp=None, level="B-B", revocation="unknown", registered=None, chain=CHAIN[:2],
)  # fmt: skip
RAW = re.compile(
    r"\b(TOTAL_PASSED|TOTAL_FAILED|INDETERMINATE|[A-Z]+_FAILURE|[A-Z_]+_NO_POE|OTHER|NONE|"
    r"ENTIRE_FILE|ENTIRE_REVISION|PARTIAL|true|false)\b"
)
SENTENCE_KEYS = ("verdict", "signer", "time", "changes", "trust", "revocation", "log")


def report(*signatures: dict) -> dict:
    worst = max((s["indication"] for s in signatures), key=("TOTAL_PASSED", "INDETERMINATE", "TOTAL_FAILED").index, default="TOTAL_FAILED")
    return {"indication": worst, "document_sha256": "ab" * 32, "signatures": list(signatures)}


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        ("vi", "vi"), ("vi-VN,vi;q=0.9,en-US;q=0.8,en;q=0.7", "vi"), ("en-US,en;q=0.9,vi;q=0.8", "en"),
        ("fr-FR,fr;q=0.9", "en"), (None, "en"), ("", "en"), ("fr, vi;q=0.5", "vi"), ("vi;q=0, en", "en"),
    ],
)  # fmt: skip
def test_the_language_is_the_one_asked_for_or_english(header, lang) -> None:
    assert choose_language(header) == lang


def test_times_are_shown_in_vietnams_time() -> None:
    assert format_time("2026-12-02T07:59:16Z", "vi") == "14:59:16 ngày 02/12/2026 (giờ Việt Nam, UTC+7)"
    assert format_time("2026-12-31T18:30:00Z", "vi") == "01:30:00 ngày 01/01/2027 (giờ Việt Nam, UTC+7)"
    assert format_time("2026-12-02T07:59:16.250000Z", "en") == "2 December 2026, 14:59:16 Vietnam time (UTC+7)"


def test_a_valid_signature_says_who_when_unchanged_trusted_and_logged_in_vietnamese() -> None:
    out = explain_report(report(PASSED), "vi")
    assert out["explanation"]["verdict"] == "Hợp lệ" and out["explanation"]["lang"] == "vi"
    ex = out["signatures"][0]["explanation"]
    assert ex["verdict"].startswith("Hợp lệ: chữ ký đúng")
    assert ex["signer"].startswith("BS. Nguyễn Văn An, chứng thư số do VNPT SmartCA RS cấp")
    assert ex["time"] == (
        "14:59:16 ngày 02/12/2026 (giờ Việt Nam, UTC+7). Dấu thời gian của TSA quốc gia "
        "chứng minh thời điểm này."
    )
    assert ex["changes"] == "Tài liệu không bị sửa đổi sau khi ký."
    assert "BS. Nguyễn Văn An → VNPT SmartCA RS → Vietnam National Root CA" in ex["trust"]
    assert ex["log"] == "Nhật ký kyso lưu đúng tệp này: mục số 17, hồ sơ «ba/2026/123»."


def test_a_changed_document_is_said_to_be_changed_after_signing_and_not_in_the_log() -> None:
    ex = explain_report(report(TAMPERED), "vi")["signatures"][0]["explanation"]
    assert ex["verdict"] == "Không hợp lệ: tài liệu đã bị sửa đổi sau khi ký."
    assert ex["changes"] == "Tài liệu đã bị sửa đổi sau khi ký."
    assert ex["log"].startswith("Nhật ký kyso không lưu đúng tệp này")
    assert ex["detail"] == TAMPERED["message"]  # the validator's own words, labelled as English


def test_an_untrusted_signer_is_told_why_and_where_its_chain_stops() -> None:
    ex = explain_report(report(UNTRUSTED), "vi")["signatures"][0]["explanation"]
    assert ex["verdict"].startswith("Chưa xác định được: không tìm thấy chuỗi chứng thư")
    assert ex["trust"].startswith("Người ký không được tin cậy: không tìm thấy chuỗi chứng thư")
    assert "BS. Nguyễn Văn An → VNPT SmartCA RS" in ex["trust"] and 'profile = "vn"' in ex["trust"]
    assert "chưa được chứng minh" in ex["time"]  # no timestamp: the claimed time only


def test_an_unsigned_document_is_explained() -> None:
    out = explain_report(report(), "vi")
    assert out["explanation"]["verdict"] == "Không hợp lệ"
    assert out["explanation"]["summary"].startswith("Tài liệu không có chữ ký số nào")


@pytest.mark.parametrize("lang", words.LANGUAGES)
@pytest.mark.parametrize("sig", [PASSED, TAMPERED, UNTRUSTED], ids=["passed", "tampered", "untrusted"])
def test_no_sentence_shows_a_raw_code_and_every_code_has_its_meaning(sig: dict, lang: str) -> None:
    ex = explain_report(report(sig), lang)["signatures"][0]["explanation"]
    for key in SENTENCE_KEYS:
        assert not RAW.search(ex[key]), (key, ex[key])
    codes = {t["code"] for t in ex["terms"]}
    for member in ("indication", "sub_indication", "level", "coverage", "modifications", "revocation"):
        assert sig[member] is None or sig[member] in codes
    assert all(t["meaning"] and t["meaning"] != t["code"] for t in ex["terms"])


def test_every_code_kyso_reports_has_a_meaning_in_both_languages() -> None:
    from kyso.signer.verify import report as r

    subs = {v for k, v in vars(r).items() if k.isupper() and isinstance(v, str) and v.endswith(
        ("_FAILURE", "_NO_POE", "REVOKED", "EXPIRED", "NOT_YET_VALID", "TRY_LATER", "_FOUND"))}
    for lang in words.LANGUAGES:
        assert subs <= set(words.SUB_INDICATIONS[lang]), subs - set(words.SUB_INDICATIONS[lang])
        assert set(r.INDICATIONS) == set(words.INDICATIONS[lang])
        assert set(r.LEVELS) == set(words.LEVELS[lang]) and set(r.COVERAGES) == set(words.COVERAGES[lang])
        assert set(r.MODIFICATIONS) == set(words.MODIFICATIONS[lang])
        assert set(r.REVOCATION_STATES) == set(words.REVOCATION[lang])
        assert set(words.SENTENCES[lang]) == set(words.SENTENCES["vi"])


def test_english_is_the_default_and_the_text_form_reads_top_down() -> None:
    text = render_text(explain_report(report(TAMPERED), "en"))
    assert text.startswith("Verdict on the document: Not valid\n")
    assert "Signature 1 (Signature1): Not valid: the document was changed after signing." in text
    assert "    OTHER: the document was changed after signing" in text


def test_a_jws_whose_value_fails_is_said_changed_and_one_unreadable_is_not_judged() -> None:
    jws = dict(PASSED, field=None, coverage=None, modifications=None)
    broken = dict(jws, indication="TOTAL_FAILED", sub_indication="SIG_CRYPTO_FAILURE", intact=False)
    unreadable = dict(jws, indication="TOTAL_FAILED", sub_indication="FORMAT_FAILURE", intact=False)
    assert explain_report(report(jws), "vi")["signatures"][0]["explanation"]["changes"] == (
        "Tài liệu không bị sửa đổi sau khi ký."
    )
    said = explain_report(report(broken), "vi")["signatures"][0]["explanation"]["changes"]
    assert "tài liệu đã bị sửa đổi sau khi ký" in said
    said = explain_report(report(unreadable), "vi")["signatures"][0]["explanation"]["changes"]
    assert said.startswith("Không kiểm tra được")
