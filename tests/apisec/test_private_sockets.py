"""Private websocket groups on the real ASGI application (``market.asgi.application``) and Redis:
A, signed in, is refused B's draft lot, hears nothing of B's notifications, and never reads B's
sealed tender bids, neither as the seller of the tender nor as a rival bidder."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from market.asgi import application
from market.core.notify import notify_users
from market.trading import services as trading
from tests.apisec.world import SEALED_ON_A_LOT, SEALED_ON_C_LOT, build_world
from tests.core.test_realtime import session_cookie_for

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def socket(path, cookie=None):
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def test_a_cannot_join_or_overhear_b_private_groups(settings):
    settings.STRIPE_SECRET_KEY = ""
    world = build_world()
    a, b = world.a, world.b
    cookie_a, cookie_b = session_cookie_for(a.user), session_cookie_for(b.user)

    async def scenario():
        seen = []
        # B's draft lot has no group for strangers
        draft = socket(f"/ws/lots/{world.b_draft_lot.pk}/", cookie_a)
        connected, code = await draft.connect()
        assert not connected and code == 4404
        # no user, no notification socket at all
        anonymous = socket("/ws/notifications/")
        connected, code = await anonymous.connect()
        assert not connected and code == 4401

        a_notes = socket("/ws/notifications/", cookie_a)
        b_notes = socket("/ws/notifications/", cookie_b)
        as_seller = socket(f"/ws/lots/{world.a_tender_lot.pk}/", cookie_a)
        as_rival = socket(f"/ws/lots/{world.c_tender_lot.pk}/", cookie_a)
        for ws in (a_notes, b_notes, as_seller, as_rival):
            assert (await ws.connect())[0]
        seller_snapshot = await as_seller.receive_json_from(timeout=5)
        rival_snapshot = await as_rival.receive_json_from(timeout=5)
        seen += [seller_snapshot, rival_snapshot]
        assert rival_snapshot["state"]["you"]["tender_bid"] == "1750.00"  # A's own sealed bid only
        # asking for B's group by name is not a thing the socket does
        await a_notes.send_json_to({"type": "subscribe", "group": f"user.{b.user.pk}"})
        await as_rival.send_json_to({"type": "snapshot"})
        seen.append(await as_rival.receive_json_from(timeout=5))

        # B is notified privately, and B raises its sealed bid on both tenders
        await sync_to_async(notify_users)([b.user.pk], title="乙方私事-9001", email=False, kind="deal")
        b_message = await b_notes.receive_json_from(timeout=5)
        assert "乙方私事-9001" in b_message["title"]
        for lot in (world.a_tender_lot, world.c_tender_lot):
            await sync_to_async(trading.bid_place)(
                actor=b.user, organisation=b.org, lot_id=lot.pk, amount="1999.99"
            )
        seen.append(await as_seller.receive_json_from(timeout=5))
        seen.append(await as_rival.receive_json_from(timeout=5))
        silent = await a_notes.receive_nothing(timeout=1)
        for ws in (a_notes, b_notes, as_seller, as_rival):
            await ws.disconnect()
        return seen, silent

    seen, silent = async_to_sync(scenario)()
    assert silent is True  # not B's notice, nor B's outbid news
    text = str(seen)
    for secret in (SEALED_ON_A_LOT, SEALED_ON_C_LOT, "1999.99", "乙方私事-9001"):
        assert secret not in text, secret
    assert seen[-1]["type"] == "state" and seen[-1]["state"]["current_price"] is None
