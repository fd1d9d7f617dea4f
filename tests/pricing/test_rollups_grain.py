"""The statistics selectors answer every question they offer at every level, although the rollups
keep days for the nation and the provinces only: a city's or county's days come from the facts'
covering index. Checked against a direct aggregation of the facts for random trades, at each level
(nation, zone, province, city, county, a city without counties), for every grain and for ranges
that start and end inside months."""

from collections import defaultdict
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from listings.models import Category
from market.accounts.uscc import uscc_make
from market.core.models import EconomicZone
from pricing import selectors
from pricing.models import TradeFact, VolumeRollup
from pricing.periods import period_end, periods
from pricing.services import trade_record, trade_void
from tests.pricing.conftest import committed

pytestmark = pytest.mark.django_db

SHANGHAI = ZoneInfo("Asia/Shanghai")
START = date(2026, 1, 20)
CATEGORIES = ["ferrous.heavy", "ferrous.light", "nonferrous.copper.bright", "paper.occ"]
# Two counties of 唐山, one of 石家庄, two of 苏州, 东莞 (a city without counties), 北京朝阳.
COUNTIES = ["130203", "130204", "130102", "320506", "320508", "441900", "110105"]
SELLERS = [uscc_make("130203", f"0000003{i:02d}") for i in range(3)]
BUYERS = [uscc_make("320506", f"0000004{i:02d}") for i in range(3)]
AREAS = ["CN", "yangtze-river-delta", "130000", "130200", "130203", "320500", "441900", "110100"]
# (from, to) as day offsets from START: inside one month, across month ends, whole months.
RANGES = [(0, 5), (8, 40), (-19, 39), (-19, 70)]


def _inside(area: str, county: str) -> bool:
    if area == "CN":
        return True
    if not area[0].isdigit():
        return county[:2] + "0000" in selectors.area_resolve(area).keys
    if area.endswith("0000"):
        return county[:2] == area[:2]
    if area.endswith("00"):
        return county[:4] == area[:4]
    return county == area


_loaded: list = []


def _facts():
    """The unvoided facts with their day (market time), read once per example."""
    return _loaded


def _under(code: str, node: str | None) -> bool:
    return node is None or code == node or code.startswith(f"{node}.")


def expected_volume(grain, category, area, first, last):
    out = {}
    for start in periods(first, last, grain):
        end = period_end(start, grain)
        total = [0, Decimal(0), Decimal(0)]
        for day, fact in _facts():
            if start <= day <= end and _inside(area, fact.region_id) and _under(fact.category_id, category):
                total[0] += 1
                total[1] += fact.quantity_t
                total[2] += fact.amount
        out[start] = tuple(total)
    return out


def expected_ranking(first, last, key, keep):
    totals = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for day, fact in _facts():
        name = key(fact)
        if first <= day <= last and name is not None and keep(fact):
            total = totals[name]
            total[0] += 1
            total[1] += fact.quantity_t
            total[2] += fact.amount
    return {name: tuple(total) for name, total in totals.items()}


def _node(code: str, depth: int) -> str | None:
    parts = code.split(".")
    return ".".join(parts[: depth + 1]) if depth < len(parts) else None


def check_every_question():
    _loaded[:] = [
        (f.settled_at.astimezone(SHANGHAI).date(), f)
        for f in TradeFact.objects.filter(voided_at__isnull=True)
    ]
    for area in AREAS:
        for a, b in RANGES:
            first, last = START + timedelta(days=a), START + timedelta(days=b)
            for grain in ("day", "week", "month"):
                for category in (None, "nonferrous.copper"):
                    points = selectors.volume(grain, category, area, first, last)
                    got = {p.period: (p.trades, p.tonnes, p.value) for p in points}
                    assert got == expected_volume(grain, category, area, first, last), (area, grain, a, b)
                table = selectors.volume_by_category(grain, area, first, last)
                span_first, span_last = points[0].period, points[-1].end
                want = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
                for day, fact in _facts():
                    if span_first <= day <= span_last and _inside(area, fact.region_id):
                        start = next(p.period for p in points if p.period <= day <= p.end)
                        cell = want[(start, fact.category_id.split(".")[0])]
                        cell[0] += 1
                        cell[1] += fact.quantity_t
                        cell[2] += fact.amount
                assert table == {k: tuple(v) for k, v in want.items()}, (area, grain, a, b)
            for parent in (None, "nonferrous.copper"):
                depth = 0 if parent is None else parent.count(".") + 1
                rows = selectors.top_categories(
                    first, last, region_code_or_zone=area, parent=parent, limit=99
                )
                want = expected_ranking(
                    first,
                    last,
                    lambda f, depth=depth: _node(f.category_id, depth),
                    lambda f, area=area, parent=parent: (
                        _inside(area, f.region_id)
                        and (parent is None or f.category_id.startswith(f"{parent}."))
                    ),
                )
                assert {r["code"]: (r["trades"], r["tonnes"], r["value"]) for r in rows} == want
    for level, within in (("province", None), ("city", None), ("city", "130000"), ("county", "130200")):
        for a, b in RANGES:
            first, last = START + timedelta(days=a), START + timedelta(days=b)
            for category in (None, "ferrous"):
                rows = selectors.top_regions(first, last, level=level, within=within, category_code=category)
                if level == "province":
                    key = lambda f: f.region_id[:2] + "0000"  # noqa: E731
                elif level == "city":
                    key = lambda f: f.region_id[:4] + "00"  # noqa: E731
                else:
                    key = lambda f: None if f.region_id.endswith("00") else f.region_id  # noqa: E731
                want = expected_ranking(
                    first,
                    last,
                    key,
                    lambda f, within=within, category=category: (
                        (within is None or _inside(within, f.region_id)) and _under(f.category_id, category)
                    ),
                )
                assert {r["code"]: (r["trades"], r["tonnes"], r["value"]) for r in rows} == want, (
                    level,
                    within,
                    a,
                    b,
                )


def record(n: int, category, county, offset, minute, kg, fen):
    settled = datetime.combine(START + timedelta(days=offset), datetime.min.time(), tzinfo=SHANGHAI)
    settled += timedelta(minutes=minute)
    return committed(
        trade_record,
        trade_id=f"deal:g{n}",
        awarded_at=settled - timedelta(hours=1),
        settled_at=settled,
        category_code=category,
        county_code=county,
        seller_uscc=SELLERS[n % 3],
        buyer_uscc=BUYERS[n % 3],
        quantity_t=Decimal(kg) / 1000,
        unit_price=Decimal(fen) / 100,
    )


@hypothesis_settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    trades=st.lists(
        st.tuples(
            st.sampled_from(CATEGORIES),
            st.sampled_from(COUNTIES),
            st.integers(-19, 70),  # day offset from 2026-01-20: January to March
            st.integers(0, 24 * 60 - 1),  # minute of the day, Shanghai time
            st.integers(10, 500_000),  # kilograms
            st.integers(10_000, 900_000),  # fen per tonne
            st.booleans(),  # voided afterwards
        ),
        min_size=1,
        max_size=20,
    )
)
def test_every_question_at_every_level_equals_a_direct_aggregation_of_the_facts(trades):
    class Rollback(Exception):
        pass

    assert EconomicZone.objects.filter(pk="yangtze-river-delta").exists()
    assert all(Category.objects.filter(pk=c).exists() for c in CATEGORIES)
    try:
        with transaction.atomic():
            for n, (category, county, offset, minute, kg, fen, voided) in enumerate(trades):
                record(n, category, county, offset, minute, kg, fen)
                if voided:
                    committed(trade_void, trade_id=f"deal:g{n}", reason="撤销")
            # only the nation and the provinces have day rows
            assert set(VolumeRollup.objects.filter(grain="day").values_list("level", flat=True)) <= {
                "national",
                "province",
            }
            check_every_question()
            raise Rollback
    except Rollback:
        pass


def test_a_countys_days_can_be_read_from_the_covering_index_alone():
    """A county's daily series needs no row of the facts table: with every plan but an index-only
    scan switched off, the planner still finds one, on the facts' covering index. (Which plan it
    picks on its own depends on the table's statistics; at millions of facts, this one.)"""
    for n in range(30):
        record(n, CATEGORIES[n % 4], COUNTIES[n % 2], n, 600, 10_000, 200_000)
    with connection.cursor() as cursor:
        for plan in ("seqscan", "bitmapscan", "indexscan"):
            cursor.execute(f"SET LOCAL enable_{plan} = off")
        with CaptureQueriesContext(connection) as queries:
            selectors.volume("day", "ferrous", "130203", START, START + timedelta(days=30))
        (sql,) = [q["sql"] for q in queries.captured_queries if "pricing_tradefact" in q["sql"]]
        cursor.execute("EXPLAIN " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "tradefact_region_cover" in plan, plan
    assert "Index Only Scan" in plan, plan
