"""Several ASGI processes share Redis: a bid placed through one server process reaches a watcher of
the lot connected to another (issue 8, scale-out).

Two real ``manage.py serve --no-worker`` processes (daphne, as in production behind a proxy) run on
this test's database and one Redis prefix. The rows they need are committed (a transactional test).
A websocket watcher of the lot connects to process 2; a bid goes through process 1's HTTP API with
an API token; the watcher receives the new state with the next sequence number (the lot's update
is published once on Redis by process 1 and written to its sockets by process 2).
"""

import asyncio
import json
import urllib.request
import uuid

import pytest
import websockets
from rest_framework.authtoken.models import Token

from tests.factories import COUNTY_TANGSHAN
from tests.trading.conftest import Floor, make_party, published_lot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


def _call(base: str, path: str, body: dict | None = None, token: str | None = None, key: str | None = None):
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Token {token}"} if token else {}),
            **({"Idempotency-Key": key} if key else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def test_a_bid_through_one_server_reaches_a_watcher_on_another(processes):
    seller = make_party(role="generator", region=COUNTY_TANGSHAN, name="唐山钢铁集团有限公司")
    buyer = make_party(name="回收利用甲有限公司")
    floor = Floor(seller=seller, buyers=[buyer], lot=published_lot(seller.org))
    floor.sale()
    token = Token.objects.create(user=buyer.user).key
    lot_id = floor.lot.pk

    one = processes.server("server-1")
    two = processes.server("server-2")

    async def scenario():
        uri = two.replace("http://", "ws://") + f"/ws/lots/{lot_id}/"
        async with websockets.connect(uri, additional_headers={"Origin": two}) as ws:
            snapshot = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            status, answer = await asyncio.to_thread(
                _call,
                one,
                f"/api/v1/lots/{lot_id}/bids/",
                {"amount": snapshot["state"]["minimum_next"]},
                token,
                str(uuid.uuid4()),
            )
            update = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
            return snapshot, status, answer, update

    try:
        snapshot, status, answer, update = asyncio.run(scenario())
    except Exception as exc:
        raise AssertionError(
            f"{exc!r}\n--- server 1:\n{processes.log('server-1')}\n--- server 2:\n{processes.log('server-2')}"
        ) from exc
    assert snapshot["type"] == "snapshot"
    assert status == 201, answer
    assert update["type"] == "state", update
    assert update["state"]["sequence"] == snapshot["state"]["sequence"] + 1 == answer["sequence"]
    assert update["state"]["current_price"] == answer["current_price"] == snapshot["state"]["minimum_next"]
