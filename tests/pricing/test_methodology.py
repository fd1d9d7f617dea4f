"""The index methodology (METHODOLOGY.md) as pure functions: hand-computed cases and properties.

No database: every test builds plain ``Trade`` values. Expected numbers are worked out in the
comments so a reader can check them with pencil and paper (logarithms to 6 places).
"""

import json
import math
import statistics
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, localcontext

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pricing import methodology as m
from pricing.methodology import (
    CellValue,
    CorrectionOutcome,
    Illiquid,
    Params,
    Reason,
    ShareBasis,
    Status,
    Trade,
)

SH = m.SHANGHAI
P = Params()
CAT = "ferrous.heavy"


def at(day: int, hour: int = 10, minute: int = 0, month: int = 3, year: int = 2026) -> datetime:
    """A Shanghai time (default March 2026: Monday 2nd, Friday 6th, Monday 9th ...)."""
    return datetime(year, month, day, hour, minute, tzinfo=SH)


def tr(tid, q, p, seller, buyer, when=None, **kw) -> Trade:
    return Trade(
        trade_id=tid,
        quantity_t=Decimal(str(q)),
        unit_price=Decimal(str(p)),
        awarded_at=when or at(2),
        seller=seller,
        buyer=buyer,
        category=kw.pop("category", CAT),
        **kw,
    )


def close(a: Decimal, b, eps: str = "1e-30") -> bool:
    with localcontext(prec=60):
        return abs(Decimal(a) - Decimal(b)) <= Decimal(eps)


def exact(numerator, denominator) -> Decimal:
    """numerator / denominator at the module's precision (what the module computes)."""
    with localcontext(prec=m.PRECISION):
        return Decimal(numerator) / Decimal(denominator)


# ------------------------------------------------------------------------------------------------
# Calendar and cut-off


def test_friday_1631_counts_on_monday_and_the_cutoff_is_exclusive():
    assert date(2026, 3, 6).weekday() == 4  # Friday
    assert m.business_day_of(at(6, 16, 31), P) == date(2026, 3, 9)  # after 16:30 -> Monday
    assert m.business_day_of(at(6, 16, 29), P) == date(2026, 3, 6)  # before -> Friday itself
    assert m.business_day_of(at(6, 16, 30), P) == date(2026, 3, 9)  # 16:30:00 is not "before" 16:30
    # 08:31 UTC is 16:31 in Shanghai (UTC+8): the zone of the input does not matter.
    assert m.business_day_of(datetime(2026, 3, 6, 8, 31, tzinfo=UTC), P) == date(2026, 3, 9)
    # Saturday morning -> Monday, whatever the time.
    assert m.business_day_of(at(7, 9), P) == date(2026, 3, 9)


def test_holiday_is_skipped():
    # Qingming 2026: Monday 6 April a public holiday. Friday 3 April 16:45 -> Tuesday 7 April.
    params = Params(holidays={date(2026, 4, 6)})
    assert m.business_day_of(at(3, 16, 45, month=4), params) == date(2026, 4, 7)
    assert m.business_day_of(at(6, 10, 0, month=4), params) == date(2026, 4, 7)  # award on the holiday
    assert not m.is_business_day(date(2026, 4, 6), params.holidays)
    # Without the holiday the same award counts on the Monday.
    assert m.business_day_of(at(3, 16, 45, month=4), P) == date(2026, 4, 6)


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        m.business_day_of(datetime(2026, 3, 2, 10), P)
    with pytest.raises(ValueError):
        tr("x", 1, 1, "A", "B", when=datetime(2026, 3, 2, 10))


def test_business_day_arithmetic():
    hol = {date(2026, 4, 6)}
    # (Mon 2 Mar, Fri 6 Mar] = Tue..Fri = 4; (Fri, next Mon] = 1; same day = 0; backwards negative.
    assert m.business_days_between(date(2026, 3, 2), date(2026, 3, 6)) == 4
    assert m.business_days_between(date(2026, 3, 6), date(2026, 3, 9)) == 1
    assert m.business_days_between(date(2026, 3, 6), date(2026, 3, 6)) == 0
    assert m.business_days_between(date(2026, 3, 9), date(2026, 3, 6)) == -1
    # (Fri 3 Apr, Tue 7 Apr] with Monday a holiday: only Tuesday.
    assert m.business_days_between(date(2026, 4, 3), date(2026, 4, 7), hol) == 1
    assert m.previous_business_days(date(2026, 3, 9), 3) == [
        date(2026, 3, 4),
        date(2026, 3, 5),
        date(2026, 3, 6),
    ]
    # The E window d-4 .. d for Tuesday 7 April with the Monday holiday: Tue 31 Mar .. Tue 7 Apr.
    assert m.business_window(date(2026, 4, 7), 5, hol) == [
        date(2026, 3, 31),
        date(2026, 4, 1),
        date(2026, 4, 2),
        date(2026, 4, 3),
        date(2026, 4, 7),
    ]
    with pytest.raises(ValueError):
        m.business_window(date(2026, 3, 7), 5)  # a Saturday
    assert m.add_business_days(date(2026, 4, 2), 2, hol) == date(2026, 4, 7)
    assert m.add_business_days(date(2026, 4, 7), -1, hol) == date(2026, 4, 3)
    # Link day of 2026: last business day of 2025 = Wednesday 31 December 2025.
    assert m.link_day(2026) == date(2025, 12, 31)
    assert m.link_day(2026, {date(2025, 12, 31)}) == date(2025, 12, 30)


def test_a_trade_settled_after_its_award_day_closed_counts_on_its_settlement_day():
    # Awarded Monday 10:00; settled Wednesday 11:00 -> Monday was closed at 16:30 -> Wednesday.
    late = tr("late", 10, 2400, "A", "X", when=at(2, 10), settled_at=at(4, 11))
    assert m.counting_day(late, P) == date(2026, 3, 4)
    # Settled Monday 15:00 (before the cut-off): Monday, the award day.
    same_day = tr("same", 10, 2400, "A", "X", when=at(2, 10), settled_at=at(2, 15))
    assert m.counting_day(same_day, P) == date(2026, 3, 2)
    # Settled Monday 17:00: after the close -> Tuesday.
    evening = tr("eve", 10, 2400, "A", "X", when=at(2, 10), settled_at=at(2, 17))
    assert m.counting_day(evening, P) == date(2026, 3, 3)


# ------------------------------------------------------------------------------------------------
# Eligibility


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"voided": True}, Reason.VOIDED),
        ({"settled": False}, Reason.NOT_SETTLED),
        ({"unit_converts": False}, Reason.UNIT_NOT_CONVERTIBLE),
        ({"vat_included": False}, Reason.VAT_BASIS),
        ({"buyer": "A"}, Reason.SAME_ORGANISATION),
        ({"linked": True}, Reason.LINKED),
        ({"quantity": "4.999"}, Reason.BELOW_MIN_LOT),
        ({"quantity": "0"}, Reason.NON_POSITIVE),
    ],
)
def test_ineligible_trades_and_their_reasons(overrides, reason):
    params = Params(min_lot_tonnes={"ferrous": Decimal(5)})  # ferrous.heavy inherits from ferrous
    quantity = overrides.pop("quantity", "10")
    buyer = overrides.pop("buyer", "X")
    ok, why = m.eligible(tr("t", quantity, 2400, "A", buyer, **overrides), params)
    assert not ok
    assert why.code == reason


def test_eligible_trade_and_min_lot_boundary():
    params = Params(min_lot_tonnes={"ferrous": Decimal(5), "ferrous.turnings": Decimal(20)})
    assert m.eligible(tr("t", "5.000", 2400, "A", "X"), params) == (True, None)  # q >= min lot
    assert params.min_lot_for("ferrous.turnings") == 20
    assert params.min_lot_for("paper.occ") == 0  # no entry, no ancestor: the default
    assert not m.eligible(tr("t", 19, 2400, "A", "X", category="ferrous.turnings"), params)[0]


def test_params_audit_is_json():
    params = Params(holidays={date(2026, 10, 1)}, min_cell_tonnes={"ferrous": Decimal(100)})
    audit = params.as_audit()
    assert json.loads(json.dumps(audit))["min_cell_tonnes"] == {"ferrous": "100"}
    assert audit["mad_factor"] == "4.4478"  # 3 * 1.4826
    assert audit["methodology_version"] == m.METHODOLOGY_VERSION


def test_floats_are_refused():
    with pytest.raises(TypeError):
        Trade("t", 1.5, Decimal(1), at(2), "A", "X", CAT)


# ------------------------------------------------------------------------------------------------
# Weighted median and weighted price


def test_weighted_median_by_hand():
    d = Decimal
    # Equal weights, even count: cumulative 1, 2 = W/2 exactly at 2 -> midpoint (2 + 3) / 2 = 2.5.
    assert m.weighted_median([(d(1), d(1)), (d(2), d(1)), (d(3), d(1)), (d(4), d(1))]) == d("2.5")
    # Weights 1, 1, 3 (W = 5, W/2 = 2.5): cumulative 1, 2, 5 -> first above 2.5 is 3.
    assert m.weighted_median([(d(1), d(1)), (d(2), d(1)), (d(3), d(3))]) == 3
    # Weights 1, 1, 2 (W/2 = 2): cumulative 1, 2 -> exactly half at 2 -> midpoint (2 + 3) / 2.
    assert m.weighted_median([(d(1), d(1)), (d(2), d(1)), (d(3), d(2))]) == d("2.5")
    # Ties pooled: 5 (1 + 1 = 2), 7 (2); W/2 = 2 reached exactly at 5 -> (5 + 7) / 2 = 6.
    assert m.weighted_median([(d(7), d(2)), (d(5), d(1)), (d(5), d(1))]) == 6
    # One heavy value dominates: 10 (weight 7) of W = 9 -> 10.
    assert m.weighted_median([(d(1), d(1)), (d(10), d(7)), (d(20), d(1))]) == 10
    with pytest.raises(ValueError):
        m.weighted_median([])


def test_weighted_price_by_hand():
    trades = [tr("a", 10, 2400, "A", "X"), tr("b", 20, 2450, "B", "Y"), tr("c", 30, 2500, "C", "Z")]
    # (10*2400 + 20*2450 + 30*2500) / 60 = (24000 + 49000 + 75000) / 60 = 148000 / 60 = 2466.666...
    price = m.weighted_price(trades)
    assert price == exact(148000, 60)
    assert m.publish(price) == Decimal("2466.67")  # rounded only at publication


# ------------------------------------------------------------------------------------------------
# Outliers (rule 2)


def test_six_trade_cell_excludes_the_wild_price():
    # Six trades of 10 t: 2400, 2400, 2450, 2450, 2500 and a wild 3500.
    trades = [
        tr("1", 10, 2400, "A", "X"),
        tr("2", 10, 2400, "B", "Y"),
        tr("3", 10, 2450, "C", "Z"),
        tr("4", 10, 2450, "D", "X"),
        tr("5", 10, 2500, "E", "Y"),
        tr("6", 10, 3500, "F", "Z"),
    ]
    # x sorted: ln2400, ln2400, ln2450, ln2450, ln2500, ln3500; W = 60, W/2 = 30 reached exactly at
    # the third (ln2450) -> m = (ln2450 + ln2450) / 2 = ln2450 (median price 2450).
    # |x - m|: ln(2450/2400) = 0.020619 (x2), 0 (x2), ln(2500/2450) = 0.020203, ln(3500/2450) = 0.356675.
    # Sorted: 0, 0, 0.020203, 0.020619, 0.020619, 0.356675; W/2 = 30 reached exactly at 0.020203
    # -> MAD = (0.020203 + 0.020619) / 2 = 0.020411.
    # Threshold = max(4.4478 * 0.020411, ln 1.05) = max(0.090784, 0.048790) = 0.090784.
    # Only 0.356675 > 0.090784: trade 6 is excluded.
    result = m.outliers(trades, P)
    assert result.applied and result.review == ()
    with localcontext(prec=m.PRECISION):
        assert result.median == Decimal(2450).ln()
    assert math.isclose(float(result.mad), 0.020411, abs_tol=1e-6)
    assert math.isclose(float(result.threshold), 0.090784, abs_tol=1e-6)
    assert close(result.median_price, 2450, "1e-40")
    assert set(result.excluded) == {"6"}
    assert result.excluded["6"].code == Reason.OUTLIER
    assert "3500" in result.excluded["6"].detail

    cell = m.cell_value(date(2026, 3, 2), trades, None, P, category=CAT)
    # P over the five kept: (2*2400 + 2*2450 + 2500) * 10 / 50 = 12200 / 5 = 2440.
    assert cell.status == Status.TRANSACTION
    assert cell.price == 2440
    assert (cell.n, cell.tonnes, cell.excluded) == (5, 50, 1)
    assert (cell.min_price, cell.max_price) == (2400, 2500)
    assert cell.used == ("1", "2", "3", "4", "5")
    assert cell.unused["6"].code == Reason.OUTLIER


def test_floor_of_five_percent_when_prices_agree():
    # Four trades at 1000 (40 t of 50 t) and one other: m = ln1000, MAD = 0 (40 of 50 t at 0), so the
    # threshold is ln 1.05. Exactly +5% (1050) is not above it (strict ">"); +6% (1060) is.
    base = [tr(str(i), 10, 1000, f"S{i}", f"B{i}") for i in range(4)]
    on_floor = m.outliers([*base, tr("x", 10, 1050, "S9", "B9")], P)
    assert on_floor.mad == 0 and on_floor.excluded == {}
    above = m.outliers([*base, tr("x", 10, 1060, "S9", "B9")], P)
    assert set(above.excluded) == {"x"}
    # -5% in log terms: 1000 / 1.05 = 952.38...; 952 is below it (ln(1000/952) = 0.049190 > 0.048790).
    assert set(m.outliers([*base, tr("x", 10, 952, "S9", "B9")], P).excluded) == {"x"}
    assert m.outliers([*base, tr("x", 10, 953, "S9", "B9")], P).excluded == {}  # ln(1000/953) = 0.048140


def test_fewer_than_five_trades_nothing_excluded_but_flagged():
    trades = [
        tr("1", 10, 2400, "A", "X"),
        tr("2", 10, 2450, "B", "Y"),
        tr("3", 10, 2500, "C", "Z"),
        tr("w", 10, 9999, "D", "W"),  # wild, but n = 4 < 5
    ]
    result = m.outliers(trades, P)
    assert not result.applied
    assert result.excluded == {}
    assert set(result.review) == {"1", "2", "3", "w"}
    cell = m.cell_value(date(2026, 3, 2), trades, None, P, category=CAT)
    # Used as it is: (24000 + 24500 + 25000 + 99990) / 40 = 173490 / 40 = 4337.25.
    assert cell.status == Status.TRANSACTION and cell.price == Decimal("4337.25")
    assert cell.excluded == 0 and set(cell.review) == {"1", "2", "3", "w"}
    # The operator reviews and excludes it: (24000 + 24500 + 25000) / 30 = 2450, one exclusion.
    reviewed = m.cell_value(
        date(2026, 3, 2), trades, None, P, category=CAT, operator_exclusions={"w": "price typed as 9999"}
    )
    assert reviewed.price == 2450 and reviewed.excluded == 1
    assert (
        reviewed.unused["w"].code == Reason.OPERATOR and reviewed.unused["w"].detail == "price typed as 9999"
    )


def test_ineligible_trades_do_not_count_towards_n():
    # Five trades, one voided: n = 4 eligible, so rule 2 is not applied and the four are flagged.
    trades = [tr(str(i), 10, 2400 + i, f"S{i}", f"B{i}") for i in range(4)]
    trades.append(tr("v", 10, 5000, "S9", "B9", voided=True))
    assessment = m.assess(trades, P)
    assert not assessment.outliers.applied
    assert assessment.unused["v"].code == Reason.VOIDED
    assert len(assessment.kept) == 4 and len(assessment.review) == 4


# ------------------------------------------------------------------------------------------------
# Liquidity (rule 3)


def test_liquidity_fails_with_one_dominant_seller():
    # A sells 60 of 100 t: 60% > 50%.
    trades = [tr("1", 60, 2400, "A", "X"), tr("2", 20, 2400, "B", "Y"), tr("3", 20, 2400, "C", "Z")]
    check = m.liquidity(trades, P, CAT)
    assert not check.ok
    assert check.reasons == (Illiquid.DOMINANT_ORGANISATION,)
    # A and X are both party to 60 t; the smaller id is reported.
    assert check.largest_org == "A" and check.largest_share == Decimal("0.6")
    assert not m.liquidity(trades, Params(share_basis=ShareBasis.PER_SIDE), CAT).ok


def test_liquidity_fails_with_one_buyer():
    trades = [tr("1", 10, 2400, "A", "X"), tr("2", 10, 2400, "B", "X"), tr("3", 10, 2400, "C", "X")]
    check = m.liquidity(trades, P, CAT)
    assert not check.ok
    assert Illiquid.TOO_FEW_BUYERS in check.reasons
    assert check.buyers == 1 and check.sellers == 3
    assert Illiquid.DOMINANT_ORGANISATION in check.reasons  # X is party to 100% of the tonnes


def test_liquidity_counts_an_organisation_on_both_sides_together():
    # M sells 30 t to X and buys 30 t from N (of 100 t): M is party to 60 t = 60% -> fails by
    # default; per side M has 30% as seller and 30% as buyer -> passes.
    trades = [
        tr("1", 30, 2400, "M", "X"),
        tr("2", 30, 2400, "N", "M"),
        tr("3", 20, 2400, "P", "Y"),
        tr("4", 20, 2400, "Q", "Z"),
    ]
    combined = m.liquidity(trades, P, CAT)
    assert combined.reasons == (Illiquid.DOMINANT_ORGANISATION,)
    assert combined.largest_org == "M" and combined.largest_share == Decimal("0.6")
    per_side = m.liquidity(trades, Params(share_basis=ShareBasis.PER_SIDE), CAT)
    assert per_side.ok and per_side.largest_share == Decimal("0.3")


def test_liquidity_boundaries():
    # A and X each party to 20 of 40 t: exactly 50% is not "more than 50%".
    trades = [tr("1", 20, 2400, "A", "X"), tr("2", 10, 2400, "B", "Y"), tr("3", 10, 2400, "C", "Z")]
    assert m.liquidity(trades, P, CAT).ok
    # Two trades only.
    assert m.liquidity(trades[:2], P, CAT).reasons[0] == Illiquid.TOO_FEW_TRADES
    # min_cell_tonnes for the category node: 40 t < 100 t.
    params = Params(min_cell_tonnes={"ferrous": Decimal(100)})
    check = m.liquidity(trades, params, CAT)
    assert check.reasons == (Illiquid.TOO_FEW_TONNES,) and check.min_tonnes == 100
    assert m.liquidity(trades, Params(min_cell_tonnes={"ferrous": Decimal(40)}), CAT).ok


# ------------------------------------------------------------------------------------------------
# The status ladder T / E / C / S


def _ladder_run():
    """Every business day from Mon 2 to Tue 24 March 2026, each cell chained to the previous one."""
    trades = [
        # Monday 2nd: three trades, 35 t -> T.
        tr("m1", 10, 2400, "A", "X", when=at(2, 9)),
        tr("m2", 10, 2450, "B", "Y", when=at(2, 10)),
        tr("m3", 15, 2500, "C", "Z", when=at(2, 11)),
        # Tuesday 3rd: one trade -> the day fails rule 3, the window passes -> E.
        tr("t1", 10, 2480, "A", "Y", when=at(3, 10)),
        # Tuesday 24th: three trades -> T again.
        tr("r1", 10, 2600, "A", "X", when=at(24, 9)),
        tr("r2", 10, 2600, "B", "Y", when=at(24, 10)),
        tr("r3", 10, 2700, "C", "Z", when=at(24, 11)),
    ]
    cells: dict[date, CellValue] = {}
    previous = None
    day = date(2026, 3, 2)
    while day <= date(2026, 3, 24):
        previous = cells[day] = m.cell_value(day, trades, previous, P, category=CAT)
        day = m.next_business_day(day)
    return cells


def test_ladder_T():
    cell = _ladder_run()[date(2026, 3, 2)]
    # (10*2400 + 10*2450 + 15*2500) / 35 = (24000 + 24500 + 37500) / 35 = 86000 / 35 = 2457.142857...
    assert cell.status == Status.TRANSACTION
    assert cell.price == exact(86000, 35) and cell.published_price == Decimal("2457.14")
    assert (cell.n, cell.tonnes, cell.min_price, cell.max_price) == (3, 35, 2400, 2500)
    assert cell.used == ("m1", "m2", "m3") and cell.days_carried == 0
    assert cell.day_amount == 86000


def test_ladder_E():
    cells = _ladder_run()
    cell = cells[date(2026, 3, 3)]
    # Day: one trade (fails). Window Wed 25 Feb .. Tue 3 Mar: m1, m2, m3, t1 = 45 t, 3 buyers, 3
    # sellers, largest party A or Y with 20 of 45 t = 44% -> holds.
    # P = (86000 + 10*2480) / 45 = 110800 / 45 = 2462.222...
    assert cell.status == Status.WINDOW
    assert Illiquid.TOO_FEW_TRADES in cell.day_liquidity.reasons and cell.window_liquidity.ok
    assert cell.price == exact(110800, 45) and cell.published_price == Decimal("2462.22")
    assert (cell.n, cell.tonnes, cell.min_price, cell.max_price) == (4, 45, 2400, 2500)
    assert set(cell.used) == {"m1", "m2", "m3", "t1"}
    assert cell.window[0] == date(2026, 2, 25) and cell.window[-1] == date(2026, 3, 3)
    assert cell.day_n == 1 and cell.day_amount == 24800
    # Wed 4 .. Fri 6: no trades but the window still holds Monday's and Tuesday's -> E, same P.
    for d in (4, 5, 6):
        assert cells[date(2026, 3, d)].status == Status.WINDOW
        assert cells[date(2026, 3, d)].price == exact(110800, 45)


def test_ladder_C():
    cells = _ladder_run()
    cell = cells[date(2026, 3, 9)]
    # Window Tue 3 .. Mon 9: only t1 -> fails; carry Friday's P.
    assert cell.status == Status.CARRIED
    assert cell.price == exact(110800, 45)
    assert (cell.n, cell.tonnes, cell.min_price, cell.max_price, cell.used) == (0, 0, None, None, ())
    assert cell.days_carried == 1 and cell.carried_from == date(2026, 3, 6)


def test_ladder_S_after_ten_consecutive_C_days_and_T_resets():
    cells = _ladder_run()
    carried = [c for c in cells.values() if c.status == Status.CARRIED]
    # C on Mon 9 .. Fri 20 March: 10 business days, numbered 1 .. 10.
    assert [c.day for c in carried] == [date(2026, 3, d) for d in (9, 10, 11, 12, 13, 16, 17, 18, 19, 20)]
    assert [c.days_carried for c in carried] == list(range(1, 11))
    stale = cells[date(2026, 3, 23)]  # the 11th consecutive day
    assert stale.status == Status.STALE and stale.days_carried == 11
    assert stale.price == exact(110800, 45) and stale.carried_from == date(2026, 3, 6)
    back = cells[date(2026, 3, 24)]
    # (2600*10 + 2600*10 + 2700*10) / 30 = 79000 / 30 = 2633.33...
    assert back.status == Status.TRANSACTION and back.days_carried == 0
    assert back.price == exact(79000, 30)


def test_no_value_before_the_first_transaction_based_day():
    cell = m.cell_value(date(2026, 3, 2), [tr("1", 10, 2400, "A", "X")], None, P, category=CAT)
    assert cell.status is None and cell.price is None and cell.published_price is None
    assert cell.unused["1"].code == Reason.NOT_LIQUID


def test_previous_value_must_be_the_previous_business_day():
    first = m.cell_value(date(2026, 3, 2), [], None, P, category=CAT)
    with pytest.raises(ValueError):
        m.cell_value(date(2026, 3, 4), [], first, P, category=CAT)
    with pytest.raises(ValueError):
        m.cell_value(date(2026, 3, 7), [], None, P, category=CAT)  # Saturday


def test_window_pools_each_days_own_outlier_decisions():
    # Monday: five trades, one wild (3000 vs 2400) excluded on Monday. Tuesday: one trade.
    monday = [tr(f"m{i}", 10, 2400, f"S{i}", f"B{i}", when=at(2)) for i in range(4)]
    monday.append(tr("wild", 10, 3000, "S9", "B9", when=at(2)))
    tuesday = [tr("t", 10, 2410, "S5", "B5", when=at(3))]
    mon = m.cell_value(date(2026, 3, 2), monday + tuesday, None, P, category=CAT)
    assert mon.status == Status.TRANSACTION and mon.excluded == 1
    tue = m.cell_value(date(2026, 3, 3), monday + tuesday, mon, P, category=CAT)
    # E over Monday's four kept and Tuesday's one: (4*24000 + 24100) / 50 = 120100 / 50 = 2402.
    assert tue.status == Status.WINDOW and tue.price == 2402
    assert tue.excluded == 1 and tue.unused["wild"].code == Reason.OUTLIER


# ------------------------------------------------------------------------------------------------
# Base period and index level


def test_base_period_first_full_month_with_a_T_in_every_business_week():
    holidays = {date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 4), date(2026, 5, 5)}
    params = Params(holidays=holidays)
    t_days = {
        # March (starts Wed 4th: not full, Mon 2 and Tue 3 are missing).
        date(2026, 3, 4),
        date(2026, 3, 10),
        date(2026, 3, 17),
        date(2026, 3, 24),
        date(2026, 3, 31),
        # April: ISO weeks 14 (Wed 1 .. Fri 3), 15, 16, 17, 18 (Mon 27 .. Thu 30); week 16 has no T.
        date(2026, 4, 2),
        date(2026, 4, 8),
        date(2026, 4, 22),
        date(2026, 4, 28),
        # May: week 18 in May is Fri 1 only, a holiday -> nothing required; week 19 is Wed 6 .. Fri 8
        # (4 and 5 holidays); weeks 20, 21, 22 (Mon 25 .. Fri 29; Sun 31 is no business day).
        date(2026, 5, 6),
        date(2026, 5, 13),
        date(2026, 5, 20),
        date(2026, 5, 27),
    }
    statuses = {}
    d = date(2026, 3, 4)
    while d <= date(2026, 6, 5):
        if m.is_business_day(d, holidays):
            statuses[d] = Status.TRANSACTION if d in t_days else Status.CARRIED
        d += timedelta(days=1)
    assert m.base_period(statuses, params) == (date(2026, 5, 1), date(2026, 5, 31))
    # With a T in April's week 16 April qualifies.
    statuses[date(2026, 4, 15)] = Status.TRANSACTION
    assert m.base_period(statuses, params) == (date(2026, 4, 1), date(2026, 4, 30))
    # The in-month part of week 14 (Wed 1 .. Fri 3 April) counts as a business week of its own.
    statuses[date(2026, 4, 2)] = Status.WINDOW  # E is not transaction-based
    assert m.base_period(statuses, params) == (date(2026, 5, 1), date(2026, 5, 31))
    # June is not complete (only up to the 5th): never chosen.
    assert m.base_period({k: v for k, v in statuses.items() if k.month != 5}, params) is None


def test_base_price_and_index_level_by_hand():
    # Two T days: 30 t for 73500 yuan (P = 2450) and 10 t for 25500 (P = 2550); one E day ignored.
    d1 = m.cell_value(
        date(2026, 3, 2),
        [tr("a", 10, 2400, "A", "X"), tr("b", 10, 2450, "B", "Y"), tr("c", 10, 2500, "C", "Z")],
        None,
        P,
    )
    d2 = m.cell_value(
        date(2026, 3, 3),
        [
            tr("d", "2.5", 2550, "A", "X", when=at(3)),
            tr("e", 5, 2550, "B", "Y", when=at(3)),
            tr("f", "2.5", 2550, "C", "Z", when=at(3)),
        ],
        d1,
        P,
    )
    assert (d1.status, d2.status) == (Status.TRANSACTION, Status.TRANSACTION)
    # P_B = (73500 + 25500) / 40 = 99000 / 40 = 2475.
    assert m.base_price([d1, d2]) == 2475
    # I = 1000 * 2450 / 2475 = 989.8989...; 1000 * 2550 / 2475 = 1030.3030...
    assert m.publish(d1.index(Decimal(2475))) == Decimal("989.90")
    assert m.publish(m.index_level(Decimal(2550), Decimal(2475))) == Decimal("1030.30")
    # Tonnes-weighted mean of the levels: (30 * 989.8989... + 10 * 1030.3030...) / 40 = 1000.
    with localcontext(prec=50):
        mean = (30 * d1.index(Decimal(2475)) + 10 * d2.index(Decimal(2475))) / 40
    assert close(mean, 1000)


# ------------------------------------------------------------------------------------------------
# Composites


def test_composite_chained_over_a_year_end():
    # First year (2025): weights from the base period January 2025, V_A = 600 000, V_B = 400 000
    # -> s = 0.6, 0.4; base prices P_A(B) = 2000, P_B(B) = 50 000; C(B) = 1000.
    w_2025 = m.composite_weights({"A": Decimal(600_000), "B": Decimal(400_000)})
    assert w_2025 == {"A": Decimal("0.6"), "B": Decimal("0.4")}
    base = {"A": Decimal(2000), "B": Decimal(50_000)}
    # 2 June 2025: both +5% -> 1000 * (0.6 * 1.05 + 0.4 * 1.05) = 1050.
    june = m.composite_value(Decimal(1000), w_2025, {"A": Decimal(2100), "B": Decimal(52_500)}, base)
    assert june.value == 1050
    # Link day L = 31 Dec 2025: both +10% -> C(L) = 1000 * (0.6 * 1.1 + 0.4 * 1.1) = 1100.
    link = m.link_day(2026)
    assert link == date(2025, 12, 31)
    at_link = {"A": Decimal(2200), "B": Decimal(55_000)}
    c_link = m.composite_value(Decimal(1000), w_2025, at_link, base)
    assert c_link.value == 1100
    # 2026 weights from 2025's traded values: V_A = 3 000 000, V_B = 9 000 000 -> 0.25, 0.75.
    w_2026 = m.composite_weights({"A": Decimal(3_000_000), "B": Decimal(9_000_000)})
    assert w_2026 == {"A": Decimal("0.25"), "B": Decimal("0.75")}
    # Continuity: C(L) in the new period = 1100 * (0.25 * 1 + 0.75 * 1) = 1100, the old value.
    assert m.composite_value(c_link.value, w_2026, at_link, at_link).value == c_link.value
    # Mon 5 Jan 2026: A +10% since L (2420), B flat (55 000):
    # C = 1100 * (0.25 * 1.1 + 0.75 * 1) = 1100 * 1.025 = 1127.5;
    # contributions: A 1100 * 0.25 * 1.1 = 302.5, B 1100 * 0.75 * 1 = 825; 302.5 + 825 = 1127.5.
    jan = m.composite_value(c_link.value, w_2026, {"A": Decimal(2420), "B": Decimal(55_000)}, at_link)
    assert jan.value == Decimal("1127.5")
    assert dict(jan.contributions) == {"A": Decimal("302.5"), "B": Decimal(825)}
    assert sum(jan.contributions.values()) == jan.value
    assert jan.relatives == {"A": Decimal("1.1"), "B": 1}
    # (Unchained, the 2025 weights would have given 1000 * (0.6 * 1.21 + 0.4 * 1.1) = 1166.)


def test_composite_imputes_a_stale_component():
    weights = {"north": Decimal("0.5"), "south": Decimal("0.5")}
    link = {"north": Decimal(2000), "south": Decimal(2400)}
    prices = {"north": Decimal(2100), "south": Decimal(2400)}  # south's price is a stale carry
    with pytest.raises(ValueError):
        m.composite_value(Decimal(1000), weights, prices, link, statuses={"south": Status.STALE})
    # The category's liquid regions moved +2% and +4% since L, weighted 1:3 ->
    # (1 * 1.02 + 3 * 1.04) / 4 = 4.14 / 4 = 1.035.
    movement = m.category_movement(
        {"east": Decimal("1.02"), "west": Decimal("1.04")}, {"east": Decimal(1), "west": Decimal(3)}
    )
    assert movement == Decimal("1.035")
    value = m.composite_value(
        Decimal(1000), weights, prices, link, statuses={"south": Status.STALE}, imputed={"south": movement}
    )
    # 1000 * (0.5 * 2100/2000 + 0.5 * 1.035) = 1000 * (0.525 + 0.5175) = 1042.5.
    assert value.value == Decimal("1042.5") and value.imputed == {"south"}
    assert value.contributions["south"] == Decimal("517.5")


def test_published_contributions_add_up_to_the_published_value():
    # Three equal thirds of 1000: 333.333... each; rounded value 1000.00; the odd cent goes to one.
    third = m.composite_weights({"a": Decimal(1), "b": Decimal(1), "c": Decimal(1)})
    value = m.composite_value(
        Decimal(1000), third, dict.fromkeys(third, Decimal(1)), dict.fromkeys(third, Decimal(1))
    )
    published, parts = value.published()
    assert published == Decimal("1000.00")
    assert sorted(parts.values()) == [Decimal("333.33"), Decimal("333.33"), Decimal("333.34")]


def test_traded_value_sums_each_days_kept_trades():
    cells = _ladder_run()
    # Mon 2: 86000, Tue 3: 24800, Tue 24: 79000 -> 189 800 yuan (whatever the day's status).
    assert m.traded_value(cells.values()) == 189_800


# ------------------------------------------------------------------------------------------------
# Intraday indicative value


def test_indicative_follows_the_day_and_falls_back_to_the_previous_close():
    trades = [
        tr("1", 10, 2400, "A", "X", when=at(2, 9), settled_at=at(2, 9, 30)),
        tr("2", 10, 2500, "B", "Y", when=at(2, 10), settled_at=at(2, 10, 30)),
        tr("3", 20, 2450, "C", "Z", when=at(2, 11), settled_at=at(2, 11, 30)),
        tr("late", 10, 9000, "D", "W", when=at(2, 16, 45)),  # after the cut-off: Tuesday's
    ]
    day = date(2026, 3, 2)
    early = m.indicative(day, trades, Decimal("2430.00"), P, category=CAT, as_of=at(2, 10, 45))
    # Two trades by 10:45: fails rule 3 -> the previous official close.
    assert not early.live and early.price == Decimal("2430.00") and early.n == 2
    assert early.label == "indicative"
    later = m.indicative(day, trades, Decimal("2430.00"), P, category=CAT, as_of=at(2, 12))
    # (24000 + 25000 + 49000) / 40 = 98000 / 40 = 2450.
    assert later.live and later.price == 2450 and later.n == 3


# ------------------------------------------------------------------------------------------------
# Corrections


def test_correction_threshold_and_window():
    published_on = date(2026, 3, 2)  # Monday
    # 2452.45 vs 2450.00: 2.45 / 2450 = 0.001 exactly -> >= 0.1% -> correct (4 business days later).
    check = m.correction_check(Decimal("2450.00"), Decimal("2452.45"), published_on, date(2026, 3, 6), P)
    assert check.outcome == CorrectionOutcome.CORRECT and check.relative_change == Decimal("0.001")
    assert check.business_days_since == 4
    # 2452.44: 2.44 / 2450 = 0.000996 < 0.1% -> no correction.
    assert not m.needs_correction(Decimal("2450.00"), Decimal("2452.44"), published_on, date(2026, 3, 6), P)
    # Downwards counts too: 2447.55 -> 2.45 / 2450 = 0.1%.
    assert m.needs_correction(Decimal("2450.00"), Decimal("2447.55"), published_on, date(2026, 3, 6), P)
    # Monday 9th is the 5th business day after: still allowed; Tuesday 10th (6th) too late.
    assert m.correction_deadline(published_on, P) == date(2026, 3, 9)
    assert m.needs_correction(Decimal("2450"), Decimal("2500"), published_on, date(2026, 3, 9), P)
    late = m.correction_check(Decimal("2450"), Decimal("2500"), published_on, date(2026, 3, 10), P)
    assert late.outcome == CorrectionOutcome.TOO_LATE and not late.needed
    # A holiday in between moves the deadline: Mon 2 Mar + 5 business days without Wed 4 = Tue 10.
    holiday = Params(holidays={date(2026, 3, 4)})
    assert m.correction_deadline(published_on, holiday) == date(2026, 3, 10)
    assert m.needs_correction(Decimal("2450"), Decimal("2500"), published_on, date(2026, 3, 10), holiday)


# ------------------------------------------------------------------------------------------------
# Rebasing


def test_rebasing_preserves_percentage_changes():
    days = [date(2026, 3, d) for d in (2, 3, 4, 5)]
    values = dict(zip(days, [Decimal(1000), Decimal(1100), Decimal(1210), Decimal(1331)], strict=True))
    # New base = days 3 and 4 of the list: mean (1210 + 1331) / 2 = 1270.5 -> I' = I * 1000 / 1270.5.
    rebased = m.rebase(values, days[2:])
    assert m.publish(rebased[days[0]]) == Decimal("787.09")  # 1000 * 1000 / 1270.5 = 787.092...
    assert m.publish(rebased[days[3]]) == Decimal("1047.62")  # 1331 * 1000 / 1270.5 = 1047.619...
    # +10% each day before and after.
    for a, b in zip(days, days[1:], strict=False):
        assert close(m.relative_change(rebased[a], rebased[b]), Decimal("0.1"))
    assert close((rebased[days[2]] + rebased[days[3]]) / 2, 1000, "1e-25")
    with pytest.raises(ValueError):
        m.rebase(values, [date(2026, 3, 9)])


# ------------------------------------------------------------------------------------------------
# Properties

tonnes = st.integers(min_value=1, max_value=500_000).map(lambda v: Decimal(v) / 1000)  # 0.001 .. 500 t
prices = st.integers(min_value=100, max_value=10_000_000).map(lambda v: Decimal(v) / 100)  # 1 .. 100 000


@st.composite
def trade_lists(draw, min_size=1, max_size=12, price=None):
    n = draw(st.integers(min_size, max_size))
    fixed = draw(prices) if price == "equal" else None
    return [
        tr(
            f"t{i}",
            draw(tonnes),
            fixed if fixed is not None else draw(prices),
            f"S{draw(st.integers(0, 5))}",
            f"B{draw(st.integers(0, 5))}",
        )
        for i in range(n)
    ]


@given(trade_lists())
def test_weighted_price_lies_between_min_and_max(trades):
    price = m.weighted_price(trades)
    assert min(t.unit_price for t in trades) <= price <= max(t.unit_price for t in trades)


@given(trade_lists(max_size=15))
def test_cell_price_lies_between_min_and_max_of_used_trades(trades):
    cell = m.cell_value(date(2026, 3, 2), trades, None, P, category=CAT)
    if cell.status is not None:
        assert cell.min_price <= cell.price <= cell.max_price
        assert cell.n + len(cell.unused) == len(trades)


@given(trade_lists(max_size=15, price="equal"))
def test_outlier_rule_never_changes_a_cell_of_equal_prices(trades):
    assert m.outliers(trades, P).excluded == {}
    cell = m.cell_value(date(2026, 3, 2), trades, None, P, category=CAT)
    assert cell.excluded == 0
    if cell.status is not None:
        assert cell.price == trades[0].unit_price


@given(trade_lists(min_size=5, max_size=15))
def test_excluded_trades_are_more_than_five_percent_from_the_median(trades):
    result = m.outliers(trades, P)
    median_price = float(result.median_price)
    for t in trades:
        if t.trade_id in result.excluded:
            assert abs(math.log(float(t.unit_price) / median_price)) > math.log(1.05) - 1e-9


@given(st.lists(st.integers(-1000, 1000), min_size=1, max_size=20))
def test_weighted_median_with_equal_weights_is_the_median(values):
    assert m.weighted_median((Decimal(v), Decimal(1)) for v in values) == Decimal(
        str(statistics.median(values))
    )


@st.composite
def liquid_days(draw):
    """Up to 8 business days of March 2026, each with 3 .. 6 trades between distinct organisations of
    10 .. 20 t (no party above 50%), so each day's cell is T unless rule 2 removes trades."""
    days = [d for d in (date(2026, 3, x) for x in range(2, 14)) if m.is_business_day(d)]
    chosen = draw(st.lists(st.sampled_from(days), min_size=1, max_size=8, unique=True))
    trades = []
    for day in chosen:
        centre = draw(st.integers(1_000, 5_000))
        for i in range(draw(st.integers(3, 6))):
            trades.append(
                tr(
                    f"{day.day}-{i}",
                    draw(st.integers(10, 20)),
                    Decimal(centre) + Decimal(draw(st.integers(-40, 40))),
                    f"S{day.day}-{i}",
                    f"B{day.day}-{i}",
                    when=datetime.combine(day, time(10), SH),
                )
            )
    return sorted(chosen), trades


@settings(max_examples=60, deadline=None)
@given(liquid_days())
def test_index_of_the_base_period_averages_1000(data):
    days, trades = data
    cells = [m.cell_value(d, trades, None, P, category=CAT) for d in days]
    t_cells = [c for c in cells if c.status == Status.TRANSACTION]
    assume(t_cells)
    base = m.base_price(cells)
    with localcontext(prec=60):
        weighted = sum(c.tonnes * c.index(base) for c in t_cells) / sum(c.tonnes for c in t_cells)
    assert close(weighted, 1000, "1e-40")  # tonnes-weighted, as P(s,B) is quantity-weighted
    # Rebasing onto the same days makes the simple mean exactly 1000 too.
    rebased = m.rebase({c.day: c.index(base) for c in t_cells}, [c.day for c in t_cells])
    with localcontext(prec=60):
        assert close(sum(rebased.values()) / len(rebased), 1000, "1e-40")


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d", "e"]),
        st.tuples(st.integers(1, 10**9), st.integers(100, 10**7), st.integers(100, 10**7)),
        min_size=1,
    ),
    st.integers(500_00, 3000_00).map(lambda v: Decimal(v) / 100),
)
def test_composite_contributions_sum_to_the_value(components, link_value):
    weights = m.composite_weights({k: Decimal(v) for k, (v, _, _) in components.items()})
    prices = {k: Decimal(p) / 100 for k, (_, p, _) in components.items()}
    link = {k: Decimal(p) / 100 for k, (_, _, p) in components.items()}
    value = m.composite_value(link_value, weights, prices, link)
    with localcontext(prec=m.PRECISION):  # the module's precision; the default 28 digits would round
        assert sum(value.contributions.values()) == value.value
    published, parts = value.published()
    assert sum(parts.values()) == published
    # Continuity at the link day: the link prices give C(L) back.
    assert close(m.composite_value(link_value, weights, link, link).value, link_value, "1e-40")


@given(
    st.lists(st.integers(1, 10**8).map(lambda v: Decimal(v) / 100), min_size=2, max_size=30),
    st.data(),
)
def test_rebasing_preserves_ratios(levels, data):
    values = dict(enumerate(levels))
    base = data.draw(st.lists(st.sampled_from(list(values)), min_size=1, unique=True))
    rebased = m.rebase(values, base)
    for i in range(1, len(levels)):
        with localcontext(prec=60):
            assert abs(rebased[i] / rebased[i - 1] - levels[i] / levels[i - 1]) <= Decimal("1e-40") * (
                levels[i] / levels[i - 1]
            )


@given(st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(SH)))
def test_business_day_of_is_a_business_day_not_before_the_local_date(moment):
    params = Params(holidays={date(2026, 1, 1), date(2026, 10, 1), date(2026, 10, 2)})
    day = m.business_day_of(moment, params)
    assert m.is_business_day(day, params.holidays)
    assert day >= moment.date()
    assert (day == moment.date()) == (
        m.is_business_day(moment.date(), params.holidays) and moment.time() < time(16, 30)
    )
    assert m.business_days_between(moment.date(), day, params.holidays) <= 1


def test_a_window_without_trades_gives_the_same_cell_through_the_memo_as_without_it():
    """Walking days with the memo (the close and the rebuild), a window that examined no trade takes
    a short cut (``_nothing_traded``): each cell must equal the one computed from scratch, through T,
    E, C, the step from C to S, a lone trade that carries on, and a series with nothing to carry."""
    trades = [tr("1", 10, 2400, "A", "X", at(2)), tr("2", 12, 2420, "B", "Y", at(2, 11)),
              tr("3", 9, 2390, "C", "Z", at(2, 12)), tr("4", 30, 2500, "A", "Y", at(16))]  # fmt: skip
    empty = m.assess((), P)
    memo, previous, statuses, shortcuts = {}, None, [], 0
    d = date(2026, 3, 2)
    while d <= date(2026, 4, 10):
        if m.is_business_day(d):
            todays = [t for t in trades if m.counting_day(t, P) == d]
            memo[d] = m.assess(todays, P) if todays else empty  # as _Cells.close fills it
            window = m.business_window(d, P.window_days)
            if not any(m.counting_day(t, P) in window for t in trades):
                shortcuts += 1
            fast = m.cell_value(d, (), previous, P, category=CAT, assessed_days=memo)
            slow = m.cell_value(d, trades, previous, P, category=CAT)
            assert fast == slow, d
            previous = slow
            statuses.append(slow.status)
        d += timedelta(days=1)
    assert shortcuts > 10
    assert {Status.TRANSACTION, Status.WINDOW, Status.CARRIED, Status.STALE} <= set(statuses)
    nothing = m.cell_value(date(2026, 3, 2), (), None, P, category=CAT, assessed_days={})
    assert nothing == m.cell_value(date(2026, 3, 2), [], None, P, category=CAT) and nothing.status is None
