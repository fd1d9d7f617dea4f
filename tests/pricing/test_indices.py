"""The price indices from trade facts to published values: series appear with their trades, the
daily close walks the status ladder, the base month sets level 1000, composites chain, a voided
trade is corrected with a notice beside the as-first-published value, the audit list names the
trades (anonymised for the public), and each trade pushes an indicative tick over /ws/indices/."""

import random
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from rest_framework.test import APIClient

from market.accounts.uscc import uscc_make
from pricing import indices
from pricing import methodology as m
from pricing.index_models import IndexCorrection, IndexSeries, IndexValue
from pricing.models import TradeFact
from pricing.services import trade_record, trade_void

SH = ZoneInfo("Asia/Shanghai")
TANGSHAN, SUZHOU = "130203", "320506"
SELLERS = [uscc_make(TANGSHAN, f"0000001{i:02d}") for i in range(4)]
BUYERS = [uscc_make(SUZHOU, f"0000002{i:02d}") for i in range(4)]


def business_days(start: date, end: date):
    d = start
    while d <= end:
        if d.weekday() < 5:
            yield d
        d += timedelta(days=1)


def record(
    day: date, price, q="100", *, category="ferrous.heavy", county=TANGSHAN, seller=0, buyer=0, hour=10
):
    moment = datetime.combine(day, time(hour), tzinfo=SH)
    return trade_record(
        trade_id=f"t:{category}:{county}:{day}:{price}:{seller}:{buyer}:{hour}", awarded_at=moment, settled_at=moment,
        category_code=category, county_code=county, seller_uscc=SELLERS[seller], buyer_uscc=BUYERS[buyer],
        quantity_t=Decimal(q), unit_price=Decimal(str(price)),
    )  # fmt: skip


def liquid_day(day, price, **kw):
    """Three trades between different parties at about ``price``: a transaction-based day."""
    for i, delta in enumerate((-10, 0, 10)):
        record(day, price + delta, seller=i, buyer=(i + 1) % 3, hour=9 + i, **kw)


@pytest.fixture
def march(db):
    """Every business day of March 2026 liquid for heavy scrap in 唐山 (2,000 → 2,100 yuan/t), and
    medium scrap on some days; then the first days of April."""
    rng = random.Random(5)
    for i, d in enumerate(business_days(date(2026, 3, 2), date(2026, 4, 3))):
        liquid_day(d, 2000 + 5 * i)
        if rng.random() < 0.7:
            liquid_day(d, 1800 + 3 * i, category="ferrous.medium")
    call_command("indices_rebuild", "--from", "2026-03-02", "--to", "2026-04-03", "--no-progress")


def value(code, day):
    return IndexValue.objects.get(series__code=code, day=day)


@pytest.mark.django_db
def test_series_appear_for_the_category_its_ancestors_and_every_region_level(march):
    codes = set(IndexSeries.objects.values_list("code", flat=True))
    assert {"ferrous.heavy@CN", "ferrous@CN", "ferrous.heavy@P:13", "ferrous@P:13"} <= codes
    assert "ferrous.heavy@Z:jingjinji" in codes  # 河北 is in 京津冀
    assert "composite.ferrous" in codes and "composite.market" in codes


@pytest.mark.django_db
def test_a_liquid_day_is_transaction_based_at_the_weighted_price_and_the_base_month_is_1000(march):
    v = value("ferrous.heavy@CN", date(2026, 3, 2))
    # 100 t at 1,990, 2,000 and 2,010: P = 2,000.
    assert v.status == "T" and v.price == Decimal("2000") and v.n == 3 and v.tonnes == Decimal("300")
    series = IndexSeries.objects.get(code="ferrous.heavy@CN")
    assert (series.base_start, series.base_end) == (date(2026, 3, 1), date(2026, 3, 31))  # the calendar month
    march_values = IndexValue.objects.filter(series=series, day__lte=date(2026, 3, 31))
    levels = [x.level for x in march_values]
    assert abs(sum(levels) / len(levels) - 1000) < Decimal("0.5")  # equal tonnes: the mean is 1000
    april = value("ferrous.heavy@CN", date(2026, 4, 3))
    assert april.level == (1000 * april.price / series.base_price).quantize(Decimal("0.01"))
    assert sorted(indices.value_audit_lists(april)[0]) == sorted(f"t:ferrous.heavy:{TANGSHAN}:2026-04-03:{2000 + 5 * 24 + d}:{i}:{(i + 1) % 3}:{9 + i}"
                                        for i, d in enumerate((-10, 0, 10)))  # fmt: skip


@pytest.mark.django_db
def test_the_ladder_window_then_carried_then_stale(march):
    # From 6 April only one trade a day: not liquid alone, liquid over the five-day window.
    days = list(business_days(date(2026, 4, 6), date(2026, 4, 30)))
    for i, d in enumerate(days[:2]):
        record(d, 2200, seller=i % 3, buyer=(i + 1) % 3)
    for d in days:
        indices.indices_close(d)
    statuses = [value("ferrous.heavy@CN", d).status for d in days]
    # Day 1: the window (1-3 April liquid + today) holds → E; then E while the window still has
    # three trades from 2+ parties, then C, and S after ten C days.
    assert statuses[0] == "E" and "C" in statuses and statuses[-1] == "S"
    first_c = statuses.index("C")
    assert statuses[first_c : first_c + 10] == ["C"] * 10 and statuses[first_c + 10] == "S"
    carried = value("ferrous.heavy@CN", days[-1])
    assert carried.price == value("ferrous.heavy@CN", days[first_c - 1]).price and carried.n == 0


@pytest.mark.django_db
def test_an_outlier_is_left_out_with_its_reason_and_the_public_audit_is_anonymous(march):
    d = date(2026, 4, 6)
    liquid_day(d, 2100)
    record(d, 2100, seller=3, buyer=0, hour=13)
    record(d, 2105, seller=1, buyer=3, hour=14)
    wild = record(d, 900, seller=2, buyer=1, hour=15)  # a typo'd price
    indices.indices_close(d)
    v = value("ferrous.heavy@CN", d)
    assert v.status == "T" and v.excluded == 1 and wild.trade_id in v.unused
    assert v.unused[wild.trade_id][0] == "outlier"
    audit = APIClient().get(f"/api/v1/indices/ferrous.heavy@CN/values/{d}/audit/").json()
    assert len(audit["trades"]) == 6 and "trade_id" not in audit["trades"][0]
    assert {t["seller"][:2] for t in audit["trades"]} == {"卖方"}
    assert not any(s in str(audit) for s in SELLERS)


@pytest.mark.django_db
def test_a_voided_trade_is_corrected_with_a_notice_beside_the_first_publication(march, operator):
    d = date(2026, 4, 6)
    liquid_day(d, 2100)
    big = record(d, 2300, q="400", seller=3, buyer=2, hour=15)
    indices.indices_close(d)
    before = value("ferrous.heavy@CN", d)
    trade_void(trade_id=big.trade_id, reason="合同撤销")
    client = APIClient()
    client.force_authenticate(operator)
    answer = client.post(f"/api/v1/indices/corrections/{d}/", {"reason": "成交撤销，剔除该笔"})
    assert answer.status_code == 200, answer.json()
    after = value("ferrous.heavy@CN", d)
    assert after.price == Decimal("2100") and after.first_price == before.price and after.corrected_at
    notice = IndexCorrection.objects.get(value=after)
    assert notice.old_level == before.level and notice.new_level == after.level
    detail = APIClient().get("/api/v1/indices/ferrous.heavy@CN/").json()
    assert detail["corrections"][0]["reason"] == "成交撤销，剔除该笔"
    # A composite that contains the series is recomputed and noticed too.
    assert IndexCorrection.objects.filter(value__series__code="composite.ferrous", value__day=d).exists()
    # Notices have no database constraint: they go with their values all the same, through the ORM
    # and through a rebuild of the day, and none is left pointing at a value that is gone.
    after.delete()
    assert not IndexCorrection.objects.filter(pk=notice.pk).exists()
    indices.indices_rebuild(d, d)
    assert not IndexCorrection.objects.exclude(value_id__in=IndexValue.objects.values("id")).exists()
    assert IndexCorrection.objects.filter(value__day=d).count() == 0


@pytest.mark.django_db
def test_composites_chain_and_publish_their_contributions(march):
    v = value("composite.ferrous", date(2026, 4, 3))
    contributions = v.contributions
    assert set(contributions) >= {"ferrous.heavy@CN", "ferrous.medium@CN"}
    assert sum(Decimal(c["contribution"]) for c in contributions.values()) == v.level
    weights = [Decimal(c["weight"]) for c in contributions.values()]
    assert sum(weights) == 1


@pytest.mark.django_db
def test_the_public_api_lists_indices_with_last_value_and_change(march):
    client = APIClient()
    listing = client.get("/api/v1/indices/").json()
    heavy = next(r for r in listing["results"] if r["code"] == "ferrous.heavy@CN")
    assert heavy["last"]["day"] == "2026-04-03" and heavy["last"]["status"] == "T"
    assert Decimal(heavy["change_pct"]) > 0
    values = client.get("/api/v1/indices/ferrous.heavy@CN/values/?from=2026-03-30&to=2026-04-03").json()
    assert [r["day"] for r in values["results"]] == [f"2026-03-{d}" for d in (30, 31)] + [
        "2026-04-01",
        "2026-04-02",
        "2026-04-03",
    ]
    assert client.get("/api/v1/indices/ferrous.heavy@CN/values/?from=yesterday").status_code == 400
    assert client.get("/api/v1/indices/nothing@CN/").status_code == 404
    open_data = client.get("/api/v1/open/indices/").json()
    assert any(r["code"] == "composite.market" for r in open_data["results"])


@pytest.mark.django_db
def test_a_trade_pushes_an_indicative_tick_to_index_watchers(march):

    from market.asgi import application

    def trade_and_publish():
        for i in range(3):
            fact = record(date(2026, 4, 6), 2150, seller=i, buyer=(i + 1) % 3, hour=10 + i)
        return indices.indicative_publish(fact.pk)

    async def run():
        headers = [(b"origin", b"http://testserver"), (b"host", b"testserver")]
        everything = WebsocketCommunicator(application, "/ws/indices/", headers=headers)
        one = WebsocketCommunicator(application, "/ws/indices/?series=ferrous.heavy@P:13", headers=headers)
        assert (await everything.connect())[0] and (await one.connect())[0]
        assert (await everything.receive_json_from())["type"] == "hello"
        assert (await one.receive_json_from())["series"] == "ferrous.heavy@P:13"
        sent = await sync_to_async(trade_and_publish)()
        ticks = [await everything.receive_json_from(timeout=5) for _ in range(sent)]
        mine = await one.receive_json_from(timeout=5)
        await everything.disconnect()
        await one.disconnect()
        return sent, ticks, mine

    sent, ticks, mine = async_to_sync(run)()
    assert sent == len(indices.series_of_fact("ferrous.heavy", TANGSHAN))
    national = next(t for t in ticks if t["series"] == "ferrous.heavy@CN")
    assert national["live"] is True and national["price"] == "2150.00" and national["label"] == "indicative"
    assert mine["series"] == "ferrous.heavy@P:13" and mine["price"] == "2150.00"


@pytest.mark.django_db
def test_an_indicative_tick_counts_todays_trades_of_its_series_beside_the_last_close(march):
    """Another branch's trades the same day (copper) and another province's (杭州) count only where
    they belong; each value is the rules' indicative value of exactly its series' trades."""
    record(date(2026, 4, 6), 52000, category="nonferrous.copper", seller=1, buyer=2, hour=9)
    record(date(2026, 4, 6), 2200, county="330102", seller=2, buyer=0, hour=9)
    for i, price in enumerate((2140, 2150)):
        record(date(2026, 4, 6), price, seller=i, buyer=(i + 1) % 3, hour=10 + i)
    fact = record(date(2026, 4, 6), 2160, seller=2, buyer=0, hour=12)
    ticks = {t["series"]: t for t in indices.indicative_for(fact)}
    assert set(ticks) == set(indices.series_of_fact("ferrous.heavy", TANGSHAN))
    assert ticks["ferrous.heavy@P:13"]["n"] == 3 and ticks["ferrous.heavy@CN"]["n"] == 4
    # the rules on each series' own trades, found the slow way: every fact of the day, every series
    p = indices.params()
    today = [f for f in TradeFact.objects.all() if f.settled_at.date() == date(2026, 4, 6)]
    for code, tick in ticks.items():
        trades = [
            indices._to_trade(tuple(getattr(f, n) for n in indices.FACT_FIELDS)).trade
            for f in today
            if code in indices.series_of_fact(f.category_id, f.region_id)
        ]
        close = (
            IndexValue.objects.filter(series__code=code, day__lt=date(2026, 4, 6)).order_by("-day").first()
        )
        expected = m.indicative(
            date(2026, 4, 6), trades, close.price if close else None, p, category=code.split("@")[0]
        )
        assert tick["n"] == expected.n and tick["live"] == expected.live, code
        assert tick["price"] == (
            str(expected.price.quantize(Decimal("0.01"))) if expected.price is not None else None
        )
    last = value("ferrous.heavy@CN", date(2026, 4, 3))
    national = ticks["ferrous.heavy@CN"]
    assert (
        Decimal(national["previous_close"]) == last.price
        and Decimal(national["previous_level"]) == last.level
    )


def test_the_close_is_scheduled_after_the_cut_off_on_business_days(settings):
    schedule = settings.CELERY_BEAT_SCHEDULE["indices-daily-close"]["schedule"]
    assert schedule.hour == {16} and schedule.minute == {35} and schedule.day_of_week == {1, 2, 3, 4, 5}
    assert m.DEFAULT_PARAMS.cutoff == time(16, 30)


def test_the_facts_read_for_days_are_exactly_those_counting_on_them(db, settings):
    """``_facts_between`` lets the database keep to the facts whose counting day is in the span (both
    times before its last cut-off, one at or after the cut-off before it): the same facts as
    ``methodology.counting_day`` picks from everything, at the cut-off's edges, over a weekend and a
    holiday, and for trades settled days after their award."""
    settings.INDEX_HOLIDAYS = ["2026-03-11"]
    rng = random.Random(11)
    edges = [time(16, 29, 59), time(16, 30), time(16, 30, 1), time(0, 0), time(23, 59, 59), time(10)]
    for i in range(160):
        awarded = datetime.combine(
            date(2026, 3, 2) + timedelta(days=rng.randrange(20)), rng.choice(edges), tzinfo=SH
        )
        settled = awarded + rng.choice(
            [timedelta(0), timedelta(seconds=1), timedelta(hours=7), timedelta(days=3)]
        )
        trade_record(
            trade_id=f"edge:{i}", awarded_at=awarded, settled_at=settled, category_code="ferrous.heavy",
            county_code=TANGSHAN, seller_uscc=SELLERS[0], buyer_uscc=BUYERS[1], quantity_t=Decimal("50"),
            unit_price=Decimal("2000"),
        )  # fmt: skip
    p = indices.params()
    assert date(2026, 3, 11) in p.holidays
    every = [indices._to_trade(row).trade for row in TradeFact.objects.values_list(*indices.FACT_FIELDS)]
    for start, end in [(date(2026, 3, 9), date(2026, 3, 9)), (date(2026, 3, 12), date(2026, 3, 12)),
                       (date(2026, 3, 16), date(2026, 3, 20)), (date(2026, 3, 10), date(2026, 3, 13))]:  # fmt: skip
        expected = {t.trade_id for t in every if start <= m.counting_day(t, p) <= end}
        read = indices._facts_between(start, end, p)
        assert {f.trade.trade_id for facts in read.values() for f in facts} == expected
        assert expected  # each span has trades, at its edges too
