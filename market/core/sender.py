"""Messages sent by a thread of this process, off the caller's path, several at a time.

Publishing one Celery message costs about a millisecond here (kombu builds a Redis client for each
publish; Celery builds the message and its headers), as much as the insert it follows. For a
message whose loss costs nothing durable, the caller hands its item to a :class:`BatchSender` and
goes on: a daemon thread takes whatever has been handed since its last send and sends it as one
batch, so a busy process sends fewer, larger messages and an idle one sends at once.

What a sender must never be used for: a message that is the only record of something. Items not
yet sent die with the process (a crash, a kill), and the backlog is bounded (``limit``): beyond it
items are dropped with a warning rather than memory growing without end. A user of this module
keeps its own durable record of the work (``pricing``: the pending marks of the rollups, swept by
beat) and treats the message as a prompt to do it now.

A forked child (a prefork Celery pool, a server that forks its workers) starts with an empty
backlog and a thread of its own on its first item; the parent's thread is not copied by ``fork``.
At the interpreter's exit the backlog is given a moment to go out (:func:`flush`).
"""

import atexit
import logging
import os
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)


class BatchSender:
    """Items handed by :meth:`put`, sent by ``send(items)`` in a thread, in the order handed, at most
    ``batch`` a call. ``send`` raising loses that batch (logged)."""

    def __init__(self, name: str, send: Callable[[list], None], *, limit: int = 100_000, batch: int = 500):
        self.name, self._send, self.limit, self.batch = name, send, limit, batch
        self._reset()
        os.register_at_fork(after_in_child=self._reset)
        atexit.register(self.flush, 2.0)

    def _reset(self) -> None:
        self._lock = threading.Condition()
        self._items: list = []
        self._busy = False  # a batch taken and not yet sent
        self._thread: threading.Thread | None = None
        self._dropped = 0

    def put(self, item) -> bool:
        """Hand ``item`` to the thread; False (and the item dropped) when the backlog is full."""
        with self._lock:
            if len(self._items) >= self.limit:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 10_000 == 0:
                    logger.warning(
                        "%s: backlog of %d full, %d items dropped", self.name, self.limit, self._dropped
                    )
                return False
            self._items.append(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"sender: {self.name}", daemon=True)
                self._thread.start()
            self._lock.notify_all()
            return True

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything handed so far has been sent (or failed); False on ``timeout``."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._items and not self._busy, timeout)

    def _run(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._items)
                items, self._items = self._items[: self.batch], self._items[self.batch :]
                self._busy = True
            try:
                self._send(items)
            except Exception:
                logger.exception("%s: %d items not sent", self.name, len(items))
            finally:
                with self._lock:
                    self._busy = False
                    self._lock.notify_all()
