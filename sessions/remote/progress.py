"""One step of a remote session: ask the provider, or finish what it answered, or end it.

:func:`advance` takes the session's transaction (one worker at a time, see
:mod:`kyso.sessions.remote.store`) and, by what the transaction holds:

- ``pending``: asks the provider. Still pending: asks again later, with back-off
  (:meth:`RemoteProvider.next_poll_delay`), the last time just before the session expires;
  an answer is used only if it was asked for before then. Rejected by the clinician:
  ``rejected``. Expired at the provider, or no answer when the session expires:
  ``expired``. A provider that cannot be reached is asked again later (until the session
  expires): an outage of the provider is not the clinician's refusal.
- ``signed``: checks every signature with the clinician's certificate, finishes the documents
  (timestamp for ``B-T``) and records them, as a token session's completion does
  (:func:`kyso.sessions.service.finish_session`); the signed documents are kept for the HIS
  to read. A signature that does not verify ends the session ``failed``
  (``invalid_signature``) with nothing signed; a timestamp authority that fails is tried
  again for a while.

Every end has its audit entry (``session.complete``, ``session.reject``,
``session.expire``, ``session.fail``) naming the provider and the transaction id, written
with the end itself; only one worker's end is kept.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace

from kyso.audit.store import EntryDraft
from kyso.errors import InvalidSignature, KysoError, RemoteSignerUnavailable, SessionUsed
from kyso.service import Actor, Kyso
from kyso.sessions.remote import store
from kyso.sessions.remote.providers import RemoteProvider
from kyso.sessions.remote.service import in_document_order
from kyso.sessions.remote.store import RemoteTransaction
from kyso.sessions.service import finish_session

log = logging.getLogger(__name__)

LAST_CALL_SECONDS = 1.0  # the last question is asked this long before the session expires
FINISH_GRACE_SECONDS = 600.0  # an answered session whose finishing fails is tried this long
_END_ACTIONS = {"rejected": "session.reject", "expired": "session.expire", "failed": "session.fail"}


def advance(kyso: Kyso, session_id: str, now: float | None = None) -> str | None:
    """Move the session on if its time has come and no other worker holds it; its status
    afterwards (None: not taken)."""
    now = time.time() if now is None else now
    transaction = store.take(kyso.db, session_id, now)
    if transaction is None:
        return None
    try:
        return _advance(kyso, transaction, now)
    except Exception:
        # Never leave a transaction held, nor asked again at once, after an unforeseen error.
        log.exception("remote signing session %s: could not be advanced", session_id)
        store.reschedule(kyso.db, session_id, now + 30.0, transaction.attempts + 1)
        return "pending"


def _advance(kyso: Kyso, transaction: RemoteTransaction, now: float) -> str:
    if transaction.provider not in kyso.remote_providers:
        problem = RemoteSignerUnavailable(
            f"remote signing provider {transaction.provider!r} is no longer configured"
        )
        return _end(kyso, transaction, "failed", problem)
    provider = kyso.remote_providers.get(transaction.provider)
    if transaction.status == "pending":
        if now >= transaction.expires_at:
            return _end(kyso, transaction, "expired")
        try:
            answer = provider.status(transaction.transaction_id, transaction.reference)
        except RemoteSignerUnavailable as exc:
            log.warning("remote signing session %s: %s", transaction.session_id, exc.detail)
            return _later(kyso, transaction, provider, now)
        if answer.state == "pending":
            return _later(kyso, transaction, provider, now)
        if answer.state in ("rejected", "expired"):
            return _end(kyso, transaction, answer.state)
        if answer.state == "failed":
            why = answer.message or "the provider reports the transaction failed"
            return _end(kyso, transaction, "failed", RemoteSignerUnavailable(why))
        names = [d["name"] for d in transaction.state["documents"]]
        try:
            signatures = in_document_order(answer, names)
        except InvalidSignature as exc:
            return _end(kyso, transaction, "failed", exc)
        store.answered(kyso.db, transaction.session_id, signatures, answer.reference)
        transaction = replace(transaction, status="signed", signatures=tuple(signatures))
    return _finish(kyso, transaction, provider, now)


def _finish(
    kyso: Kyso, transaction: RemoteTransaction, provider: RemoteProvider, now: float
) -> str:
    try:
        finish_session(
            kyso,
            Actor(transaction.client),
            transaction.session_id,
            transaction.state,
            transaction.signatures,
            detail={"provider": transaction.provider, "transaction_id": transaction.transaction_id},
            conclude_remote=True,
        )
    except SessionUsed:
        return "ended"  # another worker ended it first
    except InvalidSignature as exc:
        return _end(kyso, transaction, "failed", exc)
    except KysoError as exc:
        if exc.status >= 500 and now < transaction.expires_at + FINISH_GRACE_SECONDS:
            log.warning("remote signing session %s: finishing failed, will retry: %s",
                        transaction.session_id, exc.detail)
            return _later(kyso, transaction, provider, now)
        return _end(kyso, transaction, "failed", exc)
    return "completed"


def _later(kyso: Kyso, transaction: RemoteTransaction, provider: RemoteProvider, now: float) -> str:
    """Ask again after the back-off delay; the last time just before the session expires."""
    wanted = now + provider.next_poll_delay(transaction.attempts)
    last_call = transaction.expires_at - LAST_CALL_SECONDS
    if transaction.status == "signed":
        at = wanted
    elif now < last_call:
        at = min(wanted, last_call)
    else:
        at = transaction.expires_at  # then: expired, without asking
    store.reschedule(kyso.db, transaction.session_id, at, transaction.attempts + 1)
    return "pending"


def _end(
    kyso: Kyso, transaction: RemoteTransaction, status: str, error: KysoError | None = None
) -> str:
    """End the session ``status`` with its audit entry, unless another worker ended it."""
    if status == "rejected":
        problem = {"code": "rejected", "detail": "the clinician declined to sign"}
    elif status == "expired":
        problem = {
            "code": "session_expired",
            "detail": "no signature came before the session expired; start a new session",
        }
    else:
        assert error is not None
        problem = {"code": error.code, "detail": error.detail}
    detail = {
        "session": transaction.session_id,
        "provider": transaction.provider,
        "transaction_id": transaction.transaction_id,
        "code": problem["code"],
    }
    draft = EntryDraft(
        action=_END_ACTIONS[status],
        actor=transaction.client,
        outcome="denied" if status == "rejected" else "error",
        key=f"session:{transaction.session_id}",
        detail=detail,
    )
    try:
        kyso.audit.append(
            draft, lambda conn, _entry: store.conclude(conn, transaction.session_id, status, {"error": problem})
        )
    except SessionUsed:
        return "ended"
    return status
