"""Group commit: callers that arrive together are served by one of them, in one go.

Each caller queues its request and tries to become the leader (a process-local lock that
is never waited on). The leader takes up to ``max_batch`` queued requests, oldest first,
hands them to ``commit`` (one transaction, one commit for all of them), marks them done
and wakes their callers; it goes on until its own request is done, then lets go and wakes
the oldest request still queued, whose caller becomes the next leader. A caller that is
not the leader sleeps until its request is done or it is its turn to lead.

So while one commit is on its way to the disk, the requests that arrive meanwhile queue
up and the next commit takes them all: the more callers at once, the more each commit
carries, with no timer and no added wait for a caller alone.

Requests only ever run on one leader thread at a time per :class:`Combiner`; what
``commit`` calls for them (their writes on the transaction's connection) runs on the
leader's thread, not the caller's, so it must not rely on thread-local state.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar


class Waiting:
    """A request's place in the queue: done once resolved, with ``error`` if it failed."""

    def __init__(self) -> None:
        self.done = False
        self.error: BaseException | None = None
        self._wake = threading.Event()

    def settle(self) -> None:
        self.done = True
        self._wake.set()


R = TypeVar("R", bound=Waiting)


class Combiner(Generic[R]):
    """Serves queued requests in batches through ``commit``, on one caller's thread at a time.

    ``commit(batch)`` resolves each request of the batch (its results, or ``error`` for one
    that alone failed); if it raises, every request of the batch not yet given an error
    gets that exception.
    """

    def __init__(self, commit: Callable[[list[R]], None], max_batch: int = 64) -> None:
        self._commit = commit
        self.max_batch = max_batch
        self._queue: deque[R] = deque()
        self._queue_lock = threading.Lock()
        self._leader = threading.Lock()
        self._leading: int | None = None  # the leader's thread id

    def queued(self) -> int:
        """How many requests wait for a leader to take them."""
        with self._queue_lock:
            return len(self._queue)

    def submit(self, request: R) -> None:
        """Return once ``request`` is committed; raise its error if it failed."""
        if self._leading == threading.get_ident():
            raise RuntimeError("a request's own writes cannot submit another request to the same log")
        with self._queue_lock:
            self._queue.append(request)
        while not request.done:
            if self._leader.acquire(blocking=False):
                try:
                    self._leading = threading.get_ident()
                    while not request.done:
                        self._serve(self._take())
                finally:
                    self._leading = None
                    self._leader.release()
                    self._wake_next()
                break
            request._wake.wait()
            request._wake.clear()
        if request.error is not None:
            raise request.error

    def _take(self) -> list[R]:
        with self._queue_lock:
            return [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]

    def _serve(self, batch: list[R]) -> None:
        try:
            self._commit(batch)
        except BaseException as exc:
            for request in batch:
                if request.error is None:
                    request.error = exc
        finally:
            for request in batch:
                request.settle()

    def _wake_next(self) -> None:
        # After the leader lock is free: a request queued while it was held, whose caller
        # found it taken, is asked to lead (if another caller took the lock meanwhile,
        # that one serves it or wakes it in turn).
        with self._queue_lock:
            if self._queue:
                self._queue[0]._wake.set()
