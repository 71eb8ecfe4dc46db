"""Validation data inside a PDF (the DSS of PAdES B-LT), and long-term validation with it.

:func:`read_dss` reads what a Document Security Store holds; :func:`has_revinfo_for` says
whether it has revocation data for every certificate of a chain (what makes a signature
B-LT); :func:`lta_rescue` validates a signature whose certificate has expired since, with
pyHanko's ETSI EN 319 102-1 5.6.3 process over the document timestamps (B-LTA).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from asn1crypto import crl, ocsp, x509
from pyhanko.pdf_utils.decode_limits import DecodePurpose
from pyhanko.pdf_utils.reader import PdfFileReader
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

from kyso.signer.report import VerifySettings
from kyso.signer.verify_common import ChainResult

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DssData:
    """The certificates and revocation data (DER) of a Document Security Store."""

    certs: tuple[x509.Certificate, ...] = ()
    crls: tuple[bytes, ...] = ()
    ocsps: tuple[bytes, ...] = ()


def read_dss(handler: PdfFileReader) -> DssData:
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
