"""What a certificate must be to sign a record: one policy for server keys, clinicians'
certificates in signing sessions, and verification.

- valid at the moment of signing;
- meant for signing: key usage digitalSignature or nonRepudiation (organisation seals
  often carry only the first, clinicians' certificates the second), and, when it has an
  extended key usage extension, a purpose that covers documents (a TSA's or a web server's
  certificate does not);
- a key of at least RSA 2048 or EC 256 bits (Circular 15/2025/TT-BKHCN);
- for a certificate kyso did not configure itself (a session's), a path through the given
  issuers to a trust anchor.

Revocation is checked by :mod:`kyso.trust.revocation`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import x509
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator import CertificateValidator
from pyhanko_certvalidator.errors import (
    ExpiredError,
    InvalidCertificateError,
    NotYetValidError,
    PathError,
    ValidationError,
)

from kyso.errors import (
    CertificateExpired,
    CertificateNotForSigning,
    CertificateNotYetValid,
    InvalidRequest,
)
from kyso.trust.store import TrustStore, fresh

# Extended key usages that cover signing documents. clientAuth is among them because the
# token certificates of Vietnamese public CAs carry it (often beside emailProtection) for
# signing as well as logging in.
DOCUMENT_PURPOSES = frozenset(
    {
        "email_protection",
        "1.3.6.1.5.5.7.3.36",  # id-kp-documentSigning (RFC 9336)
        "microsoft_document_signing",
        "1.2.840.113583.1.1.5",  # Adobe Authentic Documents Trust
        "client_auth",
        "any_extended_key_usage",
    }
)

SIGNER_KEY_USAGE = KeyUsageConstraints(
    key_usage=frozenset({"digital_signature", "non_repudiation"}),
    match_all_key_usages=False,
    extd_key_usage=DOCUMENT_PURPOSES,
    explicit_extd_key_usage_required=False,
)

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256


def subject_name(cert: x509.Certificate) -> str:
    """The common name, or the whole subject, for messages."""
    names = cert.subject.native
    common_name = names.get("common_name") if isinstance(names, dict) else None
    if isinstance(common_name, list):
        common_name = common_name[0] if common_name else None
    return common_name or cert.subject.human_friendly


def key_strength_problem(cert: x509.Certificate) -> str | None:
    """Why the certificate's key is too weak to sign, or None."""
    key = cert.public_key
    if key.algorithm == "rsa" and key.bit_size < MIN_RSA_BITS:
        return f"an RSA key of {key.bit_size} bits (at least {MIN_RSA_BITS} are required)"
    if key.algorithm == "ec" and key.bit_size < MIN_EC_BITS:
        return f"an EC key of {key.bit_size} bits (at least {MIN_EC_BITS} are required)"
    if key.algorithm not in ("rsa", "ec", "rsassa_pss"):
        return f"a {key.algorithm} key (RSA or EC keys only)"
    return None


def usage_problem(cert: x509.Certificate) -> str | None:
    """Why the certificate is not meant for signing documents, or None."""
    try:
        SIGNER_KEY_USAGE.validate(cert)
    except InvalidCertificateError:
        usages = sorted(cert.key_usage_value.native) if cert.key_usage_value is not None else []
        if not {"digital_signature", "non_repudiation"} & set(usages):
            return (
                f"its key usage ({', '.join(usages) or 'none'}) allows neither "
                "digitalSignature nor nonRepudiation"
            )
        purposes = cert.extended_key_usage_value.native if cert.extended_key_usage_value else []
        return (
            f"its extended key usage ({', '.join(purposes)}) covers no document signing "
            "(documentSigning, emailProtection, clientAuth or anyExtendedKeyUsage): "
            "a timestamp authority's or a web server's certificate does not sign records"
        )
    return None


@dataclass(frozen=True)
class SignerProfile:
    """What :func:`check_signer` reads of a certificate, read once: its validity period,
    why it may not sign at any moment (usage, key strength) or None, and its name. A key
    signs many times with one certificate; only the moment changes between its checks."""

    not_before: datetime
    not_after: datetime
    problem: str | None
    name: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> SignerProfile:
        cert = fresh(cert)
        problem = usage_problem(cert) or key_strength_problem(cert)
        return cls(cert.not_valid_before, cert.not_valid_after, problem, subject_name(cert))

    def check(self, moment: datetime | None = None, who: str | None = None) -> None:
        """Refuse the certificate if it may not sign a record at ``moment`` (now)."""
        moment = moment or datetime.now(UTC)
        who = who or f"the certificate of {self.name}"
        if moment < self.not_before:
            raise CertificateNotYetValid(f"{who} is valid only from {self.not_before:%Y-%m-%d}")
        if moment > self.not_after:
            raise CertificateExpired(f"{who} expired on {self.not_after:%Y-%m-%d}")
        if self.problem is not None:
            raise CertificateNotForSigning(f"{who} may not sign records: {self.problem}")


def check_signer(
    cert: x509.Certificate, moment: datetime | None = None, who: str | None = None
) -> None:
    """Refuse a certificate that may not sign a record at ``moment`` (now): not valid then,
    not meant for signing, or with a weak key. Path and revocation are checked elsewhere.
    ``who`` names the certificate in messages (default: its subject)."""
    SignerProfile.of(cert).check(moment, who)


def check_signer_path(
    leaf: x509.Certificate,
    issuers: Sequence[x509.Certificate],
    trust: TrustStore,
    moment: datetime | None = None,
) -> None:
    """:func:`async_check_signer_path` in an event loop of its own."""
    asyncio.run(async_check_signer_path(leaf, issuers, trust, moment))


async def async_check_signer_path(
    leaf: x509.Certificate,
    issuers: Sequence[x509.Certificate],
    trust: TrustStore,
    moment: datetime | None = None,
) -> None:
    """:func:`check_signer`, and a path from ``leaf`` through ``issuers`` to an anchor of
    ``trust`` valid at ``moment``."""
    check_signer(leaf, moment)
    who = subject_name(leaf)
    validator = CertificateValidator(
        fresh(leaf),
        intermediate_certs=[fresh(c) for c in issuers],
        validation_context=trust.path_context(issuers, moment),
    )
    try:
        await validator.async_validate_path()
    except ExpiredError:
        raise CertificateExpired(f"a certificate in the chain of {who} has expired") from None
    except NotYetValidError:
        raise CertificateNotYetValid(f"a certificate in the chain of {who} is not valid yet") from None
    except (ValidationError, PathError):
        raise InvalidRequest(
            f"the certificate chain of {who} does not lead to a trusted root; send the signer's "
            "certificate first, then its issuing CA certificates"
        ) from None
