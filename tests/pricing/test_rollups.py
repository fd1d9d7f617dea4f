"""Statistics rollups: equal to a direct aggregation of the facts however they got there (live
increments, voids, repeats, lost hooks and the sweep, a rebuild, a rebuild interrupted and resumed,
concurrent trades)."""

import threading
from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.db import connection, connections, transaction
from django.test import TestCase
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from listings.models import Category
from market.accounts.uscc import uscc_make
from market.core.models import Region
from pricing import rollups, services
from pricing.models import (
    DisclosureContribution,
    FillStatus,
    RollupFillState,
    TradeFact,
    TradeFactRollupMark,
    VolumeRollup,
)
from pricing.services import trade_record, trade_void
from pricing.tasks import stats_facts_changed, stats_sweep
from tests.pricing.conftest import SUZHOU_WUZHONG, TANGSHAN_LUBEI, at, committed, trade_args

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
# Real catalogue nodes at depths 0 to 3, and counties in four provinces, 东莞 (a city without
# counties) and a district of 北京 (a municipality).
CATEGORIES = [
    "ferrous",
    "ferrous.heavy",
    "nonferrous.copper.bright",
    "paper.occ",
    "bulk.slag.steel.bof",
    "hazardous.hw08.mineral_oil",
]
COUNTIES = [TANGSHAN_LUBEI, "130204", SUZHOU_WUZHONG, "320508", "441900", "110105", "510104"]
SELLERS = [uscc_make(TANGSHAN_LUBEI, f"0000001{i:02d}") for i in range(4)]
BUYERS = [uscc_make(SUZHOU_WUZHONG, f"0000002{i:02d}") for i in range(4)]


# --- the reference: a direct aggregation of the facts, by the catalogue and division trees -----------


def expected_rollups() -> dict[tuple, tuple]:
    """(grain, period, category, region) -> (trades, tonnes, value), from the facts, walking the
    category and region parents in the database (not the code strings the rollups use): months for
    every enclosing region, days for the province and the nation only."""
    parents = dict(Category.objects.values_list("code", "parent_id"))
    region_parents = dict(Region.objects.values_list("code", "parent_id"))
    out: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for fact in TradeFact.objects.filter(voided_at__isnull=True):
        day = fact.settled_at.astimezone(SHANGHAI).date()
        nodes, node = [], fact.category_id
        while node:
            nodes.append(node)
            node = parents[node]
        regions, region = ["CN"], fact.region_id
        while region:
            regions.append(region)
            region = region_parents[region]
        by_day = [r for r in regions if r == "CN" or region_parents[r] is None]  # nation, province
        for grain, period, keys in (("day", day, by_day), ("month", day.replace(day=1), regions)):
            for category in nodes:
                for region in keys:
                    total = out[(grain, period, category, region)]
                    total[0] += 1
                    total[1] += fact.quantity_t
                    total[2] += fact.amount
    return {key: tuple(value) for key, value in out.items()}


def actual_rollups() -> dict[tuple, tuple]:
    return {
        (r.grain, r.period, r.category, r.region): (r.trades, r.tonnes, r.value)
        for r in VolumeRollup.objects.all()
    }


def expected_contributions() -> dict[tuple, tuple]:
    out: dict[tuple, list] = defaultdict(lambda: [0, Decimal(0)])
    for fact in TradeFact.objects.filter(voided_at__isnull=True):
        month = fact.settled_at.astimezone(SHANGHAI).date().replace(day=1)
        for region in (fact.region_id[:2] + "0000", "CN"):
            for category in (fact.category_id.split(".")[0], "*"):
                for side, uscc in (("s", fact.seller_uscc), ("b", fact.buyer_uscc)):
                    total = out[(month, region, category, side, uscc)]
                    total[0] += 1
                    total[1] += fact.quantity_t
    return {key: tuple(value) for key, value in out.items()}


def actual_contributions() -> dict[tuple, tuple]:
    return {
        (c.month, c.region, c.category, c.side, c.uscc): (c.trades, c.tonnes)
        for c in DisclosureContribution.objects.all()
    }


def assert_rollups_match_facts():
    assert actual_rollups() == expected_rollups()
    assert actual_contributions() == expected_contributions()
    marks = dict(TradeFactRollupMark.objects.values_list("fact_id", "counted"))
    for fact_id, voided_at in TradeFact.objects.values_list("pk", "voided_at"):
        assert marks.get(fact_id) == (voided_at is None)


def record(**overrides):
    """trade_record as after a real commit, counted as the statistics worker counts it."""

    return committed(trade_record, **trade_args(**overrides))


def void(trade_id: str):

    return committed(trade_void, trade_id=trade_id, reason="成交撤销")


def moment(day: date, minutes: int) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=SHANGHAI) + timedelta(minutes=minutes)


# --- keys -----------------------------------------------------------------------------------------


def test_a_fact_counts_in_every_ancestor_category_and_every_enclosing_region():
    assert rollups.category_nodes("nonferrous.copper.bright") == [
        ("nonferrous", 0),
        ("nonferrous.copper", 1),
        ("nonferrous.copper.bright", 2),
    ]
    assert rollups.region_keys(TANGSHAN_LUBEI) == ["130203", "130200", "130000", "CN"]
    assert rollups.region_keys("441900") == ["441900", "440000", "CN"]  # 东莞: its own county, once
    assert [rollups.region_level(k) for k in ("CN", "130000", "130200", "130203", "441900")] == [
        "national",
        "province",
        "city",
        "county",
        "city",
    ]


# --- live increments ------------------------------------------------------------------------------


def test_a_recorded_trade_is_counted_at_once_in_each_cell():
    fact = record(
        trade_id="deal:r1",
        category_code="ferrous.heavy",
        quantity_t=Decimal("10.000"),
        unit_price=Decimal("2500.00"),
        settled_at=moment(date(2026, 3, 5), 600),
    )
    row = VolumeRollup.objects.get(
        grain="month", period=date(2026, 3, 1), category="ferrous", region="130000"
    )
    assert (row.trades, row.tonnes, row.value, row.level, row.depth) == (
        1,
        Decimal("10.000"),
        Decimal("25000.00"),
        "province",
        0,
    )
    # two catalogue nodes × four regions by month, × the province and the nation by day
    assert VolumeRollup.objects.filter(grain="month", period=date(2026, 3, 1)).count() == 2 * 4
    assert set(
        VolumeRollup.objects.filter(grain="day", period=date(2026, 3, 5)).values_list("region", "category")
    ) == {(r, c) for r in ("130000", "CN") for c in ("ferrous", "ferrous.heavy")}
    assert TradeFactRollupMark.objects.get(fact=fact).counted
    assert_rollups_match_facts()


def test_recording_or_applying_the_same_fact_twice_counts_it_once():
    fact = record(trade_id="deal:r2")
    again = record(trade_id="deal:r2")
    assert again.pk == fact.pk
    assert rollups.rollups_fact_apply(fact_id=fact.pk) == 0
    assert rollups.rollups_fact_apply(fact_id=fact.pk) == 0
    assert VolumeRollup.objects.get(grain="month", category="ferrous", region="CN").trades == 1
    assert_rollups_match_facts()


def test_a_void_subtracts_and_an_emptied_cell_has_no_row():
    first = record(trade_id="deal:r3", quantity_t=Decimal("5.000"))
    record(trade_id="deal:r4", quantity_t=Decimal("7.000"), county_code=SUZHOU_WUZHONG)
    void(first.trade_id)
    national = VolumeRollup.objects.get(grain="month", category="ferrous.heavy", region="CN")
    assert (national.trades, national.tonnes) == (1, Decimal("7.000"))
    assert not VolumeRollup.objects.filter(region__in=["130203", "130200", "130000"]).exists()
    void(first.trade_id)  # voiding twice changes nothing
    assert rollups.rollups_fact_apply(fact_id=first.pk) == 0
    assert VolumeRollup.objects.get(grain="month", category="ferrous.heavy", region="CN").trades == 1
    assert_rollups_match_facts()


def test_days_and_months_follow_the_market_time_zone():
    record(trade_id="deal:late", settled_at=datetime(2026, 3, 31, 23, 30, tzinfo=SHANGHAI))
    record(trade_id="deal:early", settled_at=datetime(2026, 4, 1, 0, 30, tzinfo=SHANGHAI))
    days = set(VolumeRollup.objects.filter(grain="day").values_list("period", flat=True))
    months = set(VolumeRollup.objects.filter(grain="month").values_list("period", flat=True))
    assert days == {date(2026, 3, 31), date(2026, 4, 1)}
    assert months == {date(2026, 3, 1), date(2026, 4, 1)}
    assert_rollups_match_facts()


def test_a_lost_hook_is_made_good_by_the_sweep():
    from django.test import TestCase

    with TestCase.captureOnCommitCallbacks(execute=False):  # the process died after the commit
        fact = trade_record(**trade_args(trade_id="deal:lost"))
    assert not VolumeRollup.objects.exists()
    assert TradeFactRollupMark.objects.get(fact=fact).pending
    assert stats_sweep(limit=100) == 1
    assert stats_sweep(limit=100) == 0
    with TestCase.captureOnCommitCallbacks(execute=False):
        trade_void(trade_id="deal:lost", reason="退款")
    assert VolumeRollup.objects.exists()
    assert stats_sweep(limit=100) == 1
    assert not VolumeRollup.objects.exists()
    assert not TradeFactRollupMark.objects.filter(pending=True).exists()
    assert_rollups_match_facts()


def test_a_message_that_cannot_be_sent_never_fails_the_trade_and_the_sweep_counts_it(monkeypatch, caplog):
    from pricing.tasks import stats_facts_changed

    def broker_down(*args, **kwargs):
        raise ConnectionError("broker went away")

    monkeypatch.setattr(stats_facts_changed, "apply_async", broker_down)
    with TestCase.captureOnCommitCallbacks(execute=True):
        fact = trade_record(**trade_args(trade_id="deal:unsent"))
    assert TradeFact.objects.filter(pk=fact.pk).exists()
    assert services.changes_flush()
    assert "1 items not sent" in caplog.text
    assert TradeFactRollupMark.objects.get(fact=fact).pending and not VolumeRollup.objects.exists()
    assert stats_sweep() == 1
    assert_rollups_match_facts()


def test_a_fact_that_fails_in_the_worker_stays_pending_and_the_others_are_counted(monkeypatch, caplog):
    from pricing import tasks

    with TestCase.captureOnCommitCallbacks(execute=True):
        broken = trade_record(**trade_args(trade_id="deal:broken"))
        fine = trade_record(**trade_args(trade_id="deal:fine", county_code=SUZHOU_WUZHONG))
    apply = tasks.rollups_fact_apply

    def apply_unless_broken(*, fact_id):
        if fact_id == broken.pk:
            raise RuntimeError("database went away")
        return apply(fact_id=fact_id)

    monkeypatch.setattr(tasks, "rollups_fact_apply", apply_unless_broken)
    assert tasks.stats_facts_changed([broken.pk, fine.pk]) == 1
    assert "rollups not applied" in caplog.text
    assert set(TradeFactRollupMark.objects.filter(pending=True).values_list("fact_id", flat=True)) == {
        broken.pk
    }
    monkeypatch.undo()
    assert stats_sweep() == 1
    assert_rollups_match_facts()


def test_the_worker_pushes_one_tick_for_each_series_and_day_a_message_moved(monkeypatch):
    """The last recorded fact of each category, county and business day: the indicative values read
    every trade of the day, so an earlier fact of the same cell and day adds nothing; a voided fact
    pushes none."""
    from pricing import indices, tasks

    with TestCase.captureOnCommitCallbacks(execute=True):
        a = trade_record(**trade_args(trade_id="deal:t1"))
        b = trade_record(**trade_args(trade_id="deal:t2"))
        c = trade_record(**trade_args(trade_id="deal:t3", county_code=SUZHOU_WUZHONG))
        d = trade_record(**trade_args(trade_id="deal:t4", category_code="paper.occ"))
        trade_void(trade_id=d.trade_id, reason="撤销")
        e = trade_record(**trade_args(trade_id="deal:t5", settled_at=at(9, 11)))  # a's cell, a later day
    pushed = []
    monkeypatch.setattr(indices, "indicative_publish", pushed.append)
    assert indices.indicative_day(e) > indices.indicative_day(a) == indices.indicative_day(b)
    assert tasks.stats_facts_changed([a.pk, b.pk, e.pk, c.pk, d.pk]) == 4
    assert sorted(pushed) == sorted([b.pk, c.pk, e.pk])
    assert_rollups_match_facts()


@pytest.mark.parametrize("native_upsert", [True, False], ids=["upsert", "update-then-insert"])
def test_the_portable_path_adds_like_the_postgresql_one(monkeypatch, native_upsert):
    """The path of the SQLite demo (the ORM, then ``ON CONFLICT`` upserts, or without them the
    update-then-insert fallback), run here on PostgreSQL."""
    monkeypatch.setattr(rollups, "_apply_postgresql", rollups._apply_portable)
    monkeypatch.setattr(rollups, "_native_upsert", lambda: native_upsert)
    a = record(trade_id="deal:f1")
    record(trade_id="deal:f2", county_code="130204")
    record(trade_id="deal:f3", category_code="paper.occ")
    b = record(trade_id="deal:f4", county_code="441900", category_code="nonferrous.copper.bright")
    assert rollups.rollups_fact_apply(fact_id=b.pk) == 0
    void(a.trade_id)
    void(a.trade_id)
    assert_rollups_match_facts()


@hypothesis_settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    trades=st.lists(
        st.tuples(
            st.sampled_from(CATEGORIES),
            st.sampled_from(COUNTIES),
            st.integers(0, 70),  # day offset from 2026-01-20 (three months)
            st.integers(0, 24 * 60 - 1),  # minute of the day, Shanghai time
            st.sampled_from(SELLERS),
            st.sampled_from(BUYERS),
            st.integers(10, 500_000),  # kilograms
            st.integers(10_000, 900_000),  # fen per tonne
            st.sampled_from(["keep", "void", "repeat", "void twice"]),
        ),
        min_size=1,
        max_size=25,
    )
)
def test_rollups_equal_a_direct_aggregation_of_the_facts(trades):
    """Any mix of trades, repeats and voids, applied live, then rebuilt: always the facts' sums."""

    class Rollback(Exception):
        pass

    try:
        with transaction.atomic():
            start = date(2026, 1, 20)
            for n, (category, county, offset, minute, seller, buyer, kg, fen, fate) in enumerate(trades):
                settled = moment(start + timedelta(days=offset), minute)
                args = {
                    "trade_id": f"deal:h{n}",
                    "category_code": category,
                    "county_code": county,
                    "seller_uscc": seller,
                    "buyer_uscc": buyer,
                    "awarded_at": settled - timedelta(hours=1),
                    "settled_at": settled,
                    "quantity_t": Decimal(kg) / 1000,
                    "unit_price": Decimal(fen) / 100,
                }
                record(**args)
                if fate == "repeat":
                    record(**args)
                if fate.startswith("void"):
                    void(args["trade_id"])
                if fate == "void twice":
                    void(args["trade_id"])
            assert_rollups_match_facts()
            live = actual_rollups()

            rollups.rollups_rebuild(date(2026, 1, 1), date(2026, 4, 30), restart=True)
            assert actual_rollups() == live
            assert_rollups_match_facts()

            for month in rollups.months_between(date(2026, 1, 1), date(2026, 4, 1)):
                rollups._rebuild_month_python(month)  # the embedded demo's path, on the same facts
            assert actual_rollups() == live
            assert_rollups_match_facts()
            raise Rollback
    except Rollback:
        pass


# --- rebuilding -----------------------------------------------------------------------------------


def _facts_over_months():
    """Facts in January to May 2026, a few voided, and rollups wiped (as after a restore)."""
    for n in range(15):
        settled = moment(date(2026, 1, 10) + timedelta(days=9 * n), 13 * 60 + n)
        record(
            trade_id=f"deal:m{n}",
            category_code=CATEGORIES[n % len(CATEGORIES)],
            county_code=COUNTIES[n % len(COUNTIES)],
            seller_uscc=SELLERS[n % 3],
            buyer_uscc=BUYERS[n % 4],
            awarded_at=settled - timedelta(hours=2),
            settled_at=settled,
        )
    for n in (2, 7):
        void(f"deal:m{n}")
    VolumeRollup.objects.all().delete()
    DisclosureContribution.objects.all().delete()
    TradeFactRollupMark.objects.all().delete()


def test_stats_rebuild_recomputes_everything_from_the_facts():
    _facts_over_months()
    call_command("stats_rebuild", "--no-progress")
    assert_rollups_match_facts()
    state = RollupFillState.objects.get()
    assert (state.status, state.range_from, state.range_to, state.done_through) == (
        FillStatus.DONE,
        date(2026, 1, 1),
        date(2026, 5, 1),
        date(2026, 5, 1),
    )


def test_stats_rebuild_interrupted_midway_continues_where_it_stopped(monkeypatch):
    _facts_over_months()
    real = rollups.rebuild_month
    done = []

    def crashing(month):
        if month == date(2026, 3, 1):
            raise RuntimeError("killed")
        real(month)
        done.append(month)

    monkeypatch.setattr(rollups, "rebuild_month", crashing)
    with pytest.raises(RuntimeError):
        call_command("stats_rebuild", "--from", "2026-01-15", "--to", "2026-05-20", "--no-progress")
    assert done == [date(2026, 1, 1), date(2026, 2, 1)]
    state = RollupFillState.objects.get()
    assert (state.status, state.done_through) == (FillStatus.RUNNING, date(2026, 2, 1))
    # The month that crashed left nothing behind; the months before it are complete.
    assert not VolumeRollup.objects.filter(period__gte=date(2026, 3, 1)).exists()

    def counting(month):
        real(month)
        done.append(month)

    monkeypatch.setattr(rollups, "rebuild_month", counting)
    call_command("stats_rebuild", "--from", "2026-01-15", "--to", "2026-05-20", "--no-progress")
    assert done[2:] == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]  # resumed, not redone
    assert RollupFillState.objects.get().status == FillStatus.DONE
    assert_rollups_match_facts()

    # A finished range run again starts over (and changes nothing).
    call_command("stats_rebuild", "--from", "2026-01", "--to", "2026-05", "--no-progress")
    assert len(done) == 10
    assert_rollups_match_facts()


def test_a_rebuild_counts_facts_written_around_the_services_and_the_live_path_then_agrees():
    record(trade_id="deal:live")
    fact = TradeFact.objects.get()
    TradeFact.objects.create(
        trade_id="import:raw",
        source="import",
        awarded_at=fact.awarded_at,
        settled_at=fact.settled_at,
        category_id="paper.occ",
        region_id=SUZHOU_WUZHONG,
        seller_uscc=fact.seller_uscc,
        buyer_uscc=fact.buyer_uscc,
        quantity_t=Decimal("3.000"),
        unit_price=Decimal("1800.00"),
        amount=Decimal("5400.00"),
    )
    call_command("stats_rebuild", "--no-progress")
    assert_rollups_match_facts()
    # the live fact is marked counted by the rebuild, so applying it again adds nothing
    assert rollups.rollups_fact_apply(fact_id=fact.pk) == 0
    void("deal:live")
    assert_rollups_match_facts()


def test_stats_rebuild_without_facts_says_so():
    from io import StringIO

    out = StringIO()
    call_command("stats_rebuild", "--no-progress", stdout=out)
    assert out.getvalue().strip()
    assert not RollupFillState.objects.exists()


# --- concurrency ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_trades_voids_and_a_rebuild_count_each_fact_exactly_once():
    """Eight threads record (and some void) trades into the same cells and apply them as the worker
    does, while another rebuilds the month over and over: the rollups end equal to the facts, with
    no deadlock."""
    errors = []
    start = threading.Barrier(9)
    settled = moment(date(2026, 3, 10), 600)

    def trader(n):
        try:
            start.wait()
            for i in range(8):
                trade_id = f"deal:c{n}-{i}"
                fact = trade_record(
                    **trade_args(
                        trade_id=trade_id,
                        settled_at=settled,
                        awarded_at=settled - timedelta(hours=1),
                        county_code=COUNTIES[(n + i) % 3],
                        seller_uscc=SELLERS[n % 4],
                    )
                )
                stats_facts_changed([fact.pk])  # what the statistics worker does on its message
                if i % 3 == 0:
                    trade_void(trade_id=trade_id, reason="撤销")
                    stats_facts_changed([fact.pk])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def rebuilder():
        try:
            start.wait()
            for _ in range(6):
                with transaction.atomic():
                    rollups.rebuild_month(date(2026, 3, 1))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=trader, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=rebuilder))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert TradeFact.objects.count() == 64
    assert not TradeFactRollupMark.objects.filter(pending=True).exists()
    assert_rollups_match_facts()
    connection.close()
