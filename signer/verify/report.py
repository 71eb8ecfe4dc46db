"""The validation report of SPEC section 5, and the settings a verification runs under.

A report names, for each signature, an ETSI EN 319 102-1 indication (``TOTAL_PASSED``,
``INDETERMINATE``, ``TOTAL_FAILED``) and, unless it passed, a sub-indication with its
standard name (``HASH_FAILURE``, ``NO_CERTIFICATE_CHAIN_FOUND``, ``REVOKED``, ...). The
document's indication is the worst of its signatures'; a document with no signature is
``TOTAL_FAILED``.

Conventions of the JSON form (:meth:`Report.to_json`):

- times are ISO 8601 UTC with a ``Z`` (``2026-01-01T08:00:00Z``), fractions of a second only
  when there are any; ``signing_time`` is the signature timestamp's time when that timestamp
  is valid, else the time the signer claims (``/M`` or the signing-time attribute for a
  PDF, ``sigT`` for a JWS);
- ``signer.serial`` is the certificate serial number in lowercase hexadecimal without a
  prefix (as ``openssl x509 -serial`` prints it, lowercased); ``signer.sha256`` is the
  SHA-256 of the certificate's DER, lowercase hex;
- ``field``, ``coverage`` and ``modifications`` only mean something for PDFs and are
  ``null`` in a JSON (JWS) report;
- a signature that did not pass carries a ``message`` member saying why, in English; so
  does one that passed with a caveat (its certificate was revoked, but only after its
  signature timestamp). Otherwise there is no ``message`` member and the object has exactly
  the members of SPEC section 5 and ``chain``.
- ``chain`` (beyond SPEC section 5) names the signer's certificate path by subject, the
  signer first, up to and including the trust anchor; for a signer that is not trusted, as
  far as the certificates at hand lead (where it stops shows which CA certificate is
  missing); empty when the signature could not be read;
- ``registered`` names kyso's log entry only when the log holds this exact file
  (:mod:`kyso.signer.verify.logged`);
- a signature that could not be processed at all reports ``signer`` ``null`` when its
  certificate cannot be read, ``coverage`` ``PARTIAL`` and ``modifications`` ``OTHER``
  (nothing about it could be confirmed).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from asn1crypto import x509

from kyso.signer.bounds import PdfBounds
from kyso.trust.fetching import FetchPolicy, FetchSession

TOTAL_PASSED = "TOTAL_PASSED"
INDETERMINATE = "INDETERMINATE"
TOTAL_FAILED = "TOTAL_FAILED"
INDICATIONS = (TOTAL_PASSED, INDETERMINATE, TOTAL_FAILED)  # best to worst

# Sub-indications (ETSI EN 319 102-1 clause 5.1.3) that kyso reports.
FORMAT_FAILURE = "FORMAT_FAILURE"
HASH_FAILURE = "HASH_FAILURE"
SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
REVOKED = "REVOKED"
EXPIRED = "EXPIRED"
NOT_YET_VALID = "NOT_YET_VALID"
SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
CERTIFICATE_CHAIN_GENERAL_FAILURE = "CERTIFICATE_CHAIN_GENERAL_FAILURE"
CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
REVOKED_NO_POE = "REVOKED_NO_POE"
REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
TRY_LATER = "TRY_LATER"

LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")
COVERAGES = ("ENTIRE_FILE", "ENTIRE_REVISION", "PARTIAL")
MODIFICATIONS = ("NONE", "FORM_FILLING", "ANNOTATIONS", "OTHER")
REVOCATION_STATES = ("good", "revoked", "unknown")

Registered = Callable[[list[str]], "Mapping[str, Any] | None"]
"""Looks signed outputs up in kyso's own registry: given candidate SHA-256 hex digests,
``{"audit_seq": int, "record_id": str | None}`` (a mapping: the registry hands out
:class:`kyso.audit.rows.Registration`) for the first one found, else ``None``."""


@dataclass(frozen=True)
class VerifySettings:
    """What a verification trusts, and how it treats revocation.

    ``revocation`` is ``"soft-fail"`` (a signature whose revocation status cannot be
    established still passes, with ``revocation: "unknown"``) or ``"require"`` (it is
    ``INDETERMINATE``/``TRY_LATER``). ``validation_time`` ``None`` means now; another moment
    validates as of then, from the data at hand only (no fetching: pyhanko-certvalidator
    cannot fetch for a point in time). ``allow_fetching`` fetches CRLs and OCSP responses
    named in the certificates of a chain that reached a trust root when validating now,
    under ``fetch_policy``; each verification has its own allowance of it
    (:meth:`for_one_run`, ``fetch_session``). ``crls`` and ``ocsps`` (DER) are
    revocation data the caller already holds, used together with what the document carries.
    """

    trust_roots: tuple[x509.Certificate, ...]
    revocation: str = "soft-fail"
    validation_time: datetime | None = None
    allow_fetching: bool = True
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()
    pdf_bounds: PdfBounds = field(default_factory=PdfBounds)  # what one PDF may cost
    fetch_policy: FetchPolicy = field(default_factory=FetchPolicy)
    fetch_session: FetchSession | None = None

    def __post_init__(self) -> None:
        if self.revocation not in ("soft-fail", "require"):
            raise ValueError(
                f"revocation must be 'soft-fail' or 'require', not {self.revocation!r}"
            )
        if not self.trust_roots:
            raise ValueError("at least one trust root is needed to verify signatures")
        if self.validation_time is not None and self.validation_time.utcoffset() is None:
            raise ValueError("validation_time must be an aware datetime (with a time zone)")

    @property
    def fetching(self) -> bool:
        """Whether revocation data may be fetched online in this verification."""
        return self.allow_fetching and self.validation_time is None

    def for_one_run(self) -> VerifySettings:
        """These settings with an allowance of fetches of its own, for one verification
        (kept when the caller gave one)."""
        if not self.fetching or self.fetch_session is not None:
            return self
        return replace(self, fetch_session=self.fetch_policy.start())


def iso_utc(moment: datetime | None) -> str | None:
    """``moment`` as ISO 8601 UTC with ``Z``; a naive datetime is taken as UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    text = moment.astimezone(UTC).replace(tzinfo=None).isoformat()
    return text + "Z"


@dataclass(frozen=True)
class SignerInfo:
    """Who signed: the signer certificate's subject, issuer, serial and fingerprint."""

    subject: str
    issuer: str
    serial: str  # lowercase hex
    sha256: str  # of the certificate DER

    @classmethod
    def of(cls, cert: x509.Certificate) -> SignerInfo:
        return cls(
            subject=cert.subject.human_friendly,
            issuer=cert.issuer.human_friendly,
            serial=format(cert.serial_number, "x"),
            sha256=hashlib.sha256(cert.dump()).hexdigest(),
        )

    def to_json(self) -> dict[str, str]:
        return {
            "subject": self.subject,
            "issuer": self.issuer,
            "serial": self.serial,
            "sha256": self.sha256,
        }


@dataclass(frozen=True)
class TimestampInfo:
    """A signature timestamp: its time, the TSA certificate's subject, and whether it is
    valid (intact, cryptographically sound, and from a TSA that chains to a trust root)."""

    time: datetime
    tsa: str
    valid: bool

    def to_json(self) -> dict[str, Any]:
        return {"time": iso_utc(self.time), "tsa": self.tsa, "valid": self.valid}


@dataclass(frozen=True)
class SignatureReport:
    """The verdict on one signature (SPEC section 5, one element of ``signatures``)."""

    id: str
    field: str | None
    indication: str
    sub_indication: str | None
    intact: bool
    trusted: bool
    signer: SignerInfo | None
    signing_time: datetime | None
    timestamp: TimestampInfo | None
    level: str
    coverage: str | None
    modifications: str | None
    revocation: str
    registered: Mapping[str, Any] | None = None  # {"audit_seq", "record_id"}: our registry
    message: str | None = None
    chain: tuple[str, ...] = ()  # subjects, signer first, up to the trust anchor (or as far as known)

    def __post_init__(self) -> None:
        if self.indication not in INDICATIONS:
            raise ValueError(f"unknown indication {self.indication!r}")
        if (self.indication == TOTAL_PASSED) != (self.sub_indication is None):
            raise ValueError("a sub-indication is given exactly when the signature did not pass")
        if self.level not in LEVELS or self.revocation not in REVOCATION_STATES:
            raise ValueError(f"bad level {self.level!r} or revocation {self.revocation!r}")

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "field": self.field,
            "indication": self.indication,
            "sub_indication": self.sub_indication,
            "intact": self.intact,
            "trusted": self.trusted,
            "signer": self.signer.to_json() if self.signer else None,
            "signing_time": iso_utc(self.signing_time),
            "timestamp": self.timestamp.to_json() if self.timestamp else None,
            "level": self.level,
            "coverage": self.coverage,
            "modifications": self.modifications,
            "revocation": self.revocation,
            "registered": dict(self.registered) if self.registered is not None else None,
            "chain": list(self.chain),
        }
        if self.message is not None:
            body["message"] = self.message
        return body


def overall_indication(signatures: Iterable[SignatureReport]) -> str:
    """The worst indication of ``signatures``; ``TOTAL_FAILED`` when there is none."""
    ranks = [INDICATIONS.index(s.indication) for s in signatures]
    return INDICATIONS[max(ranks)] if ranks else TOTAL_FAILED


@dataclass(frozen=True)
class Report:
    """The validation report of one document."""

    document_sha256: str
    signatures: tuple[SignatureReport, ...]

    @property
    def indication(self) -> str:
        return overall_indication(self.signatures)

    def to_json(self) -> dict[str, Any]:
        return {
            "indication": self.indication,
            "document_sha256": self.document_sha256,
            "signatures": [s.to_json() for s in self.signatures],
        }
