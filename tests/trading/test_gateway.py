"""The bid gateway (``market.trading.gateway``): the common bid sent with an API token answered in two
round trips, leaving the same rows and giving the same answers as the API view; everything else
handed to the view with nothing written. ``test_auction_api.py`` runs its tests both ways too."""

import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from market.core import idempotency
from market.core.models import AuditEntry, IdempotencyKey, Notification
from market.trading import api, bid_pipeline, gateway
from market.trading.models import Bid, Bidder, Sale
from tests.trading.conftest import Floor, Party, by_token, make_party, published_lot

pytestmark = pytest.mark.django_db


@pytest.fixture
def tx_floor(transactional_db) -> Floor:
    seller = make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")
    buyers = [make_party(name=f"网关回收{i}号有限公司") for i in range(2)]
    return Floor(seller=seller, buyers=buyers, lot=published_lot(seller.org))


@pytest.fixture
def no_view(monkeypatch):
    """The API view's bid refuses to run: whatever is answered, the gateway answered it."""

    def refuse(self, request, pk):
        raise AssertionError("the bid went to the view")

    monkeypatch.setattr(api.BidListView, "post", refuse)


@pytest.fixture
def round_trips(monkeypatch):
    sent = []
    real = bid_pipeline._send

    def counted(statements, **kwargs):
        sent.append([sql.split()[0] for sql, _ in statements])
        return real(statements, **kwargs)

    monkeypatch.setattr(bid_pipeline, "_send", counted)
    return sent


def _token_party(party: Party) -> Party:
    return by_token(Party(org=party.org, user=party.user))


# One scenario, every kind of answer: a proxy maximum, a proxy answering, refusals kept and replayed,
# the leader raising its own maximum, an outbid, a retry of an accepted bid, bids without a key.
SCENARIO = [
    ("a", "2000", "2500", "k1"),
    ("b", "2010", None, "k2"),
    ("b", "2005", None, "k3"),
    ("b", "2005", None, "k3"),
    ("a", "2030", "2700", "k4"),
    ("c", "2800", None, "k5"),
    ("c", "2800", None, "k5"),
    ("a", "2800", None, None),
    ("a", "2810", None, None),
]


def _play(parties: dict, lot, prefix: str, capture) -> list:
    answers = []
    for who, amount, maximum, key in SCENARIO:
        with capture(execute=True):
            r = parties[who].bid(lot, amount, maximum=maximum, key=f"{prefix}-{key}" if key else None)
        body = r.json()
        body.pop("server_time", None)
        answers.append((r.status_code, r.get("Idempotent-Replayed"), body))
    return answers


def _rows(lot, sale, orgs: dict, users: dict) -> dict:
    """What the scenario left in the database, with the lot's own ids and times taken out."""
    who = {org.pk: name for name, org in orgs.items()}
    user = {u.pk: name for name, u in users.items()}
    sale.refresh_from_db()
    lot.refresh_from_db()
    start = sale.created_at
    return {
        "bids": [
            (b.sequence, who[b.organisation_id], user.get(b.user_id), b.amount, b.maximum, b.kind, b.ip)
            for b in Bid.objects.filter(sale=sale).order_by("sequence")
        ],
        "bidders": [
            (who[b.organisation_id], b.label_index, b.maximum)
            for b in Bidder.objects.filter(sale=sale).order_by("label_index")
        ],
        "sale": (
            sale.current_price,
            who.get(sale.leader_id),
            sale.leader_maximum,
            sale.leader_order,
            sale.bid_count,
            sale.bidder_count,
            sale.sequence,
            sale.closes_at - start,
        ),  # fmt: skip
        "lot": (lot.current_price, lot.bid_count, lot.sequence, lot.closes_at - start),
        "notices": sorted(
            (user[n.user_id], n.kind, n.title, n.url.replace(f"/{lot.pk}/", "/LOT/"), n.email_pending)
            for n in Notification.objects.filter(url__contains=f"/lots/{lot.pk}/")
        ),
        "keys": sorted(  # and the answers kept for them, as replayed
            (
                user[k.user_id],
                k.key.split("-", 1)[1],
                k.status_code,
                k.scope.replace(f"/{lot.pk}/", "/LOT/"),
                _ids_out({n: v for n, v in k.response.items() if n != "server_time"}, lot),
            )  # fmt: skip
            for k in IdempotencyKey.objects.filter(scope__contains=f"/lots/{lot.pk}/")
        ),
    }


def _ids_out(answers, lot) -> list:
    text = (
        repr(answers)
        .replace(f"'lot': {lot.pk}", "'lot': LOT")
        .replace(f"'sale': {lot.sales.get().pk}", "'sale': SALE")
    )
    return re.sub(r"'(starts_at|closes_at|ends_at|max_closes_at|created_at)': '[^']*'", r"'\1': T", text)


def test_the_gateway_leaves_the_same_rows_and_gives_the_same_answers_as_the_view(
    floor, monkeypatch, django_capture_on_commit_callbacks
):
    a, b, c = floor.buyers[:3]
    orgs = {"a": a.org, "b": b.org, "c": c.org}
    users = {"a": a.user, "b": b.user, "c": c.user}
    view_lot, gateway_lot = floor.lot, published_lot(floor.seller.org)
    start = timezone.now()
    view_sale = floor.sale(lot=view_lot, ends_at=start + timezone.timedelta(hours=1))
    gateway_sale = floor.sale(lot=gateway_lot, ends_at=start + timezone.timedelta(hours=1))
    Sale.objects.filter(pk=gateway_sale.pk).update(created_at=view_sale.created_at)

    by_view = _play({"a": a, "b": b, "c": c}, view_lot, "view", django_capture_on_commit_callbacks)

    def refuse(self, request, pk):
        raise AssertionError("the bid went to the view")

    monkeypatch.setattr(api.BidListView, "post", refuse)
    tokens = {name: _token_party(p) for name, p in {"a": a, "b": b, "c": c}.items()}
    by_gateway = _play(tokens, gateway_lot, "gateway", django_capture_on_commit_callbacks)

    assert [s for s, _, _ in by_view] == [201, 201, 400, 400, 201, 201, 201, 400, 201]
    assert [r for _, r, _ in by_view] == [None, None, None, "true", None, None, "true", None, None]
    assert _ids_out(by_gateway, gateway_lot) == _ids_out(by_view, view_lot)
    view_rows = _rows(view_lot, view_sale, orgs, users)
    gateway_rows = _rows(gateway_lot, gateway_sale, orgs, users)
    for part in view_rows:
        assert gateway_rows[part] == view_rows[part], part
    assert [kind for _, _, _, _, _, kind, _ in view_rows["bids"]] == [
        "manual", "manual", "proxy", "raise", "proxy", "manual", "manual",
    ]  # fmt: skip
    assert {kind for _, kind, *_ in view_rows["notices"]} == {"outbid", "proxy_used"}


def test_a_plain_bid_takes_two_round_trips_and_a_refusal_two(
    floor, no_view, round_trips, django_capture_on_commit_callbacks
):
    a, b = (_token_party(p) for p in floor.buyers[:2])
    floor.sale()
    with CaptureQueriesContext(connection):
        assert a.bid(floor.lot, 2000, key="first").status_code == 201
    assert round_trips == [
        ["SAVEPOINT", "SELECT", "WITH", "SELECT", "SELECT"],
        ["INSERT", "WITH", "INSERT", "RELEASE"],  # a new bidder row, the bid's rows, the key's answer
    ]
    round_trips.clear()
    r = b.bid(floor.lot, 2005, key="late")
    assert r.status_code == 400 and r.json()["code"] == "bid_too_low" and "2,010" in r.json()["message"]
    assert round_trips == [
        ["SAVEPOINT", "SELECT", "WITH", "SELECT", "SELECT"],
        ["RELEASE", "INSERT"],  # the transaction ended (nothing written), the refusal kept for the key
    ]
    assert IdempotencyKey.objects.get(key="late").response["code"] == "bid_too_low"
    round_trips.clear()
    with django_capture_on_commit_callbacks(execute=True) as after:
        r = b.bid(floor.lot, 2010)
    assert r.status_code == 201 and r.json()["you"]["leading"] and r.json()["you"]["label"] == "竞买人 B"
    assert round_trips[1] == ["INSERT", "WITH", "RELEASE"]  # B's bidder row, the bid's rows
    # after the commit, as the view: the live message, then the lot's columns and the outbid notice
    assert len(after) >= 2 and Notification.objects.filter(user=a.user, kind="outbid").count() == 1
    floor.lot.refresh_from_db()
    assert floor.lot.current_price == Decimal("2010.00") and floor.lot.bid_count == 2


@pytest.mark.parametrize(
    "case",
    ["signed_in", "session_cookie", "organisation_named", "float_amount", "three_decimals", "html",
     "xml", "format", "provinces", "tender", "not_started", "own_lot", "reused_key"],
)  # fmt: skip
def test_the_view_answers_what_the_gateway_does_not_take(floor, case, monkeypatch, round_trips):
    """Each of these reaches the view with nothing written by the gateway, and the view's answer is
    the one given."""
    a = _token_party(floor.buyers[0])
    terms = {
        "provinces": {"allowed_provinces": ["130000"]},  # the buyers are in Jiangsu
        "not_started": {
            "starts_at": timezone.now() + timezone.timedelta(hours=1),
            "ends_at": timezone.now() + timezone.timedelta(hours=2),
        },
    }.get(case, {})
    floor.sale("tender" if case == "tender" else "auction", **terms)
    if case == "reused_key":
        assert a.bid(floor.lot, 2000, key="once").status_code == 201
    round_trips.clear()
    viewed = []
    real = api.BidListView.post

    def counted(self, request, pk):
        viewed.append(pk)
        return real(self, request, pk)

    monkeypatch.setattr(api.BidListView, "post", counted)
    path, body, extra = f"/api/v1/lots/{floor.lot.pk}/bids/", {"amount": "2000"}, {}
    client = a.client
    if case == "signed_in":
        client = APIClient()
        client.force_login(a.user)
        extra["HTTP_X_CSRFTOKEN"] = "unused"  # the test client does not enforce CSRF
    elif case == "session_cookie":
        client.cookies["sessionid"] = "anything"
    elif case == "organisation_named":
        body["organisation"] = a.org.pk
    elif case == "float_amount":
        body["amount"] = 2000.0
    elif case == "three_decimals":
        body["amount"] = "2000.001"
    elif case == "html":
        extra["HTTP_ACCEPT"] = "text/html"
    elif case == "xml":
        extra["HTTP_ACCEPT"] = "application/xml"
    elif case == "format":
        path += "?format=json"
    elif case == "own_lot":
        client = _token_party(floor.seller).client
    elif case == "reused_key":
        body["amount"], extra["HTTP_IDEMPOTENCY_KEY"] = "2500", "once"
    before = Bid.objects.count()
    r = client.post(path, body, format="json", **extra)
    # (the view's content negotiation refuses application/xml before its handler runs)
    assert viewed == ([] if case == "xml" else [floor.lot.pk]), (case, r.status_code, r.content[:200])
    expected = {
        "signed_in": 201, "session_cookie": 201, "organisation_named": 201, "float_amount": 201,
        "three_decimals": 400, "html": 201, "xml": 406, "format": 201, "provinces": 403, "tender": 201, "not_started": 409, "own_lot": 403, "reused_key": 422,
    }[case]  # fmt: skip
    assert r.status_code == expected, r.content[:300]
    assert Bid.objects.count() == before + (1 if expected == 201 else 0)
    # the gateway, when it looked, only read and rolled back
    assert all(trip[0] == "SAVEPOINT" or trip == ["RELEASE"] for trip in round_trips), round_trips


def test_a_bid_in_the_last_minutes_moves_the_close_and_is_audited_in_its_transaction(
    floor, no_view, round_trips
):
    a, b = (_token_party(p) for p in floor.buyers[:2])
    end = timezone.now() + timezone.timedelta(minutes=2)
    sale = floor.sale(ends_at=end, max_closes_at=end + timezone.timedelta(minutes=6))
    r = a.bid(floor.lot, 2000)
    assert r.status_code == 201 and r.json()["extended"] is True
    # the new bidder, the bid's rows, the audit entry; the commit
    assert round_trips[-1] == ["INSERT", "WITH", "INSERT", "RELEASE"]
    entry = AuditEntry.objects.get(action="sale.extend", target_id=str(sale.pk))
    sale.refresh_from_db()
    assert entry.actor_label == "system" and entry.data == {"closes_at": sale.closes_at.isoformat()}
    assert sale.closes_at > end and r.json()["closes_at"] == sale.closes_at.isoformat()
    Sale.objects.filter(pk=sale.pk).update(max_closes_at=sale.closes_at)  # at the cap: no further
    assert b.bid(floor.lot, 2010).json()["closes_at"] == sale.closes_at.isoformat()
    assert AuditEntry.objects.filter(action="sale.extend").count() == 1


def test_a_deposit_is_locked_after_the_sale_and_must_be_paid(floor, no_view, round_trips):
    from market.trading.models import Deposit, DepositStatus

    a = _token_party(floor.buyers[0])
    sale = floor.sale(deposit_amount="5000")
    r = a.bid(floor.lot, 2000, key="unpaid")
    assert r.status_code == 403 and r.json()["code"] == "deposit_required" and "5,000" in r.json()["message"]
    assert (
        round_trips[1][0] == "SELECT" and "FOR UPDATE" in bid_pipeline._deposit_sql()
    )  # after the sale's lock
    assert IdempotencyKey.objects.get(key="unpaid").status_code == 403
    # below the price, the view's refusal comes first (before its lock, the deposit, the rules)
    r = a.bid(floor.lot, 1500)
    assert r.status_code == 400 and r.json()["code"] == "bid_too_low"
    deposit = Deposit.objects.create(
        sale=sale, organisation=a.org, amount=Decimal("5000"), status=DepositStatus.PAID
    )
    r = a.bid(floor.lot, 2000)
    assert r.status_code == 201, r.json()
    assert r.json()["you"]["deposit"] == {"id": deposit.pk, "status": "paid", "amount": "5000.00"}


def test_a_bidder_row_written_by_a_twin_meanwhile_sends_the_bid_to_the_view(floor, monkeypatch):
    """The gateway's reads can miss a bidder row committed while it waited for the sale's lock: its
    insert then breaks the unique constraint, nothing of it stays, and the view places the bid."""
    a = _token_party(floor.buyers[0])
    floor.sale()
    assert a.bid(floor.lot, 2000).status_code == 201
    real = bid_pipeline._read_of

    def without_mine(row, organisation_id):
        read = real(row, organisation_id)
        if read.mine is not None:
            read.mine, read.new_bidder_id = None, read.mine.pk + 1000
        return read

    monkeypatch.setattr(bid_pipeline, "_read_of", without_mine)
    r = a.bid(floor.lot, 2000, maximum=2600, key="twin-raced")
    assert r.status_code == 201, r.json()
    assert Bidder.objects.filter(organisation=a.org).count() == 1
    assert Bid.objects.count() == 2 and Bid.objects.last().kind == "raise"
    assert IdempotencyKey.objects.filter(key="twin-raced").count() == 1


def test_a_failure_before_the_commit_writes_nothing_and_the_view_answers(floor, monkeypatch, caplog):
    a = _token_party(floor.buyers[0])
    floor.sale()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in building the bid's rows")

    monkeypatch.setattr(bid_pipeline.services, "_steps_changes", broken)
    monkeypatch.setattr(
        api.BidListView, "post", lambda self, request, pk: api.Response({"view": True}, status=418)
    )
    r = a.bid(floor.lot, 2000, key="broken")
    assert r.status_code == 418 and Bid.objects.count() == 0 and not IdempotencyKey.objects.exists()
    assert "failed before the commit" in caplog.text


def test_amounts_the_gateway_takes_are_the_ones_the_view_takes():
    assert gateway._amount("2000") == Decimal("2000.00")
    assert gateway._amount(" 2010.5 ") == Decimal("2010.50")
    assert gateway._amount(2000) == Decimal("2000.00")
    for refused in ["2000.001", "1e3", "-5", "", "abc", 2000.5, True, None, "1234567890123"]:
        assert gateway._amount(refused) is None, refused


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_in_autocommit_bids_commit_refusals_write_nothing_and_no_transaction_stays_open(
    tx_floor, monkeypatch, round_trips
):
    """Outside a caller's transaction (as it serves) the gateway sends BEGIN and COMMIT in its round
    trips: what it commits is there for everyone, and the connection is idle after every answer."""
    from psycopg.pq import TransactionStatus

    a, b = (_token_party(p) for p in tx_floor.buyers[:2])
    sale = tx_floor.sale()

    def idle():
        return connection.connection.info.transaction_status == TransactionStatus.IDLE

    assert a.bid(tx_floor.lot, 2000, key="a-1").status_code == 201 and idle()
    assert round_trips[0][0] == "BEGIN" and round_trips[1][-1] == "COMMIT"
    round_trips.clear()
    late = b.bid(tx_floor.lot, 2005, key="b-late")
    assert late.status_code == 400 and idle()
    # the bid's transaction ended by a commit (it wrote nothing), the refusal kept asynchronously
    assert round_trips[1] == ["COMMIT", "BEGIN", "SET", "INSERT", "COMMIT"]
    assert b.bid(tx_floor.lot, 2005, key="b-late").json() == late.json() and idle()
    assert b.bid(tx_floor.lot, 2005).status_code == 400 and idle()
    # no rollback on the way: psycopg kept the connection's prepared statements (the locked read's)
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("FOR UPDATE OF s" in sql for sql in prepared), prepared
    assert b.bid(tx_floor.lot, 2010, maximum="1900").status_code == 400 and idle()  # the view's refusal
    assert b.bid(tx_floor.lot, 2010).status_code == 201 and idle()
    sale.refresh_from_db()
    assert (sale.current_price, sale.leader_id, sale.bid_count) == (Decimal("2010.00"), b.org.pk, 2)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_watchers_and_the_outbid_bidder_hear_the_gateways_bids(tx_floor):
    from asgiref.sync import async_to_sync, sync_to_async

    from tests.core.test_realtime import session_cookie_for
    from tests.trading.test_live import socket

    a, b = (_token_party(p) for p in tx_floor.buyers[:2])
    sale = tx_floor.sale()
    lot = tx_floor.lot

    async def scenario():
        watcher = socket(f"/ws/lots/{lot.pk}/")
        a_notices = socket("/ws/notifications/", await sync_to_async(session_cookie_for)(a.user))
        assert (await watcher.connect())[0] and (await a_notices.connect())[0]
        snap = await watcher.receive_json_from(timeout=5)
        for party, amount, maximum in [(a, "2000", "2500"), (b, "2010", None), (b, "2600", None)]:
            assert (await sync_to_async(party.bid)(lot, amount, maximum)).status_code == 201
        messages = [await watcher.receive_json_from(timeout=5) for _ in range(3)]
        notices = [await a_notices.receive_json_from(timeout=5) for _ in range(2)]
        await watcher.disconnect()
        await a_notices.disconnect()
        return snap, messages, notices

    snap, messages, notices = async_to_sync(scenario)()
    assert snap["state"]["sequence"] == sale.sequence
    # A; B and A's proxy answer; A's proxy spent to its maximum and B above it
    assert [m["state"]["sequence"] for m in messages] == [
        sale.sequence + 1,
        sale.sequence + 3,
        sale.sequence + 5,
    ]
    assert [m["state"]["current_price"] for m in messages] == ["2000.00", "2020.00", "2600.00"]
    assert [(r["bidder"], r["amount"], r["kind"]) for r in messages[1]["bids"]] == [
        ("竞买人 B", "2010.00", "manual"),
        ("竞买人 A", "2020.00", "proxy"),
    ]
    assert [n["kind"] for n in notices] == ["proxy_used", "outbid"] and notices[-1]["unread"] == 2


def test_the_sale_is_locked_only_for_a_member_who_may_bid_with_a_key_not_used_before(floor):
    """The first round trip locks the sale only when the bid may be placed: an unknown token, a
    member who may not bid, a retry of a kept key lock nothing (the view refuses them before any
    lock), and a bid above the price from a trader does."""
    from market.accounts.models import MemberRole

    a = _token_party(floor.buyers[0])
    sale = floor.sale()
    token = a.client._credentials["HTTP_AUTHORIZATION"].split()[1]

    def locks(token, key="", amount="999999"):
        with connection.cursor() as cursor:
            cursor.execute(bid_pipeline._sale_sql(True), [token, key, floor.lot.pk, Decimal(amount)])
            return bool(cursor.fetchall())

    assert locks(token) and not locks("no-such-token")
    assert a.bid(floor.lot, 2000).status_code == 201
    b = _token_party(floor.buyers[1])
    other = b.client._credentials["HTTP_AUTHORIZATION"].split()[1]
    assert not locks(other, amount="2000") and locks(other, amount="2010")  # at or below the price: no lock
    assert locks(token, amount="1")  # the leader (raising its own maximum) takes it
    IdempotencyKey.objects.create(user=a.user, key="kept", scope="x", request_hash="y", status_code=201)
    assert not locks(token, key="kept") and locks(token, key="new")
    a.org.memberships.filter(user=a.user).update(role=MemberRole.VIEWER)
    assert not locks(token)
    a.org.memberships.filter(user=a.user).update(role=MemberRole.TRADER)
    a.user.is_active = False
    a.user.save(update_fields=["is_active"])
    assert not locks(token)
    assert sale.pk


def test_a_refusal_whose_key_a_twin_kept_first_is_answered_with_the_twins(floor, monkeypatch):
    """Between the gateway's read of the key and its refusal's row a twin keeps its answer: the
    refusal's row is not inserted, and the view replays the twin's answer."""
    a, b = (_token_party(p) for p in floor.buyers[:2])
    floor.sale()
    assert a.bid(floor.lot, 2000).status_code == 201
    real = bid_pipeline._send

    def twin_first(statements, **kwargs):
        if any(sql == idempotency.refusal_sql() for sql, _ in statements):
            IdempotencyKey.objects.create(
                user=b.user, key="twin", scope=f"POST /api/v1/lots/{floor.lot.pk}/bids/",
                request_hash=idempotency.request_hash("POST", f"/api/v1/lots/{floor.lot.pk}/bids/", {"amount": "2005"}),
                status_code=409, response={"code": "from_the_twin", "message": "", "fields": {}},
            )  # fmt: skip
        return real(statements, **kwargs)

    monkeypatch.setattr(bid_pipeline, "_send", twin_first)
    r = b.bid(floor.lot, 2005, key="twin")
    assert r.status_code == 409 and r.json()["code"] == "from_the_twin" and r["Idempotent-Replayed"] == "true"
    assert IdempotencyKey.objects.filter(key="twin").count() == 1


def test_a_statement_failing_before_the_commit_hands_the_bid_to_the_view(floor, monkeypatch, caplog):
    """An error in the round trip that ends with the commit: the statements after it, the commit
    among them, are not run, the transaction is left aborted, and the view places the bid."""
    from market.core.statements import Statement

    a = _token_party(floor.buyers[0])
    floor.sale()
    monkeypatch.setattr(
        bid_pipeline, "insert_with_updates_statement", lambda rows, updates: Statement("SELECT 1 / 0", [])
    )
    r = a.bid(floor.lot, 2000, key="divided")
    assert r.status_code == 201, r.json()
    assert Bid.objects.count() == 1 and IdempotencyKey.objects.filter(key="divided").count() == 1
    assert "the view answers" in caplog.text


def test_a_failure_after_the_commit_still_answers_the_committed_bid(floor, monkeypatch, caplog):
    """The bid is committed: whatever fails after it (here the live message), its answer is a 201
    and a retry with its key is told the same."""
    a = _token_party(floor.buyers[0])
    floor.sale()

    def broken(*args, **kwargs):
        raise RuntimeError("the live message could not be built")

    monkeypatch.setattr(bid_pipeline.services, "_after_change", broken)
    first = a.bid(floor.lot, 2000, key="after-commit")
    assert first.status_code == 201 and Bid.objects.count() == 1
    assert "after bid" in caplog.text
    again = a.bid(floor.lot, 2000, key="after-commit")
    assert again.status_code == 201 and again.json() == first.json() and Bid.objects.count() == 1
