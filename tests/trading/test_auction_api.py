"""Live auctions through /api/v1/: proxy bids, refusals with codes, soft close, idempotent retries,
eligibility, deposits, buy-now and the close."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from listings.models import Lot, LotStatus
from market.accounts.models import Licence, LicenceKind, LicenceStatus, MemberRole, VerificationStatus
from market.core.models import AuditEntry, IdempotencyKey, Notification
from market.trading import services
from market.trading.models import Award, Bid, Deposit, DepositStatus, Sale, SaleStatus
from tests.factories import make_member, make_user
from tests.trading.conftest import close_now, make_party, published_lot

pytestmark = pytest.mark.django_db


def pytest_generate_tests(metafunc):
    """Every test here runs twice: the parties' bids through the API view (their clients signed in),
    and through the bid gateway (their clients sending API tokens, ``market.trading.gateway``), which
    answers the common bid itself and hands the view every other one. Tests of the view's own
    statements (``view_statements``) run once; ``test_gateway.py`` holds the gateway's."""
    if "floor" in metafunc.fixturenames and not metafunc.definition.get_closest_marker("view_statements"):
        metafunc.parametrize("floor", ["view", "gateway"], indirect=True)


@pytest.fixture
def floor(floor, request):
    if getattr(request, "param", "view") == "gateway":
        from tests.trading.conftest import by_token

        for party in [floor.seller, *floor.buyers]:
            by_token(party)
    return floor


def test_proxy_bidding_answers_a_challenger_and_the_history_shows_labels_not_names(
    floor, django_capture_on_commit_callbacks
):
    a, b = floor.buyers[:2]
    floor.sale()
    r = a.bid(floor.lot, 2000, maximum=2500)
    assert r.status_code == 201, r.json()
    assert r.json()["you"]["leading"] is True and r.json()["current_price"] == "2000.00"

    r = b.bid(floor.lot, 2010)
    assert r.status_code == 201
    state = r.json()
    # A's proxy answers at once: B is beaten by one increment and told so
    assert state["current_price"] == "2020.00" and state["you"]["leading"] is False
    assert state["you"]["rank"] == 2 and state["leader"] == "竞买人 A" and state["minimum_next"] == "2030.00"

    history = b.client.get(f"/api/v1/lots/{floor.lot.pk}/bids/").json()["results"]
    assert [(h["bidder"], h["amount"], h["kind"]) for h in history] == [
        ("竞买人 A", "2020.00", "proxy"),
        ("竞买人 B", "2010.00", "manual"),
        ("竞买人 A", "2000.00", "manual"),
    ]
    assert all(h["maximum"] is None for h in history)  # nobody sees another's maximum
    assert "回收利用" not in str(history)
    own = a.client.get(f"/api/v1/lots/{floor.lot.pk}/bids/").json()["results"]
    assert own[-1]["maximum"] == "2500.00" and own[-1]["mine"] is True

    # B outbids A's maximum: A's proxy is spent, B leads one increment above it, A is notified
    # (after the commit, so the notice never holds the sale's lock)
    with django_capture_on_commit_callbacks(execute=True):
        r = b.bid(floor.lot, 2030, maximum=3000)
    assert r.json()["current_price"] == "2510.00" and r.json()["you"]["leading"] is True
    floor.lot.refresh_from_db()
    assert floor.lot.current_price == Decimal("2510.00") and floor.lot.bid_count == 5
    outbid = Notification.objects.filter(user=a.user, kind="outbid").get()
    assert "2,510" in outbid.title or "2510" in outbid.title


def test_refusals_carry_a_code_and_a_message(floor):
    a, b = floor.buyers[:2]
    floor.sale()
    assert a.bid(floor.lot, 2000).status_code == 201
    r = b.bid(floor.lot, 2005)
    assert r.status_code == 400 and r.json()["code"] == "bid_too_low"
    assert "2,010" in r.json()["message"] or "2010" in r.json()["message"]
    r = a.bid(floor.lot, 2000)  # the leader may only raise its own maximum
    assert r.status_code == 400 and r.json()["code"] == "already_leading"
    r = b.bid(floor.lot, 2100, maximum=2050)
    assert r.status_code == 400 and r.json()["code"] == "maximum_below_amount"
    r = b.bid(floor.lot, "abc")
    assert r.status_code == 400 and "amount" in r.json()["fields"]
    assert Bid.objects.count() == 1  # nothing half-saved


def test_a_sale_not_started_or_past_its_end_refuses_bids(floor):
    a = floor.buyers[0]
    sale = floor.sale(
        starts_at=timezone.now() + timedelta(minutes=10), ends_at=timezone.now() + timedelta(hours=2)
    )
    r = a.bid(floor.lot, 2000)
    assert r.status_code == 409 and r.json()["code"] == "auction_not_started"
    Sale.objects.filter(pk=sale.pk).update(
        starts_at=timezone.now() - timedelta(hours=2), closes_at=timezone.now() - timedelta(seconds=1)
    )
    r = a.bid(floor.lot, 2000)
    assert r.status_code == 409 and r.json()["code"] == "auction_closed"


def test_a_bid_in_the_last_minutes_extends_the_close_up_to_the_cap(floor):
    a, b = floor.buyers[:2]
    end = timezone.now() + timedelta(minutes=2)
    sale = floor.sale(ends_at=end, max_closes_at=end + timedelta(minutes=6))
    r = a.bid(floor.lot, 2000)
    extended = timezone.datetime.fromisoformat(r.json()["closes_at"])
    assert extended > end and r.json()["extended"] is True
    assert abs((extended - timezone.now()).total_seconds() - 300) < 30  # five minutes after the bid
    assert AuditEntry.objects.filter(action="sale.extend", target_id=str(sale.pk)).exists()
    # at the cap: a late bid still counts but moves the end no further
    Sale.objects.filter(pk=sale.pk).update(max_closes_at=extended)
    assert b.bid(floor.lot, 2010).status_code == 201
    sale.refresh_from_db()
    assert sale.closes_at == sale.max_closes_at == extended


def test_a_retried_bid_with_the_same_idempotency_key_is_answered_once(floor):
    a = floor.buyers[0]
    floor.sale()
    first = a.bid(floor.lot, 2000, key="bid-7f3a")
    again = a.bid(floor.lot, 2000, key="bid-7f3a")
    assert first.status_code == again.status_code == 201
    assert again.json()["sequence"] == first.json()["sequence"]
    assert again["Idempotent-Replayed"] == "true"
    assert Bid.objects.count() == 1
    # a refusal is remembered too, and a key reused for another request is refused
    low = a.bid(floor.lot, 1, key="bid-low")
    assert low.status_code == 400 and a.bid(floor.lot, 1, key="bid-low").json() == low.json()
    reused = a.bid(floor.lot, 2500, key="bid-7f3a")
    assert reused.status_code == 422 and reused.json()["code"] == "idempotency_key_reused"
    assert IdempotencyKey.objects.count() == 2


@pytest.mark.parametrize(
    ("case", "code", "status"),
    [
        ("own_lot", "own_lot", 403),
        ("generator", "not_eligible", 403),
        ("unverified", "not_eligible", 403),
        ("suspended", "not_eligible", 403),
        ("blacklisted", "blacklisted", 403),
        ("province", "province_restricted", 403),
        ("credit", "credit_too_low", 403),
    ],
)
def test_ineligible_bidders_are_refused_on_the_server(floor, case, code, status):
    floor.sale(allowed_provinces=["320000", "130000"], min_credit_score=60)
    party = make_party()
    if case == "own_lot":  # a generator that also recycles bids on its own lot
        party = floor.seller
        party.org.role = "both"
        party.org.save()
    elif case == "generator":
        party = make_party(role="generator")
    elif case == "unverified":
        party = make_party(status=VerificationStatus.PENDING)
    elif case == "suspended":
        party = make_party(status=VerificationStatus.SUSPENDED)
    elif case == "blacklisted":
        party.org.blacklisted_at = timezone.now()
        party.org.save()
    elif case == "province":
        party = make_party(region="440305")  # 深圳市南山区
    elif case == "credit":
        party.org.credit_score = 40
        party.org.save()
    r = party.bid(floor.lot, 2000)
    assert r.status_code == status and r.json()["code"] == code, r.json()
    assert r.json()["message"]
    assert not Bid.objects.exists()


def test_a_viewer_member_cannot_bid(floor):
    party = floor.buyers[0]
    viewer = make_user()
    make_member(party.org, role=MemberRole.VIEWER, user=viewer)
    party.act_as(viewer)
    floor.sale()
    assert party.bid(floor.lot, 2000).status_code == 403


def test_a_hazardous_lot_needs_a_licence_covering_its_class_on_the_pickup_date(floor):
    lot = published_lot(
        floor.seller.org, category="batteries.lead_acid", quantity="30", title="废铅酸蓄电池 30 吨"
    )
    floor.sale(lot=lot, start_price="8000")
    bidder = floor.buyers[0]
    r = bidder.bid(lot, 8000)
    assert r.status_code == 403 and r.json()["code"] == "licence_missing" and "HW31" in r.json()["message"]
    today = timezone.localdate()
    licence = Licence.objects.create(
        organisation=bidder.org, kind=LicenceKind.HAZARDOUS_WASTE, number="JS-HW-0001", issuer="江苏省生态环境厅",
        valid_from=today - timedelta(days=300), valid_to=today + timedelta(days=10), hw_codes=["HW31"],
        status=LicenceStatus.VERIFIED,
    )  # fmt: skip
    r = bidder.bid(lot, 8000)
    assert r.status_code == 403, "expires before the pickup date"
    licence.valid_to = today + timedelta(days=365)
    licence.save()
    assert bidder.bid(lot, 8000).status_code == 201


def test_a_deposit_must_be_confirmed_before_bidding_and_losers_get_it_back(floor, operator):
    a, b = floor.buyers[:2]
    sale = floor.sale(deposit_amount="50000")
    r = a.bid(floor.lot, 2000)
    assert r.status_code == 403 and r.json()["code"] == "deposit_required" and "50,000" in r.json()["message"]
    deposits = {}
    for party in (a, b):
        r = party.client.post("/api/v1/deposits/", {"lot": floor.lot.pk}, format="json")
        assert (
            r.status_code == 201
            and r.json()["status"] == "pending"
            and r.json()["reference"].startswith("BZJ")
        )
        deposits[party.org.pk] = r.json()["id"]
    assert a.bid(floor.lot, 2000).json()["code"] == "deposit_required"  # pending is not paid
    r = a.client.post(f"/api/v1/deposits/{deposits[a.org.pk]}/confirm/", {}, format="json")
    assert r.status_code == 403  # only an operator confirms money arriving
    ops = a.client.__class__()
    ops.force_authenticate(operator)
    for party in (a, b):
        r = ops.post(
            f"/api/v1/deposits/{deposits[party.org.pk]}/confirm/", {"reference": "ICBC-889"}, format="json"
        )
        assert r.status_code == 200 and r.json()["status"] == "paid"
    assert a.bid(floor.lot, 2000).status_code == 201
    assert b.bid(floor.lot, 2010, maximum=2100).status_code == 201
    assert close_now(sale) == "closed"
    assert Deposit.objects.get(pk=deposits[a.org.pk]).status == DepositStatus.RELEASED
    assert (
        Deposit.objects.get(pk=deposits[b.org.pk]).status == DepositStatus.PAID
    )  # the deal applies the winner's
    assert Award.objects.get().buyer == b.org


def test_close_awards_the_leader_once_and_closes_the_lot(floor):
    a, b = floor.buyers[:2]
    sale = floor.sale()
    a.bid(floor.lot, 2000, maximum=2400)
    b.bid(floor.lot, 2100)
    assert services.sale_close(sale_id=sale.pk) == "not_due"
    assert close_now(sale) == "closed"
    assert services.sale_close(sale_id=sale.pk) == "already"
    award = Award.objects.get()
    assert (award.buyer, award.unit_price, award.quantity) == (a.org, Decimal("2110.00"), Decimal("500.000"))
    assert award.amount == Decimal("1055000.00")
    floor.lot.refresh_from_db()
    sale.refresh_from_db()
    assert floor.lot.status == LotStatus.CLOSED and sale.status == SaleStatus.CLOSED
    assert Notification.objects.filter(user=a.user, kind="won").exists()
    assert Notification.objects.filter(user=b.user, kind="lost").exists()
    assert Notification.objects.filter(user=floor.seller.user, kind="sold").exists()
    r = a.client.get("/api/v1/awards/")
    assert r.json()["results"][0]["amount"] == "1055000.00"
    assert b.client.get("/api/v1/awards/").json()["results"] == []


def test_a_reserve_not_met_means_no_sale_and_the_seller_may_relist(floor):
    a = floor.buyers[0]
    sale = floor.sale(reserve_price="2600")
    r = a.bid(floor.lot, 2000, maximum=2500)
    assert r.json()["reserve_met"] is False and "2600" not in str(r.json())  # the reserve stays hidden
    assert close_now(sale) == "failed"
    sale.refresh_from_db()
    floor.lot.refresh_from_db()
    assert sale.fail_reason == "reserve_not_met" and floor.lot.status == LotStatus.EXPIRED
    assert not Award.objects.exists()
    r = floor.seller.client.post(f"/api/v1/lots/{floor.lot.pk}/relist/")
    assert r.status_code == 200 and r.json()["status"] == "draft"


def test_buy_now_ends_the_auction_at_once(floor):
    a, b = floor.buyers[:2]
    floor.sale(buy_now_price="2800")
    a.bid(floor.lot, 2000)
    r = b.client.post(f"/api/v1/lots/{floor.lot.pk}/buy/", {}, format="json")
    assert r.status_code == 201, r.json()
    assert r.json()["source"] == "buy_now" and r.json()["amount"] == "1400000.00"
    assert a.bid(floor.lot, 3000).json()["code"] == "not_on_sale"
    assert Notification.objects.filter(user=a.user, kind="outbid").exists()


def test_terms_are_locked_after_the_first_bid(floor):
    floor.sale()
    floor.buyers[0].bid(floor.lot, 2000)
    r = floor.seller.client.post(
        f"/api/v1/lots/{floor.lot.pk}/sale/",
        {"mode": "auction", "ends_at": (timezone.now() + timedelta(hours=3)).isoformat(), "start_price": "1000",
         "increment_amount": "5"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 400 and r.json()["code"] == "sale_has_bids"


def test_the_seller_sets_terms_through_the_api_with_field_errors(floor):
    url = f"/api/v1/lots/{floor.lot.pk}/sale/"
    ends = (timezone.now() + timedelta(hours=3)).isoformat()
    r = floor.seller.client.post(
        url, {"mode": "auction", "ends_at": ends, "start_price": "2000"}, format="json"
    )
    assert r.status_code == 400 and "increment_amount" in r.json()["fields"]
    r = floor.seller.client.post(
        url,
        {
            "mode": "auction",
            "ends_at": ends,
            "start_price": "2000",
            "increment_percent": "1",
            "reserve_price": "1500",
        },
        format="json",
    )
    assert r.status_code == 400 and "reserve_price" in r.json()["fields"]
    r = floor.buyers[0].client.post(
        url,
        {"mode": "auction", "ends_at": ends, "start_price": "2000", "increment_percent": "1"},
        format="json",
    )
    assert r.status_code == 403
    r = floor.seller.client.post(
        url,
        {"mode": "auction", "ends_at": ends, "start_price": "2000", "increment_percent": "1"},
        format="json",
    )
    assert r.status_code == 201 and r.json()["minimum_next"] == "2000.00"
    floor.lot.refresh_from_db()
    assert floor.lot.trade_mode == "auction" and floor.lot.current_price == Decimal("2000.00")


def test_notifications_list_and_mark_read(floor, django_capture_on_commit_callbacks):
    a, b = floor.buyers[:2]
    floor.sale()
    a.bid(floor.lot, 2000)
    with django_capture_on_commit_callbacks(execute=True):
        b.bid(floor.lot, 2010)
    r = a.client.get("/api/v1/notifications/")
    assert r.json()["unread"] == 1 and r.json()["results"][0]["kind"] == "outbid"
    r = a.client.post("/api/v1/notifications/read/", {}, format="json")
    assert r.json() == {"marked": 1, "unread": 0}
    assert b.client.get("/api/v1/notifications/").json()["unread"] == 0


def test_a_seller_in_two_provinces_lot_closing_with_nobody_fails_cleanly(floor):
    sale = floor.sale()
    assert close_now(sale) == "failed"
    sale.refresh_from_db()
    assert sale.fail_reason == "no_bids"
    assert Notification.objects.filter(user=floor.seller.user, kind="failed").exists()


def test_an_unpublished_lot_with_a_sale_takes_no_bids(floor):
    lot = published_lot(floor.seller.org)
    Lot.objects.filter(pk=lot.pk).update(status=LotStatus.SUBMITTED)
    lot.refresh_from_db()
    floor.sale(lot=lot)
    r = floor.buyers[0].bid(lot, 2000)
    assert r.status_code == 404  # a submitted lot is not public: it does not exist for buyers


@pytest.mark.parametrize("key", [None, "retry-me"])
def test_a_lot_without_a_sale_taking_bids_refuses_a_bid_with_or_without_an_idempotency_key(floor, key):
    """Refused under the sale's lock, whatever the key: 409 for a lot the bidder may see (kept for a
    retry with the key), 404 for one they may not."""
    a = floor.buyers[0]
    r = a.bid(floor.lot, 2000, key=key)  # published, but no sale configured
    assert r.status_code == 409 and r.json()["code"] == "not_on_sale"
    if key:
        retry = a.bid(floor.lot, 2000, key=key)
        assert retry.status_code == 409 and retry["Idempotent-Replayed"] == "true"
    hidden = published_lot(floor.seller.org)
    Lot.objects.filter(pk=hidden.pk).update(status=LotStatus.SUBMITTED)
    assert a.bid(hidden, 2000, key=key and "hidden").status_code == 404
    floor.sale()
    assert a.bid(floor.lot, 2000, key=key and "now-on-sale").status_code == 201


def test_refusals_speak_the_users_language(floor):
    a, b = floor.buyers[:2]
    floor.sale()
    a.bid(floor.lot, 2000)
    r = b.client.post(
        f"/api/v1/lots/{floor.lot.pk}/bids/", {"amount": "2001"}, format="json", HTTP_ACCEPT_LANGUAGE="en"
    )
    assert (
        r.json()["code"] == "bid_too_low"
        and r.json()["message"] == "Bid too low: the lowest bid now is ¥2,010.00."
    )


def test_the_lots_market_columns_follow_the_sale_after_commit_and_never_go_back(
    floor, django_capture_on_commit_callbacks
):
    from listings.services import lot_market_update

    a, b = floor.buyers[:2]
    sale = floor.sale()
    with django_capture_on_commit_callbacks(execute=True):
        a.bid(floor.lot, 2000)
        b.bid(floor.lot, 2010)
    sale.refresh_from_db()
    floor.lot.refresh_from_db()
    assert (floor.lot.current_price, floor.lot.bid_count) == (Decimal("2010.00"), 2)
    assert floor.lot.sequence == sale.sequence
    # the first bid's update, delivered late, is older than what the lot shows: nothing changes
    lot_market_update(lot_id=floor.lot.pk, newer_than=sale.sequence - 1, current_price=Decimal("2000"))
    floor.lot.refresh_from_db()
    assert floor.lot.current_price == Decimal("2010.00")


def test_a_notice_that_fails_after_a_bid_keeps_the_lots_market_columns(
    floor, monkeypatch, caplog, django_capture_on_commit_callbacks
):
    """The lot's market columns and the notices share one transaction after the bid: a notice that
    cannot be written is logged and leaves the columns written (and the bid, committed before)."""
    from market.core.statements import Statement
    from market.trading import services as trading

    def broken(*args, **kwargs):  # a notice the database refuses (no such user)
        return [Statement('INSERT INTO "core_notification" ("user_id") VALUES (%s)', [-1])]

    a, b = floor.buyers[:2]
    floor.sale()
    with django_capture_on_commit_callbacks(execute=True):
        assert a.bid(floor.lot, 2000).status_code == 201
    monkeypatch.setattr(trading, "_after_bid_notices", broken)
    with django_capture_on_commit_callbacks(execute=True):
        assert b.bid(floor.lot, 2010).status_code == 201
    floor.lot.refresh_from_db()
    assert (floor.lot.current_price, floor.lot.bid_count) == (Decimal("2010.00"), 2)
    assert "notices of bid" in caplog.text and Bid.objects.count() == 2


def test_a_relisted_lots_new_sale_carries_its_sequence_on(floor, django_capture_on_commit_callbacks):
    """Watchers drop messages older than the last they saw: a new sale must not start again at 1."""
    a = floor.buyers[0]
    sale = floor.sale(reserve_price="2600")
    with django_capture_on_commit_callbacks(execute=True):
        a.bid(floor.lot, 2000)
    assert close_now(sale) == "failed"
    assert floor.seller.client.post(f"/api/v1/lots/{floor.lot.pk}/relist/").status_code == 200
    floor.lot.refresh_from_db()
    last = floor.lot.sequence
    Lot.objects.filter(pk=floor.lot.pk).update(status=LotStatus.PUBLISHED)  # approved again
    again = floor.sale()
    assert again.pk != sale.pk and again.sequence > last
    with django_capture_on_commit_callbacks(execute=True):
        r = a.bid(floor.lot, 2000)
    assert r.status_code == 201 and r.json()["sequence"] > last
    floor.lot.refresh_from_db()
    assert floor.lot.sequence == r.json()["sequence"] and floor.lot.current_price == Decimal("2000.00")


@pytest.mark.view_statements
def test_a_bid_refused_before_the_lock_rolls_nothing_back_and_its_answer_is_kept(floor):
    """Most refusals on a busy lot (``bid_too_low`` on a price that has moved) are decided from
    committed rows before any transaction: nothing is rolled back, so the connection keeps its
    prepared statements (psycopg drops them all at any rollback) and the next bids stay cheap."""
    from django.db import connection

    a, b = floor.buyers[:2]
    floor.sale()
    assert a.bid(floor.lot, 2000).status_code == 201
    for i in range(3):
        r = b.bid(floor.lot, 2005, key=f"late-{i}")
        assert r.status_code == 400 and r.json()["code"] == "bid_too_low"
    retry = b.bid(floor.lot, 2005, key="late-0")
    assert retry.status_code == 400 and retry["Idempotent-Replayed"] == "true"
    assert retry.json()["code"] == "bid_too_low"
    if connection.vendor == "postgresql":  # prepared statements are PostgreSQL's
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in cursor.fetchall()]
        assert any('FROM "trading_sale"' in s and "FOR UPDATE" not in s for s in prepared), prepared
    assert Bid.objects.count() == 1


@pytest.mark.view_statements
def test_an_accepted_bid_writes_its_rows_under_the_sales_lock_in_one_statement(floor):
    """Every round trip under the sale's lock is one every other bidder on the lot waits for: the
    bid row, the bidder's raised maximum and the sale's new state go in one statement, and all of
    them are stored."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from market.trading.models import Bidder

    a, b = floor.buyers[:2]
    sale = floor.sale()
    start = Sale.objects.get(pk=sale.pk).sequence
    assert a.bid(floor.lot, 2000).status_code == 201
    assert b.bid(floor.lot, 2010).status_code == 201
    with CaptureQueriesContext(connection) as ctx:  # a known bidder raises the bid and the maximum
        r = a.bid(floor.lot, 2020, maximum=2600, key="one-statement")
    assert r.status_code == 201 and r.json()["current_price"] == "2020.00" and r.json()["you"]["leading"]
    statements = [q["sql"] for q in ctx.captured_queries]
    locked = next(i for i, sql in enumerate(statements) if "FOR UPDATE" in sql)
    # Before the lock the known bidder's row came with the sale's snapshot, in one query.
    before = [sql for sql in statements[:locked] if "trading_sale" in sql or "trading_bidder" in sql]
    assert len(before) == 1 and 'LEFT OUTER JOIN "trading_bidder"' in before[0], before
    under_lock = [sql for sql in statements[locked + 1 :] if not sql.startswith(("SAVEPOINT", "RELEASE"))]
    assert len(under_lock) == 2, under_lock  # the bid's rows, then the idempotency key's
    bid_rows, key = under_lock
    assert bid_rows.startswith('WITH u0 AS (UPDATE "trading_bidder"'), bid_rows
    assert 'UPDATE "trading_sale"' in bid_rows and 'INSERT INTO "trading_bid"' in bid_rows
    assert "core_idempotencykey" in key

    sale.refresh_from_db()
    assert (sale.current_price, sale.leader_id, sale.leader_maximum, sale.bid_count, sale.sequence) == (
        Decimal("2020.00"), a.org.pk, Decimal("2600.00"), 3, start + 3,
    )  # fmt: skip
    rows = (
        Bid.objects.filter(sale=sale)
        .order_by("sequence")
        .values_list("sequence", "organisation_id", "amount")
    )
    assert list(rows) == [
        (start + 1, a.org.pk, Decimal("2000.00")),
        (start + 2, b.org.pk, Decimal("2010.00")),
        (start + 3, a.org.pk, Decimal("2020.00")),
    ]
    assert Bidder.objects.get(sale=sale, organisation=a.org).maximum == Decimal("2600.00")


@pytest.mark.view_statements
def test_a_retry_from_the_bidder_who_leads_is_replayed_without_queueing_for_the_lock(floor):
    """A lost answer to an accepted bid: the bidder who still leads retries with the same key and
    gets the first answer at once, without asking for the sale's lock (which a retry from a bidder
    the price has passed never reaches either: it is refused before it, and replayed)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    a, b = floor.buyers[:2]
    floor.sale()
    first = a.bid(floor.lot, 2000, maximum=2400, key="lost-answer")
    assert first.status_code == 201
    with CaptureQueriesContext(connection) as ctx:
        retry = a.bid(floor.lot, 2000, maximum=2400, key="lost-answer")
    assert retry.status_code == 201 and retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert not any("FOR UPDATE" in q["sql"] for q in ctx.captured_queries), ctx.captured_queries
    assert b.bid(floor.lot, 2010).status_code == 201  # A's proxy answers: A still leads, at 2020
    with CaptureQueriesContext(connection) as ctx:
        again = a.bid(floor.lot, 2000, maximum=2400, key="lost-answer")
    assert again.json() == first.json() and not any("FOR UPDATE" in q["sql"] for q in ctx.captured_queries)
    assert Bid.objects.filter(organisation=a.org, kind="manual").count() == 1
