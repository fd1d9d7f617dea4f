"""Publishing to websocket groups, only after the surrounding transaction commits.

With Redis, every process reaches every socket through the Redis channel layer. In the embedded
single-process mode (``manage.py serve``) the in-memory layer lives on the server's event loop;
background jobs run on worker threads of the same process, so their messages are handed to that
loop with ``run_coroutine_threadsafe`` instead of a private loop that no socket listens on.
"""

import asyncio
import logging
import threading

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)

_server_loop: asyncio.AbstractEventLoop | None = None
_server_thread_id: int | None = None


def register_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Called by ``manage.py serve`` with the loop that runs the ASGI server."""
    global _server_loop, _server_thread_id
    _server_loop = loop
    _server_thread_id = threading.get_ident()


def publish(group: str, message: dict) -> None:
    """Send ``message`` (a dict with a ``type``) to every socket in ``group`` now."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        loop = _server_loop
        if loop is not None and loop.is_running() and threading.get_ident() != _server_thread_id:
            asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop).result(timeout=10)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:  # a lost live message must never undo or fail a committed write
        logger.exception("publish to %s failed", group)


def publish_on_commit(group: str, message: dict) -> None:
    """Queue ``publish`` to run after the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(group, message))


def user_group(user_id: int) -> str:
    return f"user.{user_id}"
