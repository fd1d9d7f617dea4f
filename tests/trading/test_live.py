"""``/ws/lots/{id}/`` on the real ASGI application and the Redis channel layer: a snapshot on
connect, then every change with consecutive sequence numbers; tenders publish counts only; private
messages go to the bidder's own notification socket."""

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator

from listings.models import LotStatus
from market.asgi import application
from market.trading import services
from tests.core.test_realtime import session_cookie_for
from tests.trading.conftest import Floor, make_party, published_lot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def tx_floor(transactional_db) -> Floor:
    seller = make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"实时回收{i}号有限公司") for i in range(3)]
    return Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))


def socket(path, cookie=None):
    headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, path, headers=headers)


def bid(party, lot, amount, maximum=None):
    return services.bid_place(
        actor=party.user, organisation=party.org, lot_id=lot.pk, amount=amount, maximum=maximum
    )


def test_watchers_get_a_snapshot_then_every_change_in_sequence(tx_floor):
    a, b = tx_floor.buyers[:2]
    sale = tx_floor.sale()
    lot = tx_floor.lot
    cookie_a = session_cookie_for(a.user)

    async def scenario():
        anonymous = socket(f"/ws/lots/{lot.pk}/")
        bidder_a = socket(f"/ws/lots/{lot.pk}/", cookie_a)
        assert (await anonymous.connect())[0] and (await bidder_a.connect())[0]
        snap = await anonymous.receive_json_from(timeout=5)
        snap_a = await bidder_a.receive_json_from(timeout=5)
        assert snap["type"] == "snapshot" and snap["state"]["sequence"] == sale.sequence
        assert snap["state"]["server_time"] and snap["state"]["you"] is None
        assert snap_a["state"]["you"]["label"] is None  # not bidding yet
        await sync_to_async(bid)(a, lot, "2000", "2500")
        await sync_to_async(bid)(b, lot, "2010")  # A's proxy answers: two rows, one message
        await sync_to_async(bid)(b, lot, "2600")
        messages = [await anonymous.receive_json_from(timeout=5) for _ in range(3)]
        await anonymous.disconnect()
        await bidder_a.disconnect()
        return snap, messages

    snap, messages = async_to_sync(scenario)()
    sequences = [m["state"]["sequence"] for m in messages]
    assert sequences[0] == snap["state"]["sequence"] + 1  # A's first bid: one row
    assert sequences[1] == sequences[0] + 2  # B's bid and A's proxy answer
    assert [m["state"]["current_price"] for m in messages] == ["2000.00", "2020.00", "2600.00"]
    assert messages[-1]["state"]["leader"] == "竞买人 B"
    # each message carries its public bid rows, so pages extend their history without asking
    assert [(b["bidder"], b["amount"], b["kind"]) for b in messages[1]["bids"]] == [
        ("竞买人 B", "2010.00", "manual"),
        ("竞买人 A", "2020.00", "proxy"),
    ]
    assert all(
        set(row) == {"sequence", "bidder", "amount", "kind", "created_at"}
        for m in messages
        for row in m["bids"]
    )
    assert all(m["type"] == "state" for m in messages)


def test_the_outbid_bidder_hears_it_on_its_own_socket_only(tx_floor):
    a, b, c = tx_floor.buyers
    tx_floor.sale()
    lot = tx_floor.lot

    async def scenario():
        a_ws = socket("/ws/notifications/", await sync_to_async(session_cookie_for)(a.user))
        c_ws = socket("/ws/notifications/", await sync_to_async(session_cookie_for)(c.user))
        assert (await a_ws.connect())[0] and (await c_ws.connect())[0]
        await sync_to_async(bid)(a, lot, "2000")
        await sync_to_async(bid)(b, lot, "2100")
        message = await a_ws.receive_json_from(timeout=5)
        silent = await c_ws.receive_nothing(timeout=1)
        await a_ws.disconnect()
        await c_ws.disconnect()
        return message, silent

    message, silent = async_to_sync(scenario)()
    assert message["kind"] == "outbid" and message["unread"] == 1 and lot.title in message["title"]
    assert silent is True


def test_a_tender_publishes_counts_only(tx_floor):
    a = tx_floor.buyers[0]
    tx_floor.sale("tender")
    lot = tx_floor.lot

    async def scenario():
        ws = socket(f"/ws/lots/{lot.pk}/")
        assert (await ws.connect())[0]
        await ws.receive_json_from(timeout=5)
        await sync_to_async(bid)(a, lot, "2345.67")
        message = await ws.receive_json_from(timeout=5)
        await ws.disconnect()
        return message

    message = async_to_sync(scenario)()
    assert message["state"]["bid_count"] == 1 and message["state"]["current_price"] is None
    assert "2345" not in str(message) and "bids" not in message


def test_a_draft_lot_socket_is_refused_to_strangers(tx_floor):
    lot = published_lot(tx_floor.seller.org)
    lot.status = LotStatus.DRAFT
    lot.save()

    async def scenario():
        ws = socket(f"/ws/lots/{lot.pk}/")
        connected, code = await ws.connect()
        return connected, code

    connected, code = async_to_sync(scenario)()
    assert not connected and code == 4404
