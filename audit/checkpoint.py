"""Signed, timestamped checkpoints of the audit log (SPEC 7): made, stored, scheduled.

A checkpoint states the log's Merkle root and chain head at one tree size in a C2SP
tlog-checkpoint note (:mod:`kyso.audit.checkpoint_format`), signs the note's UTF-8 bytes
with the log key (a keystore alias, so it may live in an HSM) and has a TSA timestamp the
signature bytes. Once an auditor keeps one, not even someone who can rewrite the whole
database can make a different log match it.

When: every ``checkpoint_every`` entries (at tree sizes that are exact multiples, so that
every worker and host that notices the same boundary makes the *same* checkpoint, which
the ``checkpoints`` primary key stores once), every ``checkpoint_seconds`` if the log
grew, and on demand. :class:`Checkpointer` runs that schedule in a daemon thread of each
serving process; an append that completes a multiple wakes it at once.

An auditor who asks for the checkpoint gets one of the log's size then
(:meth:`Checkpointer.current`), made on demand at most once per ``on_demand_seconds``
(each costs a signature and a timestamp); within that window the latest one is answered
with how old it is and how many entries it does not cover. An export ends with a
checkpoint of its last entry (:meth:`Checkpointer.closing`), so that an edit of the
newest entries cannot go unnoticed.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from asn1crypto import pem

from kyso.audit.checkpoint_format import checkpoint_body
from kyso.audit.entry import format_time
from kyso.audit.store import AuditLog, TreeState
from kyso.errors import ConfigError, KysoError, NotFound, TsaUnavailable
from kyso.keystore.base import SigningKey

if TYPE_CHECKING:
    from kyso.service import Kyso
    from kyso.signer.timestamp.client import TimestampClient

log = logging.getLogger(__name__)


def certificate_pem(key: SigningKey) -> str:
    """The log key's certificate (PEM), then its issuing CAs (root left out: the verifier's
    ``--trust`` supplies it), so that a verifier can reach its trust anchor offline."""
    certs = [key.info.certificate]
    certs += [c for c in key.info.chain if c.subject != c.issuer]
    return "".join(pem.armor("CERTIFICATE", c.dump()).decode("ascii") for c in certs)


def make_checkpoint(
    state: TreeState,
    origin: str,
    key: SigningKey,
    timestamper: TimestampClient,
    certificate: str | None = None,
) -> dict[str, Any]:
    """The checkpoint object of ``state``: body signed by ``key``, signature timestamped.

    ``time`` is the timestamp's genTime, the one time in it a third party vouches for.
    ``certificate`` is :func:`certificate_pem` of ``key``, if the caller keeps it.
    """
    body = checkpoint_body(origin, state.tree_size, state.root_hash, state.chain_head)
    signature = key.sign(body.encode("utf-8"), key.info.classic_scheme)  # SPEC 7: v1.5 or ECDSA
    token = timestamper.timestamp(hashlib.sha256(signature).digest())
    gen_time = token["content"]["encap_content_info"]["content"].parsed["gen_time"].native
    return {
        "origin": origin,
        "tree_size": state.tree_size,
        "root_hash": state.root_hash.hex(),
        "chain_head": state.chain_head,
        "time": format_time(gen_time),
        "body": body,
        "signature": base64.b64encode(signature).decode("ascii"),
        "certificate": certificate or certificate_pem(key),
        "timestamp_token": base64.b64encode(token.dump()).decode("ascii"),
    }


@dataclass(frozen=True)
class CurrentCheckpoint:
    """The checkpoint answered for "the log now": ``document`` (as stored), the log's size
    when asked, and the seconds since the checkpoint was stored."""

    document: dict[str, Any]
    log_size: int
    age_seconds: float

    @property
    def behind(self) -> int:
        """How many entries of the log the checkpoint does not cover (0: it is current)."""
        return self.log_size - int(self.document["tree_size"])


class Checkpointer:
    """Makes and stores the checkpoints of one log, now or on its schedule."""

    def __init__(
        self,
        audit: AuditLog,
        key: SigningKey,
        timestamper: TimestampClient,
        origin: str,
        every: int = 0,
        seconds: float = 0,
    ) -> None:
        self.audit, self.key, self.timestamper = audit, key, timestamper
        self.origin, self.every, self.seconds = origin, every, seconds
        # Read the certificates here, in the thread that builds the app: asn1crypto parses
        # lazily, and parsing one object from two threads at once is not safe.
        self.certificate = certificate_pem(key)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def checkpoint(self, tree_size: int | None = None) -> dict[str, Any]:
        """Make and store the checkpoint at ``tree_size`` (default: the log's size now).

        If one exists at that size it is returned unchanged: there is one per size.
        """
        state = self.audit.state(tree_size)
        existing = self.audit.checkpoint(state.tree_size)
        if existing is not None:
            return existing
        document = make_checkpoint(state, self.origin, self.key, self.timestamper, self.certificate)
        created = datetime.now(UTC)
        return self.audit.add_checkpoint(document, created)

    def current(self, on_demand_seconds: float, now: datetime | None = None) -> CurrentCheckpoint:
        """A checkpoint of the log's size now, made on demand unless the latest checkpoint
        is current already or was stored less than ``on_demand_seconds`` ago (then that
        one, with the entries it does not cover; so too when the TSA or the log key cannot
        make one now). The window is read from the database, so it holds across workers
        and hosts. ``NotFound`` while the log is empty.
        """
        size = self.audit.size()
        if size == 0:
            raise NotFound("the log is empty: there is nothing to checkpoint yet")
        now = now or datetime.now(UTC)
        mark = self.audit.latest_checkpoint_mark()
        stored = None if mark is None else self.audit.checkpoint(mark[0])
        if mark is None or stored is None:
            return CurrentCheckpoint(self.checkpoint(size), size, 0.0)
        latest = CurrentCheckpoint(stored, max(size, mark[0]), max(0.0, (now - mark[1]).total_seconds()))
        if latest.behind == 0 or latest.age_seconds < on_demand_seconds:
            return latest
        try:
            return CurrentCheckpoint(self.checkpoint(size), size, 0.0)
        except KysoError as exc:  # the TSA or the log key is down: the latest, saying so
            log.warning("could not make an audit checkpoint on demand: %s", exc.detail)
            return latest

    def closing(self) -> int:
        """Make sure a checkpoint covers the log's last entry now; return that tree size
        (what an export exports, so that it ends with this checkpoint)."""
        size = self.audit.size()
        if size > 0:
            self.checkpoint(size)
        return size

    def due(self, now: datetime | None = None) -> int | None:
        """The tree size a scheduled checkpoint is due at, or None.

        The largest multiple of ``every`` past the latest checkpoint (one missed while no
        thread ran is caught up here), else the current size once ``seconds`` have passed
        since the latest checkpoint and the log has grown since.
        """
        size = self.audit.size()
        mark = self.audit.latest_checkpoint_mark()
        latest, created = mark if mark else (0, None)
        if self.every > 0 and size // self.every * self.every > latest:
            return size // self.every * self.every
        now = now or datetime.now(UTC)
        if self.seconds > 0 and size > latest:
            if created is None or (now - created).total_seconds() >= self.seconds:
                return size
        return None

    def run_due(self) -> dict[str, Any] | None:
        """Make the checkpoint that is due, if any."""
        size = self.due()
        return None if size is None else self.checkpoint(size)

    def notify(self, tree_size: int, appended: int = 1) -> None:
        """An append listener: wake the thread when an append reaches a multiple of ``every``."""
        if self.every > 0 and tree_size // self.every > (tree_size - appended) // self.every:
            self._wake.set()

    def start(self) -> None:
        """Run the schedule in a daemon thread until :meth:`stop`."""
        self.audit.listeners.append(self.notify)
        self._thread = threading.Thread(target=self._loop, name="kyso-checkpointer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self.notify in self.audit.listeners:
            self.audit.listeners.remove(self.notify)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        # Poll at least every `seconds` (to honour it), and often enough to catch up a
        # multiple of `every` that another process reached.
        interval = min(s for s in (self.seconds, 30.0) if s > 0)
        while not self._stop.is_set():
            self._wake.wait(interval)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.run_due()
            except (KysoError, OSError, LookupError) as exc:
                log.warning("could not make a scheduled audit checkpoint: %s", exc)
            except Exception:  # a broken schedule must not take the worker down
                log.exception("could not make a scheduled audit checkpoint")


def checkpointer_for(kyso: Kyso) -> Checkpointer:
    """The checkpointer of a service: its log, its log key alias, its timestamper."""
    settings = kyso.config.audit
    if settings.log_key not in kyso.keystore:
        raise ConfigError(
            f"no key alias {settings.log_key!r} is configured to sign audit checkpoints "
            "([audit] log_key)"
        )
    if kyso.timestamper is None:
        raise TsaUnavailable("audit checkpoints need a timestamp authority; none is configured")
    return Checkpointer(
        kyso.audit,
        kyso.keystore.get(settings.log_key),
        kyso.timestamper,
        settings.origin,
        settings.checkpoint_every,
        settings.checkpoint_seconds,
    )


def start_checkpointer(kyso: Kyso) -> Checkpointer | None:
    """Start the scheduled checkpoints of a serving process (None: not configured).

    The thread stops when the service's database is disposed (``Kyso.close``).
    """
    settings = kyso.config.audit
    if settings.checkpoint_every <= 0 and settings.checkpoint_seconds <= 0:
        return None
    try:
        checkpointer = checkpointer_for(kyso)
    except KysoError as exc:
        log.warning("scheduled audit checkpoints are off: %s", exc.detail)
        return None
    checkpointer.start()
    kyso.db.on_dispose.append(checkpointer.stop)
    return checkpointer
