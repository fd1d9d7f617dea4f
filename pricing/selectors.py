"""Reads of pricing: trade facts by category subtree, region and settlement time; statistics from
the rollups (volume series, top categories and regions, the annual target), who may see which, and
the open data with disclosure control."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db.models import Count, Max, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.translation import gettext as _

from listings.models import Category
from market.accounts.selectors import government_officer_for
from market.core.models import EconomicZone, Region
from market.core.regions import region_code_prefix
from pricing.disclosure import MAX_SHARE, MIN_BUYERS, MIN_SELLERS, TOTAL, CellStats, suppress
from pricing.models import (
    DisclosureContribution,
    DisclosureSide,
    RollupGrain,
    RollupLevel,
    TradeFact,
    VolumeRollup,
)
from pricing.periods import (
    GRAINS,
    month_add,
    period_end,
    period_label,
    period_start,
    period_year_before,
    periods,
)
from pricing.rollups import ALL_CATEGORIES, DAY_LEVELS, NATIONAL, category_nodes, region_level


def trade_facts(
    *,
    category_code: str | None = None,
    region_code: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    include_void: bool = False,
) -> QuerySet[TradeFact]:
    """Trade facts, newest settlement first.

    ``category_code``: that category and its descendants (codes ``code`` or ``code.*``).
    ``region_code``: a province, city or county code, with everything inside it (by code prefix);
    an unknown region code matches nothing. ``since`` (inclusive) and ``until`` (exclusive) bound
    ``settled_at``. Voided facts are left out unless ``include_void``.
    """
    qs = TradeFact.objects.select_related("category", "region")
    if category_code:
        qs = qs.filter(Category(code=category_code.strip()).descendant_filter("category__code"))
    if region_code:
        prefix = region_code_prefix(region_code)
        if prefix is None:
            return qs.none()
        qs = qs.filter(region__code__startswith=prefix)
    if since is not None:
        qs = qs.filter(settled_at__gte=since)
    if until is not None:
        qs = qs.filter(settled_at__lt=until)
    if not include_void:
        qs = qs.filter(voided_at__isnull=True)
    return qs.order_by("-settled_at", "-id")


def trade_fact_exists(trade_id: str) -> bool:
    return TradeFact.objects.filter(trade_id=str(trade_id or "").strip()).exists()


# --- statistics: read from the rollups ---------------------------------------------------------------
#
# Months of every level and days of the nation and the provinces (zones: their provinces) are rows of
# the rollups. Days of a city or a county are not (``pricing.rollups``: a day row of a county would
# hold about one fact): those are summed from the facts of that city or county alone, through the
# facts' covering index on (region, settled_at), never by a scan of the facts.

VOLUME_MAX_POINTS = 1200  # a little over three years of days
RATIO_PLACES = Decimal("0.0001")
TONNES_PLACES = Decimal("0.001")
YUAN_PLACES = Decimal("0.01")
MEASURES = ("trades", "tonnes", "value")


@dataclass(frozen=True)
class Area:
    """Where figures are read for: the nation, an economic zone or one division.

    ``keys`` are the rollup region keys summed: the code itself, or a zone's provinces (zones are
    unions of whole provinces, which never overlap, so the sum counts each trade once).
    """

    code: str  # "CN", a six-digit code or a zone's slug
    name: str
    level: str  # national, zone, province, city or county
    keys: tuple[str, ...]

    @property
    def is_national(self) -> bool:
        return self.level == RollupLevel.NATIONAL

    @property
    def has_day_rows(self) -> bool:
        """Whether the rollups keep this area's days (the nation, a zone's provinces, a province)."""
        return self.level == "zone" or self.level in DAY_LEVELS


def area_national() -> Area:
    return Area(code=NATIONAL, name=str(_("全国")), level=RollupLevel.NATIONAL, keys=(NATIONAL,))


@lru_cache(maxsize=4096)
def _region_name(code: str) -> str | None:
    """Divisions change only with a migration (``market.core.selectors``), so they are cached."""
    return Region.objects.filter(pk=code).values_list("name", flat=True).first()


def area_resolve(code: str | None) -> Area | None:
    """The area named by ``code``: empty or ``CN`` for the nation, a GB/T 2260 code, or an economic
    zone's slug. None when there is no such region or zone."""
    code = str(code or "").strip()
    if not code or code.upper() == NATIONAL:
        return area_national()
    if len(code) == 6 and code.isdigit():
        name = _region_name(code)
        if name is None:
            return None
        return Area(code=code, name=name, level=region_level(code), keys=(code,))
    zone = EconomicZone.objects.filter(pk=code).first()
    if zone is None:
        return None
    provinces = tuple(zone.provinces.order_by("code").values_list("code", flat=True))
    return Area(code=zone.code, name=zone.name, level="zone", keys=provinces)


def _unknown(field: str, message: str, code: str) -> ValidationError:
    return ValidationError({field: ValidationError(message, code=code)})


def _category_filter(category_code: str | None) -> Q:
    """Rollup rows of one catalogue node, or of the top-level nodes (every trade once) for all."""
    if category_code:
        return Q(category=category_code)
    return Q(depth=0)


# --- days of a city or county, from the facts --------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(settings.TIME_ZONE))


@lru_cache(maxsize=1024)
def _codes_within(key: str) -> tuple[str, ...]:
    """The division codes a fact's county may carry inside the region ``key`` (itself, and for a
    city or province every division under it; divisions change only with a migration)."""
    if region_level(key) == RollupLevel.COUNTY:
        return (key,)
    prefix = key[:2] if region_level(key) == RollupLevel.PROVINCE else key[:4]
    return tuple(
        Region.objects.filter(code__startswith=prefix).order_by("code").values_list("code", flat=True)
    )


def _facts_in(keys, date_from: date, date_to: date, category_code: str | None = None) -> QuerySet:
    """The unvoided facts settled on the days ``date_from`` to ``date_to`` (market time) inside the
    regions ``keys`` (all regions when None), of one catalogue node and its descendants (all when
    None): one short range of the covering index per county, read without the table."""
    qs = TradeFact.objects.filter(
        settled_at__gte=_day_start(date_from),
        settled_at__lt=_day_start(date_to + timedelta(days=1)),
        voided_at__isnull=True,
    )
    if keys is not None:
        qs = qs.filter(region_id__in=sorted({code for key in keys for code in _codes_within(key)}))
    if category_code:
        qs = qs.filter(Q(category_id=category_code) | Q(category__code__startswith=f"{category_code}."))
    return qs.order_by()


def _facts_summed(qs: QuerySet, *fields: str):
    """``qs`` grouped by ``fields`` (``day``: the settlement's day in market time), each group with
    its trades, tonnes and value, as tuples ``(*fields, trades, tonnes, value)``."""
    if "day" in fields:
        qs = qs.annotate(day=TruncDate("settled_at", tzinfo=ZoneInfo(settings.TIME_ZONE)))
    return (
        qs.values(*fields)
        .annotate(t=Count("*"), q=Sum("quantity_t"), v=Sum("amount"))
        .values_list(*fields, "t", "q", "v")
    )


def _node_at(code: str, depth: int, parent: str | None) -> str | None:
    """The ancestor of the category ``code`` (itself included) at ``depth``, if it lies under
    ``parent`` (anywhere when None)."""
    nodes = category_nodes(code)
    if depth >= len(nodes):
        return None
    node = nodes[depth][0]
    if parent and not node.startswith(f"{parent}."):
        return None
    return node


def _key_at(county: str, level: str) -> str | None:
    """The region key at ``level`` (city or county) holding a fact's county."""
    if level == RollupLevel.CITY:
        return county[:4] + "00"
    return county if region_level(county) == RollupLevel.COUNTY else None


def _add(totals: dict, key, trades, tonnes, value) -> None:
    total = totals.setdefault(key, [0, Decimal(0), Decimal(0)])
    total[0] += trades
    total[1] += tonnes
    total[2] += value


@dataclass(frozen=True)
class VolumePoint:
    """One period of a volume series with its change on the previous period and on a year before:
    ``(now - then) / then`` as a Decimal to 4 places, None when ``then`` is zero or unknown."""

    period: date
    end: date
    label: str
    trades: int
    tonnes: Decimal
    value: Decimal
    pop: dict
    yoy: dict


def _change(now, then) -> Decimal | None:
    if not then:
        return None
    return ((Decimal(now) - Decimal(then)) / Decimal(then)).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def _changes(now: tuple, then: tuple | None) -> dict:
    if then is None:
        return dict.fromkeys(MEASURES)
    return {name: _change(a, b) for name, a, b in zip(MEASURES, now, then, strict=True)}


def volume(
    grain: str,
    category_code: str | None,
    region_code_or_zone: str | None,
    date_from: date,
    date_to: date,
) -> list[VolumePoint]:
    """Trades, tonnes and value of settled, unvoided trades per ``grain`` period (day, week, month,
    quarter, year) of one catalogue node (all categories when empty) in one area (nation, zone or
    division), from the period holding ``date_from`` to the one holding ``date_to`` (whole periods,
    every period present, zero when nothing traded), each with its period-on-period and
    year-on-year change. Days and weeks are read from the day rows, months, quarters and years from
    the month rows. Raises ``ValidationError`` for an unknown grain, category or area, a reversed
    range, or more than ``VOLUME_MAX_POINTS`` periods.
    """
    if grain not in GRAINS:
        raise _unknown("grain", _("统计粒度“%(grain)s”无效。") % {"grain": grain}, "invalid_grain")
    if category_code and not Category.objects.filter(pk=category_code).exists():
        raise _unknown(
            "category", _("品类代码“%(code)s”不存在。") % {"code": category_code}, "category_unknown"
        )
    area = area_resolve(region_code_or_zone)
    if area is None:
        raise _unknown(
            "region", _("统计区域“%(code)s”不存在。") % {"code": region_code_or_zone}, "region_unknown"
        )
    if date_from > date_to:
        raise _unknown("from", _("统计的起始日期不能晚于截止日期。"), "invalid_range")
    starts = periods(date_from, date_to, grain)
    if len(starts) > VOLUME_MAX_POINTS:
        raise _unknown(
            "from",
            _("时间范围太长：最多%(max)d个统计期。") % {"max": VOLUME_MAX_POINTS},
            "range_too_long",
        )

    source = RollupGrain.DAY if grain in ("day", "week") else RollupGrain.MONTH
    fetch_from = period_start(starts[0] - timedelta(days=372), grain)  # a year back, for year on year
    if source == RollupGrain.MONTH:
        fetch_from = fetch_from.replace(day=1)
    fetch_to = period_end(starts[-1], grain)
    if source == RollupGrain.DAY and not area.has_day_rows:
        rows = _facts_summed(_facts_in(area.keys, fetch_from, fetch_to, category_code or None), "day")
    else:
        rows = (
            VolumeRollup.objects.filter(
                _category_filter(category_code),
                grain=source,
                region__in=area.keys,
                period__gte=fetch_from,
                period__lte=fetch_to,
            )
            .values("period")
            .annotate(trades=Sum("trades"), tonnes=Sum("tonnes"), value=Sum("value"))
            .values_list("period", "trades", "tonnes", "value")
        )
    buckets: dict[date, list] = defaultdict(lambda: [0, Decimal(0), Decimal(0)])
    for period, trades, tonnes, value in rows:
        bucket = buckets[period_start(period, grain)]
        bucket[0] += trades
        bucket[1] += tonnes
        bucket[2] += value

    def figures(start: date | None) -> tuple | None:
        if start is None or start < fetch_from:
            return None
        return tuple(buckets.get(start, (0, Decimal(0), Decimal(0))))

    points = []
    for start in starts:
        now = figures(start)
        before = period_start(start - timedelta(days=1), grain)
        points.append(
            VolumePoint(
                period=start,
                end=period_end(start, grain),
                label=period_label(start, grain),
                trades=now[0],
                tonnes=now[1].quantize(TONNES_PLACES),
                value=now[2].quantize(YUAN_PLACES),
                pop=_changes(now, figures(before)),
                yoy=_changes(now, figures(period_year_before(start, grain))),
            )
        )
    return points


def volume_by_category(
    grain: str,
    region_code_or_zone: str | None,
    date_from: date,
    date_to: date,
    *,
    parent: str | None = None,
) -> dict[tuple[date, str], tuple[int, Decimal, Decimal]]:
    """The dashboard's table: (period start, category) -> (trades, tonnes, value) for the children
    of ``parent`` (the top-level categories when None) in one area, per ``grain`` period from the
    one holding ``date_from`` to the one holding ``date_to``. Only cells with trades are present."""
    if grain not in GRAINS:
        raise _unknown("grain", _("统计粒度“%(grain)s”无效。") % {"grain": grain}, "invalid_grain")
    area = area_resolve(region_code_or_zone)
    if area is None:
        raise _unknown(
            "region", _("统计区域“%(code)s”不存在。") % {"code": region_code_or_zone}, "region_unknown"
        )
    source = RollupGrain.DAY if grain in ("day", "week") else RollupGrain.MONTH
    depth = 0 if not parent else parent.count(".") + 1
    first, last = period_start(date_from, grain), period_end(period_start(date_to, grain), grain)
    table: dict[tuple[date, str], list] = {}
    if source == RollupGrain.DAY and not area.has_day_rows:
        for day, leaf, trades, tonnes, value in _facts_summed(
            _facts_in(area.keys, first, last, parent), "day", "category_id"
        ):
            node = _node_at(leaf, depth, parent)
            if node is not None:
                _add(table, (period_start(day, grain), node), trades, tonnes, value)
        return {key: tuple(cell) for key, cell in table.items() if cell[0]}
    nodes = Q(depth=0) if not parent else Q(category__startswith=f"{parent}.", depth=depth)
    qs = VolumeRollup.objects.filter(
        nodes, grain=source, region__in=area.keys, period__gte=first, period__lte=last
    )
    if len(area.keys) > 1:
        qs = qs.values("period", "category").annotate(t=Sum("trades"), q=Sum("tonnes"), v=Sum("value"))
        rows = qs.values_list("period", "category", "t", "q", "v")
    else:
        rows = qs.values_list("period", "category", "trades", "tonnes", "value")
    for period, category, trades, tonnes, value in rows:
        _add(table, (period_start(period, grain), category), trades, tonnes, value)
    return {key: tuple(cell) for key, cell in table.items() if cell[0]}


@dataclass(frozen=True)
class _Span:
    """The days ``date_from`` to ``date_to`` as the whole months inside (``months``: first month
    and the month after the last, or None) and the days at either end (inclusive ranges)."""

    months: tuple[date, date] | None
    days: tuple[tuple[date, date], ...]

    @classmethod
    def of(cls, date_from: date, date_to: date) -> "_Span":
        first_whole = date_from if date_from.day == 1 else month_add(date_from, 1)
        after_last = month_add(date_to, 1)
        last_whole_end = after_last if (after_last - timedelta(days=1)) == date_to else date_to.replace(day=1)
        if first_whole >= last_whole_end:
            return cls(None, ((date_from, date_to),))
        days = []
        if date_from < first_whole:
            days.append((date_from, first_whole - timedelta(days=1)))
        if last_whole_end <= date_to:
            days.append((last_whole_end, date_to))
        return cls((first_whole, last_whole_end), tuple(days))

    def rollup_filter(self, *, with_days: bool) -> Q | None:
        """Rollup rows of the whole months and, ``with_days``, the day rows of the ends; None when
        that is nothing."""
        parts = []
        if self.months is not None:
            parts.append(Q(grain=RollupGrain.MONTH, period__gte=self.months[0], period__lt=self.months[1]))
        if with_days:
            parts += [Q(grain=RollupGrain.DAY, period__gte=a, period__lte=b) for a, b in self.days]
        if not parts:
            return None
        span = parts[0]
        for part in parts[1:]:
            span |= part
        return span


def _span_filter(date_from: date, date_to: date) -> Q:
    """Rollup rows covering the days ``date_from`` to ``date_to``: month rows for the whole months
    inside, day rows for the ends (for areas whose days are kept)."""
    return _Span.of(date_from, date_to).rollup_filter(with_days=True)


def _ranked(rows, limit: int) -> list[dict]:
    for row in rows:
        row["tonnes"] = Decimal(row["tonnes"]).quantize(TONNES_PLACES)
        row["value"] = Decimal(row["value"]).quantize(YUAN_PLACES)
    rows = sorted(rows, key=lambda r: (-r["value"], -r["tonnes"], r["code"]))
    total = sum((r["value"] for r in rows), Decimal(0))
    for row in rows:
        row["share"] = (
            (row["value"] / total).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP) if total else None
        )
    return rows[:limit]


def top_categories(
    date_from: date,
    date_to: date,
    *,
    region_code_or_zone: str | None = None,
    parent: str | None = None,
    limit: int = 10,
) -> list[dict]:
    """The children of ``parent`` (the top-level categories when None) by trade value in the days
    ``date_from`` to ``date_to`` in one area: code, name, trades, tonnes, value and share of the
    value of all of them, largest first. Categories without trades are left out."""
    area = area_resolve(region_code_or_zone)
    if area is None:
        return []
    depth = 0 if not parent else parent.count(".") + 1
    nodes = Q(depth=0) if not parent else Q(category__startswith=f"{parent}.", depth=depth)
    span = _Span.of(date_from, date_to)
    totals: dict[str, list] = {}
    rows_filter = span.rollup_filter(with_days=area.has_day_rows)
    if rows_filter is not None:
        for category, trades, tonnes, value in (
            VolumeRollup.objects.filter(rows_filter, nodes, region__in=area.keys)
            .values("category")
            .annotate(t=Sum("trades"), q=Sum("tonnes"), v=Sum("value"))
            .values_list("category", "t", "q", "v")
        ):
            _add(totals, category, trades, tonnes, value)
    if not area.has_day_rows:
        for first, last in span.days:
            for leaf, trades, tonnes, value in _facts_summed(
                _facts_in(area.keys, first, last, parent), "category_id"
            ):
                node = _node_at(leaf, depth, parent)
                if node is not None:
                    _add(totals, node, trades, tonnes, value)
    names = dict(Category.objects.values_list("code", "name"))
    ranked = [
        {"code": code, "name": names.get(code, code), "trades": trades, "tonnes": tonnes, "value": value}
        for code, (trades, tonnes, value) in totals.items()
        if trades
    ]
    return _ranked(ranked, limit)


def top_regions(
    date_from: date,
    date_to: date,
    *,
    level: str = "province",
    within: str | None = None,
    category_code: str | None = None,
    limit: int = 10,
) -> list[dict]:
    """The provinces, cities, counties or economic zones (``level``) by trade value in the days
    ``date_from`` to ``date_to``, of one catalogue node (all when None), inside one province or
    city (``within``, a code; anywhere when None): code, name, trades, tonnes, value and share,
    largest first. Regions without trades are left out."""
    span = _span_filter(date_from, date_to)
    categories = _category_filter(category_code)
    if level == "zone":
        by_province = {
            r["region"]: r
            for r in VolumeRollup.objects.filter(span, categories, level=RollupLevel.PROVINCE)
            .values("region")
            .annotate(trades=Sum("trades"), tonnes=Sum("tonnes"), value=Sum("value"))
        }
        ranked = []
        for zone in EconomicZone.objects.prefetch_related("provinces"):
            parts = [by_province[p.code] for p in zone.provinces.all() if p.code in by_province]
            if parts:
                ranked.append(
                    {
                        "code": zone.code,
                        "name": zone.name,
                        "trades": sum(p["trades"] for p in parts),
                        "tonnes": sum((p["tonnes"] for p in parts), Decimal(0)),
                        "value": sum((p["value"] for p in parts), Decimal(0)),
                    }
                )
        rows = _ranked(ranked, limit)
        for row in rows:
            row["share"] = None  # zones overlap: shares of their sum mean nothing
        return rows
    prefix = None
    if within:
        prefix = region_code_prefix(within)
        if prefix is None:
            return []
    by_day = level in DAY_LEVELS
    parts = _Span.of(date_from, date_to)
    totals: dict[str, list] = {}
    rows_filter = parts.rollup_filter(with_days=by_day)
    if rows_filter is not None:
        qs = VolumeRollup.objects.filter(rows_filter, categories, level=level)
        if prefix:
            qs = qs.filter(region__startswith=prefix)
        for region, trades, tonnes, value in (
            qs.values("region")
            .annotate(t=Sum("trades"), q=Sum("tonnes"), v=Sum("value"))
            .values_list("region", "t", "q", "v")
        ):
            _add(totals, region, trades, tonnes, value)
    if not by_day:  # a city's or county's days: from the facts
        keys = [within] if within else None
        for first, last in parts.days:
            for county, trades, tonnes, value in _facts_summed(
                _facts_in(keys, first, last, category_code), "region_id"
            ):
                key = _key_at(county, level)
                if key is not None and (not prefix or key.startswith(prefix)):
                    _add(totals, key, trades, tonnes, value)
    totals = {code: figures for code, figures in totals.items() if figures[0]}
    names = dict(Region.objects.filter(code__in=list(totals)).values_list("code", "name"))
    return _ranked(
        [
            {"code": code, "name": names.get(code, code), "trades": trades, "tonnes": tonnes, "value": value}
            for code, (trades, tonnes, value) in totals.items()
        ],
        limit,
    )


def annual_value(year: int) -> dict:
    """The trade value settled online in ``year`` (nation, all categories) beside the annual target
    ``STATS_ANNUAL_TARGET_YUAN``: year, trades, tonnes, value, target and value / target."""
    totals = VolumeRollup.objects.filter(
        grain=RollupGrain.MONTH,
        region=NATIONAL,
        depth=0,
        period__gte=date(year, 1, 1),
        period__lt=date(year + 1, 1, 1),
    ).aggregate(trades=Sum("trades"), tonnes=Sum("tonnes"), value=Sum("value"))
    target = Decimal(settings.STATS_ANNUAL_TARGET_YUAN)
    value = Decimal(totals["value"] or 0).quantize(YUAN_PLACES)
    return {
        "year": year,
        "trades": totals["trades"] or 0,
        "tonnes": Decimal(totals["tonnes"] or 0).quantize(TONNES_PLACES),
        "value": value,
        "target": target,
        "share": (value / target).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP) if target else None,
    }


# --- who may see which statistics -------------------------------------------------------------------


def government_scope(user) -> Region | None:
    """The region a government user's statistics are limited to (their office's province or city,
    with everything inside it); None for anyone who is not a government officer."""
    officer = government_officer_for(user)
    if officer is None:
        return None
    return Region.objects.filter(pk=officer.office.jurisdiction_id).first()


def government_scope_breakdown(scope: Region) -> QuerySet[Region]:
    """The divisions a government dashboard breaks its jurisdiction into: a province's cities, a
    city's counties."""
    return Region.objects.filter(parent_id=scope.code).order_by("code")


def statistics_area_refusal(user, area: Area) -> str | None:
    """Why ``user`` may not read figures for ``area``: a refusal code, or None when they may.

    - operators (platform staff): everything;
    - government officers: their jurisdiction and what lies inside it (a zone only when all its
      provinces do); the nation and other regions are refused with ``outside_jurisdiction``;
    - everyone else logged in (companies): the nation only, ``region_not_allowed`` otherwise. Figures
      for a province, city or county could show a handful of competitors' trades; the regional
      figures open to all are the open data, which go through disclosure control.
    """
    if not getattr(user, "is_authenticated", False):
        return "not_authenticated"
    if user.is_operator:
        return None
    scope = government_scope(user)
    if scope is not None:
        if area.is_national:
            return "outside_jurisdiction"
        if area.keys and all(scope.contains(key) for key in area.keys):
            return None
        return "outside_jurisdiction"
    return None if area.is_national else "region_not_allowed"


def statistics_default_area(user) -> Area:
    """The area a request that names none is for: a government user's jurisdiction, else the nation."""
    scope = government_scope(user) if getattr(user, "is_authenticated", False) else None
    if scope is not None and not getattr(user, "is_operator", False):
        return area_resolve(scope.code)
    return area_national()


# --- open data: province × top-level category × month, with disclosure control -------------------


def _cell_stats(trades, tonnes, contribution) -> CellStats:
    return CellStats(
        trades=trades,
        tonnes=tonnes,
        sellers=contribution.get("sellers", 0),
        buyers=contribution.get("buyers", 0),
        top_seller_tonnes=contribution.get("top_seller") or Decimal(0),
        top_buyer_tonnes=contribution.get("top_buyer") or Decimal(0),
    )


def open_volume(year: int, *, today: date | None = None) -> dict:
    """The open data of ``year``: trades, tonnes and value per province × top-level category × month,
    with each row's, column's and the month's total, after disclosure control
    (``pricing.disclosure``). Only months that have ended are published (a month still filling
    would let successive readings be subtracted from each other).

    Returns ``{"year", "rule", "provinces", "categories", "months": [{"month", "cells"}]}`` where
    each cell is ``{"province", "category", "trades", "tonnes", "value", "suppressed"}``;
    ``province`` or ``category`` is None for a total, a suppressed cell's figures are None, and a
    position that is neither traded in nor suppressed is left out (zero).
    """
    today = today or timezone.localdate()
    months = [date(year, m, 1) for m in range(1, 13) if month_add(date(year, m, 1), 1) <= today]
    provinces = list(Region.objects.filter(level="province").order_by("code").values("code", "name"))
    categories = list(
        Category.objects.filter(depth=0).order_by("sort_order", "code").values("code", "name", "name_en")
    )
    province_codes = [p["code"] for p in provinces]
    category_codes = [c["code"] for c in categories]
    result = {
        "year": year,
        "rule": {
            "min_sellers": MIN_SELLERS,
            "min_buyers": MIN_BUYERS,
            "max_share": MAX_SHARE,
        },
        "provinces": provinces,
        "categories": categories,
        "months": [],
    }
    if not months:
        return result

    figures: dict[date, dict] = defaultdict(dict)
    for row in VolumeRollup.objects.filter(
        grain=RollupGrain.MONTH,
        depth=0,
        level__in=[RollupLevel.PROVINCE, RollupLevel.NATIONAL],
        period__in=months,
    ).values_list("period", "region", "category", "trades", "tonnes", "value"):
        period, region, category, trades, tonnes, value = row
        r = TOTAL if region == NATIONAL else region
        table = figures[period]
        for position in ((r, category), (r, TOTAL)):
            total = table.setdefault(position, [0, Decimal(0), Decimal(0)])
            total[0] += trades
            total[1] += tonnes
            total[2] += value

    contributions: dict[tuple, dict] = {}
    for row in (
        DisclosureContribution.objects.filter(month__in=months, trades__gt=0)
        .values("month", "region", "category")
        .annotate(
            sellers=Count("pk", filter=Q(side=DisclosureSide.SELLER)),
            buyers=Count("pk", filter=Q(side=DisclosureSide.BUYER)),
            top_seller=Max("tonnes", filter=Q(side=DisclosureSide.SELLER)),
            top_buyer=Max("tonnes", filter=Q(side=DisclosureSide.BUYER)),
        )
    ):
        r = TOTAL if row["region"] == NATIONAL else row["region"]
        c = TOTAL if row["category"] == ALL_CATEGORIES else row["category"]
        contributions[(row["month"], r, c)] = row

    for month in months:
        table = figures.get(month, {})
        cells = {
            position: _cell_stats(trades, tonnes, contributions.get((month, *position), {}))
            for position, (trades, tonnes, _value) in table.items()
        }
        hidden = suppress(cells, province_codes, category_codes)
        out = []
        for r in [*province_codes, TOTAL]:
            for c in [*category_codes, TOTAL]:
                position = (r, c)
                suppressed = position in hidden
                if position not in table and not suppressed:
                    continue
                trades, tonnes, value = table.get(position, (0, Decimal("0.000"), Decimal("0.00")))
                out.append(
                    {
                        "province": None if r is TOTAL else r,
                        "category": None if c is TOTAL else c,
                        "trades": None if suppressed else trades,
                        "tonnes": None if suppressed else tonnes,
                        "value": None if suppressed else value,
                        "suppressed": suppressed,
                    }
                )
        result["months"].append({"month": f"{month:%Y-%m}", "cells": out})
    return result
