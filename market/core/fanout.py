"""Fan-out of public live updates: each server process receives an update once and writes it to
its own sockets.

Plain channels-redis ``group_send`` costs one Redis message per socket and, measured on this
machine, topped out near 1,600 deliveries a second with a p99 near one second at 1,000 watchers,
dropping messages after 60 s of backlog. Here an update is serialised once, published once on a
Redis pub/sub channel (``PUBLISH <prefix>:fanout:<group>``), received once by every server process
subscribed to it, and written by that process to each of its local sockets.

Pub/sub keeps nothing: a process that was disconnected misses messages. That is why every update
carries a sequence number and clients that see a gap ask for a fresh snapshot; and when the hub
has lost Redis and subscribed again, it asks each of its sockets to resynchronise (``hub_resync``:
a lot's socket sends its client a fresh snapshot), so a client hears of a change missed in the
outage even when no later update comes to show the gap. Private notices
(to one user) come this way too, on the user's own group (``user.<id>``), which only that user's
authenticated notification sockets join; they carry their unread count, so a missed one is made
good by the next.

Without Redis (the embedded single-process mode) the hub is local: publishers hand the message to
the server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import defaultdict
from collections.abc import Callable

from django.conf import settings

logger = logging.getLogger(__name__)


def _channel(group: str) -> str:
    return f"{settings.REDIS_PREFIX}:fanout:{group}"


class Hub:
    """The sockets of this process by group, fed by one Redis subscription per process."""

    def __init__(self):
        self.groups: dict[str, set] = defaultdict(set)
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._pubsub = None
        self._ready: asyncio.Event | None = None
        self._lock: asyncio.Lock | None = None
        self._resync_task: asyncio.Task | None = None

    async def join(self, group: str, consumer) -> None:
        await self._ensure_running()
        first = not self.groups[group]
        self.groups[group].add(consumer)
        if first and self._pubsub is not None:
            async with self._lock:
                await self._pubsub.subscribe(_channel(group))

    async def leave(self, group: str, consumer) -> None:
        members = self.groups.get(group)
        if not members:
            return
        members.discard(consumer)
        if not members:
            del self.groups[group]
            if self._pubsub is not None:
                async with self._lock:
                    try:
                        await self._pubsub.unsubscribe(_channel(group))
                    except Exception:  # the reader reconnects and resubscribes what is still joined
                        logger.debug("unsubscribe from %s failed", group, exc_info=True)

    async def _ensure_running(self) -> None:
        loop = asyncio.get_running_loop()
        if self.loop is not loop:  # a new event loop (tests run several): start afresh on it
            self.groups.clear()
            self.loop, self._task, self._pubsub = loop, None, None
            self._ready, self._lock = asyncio.Event(), asyncio.Lock()
        if not settings.REDIS_URL:
            return
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = loop.create_task(self._read())
        await self._ready.wait()

    async def _read(self) -> None:
        """Subscribe to the joined groups and deliver what arrives; reconnect with back-off."""
        import redis.asyncio as aioredis

        delay = 0.2
        lost = False
        while True:
            # no read timeout: a quiet subscription is not a broken one (redis-py 8 defaults to 5 s)
            client = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_timeout=None, socket_connect_timeout=5
            )
            try:
                self._pubsub = client.pubsub(ignore_subscribe_messages=True)
                await self._pubsub.subscribe(_channel("_hub"), *[_channel(g) for g in list(self.groups)])
                self._ready.set()
                delay = 0.2
                if lost:  # beside the reader, so live updates flow while the snapshots are read
                    lost = False
                    self._resync_task = asyncio.get_running_loop().create_task(self.resync())
                prefix = len(_channel(""))
                while True:
                    message = await self._pubsub.get_message(timeout=30)
                    if message is None:
                        continue
                    await self.deliver(message["channel"].decode()[prefix:], message["data"].decode())
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("live fan-out lost Redis; reconnecting in %.1f s", delay, exc_info=True)
                lost = True
                self._ready.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):  # closing a broken connection
                    await client.aclose()

    async def resync(self) -> None:
        """After an outage: each socket that knows how to catch up (``hub_resync``) does."""
        for group in list(self.groups):
            for consumer in list(self.groups.get(group, ())):
                catch_up = getattr(consumer, "hub_resync", None)
                if catch_up is None:
                    continue
                try:
                    await catch_up()
                except Exception:  # one broken socket must not stop the others
                    logger.debug("resync of a socket of %s failed", group, exc_info=True)

    async def deliver(self, group: str, text: str) -> int:
        sent = 0
        for consumer in list(self.groups.get(group, ())):
            try:
                await consumer.send(text_data=text)
                sent += 1
            except Exception:  # one broken socket must not stop the others
                logger.debug("send to a socket of %s failed", group, exc_info=True)
        return sent


hub = Hub()
_redis = None
_redis_lock = threading.Lock()


def _redis_client():
    global _redis
    if _redis is None:
        import redis

        with _redis_lock:
            _redis = _redis or redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5)
    return _redis


def fanout_publish(group: str, message: dict) -> None:
    """Publish ``message`` to every socket joined to ``group`` in every server process (now)."""
    fanout_publish_many([(group, message)])


_batch = threading.local()


@contextlib.contextmanager
def fanout_batched():
    """Publish what this thread publishes inside the block at its end, in order, in one round trip
    to Redis (``fanout_publish_many``): a request that sends several live messages (a bid's state to
    the lot's watchers and its notices to their users) sends them together."""
    if getattr(_batch, "messages", None) is not None:  # nested: the outer block sends
        yield
        return
    _batch.messages = []
    try:
        yield
    finally:
        messages, _batch.messages = _batch.messages, None
        fanout_publish_many(messages)


def fanout_publish_many(messages) -> None:
    """Publish each (group, message) as ``fanout_publish`` does, in order, in one round trip to Redis."""
    messages = list(messages)
    pending = getattr(_batch, "messages", None)
    if pending is not None:
        pending.extend(messages)
        return
    try:
        texts = [(group, json.dumps(message, ensure_ascii=False, default=str)) for group, message in messages]
        if not texts:
            return
        if settings.REDIS_URL:
            if len(texts) == 1:
                _redis_client().publish(_channel(texts[0][0]), texts[0][1])
                return
            pipe = _redis_client().pipeline(transaction=False)
            for group, text in texts:
                pipe.publish(_channel(group), text)
            pipe.execute()
            return
        loop = hub.loop
        if loop is not None and loop.is_running():
            for group, text in texts:
                asyncio.run_coroutine_threadsafe(hub.deliver(group, text), loop)
    except Exception:  # a lost live message must never fail a committed write
        logger.exception("fan-out of %d messages failed", len(messages))


def fanout_publish_on_commit(group: str, message: dict | Callable[[], dict]) -> None:
    """Publish after the current transaction commits (at once outside one). ``message`` may be a
    function that builds it: then it is built after the commit, outside the transaction's locks."""
    from django.db import transaction

    def send():
        try:
            built = message() if callable(message) else message
        except Exception:  # a lost live message must never fail a committed write
            logger.exception("building the live message for %s failed", group)
            return
        fanout_publish(group, built)

    transaction.on_commit(send, robust=True)
