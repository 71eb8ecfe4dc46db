"""The domain facade: one straight path from a request to a signed, audited record.

The HTTP layer and the command line both call this class; it knows nothing of HTTP.
Each operation checks the key, signs and timestamps in one event loop, and appends its
audit entry in one transaction with the record registry row and, when the caller holds
one, the fulfilment of its ``Idempotency-Key`` reservation (:mod:`kyso.db.reservations`).
Key and revocation checks are :class:`~kyso.trust.checks.SignerChecks`; verification is
:class:`~kyso.signer.verify.service.Verification`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cached_property
from io import BytesIO
from typing import TYPE_CHECKING, Any, BinaryIO

from cachetools import TTLCache
from sqlalchemy import Connection

from kyso.audit.ownership import RecordSharing, check_may_add
from kyso.audit.store import AppendedEntry, AuditLog, EntryDraft, register_signature
from kyso.config import Config
from kyso.db import Database, open_database, open_schema
from kyso.db.clients import Client, ClientRegistry, hash_api_key
from kyso.db.reservations import Reservation, fulfil
from kyso.errors import KysoError
from kyso.keystore import Keystore, load_keystore
from kyso.signer.archive_dates import async_extend_before, async_own_deadline
from kyso.signer.bounds import PdfBounds, releasing_cycles
from kyso.signer.jades import SignedJson, sign_json
from kyso.signer.ltv import EXTENSION_LEVELS, ExtendedPdf, async_extend_pdf
from kyso.signer.pades import PdfSignOptions, SignedPdf, SignedStream, async_sign_pdf_stream
from kyso.signer.timestamp.authority import TimestampAuthority
from kyso.signer.timestamp.client import (
    TimestampClient,
    TimestampSource,
    collect_failures,
    http_source,
)
from kyso.signer.verify.service import Verification
from kyso.signer.xml import SignedXml, XmlSignOptions, rsa_scheme_for, sign_xml
from kyso.trust.checks import SignerChecks

if TYPE_CHECKING:
    from kyso.sessions.remote.providers import RemoteProviders
    from kyso.signer.verify.report import VerifySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Actor:
    """Who asks: a client name (``None`` for an unknown caller) and where from."""

    name: str | None
    role: str | None = None  # None: the local operator (the command line)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# How long a serving process believes an API key it verified: a key revoked by another
# process (``kyso clients revoke``, another worker) is refused here within this time.
API_KEY_CACHE_SECONDS = 5.0


class VerifiedKeys:
    """API keys verified lately, by their SHA-256: a process serving a client's calls reads
    its row once every ``seconds``, not on every call. Only keys that passed are kept (an
    unknown key is looked up each time, under the public rate limit); a revocation made in
    this process forgets them all at once."""

    def __init__(
        self, registry: ClientRegistry, seconds: float = API_KEY_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic, max_keys: int = 1024,
    ) -> None:  # fmt: skip
        self.registry = registry
        self._known: TTLCache[str, Client] = TTLCache(maxsize=max_keys, ttl=seconds, timer=clock)
        self._lock = threading.Lock()  # cachetools caches are not thread-safe
        self._generation = 0  # bumped by forget(): a lookup begun before it is not kept

    def authenticate(self, api_key: str) -> Client | None:
        digest = hash_api_key(api_key)
        with self._lock:
            client, generation = self._known.get(digest), self._generation
        if client is not None:
            return client
        client = self.registry.authenticate(api_key)
        if client is not None:
            with self._lock:
                if generation == self._generation:
                    self._known[digest] = client
        return client

    def forget(self) -> None:
        with self._lock:
            self._known.clear()
            self._generation += 1


class Kyso(SignerChecks, Verification):
    """One service instance: configuration, database, keys, timestamping, audit log."""

    def __init__(self, config: Config, db: Database, keystore: Keystore):
        self.config = config
        self.db = db
        self.keystore = keystore
        self.audit = AuditLog(db)
        self.clients = ClientRegistry(db)
        self.api_keys = VerifiedKeys(self.clients)
        self._verify_settings: VerifySettings | None = None
        self.pdf_bounds = PdfBounds.of(config.limits)
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
        record_ids = [r for r in record_ids if r is not None]
        if actor.role is None or not record_ids:
            return  # the local operator, or no record named: no owner to ask the database for
        if conn is not None:
            check_may_add(conn, record_ids, actor.name, self.record_sharing)
            return
        with self.db.reader.connect() as own:
            check_may_add(own, record_ids, actor.name, self.record_sharing)

    def _append_signature(
        self, actor: Actor, draft: EntryDraft, kind: str, level: str, deadline: datetime | None,
        reservation: Reservation | None,
    ) -> AppendedEntry:
        """Append a signing entry with its record registry row (``deadline``: when a signed
        PDF must be extended again) and, if given, the fulfilment of the caller's
        idempotency reservation: one transaction."""

        def write(conn: Connection, appended: AppendedEntry) -> None:
            self.check_may_add(actor, [draft.record_id], conn)
            register_signature(conn, appended, kind, level, deadline)
            if reservation is not None:
                fulfil(conn, reservation, appended.seq)

        return self.audit.append(draft, write)

    # -- signing ------------------------------------------------------------

    def sign_pdf(
        self,
        actor: Actor,
        alias: str,
        data: bytes,
        options: PdfSignOptions,
        record_id: str | None,
        reservation: Reservation | None = None,
    ) -> tuple[SignedPdf, AppendedEntry]:
        """Sign a PDF held in memory (:meth:`sign_pdf_stream` signs from and to files)."""
        out = BytesIO()
        made, appended = self.sign_pdf_stream(
            actor, alias, BytesIO(data), sha256_hex(data), options, record_id, out, reservation
        )
        return SignedPdf(out.getvalue(), made.field, made.sha256, made.repaired), appended

    def sign_pdf_stream(
        self,
        actor: Actor,
        alias: str,
        source: BinaryIO,
        document_sha256: str,
        options: PdfSignOptions,
        record_id: str | None,
        output: BinaryIO,
        reservation: Reservation | None = None,
    ) -> tuple[SignedStream, AppendedEntry]:
        """Sign the PDF in ``source`` (seekable; ``document_sha256`` is its SHA-256, for the
        audit entry) into ``output`` (empty, readable, writable, seekable). From files, a
        ``B-B`` or ``B-T`` signature never holds the document in memory whole."""
        self.check_may_add(actor, [record_id])

        async def signed_and_dated() -> tuple[SignedStream, datetime | None]:
            signed, extended = await self._async_sign_pdf(source, output, alias, options)
            return signed, await self._extend_before(signed, extended, output)

        with collect_failures() as tsa_failures, releasing_cycles():
            signed, deadline = asyncio.run(signed_and_dated())
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
            document_sha256=document_sha256,
            signature_sha256=signed.sha256,
            detail=detail,
        )
        return signed, self._append_signature(actor, draft, "pdf", options.level, deadline, reservation)

    async def _async_sign_pdf(
        self, source: BinaryIO, output: BinaryIO, alias: str, options: PdfSignOptions
    ) -> tuple[SignedStream, bytes | None]:
        """Check the key, sign (kyso's stamp when visible) into ``output``; for B-LT/B-LTA,
        sign at B-T and then add the validation data, gathered after the signature exists
        as validators expect (in memory: the extended PDF is returned too)."""
        key = await self.async_signing_key(alias)
        font = None
        if options.visible:
            from kyso.signer.stamp import find_font

            font = find_font(self.config.stamp_font)
        if options.level not in EXTENSION_LEVELS:
            signed = await async_sign_pdf_stream(
                source, output, key, options, self.timestamper, stamp_font=font, bounds=self.pdf_bounds
            )
            return signed, None
        base, first = replace(options, level="B-T"), BytesIO()
        signed = await async_sign_pdf_stream(
            source, first, key, base, self.timestamper, stamp_font=font, bounds=self.pdf_bounds
        )
        context = self.trust.revocation_context(key.info.chain)
        try:
            extended = await async_extend_pdf(
                first.getvalue(), options.level, self.timestamper, context, bounds=self.pdf_bounds
            )
        finally:
            await context.aclose()
        output.write(extended.pdf)
        output.seek(0)
        return replace(signed, sha256=extended.sha256, size=len(extended.pdf), end=len(extended.pdf)), extended.pdf

    async def _extend_before(
        self, signed: SignedStream, extended: bytes | None, output: BinaryIO
    ) -> datetime | None:
        """When the signed PDF must be extended (:mod:`kyso.signer.archive_dates`). A
        document whose only signature is the one just made is judged from that signature
        alone; any other is read again."""
        if extended is not None:
            return await async_extend_before(extended, self.trust)
        if not signed.signed_before:
            return await async_own_deadline(
                signed.field, signed.cms, signed.end, signed.document_digest, self.trust
            )
        output.seek(0)
        pdf = output.read()
        output.seek(0)
        return await async_extend_before(pdf, self.trust)

    def extend_pdf(
        self,
        actor: Actor,
        data: bytes,
        level: str,
        record_id: str | None,
        reservation: Reservation | None = None,
    ) -> tuple[ExtendedPdf, AppendedEntry]:
        """Add validation data to a signed PDF, and for ``B-LTA`` a fresh archive timestamp;
        audited as ``extend.pdf`` with a registry row, like a signature (its ``key`` is
        empty: no key alias of ours signed anything)."""

        self.check_may_add(actor, [record_id])

        async def run() -> tuple[ExtendedPdf, datetime | None]:
            context = self.trust.revocation_context()
            try:
                extended = await async_extend_pdf(data, level, self.timestamper, context, bounds=self.pdf_bounds)
            finally:
                await context.aclose()
            return extended, await async_extend_before(extended.pdf, self.trust)

        with collect_failures() as tsa_failures, releasing_cycles():
            extended, deadline = asyncio.run(run())
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
        return extended, self._append_signature(actor, draft, "pdf", level, deadline, reservation)

    def sign_json(
        self,
        actor: Actor,
        alias: str,
        payload: Any,
        level: str,
        detached: bool,
        record_id: str | None,
        reservation: Reservation | None = None,
    ) -> tuple[SignedJson, AppendedEntry]:
        self.check_may_add(actor, [record_id])
        key = self.signing_key(alias)  # the one event loop: sign_json itself is synchronous
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
        return signed, self._append_signature(actor, draft, "json", level, None, reservation)

    def sign_xml(
        self,
        actor: Actor,
        alias: str,
        data: bytes,
        options: XmlSignOptions,
        record_id: str | None,
        reservation: Reservation | None = None,
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
        return signed, self._append_signature(actor, draft, "xml", options.level, None, reservation)

    def record_access(self, actor: str | None, action: str, **fields: Any) -> AppendedEntry:
        """The audit entry of a read that matters (an export, a record lookup)."""
        return self.audit.append(EntryDraft(action=action, actor=actor, **fields))

    # -- clients ------------------------------------------------------------

    def add_client(self, actor: str | None, name: str, role: str, keys: tuple[str, ...] = ()) -> str:
        """Create a client and its audit entry together; return its API key (shown once)."""
        for alias in keys:
            self.keystore.get(alias)  # UnknownKey for a typo, before anything is written
        detail = {"client": name, "role": role, "keys": list(keys)}
        _, (_, api_key) = self.audit.append_and_write(
            [EntryDraft(action="client.add", actor=actor, detail=detail)],
            lambda conn, _entries: self.clients.add(name, role, keys, conn=conn),
        )
        return api_key

    def authenticate(self, api_key: str) -> Client | None:
        """The client an API key belongs to, or None (unknown or revoked); a revocation made
        elsewhere counts here within :data:`API_KEY_CACHE_SECONDS`."""
        return self.api_keys.authenticate(api_key)

    def revoke_client(self, actor: str | None, name: str) -> None:
        self.audit.append(
            EntryDraft(action="client.revoke", actor=actor, detail={"client": name}),
            lambda conn, _entry: self.clients.revoke(name, conn),
        )
        self.api_keys.forget()  # at once in this process
