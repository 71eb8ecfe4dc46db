"""The domain facade: one straight path from a request to a signed, audited record.

The HTTP layer and the command line both call this class; it knows nothing of HTTP.
Each operation checks the key, signs, timestamps, and appends its audit entry in the
same transaction as the record registry row (and whatever the caller must store with
it, such as an idempotent response).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

from asn1crypto import x509
from sqlalchemy import Connection

from kyso.audit.ownership import RecordSharing, check_may_add
from kyso.audit.store import AppendedEntry, AuditLog, EntryDraft, register_signature
from kyso.config import Config
from kyso.db import Database, open_database, open_schema
from kyso.db.clients import ClientRegistry
from kyso.errors import KysoError
from kyso.keystore import Keystore, SigningKey, load_keystore
from kyso.signer.archive_dates import extend_before
from kyso.signer.bounds import PdfBounds, releasing_cycles
from kyso.signer.jades import SignedJson, sign_json
from kyso.signer.ltv import EXTENSION_LEVELS, ExtendedPdf, async_extend_pdf
from kyso.signer.pades import PdfSignOptions, SignedPdf, async_sign_pdf
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import (
    TimestampClient,
    TimestampSource,
    collect_failures,
    http_source,
)
from kyso.signer.xml import SignedXml, XmlSignOptions, rsa_scheme_for, sign_xml
from kyso.trust.fetching import FetchPolicy
from kyso.trust.policy import check_signer
from kyso.trust.revocation import RevocationChecker, parse_once, refuse_unless_usable
from kyso.trust.store import TrustStore

if TYPE_CHECKING:
    from kyso.certs.responder import DevRevocation
    from kyso.sessions.remote.providers import RemoteProviders

log = logging.getLogger(__name__)

# Rows a caller writes in the audit entry's transaction: (connection, entry, result).
WithEntry = Callable[[Connection, AppendedEntry, Any], None]


@dataclass(frozen=True)
class Actor:
    """Who asks: a client name (``None`` for an unknown caller) and where from."""

    name: str | None
    role: str | None = None  # None: the local operator (the command line)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class Kyso:
    """One service instance: configuration, database, keys, timestamping, audit log."""

    def __init__(self, config: Config, db: Database, keystore: Keystore):
        self.config = config
        self.db = db
        self.keystore = keystore
        self.audit = AuditLog(db)
        self.clients = ClientRegistry(db)
        self._verify_settings = None
        limits = config.limits
        self.pdf_bounds = PdfBounds(
            max_pdf_objects=limits.max_pdf_objects,
            max_inflated_bytes=limits.max_inflated_bytes,
            max_signature_fields=limits.max_signature_fields,
            max_signatures=limits.max_signatures,
            repair_memory_bytes=limits.repair_memory_bytes,
            repair_seconds=limits.repair_seconds,
        )
        self._settings_lock = threading.Lock()
        self.tsa: TimestampAuthority | None = None
        if config.tsa.builtin and config.tsa.key in keystore:
            self.tsa = TimestampAuthority(keystore.get(config.tsa.key), policy_oid=config.tsa.policy_oid)
        sources = [http_source(url, config.tsa.timeout_seconds) for url in config.tsa.urls]
        if not sources and self.tsa is not None:
            sources = [TimestampSource("built-in TSA", self.tsa.respond)]
        self.timestamper: TimestampClient | None = TimestampClient(sources) if sources else None

    @classmethod
    def open(cls, config: Config) -> Kyso:
        config.data_dir.mkdir(parents=True, exist_ok=True)
        db = open_database(config.db_url)
        open_schema(db)
        return cls(config, db, load_keystore(config))

    def close(self) -> None:
        self.keystore.close()
        self.db.dispose()  # stops the background work first (checkpointer, remote poller)
        if "remote_providers" in self.__dict__:
            self.remote_providers.close()

    @cached_property
    def remote_providers(self) -> RemoteProviders:
        """The ``[[remote_signing]]`` providers that sign clinicians' sessions remotely."""
        from kyso.sessions.remote.providers import load_providers

        return load_providers(self.config, os.environ)

    # -- keys ---------------------------------------------------------------

    def signing_key(self, alias: str) -> SigningKey:
        """The key for ``alias``, refused if its certificate cannot sign now: not yet
        valid, expired, not meant for signing (:mod:`kyso.trust.policy`), or revoked
        (see :meth:`check_not_revoked`)."""
        key = self.keystore.get(alias)
        check_signer(key.info.certificate, who=f"the certificate of key alias {alias!r}")
        parse_once(key)
        self.check_not_revoked(key.info.certificate, key.info.chain)
        return key

    # -- revocation ---------------------------------------------------------

    @cached_property
    def dev_revocation(self) -> DevRevocation | None:
        """The dev PKI's CRL and OCSP issuer (served under /pki), when ``dev_pki`` is on."""
        if not self.config.dev_pki:
            return None
        from kyso.certs.responder import DevRevocation

        return DevRevocation.from_dir(self.config.pki_dir)

    @cached_property
    def trust(self) -> TrustStore:
        """The trust anchors, and revocation data: the dev PKI's own CRLs issued in-process
        (no HTTP) when ``dev_pki`` is on, else the certificates' CRL and OCSP URLs, fetched
        under ``[trust] fetch_*`` (:mod:`kyso.trust.fetching`)."""
        t = self.config.trust
        policy = FetchPolicy(
            enabled=t.fetch,
            allow_hosts=tuple(t.fetch_allow_hosts),
            allow_private=t.fetch_allow_private,
            timeout_seconds=t.fetch_timeout_seconds,
            budget_seconds=t.fetch_budget_seconds,
            max_requests=t.fetch_max_requests,
            max_bytes=t.fetch_max_bytes,
        )
        return TrustStore.from_patterns(
            t.roots, profile=t.profile, in_process=self.dev_revocation, fetch_policy=policy
        )

    @cached_property
    def _revocation_checker(self) -> RevocationChecker:
        return RevocationChecker(self.trust, self.config.trust.revocation_cache_seconds)

    def check_not_revoked(self, cert: x509.Certificate, chain: Sequence[x509.Certificate] = ()) -> str:
        """Refuse a signer certificate that is revoked now (``certificate_revoked``);
        return its status, ``good`` or ``unknown``. An unknown status (no CRL or OCSP answer,
        or no path to a trust anchor) passes under ``[trust] revocation = "soft-fail"`` and is
        ``revocation_unavailable`` under ``"require"``. Answers are cached per certificate
        for ``[trust] revocation_cache_seconds``."""
        status = self._revocation_checker.status(cert, chain)
        return refuse_unless_usable(status, cert, require=self.config.trust.revocation == "require")

    # -- audit --------------------------------------------------------------

    def record_failure(self, actor: Actor, action: str, error: KysoError, **fields: Any) -> AppendedEntry:
        """The audit entry of a refused or failed operation (never its secrets)."""
        outcome = "denied" if error.status in (401, 403) else "error"
        detail = {"code": error.code, "status": error.status}
        return self.audit.append(EntryDraft(action=action, actor=actor.name, outcome=outcome, detail=detail, **fields))

    @cached_property
    def record_sharing(self) -> RecordSharing:
        return RecordSharing.of(self.config.records.groups)

    def check_may_add(
        self, actor: Actor, record_ids: Iterable[str | None], conn: Connection | None = None
    ) -> None:
        """Refuse an API client that may not sign for a record (:mod:`kyso.audit.ownership`)."""
        if actor.role is None:
            return
        if conn is not None:
            check_may_add(conn, record_ids, actor.name, self.record_sharing)
            return
        with self.db.reader.connect() as own:
            check_may_add(own, record_ids, actor.name, self.record_sharing)

    def _append_signature(
        self,
        actor: Actor,
        draft: EntryDraft,
        kind: str,
        level: str,
        result: Any,
        with_entry: WithEntry | None,
    ) -> AppendedEntry:
        """Append a signing entry with its record registry row (and the caller's rows)."""

        pdf = getattr(result, "pdf", None)  # a signed or extended PDF
        deadline = extend_before(pdf, self.trust) if kind == "pdf" and pdf is not None else None

        def also(conn: Connection, appended: AppendedEntry) -> None:
            self.check_may_add(actor, [draft.record_id], conn)
            register_signature(conn, appended, kind, level, deadline)
            if with_entry is not None:
                with_entry(conn, appended, result)

        return self.audit.append(draft, also)

    # -- signing ------------------------------------------------------------

    def sign_pdf(
        self,
        actor: Actor,
        alias: str,
        data: bytes,
        options: PdfSignOptions,
        record_id: str | None,
        with_entry: WithEntry | None = None,
    ) -> tuple[SignedPdf, AppendedEntry]:
        self.check_may_add(actor, [record_id])
        key = self.signing_key(alias)
        with collect_failures() as tsa_failures, releasing_cycles():
            signed = asyncio.run(self._async_sign_pdf(data, key, options))
        detail: dict[str, Any] = {"level": options.level, "field": signed.field}
        if options.certify:
            detail["certify"] = True
        if options.visible:
            detail["visible"] = True
        if signed.repaired:
            detail["repaired"] = True
        if tsa_failures:
            # Which TSAs failed before one answered (once each: size estimation asks too).
            detail["tsa_failures"] = list(dict.fromkeys(tsa_failures))

        draft = EntryDraft(
            action="sign.pdf",
            actor=actor.name,
            key=alias,
            record_id=record_id,
            document_sha256=sha256_hex(data),
            signature_sha256=signed.sha256,
            detail=detail,
        )
        return signed, self._append_signature(actor, draft, "pdf", options.level, signed, with_entry)

    async def _async_sign_pdf(self, data: bytes, key: SigningKey, options: PdfSignOptions) -> SignedPdf:
        """Sign (kyso's stamp when visible); for B-LT/B-LTA, sign at B-T and then add the
        validation data, gathered after the signature exists as validators expect."""
        font = None
        if options.visible:
            from kyso.signer.stamp import find_font

            font = find_font(self.config.stamp_font)
        if options.level not in EXTENSION_LEVELS:
            return await async_sign_pdf(
                data, key, options, self.timestamper, stamp_font=font, bounds=self.pdf_bounds
            )
        base = replace(options, level="B-T")
        signed = await async_sign_pdf(data, key, base, self.timestamper, stamp_font=font, bounds=self.pdf_bounds)
        context = self.trust.revocation_context(key.info.chain)
        try:
            extended = await async_extend_pdf(
                signed.pdf, options.level, self.timestamper, context, bounds=self.pdf_bounds
            )
        finally:
            await context.aclose()
        return replace(signed, pdf=extended.pdf, sha256=extended.sha256)

    def extend_pdf(
        self,
        actor: Actor,
        data: bytes,
        level: str,
        record_id: str | None,
        with_entry: WithEntry | None = None,
    ) -> tuple[ExtendedPdf, AppendedEntry]:
        """Add validation data to a signed PDF, and for ``B-LTA`` a fresh archive timestamp;
        audited as ``extend.pdf`` with a registry row, like a signature (its ``key`` is
        empty: no key alias of ours signed anything)."""

        self.check_may_add(actor, [record_id])

        async def run() -> ExtendedPdf:
            context = self.trust.revocation_context()
            try:
                return await async_extend_pdf(data, level, self.timestamper, context, bounds=self.pdf_bounds)
            finally:
                await context.aclose()

        with collect_failures() as tsa_failures, releasing_cycles():
            extended = asyncio.run(run())
        detail: dict[str, Any] = {"level": level, "signatures": list(extended.signatures)}
        if extended.archive_timestamp:
            detail["archive_timestamp"] = extended.archive_timestamp
        if extended.skipped:
            detail["skipped"] = list(extended.skipped)
        if tsa_failures:
            detail["tsa_failures"] = list(dict.fromkeys(tsa_failures))

        draft = EntryDraft(
            action="extend.pdf",
            actor=actor.name,
            record_id=record_id,
            document_sha256=sha256_hex(data),
            signature_sha256=extended.sha256,
            detail=detail,
        )
        return extended, self._append_signature(actor, draft, "pdf", level, extended, with_entry)

    def sign_json(
        self,
        actor: Actor,
        alias: str,
        payload: Any,
        level: str,
        detached: bool,
        record_id: str | None,
        with_entry: WithEntry | None = None,
    ) -> tuple[SignedJson, AppendedEntry]:
        self.check_may_add(actor, [record_id])
        key = self.signing_key(alias)
        signed = sign_json(payload, key, level, detached, self.timestamper)

        draft = EntryDraft(
            action="sign.json",
            actor=actor.name,
            key=alias,
            record_id=record_id,
            document_sha256=signed.payload_sha256,
            signature_sha256=signed.signature_sha256,
            detail={"level": level, "detached": detached},
        )
        return signed, self._append_signature(actor, draft, "json", level, signed, with_entry)

    def sign_xml(
        self,
        actor: Actor,
        alias: str,
        data: bytes,
        options: XmlSignOptions,
        record_id: str | None,
        with_entry: WithEntry | None = None,
    ) -> tuple[SignedXml, AppendedEntry]:
        """Sign an XML record (profile ``bhyt`` or ``xades``); RSA keys sign XAdES with the
        alias's scheme (:func:`~kyso.signer.xml.rsa_scheme_for`)."""
        key = self.signing_key(alias)
        self.check_may_add(actor, [record_id])
        options = replace(options, rsa_scheme=rsa_scheme_for(self.config.key(alias)))
        with collect_failures() as tsa_failures:
            signed = sign_xml(data, key, options, self.timestamper)
        detail: dict[str, Any] = {"level": options.level, "profile": signed.profile}
        if tsa_failures:
            detail["tsa_failures"] = list(dict.fromkeys(tsa_failures))
        draft = EntryDraft(
            action="sign.xml",
            actor=actor.name,
            key=alias,
            record_id=record_id,
            document_sha256=signed.document_sha256,
            signature_sha256=signed.sha256,
            detail=detail,
        )
        return signed, self._append_signature(actor, draft, "xml", options.level, signed, with_entry)

    def record_access(self, actor: str | None, action: str, **fields: Any) -> AppendedEntry:
        """The audit entry of a read that matters (an export, a record lookup)."""
        return self.audit.append(EntryDraft(action=action, actor=actor, **fields))

    # -- verification -------------------------------------------------------

    def verify_settings(self):
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

    def registered(self, candidates: list[str]) -> dict | None:
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

    # -- clients ------------------------------------------------------------

    def add_client(self, actor: str | None, name: str, role: str, keys: tuple[str, ...] = ()) -> str:
        """Create a client and its audit entry together; return its API key (shown once)."""
        for alias in keys:
            self.keystore.get(alias)  # UnknownKey for a typo, before anything is written
        result: dict[str, str] = {}

        def insert_client(conn: Connection, _appended: AppendedEntry) -> None:
            result["api_key"] = self.clients.add(name, role, keys, conn=conn)[1]

        self.audit.append(
            EntryDraft(action="client.add", actor=actor, detail={"client": name, "role": role, "keys": list(keys)}),
            insert_client,
        )
        return result["api_key"]

    def revoke_client(self, actor: str | None, name: str) -> None:
        self.audit.append(
            EntryDraft(action="client.revoke", actor=actor, detail={"client": name}),
            lambda conn, _appended: self.clients.revoke(name, conn),
        )
