"""Verification for the service: reports (SPEC section 5) with their audit entries.

:class:`Verification` is the part of the :class:`kyso.service.Kyso` facade that validates
signed PDFs, JWS and XML records: what it trusts (:meth:`Verification.verify_settings`),
where each signed output was registered in our own log, and the ``verify.*`` entry of each
report (indication and number of signatures; never the document).
"""

from __future__ import annotations

import threading
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from kyso.audit.rows import Registration
from kyso.audit.store import AuditLog, EntryDraft
from kyso.config import Config
from kyso.signer.bounds import PdfBounds, releasing_cycles

if TYPE_CHECKING:
    from kyso.service import Actor
    from kyso.signer.verify.report import VerifySettings
    from kyso.trust.store import TrustStore


class Verification:
    """Reports and their audit entries (a mixin of the service facade)."""

    config: Config
    audit: AuditLog
    pdf_bounds: PdfBounds
    _verify_settings: VerifySettings | None
    _settings_lock: threading.Lock

    @property
    def trust(self) -> TrustStore:  # SignerChecks.trust, in the facade
        raise NotImplementedError

    def verify_settings(self) -> VerifySettings:
        """What verifications trust, and how they get revocation data: the dev PKI's CRLs
        issued in process, else fetched under the trust store's policy, with an allowance
        of fetches of its own for each verification."""
        from kyso.signer.verify.pdf import VerifySettings

        with self._settings_lock:
            if self._verify_settings is None:
                roots = self.trust.shared_roots()  # parsed completely: every request thread reads them
                self._verify_settings = VerifySettings(
                    trust_roots=roots,
                    revocation=self.config.trust.revocation,
                    allow_fetching=self.trust.fetch_policy.enabled,
                    fetch_policy=self.trust.fetch_policy,
                    pdf_bounds=self.pdf_bounds,
                )
            settings = self._verify_settings
        crls = self.trust.in_process_crls()
        return replace(settings, crls=tuple(crls)) if crls else settings

    def registered(self, candidates: list[str]) -> Registration | None:
        """Where the first of ``candidates`` (SHA-256 of signed outputs) was registered."""
        for digest in candidates:
            found = self.audit.find_signature(digest)
            if found is not None:
                return found
        return None

    def verify_pdf(self, actor: Actor, data: bytes) -> dict[str, Any]:
        from kyso.signer.verify.pdf import verify_pdf

        with releasing_cycles():
            report = verify_pdf(data, self.verify_settings(), self.registered).to_json()
        self._record_verification(actor, "verify.pdf", report)
        return report

    def verify_json(self, actor: Actor, jws: Any, payload: Any, has_payload: bool) -> dict[str, Any]:
        from kyso.signer.verify.json import verify_json

        report = verify_json(jws, payload if has_payload else None, self.verify_settings(), self.registered).to_json()
        self._record_verification(actor, "verify.json", report)
        return report

    def verify_xml(self, actor: Actor, data: bytes) -> dict[str, Any]:
        from kyso.signer.xml.verify import verify_xml

        report = verify_xml(data, self.verify_settings(), self.registered).to_json()
        self._record_verification(actor, "verify.xml", report)
        return report

    def _record_verification(self, actor: Actor, action: str, report: dict[str, Any]) -> None:
        self.audit.append(
            EntryDraft(
                action=action,
                actor=actor.name,
                document_sha256=report["document_sha256"],
                detail={"indication": report["indication"], "signatures": len(report["signatures"])},
            )
        )
