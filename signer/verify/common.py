"""What PDF and JSON verification share: the signer's certificate chain, its revocation
status, and the verdict built from them.

The chain is judged with pyhanko-certvalidator in up to three passes. The first requires
revocation data (CRL or OCSP) for every certificate below the trust anchor and fetches
nothing: a certificate that does not chain to a configured root through the certificates at
hand fails here, and nothing is ever fetched on its behalf. If the chain reached a root and
only revocation data was missing, the second pass fetches it, when the settings allow, from
the CRL and OCSP addresses of that chain's certificates (:mod:`kyso.trust.fetching`: no
issuer certificates, allowed hosts only, short timeouts, one budget per verification); if
either pass succeeds the revocation status is ``good``. If revocation data is still
missing, a last pass checks the same chain with whatever data is at hand but without
requiring any; when that succeeds the chain is trusted and the status is ``unknown``, which
``revocation = "require"`` turns into ``INDETERMINATE``/``TRY_LATER``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from asn1crypto import x509
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from pyhanko_certvalidator.errors import (
    DisallowedAlgorithmError,
    ExpiredError,
    InsufficientRevinfoError,
    InvalidCertificateError,
    NotYetValidError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)

from kyso.signer.verify import report as r
from kyso.signer.verify.report import TimestampInfo, VerifySettings, iso_utc
from kyso.trust.fetching import FetchSession
from kyso.trust.policy import SIGNER_KEY_USAGE, key_strength_problem, usage_problem
from kyso.trust.store import verification_context

# Digest algorithms that may no longer sign (Circular 15/2025/TT-BKHCN: SHA-1 and MD5 never).
WEAK_DIGESTS = {"md2": "MD2", "md5": "MD5", "sha1": "SHA-1"}

__all__ = ["SIGNER_KEY_USAGE", "ChainResult", "KnownData", "assess_chain", "assess_signer"]


@dataclass(frozen=True)
class KnownData:
    """Validation material at hand: certificates (intermediates) and revocation data (DER
    CRLs and OCSP responses), from the document itself and from the caller."""

    certs: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()

    @classmethod
    def of(
        cls,
        settings: VerifySettings,
        certs: Iterable[x509.Certificate] = (),
        crls: Iterable[bytes] = (),
        ocsps: Iterable[bytes] = (),
    ) -> KnownData:
        """The caller's revocation data (from ``settings``) plus the document's."""
        return cls(tuple(certs), (*settings.crls, *crls), (*settings.ocsps, *ocsps))


def validation_context(
    settings: VerifySettings,
    known: KnownData,
    *,
    require_revocation: bool,
    fetch: FetchSession | None = None,
    moment: datetime | None = None,
    retroactive: bool = False,
) -> ValidationContext:
    """A pyhanko-certvalidator context trusting ``settings.trust_roots`` at ``moment``
    (default: the settings' validation time, or now), fetching under ``fetch`` if given."""
    return verification_context(
        settings.trust_roots,
        known.certs,
        known.crls,
        known.ocsps,
        moment=moment or settings.validation_time,
        require_revocation=require_revocation,
        fetch=fetch,
        retroactive=retroactive,
    )


@dataclass(frozen=True)
class ChainResult:
    """The outcome of validating a signer certificate's path to a trust anchor."""

    trusted: bool
    revocation: str  # "good", "revoked", "unknown"
    problem: str | None = None  # ETSI sub-indication when not trusted
    message: str | None = None
    revoked_at: datetime | None = None
    ca_revoked: bool = False
    path: tuple[x509.Certificate, ...] = field(default=())  # below the trust anchor
    anchor: x509.Certificate | None = None  # the trust anchor the path ends at


async def _validate_once(cert: x509.Certificate, context: ValidationContext) -> ChainResult:
    """One pass of path validation, its exceptions mapped to ETSI sub-indications."""
    try:
        try:
            path = await CertificateValidator(
                cert, validation_context=context
            ).async_validate_path()
        except InvalidCertificateError as exc:  # a self-signed signer outside the trust roots
            return ChainResult(False, "unknown", r.NO_CERTIFICATE_CHAIN_FOUND, exc.failure_msg)
        # The policy kyso signs under (kyso.trust.policy): a TSA's or a web server's
        # certificate has a valid path too, but it was not issued to sign documents.
        problem = usage_problem(cert)
        if problem is not None:
            return ChainResult(
                False, "unknown", r.CHAIN_CONSTRAINTS_FAILURE,
                f"the signer certificate is not meant for signing documents: {problem}",
            )  # fmt: skip
        below = tuple(path.iter_certs(include_root=False))
        anchor = next(iter(path.iter_certs(include_root=True)), None)
        return ChainResult(True, "good", path=below, anchor=anchor if anchor not in below else None)
    except PathBuildingError as exc:
        return ChainResult(
            False, "unknown", r.NO_CERTIFICATE_CHAIN_FOUND,
            f"no chain from the signer certificate to a trust root: {exc}",
        )  # fmt: skip
    except RevokedError as exc:
        return ChainResult(
            False, "revoked", r.REVOKED_NO_POE if exc.is_ee_cert else r.REVOKED_CA_NO_POE,
            exc.failure_msg, revoked_at=exc.revocation_dt, ca_revoked=not exc.is_ee_cert,
        )  # fmt: skip
    except InsufficientRevinfoError as exc:
        return ChainResult(False, "unknown", r.TRY_LATER, exc.failure_msg)
    except ExpiredError as exc:
        return ChainResult(False, "unknown", r.OUT_OF_BOUNDS_NO_POE, exc.failure_msg)
    except NotYetValidError as exc:
        return ChainResult(False, "unknown", r.NOT_YET_VALID, exc.failure_msg)
    except DisallowedAlgorithmError as exc:
        return ChainResult(False, "unknown", r.CRYPTO_CONSTRAINTS_FAILURE, exc.failure_msg)
    except ValidationError as exc:
        return ChainResult(False, "unknown", r.CERTIFICATE_CHAIN_GENERAL_FAILURE, exc.failure_msg)
    finally:
        await context.aclose()


async def assess_chain(
    cert: x509.Certificate,
    settings: VerifySettings,
    known: KnownData,
    moment: datetime | None = None,
    retroactive: bool = False,
) -> ChainResult:
    """Validate ``cert``'s path at ``moment``: first requiring revocation data for every
    certificate (``good``), from what is at hand, then fetched for a chain that reached a
    root, then, if only that was missing, without (``unknown``)."""

    async def strict(fetch: FetchSession | None) -> ChainResult:
        context = validation_context(
            settings, known, require_revocation=True, fetch=fetch, moment=moment,
            retroactive=retroactive,
        )  # fmt: skip
        return await _validate_once(cert, context)

    offline = await strict(None)
    session = settings.fetch_session if settings.fetching and moment is None else None
    if offline.problem != r.TRY_LATER or session is None:
        online = offline
    else:
        online = await strict(session)  # the chain reached a root: only revocation data lacks
    if online.problem != r.TRY_LATER:
        return online
    lenient = await _validate_once(
        cert,
        validation_context(
            settings,
            known,
            require_revocation=False,
            moment=moment,
            retroactive=retroactive,
        ),
    )
    if lenient.trusted:
        return replace(lenient, revocation="unknown", message=online.message)
    return lenient


async def assess_signer(
    cert: x509.Certificate,
    settings: VerifySettings,
    known: KnownData,
    timestamp: TimestampInfo | None,
) -> ChainResult:
    """The signer's chain at the validation time; a certificate revoked only after a valid
    signature timestamp is judged again as of that timestamp (ETSI EN 319 102-1 5.5:
    the timestamp proves the signature existed while the certificate was good)."""
    chain = await assess_chain(cert, settings, known)
    if not (chain.revocation == "revoked" and chain.revoked_at and timestamp and timestamp.valid):
        return chain
    if timestamp.time >= chain.revoked_at:
        return chain
    # A CRL issued after the timestamp still proves that nothing was revoked before it.
    then = await assess_chain(cert, settings, known, moment=timestamp.time, retroactive=True)
    if not then.trusted:
        return chain
    return replace(
        then,
        revocation="revoked",
        revoked_at=chain.revoked_at,
        ca_revoked=chain.ca_revoked,
        message=(
            f"the {'issuing CA' if chain.ca_revoked else 'signer'} certificate was revoked on "
            f"{iso_utc(chain.revoked_at)}, after the signature timestamp "
            f"({iso_utc(timestamp.time)})"
        ),
    )


@dataclass(frozen=True)
class Verdict:
    """An indication, its sub-indication (``None`` when passed) and why, for the report."""

    indication: str
    sub_indication: str | None = None
    message: str | None = None


def failed(sub_indication: str, message: str | None) -> Verdict:
    return Verdict(r.TOTAL_FAILED, sub_indication, message)


def indeterminate(sub_indication: str, message: str | None) -> Verdict:
    return Verdict(r.INDETERMINATE, sub_indication, message)


def judge_signer(
    chain: ChainResult,
    cert: x509.Certificate,
    timestamp: TimestampInfo | None,
    claimed_time: datetime | None,
    settings: VerifySettings,
) -> Verdict:
    """The verdict on a signature whose value and content are sound, from its chain, its
    revocation status and its timestamp.

    A revoked certificate fails (``REVOKED``) when the signature is known or claimed to
    be made after the revocation, and is ``REVOKED_NO_POE`` when only the signer's own
    claim puts it before. An expired or not yet valid certificate fails (``EXPIRED``,
    ``NOT_YET_VALID``) when a valid timestamp proves the signature was made outside its
    validity, else it is indeterminate. A timestamp that is present but not valid makes
    the signature ``INDETERMINATE``/``SIG_CONSTRAINTS_FAILURE``: its time cannot be relied on.
    """
    proven = timestamp.time if timestamp and timestamp.valid else None
    if not chain.trusted and chain.revocation == "revoked" and chain.revoked_at:
        made = proven or claimed_time
        if made is None or made >= chain.revoked_at:
            return failed(r.REVOKED, chain.message)
        return indeterminate(chain.problem or r.REVOKED_NO_POE, chain.message)
    if not chain.trusted:
        problem = chain.problem or r.CERTIFICATE_CHAIN_GENERAL_FAILURE
        if problem == r.OUT_OF_BOUNDS_NO_POE and proven and proven > cert.not_valid_after:
            return failed(
                r.EXPIRED,
                f"the signature timestamp is after the certificate expired: {chain.message}",
            )
        if problem == r.NOT_YET_VALID and proven and proven < cert.not_valid_before:
            return failed(r.NOT_YET_VALID, chain.message)
        return indeterminate(problem, chain.message)
    if chain.revocation == "unknown" and settings.revocation == "require":
        return indeterminate(
            r.TRY_LATER, f"the revocation status is required but unknown: {chain.message}"
        )
    if timestamp is not None and not timestamp.valid:
        return indeterminate(
            r.SIG_CONSTRAINTS_FAILURE,
            "the signature timestamp is not valid (broken, not for this signature, "
            "or from an untrusted TSA)",
        )
    return Verdict(r.TOTAL_PASSED, None, chain.message if chain.revocation == "revoked" else None)


def weak_algorithm(
    cert: x509.Certificate, digest_algorithm: str | None, mechanism: str | None = None
) -> Verdict | None:
    """``INDETERMINATE``/``CRYPTO_CONSTRAINTS_FAILURE`` for a signature made with SHA-1 or
    MD5, or by a key too weak to sign (RSA under 2048 bits, EC under 256); else ``None``."""
    for name in (digest_algorithm or "", *(mechanism or "").split("_")):
        if name in WEAK_DIGESTS:
            return indeterminate(
                r.CRYPTO_CONSTRAINTS_FAILURE,
                f"the signature is made with {WEAK_DIGESTS[name]}, a weak algorithm that may "
                "no longer be used to sign",
            )
    problem = key_strength_problem(cert)
    if problem is not None:
        return indeterminate(
            r.CRYPTO_CONSTRAINTS_FAILURE, f"the signer's certificate has {problem}: a weak key"
        )
    return None


def chain_names(
    chain: ChainResult,
    cert: x509.Certificate,
    known: Iterable[x509.Certificate],
    roots: Iterable[x509.Certificate],
) -> tuple[str, ...]:
    """The subjects of the signer's path, leaf first, up to the trust anchor: the validated
    path when there is one, else as far as the issuers at hand lead (by name and key id)."""
    if chain.trusted and chain.path and chain.anchor is not None:
        certs = [*reversed(chain.path), chain.anchor]
    else:
        certs = _issuer_walk(cert, [*known, *roots])
    return tuple(c.subject.human_friendly for c in certs)


def _issuer_walk(cert: x509.Certificate, pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    walked = [cert]
    while len(walked) < 10 and walked[-1].self_signed == "no":
        child = walked[-1]
        issuers = [
            c for c in pool
            if c.subject == child.issuer and c not in walked
            and (child.authority_key_identifier is None
                 or c.key_identifier in (None, child.authority_key_identifier))
        ]  # fmt: skip
        if not issuers:
            break
        walked.append(issuers[0])
    return walked


def certs_below_anchor(chain: ChainResult, cert: x509.Certificate) -> Sequence[x509.Certificate]:
    """The certificates whose revocation status matters: the path without its trust
    anchor, or the signer certificate alone when no path was found."""
    return chain.path or (cert,)
