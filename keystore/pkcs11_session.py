"""One PKCS#11 module, one session per token and one lock per process.

The rules, and why (measured with SoftHSM 2.6 and python-pkcs11 0.9.5, FIELD-NOTES.md):

- python-pkcs11 calls ``C_Initialize(NULL)``, so the module is not asked to lock for us: two
  threads in two sessions can crash the process. Every call into any module therefore runs
  under ONE re-entrant lock per process (:func:`process_lock`); it costs no throughput.
- A token gets ONE session per process, logged in once. A second ``C_Login`` in a process fails
  with ``CKR_USER_ALREADY_LOGGED_IN``: that means the login is already there, not an error.
- Nothing crosses ``fork()``. Sessions and logins belong to the process that opened them, and
  a real token needs ``C_Initialize`` in the child. Nothing here touches a module until the
  first token call of a process (so a gunicorn master that only builds the app never does);
  if a process did inherit an initialised module, its first call finalises the inherited copy
  and initialises afresh, and logs in by itself. The parent's sessions are forgotten, never
  closed: closing them could end the parent's sessions on a shared device. A fork waits for
  the token call in progress, so that none is cut in half.
- A failing call drops the token's session; the next call opens one and logs in again. A token
  that is not found makes the module re-read its slots (``C_Finalize`` + ``C_Initialize``):
  SoftHSM, and some USB modules, only see a token put back after that. A token still missing
  after that is not looked for again for :data:`REINIT_BACKOFF_SECONDS`.
- A PIN the token refused is not offered again (each try counts towards locking the token),
  and a token that reports its final PIN try is not logged in to automatically.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pkcs11
from pkcs11 import Mechanism, TokenFlag
from pkcs11.exceptions import (
    PinExpired,
    PinIncorrect,
    PinInvalid,
    PinLenRange,
    PinLocked,
    PKCS11Error,
    UserAlreadyLoggedIn,
)

REINIT_BACKOFF_SECONDS = 1.0
RESCANS = 3
RESCAN_PAUSE_SECONDS = 0.02

PinSource = Callable[[], str]


class TokenFailure(Exception):
    """A token cannot be used now; ``reason`` says why in words safe to show (never a PIN)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class TokenSession:
    """This process's logged-in session on one token, and the objects found in it."""

    token_label: str
    slot_id: int
    session: pkcs11.Session
    mechanisms: frozenset[Mechanism]
    objects: dict[str, Any] = field(default_factory=dict)  # cached handles, by key label


@dataclass
class _Module:
    lib: Any  # pkcs11.lib, a Cython class
    pid: int  # the process that initialised it


@dataclass
class _ProcessState:
    lock: threading.RLock = field(default_factory=threading.RLock)
    modules: dict[str, _Module] = field(default_factory=dict)
    sessions: dict[tuple[str, str], TokenSession] = field(default_factory=dict)
    refused_pins: dict[tuple[str, str], bytes] = field(default_factory=dict)
    failed_rescan: dict[tuple[str, str], float] = field(default_factory=dict)
    pin_mark_key: bytes = field(default_factory=lambda: os.urandom(32))


_state = _ProcessState()


def _hold_lock_for_fork() -> None:
    """Before fork: wait until no token call is running, so none is cut in half in the child."""
    _state.lock.acquire()


def _release_lock_after_fork() -> None:
    _state.lock.release()


def _forget_parent_state() -> None:
    """In a forked child: a fresh lock and none of the parent's sessions, logins or marks."""
    global _state
    modules = _state.modules  # kept, so that the child knows to re-initialise them
    _state = _ProcessState(modules=modules)


os.register_at_fork(
    before=_hold_lock_for_fork,
    after_in_parent=_release_lock_after_fork,
    after_in_child=_forget_parent_state,
)


def process_lock() -> threading.RLock:
    """The lock every call into a PKCS#11 module of this process must hold."""
    return _state.lock


def describe(exc: BaseException) -> str:
    """Words for a PKCS#11 failure; python-pkcs11 messages never carry the PIN."""
    reasons = {
        "PinIncorrect": "wrong PIN",
        "PinLocked": "the user PIN is locked",
        "PinExpired": "the user PIN has expired",
        "DeviceRemoved": "token removed",
        "TokenNotPresent": "token removed",
        "SessionHandleInvalid": "session lost; token removed or reset?",
        "ObjectHandleInvalid": "key handle lost; token removed or reset?",
        "SessionClosed": "session closed; token removed or reset?",
        "UserNotLoggedIn": "not logged in; token reset?",
        "DeviceError": "device error",
        "GeneralError": "the module reports a general error; token removed?",
    }
    name = type(exc).__name__
    return reasons.get(name, f"PKCS#11 error {name}")


def initialised_module(path: str) -> Any:
    """The module at ``path``, initialised in this process. Hold :func:`process_lock`."""
    known = _state.modules.get(path)
    if known is not None and known.pid == os.getpid():
        return known.lib
    # python-pkcs11 caches one lib object per path, also across fork: an object we did not
    # create in this process may carry a parent's initialisation.
    inherited = known is not None or path in getattr(pkcs11, "_loaded", {})
    try:
        lib = pkcs11.lib(path)
        if inherited:
            _reinitialise(lib)
    except PKCS11Error as exc:
        raise TokenFailure(f"cannot load PKCS#11 module {path!r}: {describe(exc)}") from None
    _state.modules[path] = _Module(lib, os.getpid())
    return lib


def _reinitialise(lib: Any) -> None:
    """``C_Finalize`` + ``C_Initialize``: drop the module's state in this process, read slots."""
    try:
        lib.finalize()
    except PKCS11Error:
        pass  # a fork-aware module answers "not initialised" in a child: that is the point
    lib.initialize()


def _reinitialise_module(path: str) -> None:
    """Re-read the module's slots; every session of this module in this process is gone."""
    for key in [key for key in _state.sessions if key[0] == path]:
        del _state.sessions[key]  # C_Finalize closes them; closing first would only fail
    _reinitialise(initialised_module(path))


def find_token(lib: Any, label: str) -> Any | None:
    """The present token labelled ``label``, or None; a slot that fails to answer is skipped.

    python-pkcs11's ``get_token`` gives up on the first slot whose token cannot be read, which
    would hide every other token when one is pulled out.
    """
    found = []
    for slot in lib.get_slots(token_present=True):
        try:
            token = slot.get_token()
        except PKCS11Error:
            continue
        if token.label == label:
            found.append(token)
    if len(found) > 1:
        raise TokenFailure(f"more than one token is labelled {label!r}")
    return found[0] if found else None


def find_token_or_rescan(path: str, label: str) -> Any:
    """The token labelled ``label``; if it is missing, the module re-reads its slots.

    Up to :data:`RESCANS` times, a little apart: SoftHSM rewrites a token's file at every
    login, so a process reading it at that moment fails (and then never sees the token again
    until it re-initialises). After a call that rescanned in vain, the next calls within
    :data:`REINIT_BACKOFF_SECONDS` answer at once, without disturbing the module.
    """
    token = find_token(initialised_module(path), label)
    last_failure = _state.failed_rescan.get((path, label), -1e9)
    if token is None and time.monotonic() - last_failure >= REINIT_BACKOFF_SECONDS:
        for attempt in range(RESCANS):
            time.sleep(RESCAN_PAUSE_SECONDS * attempt)
            _reinitialise_module(path)
            token = find_token(initialised_module(path), label)
            if token is not None:
                break
        else:
            _state.failed_rescan[(path, label)] = time.monotonic()
    if token is None:
        raise TokenFailure(f"no token labelled {label!r} is present")
    return token


def token_session(path: str, label: str, pin: PinSource) -> TokenSession:
    """This process's logged-in session on the token (opened on first use). Hold the lock.

    Raises TokenFailure (no retry helps: missing token, PIN refused) or PKCS11Error.
    """
    known = _state.sessions.get((path, label))
    if known is not None:
        return known
    token = find_token_or_rescan(path, label)
    session = login(token, pin, refused_key=(path, label))
    opened = TokenSession(label, token.slot.slot_id, session, frozenset())
    _state.sessions[(path, label)] = opened  # first, so that a failure below closes it
    opened.mechanisms = frozenset(token.slot.get_mechanisms())
    return opened


def drop_session(path: str, label: str) -> None:
    """Forget the token's session after a failure, so that the next call starts afresh."""
    known = _state.sessions.pop((path, label), None)
    if known is not None:
        try:
            known.session.close()
        except PKCS11Error:
            pass  # the token is gone or reset: nothing left to close


def login(token: Any, pin: PinSource, refused_key: tuple[str, str] | None = None) -> Any:
    """Open a session on ``token`` and log the user in; an existing login is reused.

    With ``refused_key``, a PIN that this token refused before is not tried again, and a token
    on its final PIN try is left alone: automatic retries would lock it.
    """
    flags = token.flags
    if flags & TokenFlag.USER_PIN_LOCKED:
        raise TokenFailure("the user PIN is locked")
    if refused_key is not None and flags & TokenFlag.USER_PIN_FINAL_TRY:
        raise TokenFailure("one PIN try left; not spent automatically")
    secret = pin()  # read at login time, kept in no attribute
    mark = _pin_mark(secret)
    if refused_key is not None:
        refused = _state.refused_pins.get(refused_key)
        if refused is not None and hmac.compare_digest(refused, mark):
            raise TokenFailure(
                "wrong PIN (refused before; not tried again, to keep the token from locking)"
            )
    try:
        session = token.open(user_pin=secret)
    except UserAlreadyLoggedIn:
        session = token.open()  # this process is logged in already: sessions share the login
    except (PinIncorrect, PinInvalid, PinLenRange) as exc:
        if refused_key is not None:
            _state.refused_pins[refused_key] = mark
        raise TokenFailure(
            describe(exc) if isinstance(exc, PinIncorrect) else "wrong PIN"
        ) from None
    except (PinLocked, PinExpired) as exc:
        raise TokenFailure(describe(exc)) from None
    if refused_key is not None:
        _state.refused_pins.pop(refused_key, None)
    return session


def _pin_mark(pin: str) -> bytes:
    """A keyed hash of the PIN, to recognise a refused PIN without keeping it."""
    return hmac.new(_state.pin_mark_key, pin.encode("utf-8"), hashlib.sha256).digest()


def find_private_key(session: Any, key_label: str) -> Any:
    """The one private key labelled ``key_label`` in ``session``."""
    keys = list(
        session.get_objects(
            {
                pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PRIVATE_KEY,
                pkcs11.Attribute.LABEL: key_label,
            }
        )
    )
    if not keys:
        raise TokenFailure(f"no private key labelled {key_label!r} on the token")
    if len(keys) > 1:
        raise TokenFailure(f"more than one private key is labelled {key_label!r}")
    return keys[0]
