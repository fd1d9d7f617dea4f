"""The price-index methodology (``METHODOLOGY.md``) as pure functions: no database, no clock, no Django.

Everything the published indices are computed from lives here: the business calendar and the
daily cut-off, trade eligibility (section 1), the outlier rule (2), the liquidity rule (3), the
elementary price and index level (4), the status ladder T / E / C / S (5), the chained Lowe
composites (6), the indicative intraday value (7), the correction threshold and window (8) and
rebasing (9). The database side loads rows, turns them into the plain values below, calls these
functions and stores what they return (values, statuses, the audit list of used and unused trades,
``Params.as_audit()`` and ``METHODOLOGY_VERSION``).

Arithmetic
    Money and tonnes are ``Decimal``; floats are refused. Inside, every computation runs at
    ``PRECISION`` significant digits and nothing is rounded; rounding to 0.01 (half up) happens only
    at publication (``publish``, ``CellValue.published_price``, ``CompositeValue.published``).

Conventions chosen where the specification is silent (each is also stated where it is applied)
    * The cut-off is exclusive: an award at 16:30:00 or later counts on the next business day; an
      award on a weekend or holiday counts on the next business day whatever its time.
    * A trade counts on the later of the business days of its award and of its settlement
      ("late-arriving trades are never added to a closed day; they count on the day they are
      settled"); ``Trade.settled_at = None`` means settled before the award day's cut-off.
    * Weighted median: the value at which the cumulative weight first passes half the total; when
      the cumulative weight equals exactly half the total, the midpoint of that value and the next
      (so with equal weights it is the ordinary median). Equal values are pooled first.
    * The outlier rule runs once per (series, business day) on the eligible trades of that day;
      the E window pools the days' trades that survived their own day's rule.
    * "No single organisation (either side) has more than 50% of the tonnes": by default an
      organisation's tonnes are those of every trade it is party to, as buyer or as seller (an
      organisation buying 30% and selling 30% of the tonnes is party to 60% and fails); exactly 50%
      passes. ``Params.share_basis = ShareBasis.PER_SIDE`` measures buyers and sellers separately.
    * Status S from the 11th consecutive business day without a transaction-based or window value
      (days 1 to 10 are C). Before a series' first T or E value there is nothing to carry: the cell's
      status is ``None`` and nothing is published.
    * Base period: a month is *full* when every business day of it has a computed cell; a business
      week is the month's business days falling in one ISO week (Monday to Sunday), so weeks split by
      the month's ends count as their in-month part and weeks made only of holidays need nothing.
      "Transaction-based" means status T. The base price is the quantity-weighted average of the
      trades used by the T cells of the base period, so the tonnes-weighted mean of those days'
      index levels is exactly 1000.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable, Iterable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal, localcontext
from functools import lru_cache
from types import MappingProxyType
from typing import TypeVar
from zoneinfo import ZoneInfo

METHODOLOGY_VERSION = "1.0"
"""Stored with every computed value (section 8: "the parameters and the code version")."""

SHANGHAI = ZoneInfo("Asia/Shanghai")
INDEX_BASE = Decimal(1000)
CENT = Decimal("0.01")
PRECISION = 50
"""Significant digits of every internal computation (``ln``, divisions)."""

# Deviations and thresholds of the outlier rule are compared after rounding to this absolute step,
# so a price exactly on the boundary (e.g. exactly 5% above the median) is decided by the rule's
# strict ">" and not by the last digit of two logarithms.
_LOG_STEP = Decimal("1e-30")

K = TypeVar("K", bound=Hashable)


def _ctx():
    return localcontext(prec=PRECISION)


def _decimal(value, name: str) -> Decimal:
    """``value`` as a finite Decimal; floats (and bools) are refused, ints and strings read exactly."""
    if isinstance(value, (float, bool)):
        raise TypeError(f"{name} must be a Decimal, int or str, not {type(value).__name__}")
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"{name} must be finite, got {value!r}")
    return number


def publish(value: Decimal) -> Decimal:
    """``value`` rounded half up to 0.01 (yuan for prices, points for index levels), for publication."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------------
# Parameters


class ShareBasis(enum.StrEnum):
    """How the 50% concentration test of rule 3 counts an organisation's tonnes."""

    COMBINED = "combined"
    """Tonnes of every trade the organisation is party to, as buyer or seller (the default)."""
    PER_SIDE = "per_side"
    """Its tonnes as a seller and its tonnes as a buyer, each tested on its own."""


def _by_category(table: Mapping[str, Decimal], default: Decimal, category: str) -> Decimal:
    code = category
    while True:
        if code in table:
            return table[code]
        if "." not in code:
            return default
        code = code.rsplit(".", 1)[0]


@dataclass(frozen=True)
class Params:
    """The configuration of the methodology, with the specification's defaults.

    ``min_lot_tonnes`` and ``min_cell_tonnes`` map category codes to tonnes; a category without an
    entry takes its nearest ancestor's (codes are dotted paths: ``ferrous.heavy`` falls back to
    ``ferrous``), then the ``default_*`` value. The specification gives no default for either; 0
    (no minimum) is used until configured.
    """

    cutoff: time = time(16, 30)
    """Daily cut-off (exclusive) in ``timezone``: awards at or after it count on the next business day."""
    timezone: ZoneInfo = SHANGHAI
    holidays: frozenset[date] = frozenset()
    """Public holidays (weekdays that are not business days). Saturdays and Sundays never are."""
    floor_pct: Decimal = Decimal("0.05")
    """Rule 2: a trade within this fraction of the median price is never an outlier."""
    outlier_min_n: int = 5
    """Rule 2 applies to cells with at least this many eligible trades; smaller cells are flagged."""
    mad_factor: Decimal = Decimal("4.4478")
    """Rule 2: 3 * 1.4826 (three robust standard deviations)."""
    liquidity_min_n: int = 3
    min_buyers: int = 2
    min_sellers: int = 2
    max_share: Decimal = Decimal("0.5")
    """Rule 3: largest share of the tonnes one organisation may have (a share equal to it passes)."""
    share_basis: ShareBasis = ShareBasis.COMBINED
    min_cell_tonnes: Mapping[str, Decimal] = field(default_factory=dict)
    default_min_cell_tonnes: Decimal = Decimal(0)
    min_lot_tonnes: Mapping[str, Decimal] = field(default_factory=dict)
    default_min_lot_tonnes: Decimal = Decimal(0)
    vat_included: bool = True
    """VAT basis of the index's prices; trades stated on the other basis are not counted."""
    window_days: int = 5
    """Status E: rule 3 on the business days d-4 .. d."""
    stale_after: int = 10
    """Status S once more than this many consecutive business days were at C."""
    correction_threshold: Decimal = Decimal("0.001")
    correction_days: int = 5

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "holidays", frozenset(self.holidays))
        set_(self, "share_basis", ShareBasis(self.share_basis))
        for name in ("floor_pct", "mad_factor", "max_share", "correction_threshold"):
            set_(self, name, _decimal(getattr(self, name), name))
        for name in ("min_cell_tonnes", "min_lot_tonnes"):
            table = {str(k): _decimal(v, f"{name}[{k}]") for k, v in getattr(self, name).items()}
            set_(self, name, MappingProxyType(table))
        for name in ("default_min_cell_tonnes", "default_min_lot_tonnes"):
            set_(self, name, _decimal(getattr(self, name), name))
        if self.cutoff.tzinfo is not None:
            raise ValueError("cutoff is a wall-clock time in Params.timezone; give it without tzinfo")
        for name in ("outlier_min_n", "liquidity_min_n", "window_days", "correction_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.stale_after < 0 or self.min_buyers < 0 or self.min_sellers < 0:
            raise ValueError("stale_after, min_buyers and min_sellers cannot be negative")
        if not Decimal(0) < self.max_share <= Decimal(1):
            raise ValueError("max_share must be in (0, 1]")
        if self.floor_pct < 0 or self.mad_factor < 0 or self.correction_threshold < 0:
            raise ValueError("floor_pct, mad_factor and correction_threshold cannot be negative")

    def min_lot_for(self, category: str) -> Decimal:
        """Rule 1's ``min_lot_tonnes(category)``."""
        return _by_category(self.min_lot_tonnes, self.default_min_lot_tonnes, category)

    def min_cell_for(self, category: str) -> Decimal:
        """Rule 3's ``min_cell_tonnes(category)``, for the series' category node."""
        return _by_category(self.min_cell_tonnes, self.default_min_cell_tonnes, category)

    def as_audit(self) -> dict:
        """The parameters as a JSON-serialisable dict, to store beside every computed value."""
        return {
            "methodology_version": METHODOLOGY_VERSION,
            "cutoff": self.cutoff.isoformat(),
            "timezone": self.timezone.key,
            "holidays": sorted(d.isoformat() for d in self.holidays),
            "floor_pct": str(self.floor_pct),
            "outlier_min_n": self.outlier_min_n,
            "mad_factor": str(self.mad_factor),
            "liquidity_min_n": self.liquidity_min_n,
            "min_buyers": self.min_buyers,
            "min_sellers": self.min_sellers,
            "max_share": str(self.max_share),
            "share_basis": str(self.share_basis),
            "min_cell_tonnes": {k: str(v) for k, v in sorted(self.min_cell_tonnes.items())},
            "default_min_cell_tonnes": str(self.default_min_cell_tonnes),
            "min_lot_tonnes": {k: str(v) for k, v in sorted(self.min_lot_tonnes.items())},
            "default_min_lot_tonnes": str(self.default_min_lot_tonnes),
            "vat_included": self.vat_included,
            "window_days": self.window_days,
            "stale_after": self.stale_after,
            "correction_threshold": str(self.correction_threshold),
            "correction_days": self.correction_days,
        }

    @classmethod
    def from_audit(cls, audit: Mapping) -> Params:
        """The parameters a value was computed with, from what ``as_audit`` stored beside it."""
        decimals = ("floor_pct", "mad_factor", "max_share", "correction_threshold", "default_min_cell_tonnes",
                    "default_min_lot_tonnes")  # fmt: skip
        plain = ("outlier_min_n", "liquidity_min_n", "min_buyers", "min_sellers", "vat_included", "window_days",
                 "stale_after", "correction_days")  # fmt: skip
        return cls(
            cutoff=time.fromisoformat(audit["cutoff"]),
            timezone=ZoneInfo(audit["timezone"]),
            holidays=frozenset(date.fromisoformat(d) for d in audit["holidays"]),
            share_basis=ShareBasis(audit["share_basis"]),
            min_cell_tonnes={k: Decimal(v) for k, v in audit["min_cell_tonnes"].items()},
            min_lot_tonnes={k: Decimal(v) for k, v in audit["min_lot_tonnes"].items()},
            **{name: Decimal(audit[name]) for name in decimals},
            **{name: audit[name] for name in plain},
        )


DEFAULT_PARAMS = Params()


# --------------------------------------------------------------------------------------------------
# Business calendar


def is_business_day(d: date, holidays: Iterable[date] = frozenset()) -> bool:
    """Monday to Friday and not a listed public holiday."""
    return d.weekday() < 5 and d not in holidays


def next_business_day(d: date, holidays: Iterable[date] = frozenset()) -> date:
    """The first business day strictly after ``d``."""
    holidays = frozenset(holidays)
    d += timedelta(days=1)
    while not is_business_day(d, holidays):
        d += timedelta(days=1)
    return d


def previous_business_day(d: date, holidays: Iterable[date] = frozenset()) -> date:
    """The last business day strictly before ``d``."""
    holidays = frozenset(holidays)
    d -= timedelta(days=1)
    while not is_business_day(d, holidays):
        d -= timedelta(days=1)
    return d


def previous_business_days(d: date, n: int, holidays: Iterable[date] = frozenset()) -> list[date]:
    """The ``n`` business days strictly before ``d``, oldest first."""
    holidays = frozenset(holidays)
    days = []
    for _ in range(n):
        d = previous_business_day(d, holidays)
        days.append(d)
    return days[::-1]


def business_window(d: date, n: int, holidays: Iterable[date] = frozenset()) -> list[date]:
    """The ``n`` business days ending on (and including) business day ``d``, oldest first:
    ``business_window(d, 5)`` is the E window d-4 .. d."""
    holidays = frozenset(holidays)
    if not is_business_day(d, holidays):
        raise ValueError(f"{d} is not a business day")
    if n < 1:
        raise ValueError("a window has at least one day")
    return list(_window(d, n, holidays))


@lru_cache(maxsize=1024)
def _window(d: date, n: int, holidays: frozenset[date]) -> tuple[date, ...]:
    # Every cell of a day asks for the same window: computed once per (day, length, calendar).
    return (*previous_business_days(d, n - 1, holidays), d)


def add_business_days(d: date, n: int, holidays: Iterable[date] = frozenset()) -> date:
    """The ``n``-th business day after ``d`` (before it when ``n`` is negative; ``d`` itself for 0)."""
    holidays = frozenset(holidays)
    step = next_business_day if n >= 0 else previous_business_day
    for _ in range(abs(n)):
        d = step(d, holidays)
    return d


def business_days_between(start: date, end: date, holidays: Iterable[date] = frozenset()) -> int:
    """Business days in the interval (start, end]: 0 for the same day, 4 from a Monday to the
    Friday, 1 from a Friday to the next Monday; negative (minus the count in (end, start]) when
    ``end`` is before ``start``."""
    holidays = frozenset(holidays)
    if end < start:
        return -business_days_between(end, start, holidays)
    count = 0
    d = start + timedelta(days=1)
    while d <= end:
        count += is_business_day(d, holidays)
        d += timedelta(days=1)
    return count


def business_days(start: date, end: date, holidays: Iterable[date] = frozenset()) -> list[date]:
    """The business days from ``start`` to ``end``, both included, in order."""
    holidays = frozenset(holidays)
    count = (end - start).days + 1
    return [
        d for d in (start + timedelta(days=i) for i in range(max(count, 0))) if is_business_day(d, holidays)
    ]


def business_day_of(moment: datetime, params: Params = DEFAULT_PARAMS) -> date:
    """The business day a trade awarded (or settled) at ``moment`` counts on.

    ``moment`` is read in ``params.timezone``. Before the cut-off on a business day: that day. At or
    after the cut-off (16:30:00 itself is too late), or on a weekend or holiday at any time: the next
    business day. Naive datetimes are refused.
    """
    if moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None:
        raise ValueError("a trade's time must be timezone-aware")
    local = moment.astimezone(params.timezone)
    day = local.date()
    if is_business_day(day, params.holidays) and local.time() < params.cutoff:
        return day
    return next_business_day(day, params.holidays)


def link_day(year: int, holidays: Iterable[date] = frozenset()) -> date:
    """The link day L of the chain period ``year``: the last business day of ``year - 1``."""
    return previous_business_day(date(year, 1, 1), holidays)


# --------------------------------------------------------------------------------------------------
# Trades and eligibility (section 1)


@dataclass(frozen=True)
class Trade:
    """One settled trade as the methodology sees it (built from a ``pricing.TradeFact``).

    ``seller`` and ``buyer`` identify organisations (their USCC). ``linked`` says the two are linked
    (same group or same legal representative): the database side decides it. ``unit_converts`` is
    false when the category's unit has no tonne conversion. ``settled_at`` is when the trade
    settled (became known to the index); None means before the award day's cut-off.
    """

    trade_id: str
    quantity_t: Decimal
    unit_price: Decimal
    awarded_at: datetime
    seller: str
    buyer: str
    category: str
    region: str = ""
    settled_at: datetime | None = None
    settled: bool = True
    voided: bool = False
    linked: bool = False
    unit_converts: bool = True
    vat_included: bool = True

    def __post_init__(self):
        object.__setattr__(self, "quantity_t", _decimal(self.quantity_t, "quantity_t"))
        object.__setattr__(self, "unit_price", _decimal(self.unit_price, "unit_price"))
        for name in ("awarded_at", "settled_at"):
            moment = getattr(self, name)
            if moment is not None and (moment.tzinfo is None or moment.tzinfo.utcoffset(moment) is None):
                raise ValueError(f"{name} must be timezone-aware")

    @property
    def amount(self) -> Decimal:
        """q * p in yuan, unrounded."""
        with _ctx():
            return self.quantity_t * self.unit_price

    @property
    def arrived_at(self) -> datetime:
        """When the trade became known: its settlement, or its award if no settlement time is given."""
        return self.settled_at if self.settled_at is not None else self.awarded_at


def counting_day(trade: Trade, params: Params = DEFAULT_PARAMS) -> date:
    """The business day whose cell the trade belongs to: the business day of its award, or of its
    settlement when that is later (a trade settled after its award day closed counts on the day it
    settled; a closed day never receives trades)."""
    day = business_day_of(trade.awarded_at, params)
    if trade.settled_at is not None:
        day = max(day, business_day_of(trade.settled_at, params))
    return day


class Reason(enum.StrEnum):
    """Why a trade examined for a value was not used in it (stored in the audit list)."""

    VOIDED = "voided"
    NOT_SETTLED = "not_settled"
    NON_POSITIVE = "non_positive"
    UNIT_NOT_CONVERTIBLE = "unit_not_convertible"
    VAT_BASIS = "vat_basis_differs"
    SAME_ORGANISATION = "same_organisation"
    LINKED = "linked_parties"
    BELOW_MIN_LOT = "below_min_lot"
    OUTLIER = "outlier"
    """Rule 2, automatic."""
    OPERATOR = "operator"
    """Rule 2, excluded by an operator after review."""
    NOT_LIQUID = "not_liquid"
    """Eligible and kept, but the cell failed rule 3 on the day and on the window (status C or S)."""

    @property
    def is_exclusion(self) -> bool:
        """True for the exclusions of rule 2, the ones counted in a value's "number excluded"."""
        return self in (Reason.OUTLIER, Reason.OPERATOR)


@dataclass(frozen=True)
class Exclusion:
    """A reason code and a human-readable detail."""

    code: Reason
    detail: str = ""

    def __str__(self):
        return f"{self.code}: {self.detail}" if self.detail else str(self.code)


def eligible(trade: Trade, params: Params = DEFAULT_PARAMS) -> tuple[bool, Exclusion | None]:
    """Rule 1: ``(True, None)``, or ``(False, why)`` with the first failing condition in the order
    voided, not settled, non-positive quantity or price, unit not convertible, VAT basis, buyer and
    seller the same organisation, linked, lot below ``min_lot_tonnes(category)``.

    The cut-off is not a condition here: it decides the day a trade counts on (``counting_day``).
    """
    if trade.voided:
        return False, Exclusion(Reason.VOIDED, "trade voided")
    if not trade.settled:
        return False, Exclusion(Reason.NOT_SETTLED, "not paid and weighed")
    if trade.quantity_t <= 0 or trade.unit_price <= 0:
        return False, Exclusion(
            Reason.NON_POSITIVE, f"quantity {trade.quantity_t} t, price {trade.unit_price} yuan/t"
        )
    if not trade.unit_converts:
        return False, Exclusion(Reason.UNIT_NOT_CONVERTIBLE, f"category {trade.category}")
    if trade.vat_included != params.vat_included:
        basis = "including" if trade.vat_included else "excluding"
        return False, Exclusion(Reason.VAT_BASIS, f"price stated {basis} VAT")
    if trade.seller == trade.buyer:
        return False, Exclusion(Reason.SAME_ORGANISATION, f"buyer and seller are {trade.seller}")
    if trade.linked:
        return False, Exclusion(Reason.LINKED, f"{trade.seller} and {trade.buyer} are linked")
    minimum = params.min_lot_for(trade.category)
    if trade.quantity_t < minimum:
        return False, Exclusion(Reason.BELOW_MIN_LOT, f"{trade.quantity_t} t < {minimum} t")
    return True, None


# --------------------------------------------------------------------------------------------------
# Weighted statistics


def weighted_median(pairs: Iterable[tuple[Decimal, Decimal]]) -> Decimal:
    """Weighted median of ``(value, weight)`` pairs (weights > 0).

    Equal values are pooled, then sorted ascending; with W the total weight and C_k the cumulative
    weight up to the k-th value, the median is the first value with C_k > W/2, except that when
    C_k == W/2 exactly it is the midpoint (v_k + v_{k+1}) / 2. With equal weights this is the
    ordinary median (the mean of the two middle values for an even count).
    """
    pooled: dict[Decimal, Decimal] = {}
    with _ctx():
        for value, weight in pairs:
            if weight <= 0:
                raise ValueError("weights must be positive")
            pooled[value] = pooled.get(value, Decimal(0)) + weight
        if not pooled:
            raise ValueError("the median of nothing")
        items = sorted(pooled.items())
        half = sum(w for _, w in items) / 2
        cumulative = Decimal(0)
        for k, (value, weight) in enumerate(items):
            cumulative += weight
            if cumulative > half:
                return value
            if cumulative == half:
                return (value + items[k + 1][0]) / 2
    raise AssertionError("unreachable: the cumulative weight reaches the total")  # pragma: no cover


def weighted_price(trades: Iterable[Trade]) -> Decimal:
    """P = sum(q_i * p_i) / sum(q_i), unrounded (round with ``publish`` at publication only)."""
    amount = tonnes = Decimal(0)
    with _ctx():
        for t in trades:
            amount += t.quantity_t * t.unit_price
            tonnes += t.quantity_t
        if tonnes <= 0:
            raise ValueError("the weighted price of no tonnes")
        return amount / tonnes


# --------------------------------------------------------------------------------------------------
# Outliers (section 2)


@dataclass(frozen=True)
class OutlierResult:
    """What rule 2 did to one cell's eligible trades.

    ``applied`` is false when the cell had fewer than ``outlier_min_n`` trades: then nothing is
    excluded and every trade is in ``review`` (flagged for an operator). ``median`` and ``mad`` are
    in log-price units (``median_price`` is exp(median)); ``threshold`` is
    max(mad_factor * MAD, ln(1 + floor_pct)).
    """

    excluded: Mapping[str, Exclusion]
    review: tuple[str, ...]
    applied: bool
    median: Decimal | None = None
    mad: Decimal | None = None
    threshold: Decimal | None = None

    @property
    def median_price(self) -> Decimal | None:
        if self.median is None:
            return None
        with _ctx():
            return self.median.exp()


@lru_cache(maxsize=1 << 16)
def _ln(price: Decimal) -> Decimal:
    """ln p at ``PRECISION`` digits (correctly rounded, so equal prices have one logarithm whatever
    their exponent). Memoised: a trade counts in about ten series (its category's ancestors at each
    region level), each running rule 2 on it the same day, and ``ln`` is by far the slowest step."""
    with _ctx():
        return price.ln()


def outliers(trades: Sequence[Trade], params: Params = DEFAULT_PARAMS) -> OutlierResult:
    """Rule 2 on the eligible trades of one cell (one series, one business day).

    With n >= ``outlier_min_n``: x_i = ln p_i, m = weighted median of x (weights q_i, see
    ``weighted_median``), MAD = weighted median of |x_i - m|; trade i is excluded when
    |x_i - m| > max(mad_factor * MAD, ln(1 + floor_pct)). One pass, no iteration.
    With fewer trades nothing is excluded and all are flagged for review.
    """
    ids = [t.trade_id for t in trades]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate trade ids in one cell")
    if len(trades) < params.outlier_min_n:
        return OutlierResult(excluded=MappingProxyType({}), review=tuple(ids), applied=False)
    with _ctx():
        logs = {t.trade_id: _ln(t.unit_price) for t in trades}
        m = weighted_median((logs[t.trade_id], t.quantity_t) for t in trades)
        deviations = {i: abs(x - m) for i, x in logs.items()}
        mad = weighted_median((deviations[t.trade_id], t.quantity_t) for t in trades)
        floor = (1 + params.floor_pct).ln()
        threshold = max(params.mad_factor * mad, floor)
        limit = threshold.quantize(_LOG_STEP)
        median_price = m.exp()
        excluded = {}
        for t in trades:
            deviation = deviations[t.trade_id]
            if deviation.quantize(_LOG_STEP) > limit:
                excluded[t.trade_id] = Exclusion(
                    Reason.OUTLIER,
                    f"price {t.unit_price} vs median {publish(median_price)}: |ln p - m| = "
                    f"{deviation:.4f} > {threshold:.4f} = max({params.mad_factor} x MAD {mad:.4f}, "
                    f"ln(1 + {params.floor_pct}))",
                )
    return OutlierResult(
        excluded=MappingProxyType(excluded), review=(), applied=True, median=m, mad=mad, threshold=threshold
    )


# --------------------------------------------------------------------------------------------------
# Liquidity (section 3)


class Illiquid(enum.StrEnum):
    """Why a set of trades is not transaction-based (rule 3)."""

    TOO_FEW_TRADES = "too_few_trades"
    TOO_FEW_BUYERS = "too_few_buyers"
    TOO_FEW_SELLERS = "too_few_sellers"
    TOO_FEW_TONNES = "too_few_tonnes"
    DOMINANT_ORGANISATION = "dominant_organisation"


@dataclass(frozen=True)
class Liquidity:
    """The outcome of rule 3 with the figures it was decided on.

    ``largest_share`` is the largest organisation's share of the tonnes (on ``share_basis``) and
    ``largest_org`` that organisation (the smallest id among equals).
    """

    ok: bool
    reasons: tuple[Illiquid, ...]
    n: int
    buyers: int
    sellers: int
    tonnes: Decimal
    min_tonnes: Decimal
    largest_share: Decimal
    largest_org: str | None


def _organisation_tonnes(trades: Sequence[Trade], basis: ShareBasis) -> tuple[Decimal, dict[str, Decimal]]:
    """The total tonnes and each organisation's tonnes on ``basis`` (those of ``organisation_shares``
    before the division by the total); no organisation when the total is not positive."""
    with _ctx():
        total = sum((t.quantity_t for t in trades), Decimal(0))
        if total <= 0:
            return total, {}
        if ShareBasis(basis) is ShareBasis.COMBINED:
            tonnes: dict[str, Decimal] = {}
            for t in trades:
                for org in {t.seller, t.buyer}:
                    tonnes[org] = tonnes.get(org, Decimal(0)) + t.quantity_t
            return total, tonnes
        sold: dict[str, Decimal] = {}
        bought: dict[str, Decimal] = {}
        for t in trades:
            sold[t.seller] = sold.get(t.seller, Decimal(0)) + t.quantity_t
            bought[t.buyer] = bought.get(t.buyer, Decimal(0)) + t.quantity_t
        return total, {
            org: max(sold.get(org, Decimal(0)), bought.get(org, Decimal(0)))
            for org in sold.keys() | bought.keys()
        }


def organisation_shares(
    trades: Iterable[Trade], basis: ShareBasis = ShareBasis.COMBINED
) -> dict[str, Decimal]:
    """Each organisation's share of the tonnes. COMBINED: tonnes of the trades it is party to (as
    buyer or seller, once per trade). PER_SIDE: the larger of its seller share and its buyer share."""
    total, tonnes = _organisation_tonnes(list(trades), basis)
    with _ctx():
        return {org: q / total for org, q in tonnes.items()}


def liquidity(trades: Iterable[Trade], params: Params = DEFAULT_PARAMS, category: str = "") -> Liquidity:
    """Rule 3 on trades already through rules 1 and 2: n >= liquidity_min_n, >= min_buyers distinct
    buyers, >= min_sellers distinct sellers, tonnes >= min_cell_tonnes(category) (the series'
    category node), and no organisation's share of the tonnes above max_share (see ``ShareBasis``)."""
    trades = list(trades)
    tonnes, by_org = _organisation_tonnes(trades, params.share_basis)
    buyers = len({t.buyer for t in trades})
    sellers = len({t.seller for t in trades})
    minimum = params.min_cell_for(category)
    # The largest share (the smallest id among equals) is found on the tonnes and divided once: the
    # division by the total is increasing, and strictly so at PRECISION digits for any tonnes a trade
    # can have, so this is the organisation and the share ``organisation_shares`` would give.
    if by_org:
        top = max(by_org.values())
        largest_org = min(org for org, q in by_org.items() if q == top)
        with _ctx():
            largest = top / tonnes
    else:
        largest_org, largest = None, Decimal(0)
    reasons = []
    if len(trades) < params.liquidity_min_n:
        reasons.append(Illiquid.TOO_FEW_TRADES)
    if buyers < params.min_buyers:
        reasons.append(Illiquid.TOO_FEW_BUYERS)
    if sellers < params.min_sellers:
        reasons.append(Illiquid.TOO_FEW_SELLERS)
    if tonnes < minimum or tonnes <= 0:
        reasons.append(Illiquid.TOO_FEW_TONNES)
    if largest > params.max_share:
        reasons.append(Illiquid.DOMINANT_ORGANISATION)
    return Liquidity(
        ok=not reasons,
        reasons=tuple(reasons),
        n=len(trades),
        buyers=buyers,
        sellers=sellers,
        tonnes=tonnes,
        min_tonnes=minimum,
        largest_share=largest,
        largest_org=largest_org,
    )


# --------------------------------------------------------------------------------------------------
# One day's trades through rules 1 and 2


@dataclass(frozen=True)
class Assessment:
    """One business day's trades of a series after rules 1 and 2.

    ``kept`` passed both, in (award time, id) order; ``unused`` holds every other trade with why;
    ``review`` the trades flagged because rule 2 could not run (n < outlier_min_n)."""

    kept: tuple[Trade, ...]
    unused: Mapping[str, Exclusion]
    review: tuple[str, ...]
    outliers: OutlierResult

    @property
    def excluded(self) -> int:
        """Number of rule-2 exclusions (automatic and by an operator)."""
        return sum(1 for e in self.unused.values() if e.code.is_exclusion)


def assess(
    trades: Iterable[Trade],
    params: Params = DEFAULT_PARAMS,
    operator_exclusions: Mapping[str, str] | None = None,
) -> Assessment:
    """Rules 1 and 2 on the trades of one cell: ineligible trades out (with their reason), rule 2
    on the eligible ones (n counted among them), then the trades an operator excluded after review
    (``operator_exclusions`` maps trade id to the operator's reason)."""
    ordered = sorted(trades, key=lambda t: (t.awarded_at, t.trade_id))
    unused: dict[str, Exclusion] = {}
    candidates = []
    for t in ordered:
        ok, why = eligible(t, params)
        if ok:
            candidates.append(t)
        else:
            unused[t.trade_id] = why
    result = outliers(candidates, params)
    unused.update(result.excluded)
    operator_exclusions = operator_exclusions or {}
    kept = []
    for t in candidates:
        if t.trade_id in unused:
            continue
        if t.trade_id in operator_exclusions:
            unused[t.trade_id] = Exclusion(Reason.OPERATOR, str(operator_exclusions[t.trade_id]))
        else:
            kept.append(t)
    return Assessment(
        kept=tuple(kept), unused=MappingProxyType(unused), review=result.review, outliers=result
    )


# --------------------------------------------------------------------------------------------------
# Cell values and the status ladder (sections 4 and 5)


class Status(enum.StrEnum):
    """The status letter published with every value (section 5)."""

    TRANSACTION = "T"
    """Rule 3 holds on day d; P is the day's weighted average."""
    WINDOW = "E"
    """Rule 3 holds on the business days d-4 .. d; P is the window's weighted average."""
    CARRIED = "C"
    """P carried forward from the previous business day."""
    STALE = "S"
    """Carried for more than ``stale_after`` business days; shown, but imputed in composites."""


@dataclass(frozen=True)
class CellValue:
    """The value of one cell (series, business day d) and everything needed to publish and audit it.

    ``price`` is P(s,d) unrounded (``published_price`` rounds it). ``n``, ``tonnes``, ``amount``
    (sum q*p), ``min_price`` and ``max_price`` describe the ``used`` trades: day d's for T, the
    window's for E, none for C and S (their P comes from an earlier day, ``carried_from``).
    ``excluded`` is the number of rule-2 exclusions among the trades examined (day d's; the
    window's for E). ``unused`` lists every examined trade that is not in ``used``, with why.
    ``review`` are day d's trades flagged for operator review (rule 2 not applicable, n < 5).
    ``day_n``, ``day_tonnes``, ``day_amount`` are day d's trades through rules 1 and 2 whatever the
    status (the yuan value traded, for composite weights). ``days_carried`` counts consecutive C/S
    days up to d (0 for T and E). ``status`` None: no value yet (no T/E value ever, nothing to carry).
    """

    day: date
    status: Status | None
    price: Decimal | None
    n: int
    tonnes: Decimal
    amount: Decimal
    min_price: Decimal | None
    max_price: Decimal | None
    excluded: int
    used: tuple[str, ...]
    unused: Mapping[str, Exclusion]
    review: tuple[str, ...]
    day_liquidity: Liquidity
    window_liquidity: Liquidity | None
    window: tuple[date, ...]
    days_carried: int
    carried_from: date | None
    day_n: int
    day_tonnes: Decimal
    day_amount: Decimal
    methodology_version: str = METHODOLOGY_VERSION

    @property
    def published_price(self) -> Decimal | None:
        """P rounded half up to 0.01 yuan/t."""
        return None if self.price is None else publish(self.price)

    def index(self, base_price: Decimal) -> Decimal | None:
        """I(s,d) = 1000 * P(s,d) / P(s,B), unrounded."""
        return None if self.price is None else index_level(self.price, base_price)


def _totals(trades: Sequence[Trade]) -> tuple[Decimal, Decimal]:
    with _ctx():
        tonnes = sum((t.quantity_t for t in trades), Decimal(0))
        amount = sum((t.quantity_t * t.unit_price for t in trades), Decimal(0))
    return tonnes, amount


def cell_value(
    day: date,
    trades: Iterable[Trade],
    previous: CellValue | None,
    params: Params = DEFAULT_PARAMS,
    *,
    category: str = "",
    operator_exclusions: Mapping[str, str] | None = None,
    assessed_days: MutableMapping[date, Assessment] | None = None,
) -> CellValue:
    """The value of the cell (series, ``day``) by the ladder T / E / C / S.

    ``assessed_days``: optional memo of each day's rules 1 and 2, kept by a caller that walks a
    series' days in order with the same trades (a day of the window is then assessed once, not once
    per window it falls in). It must be this series' and these trades' own.

    ``trades``: the series' candidate trades (any eligibility) whose ``counting_day`` may fall in
    the window d-(window_days-1) .. d; trades counting on other days are ignored. Each day of the
    window goes through rules 1 and 2 on its own (``assess``). ``previous``: the value of the
    previous business day (None for a series' first day); it must be exactly that day.
    ``category``: the series' category node (for ``min_cell_tonnes``).

    T when rule 3 holds on day d; else E when it holds on the window's pooled trades; else the
    previous P is carried: C for the first ``stale_after`` consecutive such days, S after them.
    """
    if not is_business_day(day, params.holidays):
        raise ValueError(f"{day} is not a business day")
    if previous is not None and previous.day != previous_business_day(day, params.holidays):
        raise ValueError(f"previous value is for {previous.day}, not the business day before {day}")
    window = business_window(day, params.window_days, params.holidays)
    if assessed_days is not None and isinstance(trades, tuple | list) and not trades:
        # Nothing examined anywhere in the window (the commonest cell of a long history): the carry
        # below, without assessing, pooling or measuring empty lists again.
        days = [assessed_days.get(d) for d in window]
        if all(a is not None and not a.kept and not a.unused and not a.review for a in days):
            return _nothing_traded(day, window, previous, params, category)
    by_day: dict[date, list[Trade]] = {d: [] for d in window}
    for t in trades:
        d = counting_day(t, params)
        if d in by_day:
            by_day[d].append(t)
    assessed = {}
    for d in window:
        memo = assessed_days.get(d) if assessed_days is not None else None
        assessed[d] = memo if memo is not None else assess(by_day[d], params, operator_exclusions)
        if assessed_days is not None:
            assessed_days[d] = assessed[d]
    today = assessed[day]
    if today.kept:
        day_liquidity = liquidity(today.kept, params, category)
        day_tonnes, day_amount = _totals(today.kept)
    else:  # most days of a sparse series
        day_liquidity, day_tonnes, day_amount = _liquidity_of_none(params, category), Decimal(0), Decimal(0)
    common = {
        "day": day,
        "review": today.review,
        "day_liquidity": day_liquidity,
        "day_n": len(today.kept),
        "day_tonnes": day_tonnes,
        "day_amount": day_amount,
    }

    def from_trades(status, used, unused, excluded, window_liquidity, days):
        tonnes, amount = _totals(used)
        prices = [t.unit_price for t in used]
        return CellValue(
            status=status,
            price=weighted_price(used),
            n=len(used),
            tonnes=tonnes,
            amount=amount,
            min_price=min(prices),
            max_price=max(prices),
            excluded=excluded,
            used=tuple(t.trade_id for t in used),
            unused=MappingProxyType(unused),
            window_liquidity=window_liquidity,
            window=tuple(days),
            days_carried=0,
            carried_from=None,
            **common,
        )

    if day_liquidity.ok:
        return from_trades(Status.TRANSACTION, today.kept, dict(today.unused), today.excluded, None, [day])

    pooled = [t for d in window for t in assessed[d].kept]
    window_liquidity = liquidity(pooled, params, category) if pooled else _liquidity_of_none(params, category)
    if window_liquidity.ok:
        unused = {i: e for d in window for i, e in assessed[d].unused.items()}
        excluded = sum(assessed[d].excluded for d in window)
        return from_trades(Status.WINDOW, pooled, unused, excluded, window_liquidity, window)

    unused = dict(today.unused)
    for t in today.kept:
        unused[t.trade_id] = Exclusion(Reason.NOT_LIQUID, ", ".join(day_liquidity.reasons))
    carry, status, days_carried, carried_from = _carry(previous, params)
    return CellValue(
        status=status,
        price=previous.price if carry else None,
        n=0,
        tonnes=Decimal(0),
        amount=Decimal(0),
        min_price=None,
        max_price=None,
        excluded=today.excluded,
        used=(),
        unused=MappingProxyType(unused),
        window_liquidity=window_liquidity,
        window=tuple(window),
        days_carried=days_carried,
        carried_from=carried_from,
        **common,
    )


def _carry(previous: CellValue | None, params: Params) -> tuple[bool, Status | None, int, date | None]:
    """Whether the previous P is carried, and the status, consecutive days and first day it gives."""
    if previous is None or previous.price is None:
        return False, None, 0, None
    was_carried = previous.status in (Status.CARRIED, Status.STALE)
    days_carried = previous.days_carried + 1 if was_carried else 1
    carried_from = previous.carried_from if was_carried else previous.day
    return (
        True,
        Status.STALE if days_carried > params.stale_after else Status.CARRIED,
        days_carried,
        carried_from,
    )


_EMPTY_LIQUIDITY: dict[tuple[int, str], tuple[Params, Liquidity]] = {}


def _liquidity_of_none(params: Params, category: str) -> Liquidity:
    """``liquidity(())``: the same for every cell of a category, so made once per parameters object
    and category (``Params`` itself is not hashable; the entry keeps it to check identity)."""
    hit = _EMPTY_LIQUIDITY.get((id(params), category))
    if hit is None or hit[0] is not params:
        if len(_EMPTY_LIQUIDITY) > 4096:
            _EMPTY_LIQUIDITY.clear()
        hit = _EMPTY_LIQUIDITY[(id(params), category)] = (params, liquidity((), params, category))
    return hit[1]


def _nothing_traded(
    day: date, window: Sequence[date], previous: CellValue | None, params: Params, category: str
) -> CellValue:
    """``cell_value`` of a cell whose window examined no trade at all: what its ladder gives then
    (rule 3 fails on no trades, day and window alike; the previous P is carried), field for field."""
    none = _liquidity_of_none(params, category)
    carry, status, days_carried, carried_from = _carry(previous, params)
    return CellValue(
        day=day, status=status, price=previous.price if carry else None, n=0, tonnes=Decimal(0),
        amount=Decimal(0), min_price=None, max_price=None, excluded=0, used=(), unused=MappingProxyType({}),
        review=(), day_liquidity=none, window_liquidity=none, window=tuple(window), days_carried=days_carried,
        carried_from=carried_from, day_n=0, day_tonnes=Decimal(0), day_amount=Decimal(0),
    )  # fmt: skip


# --------------------------------------------------------------------------------------------------
# Index level and base period (section 4)


def index_level(price: Decimal, base_price: Decimal) -> Decimal:
    """I = 1000 * P / P_base, unrounded."""
    if base_price <= 0:
        raise ValueError("the base price must be positive")
    with _ctx():
        return INDEX_BASE * price / base_price


def _month_end(first: date) -> date:
    following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
    return following - timedelta(days=1)


def base_period(
    statuses: Mapping[date, Status | None], params: Params = DEFAULT_PARAMS
) -> tuple[date, date] | None:
    """The default base period: (first day, last day) of the first full calendar month with a
    transaction-based (T) value in every business week, or None if there is none yet.

    ``statuses`` maps each computed business day to its cell's status (``{c.day: c.status}``). A
    month is full when every one of its business days is a key. Its business weeks are its business
    days grouped by ISO week; every group must contain a T day (a group cut by the month's start or
    end is its in-month part; a week of holidays only has no group and needs nothing).
    """
    if not statuses:
        return None
    first_day, last_day = min(statuses), max(statuses)
    month = date(first_day.year, first_day.month, 1)
    while month <= last_day:
        end = _month_end(month)
        days = [
            month + timedelta(days=i)
            for i in range((end - month).days + 1)
            if is_business_day(month + timedelta(days=i), params.holidays)
        ]
        if days and all(d in statuses for d in days):
            weeks: dict[tuple[int, int], bool] = {}
            for d in days:
                week = d.isocalendar()[:2]
                weeks[week] = weeks.get(week, False) or statuses[d] == Status.TRANSACTION
            if all(weeks.values()):
                return month, end
        month = end + timedelta(days=1)
    return None


def base_price(cells: Iterable[CellValue]) -> Decimal:
    """P(s,B): the quantity-weighted average price of the trades used by the T cells among
    ``cells`` (pass the cells of the base period; other statuses are ignored). Equivalently the
    tonnes-weighted mean of the T days' prices, so those days' index levels average 1000 weighted
    by tonnes."""
    with _ctx():
        tonnes = amount = Decimal(0)
        for c in cells:
            if c.status == Status.TRANSACTION:
                tonnes += c.tonnes
                amount += c.amount
        if tonnes <= 0:
            raise ValueError("no transaction-based value in the base period")
        return amount / tonnes


# --------------------------------------------------------------------------------------------------
# Composites (section 6)


def traded_value(cells: Iterable[CellValue]) -> Decimal:
    """V_k: the yuan value traded in a series over ``cells`` (e.g. the previous year's): the sum of
    each day's trades through rules 1 and 2 (``day_amount``), whatever the day's status."""
    with _ctx():
        return sum((c.day_amount for c in cells), Decimal(0))


def composite_weights(values: Mapping[K, Decimal]) -> dict[K, Decimal]:
    """s_k = V_k / sum(V), from each component's yuan value traded in the previous year (the base
    period for a composite's first year). Unrounded; they sum to 1 to ``PRECISION`` digits."""
    values = {k: _decimal(v, f"value of {k}") for k, v in values.items()}
    if any(v < 0 for v in values.values()):
        raise ValueError("traded values cannot be negative")
    with _ctx():
        total = sum(values.values(), Decimal(0))
        if total <= 0:
            raise ValueError("no value traded in any component")
        return {k: v / total for k, v in values.items()}


def category_movement(relatives: Mapping[K, Decimal], weights: Mapping[K, Decimal] | None = None) -> Decimal:
    """The movement P(r,d)/P(r,L) of a category's liquid regions (their series at T or E on d), as
    one relative to impute a stale component with: weighted by ``weights`` (e.g. their traded
    values), equally without."""
    if not relatives:
        raise ValueError("no liquid region to impute from")
    with _ctx():
        if weights is None:
            return sum(relatives.values(), Decimal(0)) / len(relatives)
        total = sum((weights[k] for k in relatives), Decimal(0))
        if total <= 0:
            raise ValueError("the liquid regions have no weight")
        return sum((weights[k] * r for k, r in relatives.items()), Decimal(0)) / total


@dataclass(frozen=True)
class CompositeValue:
    """C(d) and its components' contributions C(L) * s_k * R_k, which sum to it exactly.

    ``relatives`` are the R_k = P(k,d)/P(k,L) used (imputed ones for the components in ``imputed``).
    """

    value: Decimal
    contributions: Mapping[Hashable, Decimal]
    relatives: Mapping[Hashable, Decimal]
    imputed: frozenset

    def published(self) -> tuple[Decimal, dict]:
        """The value rounded to 0.01 and the contributions rounded to 0.01 so that they add up to
        the rounded value exactly (largest remainders get the odd cents; ties in key order)."""
        value = publish(self.value)
        floors = {k: c.quantize(CENT, rounding=ROUND_FLOOR) for k, c in self.contributions.items()}
        cents = int((value - sum(floors.values(), Decimal(0))) / CENT)
        order = sorted(floors, key=lambda k: (-(self.contributions[k] - floors[k]), str(k)))
        for k in order[: max(cents, 0)]:
            floors[k] += CENT
        return value, floors


def composite_value(
    link_value: Decimal,
    weights: Mapping[K, Decimal],
    prices: Mapping[K, Decimal | None],
    link_prices: Mapping[K, Decimal],
    *,
    statuses: Mapping[K, Status | None] | None = None,
    imputed: Mapping[K, Decimal] | None = None,
) -> CompositeValue:
    """A Lowe composite chained yearly: C(d) = C(L) * sum_k s_k * P(k,d) / P(k,L).

    ``link_value`` C(L) and ``link_prices`` P(k,L) are the values on the link day L (last business
    day of the previous year); in the composite's first chain period use 1000 and the components'
    base prices P(k,B) over the composite's base period. ``weights`` s_k (``composite_weights``)
    must sum to 1. A component whose status is S (or whose price is None) takes its relative
    P(k,d)/P(k,L) from ``imputed`` (see ``category_movement``); it is an error if none is given.
    Computing C(L) with the old and the new period's weights gives the same value (continuity).
    """
    keys = set(weights)
    if keys != set(prices) or keys != set(link_prices):
        raise ValueError("weights, prices and link prices must name the same components")
    statuses = statuses or {}
    imputed = imputed or {}
    with _ctx():
        if abs(sum(weights.values(), Decimal(0)) - 1) > Decimal("1e-20"):
            raise ValueError("composite weights must sum to 1")
        relatives: dict[K, Decimal] = {}
        used_imputation = set()
        for k in weights:
            if weights[k] < 0:
                raise ValueError(f"negative weight for {k}")
            if statuses.get(k) == Status.STALE or prices[k] is None:
                if k not in imputed:
                    raise ValueError(f"component {k} is stale or has no price and needs an imputed relative")
                relatives[k] = _decimal(imputed[k], f"imputed relative of {k}")
                used_imputation.add(k)
            else:
                if link_prices[k] <= 0:
                    raise ValueError(f"link price of {k} must be positive")
                relatives[k] = prices[k] / link_prices[k]
        contributions = {k: link_value * weights[k] * relatives[k] for k in weights}
        value = sum(contributions.values(), Decimal(0))
    return CompositeValue(
        value=value,
        contributions=MappingProxyType(contributions),
        relatives=MappingProxyType(relatives),
        imputed=frozenset(used_imputation),
    )


# --------------------------------------------------------------------------------------------------
# Intraday indicative value (section 7)


@dataclass(frozen=True)
class Indicative:
    """The live, indicative value of a cell during day d: the weighted average of the day's
    eligible trades arrived by ``as_of`` after rules 2 and 3 (``live``), or the previous official
    close when they fail rule 3. Never used to settle anything; replaced by the close at cut-off."""

    day: date
    as_of: datetime | None
    live: bool
    price: Decimal | None
    previous_close: Decimal | None
    n: int
    tonnes: Decimal
    min_price: Decimal | None
    max_price: Decimal | None
    excluded: int
    review: tuple[str, ...]
    liquidity: Liquidity
    label: str = "indicative"


def indicative(
    day: date,
    trades: Iterable[Trade],
    previous_close: Decimal | None,
    params: Params = DEFAULT_PARAMS,
    *,
    category: str = "",
    as_of: datetime | None = None,
    operator_exclusions: Mapping[str, str] | None = None,
) -> Indicative:
    """L(s,t): the trades counting on ``day`` that arrived (settled, else awarded) by ``as_of``
    (all of them when None) through rules 1, 2 and 3; if rule 3 fails, ``previous_close`` (the
    previous business day's official P) is shown instead. No E window, no carrying ladder."""
    if as_of is not None and (as_of.tzinfo is None or as_of.tzinfo.utcoffset(as_of) is None):
        raise ValueError("as_of must be timezone-aware")
    arrived = [
        t for t in trades if counting_day(t, params) == day and (as_of is None or t.arrived_at <= as_of)
    ]
    assessment = assess(arrived, params, operator_exclusions)
    check = liquidity(assessment.kept, params, category)
    kept = assessment.kept
    tonnes, _ = _totals(kept)
    prices = [t.unit_price for t in kept]
    return Indicative(
        day=day,
        as_of=as_of,
        live=check.ok,
        price=weighted_price(kept) if check.ok else previous_close,
        previous_close=previous_close,
        n=len(kept),
        tonnes=tonnes,
        min_price=min(prices) if prices else None,
        max_price=max(prices) if prices else None,
        excluded=assessment.excluded,
        review=assessment.review,
        liquidity=check,
    )


# --------------------------------------------------------------------------------------------------
# Corrections (section 8)


class CorrectionOutcome(enum.StrEnum):
    CORRECT = "correct"
    """Within the window and moved by at least the threshold: publish a correction notice."""
    BELOW_THRESHOLD = "below_threshold"
    """Moved by less than the threshold: the official value stands."""
    TOO_LATE = "too_late"
    """More than ``correction_days`` business days after publication: the value is final."""


@dataclass(frozen=True)
class CorrectionCheck:
    outcome: CorrectionOutcome
    relative_change: Decimal
    """|new - old| / old, unrounded."""
    business_days_since: int
    """Business days from the publication day to ``today`` (``business_days_between``)."""

    @property
    def needed(self) -> bool:
        return self.outcome is CorrectionOutcome.CORRECT


def correction_deadline(published_on: date, params: Params = DEFAULT_PARAMS) -> date:
    """The last day a value published on ``published_on`` can be corrected: ``correction_days``
    business days after it (inclusive)."""
    return add_business_days(published_on, params.correction_days, params.holidays)


def correction_check(
    old: Decimal, new: Decimal, published_on: date, today: date, params: Params = DEFAULT_PARAMS
) -> CorrectionCheck:
    """Section 8 on a recomputed value: a correction is made when today is at most
    ``correction_days`` business days after the publication day and |new - old| / old >=
    ``correction_threshold``. Pass the values as published (rounded) for P, I or a composite."""
    old, new = _decimal(old, "old"), _decimal(new, "new")
    if old <= 0:
        raise ValueError("the published value must be positive")
    if today < published_on:
        raise ValueError("today is before the publication day")
    with _ctx():
        change = abs(new - old) / old
    since = business_days_between(published_on, today, params.holidays)
    if since > params.correction_days:
        outcome = CorrectionOutcome.TOO_LATE
    elif change >= params.correction_threshold:
        outcome = CorrectionOutcome.CORRECT
    else:
        outcome = CorrectionOutcome.BELOW_THRESHOLD
    return CorrectionCheck(outcome=outcome, relative_change=change, business_days_since=since)


def needs_correction(
    old: Decimal, new: Decimal, published_on: date, today: date, params: Params = DEFAULT_PARAMS
) -> bool:
    """True when ``correction_check`` says a correction is to be published."""
    return correction_check(old, new, published_on, today, params).needed


# --------------------------------------------------------------------------------------------------
# Rebasing (section 9)


def rebase_factor(base_values: Iterable[Decimal]) -> Decimal:
    """1000 / mean(I over the new base period), the simple arithmetic mean of the given levels."""
    levels = [_decimal(v, "index level") for v in base_values]
    if not levels:
        raise ValueError("the new base period has no values")
    with _ctx():
        mean = sum(levels, Decimal(0)) / len(levels)
        if mean <= 0:
            raise ValueError("the mean index level must be positive")
        return INDEX_BASE / mean


def rebase(values: Mapping[K, Decimal], base_keys: Iterable[K]) -> dict[K, Decimal]:
    """I' = I * 1000 / mean(I over the new base period) for every value; ``base_keys`` are the keys
    (days) of the new base period, all of which must be in ``values``. Ratios between any two
    values, hence percentage changes, are unchanged; the mean of I' over the new base is 1000."""
    base_keys = list(base_keys)
    missing = [k for k in base_keys if k not in values]
    if missing:
        raise ValueError(f"no value for {missing[:3]} in the new base period")
    factor = rebase_factor(values[k] for k in base_keys)
    with _ctx():
        return {k: v * factor for k, v in values.items()}


def relative_change(old: Decimal, new: Decimal) -> Decimal:
    """(new - old) / old, unrounded."""
    with _ctx():
        return (new - old) / old


__all__ = [
    "CENT",
    "DEFAULT_PARAMS",
    "INDEX_BASE",
    "METHODOLOGY_VERSION",
    "PRECISION",
    "SHANGHAI",
    "Assessment",
    "CellValue",
    "CompositeValue",
    "CorrectionCheck",
    "CorrectionOutcome",
    "Exclusion",
    "Illiquid",
    "Indicative",
    "Liquidity",
    "OutlierResult",
    "Params",
    "Reason",
    "ShareBasis",
    "Status",
    "Trade",
    "add_business_days",
    "assess",
    "base_period",
    "base_price",
    "business_days",
    "business_day_of",
    "business_days_between",
    "business_window",
    "category_movement",
    "cell_value",
    "composite_value",
    "composite_weights",
    "correction_check",
    "correction_deadline",
    "counting_day",
    "eligible",
    "index_level",
    "indicative",
    "is_business_day",
    "liquidity",
    "link_day",
    "needs_correction",
    "next_business_day",
    "organisation_shares",
    "outliers",
    "previous_business_day",
    "previous_business_days",
    "publish",
    "rebase",
    "rebase_factor",
    "relative_change",
    "traded_value",
    "weighted_median",
    "weighted_price",
]
