"""Redis restarted (killed and started empty) under a bid load, with a live watcher and a Celery worker.

Redis here is the test's own ``redis-server``: the channel layer, the cache, the Celery broker and the
live fan-out of one market (daphne, a worker with beat). Bids keep being accepted through the
restart (a client that loses an answer retries with its key); the watcher's socket, fed by the
process's fan-out hub, gets a fresh snapshot once the hub has subscribed again, then live updates
with consecutive sequence numbers, and ends on the database's own sequence; tasks queued after the
restart are worked off (beat's sweeper closes a sale that comes due).
"""

import json
import random
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection, connections
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

from market.trading.models import Award, Sale, SaleStatus
from tests.conftest import worker_start, worker_stop
from tests.faults.conftest import PLACED_BIDS_SQL, ROOT, ClientLog, call, market_env, post_until_answered
from tests.processes import db_url, free_port, tail, wait_for
from tests.trading.conftest import Floor, make_due, make_party, published_lot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


class Watcher(threading.Thread):
    """A lot's watcher that behaves like the page's script: it keeps the last sequence number, asks
    for a snapshot when it sees a gap, and reconnects with jittered back-off when its socket drops."""

    def __init__(self, url: str, origin: str):
        super().__init__(daemon=True)
        self.url, self.origin = url, origin
        self.done = threading.Event()
        self.sequence = None
        self.events: list[tuple[float, str, int]] = []  # (when, "snapshot" | "next" | "gap" | "stale", seq)
        self.reconnects = 0

    def run(self) -> None:
        delay = 0.2
        rng = random.Random(3)
        while not self.done.is_set():
            try:
                with connect(self.url, origin=self.origin, open_timeout=5) as socket:
                    delay = 0.2
                    while not self.done.is_set():
                        try:
                            message = json.loads(socket.recv(timeout=0.5))
                        except TimeoutError:
                            continue
                        self._take(socket, message)
            except Exception:  # dropped, refused: back off with jitter and come back
                if self.done.is_set():
                    return
                self.reconnects += 1
                time.sleep(delay * (0.5 + rng.random()))
                delay = min(delay * 2, 5.0)

    def _take(self, socket, message: dict) -> None:
        state = message.get("state") or {}
        if "sequence" not in state:
            return
        seq = state["sequence"]
        if message["type"] == "snapshot" or self.sequence is None:
            self.sequence = seq
            self.events.append((time.monotonic(), "snapshot", seq))
        elif seq <= self.sequence:
            self.events.append((time.monotonic(), "stale", seq))
        elif seq == self.sequence + 1:
            self.sequence = seq
            self.events.append((time.monotonic(), "next", seq))
        else:
            self.events.append((time.monotonic(), "gap", seq))
            socket.send(json.dumps({"type": "snapshot"}))

    def after(self, moment: float, kind: str) -> list[int]:
        return [seq for when, what, seq in self.events if when > moment and what == kind]


def test_redis_restarted_under_load_loses_no_bid_and_live_updates_catch_up(private_redis, scratch):
    seller = make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"重启回收{i}号有限公司") for i in range(12)]
    floor = Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))
    spare = published_lot(seller.org, title="唐山重废 备用")
    sale = floor.sale(start_price="2000", increment_amount="5")
    spare_sale = floor.sale(lot=spare, start_price="2000", increment_amount="5")
    tokens = [(p.org.pk, Token.objects.create(user=p.user).key) for p in buyers]
    lot = floor.lot
    connections.close_all()

    env = market_env(database_url=db_url(), redis_url=private_redis.url, TRADING_SWEEP_S="2")
    with open(scratch / "worker.log", "w") as worker_log, open(scratch / "serve.log", "w") as serve_log:
        worker = worker_start("redis-restart", env=env, beat=True, log=worker_log)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-worker", "--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT, env=env, stdout=serve_log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(
                lambda: server.poll() is None and call(base, "/api/v1/open/indices/", "x").status is not None,
                f"the server did not start:\n{tail(scratch / 'serve.log')}",
            )
            _storm(base, port, lot, sale, spare_sale, tokens, private_redis, scratch)
        finally:
            server.terminate()
            server.wait(timeout=30)
            worker_stop(worker)


def _errors(log) -> str:
    """The server log without its routine lines (a refused bid is logged as a Bad Request)."""
    lines = log.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if "Bad Request" not in line)[-6000:]


def _storm(base, port, lot, sale, spare_sale, tokens, private_redis, scratch):
    watcher = Watcher(f"ws://127.0.0.1:{port}/ws/lots/{lot.pk}/", origin=base)
    watcher.start()
    wait_for(lambda: watcher.sequence is not None, "the watcher got no snapshot")

    log = ClientLog()
    intents: dict[str, tuple] = {}
    stop = threading.Event()

    def bidder(index: int, org_id: int, token: str) -> None:
        rng = random.Random(index)
        while not stop.is_set():
            state = call(base, f"/api/v1/lots/{lot.pk}/state/", token)
            if state.status != 200:
                time.sleep(0.1)
                continue
            amount = Decimal(state.body["minimum_next"]) + rng.choice([0, 5, 10])
            key = str(uuid.uuid4())
            intents[key] = (lot.pk, org_id, amount)
            post_until_answered(
                log, base, f"/api/v1/lots/{lot.pk}/bids/", token, {"amount": str(amount)}, key
            )
            time.sleep(rng.uniform(0.05, 0.3))

    threads = [threading.Thread(target=bidder, args=(i, *t), daemon=True) for i, t in enumerate(tokens)]
    for t in threads:
        t.start()
    time.sleep(5)
    before = len(log.accepted())
    private_redis.stop()  # SIGKILL: everything in it is gone
    time.sleep(1)
    private_redis.start()
    restarted = time.monotonic()
    time.sleep(10)
    stop.set()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a bidder never got an answer"

    statuses = Counter(a.status for _, a in log.tries)
    after = [a for a in log.accepted().values() if a.at > restarted]
    print(
        f"\nredis restart: tries by status {dict(statuses)}; accepted {before} before, {len(after)} after; "
        f"watcher: {Counter(kind for _, kind, _ in watcher.events)} reconnects {watcher.reconnects}"
    )
    assert before > 0 and after, "bids were not accepted on both sides of the restart"
    assert 500 not in statuses, _errors(scratch / "serve.log")

    # every accepted bid is stored, nothing else
    told = Counter(intents[key] for key in log.accepted())
    with connection.cursor() as cursor:
        cursor.execute(PLACED_BIDS_SQL, [[lot.pk]])
        stored = Counter(tuple(row) for row in cursor.fetchall())
    assert told == stored

    # the watcher caught up: a snapshot after the restart, live updates after it, and the last
    # sequence it holds is the database's
    final = Sale.objects.get(pk=sale.pk).sequence
    wait_for(
        lambda: watcher.sequence == final,
        f"the watcher stopped at {watcher.sequence}, the sale is at {final}",
    )
    assert watcher.after(restarted, "snapshot"), "no fresh snapshot reached the watcher after the restart"
    resynced = min(when for when, kind, _ in watcher.events if when > restarted and kind == "snapshot")
    assert watcher.after(resynced, "next"), "no live update reached the watcher after it caught up"
    watcher.done.set()
    watcher.join(timeout=10)

    # tasks queued after the restart are worked off: beat's sweeper closes a sale that comes due
    make_due(spare_sale)
    connections.close_all()
    wait_for(
        lambda: (
            Award.objects.filter(sale=spare_sale).exists()
            or Sale.objects.get(pk=spare_sale.pk).status != SaleStatus.ACTIVE
        ),
        f"the due sale was not closed after the restart:\n{tail(scratch / 'worker.log')}",
        timeout=60,
        every=0.5,
    )
