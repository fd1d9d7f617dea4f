"""A bid storm over HTTP while the web server's worker processes are killed with SIGKILL.

Hundreds of bidders, thousands of bids on a few lots, against granian with several workers; every
second or so one worker is killed mid-request and its master starts another. A bidder whose request
dies with its worker retries with the same ``Idempotency-Key`` until the market answers. Afterwards
the client's log and the database must agree: every accepted bid is stored, nothing the client was
not told about was stored, and a retry of an answered request got that very answer.
"""

import os
import random
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connection, connections

from listings.models import Lot
from market.trading.models import Bid, BidKind
from tests.faults.conftest import PLACED_BIDS_SQL, ClientLog, call, market_env, post_until_answered
from tests.faults.seed import market_floor
from tests.processes import db_url

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

BIDDERS = int(os.environ.get("FAULTS_BIDDERS", "200"))
BIDS = int(os.environ.get("FAULTS_BIDS", "2000"))
LOTS = 8


def test_a_bid_storm_survives_web_workers_killed_with_sigkill(web_server_factory):
    seeded = market_floor(BIDDERS, LOTS)
    lots = list(Lot.objects.filter(pk__in=seeded["lots"]))
    tokens = [tuple(bidder) for bidder in seeded["bidders"]]
    connections.close_all()  # the servers and the test share the database

    server = web_server_factory(market_env(database_url=db_url()), workers=3, threads=6)
    log = ClientLog()
    stop = threading.Event()
    sent = Counter()
    replays: list[tuple] = []
    # key -> (lot, organisation, maximum or amount), as PLACED_BIDS_SQL reads them back
    intents: dict[str, tuple] = {}
    sent_lock = threading.Lock()

    def bidder(index: int, org_id: int, token: str) -> None:
        rng = random.Random(index)
        while not stop.is_set():
            lot = rng.choice(lots)
            state = call(server.base, f"/api/v1/lots/{lot.pk}/state/", token)
            if state.status != 200:
                time.sleep(0.05)  # its worker was killed: look again
                continue
            with sent_lock:
                if sent["bids"] >= BIDS:
                    return
                sent["bids"] += 1
            amount = Decimal(state.body["minimum_next"]) + rng.choice([0, 5, 10, 20])
            body = {"amount": str(amount)}
            if rng.random() < 0.2:
                body["maximum"] = str(amount + rng.choice([50, 100]))
            key = str(uuid.uuid4())
            intents[key] = (lot.pk, org_id, Decimal(body.get("maximum", amount)))
            answer = post_until_answered(log, server.base, f"/api/v1/lots/{lot.pk}/bids/", token, body, key)
            if answer.status is not None and answer.status < 500 and rng.random() < 0.1:
                # the answer was lost on the way, as far as the client knows: it asks again
                again = post_until_answered(
                    ClientLog(), server.base, f"/api/v1/lots/{lot.pk}/bids/", token, body, key
                )
                replays.append((answer.status, answer.body, again.status, again.body))

    killed: list[int] = []

    def killer() -> None:
        rng = random.Random(7)
        while not stop.wait(rng.uniform(1.5, 3.0)):
            pid = server.kill_a_worker(rng)
            if pid:
                killed.append(pid)

    threads = [threading.Thread(target=bidder, args=(i, *t), daemon=True) for i, t in enumerate(tokens)]
    chaos = threading.Thread(target=killer, daemon=True)
    started = time.monotonic()
    for t in threads:
        t.start()
    chaos.start()
    for t in threads:
        t.join(timeout=900)
    stop.set()
    chaos.join(timeout=10)
    seconds = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), "bidders still waiting after 15 minutes"

    statuses = Counter(a.status for _, a in log.tries)
    finals = Counter(a.status for a in log.final.values())
    print(
        f"\nstorm: {len(log.final)} bids answered in {seconds:.0f} s by {BIDDERS} bidders on {LOTS} lots; "
        f"{len(killed)} workers killed ({server.restarts} crash loops, granian restarted); "
        f"tries by status {dict(statuses)}; answers {dict(finals)}"
    )
    assert len(killed) >= 5, "the storm was over before the workers were killed often enough"
    assert statuses[None] > 0, "no request died with its worker: the test proved nothing"
    assert 500 not in statuses, "a 500 came back"
    assert set(finals) <= {201, 400, 409}, finals
    for answer in log.final.values():
        if answer.status != 201:
            assert answer.body.get("code") and answer.body.get("message"), answer.body

    accepted = log.accepted()
    told = Counter(intents[key] for key in accepted)
    with connection.cursor() as cursor:
        cursor.execute(PLACED_BIDS_SQL, [[lot.pk for lot in lots]])
        stored = Counter(tuple(row) for row in cursor.fetchall())
    assert told == stored, (
        f"{sum((told - stored).values())} accepted bids are missing, "
        f"{sum((stored - told).values())} stored bids were never acknowledged"
    )
    assert len(log.final) == BIDS, "a bid was never answered"
    assert len(accepted) >= BIDS // 10, f"only {len(accepted)} bids were accepted"

    # a retry of an answered request got the first answer, word for word
    assert replays, "no retry of an answered request was made"
    for first_status, first, again_status, again in replays:
        assert (again_status, again) == (first_status, first)

    # every lot: manual prices strictly rising, sequence numbers without a gap, the price is the top bid
    for lot in lots:
        bids = list(Bid.objects.filter(sale__lot=lot).order_by("sequence"))
        if not bids:
            continue
        manual = [b.amount for b in bids if b.kind == BidKind.MANUAL]
        assert all(a < b for a, b in zip(manual, manual[1:], strict=False)), "prices strictly rising"
        sequences = [b.sequence for b in bids]
        assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), "no gap, no duplicate"
        assert lot.sales.get().current_price == max(b.amount for b in bids)
