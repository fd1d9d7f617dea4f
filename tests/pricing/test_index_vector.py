"""The set-wise cells (``pricing.index_vector``) against the methodology's own functions, on adversarial
trades: weights that put the weighted median exactly on a half, prices exactly 5 % from the median
(the floor of rule 2, where floating point cannot decide and ``Decimal`` does), a dominant organisation
at exactly the maximum share, lots below the minimum, voided trades, one organisation on both sides,
thin days that fall to the window and carries that go stale; under several sets of parameters.

The reference is ``methodology.assess`` and ``methodology.cell_value``, day after day for each series,
as ``indices._Cells`` runs them (the database-level comparison with the daily close is in
``test_indices_rebuild``)."""

from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pricing import index_vector as iv
from pricing import methodology as m

# Two pairs (category, county): the first counts in series 0 and 1, the second in series 1 and 2.
PAIR_CATEGORY = ["ferrous.heavy", "ferrous.medium"]
PAIR_SERIES = [(0, 1), (1, 2)]
SERIES_CATEGORY = ["ferrous.heavy", "ferrous", "ferrous.medium"]
PRICES = [
    Decimal(x)
    for x in ("2000.00", "2100.00", "1904.76", "1900.00", "2050.50", "800.00", "4400.00", "2000.01")
]
TONNES = [Decimal(x) for x in ("1.000", "1.000", "2.000", "0.500", "3.250", "10.000")]
PARAMS = [
    m.Params(),
    m.Params(share_basis=m.ShareBasis.PER_SIDE, max_share=Decimal("0.6")),
    m.Params(
        outlier_min_n=3, min_cell_tonnes={"ferrous": Decimal("4.5")}, min_lot_tonnes={"ferrous.heavy": "1"}
    ),
    m.Params(window_days=3, stale_after=2, liquidity_min_n=2, min_buyers=1, min_sellers=1, floor_pct="0.02"),
    m.Params(vat_included=False),
]
FIRST = date(2026, 3, 2)  # a Monday
SH = m.SHANGHAI

trade = st.tuples(
    st.integers(0, 1),  # pair
    st.integers(0, 3),  # seller
    st.integers(0, 3),  # buyer (the same index is the same organisation)
    st.sampled_from(TONNES),
    st.sampled_from(PRICES),
    st.sampled_from([False, False, False, False, True]),  # voided
)
days_strategy = st.lists(st.lists(trade, max_size=14), min_size=1, max_size=16)


def business_days(n: int, p: m.Params) -> list[date]:
    out, d = [], FIRST
    while len(out) < n:
        if m.is_business_day(d, p.holidays):
            out.append(d)
        d += timedelta(days=1)
    return out


def org(i: int) -> str:
    return f"ORG{i:015d}"


def reference(days: list[date], trades_by_day: list[list[tuple]], p: m.Params) -> list[dict]:
    """Each day's cells {series: CellValue} by the methodology, series by series."""
    memo = {s: {} for s in range(len(SERIES_CATEGORY))}
    previous: dict[int, m.CellValue] = {}
    out = []
    for i, (d, trades) in enumerate(zip(days, trades_by_day, strict=True)):
        by_series = {s: [] for s in memo}
        for j, (pair, seller, buyer, q, price, voided) in enumerate(trades):
            t = m.Trade(
                trade_id=f"{i}:{j}", quantity_t=q, unit_price=price, seller=org(seller), buyer=org(buyer),
                awarded_at=datetime.combine(d, time(10), tzinfo=SH), category=PAIR_CATEGORY[pair], voided=voided,
            )  # fmt: skip
            for s in PAIR_SERIES[pair]:
                by_series[s].append(t)
        cells = {}
        for s, category in enumerate(SERIES_CATEGORY):
            memo[s][d] = m.assess(by_series[s], p)
            cell = m.cell_value(d, (), previous.get(s), p, category=category, assessed_days=memo[s])
            if cell.status is not None:
                cells[s] = cell
        previous = cells
        out.append(cells)
    return out


def q(value: Decimal | None, places: str) -> Decimal | None:
    return None if value is None else value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def vector(days: list[date], trades_by_day: list[list[tuple]], p: m.Params) -> tuple[list[dict], int]:
    engine = iv.VectorCells(p, PAIR_CATEGORY, PAIR_SERIES, SERIES_CATEGORY)
    out = []
    for i, (d, trades) in enumerate(zip(days, trades_by_day, strict=True)):
        columns = list(zip(*trades, strict=True)) if trades else [()] * 6
        facts = iv.DayFacts(
            pair=np.array(columns[0], np.int32), seller=np.array(columns[1], np.int32),
            buyer=np.array(columns[2], np.int32), q=np.array([int(x * 1000) for x in columns[3]], np.int64),
            p=np.array([int(x * 100) for x in columns[4]], np.int64), voided=np.array(columns[5], bool),
        )  # fmt: skip
        cells = engine.close(i, d, facts, max(0, i - p.window_days + 1))
        price = cells.price_micro()
        day = {}
        for j, s in enumerate(cells.series.tolist()):
            day[s] = {
                "status": iv.STATUS[int(cells.status[j])],
                "price": Decimal(int(price[j])).scaleb(-6),
                "n": int(cells.n[j]),
                "tonnes": Decimal(int(cells.tonnes[j])).scaleb(-3),
                "amount": q(Decimal(int(cells.amount[j])).scaleb(-5), "0.01"),
                "day_amount": q(Decimal(int(cells.day_amount[j])).scaleb(-5), "0.01"),
                "min_price": Decimal(int(cells.min_price[j])).scaleb(-2) if cells.min_price[j] >= 0 else None,
                "max_price": Decimal(int(cells.max_price[j])).scaleb(-2) if cells.max_price[j] >= 0 else None,
                "excluded": int(cells.excluded[j]),
                "days_carried": int(cells.days_carried[j]),
                "carried_from": date.fromordinal(int(cells.carried_from[j]))
                if cells.carried_from[j]
                else None,
            }
        out.append(day)
    return out, engine.decimal_cells


def expected(cell: m.CellValue) -> dict:
    return {
        "status": cell.status, "price": q(cell.price, "0.000001"), "n": cell.n, "tonnes": q(cell.tonnes, "0.001"),
        "amount": q(cell.amount, "0.01"), "day_amount": q(cell.day_amount, "0.01"), "min_price": cell.min_price,
        "max_price": cell.max_price, "excluded": cell.excluded, "days_carried": cell.days_carried,
        "carried_from": cell.carried_from,
    }  # fmt: skip


def assert_same(trades_by_day, p: m.Params) -> int:
    days = business_days(len(trades_by_day), p)
    ref = reference(days, trades_by_day, p)
    got, decided_in_decimal = vector(days, trades_by_day, p)
    for d, r, g in zip(days, ref, got, strict=True):
        assert set(g) == set(r), (d, "series with a value")
        for s, cell in r.items():
            assert g[s] == expected(cell), (d, s)
    return decided_in_decimal


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(days_strategy, st.sampled_from(range(len(PARAMS))))
def test_the_set_wise_cells_are_the_methodologys(trades_by_day, which):
    assert_same(trades_by_day, PARAMS[which])


def test_a_price_exactly_on_the_floor_of_rule_2_is_decided_in_decimal():
    # Median 2000.00 by weight; 2100.00 is exactly 5 % above it: |ln 2100 - ln 2000| = ln 1.05, the
    # floor, which is not an outlier (only a deviation above the threshold is). 4400.00 is one.
    day = [(0, k, 3 + k, Decimal("2.000"), Decimal("2000.00"), False) for k in range(5)]
    day += [
        (0, 0, 1, Decimal("1.000"), Decimal("2100.00"), False),
        (0, 1, 2, Decimal("1.000"), Decimal("4400.00"), False),
    ]
    assert assert_same([day, day], m.Params()) > 0
    got, _ = vector(business_days(1, m.Params()), [day], m.Params())
    assert got[0][0]["excluded"] == 1 and got[0][0]["max_price"] == Decimal("2100.00")


def test_a_median_exactly_between_two_prices_and_a_share_exactly_at_the_maximum():
    # Equal weights on 4 prices: the median is the midpoint of the middle two; organisation 0 is party
    # to exactly half the tonnes (passes), then to more than half (fails: the window, then the carry).
    half = [
        (0, 0, 1, Decimal("1.000"), Decimal("2000.00"), False),
        (0, 2, 3, Decimal("1.000"), Decimal("2050.50"), False),
        (0, 0, 3, Decimal("1.000"), Decimal("1900.00"), False),
        (0, 2, 1, Decimal("1.000"), Decimal("2000.01"), False),
    ]
    more = [*half[:3], (0, 0, 1, Decimal("1.000"), Decimal("2000.01"), False)]
    assert_same([half, more, [], more], m.Params(outlier_min_n=4))
    # 1900.00 holds exactly half the tonnes: the median is midway (in ln) between 1900.00 and 2100.00,
    # about 1997.5, and 2450.00 is within 4.4478 MADs of it; from 1900.00 it would be an outlier.
    mid = [
        (0, 0, 1, Decimal("2.000"), Decimal("1900.00"), False),
        (0, 2, 3, Decimal("1.000"), Decimal("2100.00"), False),
        (0, 4, 5, Decimal("1.000"), Decimal("2450.00"), False),
    ]
    assert_same([mid], m.Params(outlier_min_n=3))
    got, _ = vector(business_days(1, m.Params()), [mid], m.Params(outlier_min_n=3))
    assert got[0][0]["excluded"] == 0 and got[0][0]["max_price"] == Decimal("2450.00")


def test_orders_by_one_sort_of_keys_by_radix_passes_or_by_lexsort_where_keys_do_not_fit():
    rng = np.random.default_rng(7)
    series = rng.integers(0, 50, 2000)
    price = rng.integers(1, 10_000, 2000)
    by_index = np.lexsort((np.arange(2000), price, series))  # (series, price), then index

    def ordered(order) -> bool:
        pairs = list(zip(series[order].tolist(), price[order].tolist(), strict=True))
        return sorted(pairs) == pairs and sorted(order.tolist()) == list(range(len(series)))

    assert np.array_equal(iv._packed_order([series, price]), by_index)
    assert np.array_equal(iv._radix_order([series, price]), by_index)
    assert ordered(iv._by_series_price(series, price))
    # Beyond 16 bits no radix passes; beyond 63 bits with the index no single key; the lexsort.
    price[3] = 1 << 41
    assert iv._radix_order([series, price]) is None
    assert np.array_equal(iv._packed_order([series, price]), np.lexsort((np.arange(2000), price, series)))
    price[3] = 1 << 55
    assert iv._packed_order([series, price]) is None
    assert np.array_equal(iv._order([series, price]), np.lexsort((np.arange(2000), price, series)))
    assert ordered(iv._by_series_price(series, price))
    assert iv._by_series_price(series[:0], price[:0]).size == 0

    # Deviations ordered within consecutive groups, by a radix pass over 16-bit groups or the lexsort.
    group = np.sort(rng.integers(0, 40, 2000))
    dev = np.round(rng.random(2000), 2)  # ties within a group: any order among them
    for offset in (0, 1 << 16):
        order = iv._within_groups(group + offset, dev)
        assert sorted(order.tolist()) == list(range(2000))
        assert np.array_equal(group[order], group)
        assert np.array_equal(dev[order], dev[np.lexsort((dev, group))])


class _Engine:
    """What ``VectorCells._organisations`` reads of its engine."""

    def __init__(self, S: int, basis: m.ShareBasis):
        self.S, self.p = S, m.Params(share_basis=basis)


def test_organisations_per_series_are_the_same_by_radix_by_one_key_or_by_lexsort():
    rng = np.random.default_rng(11)
    n, S = 3000, 30
    s = np.sort(rng.integers(0, S, n)).astype(np.int64)
    seller, buyer = rng.integers(0, 25, n), rng.integers(0, 25, n)
    buyer[::17] = seller[::17]  # one organisation on both sides of a trade
    q = rng.integers(1, 5000, n).astype(np.int64)
    series = np.unique(s)
    for basis in m.ShareBasis:
        expected = None
        for offset in (0, 1 << 16, 1 << 50):  # radix passes, one sort of keys, the lexsort
            kept = iv._Kept(s, seller + offset, buyer + offset, q, q * 100, q)
            got = iv.VectorCells._organisations(_Engine(S, basis), kept, series)
            if expected is None:
                expected = [[], [], []]
                for x in series.tolist():
                    mine = s == x
                    expected[0].append(len(set(seller[mine].tolist())))
                    expected[1].append(len(set(buyer[mine].tolist())))
                    sold, bought = {}, {}
                    for a, b, t in zip(
                        seller[mine].tolist(), buyer[mine].tolist(), q[mine].tolist(), strict=True
                    ):
                        sold[a] = sold.get(a, 0) + t
                        bought[b] = bought.get(b, 0) + t
                    orgs = sold.keys() | bought.keys()
                    if basis is m.ShareBasis.COMBINED:
                        expected[2].append(max(sold.get(o, 0) + bought.get(o, 0) for o in orgs))
                    else:
                        expected[2].append(max(max(sold.get(o, 0), bought.get(o, 0)) for o in orgs))
            assert [g.tolist() for g in got] == expected, (basis, offset)
