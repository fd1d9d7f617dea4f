"""Computing and publishing the price indices (METHODOLOGY.md) from the trade facts.

``pricing.methodology`` holds the rules as pure functions; this module loads the facts, turns them
into ``methodology.Trade`` values, stores what the rules return, and publishes: the daily close
(Celery beat at the cut-off), ``indices_rebuild`` over history, the intraday indicative value on
every trade (``/ws/indices/``), and corrections with notices beside the as-first-published series.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache

from django.conf import settings
from django.db import transaction
from django.db.models import Case, F, Sum, Value, When
from django.db.models.functions import Round
from django.utils import timezone

from listings.models import Category
from market.core.models import EconomicZone, Region
from pricing import methodology as m
from pricing.index_models import (
    CompositeComponent,
    IndexCorrection,
    IndexSeries,
    IndexValue,
    SeriesKind,
)
from pricing.models import TradeFact

logger = logging.getLogger(__name__)

INDICES_GROUP = "indices"
CENT = Decimal("0.01")

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


def series_ensure(category: str, county: str) -> None:
    series_ensure_many({(category, county)})


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
        IndexSeries.objects.bulk_create(rows, ignore_conflicts=True)
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


def _facts_between(start: date, end: date, p: m.Params) -> dict[date, list[_Fact]]:
    """Facts that count on business days in [start, end], by counting day (voided ones included:
    the rules exclude them, and the audit list says so)."""
    lo = _day_start(start - timedelta(days=10), p)
    hi = _day_start(end + timedelta(days=1), p) + timedelta(hours=23)
    rows = TradeFact.objects.filter(settled_at__gte=lo, settled_at__lt=hi).values_list(*FACT_FIELDS)
    out: dict[date, list[_Fact]] = defaultdict(list)
    for row in rows.iterator(chunk_size=5000):
        fact = _to_trade(row)
        d = m.counting_day(fact.trade, p)
        if start <= d <= end:
            out[d].append(fact)
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
    audit = p.as_audit()
    for table in ("min_lot_tonnes", "min_cell_tonnes"):
        audit[table] = {
            k: v for k, v in audit[table].items()
            if category and (k == category or k.startswith(category + ".") or category.startswith(k + "."))
        }  # fmt: skip
    if len(_AUDIT_PARAMS) > 4096:
        _AUDIT_PARAMS.clear()
    _AUDIT_PARAMS[(id(p), category)] = (p, audit)
    return audit


def _value_fields(cell: m.CellValue, series: IndexSeries, p: m.Params) -> dict:
    return {
        "status": cell.status.value,
        "price": _q(cell.price, Decimal("0.000001")),
        "level": _level(cell.price, series.base_price),
        "n": cell.n,
        "tonnes": _q(cell.tonnes, Decimal("0.001")),
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
        "params": _audit_params(p, series.category_id),
        "methodology_version": cell.methodology_version,
    }


VALUE_FIELDS = [
    "status", "price", "level", "n", "tonnes", "amount", "day_amount", "min_price", "max_price", "excluded",
    "days_carried", "carried_from", "used", "unused", "review", "params", "methodology_version",
]  # fmt: skip


class _Closer:
    """Computes business days in order, keeping each series' previous value in memory."""

    def __init__(self, p: m.Params):
        self.p = p
        self.series = {s.code: s for s in IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY)}
        # series code -> (day, its cell or None): what the previous day left, so walking days in order
        # costs no query per series and day.
        self.previous: dict[str, tuple[date, m.CellValue | None]] = {}
        self.loaded: set[date] = set()
        # series code -> {day: that day's rules 1 and 2}: each day is assessed once, not per window.
        self.assessed: dict[str, dict] = {}

    def previous_of(self, series: IndexSeries, day: date) -> m.CellValue | None:
        prev_day = m.previous_business_day(day, self.p.holidays)
        cached = self.previous.get(series.code)
        if cached is not None and cached[0] == prev_day:
            return cached[1]
        if prev_day not in self.loaded:  # one query for every series' value of that day
            self.loaded.add(prev_day)
            for v in IndexValue.objects.filter(
                day=prev_day, series__kind=SeriesKind.ELEMENTARY
            ).select_related("series"):
                self.previous[v.series.code] = (prev_day, _previous_cell(v))
            cached = self.previous.get(series.code)
            if cached is not None and cached[0] == prev_day:
                return cached[1]
        return None

    def close(self, day: date, facts_by_day: dict[date, list[_Fact]], *, publish: bool) -> list[IndexValue]:
        window = m.business_window(day, self.p.window_days, self.p.holidays)
        by_series: dict[str, list[m.Trade]] = defaultdict(list)
        for d in window:
            for fact in facts_by_day.get(d, ()):
                for code in series_of_fact(fact.trade.category, fact.county):
                    by_series[code].append(fact.trade)
        if any(code not in self.series for code in by_series):  # series appear with their first trade
            pairs = {(f.trade.category, f.county) for d in window for f in facts_by_day.get(d, ())}
            series_ensure_many(pairs, known=set(self.series))
            self.series = {s.code: s for s in IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY)}
        stored = []
        now = timezone.now()
        existing = {
            v.series_id: v for v in IndexValue.objects.filter(day=day, series__kind=SeriesKind.ELEMENTARY)
        }
        for code, series in self.series.items():
            previous = self.previous_of(series, day)
            trades = by_series.get(code, ())
            if not trades and previous is None:
                self.previous[code] = (day, None)
                continue
            memo = self.assessed.setdefault(code, {})
            for old_day in [d for d in memo if d < window[0]]:
                del memo[old_day]
            cell = m.cell_value(
                day, trades, previous, self.p, category=series.category_id, assessed_days=memo
            )
            self.previous[code] = (day, cell if cell.status is not None else None)
            if cell.status is None:
                continue
            fields = _value_fields(cell, series, self.p)
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
                continue  # a published value changes only by a correction (index_correct)
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


def _bases_fix(series_ids=None) -> int:
    """Set the base period and price of every series that has none yet and now has a full month,
    then the levels of all its values. Returns how many series got a base."""
    p = params()
    fixed = 0
    qs = IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY, base_price__isnull=True)
    if series_ids is not None:
        qs = qs.filter(pk__in=series_ids)
    for series in qs:
        statuses = {
            d: m.Status(s) for d, s in IndexValue.objects.filter(series=series).values_list("day", "status")
        }
        period = m.base_period(statuses, p)
        if period is None:
            continue
        agg = IndexValue.objects.filter(
            series=series, day__gte=period[0], day__lte=period[1], status=m.Status.TRANSACTION.value
        ).aggregate(t=Sum("tonnes"), a=Sum("amount"))
        if not agg["t"]:
            continue
        series.base_start, series.base_end = period
        series.base_price = (agg["a"] / agg["t"]).quantize(Decimal("0.000001"))
        series.save(update_fields=["base_start", "base_end", "base_price"])
        # One statement per series: I = 1000 * P / P(B), rounded half up to 0.01 (prices are positive).
        base = series.base_price
        IndexValue.objects.filter(series=series).update(
            level=Round(F("price") * 1000 / Value(base), 2),
            first_level=Case(
                When(first_price__isnull=True, then=Value(None)),
                default=Round(F("first_price") * 1000 / Value(base), 2),
            ),
        )
        fixed += 1
    return fixed


# --- composites -----------------------------------------------------------------------------


def _composite_close(day: date, p: m.Params, *, publish: bool, cache: dict | None = None) -> int:
    """Each composite's value on ``day``: a Lowe index chained yearly on the link day. ``cache``
    (a dict kept by the caller over a run of days) saves re-reading the composites, their
    members and a chain year's components every day."""
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
    made = 0
    for code in COMPOSITES:
        composite = cache["composites"][code]
        members = cache["members"][code]
        if not members:
            continue
        key = (code, day.year)
        comps = cache.get(key) or _chain_period(composite, members, day, p)
        if comps:
            cache[key] = comps
        if not comps:
            continue
        values = {
            v.series.code: v
            for v in IndexValue.objects.filter(
                series__in=[c.component for c in comps], day=day
            ).select_related("series")
        }
        if not values:
            continue
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
        fields = {
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
    if link_value is None:
        if IndexValue.objects.filter(series=composite, day__lt=day).exists():
            return []  # the link day was never computed: a rebuild from its year is needed
        # The first chain period: C = 1000 at the base, link prices are the base prices, weights are
        # the values traded in the base periods.
        weights_by = {
            code: IndexValue.objects.filter(series=s, day__gte=s.base_start, day__lte=s.base_end).aggregate(
                v=Sum("day_amount"))["v"] or Decimal(0)
            for code, s in members.items()
        }  # fmt: skip
        link_prices = {code: s.base_price for code, s in members.items()}
        link_value = Decimal(1000)
    else:
        weights_by = {
            code: IndexValue.objects.filter(series=s, day__year=year - 1).aggregate(v=Sum("day_amount"))["v"]
            or Decimal(0)
            for code, s in members.items()
        }
        link_prices = {
            code: IndexValue.objects.filter(series=s, day=link).values_list("price", flat=True).first()
            for code, s in members.items()
        }
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
    CompositeComponent.objects.bulk_create(rows, ignore_conflicts=True)
    return list(CompositeComponent.objects.filter(composite=composite, year=year).select_related("component"))


# --- the daily close, history, corrections --------------------------------------------------


def indices_close(day: date | None = None, *, publish: bool = True) -> int:
    """The official close of ``day`` (default: today, at the cut-off). Idempotent: a published
    value is never overwritten here (corrections go through ``index_correct``)."""
    p = params()
    day = day or timezone.localdate()
    if not m.is_business_day(day, p.holidays):
        return 0
    window = m.business_window(day, p.window_days, p.holidays)
    with transaction.atomic():
        stored = _Closer(p).close(day, _facts_between(window[0], day, p), publish=publish)
        _bases_fix({v.series_id for v in stored})
        made = _composite_close(day, p, publish=publish)
    return len(stored) + made


def indices_rebuild(start: date, end: date, *, progress=None) -> int:
    """Recompute every business day in [start, end] from the facts, replacing what was stored
    (values, bases from scratch, composites' chain periods); as-first-published values are kept."""
    p = params()
    days = []
    d = start
    while d <= end:
        if m.is_business_day(d, p.holidays):
            days.append(d)
        d += timedelta(days=1)
    first = {
        (s, d): (price, level, status)
        for s, d, price, level, status in IndexValue.objects.filter(
            day__gte=start, day__lte=end, first_price__isnull=False
        ).values_list("series_id", "day", "first_price", "first_level", "first_status")
    }
    with transaction.atomic():
        IndexValue.objects.filter(day__gte=start, day__lte=end).delete()
        CompositeComponent.objects.filter(year__gte=start.year).delete()
        if not IndexValue.objects.filter(day__lt=start).exists():
            IndexSeries.objects.update(base_start=None, base_end=None, base_price=None)
        facts = _facts_between(days[0], days[-1], p) if days else {}
        closer = _Closer(p)
        for i, d in enumerate(days):
            closer.close(d, facts, publish=False)
            if progress:
                progress(i + 1, len(days))
        _bases_fix()
        composites = {}
        for d in days:
            _composite_close(d, p, publish=False, cache=composites)
        # History is published as recomputed; values published before keep their first publication.
        span = IndexValue.objects.filter(day__gte=start, day__lte=end)
        span.update(
            published_at=timezone.now(),
            first_price=F("price"),
            first_level=F("level"),
            first_status=F("status"),
        )
        if first:  # values published before keep their first publication (where it differs)
            again = [
                v
                for v in span.filter(series_id__in={s for s, _d in first})
                if (v.series_id, v.day) in first
                and first[(v.series_id, v.day)] != (v.price, v.level, v.status)
            ]
            for v in again:
                v.first_price, v.first_level, v.first_status = first[(v.series_id, v.day)]
            IndexValue.objects.bulk_update(
                again, ["first_price", "first_level", "first_status"], batch_size=1000
            )
    return len(days)


def index_correct(*, day: date, reason: str, actor=None, today: date | None = None) -> list[IndexCorrection]:
    """Recompute a published day (an input error fixed, a trade voided later): each value that moves
    by at least 0.1 % within 5 business days of publication is corrected with a notice; the
    as-first-published value stays beside it; composites of the day follow."""
    p = params()
    today = today or timezone.localdate()
    window = m.business_window(day, p.window_days, p.holidays)
    facts = _facts_between(window[0], day, p)
    closer = _Closer(p)
    corrections = []
    with transaction.atomic():
        current = {v.series.code: v for v in IndexValue.objects.filter(day=day).select_related("series")}
        for code, series in closer.series.items():
            old = current.get(code)
            if old is None or old.published_at is None:
                continue
            previous = closer.previous_of(series, day)
            trades = [
                f.trade
                for d in window
                for f in facts.get(d, ())
                if code in series_of_fact(f.trade.category, f.county)
            ]
            cell = m.cell_value(day, trades, previous, p, category=series.category_id)
            if cell.status is None:
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
        IndexCorrection.objects.bulk_create(corrections)
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
                    IndexCorrection.objects.create(
                        value=v,
                        old_price=old.price,
                        new_price=v.price,
                        old_level=old.level,
                        new_level=v.level,
                        reason=reason,
                    )
                v.save()
    return corrections


# --- intraday -------------------------------------------------------------------------------


def indicative_for(fact: TradeFact) -> list[dict]:
    """The indicative values of the series a new trade counts in (rules 2 and 3 on what arrived
    today; the previous official close when rule 3 fails): what ``/ws/indices/`` pushes."""
    p = params()
    day = m.counting_day(_to_trade(tuple(getattr(fact, f) for f in FACT_FIELDS)).trade, p)
    series_ensure(fact.category_id, fact.region_id)
    codes = series_of_fact(fact.category_id, fact.region_id)
    today = _facts_between(day, day, p).get(day, [])
    ticks = []
    series = {s.code: s for s in IndexSeries.objects.filter(code__in=codes)}
    for code in codes:
        s = series.get(code)
        if s is None:
            continue
        trades = [f.trade for f in today if code in series_of_fact(f.trade.category, f.county)]
        close = IndexValue.objects.filter(series=s, day__lt=day).order_by("-day").first()
        ind = m.indicative(day, trades, close.price if close else None, p, category=s.category_id)
        price = ind.price
        ticks.append(
            {
                "series": code, "name": s.name, "day": day.isoformat(), "live": ind.live,
                "price": str(_q(price)) if price is not None else None,
                "level": str(_level(price, s.base_price)) if price is not None and s.base_price else None,
                "previous_close": str(_q(close.price)) if close else None,
                "previous_level": str(close.level) if close and close.level is not None else None,
                "n": ind.n, "tonnes": str(_q(ind.tonnes, Decimal("0.001"))), "label": "indicative",
            }
        )  # fmt: skip
    return ticks


def indicative_publish(fact_id: int) -> int:
    """After a trade's commit: compute and push its series' indicative values."""
    from market.core.realtime import publish

    fact = TradeFact.objects.filter(pk=fact_id, voided_at__isnull=True).first()
    if fact is None:
        return 0
    ticks = indicative_for(fact)
    for tick in ticks:
        message = {"type": "index.tick", "tick": tick}
        publish(INDICES_GROUP, message)
        publish(f"{INDICES_GROUP}.{_group_safe(tick['series'])}", message)
    return len(ticks)


def _group_safe(code: str) -> str:
    """Channel group names allow ASCII letters, digits, hyphens, underscores and periods only."""
    return code.replace("@", "-at-").replace(":", "-")
