"""The remote session poller: the serving process's own worker for remote sessions.

Started by the app factory when ``[[remote_signing]]`` providers are configured (as the audit
checkpointer is), one per serving process, in a thread named ``kyso-remote-poller``. Each
tick it reads which open transactions are due (:func:`kyso.sessions.remote.store.due`) and
advances each (:func:`kyso.sessions.remote.progress.advance`): the database, not the
process, holds every pending session, so a restarted kyso goes on where it stopped, and of
several workers or hosts exactly one advances a session at a time. A status read advances a
due session too, so a session completes even where no poller runs.
"""

from __future__ import annotations

import logging
import threading
import time

from kyso.service import Kyso
from kyso.sessions.remote import store
from kyso.sessions.remote.progress import advance

log = logging.getLogger(__name__)

TICK_MIN, TICK_MAX = 0.2, 1.0  # seconds between two looks at the table


class RemotePoller:
    def __init__(self, kyso: Kyso, tick: float) -> None:
        self.kyso = kyso
        self.tick = tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self, now: float | None = None) -> int:
        """Advance every due session once; how many were due."""
        now = time.time() if now is None else now
        due = store.due(self.kyso.db, now)
        for session_id in due:
            if self._stop.is_set():
                break
            advance(self.kyso, session_id)  # at its own time: the ones before it took some
        return len(due)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="kyso-remote-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self.run_once()
            except Exception:  # a broken tick must not end the poller, nor the worker
                log.exception("the remote session poller failed a tick")


def start_remote_poller(kyso: Kyso) -> RemotePoller | None:
    """Start the poller of a serving process (None: no remote signing provider configured).
    It stops when the service's database is disposed (``Kyso.close``)."""
    providers = kyso.config.remote_signing
    if not providers:
        return None
    kyso.remote_providers  # noqa: B018 - a provider's missing secret stops the start, not a tick
    tick = min(max(min(p.poll_seconds for p in providers) / 2, TICK_MIN), TICK_MAX)
    poller = RemotePoller(kyso, tick)
    poller.start()
    kyso.db.on_dispose.append(poller.stop)
    return poller
