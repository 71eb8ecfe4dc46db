"""One error hierarchy for the whole service.

Every failure a caller can cause or observe is a :class:`KysoError` subclass with a
stable ``code`` and an HTTP ``status``; the HTTP layer turns it into problem+json
(RFC 9457) in one place, and the command line prints ``detail`` and exits 2 (or 1).
A message says what was wrong and what to do; it never carries a secret.
"""

from __future__ import annotations

from typing import Any


class KysoError(Exception):
    """Base of every error kyso reports to a caller."""

    code = "internal_error"
    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem object for this error."""
        body: dict[str, Any] = {
            "type": f"https://kyso.invalid/problems/{self.code}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
            "code": self.code,
        }
        body.update(self.extra)
        return body



class InvalidRequest(KysoError):
    code, status, title = "invalid_request", 400, "Invalid request"


class InvalidPdf(KysoError):
    code, status, title = "invalid_pdf", 400, "Not a readable PDF"


class EncryptedPdf(KysoError):
    code, status, title = "encrypted_pdf", 400, "Encrypted PDF"


class InvalidJson(KysoError):
    code, status, title = "invalid_json", 400, "Invalid JSON"


class InvalidXml(KysoError):
    code, status, title = "invalid_xml", 400, "Invalid or unsafe XML"


class UnknownKey(KysoError):
    code, status, title = "unknown_key", 400, "Unknown key alias"


class InvalidSignature(KysoError):
    code, status, title = "invalid_signature", 400, "Invalid signature"


class Unauthorized(KysoError):
    code, status, title = "unauthorized", 401, "Unauthorized"


class Forbidden(KysoError):
    code, status, title = "forbidden", 403, "Forbidden"


class KeyNotGranted(KysoError):
    code, status, title = "key_not_granted", 403, "Key not granted"


class NotFound(KysoError):
    code, status, title = "not_found", 404, "Not found"


class MethodNotAllowed(KysoError):
    code, status, title = "method_not_allowed", 405, "Method not allowed"


class SessionExpired(KysoError):
    code, status, title = "session_expired", 409, "Signing session expired"


class SessionUsed(KysoError):
    code, status, title = "session_used", 409, "Signing session already used"


class IdempotencyConflict(KysoError):
    code, status, title = "idempotency_conflict", 409, "Idempotency key reused"


class PayloadTooLarge(KysoError):
    code, status, title = "payload_too_large", 413, "Payload too large"


class UnsupportedMediaType(KysoError):
    code, status, title = "unsupported_media_type", 415, "Unsupported media type"


class CertificateRevoked(KysoError):
    code, status, title = "certificate_revoked", 422, "Signer certificate revoked"


class CertificateExpired(KysoError):
    code, status, title = "certificate_expired", 422, "Signer certificate expired"


class CertificateNotYetValid(KysoError):
    code, status, title = "certificate_not_yet_valid", 422, "Signer certificate not yet valid"


class CertificateNotForSigning(KysoError):
    code, status, title = "certificate_not_for_signing", 422, "Certificate not meant for signing documents"


class RateLimited(KysoError):
    code, status, title = "rate_limited", 429, "Too many requests"


class TokenUnavailable(KysoError):
    code, status, title = "token_unavailable", 503, "Signing token unavailable"


class TsaUnavailable(KysoError):
    code, status, title = "tsa_unavailable", 503, "Timestamp authority unavailable"


class RevocationUnavailable(KysoError):
    code, status, title = "revocation_unavailable", 503, "Revocation data unavailable"


class ConfigError(KysoError):
    code, status, title = "config_error", 500, "Configuration error"
