"""Computing and publishing the price indices (METHODOLOGY.md) from the trade facts.

``pricing.methodology`` holds the rules as pure functions; this module loads the facts, turns them
into ``methodology.Trade`` values, stores what the rules return, and publishes: the daily close
(Celery beat at the cut-off), ``indices_rebuild`` over history, the intraday indicative value on
every trade (``/ws/indices/``), and corrections with notices beside the as-first-published series.

One implementation of the close, ``_Cells``, walks business days for every elementary series; the
daily close and corrections run it on one day and store through the ORM. The rebuild of history
(``pricing.index_rebuild``) computes the same cells set-wise (``pricing.index_vector``, held to
``_Cells`` by the tests) and writes in bulk; its values' audit lists are derived by ``_Cells`` when
asked for (``value_audit_lists``).
"""

import hashlib
import json
import logging
import sys
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Case, F, OuterRef, Q, Subquery, Sum, Value, When
from django.db.models.functions import Round
from django.utils import timezone

from listings.models import Category
from market.core.models import EconomicZone, Region
from pricing import methodology as m
from pricing.index_models import (
    CompositeComponent,
    IndexCorrection,
    IndexParams,
    IndexSeries,
    IndexValue,
    SeriesKind,
)
from pricing.models import TradeFact

logger = logging.getLogger(__name__)

INDICES_GROUP = "indices"
CENT = Decimal("0.01")
PRICE_PLACES = Decimal("0.000001")
TONNE_PLACES = Decimal("0.001")

# The composites the market publishes: code -> (name, English name, the category whose children's
# national series are its components; "" for the market's overall composite of top-level categories).
COMPOSITES = {
    "composite.ferrous": ("废钢铁综合价格指数", "Ferrous scrap composite", "ferrous"),
    "composite.nonferrous": ("废有色金属综合价格指数", "Non-ferrous scrap composite", "nonferrous"),
    "composite.paper": ("废纸综合价格指数", "Waste paper composite", "paper"),
    "composite.plastics": ("废塑料综合价格指数", "Waste plastics composite", "plastics"),
    "composite.bulk": ("大宗工业固体废物综合价格指数", "Bulk industrial solid waste composite", "bulk"),
    "composite.market": ("再生资源综合价格指数", "Renewable resources composite", ""),
}


# --- parameters -----------------------------------------------------------------------------


def _holidays() -> frozenset[date]:
    return frozenset(date.fromisoformat(d.strip()) for d in settings.INDEX_HOLIDAYS if d.strip())


@lru_cache(maxsize=1)
def _params_cached(key) -> m.Params:
    cutoff, holidays, min_cell, min_lots = key
    return m.Params(
        cutoff=time.fromisoformat(cutoff),
        holidays=holidays,
        default_min_cell_tonnes=Decimal(str(min_cell)),
        min_lot_tonnes=dict(min_lots),
    )


def params() -> m.Params:
    """The methodology's parameters from settings (cut-off, holidays, tonnage floors) and the
    catalogue (each category's minimum lot for the index, edited by operators in the admin)."""
    min_lots = tuple(
        sorted(
            (c, v)
            for c, v in Category.objects.filter(min_lot_tonnes__gt=0).values_list("code", "min_lot_tonnes")
        )
    )
    return _params_cached((settings.INDEX_CUTOFF, _holidays(), settings.INDEX_MIN_CELL_TONNES, min_lots))


# --- series ---------------------------------------------------------------------------------


def _ancestors(code: str) -> list[str]:
    parts = code.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@lru_cache(maxsize=64)
def _zones_of_province(province_code: str) -> tuple[str, ...]:
    return tuple(EconomicZone.objects.filter(provinces=province_code).values_list("code", flat=True))


def series_code(category: str, scope: str, key: str = "") -> str:
    return {
        "national": f"{category}@CN",
        "zone": f"{category}@Z:{key}",
        "province": f"{category}@P:{key[:2]}",
    }[scope]


def _scopes_of_county(county: str) -> list[tuple[str, str]]:
    province = county[:2] + "0000"
    return [("national", ""), ("province", province), *(("zone", z) for z in _zones_of_province(province))]


def series_of_fact(category: str, county: str) -> list[str]:
    """Every elementary series a trade counts in: its category and each ancestor, nationally, in
    its province and in each economic zone its province belongs to."""
    return [series_code(c, s, k) for c in _ancestors(category) for s, k in _scopes_of_county(county)]


def series_ensure_many(pairs, known: set[str] | None = None) -> set[str]:
    """Create the series of every (category, county) pair that do not exist yet, in a few queries.
    ``known``: codes already known to exist (skips the lookup). Returns the codes that now exist."""
    wanted: dict[str, tuple[str, str, str]] = {}
    for category, county in pairs:
        for c in _ancestors(category):
            for scope, key in _scopes_of_county(county):
                wanted.setdefault(series_code(c, scope, key), (c, scope, key))
    have = set(known or ())
    unknown = [code for code in wanted if code not in have]
    if unknown:
        have |= set(IndexSeries.objects.filter(code__in=unknown).values_list("code", flat=True))
    missing = {code: v for code, v in wanted.items() if code not in have}
    if missing:
        cats = {c for c, _s, _k in missing.values()}
        names = {
            c: (n, e)
            for c, n, e in Category.objects.filter(code__in=cats).values_list("code", "name", "name_en")
        }
        provinces = dict(
            Region.objects.filter(pk__in={k for _c, s, k in missing.values() if s == "province"}).values_list(
                "code", "name"
            )
        )
        zones = {
            z: (n, e)
            for z, n, e in EconomicZone.objects.filter(pk__in={k for _c, s, k in missing.values() if s == "zone"})
            .values_list("code", "name", "name_en")
        }  # fmt: skip
        rows = []
        for code, (c, scope, key) in missing.items():
            if scope == "national":
                place, place_en = "全国", "China"
            elif scope == "province":
                place = place_en = provinces.get(key, key)
            else:
                place, place_en = zones.get(key, (key, key))
            name, name_en = names.get(c, (c, c))
            rows.append(
                IndexSeries(
                    code=code,
                    kind=SeriesKind.ELEMENTARY,
                    category_id=c,
                    scope=scope,
                    zone_id=key if scope == "zone" else None,
                    province_id=key if scope == "province" else None,
                    name=f"{name}价格指数（{place}）",
                    name_en=f"{name_en} price index ({place_en})",
                    sort_order={"national": 0, "zone": 1, "province": 2}[scope] * 1000 + c.count(".") * 100,
                )  # fmt: skip
            )
        IndexSeries.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
        have |= set(missing)
    return have | set(wanted)


def composites_ensure() -> None:
    for code, (name, name_en, _cat) in COMPOSITES.items():
        IndexSeries.objects.get_or_create(
            code=code,
            defaults={"kind": SeriesKind.COMPOSITE, "name": name, "name_en": name_en, "sort_order": 0},
        )


def composite_members(code: str) -> list[str]:
    parent = COMPOSITES[code][2]
    if parent:
        children = Category.objects.filter(parent_id=parent).values_list("code", flat=True)
    else:  # the market: every grade (second-level node) of the non-hazardous categories, not their mixes
        children = Category.objects.filter(
            parent__isnull=False, parent__parent__isnull=True, parent__hazardous=False
        ).values_list("code", flat=True)
    return [series_code(c, "national") for c in children]


# --- facts -> trades ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fact:
    trade: m.Trade
    county: str


def _to_trade(row) -> _Fact:
    trade_id, awarded, settled, category, county, seller, buyer, q, p, voided = row
    return _Fact(
        m.Trade(
            trade_id=trade_id, quantity_t=q, unit_price=p, awarded_at=awarded, settled_at=settled,
            seller=seller, buyer=buyer, category=category, region=county, voided=voided is not None,
        ),
        county,
    )  # fmt: skip


FACT_FIELDS = (
    "trade_id", "awarded_at", "settled_at", "category_id", "region_id", "seller_uscc", "buyer_uscc",
    "quantity_t", "unit_price", "voided_at",
)  # fmt: skip


def _day_start(d: date, p: m.Params) -> datetime:
    return datetime.combine(d, time(0), tzinfo=p.timezone)


def _cutoff(d: date, p: m.Params) -> datetime:
    """The daily cut-off of ``d``: a time before it counts on ``d`` or earlier, at or after it later."""
    return datetime.combine(d, p.cutoff, tzinfo=p.timezone)


def _settled_bounds(start: date, end: date, p: m.Params) -> tuple[datetime, datetime]:
    """The settlement times read for the facts counting on business days in [start, end]."""
    return _day_start(start - timedelta(days=10), p), _day_start(end + timedelta(days=1), p) + timedelta(
        hours=23
    )


def _facts_bucket(rows, start: date, end: date, p: m.Params, out: dict[date, list[_Fact]]) -> None:
    """Fact rows (``FACT_FIELDS``) as trades, into ``out`` by counting day when it is in [start, end].
    Organisation, category and county codes are interned: a run holds few distinct ones, and the
    rules hash them again and again."""
    intern = sys.intern
    for trade_id, awarded, settled, category, county, seller, buyer, q, price, voided in rows:
        category, county = intern(category), intern(county)
        fact = _Fact(
            m.Trade(
                trade_id=trade_id, quantity_t=q, unit_price=price, awarded_at=awarded, settled_at=settled,
                seller=intern(seller), buyer=intern(buyer), category=category, region=county,
                voided=voided is not None,
            ),
            county,
        )  # fmt: skip
        d = m.counting_day(fact.trade, p)
        if start <= d <= end:
            out[d].append(fact)


def _facts_between(
    start: date,
    end: date,
    p: m.Params,
    *,
    branch: str | None = None,
    stream: bool = True,
    as_of: datetime | None = None,
) -> dict[date, list[_Fact]]:
    """Facts that count on business days in [start, end], by counting day (voided ones included:
    the rules exclude them, and the audit list says so). ``branch``: only facts of this category
    and those below it. ``as_of``: the facts as they were then (recorded by then; voided only if
    voided by then)."""  # fmt: skip
    lo, hi = _settled_bounds(start, end, p)
    # The counting day is in [start, end] exactly when both times are before end's cut-off and one of
    # them is at or after the cut-off of the business day before start (``methodology.counting_day``):
    # the database keeps to those, the settlement range above being what its index reads.
    first, last = _cutoff(m.previous_business_day(start, p.holidays), p), _cutoff(end, p)
    rows = TradeFact.objects.filter(
        Q(awarded_at__gte=first) | Q(settled_at__gte=first),
        settled_at__gte=lo, settled_at__lt=min(hi, last), awarded_at__lt=last,
    )  # fmt: skip
    if branch is not None:
        rows = rows.filter(Q(category_id=branch) | Q(category__code__startswith=f"{branch}."))
    if as_of is not None:
        rows = rows.filter(created_at__lte=as_of).annotate(
            voided_then=Case(When(voided_at__lte=as_of, then=F("voided_at")), default=None)
        )
        rows = rows.values_list(*FACT_FIELDS[:-1], "voided_then")
    else:
        rows = rows.values_list(*FACT_FIELDS)
    out: dict[date, list[_Fact]] = defaultdict(list)
    # ``stream``: through a server-side cursor, for spans of many facts; a day's branch (the live
    # tick) is fetched at once, without the cursor's round trips.
    _facts_bucket(rows.iterator(chunk_size=5000) if stream else rows, start, end, p, out)
    return out


# --- values ---------------------------------------------------------------------------------


def _previous_cell(v: IndexValue | None) -> m.CellValue | None:
    if v is None:
        return None
    return m.CellValue(
        day=v.day, status=m.Status(v.status), price=v.price, n=v.n, tonnes=v.tonnes, amount=v.amount,
        min_price=v.min_price, max_price=v.max_price, excluded=v.excluded, used=(), unused={}, review=(),
        day_liquidity=None, window_liquidity=None, window=(), days_carried=v.days_carried,
        carried_from=v.carried_from, day_n=0, day_tonnes=Decimal(0), day_amount=v.day_amount,
    )  # fmt: skip


def _q(value: Decimal | None, places=CENT) -> Decimal | None:
    return None if value is None else value.quantize(places, rounding=ROUND_HALF_UP)


def _level(price: Decimal, base: Decimal | None) -> Decimal | None:
    return None if not base else _q(m.index_level(price, base))


_AUDIT_PARAMS: dict[tuple[int, str | None], tuple[m.Params, dict]] = {}


def _audit_params(p: m.Params, category: str | None) -> dict:
    """The parameters stored with a value: the general ones, and of the per-category tables only
    the entries that apply to the series' category, its ancestors and the categories under it.
    (Cached per parameters object and category; ``Params`` itself is not hashable.)"""
    hit = _AUDIT_PARAMS.get((id(p), category))
    if hit is not None and hit[0] is p:
        return hit[1]
    audit = _params_of_category(p.as_audit(), category)
    if len(_AUDIT_PARAMS) > 4096:
        _AUDIT_PARAMS.clear()
    _AUDIT_PARAMS[(id(p), category)] = (p, audit)
    return audit


def _params_of_category(audit: dict, category: str | None) -> dict:
    """The parameters (``Params.as_audit()``) with, of the per-category tables, only the entries that
    apply to ``category``, its ancestors and the categories under it."""
    audit = dict(audit)
    for table in ("min_lot_tonnes", "min_cell_tonnes"):
        audit[table] = {
            k: v for k, v in audit[table].items()
            if category and (k == category or k.startswith(category + ".") or category.startswith(k + "."))
        }  # fmt: skip
    return audit


def params_set(p: m.Params) -> IndexParams:
    """The stored set of these parameters (made the first time it is used)."""
    audit = p.as_audit()
    digest = hashlib.sha256(json.dumps(audit, sort_keys=True).encode()).hexdigest()
    found, _created = IndexParams.objects.get_or_create(digest=digest, defaults={"params": audit})
    return found


def value_params(value: IndexValue) -> dict:
    """The parameters a value was computed with: stored beside it, or its set's for its category."""
    if value.params or value.params_set_id is None:
        return value.params
    return _params_of_category(value.params_set.params, value.series.category_id)


def _value_fields(cell: m.CellValue, series: IndexSeries, p: m.Params) -> dict:
    """What is stored of a cell. The level is computed from the unrounded price when the series
    already has a base; a base found later sets the levels of the values it finds from their stored
    price (``_bases_fix``, ``index_rebuild``)."""
    return {
        "status": cell.status.value,
        "price": _q(cell.price, PRICE_PLACES),
        "level": _level(cell.price, series.base_price),
        "n": cell.n,
        "tonnes": _q(cell.tonnes, TONNE_PLACES),
        "amount": _q(cell.amount),
        "day_amount": _q(cell.day_amount),
        "min_price": _q(cell.min_price),
        "max_price": _q(cell.max_price),
        "excluded": cell.excluded,
        "days_carried": cell.days_carried,
        "carried_from": cell.carried_from,
        "used": list(cell.used),
        "unused": {
            k: [e.code.value if hasattr(e.code, "value") else str(e.code), e.detail]
            for k, e in cell.unused.items()
        },
        "review": list(cell.review),
        "audit_derived": False,
        "params": _audit_params(p, series.category_id),
        "methodology_version": cell.methodology_version,
    }


VALUE_FIELDS = [
    "status", "price", "level", "n", "tonnes", "amount", "day_amount", "min_price", "max_price", "excluded",
    "days_carried", "carried_from", "used", "unused", "review", "audit_derived", "params", "methodology_version",
]  # fmt: skip


class _Cells:
    """Every elementary series' cells, business day after business day: the one implementation of
    the close (rules 1 to 5 through ``methodology.cell_value``) behind the daily close, corrections
    and the rebuild of history.

    Each series keeps in memory its previous cell and its window's days through rules 1 and 2
    (``assessed_days``), so a day of the window is assessed once and walking days in order costs
    no query per series and day. A series is computed on a day when it has a previous value or a
    trade in the day's window (any trade, even an ineligible one: the audit list names it); its
    series rows are created with its first trade.
    """

    def __init__(self, p: m.Params, *, ensure: bool = True):
        self.p = p
        self.ensure = ensure
        self.series = {s.code: s for s in IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY)}
        self.previous: dict[str, m.CellValue] = {}  # the last day's cells with a status
        self.assessed: dict[str, dict[date, m.Assessment]] = {}
        self.traded: dict[str, date] = {}  # series -> the last day it had a trade
        self._codes: dict[tuple[str, str], tuple[str, ...]] = {}
        self._empty = m.assess((), p)  # a day without trades (the same for every series)

    def start(self, day: date) -> None:
        """Begin at ``day``: the previous business day's stored values are the previous cells."""
        prev_day = m.previous_business_day(day, self.p.holidays)
        self.previous = {
            v.series.code: _previous_cell(v)
            for v in IndexValue.objects.filter(
                day=prev_day, series__kind=SeriesKind.ELEMENTARY
            ).select_related("series")
        }

    def codes_of(self, category: str, county: str) -> tuple[str, ...]:
        codes = self._codes.get((category, county))
        if codes is None:
            codes = self._codes[(category, county)] = tuple(series_of_fact(category, county))
        return codes

    def _by_series(self, facts) -> dict[str, list[m.Trade]]:
        by_series: dict[str, list[m.Trade]] = defaultdict(list)
        for fact in facts:
            for code in self.codes_of(fact.trade.category, fact.county):
                by_series[code].append(fact.trade)
        if self.ensure and any(code not in self.series for code in by_series):  # new series, first trade
            pairs = {(f.trade.category, f.county) for f in facts}
            have = series_ensure_many(pairs, known=set(self.series))
            new = [code for code in have if code not in self.series]
            self.series.update((s.code, s) for s in IndexSeries.objects.filter(code__in=new))
        return by_series

    def assess(self, day: date, facts) -> None:
        """Rules 1 and 2 on a day of the window before the first day computed (the daily close)."""
        for code, trades in self._by_series(facts).items():
            self.assessed.setdefault(code, {})[day] = m.assess(trades, self.p)
            self.traded[code] = day

    def close(self, day: date, facts) -> list[tuple[IndexSeries, m.CellValue]]:
        """The cells of ``day`` (the business day after the last one closed or started from) with a
        status, from the facts counting on it."""
        p = self.p
        window = m.business_window(day, p.window_days, p.holidays)
        by_series = self._by_series(facts)
        for code in by_series:
            self.traded[code] = day
        first = window[0]
        active = {code for code, last in self.traded.items() if last >= first}
        active.update(self.previous)
        previous, self.previous = self.previous, {}
        assessed = self.assessed
        out = []
        for code in active:
            series = self.series.get(code)
            if series is None:  # a trade of a series not created (corrections create none)
                continue
            memo = assessed.get(code)
            if memo is None:
                memo = assessed[code] = {}
            else:
                for old_day in [d for d in memo if d < first]:
                    del memo[old_day]
            trades = by_series.get(code)
            memo[day] = m.assess(trades, p) if trades else self._empty
            # The day's trades are in the memo with the window's other days: nothing is passed again.
            cell = m.cell_value(
                day, (), previous.get(code), p, category=series.category_id, assessed_days=memo
            )
            if cell.status is not None:
                self.previous[code] = cell
                out.append((series, cell))
        for code in [code for code, last in self.traded.items() if last < first]:
            del self.traded[code]  # out of every window from now on: nothing of it to keep
            if code not in self.previous:
                assessed.pop(code, None)
        return out


def value_audit_lists(value: IndexValue) -> tuple[list[str], dict[str, list[str]], list[str]]:
    """A value's audit lists (trade ids used; {trade id: [reason, detail]} examined and not used;
    trade ids flagged for review): as stored, or for a value of the set-wise rebuild
    (``audit_derived``) computed again by ``_Cells`` for its series and day, with the parameters
    stored beside it, from the facts of its window as they were when it was published."""
    if not value.audit_derived:
        return list(value.used), dict(value.unused), list(value.review)
    series = value.series
    stored = value_params(value)
    p = m.Params.from_audit(stored) if stored else params()
    window = m.business_window(value.day, p.window_days, p.holidays)
    facts = _facts_between(
        window[0], value.day, p, branch=series.category_id, stream=False, as_of=value.published_at
    )
    cells = _Cells(p, ensure=False)
    cells.series = {series.code: series}
    # Only the facts that count in this series (the branch's others count in its other regions).
    facts = {
        d: [f for f in day if series.code in cells.codes_of(f.trade.category, f.county)]
        for d, day in facts.items()
    }
    previous = IndexValue.objects.filter(
        series=series, day=m.previous_business_day(value.day, p.holidays)
    ).first()
    cells.previous = {series.code: _previous_cell(previous)} if previous is not None else {}
    for d in window[:-1]:
        cells.assess(d, facts.get(d, ()))
    for _series, cell in cells.close(value.day, facts.get(value.day, ())):
        fields = _value_fields(cell, series, p)
        return fields["used"], fields["unused"], fields["review"]
    return [], {}, []


def _store_day(day: date, cells: list[tuple[IndexSeries, m.CellValue]], p: m.Params, *, publish: bool):
    """Store one day's cells: new values are created (published when ``publish``), unpublished ones
    updated; a published value changes only by a correction (``index_correct``)."""
    stored = []
    now = timezone.now()
    existing = {
        v.series_id: v for v in IndexValue.objects.filter(day=day, series__kind=SeriesKind.ELEMENTARY)
    }
    for series, cell in cells:
        fields = _value_fields(cell, series, p)
        value = existing.get(series.pk)
        if value is None:
            value = IndexValue(series=series, day=day, **fields)
            if publish:
                value.published_at = now
                value.first_price, value.first_level, value.first_status = (
                    value.price,
                    value.level,
                    value.status,
                )
        elif value.published_at is not None:
            continue
        else:
            for k, v in fields.items():
                setattr(value, k, v)
        stored.append(value)
    new = [v for v in stored if v.pk is None]
    old = [v for v in stored if v.pk is not None]  # before the insert gives the new ones their keys
    IndexValue.objects.bulk_create(new, batch_size=1000)
    if old:
        IndexValue.objects.bulk_update(old, VALUE_FIELDS, batch_size=500)
    return stored


def _base_of(statuses: dict[date, m.Status], totals: dict[date, tuple[Decimal, Decimal]], p: m.Params):
    """A series' base (first day, last day, P(s,B)) from its stored values' statuses and, for its T
    days, their stored (amount, tonnes); None while it has no full month (``methodology.base_period``).
    P(s,B) = the base period's T amounts over their tonnes, to 6 places."""
    period = m.base_period(statuses, p)
    if period is None:
        return None
    amount = tonnes = Decimal(0)
    found = False
    for d, (a, t) in totals.items():
        if period[0] <= d <= period[1] and statuses.get(d) == m.Status.TRANSACTION:
            amount += a
            tonnes += t
            found = True
    if not found or not tonnes:
        return None
    return period[0], period[1], (amount / tonnes).quantize(PRICE_PLACES)


def bases_store(series: list[IndexSeries]) -> None:
    """Store the bases of many series (``base_start``, ``base_end``, ``base_price``): on PostgreSQL in
    one statement over arrays (``bulk_update``'s CASE per row grows with the square of a batch)."""
    if connection.vendor != "postgresql":
        IndexSeries.objects.bulk_update(series, ["base_start", "base_end", "base_price"], batch_size=500)
        return
    table = connection.ops.quote_name(IndexSeries._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} s SET base_start = v.base_start, base_end = v.base_end, base_price = v.base_price "  # noqa: S608
            "FROM unnest(%s::bigint[], %s::date[], %s::date[], %s::numeric[]) AS v(id, base_start, base_end, base_price) "
            "WHERE s.id = v.id",
            [[x.pk for x in series], [x.base_start for x in series], [x.base_end for x in series],
             [x.base_price for x in series]],
        )  # fmt: skip


def _levels_from_base(queryset, base: Decimal) -> None:
    """One statement: I = 1000 * P / P(B) from the stored prices, rounded half up to 0.01 (prices
    are positive), of the values and of their as-first-published prices."""
    queryset.update(
        level=Round(F("price") * 1000 / Value(base), 2),
        first_level=Case(
            When(first_price__isnull=True, then=Value(None)),
            default=Round(F("first_price") * 1000 / Value(base), 2),
        ),
    )


def _bases_fix(series_ids=None) -> int:
    """Set the base period and price of every series that has none yet and now has a full month,
    then the levels of all its values. Returns how many series got a base."""
    p = params()
    fixed = 0
    qs = IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY, base_price__isnull=True)
    if series_ids is not None:
        qs = qs.filter(pk__in=series_ids)
    for series in qs:
        statuses, totals = {}, {}
        for d, s, a, t in IndexValue.objects.filter(series=series).values_list(
            "day", "status", "amount", "tonnes"
        ):
            statuses[d] = m.Status(s)
            if s == m.Status.TRANSACTION.value:
                totals[d] = (a, t)
        base = _base_of(statuses, totals, p)
        if base is None:
            continue
        series.base_start, series.base_end, series.base_price = base
        series.save(update_fields=["base_start", "base_end", "base_price"])
        _levels_from_base(IndexValue.objects.filter(series=series), series.base_price)
        fixed += 1
    return fixed


# --- composites -----------------------------------------------------------------------------


def _composites_cache(cache: dict | None) -> dict:
    """The composites and their members (national series of the composite's categories that have a
    base), read once per run of days and kept in ``cache`` with each chain year's components."""
    cache = {} if cache is None else cache
    if "composites" not in cache:
        composites_ensure()
        cache["composites"] = {s.code: s for s in IndexSeries.objects.filter(code__in=COMPOSITES)}
        cache["members"] = {
            code: {
                s.code: s
                for s in IndexSeries.objects.filter(
                    code__in=composite_members(code), base_price__isnull=False
                )
            }
            for code in COMPOSITES
        }
    return cache


def _composites_of_day(day: date, p: m.Params, cache: dict, before_chain=None):
    """(composite, its chain year's components) for each composite that has any on ``day``; a chain
    year's components are made (``_chain_period``) the first time one of its days is computed.
    ``before_chain`` is called first (the rebuild stores the composite values it holds back)."""
    for code in COMPOSITES:
        composite = cache["composites"][code]
        members = cache["members"][code]
        if not members:
            continue
        key = (code, day.year)
        comps = cache.get(key)
        if not comps:
            if before_chain is not None:
                before_chain()
            comps = _chain_period(composite, members, day, p)
        if comps:
            cache[key] = comps
            yield composite, comps


def _composite_fields(comps: list[CompositeComponent], values: dict, p: m.Params) -> dict:
    """A composite's stored fields on a day from its components' values of that day (``values``:
    component code -> anything with the stored price, status, n, tonnes, amount, day_amount)."""
    # Weights read back from the database (SQLite keeps ~15 digits) are renormalised to sum to 1.
    total = sum((c.weight for c in comps), Decimal(0))
    weights = {c.component.code: c.weight / total for c in comps}
    link_prices = {c.component.code: c.link_price for c in comps}
    prices = {k: (values[k].price if k in values else None) for k in weights}
    statuses = {k: (m.Status(values[k].status) if k in values else None) for k in weights}
    liquid = {
        k: prices[k] / link_prices[k] for k in weights
        if prices[k] is not None and statuses[k] in (m.Status.TRANSACTION, m.Status.WINDOW)
    }  # fmt: skip
    movement = m.category_movement(liquid) if liquid else Decimal(1)
    imputed = {k: movement for k in weights if prices[k] is None or statuses[k] == m.Status.STALE}
    result = m.composite_value(
        comps[0].link_value, weights, prices, link_prices, statuses=statuses, imputed=imputed
    )
    level, contributions = result.published()
    return {
        "status": m.Status.TRANSACTION.value if liquid else m.Status.CARRIED.value,  # no ladder of its own
        "price": level, "level": level, "n": sum(v.n for v in values.values()),
        "tonnes": sum((v.tonnes for v in values.values()), Decimal(0)),
        "amount": sum((v.amount for v in values.values()), Decimal(0)),
        "day_amount": sum((v.day_amount for v in values.values()), Decimal(0)),
        "contributions": {
            k: {"weight": str(weights[k]), "relative": str(result.relatives[k]), "contribution": str(contributions[k]),
                "imputed": k in imputed}
            for k in weights
        },
        "params": _audit_params(p, None), "methodology_version": m.METHODOLOGY_VERSION,
    }  # fmt: skip


def _composite_close(day: date, p: m.Params, *, publish: bool, cache: dict | None = None) -> int:
    """Each composite's value on ``day``: a Lowe index chained yearly on the link day. ``cache``
    (a dict kept by the caller over a run of days) saves re-reading the composites, their
    members and a chain year's components every day."""
    cache = _composites_cache(cache)
    made = 0
    for composite, comps in _composites_of_day(day, p, cache):
        values = {
            v.series.code: v
            for v in IndexValue.objects.filter(
                series__in=[c.component for c in comps], day=day
            ).select_related("series")
        }
        if not values:
            continue
        fields = _composite_fields(comps, values, p)
        value, created = IndexValue.objects.get_or_create(series=composite, day=day, defaults=fields)
        if created and publish:
            value.published_at = timezone.now()
            value.first_price, value.first_level, value.first_status = value.price, value.level, value.status
            value.save(update_fields=["published_at", "first_price", "first_level", "first_status"])
        elif not created and value.published_at is None:
            IndexValue.objects.filter(pk=value.pk).update(**fields)
        made += 1
    return made


def _chain_period(composite: IndexSeries, members: dict, day: date, p: m.Params) -> list[CompositeComponent]:
    """The components (weights, link prices, link value) of the chain year containing ``day``;
    made the first time that year is computed."""
    year = day.year
    comps = list(
        CompositeComponent.objects.filter(composite=composite, year=year).select_related("component")
    )
    if comps:
        return comps
    link = m.link_day(year, p.holidays)
    link_value = IndexValue.objects.filter(series=composite, day=link).values_list("price", flat=True).first()
    by_series = {s.pk: code for code, s in members.items()}
    if link_value is None:
        if IndexValue.objects.filter(series=composite, day__lt=day).exists():
            return []  # the link day was never computed: a rebuild from its year is needed
        # The first chain period: C = 1000 at the base, link prices are the base prices, weights are
        # the values traded in the base periods.
        weights_by = dict.fromkeys(members, Decimal(0))
        rows = IndexValue.objects.filter(series__in=members.values()).values_list(
            "series_id", "day", "day_amount"
        )
        for series_id, d, amount in rows:
            s = members[by_series[series_id]]
            if s.base_start <= d <= s.base_end:
                weights_by[s.code] += amount
        link_prices = {code: s.base_price for code, s in members.items()}
        link_value = Decimal(1000)
    else:
        weights_by = dict.fromkeys(members, Decimal(0))
        rows = (
            IndexValue.objects.filter(series__in=members.values(), day__year=year - 1)
            .values("series_id")
            .annotate(v=Sum("day_amount"))
            .values_list("series_id", "v")
        )
        for series_id, amount in rows:
            weights_by[by_series[series_id]] = amount or Decimal(0)
        link_prices = dict.fromkeys(members)
        rows = IndexValue.objects.filter(series__in=members.values(), day=link).values_list(
            "series_id", "price"
        )
        for series_id, price in rows:
            link_prices[by_series[series_id]] = price
    usable = {k: v for k, v in weights_by.items() if v > 0 and link_prices.get(k)}
    if not usable:
        return []
    weights = m.composite_weights(usable)
    rows = [
        CompositeComponent(
            composite=composite,
            component=members[k],
            year=year,
            weight=_q(w, Decimal(10) ** -18),
            link_price=link_prices[k],
            link_value=link_value,
        )  # fmt: skip
        for k, w in weights.items()
    ]
    # Weights rounded for storage must still sum to 1: the largest takes the remainder.
    drift = Decimal(1) - sum(r.weight for r in rows)
    max(rows, key=lambda r: r.weight).weight += drift
    CompositeComponent.objects.bulk_create(rows, ignore_conflicts=True, batch_size=1000)
    return list(CompositeComponent.objects.filter(composite=composite, year=year).select_related("component"))


# --- the daily close, history, corrections --------------------------------------------------


def _cells_of_day(day: date, p: m.Params, *, ensure: bool = True) -> list[tuple[IndexSeries, m.CellValue]]:
    """Every elementary series' cell of ``day`` from the stored previous day and the facts of the
    day's window (what the daily close and a correction compute)."""
    window = m.business_window(day, p.window_days, p.holidays)
    facts = _facts_between(window[0], day, p)
    cells = _Cells(p, ensure=ensure)
    cells.start(day)
    for d in window[:-1]:
        cells.assess(d, facts.get(d, ()))
    return cells.close(day, facts.get(day, ()))


def indices_close(day: date | None = None, *, publish: bool = True) -> int:
    """The official close of ``day`` (default: today, at the cut-off). Idempotent: a published
    value is never overwritten here (corrections go through ``index_correct``)."""
    p = params()
    day = day or timezone.localdate()
    if not m.is_business_day(day, p.holidays):
        return 0
    with transaction.atomic():
        stored = _store_day(day, _cells_of_day(day, p), p, publish=publish)
        _bases_fix({v.series_id for v in stored})
        made = _composite_close(day, p, publish=publish)
    return len(stored) + made


def indices_rebuild(start: date, end: date, *, progress=None, timings: dict | None = None) -> int:
    """Recompute every business day in [start, end] from the facts, replacing what was stored
    (values, bases from scratch, composites' chain periods); as-first-published values are kept.
    Set-based (``pricing.index_rebuild``): the facts are read once, every series' cells computed in
    memory by the rules of the daily close, and the values written in bulk.
    ``timings`` (a dict) receives the seconds spent in each phase. Returns the business days."""
    from pricing.index_rebuild import rebuild

    return rebuild(start, end, progress=progress, timings=timings)


def index_correct(
    *, day: date, reason: str, actor=None, today: date | None = None, ip: str | None = None
) -> list[IndexCorrection]:
    """Recompute a published day (an input error fixed, a trade voided later): each value that moves
    by at least 0.1 % within 5 business days of publication is corrected with a notice; the
    as-first-published value stays beside it; composites of the day follow. Returns every notice
    published (elementary series first, then composites); each corrected value is written to the
    audit log (who, from where, why, the level before and after)."""
    p = params()
    today = today or timezone.localdate()
    cells = sorted(_cells_of_day(day, p, ensure=False), key=lambda sc: (sc[0].sort_order, sc[0].code))
    corrections, composites_corrected = [], []
    with transaction.atomic():
        # Locked (in one order): a second correction of the day at the same moment (a double click,
        # two operators) waits, then finds nothing left to correct, and publishes no second notice.
        locked = IndexValue.objects.filter(day=day).select_related("series").select_for_update(of=("self",))
        current = {v.series.code: v for v in locked.order_by("pk")}
        for series, cell in cells:
            old = current.get(series.code)
            if old is None or old.published_at is None:
                continue
            fields = _value_fields(cell, series, p)
            old_pub, new_pub = _q(old.price), _q(fields["price"])
            if not m.needs_correction(old_pub, new_pub, timezone.localdate(old.published_at), today, p):
                continue
            corrections.append(
                IndexCorrection(
                    value=old,
                    old_price=old.price,
                    new_price=fields["price"],
                    old_level=old.level,
                    new_level=fields["level"],
                    reason=reason,
                    actor=actor if getattr(actor, "is_authenticated", False) else None,
                )  # fmt: skip
            )
            for k, v in fields.items():
                setattr(old, k, v)
            old.corrected_at = timezone.now()
            old.save()
        IndexCorrection.objects.bulk_create(corrections, batch_size=1000)
        if corrections:
            composites = IndexValue.objects.filter(day=day, series__kind=SeriesKind.COMPOSITE)
            before = {v.series_id: v for v in composites}
            IndexValue.objects.filter(pk__in=[v.pk for v in before.values()]).update(published_at=None)
            _composite_close(day, p, publish=False)
            for v in IndexValue.objects.filter(day=day, series__kind=SeriesKind.COMPOSITE):
                old = before.get(v.series_id)
                v.published_at = old.published_at if old else timezone.now()
                v.first_price = old.first_price if old else v.price
                v.first_level = old.first_level if old else v.level
                v.first_status = old.first_status if old else v.status
                if old is not None and old.level != v.level:
                    v.corrected_at = timezone.now()
                    composite_notice = IndexCorrection.objects.create(
                        value=v,
                        old_price=old.price,
                        new_price=v.price,
                        old_level=old.level,
                        new_level=v.level,
                        reason=reason,
                        actor=actor if getattr(actor, "is_authenticated", False) else None,
                    )
                    composites_corrected.append(composite_notice)
                v.save()
        for c in corrections + composites_corrected:
            _correction_audit(actor, c.value, c.old_level, c.new_level, reason, ip)
    return corrections + composites_corrected


def _correction_audit(actor, value: IndexValue, old_level, new_level, reason: str, ip) -> None:
    from market.core.audit import audit_record

    audit_record(
        actor=actor, action="index.correct", target=value,
        from_state="" if old_level is None else str(old_level), to_state="" if new_level is None else str(new_level),
        reason=reason, ip=ip, data={"series": value.series.code, "day": value.day.isoformat()},
    )  # fmt: skip


# --- intraday -------------------------------------------------------------------------------


def indicative_day(fact: TradeFact, p: m.Params | None = None) -> date:
    """The business day whose indicative values ``fact`` moves (its counting day)."""
    p = p or params()
    return m.counting_day(_to_trade(tuple(getattr(fact, f) for f in FACT_FIELDS)).trade, p)


def indicative_for(fact: TradeFact) -> list[dict]:
    """The indicative values of the series a new trade counts in (rules 2 and 3 on what arrived
    today; the previous official close when rule 3 fails): what ``/ws/indices/`` pushes.

    It runs after every trade, so it reads only today's facts of the trade's top-level branch, puts
    each of them into its series once, and reads every series' previous close in one query."""
    p = params()
    day = indicative_day(fact, p)
    codes = series_of_fact(fact.category_id, fact.region_id)
    wanted = set(codes)
    before = IndexValue.objects.filter(series=OuterRef("pk"), day__lt=day).order_by("-day")
    of_codes = IndexSeries.objects.filter(code__in=codes).annotate(
        close_price=Subquery(before.values("price")[:1]), close_level=Subquery(before.values("level")[:1])
    )
    series = {s.code: s for s in of_codes}
    if len(series) < len(wanted):  # the first trade of a series creates it (with no close before)
        series_ensure_many({(fact.category_id, fact.region_id)}, known=set(series))
        series = {s.code: s for s in of_codes.all()}
    trades_of: dict[str, list[m.Trade]] = defaultdict(list)
    branch = _ancestors(fact.category_id)[0]
    for f in _facts_between(day, day, p, branch=branch, stream=False).get(day, []):
        for code in series_of_fact(f.trade.category, f.county):
            if code in wanted:
                trades_of[code].append(f.trade)
    ticks = []
    for code in codes:
        s = series.get(code)
        if s is None:
            continue
        ind = m.indicative(day, trades_of.get(code, []), s.close_price, p, category=s.category_id)
        price = ind.price
        ticks.append(
            {
                "series": code, "name": s.name, "day": day.isoformat(), "live": ind.live,
                "price": str(_q(price)) if price is not None else None,
                "level": str(_level(price, s.base_price)) if price is not None and s.base_price else None,
                "previous_close": str(_q(s.close_price)) if s.close_price is not None else None,
                "previous_level": str(s.close_level) if s.close_level is not None else None,
                "n": ind.n, "tonnes": str(_q(ind.tonnes, Decimal("0.001"))), "label": "indicative",
            }
        )  # fmt: skip
    return ticks


def indicative_publish(fact_id: int) -> int:
    """After a trade's commit: compute and push its series' indicative values."""
    from market.core.fanout import fanout_publish_many

    fact = TradeFact.objects.filter(pk=fact_id, voided_at__isnull=True).first()
    if fact is None:
        return 0
    ticks = indicative_for(fact)
    messages = []
    for tick in ticks:
        message = {"type": "tick", **tick}
        messages += [(INDICES_GROUP, message), (f"{INDICES_GROUP}.{_group_safe(tick['series'])}", message)]
    fanout_publish_many(messages)
    return len(ticks)


def _group_safe(code: str) -> str:
    """Channel group names allow ASCII letters, digits, hyphens, underscores and periods only."""
    return code.replace("@", "-at-").replace(":", "-")
