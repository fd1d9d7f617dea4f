"""Correctness under concurrency, on PostgreSQL with real threads and processes: a bid storm through
the HTTP API, two closes at once, and a Celery worker killed in the middle of a close."""

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest
from django.db import connections, transaction
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from market.trading import services
from market.trading.models import Award, Bid, BidKind, Sale, SaleStatus
from market.trading.tasks import sale_close_task, sales_close_sweep
from tests.conftest import worker_start, worker_stop
from tests.processes import call, waiting_for_lock
from tests.trading.conftest import Floor, make_due, make_party, published_lot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def tx_floor(transactional_db) -> Floor:
    seller = make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"并发回收{i}号有限公司") for i in range(12)]
    return Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))


def _call(base, path, token, body=None, key=None):
    answer = call(base, path, token, body, key, timeout=60)
    return answer.status, answer.body


@pytest.mark.faults
def test_a_bid_storm_through_http_loses_no_accepted_bid_and_ends_with_one_winner(live_server, tx_floor):
    sale = tx_floor.sale(start_price="2000", increment_amount="5")
    lot = tx_floor.lot
    tokens = {p.org.pk: Token.objects.create(user=p.user).key for p in tx_floor.buyers}
    accepted: list[tuple[int, str, dict]] = []  # (org, key, answer)
    statuses: Counter = Counter()
    lock = threading.Lock()
    start = threading.Barrier(len(tokens))

    def bidder(org_id, token, rng):
        start.wait()
        mine = 0
        for _ in range(40):
            if mine >= 6:
                break
            status, state = _call(live_server.url, f"/api/v1/lots/{lot.pk}/state/", token)
            if state.get("you", {}).get("leading"):
                time.sleep(0.01)
                continue
            amount = Decimal(state["minimum_next"]) + rng.choice([0, 0, 5, 10])
            key = str(uuid.uuid4())
            status, answer = _call(
                live_server.url, f"/api/v1/lots/{lot.pk}/bids/", token, {"amount": str(amount)}, key
            )
            with lock:
                statuses[status] += 1
            if status == 201:
                mine += 1
                # a retry of an accepted bid (a lost response) is answered the same, creating nothing
                if rng.random() < 0.2:
                    again = _call(
                        live_server.url, f"/api/v1/lots/{lot.pk}/bids/", token, {"amount": str(amount)}, key
                    )
                    assert again == (201, answer)
                with lock:
                    accepted.append((org_id, str(amount), answer))
        connections.close_all()

    threads = [
        threading.Thread(target=bidder, args=(org, tok, random.Random(org))) for org, tok in tokens.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
    assert not any(t.is_alive() for t in threads)

    assert statuses[500] == 0 and all(code < 500 for code in statuses)
    assert set(statuses) <= {201, 400}, statuses  # accepted, or refused as too low by a faster rival
    manual = list(Bid.objects.filter(sale=sale, kind=BidKind.MANUAL).order_by("sequence"))
    assert len(manual) == len(accepted) >= 30
    # every accepted answer is a stored bid of that organisation at that amount
    stored = Counter((b.organisation_id, str(b.amount)) for b in manual)
    assert stored == Counter((org, amount) for org, amount, _ in accepted)
    amounts = [b.amount for b in manual]
    assert all(a < b for a, b in zip(amounts, amounts[1:], strict=False)), "prices strictly rising"
    sequences = [b.sequence for b in Bid.objects.filter(sale=sale).order_by("sequence")]
    assert sequences == list(range(sequences[0], sequences[0] + len(sequences))), "no gap, no duplicate"

    sale.refresh_from_db()
    assert sale.current_price == amounts[-1] and sale.leader_id == manual[-1].organisation_id
    make_due(sale)
    assert services.sale_close(sale_id=sale.pk) == "closed"
    award = Award.objects.get()
    assert (award.buyer_id, award.unit_price) == (manual[-1].organisation_id, amounts[-1])


@pytest.mark.faults
def test_twins_with_one_idempotency_key_sent_at_once_make_one_bid_and_get_one_answer(live_server, tx_floor):
    """A client that retries before the first answer arrives: every copy gets the first answer."""
    sale = tx_floor.sale(start_price="2000", increment_amount="5")
    token = Token.objects.create(user=tx_floor.buyers[0].user).key
    start = threading.Barrier(6)
    answers = []

    def twin():
        start.wait()
        answers.append(
            _call(
                live_server.url, f"/api/v1/lots/{tx_floor.lot.pk}/bids/", token, {"amount": "2000"}, "twin-1"
            )
        )
        connections.close_all()

    threads = [threading.Thread(target=twin) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(answers) == 6 and {status for status, _ in answers} == {201}
    assert all(answer == answers[0][1] for _, answer in answers)
    assert Bid.objects.filter(sale=sale).count() == 1


def test_a_bid_below_the_committed_minimum_is_refused_without_queueing_for_the_lock(tx_floor):
    a, b = tx_floor.buyers[:2]
    sale = tx_floor.sale(start_price="2000", increment_amount="10")
    assert a.bid(tx_floor.lot, 2000).status_code == 201
    locked, release = threading.Event(), threading.Event()

    def hold_the_sale():  # as a long bid or a close would
        with transaction.atomic():
            Sale.objects.select_for_update().get(pk=sale.pk)
            locked.set()
            release.wait(30)
        connections.close_all()

    holder = threading.Thread(target=hold_the_sale)
    holder.start()
    assert locked.wait(10)
    try:
        late = b.bid(tx_floor.lot, 2000)  # the minimum moved on to 2010 before this bid was sent
        answered_while_locked = holder.is_alive() and not release.is_set()
    finally:
        release.set()
        holder.join(30)
    assert answered_while_locked
    assert late.status_code == 400 and late.json()["code"] == "bid_too_low"
    assert "2,010.00" in late.json()["message"]
    assert b.bid(tx_floor.lot, 2010).status_code == 201  # a bid at the minimum takes the lock


def test_bids_queued_on_one_minimum_are_refused_by_the_first_commit_without_taking_the_lock(tx_floor):
    """Bidders who all send the same minimum queue for the sale's lock together. When the first
    commits, the others are refused (told the new minimum) without taking the lock one after the
    other: their transaction rolls nothing back, and a retry of one is answered the same."""
    a, b, c = tx_floor.buyers[:3]
    tx_floor.sale(start_price="2000", increment_amount="10")
    assert a.bid(tx_floor.lot, 2000).status_code == 201
    locked, release = threading.Event(), threading.Event()

    def rival_bid_held_open():  # c's bid at the minimum, its commit held back while b queues
        try:
            with transaction.atomic():
                services.bid_place(actor=c.user, organisation=c.org, lot_id=tx_floor.lot.pk, amount="2010")
                locked.set()
                release.wait(30)
        finally:
            connections.close_all()

    answer, statements = {}, []

    def queued_bid():  # sent on the same minimum, 2010, while c holds the lock
        try:
            with CaptureQueriesContext(connections["default"]) as ctx:
                answer["late"] = b.bid(tx_floor.lot, 2010, key="queued-on-2010")
            statements.extend(q["sql"] for q in ctx.captured_queries)
        finally:
            connections.close_all()

    rival = threading.Thread(target=rival_bid_held_open)
    rival.start()
    assert locked.wait(10)
    late = threading.Thread(target=queued_bid)
    late.start()
    deadline = time.monotonic() + 10
    while not waiting_for_lock() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert waiting_for_lock()  # b passed the committed minimum and waits behind c
    release.set()
    rival.join(30)
    late.join(30)

    r = answer["late"]
    assert r.status_code == 400 and r.json()["code"] == "bid_too_low"
    assert "2,020.00" in r.json()["message"]  # the minimum after c's bid
    locking = [i for i, sql in enumerate(statements) if "FOR UPDATE" in sql]
    assert len(locking) == 1, statements  # asked once, handed no row: not locked, not asked again
    assert not any(sql.startswith("ROLLBACK") for sql in statements), statements
    assert statements[-1] == "COMMIT" and "core_idempotencykey" in statements[-2]  # kept in its transaction
    retry = b.bid(tx_floor.lot, 2010, key="queued-on-2010")
    assert retry.status_code == 400 and retry["Idempotent-Replayed"] == "true"
    assert sorted(Bid.objects.values_list("amount", flat=True)) == [Decimal("2000"), Decimal("2010")]
    assert b.bid(tx_floor.lot, 2020).status_code == 201


def test_a_refusal_before_any_transaction_is_kept_in_one_round_trip_and_its_retries_replay_it(tx_floor):
    """A bid refused on committed rows (no transaction): its answer is kept by one query string
    that commits it without waiting for the disk, the connection keeps its own durability for what
    comes next, and a retry with the same key is told the same thing without anything new kept."""
    from market.core.models import IdempotencyKey

    a, b = tx_floor.buyers[:2]
    tx_floor.sale(start_price="2000", increment_amount="10")
    assert a.bid(tx_floor.lot, 2000).status_code == 201
    connection = connections["default"]
    with CaptureQueriesContext(connection) as ctx:
        refused = b.bid(tx_floor.lot, 2000, key="late-on-2000")
    assert refused.status_code == 400 and refused.json()["code"] == "bid_too_low"
    statements = [q["sql"] for q in ctx.captured_queries]
    assert not any(sql in ("BEGIN", "COMMIT", "ROLLBACK") for sql in statements), statements
    kept = [sql for sql in statements if "core_idempotencykey" in sql]
    assert len(kept) == 1 and kept[0].startswith("SET LOCAL synchronous_commit TO OFF; INSERT"), statements
    assert not any("core_idempotencykey" in sql and sql.startswith("SELECT") for sql in statements)
    with connection.cursor() as cursor:  # SET LOCAL ended with its own statement's transaction
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    row = IdempotencyKey.objects.get(user=b.user, key="late-on-2000")
    assert row.status_code == 400 and row.response["code"] == "bid_too_low"

    assert a.bid(tx_floor.lot, 2010).status_code == 201  # the minimum moves on
    retry = b.bid(tx_floor.lot, 2000, key="late-on-2000")
    assert retry.status_code == 400 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == refused.json()  # the first answer (minimum 2,010), not today's (2,020)
    reused = b.bid(tx_floor.lot, 2020, key="late-on-2000")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert IdempotencyKey.objects.filter(user=b.user, key="late-on-2000").count() == 1
    assert Bid.objects.count() == 2


def test_after_a_bid_the_lots_columns_and_the_notices_go_in_one_round_trip(tx_floor, monkeypatch, caplog):
    """After an accepted bid commits, the lot's market columns and the outbid notice are written by
    one query string, committed without waiting for the disk; when a notice fails at the database
    the whole of it is rolled back and the columns are written again alone."""
    from market.core.models import Notification
    from market.core.statements import Statement

    a, b = tx_floor.buyers[:2]
    tx_floor.sale(start_price="2000", increment_amount="10")
    assert a.bid(tx_floor.lot, 2000).status_code == 201
    connection = connections["default"]
    with CaptureQueriesContext(connection) as ctx:
        assert b.bid(tx_floor.lot, 2010).status_code == 201
    statements = [q["sql"] for q in ctx.captured_queries]
    after = statements[statements.index("COMMIT") + 1 :]
    assert len(after) == 1, statements
    assert after[0].startswith('SET LOCAL synchronous_commit TO OFF; UPDATE "listings_lot"'), after
    assert 'INSERT INTO "core_notification"' in after[0]
    with connection.cursor() as cursor:  # SET LOCAL ended with its own transaction
        cursor.execute("SHOW synchronous_commit")
        assert cursor.fetchone()[0] == "on"
    tx_floor.lot.refresh_from_db()
    assert (tx_floor.lot.current_price, tx_floor.lot.bid_count) == (Decimal("2010.00"), 2)
    outbid = Notification.objects.get(user=a.user, kind="outbid")
    assert "2,010.00" in outbid.title and outbid.email_pending

    def failing(*args, **kwargs):  # a notice the database refuses (no such user)
        return [Statement('INSERT INTO "core_notification" ("user_id") VALUES (%s)', [-1])]

    monkeypatch.setattr(services, "_after_bid_notices", failing)
    assert a.bid(tx_floor.lot, 2020).status_code == 201
    tx_floor.lot.refresh_from_db()
    assert (tx_floor.lot.current_price, tx_floor.lot.bid_count) == (Decimal("2020.00"), 3)
    assert "notices of bid" in caplog.text
    assert Notification.objects.filter(kind="outbid").count() == 1
    assert Bid.objects.count() == 3


@pytest.mark.faults
def test_two_closes_at_once_make_one_award(tx_floor):
    a, b = tx_floor.buyers[:2]
    sale = tx_floor.sale()
    a.bid(tx_floor.lot, 2000)
    b.bid(tx_floor.lot, 2010)
    make_due(sale)
    barrier = threading.Barrier(2)
    results = []

    def close():
        barrier.wait()
        try:
            results.append(services.sale_close(sale_id=sale.pk))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=close) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(results) == ["already", "closed"]
    assert Award.objects.filter(sale=sale).count() == 1


@pytest.mark.faults
def test_a_worker_killed_in_the_middle_of_a_close_leaves_one_award(tx_floor):
    a, b = tx_floor.buyers[:2]
    sale = tx_floor.sale()
    a.bid(tx_floor.lot, 2000, maximum=2300)
    b.bid(tx_floor.lot, 2100)
    make_due(sale)

    first = worker_start("doomed", fresh=True)
    try:
        # Hold the sale's row so the worker's close stops inside its transaction, then kill it there.
        with transaction.atomic():
            Sale.objects.select_for_update().get(pk=sale.pk)
            sale_close_task.delay(sale_id=sale.pk)
            deadline = time.monotonic() + 60
            while not waiting_for_lock():
                assert time.monotonic() < deadline, "the worker never reached the close"
                assert first.poll() is None, first.stdout.read()
                time.sleep(0.1)
            os.kill(first.pid, signal.SIGKILL)
            first.wait(timeout=20)
        assert not Award.objects.exists()  # the killed close left nothing behind
        assert Sale.objects.get(pk=sale.pk).status == SaleStatus.ACTIVE
    finally:
        worker_stop(first)

    second = worker_start("rescuer")
    try:
        sales_close_sweep.delay()  # beat's sweeper finds the overdue sale
        sale_close_task.delay(sale_id=sale.pk)  # and a redelivered task changes nothing
        deadline = time.monotonic() + 60
        while not Award.objects.filter(sale=sale).exists():
            assert time.monotonic() < deadline, "the sale was not closed after the restart"
            assert second.poll() is None, second.stdout.read()
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        worker_stop(second)
    award = Award.objects.get(sale=sale)
    assert (award.buyer_id, award.unit_price) == (a.org.pk, Decimal("2110.00"))
    assert Sale.objects.get(pk=sale.pk).status == SaleStatus.CLOSED
