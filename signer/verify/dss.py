"""Validation data inside a PDF (the DSS of PAdES B-LT), and long-term validation with it.

:func:`read_dss` reads what a Document Security Store holds; :func:`has_revinfo_for` says
whether it has revocation data for every certificate of a chain (what makes a signature
B-LT); :func:`lta_rescue` validates a signature whose certificate has expired since, with
pyHanko's ETSI EN 319 102-1 5.6.3 process over the document timestamps (B-LTA), and
:func:`lt_rescue` with the signature timestamp and the DSS alone (5.5, validation with time:
B-LT).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.rw_common import PdfHandler
from pyhanko.sign.ades.report import AdESPassed
from pyhanko.sign.validation.ades import ades_lta_validation
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko.sign.validation.policy_decl import (
    LocalKnowledge,
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.ltv.types import ValidationTimingInfo
from pyhanko_certvalidator.policy_decl import (
    REQUIRE_REVINFO,
    CertRevTrustPolicy,
    RevocationCheckingPolicy,
)
from pyhanko_certvalidator.registry import SimpleTrustManager
from pyhanko_certvalidator.revinfo.archival import CRLContainer, OCSPContainer

from kyso.signer.verify.common import ChainResult, KnownData, assess_chain
from kyso.signer.verify.report import TimestampInfo, VerifySettings, iso_utc

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DssData:
    """The certificates and revocation data (DER) of a Document Security Store."""

    certs: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()


def read_dss(handler: PdfHandler) -> DssData:
    """The DSS of a PDF (or of one of its revisions); empty if absent or unreadable."""
    try:
        dss = handler.root.get("/DSS")
        if dss is None:
            return DssData()
        dss = dss.get_object()
        certs = tuple(
            x509.Certificate.load(d) for d in _streams(dss, "/Certs", DecodePurpose.CERTIFICATE)
        )
        crls = tuple(_streams(dss, "/CRLs", DecodePurpose.CRL))
        ocsps = tuple(_streams(dss, "/OCSPs", DecodePurpose.OCSP_RESPONSE))
        return DssData(certs, crls, ocsps)
    except Exception as exc:  # a broken DSS only means no validation data
        log.info("unreadable DSS: %s", exc)
        return DssData()


def _streams(dss, key: str, purpose: DecodePurpose) -> list[bytes]:
    return [ref.get_object().read_data(purpose) for ref in dss.get(key, [])]


def has_revinfo_for(dss: DssData, certs: Iterable[x509.Certificate]) -> bool:
    """Whether the DSS holds a CRL from the issuer of, or an OCSP response about, each cert."""
    issuers = _crl_issuers(dss.crls)
    answered = _ocsp_subjects(dss.ocsps)
    return all(cert.issuer.dump() in issuers or _ocsp_key(cert) in answered for cert in certs)


def _crl_issuers(crls: Iterable[bytes]) -> set[bytes]:
    issuers = set()
    for der in crls:
        try:
            issuers.add(crl.CertificateList.load(der)["tbs_cert_list"]["issuer"].dump())
        except Exception:
            continue
    return issuers


def _ocsp_key(cert: x509.Certificate) -> tuple[bytes, int]:
    return hashlib.sha1(cert.issuer.dump()).digest(), cert.serial_number


def _ocsp_subjects(ocsps: Iterable[bytes]) -> set[tuple[bytes, int]]:
    """(SHA-1 of issuer name, serial) of every single response in the OCSP responses."""
    keys = set()
    for der in ocsps:
        try:
            basic = ocsp.OCSPResponse.load(der).basic_ocsp_response
            for single in basic["tbs_response_data"]["responses"]:
                cert_id = single["cert_id"]
                if cert_id["hash_algorithm"]["algorithm"].native == "sha1":
                    keys.add((cert_id["issuer_name_hash"].native, cert_id["serial_number"].native))
        except Exception:
            continue
    return keys


async def lta_rescue(
    emb: EmbeddedPdfSignature, settings: VerifySettings, key_usage: KeyUsageConstraints
) -> ChainResult | None:
    """A trusted chain for a signature whose certificate has expired by the validation time,
    if the document timestamps and the DSS prove it was good when signed; else ``None``.

    Revocation data is required first (``good``); under soft-fail a second try without
    that requirement gives ``unknown``."""
    policies = [("good", REQUIRE_REVINFO)]
    if settings.revocation == "soft-fail":
        policies.append(("unknown", RevocationCheckingPolicy.from_legacy("soft-fail")))
    for revocation, policy in policies:
        try:
            result = await ades_lta_validation(
                emb, _spec(settings, policy, key_usage), _timing(settings)
            )
        except Exception as exc:
            log.info("long-term validation of %r failed: %s", emb.field_name, exc)
            return None
        if result.ades_subindic == AdESPassed.OK:
            path = result.api_status.validation_path if result.api_status else None
            certs = tuple(path.iter_certs(include_root=False)) if path else ()
            return ChainResult(True, revocation, path=certs)
    return None


async def lt_rescue(
    cert: x509.Certificate,
    settings: VerifySettings,
    dss: DssData,
    certs: Iterable[x509.Certificate],
    timestamp: TimestampInfo | None,
) -> ChainResult | None:
    """A trusted chain for a signature whose certificate has expired by the validation time,
    if a valid signature timestamp proves it existed while the certificate was valid and the
    DSS holds revocation data, issued no later than the certificate's expiry, that shows
    every certificate of the chain good as of that timestamp; else ``None``.

    ETSI EN 319 102-1 5.5: the timestamp is the proof of existence. Only the DSS's own
    revocation data counts (CRLs published after a certificate expired may leave it out),
    and a chain that any revocation data at hand lists as revoked is never rescued."""
    if timestamp is None or not timestamp.valid:
        return None
    if not cert.not_valid_before <= timestamp.time <= cert.not_valid_after:
        return None
    known = KnownData(
        tuple(certs),
        tuple(d for d in dss.crls if _crl_issued(d, cert.not_valid_after)),
        tuple(d for d in dss.ocsps if _ocsp_issued(d, cert.not_valid_after)),
    )
    own_data_only = replace(settings, crls=(), ocsps=(), allow_fetching=False)
    then = await assess_chain(cert, own_data_only, known, moment=timestamp.time, retroactive=True)
    if not (then.trusted and then.revocation == "good"):
        return None
    if _listed_as_revoked(
        then.path or (cert,), (*settings.crls, *dss.crls), (*settings.ocsps, *dss.ocsps)
    ):
        return None
    return replace(
        then,
        message=(
            f"the signer certificate expired on {iso_utc(cert.not_valid_after)}, after the "
            f"signature timestamp ({iso_utc(timestamp.time)}); the DSS shows it good then"
        ),
    )


def _crl_issued(der: bytes, deadline: datetime) -> bool:
    """Whether a CRL was issued by ``deadline`` (an unreadable one is left out)."""
    try:
        this_update = crl.CertificateList.load(der)["tbs_cert_list"]["this_update"].native
    except Exception:
        return False
    return bool(this_update <= deadline)


def _ocsp_issued(der: bytes, deadline: datetime) -> bool:
    """Whether an OCSP response was produced by ``deadline`` (an unreadable one is left out)."""
    try:
        basic = ocsp.OCSPResponse.load(der).basic_ocsp_response
        produced = basic["tbs_response_data"]["produced_at"].native
    except Exception:
        return False
    return bool(produced <= deadline)


def _listed_as_revoked(
    certs: Iterable[x509.Certificate], crls: Iterable[bytes], ocsps: Iterable[bytes]
) -> bool:
    """Whether any CRL or OCSP response (signature unchecked: it can only deny a rescue)
    lists one of ``certs`` as revoked, at whatever date."""
    wanted = {(c.issuer.dump(), c.serial_number) for c in certs}
    wanted_ocsp = {_ocsp_key(c) for c in certs}
    for der in crls:
        try:
            tbs = crl.CertificateList.load(der)["tbs_cert_list"]
            issuer = tbs["issuer"].dump()
            if any(
                (issuer, e["user_certificate"].native) in wanted
                for e in tbs["revoked_certificates"]
            ):
                return True
        except Exception:
            continue
    for der in ocsps:
        try:
            basic = ocsp.OCSPResponse.load(der).basic_ocsp_response
            for single in basic["tbs_response_data"]["responses"]:
                cert_id = single["cert_id"]
                key = (cert_id["issuer_name_hash"].native, cert_id["serial_number"].native)
                if key in wanted_ocsp and single["cert_status"].name == "revoked":
                    return True
        except Exception:
            continue
    return False


def _spec(
    settings: VerifySettings, policy: RevocationCheckingPolicy, key_usage: KeyUsageConstraints
) -> PdfSignatureValidationSpec:
    """Validation settings for pyHanko's AdES processes: our trust roots, local data only."""
    knowledge = LocalKnowledge(
        known_certs=list(settings.trust_roots),
        known_crls=[CRLContainer(crl.CertificateList.load(d)) for d in settings.crls],
        known_ocsps=[
            c for d in settings.ocsps for c in OCSPContainer.load_multi(ocsp.OCSPResponse.load(d))
        ],
    )
    cert_policy = CertValidationPolicySpec(
        trust_manager=SimpleTrustManager.build(trust_roots=list(settings.trust_roots)),
        revinfo_policy=CertRevTrustPolicy(policy),
    )
    spec = SignatureValidationSpec(
        cert_policy,
        RevocationInfoGatheringSpec(RevinfoOnlineFetchingRule.LOCAL_ONLY),
        local_knowledge=knowledge,
        key_usage_settings=key_usage,
    )
    return PdfSignatureValidationSpec(spec)


def _timing(settings: VerifySettings) -> ValidationTimingInfo:
    moment = settings.validation_time or datetime.now(UTC)
    return ValidationTimingInfo(moment, moment, settings.validation_time is not None)
