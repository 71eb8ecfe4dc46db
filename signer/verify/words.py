"""What the codes of a validation report mean, in Vietnamese and English.

A report speaks in ETSI EN 319 102-1 codes (``TOTAL_FAILED``, ``FORMAT_FAILURE``) and SPEC 5
values (``OTHER``, ``unknown``); a clerk reading it needs the meaning beside each one. This
module holds only words: :mod:`kyso.signer.verify.explain` puts them together.
"""

from __future__ import annotations

LANGUAGES = ("vi", "en")

INDICATIONS = {
    "vi": {
        "TOTAL_PASSED": "Hợp lệ",
        "INDETERMINATE": "Chưa xác định được",
        "TOTAL_FAILED": "Không hợp lệ",
    },
    "en": {
        "TOTAL_PASSED": "Valid",
        "INDETERMINATE": "Cannot be confirmed",
        "TOTAL_FAILED": "Not valid",
    },
}

SUB_INDICATIONS = {
    "vi": {
        "FORMAT_FAILURE": "lỗi định dạng: chữ ký hoặc tài liệu không đúng cấu trúc, hoặc tài "
        "liệu đã bị thay đổi quá mức cho phép sau khi ký",
        "HASH_FAILURE": "nội dung đã ký không còn khớp với chữ ký: tài liệu đã bị sửa đổi sau khi ký",
        "SIG_CRYPTO_FAILURE": "giá trị chữ ký không khớp với khóa của người ký (chữ ký bị hỏng "
        "hoặc nội dung đã bị thay đổi)",
        "REVOKED": "chứng thư số của người ký đã bị thu hồi trước khi ký",
        "EXPIRED": "chứng thư số của người ký đã hết hạn khi ký",
        "NOT_YET_VALID": "chứng thư số của người ký chưa có hiệu lực khi ký",
        "SIG_CONSTRAINTS_FAILURE": "chữ ký không đạt yêu cầu kiểm tra (ví dụ: dấu thời gian "
        "đi kèm không hợp lệ nên không tin được thời điểm ký)",
        "CHAIN_CONSTRAINTS_FAILURE": "chứng thư số không được cấp cho việc ký tài liệu "
        "(mục đích sử dụng khóa không phù hợp)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "không kiểm tra được chuỗi chứng thư số",
        "CRYPTO_CONSTRAINTS_FAILURE": "chữ ký dùng thuật toán hoặc khóa yếu (như SHA-1, MD5, "
        "RSA dưới 2048 bit) không còn được phép dùng để ký",
        "NO_SIGNING_CERTIFICATE_FOUND": "không xác định được chứng thư số của người ký",
        "NO_CERTIFICATE_CHAIN_FOUND": "không tìm thấy chuỗi chứng thư dẫn tới một CA gốc được tin cậy",
        "REVOKED_NO_POE": "chứng thư số đã bị thu hồi và không có dấu thời gian chứng minh chữ "
        "ký được tạo trước khi thu hồi",
        "REVOKED_CA_NO_POE": "chứng thư của CA cấp đã bị thu hồi và không có dấu thời gian "
        "chứng minh chữ ký được tạo trước đó",
        "OUT_OF_BOUNDS_NO_POE": "chứng thư số không còn hiệu lực vào lúc kiểm tra và không có "
        "dấu thời gian chứng minh chữ ký được tạo khi chứng thư còn hiệu lực",
        "TRY_LATER": "chưa lấy được thông tin thu hồi chứng thư (CRL/OCSP); hãy kiểm tra lại sau",
    },
    "en": {
        "FORMAT_FAILURE": "format failure: the signature or the document is not as it must be, "
        "or the document was changed after signing beyond what is allowed",
        "HASH_FAILURE": "the signed content no longer matches the signature: the document was "
        "changed after signing",
        "SIG_CRYPTO_FAILURE": "the signature value does not verify with the signer's key (a "
        "broken signature, or changed content)",
        "REVOKED": "the signer's certificate was revoked before the signature was made",
        "EXPIRED": "the signer's certificate had expired when the signature was made",
        "NOT_YET_VALID": "the signer's certificate was not yet valid when the signature was made",
        "SIG_CONSTRAINTS_FAILURE": "the signature fails a check (for example, its timestamp is "
        "not valid, so its time cannot be relied on)",
        "CHAIN_CONSTRAINTS_FAILURE": "the certificate is not issued for signing documents (key usage)",
        "CERTIFICATE_CHAIN_GENERAL_FAILURE": "the certificate chain could not be validated",
        "CRYPTO_CONSTRAINTS_FAILURE": "the signature uses a weak algorithm or key (such as SHA-1, "
        "MD5, RSA under 2048 bits) that may no longer sign",
        "NO_SIGNING_CERTIFICATE_FOUND": "the signer's certificate cannot be identified",
        "NO_CERTIFICATE_CHAIN_FOUND": "no certificate chain to a trusted root CA was found",
        "REVOKED_NO_POE": "the certificate was revoked, and no timestamp proves the signature "
        "was made before",
        "REVOKED_CA_NO_POE": "the issuing CA's certificate was revoked, and no timestamp proves "
        "the signature was made before",
        "OUT_OF_BOUNDS_NO_POE": "the certificate is not valid at the time of checking, and no "
        "timestamp proves the signature was made while it was",
        "TRY_LATER": "the certificate's revocation status (CRL/OCSP) could not be obtained; "
        "check again later",
    },
}

LEVELS = {
    "vi": {
        "B-B": "chữ ký cơ bản, không có dấu thời gian",
        "B-T": "có dấu thời gian chứng minh thời điểm ký",
        "B-LT": "có dấu thời gian và dữ liệu để kiểm tra lâu dài (chứng thư, CRL/OCSP)",
        "B-LTA": "như B-LT, thêm dấu thời gian lưu trữ để kiểm tra được sau khi chứng thư hết hạn",
    },
    "en": {
        "B-B": "basic signature, without a timestamp",
        "B-T": "with a timestamp that proves when it was signed",
        "B-LT": "with a timestamp and the data to check it long-term (certificates, CRL/OCSP)",
        "B-LTA": "as B-LT, plus an archive timestamp that keeps it checkable after the "
        "certificates expire",
    },
}

COVERAGES = {
    "vi": {
        "ENTIRE_FILE": "chữ ký bao trùm toàn bộ tệp",
        "ENTIRE_REVISION": "chữ ký bao trùm toàn bộ phiên bản được ký; tệp có phần được thêm sau đó",
        "PARTIAL": "chữ ký chỉ bao trùm một phần phiên bản được ký",
    },
    "en": {
        "ENTIRE_FILE": "the signature covers the whole file",
        "ENTIRE_REVISION": "the signature covers the whole signed revision; the file has "
        "later additions",
        "PARTIAL": "the signature covers only part of its revision",
    },
}

MODIFICATIONS = {
    "vi": {
        "NONE": "không có thay đổi nào sau khi ký",
        "FORM_FILLING": "sau khi ký chỉ có điền biểu mẫu hoặc ký thêm (được phép)",
        "ANNOTATIONS": "sau khi ký chỉ có thêm ghi chú (nội dung đã ký không đổi)",
        "OTHER": "tài liệu đã bị sửa đổi sau khi ký",
    },
    "en": {
        "NONE": "nothing changed after signing",
        "FORM_FILLING": "after signing, only form filling or further signatures (allowed)",
        "ANNOTATIONS": "after signing, only comments were added (the signed content is unchanged)",
        "OTHER": "the document was changed after signing",
    },
}

REVOCATION = {
    "vi": {
        "good": "chứng thư chưa bị thu hồi (đã kiểm tra CRL/OCSP)",
        "revoked": "chứng thư đã bị thu hồi",
        "unknown": "chưa xác định được tình trạng thu hồi (không có CRL/OCSP)",
    },
    "en": {
        "good": "the certificate is not revoked (CRL/OCSP checked)",
        "revoked": "the certificate is revoked",
        "unknown": "the revocation status is not known (no CRL/OCSP at hand)",
    },
}

BOOLEANS = {
    "vi": {
        ("intact", True): "nội dung đã ký còn nguyên vẹn",
        ("intact", False): "nội dung đã ký không còn nguyên vẹn, hoặc không kiểm tra được",
        ("trusted", True): "người ký được tin cậy",
        ("trusted", False): "người ký không được tin cậy",
    },
    "en": {
        ("intact", True): "the signed content is intact",
        ("intact", False): "the signed content is not intact, or could not be checked",
        ("trusted", True): "the signer is trusted",
        ("trusted", False): "the signer is not trusted",
    },
}

LABELS = {
    "vi": {
        "document": "Kết luận về tài liệu",
        "signature": "Chữ ký",
        "signer": "Người ký",
        "time": "Thời điểm ký",
        "changes": "Sau khi ký",
        "trust": "Độ tin cậy",
        "revocation": "Thu hồi chứng thư",
        "log": "Nhật ký kyso",
        "terms": "Giải thích các mã trong báo cáo",
        "detail": "Chi tiết kỹ thuật (tiếng Anh)",
        "sha256": "Mã băm SHA-256 của tệp",
    },
    "en": {
        "document": "Verdict on the document",
        "signature": "Signature",
        "signer": "Signed by",
        "time": "Signing time",
        "changes": "After signing",
        "trust": "Trust",
        "revocation": "Revocation",
        "log": "kyso's log",
        "terms": "What the codes in the report mean",
        "detail": "Technical detail",
        "sha256": "SHA-256 of the file",
    },
}

# Sentences of the explanation; {placeholders} are filled by kyso.signer.verify.explain.
SENTENCES = {
    "vi": {
        "passed": "Hợp lệ: chữ ký đúng, tài liệu không bị sửa đổi sau khi ký và người ký được tin cậy.",
        "passed_revoked_later": "Hợp lệ, có lưu ý: chứng thư của người ký đã bị thu hồi, nhưng "
        "sau thời điểm ký mà dấu thời gian chứng minh.",
        "not_passed": "{indication}: {meaning}.",
        "signer": "{name}, chứng thư số do {issuer} cấp.",
        "signer_unknown": "Không đọc được thông tin người ký.",
        "time_proven": "{time}. Dấu thời gian của {tsa} chứng minh thời điểm này.",
        "time_bad_timestamp": "Người ký ghi thời điểm {time}, nhưng dấu thời gian đi kèm không "
        "hợp lệ nên không chứng minh được thời điểm này.",
        "time_claimed": "Người ký tự ghi thời điểm {time}; không có dấu thời gian nên thời "
        "điểm này chưa được chứng minh.",
        "time_unknown": "Không rõ thời điểm ký.",
        "clock": "{hms} ngày {dmy} (giờ Việt Nam, UTC+7)",
        "changed": "Tài liệu đã bị sửa đổi sau khi ký.",
        "changed_hash": "Tài liệu đã bị sửa đổi sau khi ký: nội dung đã ký không còn khớp với chữ ký.",
        "changed_json": "Chữ ký không khớp với nội dung: tài liệu đã bị sửa đổi sau khi ký, "
        "hoặc chữ ký bị hỏng.",
        "changed_docmdp": "Tài liệu đã bị sửa đổi sau khi ký, vượt quá mức mà chữ ký chứng "
        "nhận cho phép.",
        "changed_unknown": "Không kiểm tra được tài liệu có bị sửa đổi hay không, vì không "
        "đọc được chữ ký.",
        "unchanged": "Tài liệu không bị sửa đổi sau khi ký.",
        "unchanged_later": "Nội dung đã ký không bị sửa đổi; phần thêm vào sau chỉ là dữ liệu "
        "kiểm tra hoặc dấu thời gian lưu trữ.",
        "form_filling": "Nội dung đã ký không bị sửa đổi; sau khi ký chỉ có điền biểu mẫu "
        "hoặc ký thêm, là những thay đổi được phép.",
        "annotations": "Nội dung đã ký không bị sửa đổi; sau khi ký chỉ có thêm ghi chú.",
        "trusted": "Người ký được tin cậy: chuỗi chứng thư dẫn tới CA gốc được tin cậy ({path}).",
        "trusted_integrity": "Chứng thư của người ký dẫn tới CA gốc được tin cậy ({path}), "
        "nhưng chữ ký không đạt yêu cầu (xem kết luận).",
        "untrusted": "Người ký không được tin cậy: {reason}.",
        "untrusted_path": " Chuỗi chứng thư tìm được: {path}.",
        "untrusted_hint": " Nếu đây là một CA hợp pháp (VNPT-CA, Viettel-CA, FPT-CA, BKAV-CA, "
        "...), quản trị viên cần thêm chứng thư CA trung gian của CA đó và bật hồ sơ tin cậy "
        'quốc gia ([trust] profile = "vn").',
        "untrusted_reason": "không xác định được chuỗi chứng thư tới một CA gốc được tin cậy",
        "logged": "Nhật ký kyso lưu đúng tệp này: mục số {seq}{record}.",
        "logged_record": ", hồ sơ «{record_id}»",
        "not_logged": "Nhật ký kyso không lưu đúng tệp này: tệp không do kyso này tạo ra, "
        "hoặc đã bị thay đổi sau khi kyso ghi nhận.",
        "summary_none": "Tài liệu không có chữ ký số nào, nên không xác nhận được ai đã ký "
        "và tài liệu có bị sửa đổi hay không.",
        "summary": "Tài liệu có {count} chữ ký: {parts}.",
        "summary_part": "chữ ký {n} {verdict}",
        "term_level": "mức chữ ký",
    },
    "en": {
        "passed": "Valid: the signature is sound, the document was not changed after signing, "
        "and the signer is trusted.",
        "passed_revoked_later": "Valid, with a caveat: the signer's certificate was revoked, but "
        "after the signing time that the timestamp proves.",
        "not_passed": "{indication}: {meaning}.",
        "signer": "{name}, certificate issued by {issuer}.",
        "signer_unknown": "The signer cannot be read.",
        "time_proven": "{time}. A timestamp by {tsa} proves this time.",
        "time_bad_timestamp": "The signer claims {time}, but the timestamp with it is not valid, "
        "so this time is not proven.",
        "time_claimed": "The signer claims {time}; without a timestamp this time is not proven.",
        "time_unknown": "The signing time is not known.",
        "clock": "{dmy_en}, {hms} Vietnam time (UTC+7)",
        "changed": "The document was changed after signing.",
        "changed_hash": "The document was changed after signing: the signed content no longer "
        "matches the signature.",
        "changed_json": "The signature does not match the content: the document was changed "
        "after signing, or the signature is broken.",
        "changed_docmdp": "The document was changed after signing beyond what its certification "
        "allows.",
        "changed_unknown": "Whether the document was changed cannot be told: the signature "
        "cannot be read.",
        "unchanged": "The document was not changed after signing.",
        "unchanged_later": "The signed content was not changed; what was added later is only "
        "validation data or archive timestamps.",
        "form_filling": "The signed content was not changed; after signing there was only form "
        "filling or further signatures, which are allowed.",
        "annotations": "The signed content was not changed; after signing only comments were added.",
        "trusted": "The signer is trusted: the certificate chain leads to a trusted root CA ({path}).",
        "trusted_integrity": "The signer's certificate leads to a trusted root CA ({path}), but "
        "the signature did not pass (see the verdict).",
        "untrusted": "The signer is not trusted: {reason}.",
        "untrusted_path": " Certificate chain found: {path}.",
        "untrusted_hint": " If this is a lawful CA (VNPT-CA, Viettel-CA, FPT-CA, BKAV-CA, ...), "
        "the administrator must add that CA's intermediate certificate and turn on the national "
        'trust profile ([trust] profile = "vn").',
        "untrusted_reason": "no certificate chain to a trusted root CA could be established",
        "logged": "kyso's log holds this exact file: entry {seq}{record}.",
        "logged_record": ", record “{record_id}”",
        "not_logged": "kyso's log does not hold this exact file: it was not made by this kyso, "
        "or it was changed after kyso logged it.",
        "summary_none": "The document carries no digital signature, so nobody can be confirmed "
        "as its signer, nor that it is unchanged.",
        "summary": "The document carries {count} signature(s): {parts}.",
        "summary_part": "signature {n} {verdict}",
        "term_level": "signature level",
    },
}
