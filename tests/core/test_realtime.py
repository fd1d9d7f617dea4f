"""The real ASGI application over real Redis: a signed-in user's page gets notifications pushed after
commit (through the fan-out hub's pub/sub, on the user's own group); strangers are refused."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore

from market.accounts.models import VerificationStatus
from market.accounts.services import organisation_decide
from market.asgi import application
from market.core.realtime import user_group
from tests.factories import make_organisation, make_user

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def session_cookie_for(user) -> bytes:
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.save()
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}".encode()


def communicator(cookie: bytes | None = None, origin=b"http://testserver"):
    headers = [(b"origin", origin), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/notifications/", headers=headers)


async def subscribed(group: str) -> None:
    """Wait until this process's hub has subscribed ``group``: a socket joins its group just after it
    is accepted, and a message published before that is not for it."""
    import asyncio

    from market.core.fanout import hub

    for _ in range(200):
        if hub.groups.get(group) and hub._lock is not None and not hub._lock.locked():
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)


def test_the_channel_layer_is_redis():
    assert type(get_channel_layer()).__module__.startswith("channels_redis")


def test_a_verification_decision_reaches_the_members_open_page(operator):
    admin = make_user()
    org = make_organisation(admin=admin, status=VerificationStatus.PENDING)
    cookie = session_cookie_for(admin)

    async def scenario():
        ws = communicator(cookie)
        connected, _ = await ws.connect()
        assert connected
        await subscribed(user_group(admin.pk))
        await sync_to_async(organisation_decide)(actor=operator, organisation=org, decision="verify")
        message = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["type"] == "notify"
    assert org.legal_name in message["title"]
    assert message["url"] == f"/organisations/{org.pk}/"


def test_nothing_is_published_when_the_transaction_rolls_back(operator):
    from django.db import transaction

    admin = make_user()
    org = make_organisation(admin=admin, status=VerificationStatus.PENDING)
    cookie = session_cookie_for(admin)

    def decide_then_fail():
        with pytest.raises(RuntimeError), transaction.atomic():
            organisation_decide(actor=operator, organisation=org, decision="verify")
            raise RuntimeError("crash before commit")

    async def scenario():
        ws = communicator(cookie)
        assert (await ws.connect())[0]
        await sync_to_async(decide_then_fail)()
        nothing = await ws.receive_nothing(timeout=1)
        await ws.disconnect()
        return nothing

    assert async_to_sync(scenario)() is True
    org.refresh_from_db()
    assert org.status == VerificationStatus.PENDING


def test_anonymous_and_foreign_origin_are_refused():
    async def scenario():
        anon = communicator()
        connected, code = await anon.connect()
        assert not connected and code == 4401
        foreign = communicator(session_cookie_for_async_user, origin=b"http://evil.example")
        connected, _ = await foreign.connect()
        assert not connected

    user = make_user()
    global session_cookie_for_async_user
    session_cookie_for_async_user = session_cookie_for(user)
    async_to_sync(scenario)()


def test_a_group_message_from_another_process_is_delivered():
    """What a Celery worker does: a notice published through Redis, received by the ASGI app's socket."""
    import subprocess
    import sys

    user = make_user()
    cookie = session_cookie_for(user)

    async def scenario():
        ws = communicator(cookie)
        assert (await ws.connect())[0]
        code = (
            "import django; django.setup();"
            "from market.core.fanout import fanout_publish; from market.core.realtime import user_group;"
            f"fanout_publish(user_group({user.pk}), {{'type': 'notify', 'title': '来自另一个进程'}})"
        )
        import os

        proc = await sync_to_async(subprocess.run)(
            [sys.executable, "-c", code],
            env={
                **os.environ,
                "DJANGO_SETTINGS_MODULE": "market.settings_test",
                "REDIS_PREFIX": settings.REDIS_PREFIX,
            },
            capture_output=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr.decode()
        message = await ws.receive_json_from(timeout=10)
        await ws.disconnect()
        return message

    assert async_to_sync(scenario)()["title"] == "来自另一个进程"


def test_messages_published_together_reach_the_socket_in_order():
    """``fanout_publish_many`` (the live index's ticks: one pipeline to Redis for every series and
    group) delivers each message to its group's sockets, in the order given; other groups' sockets
    get nothing of the others'."""
    from market.core.fanout import fanout_publish_many

    user, other = make_user(), make_user()
    cookie = session_cookie_for(user)

    async def scenario():
        ws = communicator(cookie)
        assert (await ws.connect())[0]
        await subscribed(user_group(user.pk))
        await sync_to_async(fanout_publish_many)(
            [(user_group(user.pk), {"type": "notify", "title": f"第{i}条"}) for i in range(1, 4)]
            + [(user_group(other.pk), {"type": "notify", "title": "别人的"})]
        )
        titles = [(await ws.receive_json_from(timeout=10))["title"] for _ in range(3)]
        assert await ws.receive_nothing(timeout=0.5)
        await ws.disconnect()
        return titles

    assert async_to_sync(scenario)() == ["第1条", "第2条", "第3条"]


def test_messages_published_in_a_batch_go_together_at_its_end_in_order(monkeypatch):
    """``fanout_batched`` (the bid gateway: a bid's state and its notices): nothing leaves inside the
    block; at its end every message goes, in order, in one round trip, a failure inside included;
    a nested block leaves the sending to the outer one."""
    from market.core import fanout

    user = make_user()
    cookie = session_cookie_for(user)
    group = user_group(user.pk)
    sent = []
    real = fanout.fanout_publish_many
    monkeypatch.setattr(
        fanout, "fanout_publish_many", lambda messages: (sent.append(len(messages)), real(messages))
    )

    def publish():
        with pytest.raises(RuntimeError), fanout.fanout_batched():
            fanout.fanout_publish(group, {"type": "notify", "title": "第1条"})
            with fanout.fanout_batched():
                fanout.fanout_publish(group, {"type": "notify", "title": "第2条"})
            assert sent == [1, 1]  # handed over, not sent: the calls above went to the batch
            raise RuntimeError("the request failed after its commit")

    async def scenario():
        ws = communicator(cookie)
        assert (await ws.connect())[0]
        await subscribed(group)
        await sync_to_async(publish)()
        titles = [(await ws.receive_json_from(timeout=10))["title"] for _ in range(2)]
        await ws.disconnect()
        return titles

    assert async_to_sync(scenario)() == ["第1条", "第2条"]
    assert sent[-1] == 2  # the batch: one call, one round trip
