"""What the statistics pages show, assembled from the statistics selectors.

Every figure comes from ``pricing.selectors`` (the rollups) or ``pricing.index_selectors``; the only
table read here directly is the hazardous-waste transfer manifests of ``market.deals`` (one
aggregate query, :func:`manifest_flows`), for which the deals app has no selector. Nothing here
writes.

- :func:`explorer_build`: the explorer's series, top lists and the annual value beside its target;
- :func:`dashboard_build`: a government dashboard for one division (two years by month, by
  category, by sub-division, the price indices of its province and the nation's composites, the
  manifests leaving and entering it);
- :func:`open_grid`: one month of the open data as a province × category grid;
- :func:`dashboard_tables` and :func:`open_volume_rows`: the same figures as plain tables for the
  CSV and Excel exports (``frontend.statistics_export``).
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Q
from django.utils.translation import get_language, pgettext
from django.utils.translation import gettext as _

from frontend.forms_listings import categories_tree_sorted, category_name
from listings.models import Category
from market.core.models import EconomicZone, Region, RegionLevel
from market.core.regions import region_prefix
from market.deals.selectors import manifest_flows as deal_manifest_flows
from pricing import index_selectors, selectors
from pricing.periods import month_add
from pricing.rollups import region_level

RATIO_PLACES = Decimal("0.0001")
ZERO_FIGURES = (0, Decimal("0.000"), Decimal("0.00"))
TOP_LIMIT = 10
DASHBOARD_MONTHS = 24


def grain_choices() -> list[tuple[str, str]]:
    return [
        ("day", pgettext("statistics", "日")),
        ("week", pgettext("statistics", "周")),
        ("month", pgettext("statistics", "月")),
        ("quarter", pgettext("statistics", "季")),
        ("year", pgettext("statistics", "年")),
    ]


def index_status_label(status: str) -> str:
    return {
        "T": pgettext("statistics", "成交价"),
        "E": pgettext("statistics", "窗口价"),
        "C": pgettext("statistics", "沿用"),
        "S": pgettext("statistics", "停滞"),
    }.get(status or "", status or "—")


def ratio(now, then) -> Decimal | None:
    """``(now - then) / then`` to four places, None when ``then`` is zero."""
    if not then:
        return None
    return ((Decimal(now) - Decimal(then)) / Decimal(then)).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def _share(part, whole) -> Decimal | None:
    if not whole:
        return None
    return (Decimal(part) / Decimal(whole)).quantize(RATIO_PLACES, rounding=ROUND_HALF_UP)


def _num(value) -> float:
    """A figure for the charts (JSON numbers; the tables keep the exact Decimals)."""
    return float(value or 0)


# --- the catalogue -------------------------------------------------------------------------


class Catalogue:
    """Every category (inactive ones too: old trades keep their category), loaded once per request."""

    def __init__(self):
        self.ordered = categories_tree_sorted(
            list(
                Category.objects.only(
                    "code", "name", "name_en", "parent_id", "depth", "sort_order", "hw_code", "is_active"
                )
            )
        )
        self.by_code = {c.code: c for c in self.ordered}
        self.children: dict[str | None, list[Category]] = defaultdict(list)
        for category in self.ordered:
            self.children[category.parent_id].append(category)

    def get(self, code: str | None) -> Category | None:
        return self.by_code.get(code or "")

    def name(self, code: str) -> str:
        category = self.by_code.get(code)
        return category_name(category) if category else code

    def path(self, code: str | None) -> list[Category]:
        """From the top of the tree down to ``code``."""
        category = self.get(code)
        chain = []
        while category is not None:
            chain.append(category)
            category = self.by_code.get(category.parent_id or "")
        return list(reversed(chain))

    def tree_choices(self, blank_label) -> list[tuple[str, str]]:
        return [("", blank_label)] + [(c.code, "\u3000" * c.depth + category_name(c)) for c in self.ordered]

    def branch(self, code: str) -> list[str]:
        """``code`` and the codes of every category below it."""
        out, stack = [], [code]
        while stack:
            node = stack.pop()
            out.append(node)
            stack.extend(c.code for c in self.children.get(node, ()))
        return out

    def hw_label(self, hw_code: str) -> str:
        """The HW class of the national list as the catalogue names it (``hazardous.hw31``: 含铅废物),
        else the shallowest category carrying the code."""
        found = [c for c in self.ordered if c.hw_code == hw_code]
        found.sort(key=lambda c: (not c.code.startswith("hazardous."), c.depth, c.code))
        return category_name(found[0]) if found else ""


# --- areas a user may choose ---------------------------------------------------------------


def area_choices(user, area: selectors.Area | None, scope: Region | None) -> list:
    """Options of the explorer's region select: what ``user`` may read, around ``area``.

    Operators: the nation, the economic zones, the provinces and, under the chosen area's province
    and city, their cities and counties. Government users: their jurisdiction, the zones wholly
    inside it and the divisions under it (and, for a province office, a chosen city's counties).
    Companies: the nation only.
    """
    operator = bool(getattr(user, "is_operator", False))
    if not operator and scope is None:
        return [("CN", _("全国"))]
    code = area.code if area is not None and len(area.code) == 6 else ""
    level = area.level if area is not None else ""
    province = code[:2] + "0000" if code else ""
    city = code[:4] + "00" if level in (RegionLevel.CITY, RegionLevel.COUNTY) else ""
    if operator:
        parents = [p for p in (province, city) if p]
        wanted = Q(level=RegionLevel.PROVINCE) | Q(parent_id__in=parents)
    else:
        parents = [scope.code]
        if city and scope.level == RegionLevel.PROVINCE and scope.contains(city):
            parents.append(city)
        wanted = Q(pk=scope.code) | Q(parent_id__in=parents)
    regions = list(Region.objects.filter(wanted).only("code", "name", "level", "parent_id").order_by("code"))
    names = {r.code: r.name for r in regions}
    zones = [
        zone
        for zone in EconomicZone.objects.prefetch_related("provinces").order_by("sort_order", "code")
        if operator or all(scope.contains(p.code) for p in zone.provinces.all())
    ]
    choices: list = []
    if operator:
        choices.append(("CN", _("全国")))
    else:
        choices.append((scope.code, _("%(name)s（本辖区）") % {"name": names.get(scope.code, scope.name)}))
    if zones:
        choices.append((_("经济区"), [(z.code, z.name) for z in zones]))
    if operator:
        choices.append((_("省份"), [(r.code, r.name) for r in regions if r.level == RegionLevel.PROVINCE]))
    for parent in parents:
        items = [(r.code, r.name) for r in regions if r.parent_id == parent]
        if items:
            choices.append((_("%(name)s下辖") % {"name": names.get(parent, parent)}, items))
    return choices


def choice_codes(choices) -> set[str]:
    codes = set()
    for value, label in choices:
        if isinstance(label, list):
            codes.update(v for v, _label in label)
        else:
            codes.add(value)
    return codes


# --- the explorer --------------------------------------------------------------------------


@dataclass
class Explorer:
    grain: str
    area: selectors.Area
    category: Category | None
    date_from: date
    date_to: date
    points: list
    totals: tuple
    top_categories: list = field(default_factory=list)
    top_categories_parent: Category | None = None
    top_regions: list = field(default_factory=list)
    top_regions_level: str = ""
    regions_hidden: bool = False
    annual: dict | None = None
    annual_national: bool = True
    chart: dict = field(default_factory=dict)


def _totals(points) -> tuple[int, Decimal, Decimal]:
    return (
        sum(p.trades for p in points),
        sum((p.tonnes for p in points), Decimal("0.000")),
        sum((p.value for p in points), Decimal("0.00")),
    )


def volume_chart(points, *, labels=None) -> dict:
    return {
        "kind": "volume",
        "labels": [p.label for p in points],
        "value": [_num(p.value) for p in points],
        "tonnes": [_num(p.tonnes) for p in points],
        "trades": [p.trades for p in points],
        "names": {
            "value": pgettext("statistics", "成交额（元）"),
            "tonnes": pgettext("statistics", "成交量（吨）"),
            "trades": pgettext("statistics", "成交笔数"),
        },
    }


def _sub_level(area: selectors.Area) -> str | None:
    """The level one step below ``area`` (a zone's is its provinces); None below a county."""
    return {
        "national": "province",
        "zone": "province",
        RegionLevel.PROVINCE: "city",
        RegionLevel.CITY: "county",
    }.get(area.level)


def level_label(level: str) -> str:
    """The name of a level of division, as a column heading."""
    return {
        "province": _("省份"),
        "city": _("地市"),
        "county": _("区县"),
    }.get(level, level)


def top_regions_title(level: str) -> str:
    return {
        "province": _("成交额居前的省份"),
        "city": _("成交额居前的地市"),
        "county": _("成交额居前的区县"),
    }.get(level, _("成交额居前的区域"))


def breakdown_title(level: str) -> str:
    return {
        "province": _("按省份"),
        "city": _("按地市"),
        "county": _("按区县"),
    }.get(level, _("按下级区域"))


def explorer_build(
    *,
    user,
    grain: str,
    area: selectors.Area,
    category: Category | None,
    date_from: date,
    date_to: date,
    catalogue: Catalogue,
) -> Explorer:
    """The explorer's figures; raises the selectors' ``ValidationError`` for a bad range."""
    points = selectors.volume(grain, category.code if category else None, area.code, date_from, date_to)
    first, last = points[0].period, points[-1].end
    explorer = Explorer(
        grain=grain,
        area=area,
        category=category,
        date_from=first,
        date_to=last,
        points=points,
        totals=_totals(points),
        chart=volume_chart(points),
    )
    # Top categories: the children of the chosen category, or its siblings when it has none.
    parent = None
    if category is not None:
        parent = category.code if catalogue.children.get(category.code) else category.parent_id
    explorer.top_categories_parent = catalogue.get(parent)
    rows = selectors.top_categories(
        first, last, region_code_or_zone=area.code, parent=parent, limit=TOP_LIMIT
    )
    for row in rows:
        row["name"] = catalogue.name(row["code"])
    explorer.top_categories = rows

    # Top regions: one level down, for those who may read regional figures (companies may not).
    level = _sub_level(area)
    national_allowed = selectors.statistics_area_refusal(user, selectors.area_national()) is None
    if level is not None and (getattr(user, "is_operator", False) or not area.is_national):
        within = area.code if area.level not in ("national", "zone") else None
        limit = TOP_LIMIT if area.level != "zone" else 1000
        regions = selectors.top_regions(
            first,
            last,
            level=level,
            within=within,
            category_code=category.code if category else None,
            limit=limit,
        )
        if area.level == "zone":
            regions = [r for r in regions if r["code"] in area.keys][:TOP_LIMIT]
        explorer.top_regions = regions
        explorer.top_regions_level = level
    elif level is not None:
        explorer.regions_hidden = True

    # The year's online trade value: the nation's beside the target when the user may read the
    # nation's figures; otherwise the user's area's for the year, without the national target.
    year = last.year
    if national_allowed:
        explorer.annual = selectors.annual_value(year)
        share = explorer.annual["share"]
        explorer.annual["progress"] = str(min(share, Decimal(1))) if share else "0"
    else:
        (point,) = selectors.volume("year", None, area.code, date(year, 1, 1), date(year, 12, 31))
        explorer.annual = {"year": year, "trades": point.trades, "tonnes": point.tonnes, "value": point.value}
        explorer.annual_national = False
    return explorer


# --- the government dashboard ----------------------------------------------------------------


@dataclass
class Window:
    first: date
    last: date

    @property
    def label(self) -> str:
        return f"{self.first:%Y-%m} – {self.last:%Y-%m}"


@dataclass
class Dashboard:
    jurisdiction: Region
    region: Region
    path: list[Region]
    category: Category | None
    category_path: list[Category]
    window: Window
    recent: Window
    prior: Window
    points: list
    totals: tuple
    recent_totals: tuple
    prior_totals: tuple
    categories: list[dict]
    categories_total: dict | None
    regions: list[dict]
    regions_total: dict | None
    breakdown_level: str
    indices: list
    manifests: dict
    charts: dict

    @property
    def recent_yoy(self) -> dict:
        """The last 12 months against the 12 before: trades, tonnes and value."""
        return _compare(self.recent_totals, self.prior_totals)["yoy"]


def _window_figures(table: dict, key, months) -> tuple[int, Decimal, Decimal]:
    trades, tonnes, value = 0, Decimal("0.000"), Decimal("0.00")
    for month in months:
        cell = table.get((month, key))
        if cell:
            trades += cell[0]
            tonnes += cell[1]
            value += cell[2]
    return trades, tonnes, value


def _compare(recent: tuple, prior: tuple) -> dict:
    return {
        "recent": recent,
        "prior": prior,
        "yoy": {
            "trades": ratio(recent[0], prior[0]),
            "tonnes": ratio(recent[1], prior[1]),
            "value": ratio(recent[2], prior[2]),
        },
    }


def _rows_total(rows: list[dict]) -> dict | None:
    """The sum of a table's rows, as a row of its own (share 100 %)."""
    if not rows:
        return None
    recent = tuple(sum((r["recent"][i] for r in rows), 0) for i in range(3))
    prior = tuple(sum((r["prior"][i] for r in rows), 0) for i in range(3))
    return {**_compare(recent, prior), "share": Decimal(1) if recent[2] else None}


def manifest_flows(
    region: Region, first: date, last: date, category: str | None, catalogue: Catalogue
) -> dict:
    """The manifests moving out of and into ``region`` (``market.deals.selectors.manifest_flows``),
    shaped for the dashboard: detail rows, by HW code (named), by month, totals."""
    rows = deal_manifest_flows(region_prefix(region), first, last, category)
    zero = Decimal("0.000")
    detail = []
    by_code: dict[str, dict] = {}
    by_month: dict[date, dict] = {}
    totals = {"out_n": 0, "out_t": zero, "in_n": 0, "in_t": zero, "within_n": 0, "within_t": zero}
    for row in rows:
        month = row["month"]
        if hasattr(month, "date"):
            month = month.date()
        figures = {k: (row[k] or (0 if k.endswith("_n") else zero)) for k in totals}
        detail.append({"month": month, "hw_code": row["hw_code"], **figures})
        for bucket in (
            by_code.setdefault(row["hw_code"], {"hw_code": row["hw_code"], **dict.fromkeys(totals, 0)}),
            by_month.setdefault(month, {"month": month, **dict.fromkeys(totals, 0)}),
            totals,
        ):
            for key, value in figures.items():
                bucket[key] += value
    codes = sorted(by_code.values(), key=lambda r: (-(r["out_t"] + r["in_t"]), r["hw_code"]))
    for row in codes:
        row["name"] = catalogue.hw_label(row["hw_code"])
    for row in detail:
        row["name"] = catalogue.hw_label(row["hw_code"])
    return {
        "detail": detail,
        "by_code": codes,
        "by_month": [by_month[m] for m in sorted(by_month)],
        "totals": totals,
    }


def _months(first: date, last: date) -> list[date]:
    out, month = [], first.replace(day=1)
    while month <= last:
        out.append(month)
        month = month_add(month, 1)
    return out


def _ranking_chart(rows: list[dict], name: str) -> dict:
    rows = [r for r in rows if r["recent"][2]]
    return {
        "kind": "ranking",
        "labels": [r["name"] for r in rows],
        "values": [_num(r["recent"][2]) for r in rows],
        "urls": [r["url"] for r in rows],
        "name": name,
    }


def dashboard_build(
    *,
    jurisdiction: Region,
    region: Region,
    category: Category | None,
    catalogue: Catalogue,
    today: date,
    url_for,
) -> Dashboard:
    """The dashboard of ``region`` (the jurisdiction or a division inside it) for ``category`` (all
    when None): 24 months to this one. ``url_for(region_code, category_code)`` makes drill links."""
    first = month_add(today, -(DASHBOARD_MONTHS - 1))
    recent = Window(month_add(today, -11), today)
    prior = Window(first, recent.first - timedelta(days=1))
    code = category.code if category else None
    points = selectors.volume("month", code, region.code, first, today)
    by_month = {p.period: p for p in points}

    def window_totals(window: Window) -> tuple:
        months = _months(window.first, window.last)
        return _totals([by_month[m] for m in months if m in by_month])

    # By category: the children of the chosen one (the top-level categories without one).
    table = selectors.volume_by_category("month", region.code, first, today, parent=code)
    recent_months, prior_months = _months(recent.first, recent.last), _months(prior.first, prior.last)
    children = catalogue.children.get(code, [])
    categories = []
    for child in children:
        row = _compare(
            _window_figures(table, child.code, recent_months),
            _window_figures(table, child.code, prior_months),
        )
        if not (row["recent"][0] or row["prior"][0] or child.is_active):
            continue
        row.update(
            code=child.code,
            name=category_name(child),
            has_children=bool(catalogue.children.get(child.code)),
            url=url_for(region.code, child.code),
        )
        categories.append(row)
    recent_value = sum((r["recent"][2] for r in categories), Decimal(0))
    for row in categories:
        row["share"] = _share(row["recent"][2], recent_value)
    order = {c.code: i for i, c in enumerate(children)}
    categories.sort(key=lambda r: (-r["recent"][2], -r["prior"][2], order[r["code"]]))

    # By sub-division: a province's cities, a city's counties.
    breakdown = (
        list(selectors.government_scope_breakdown(region)) if region.level != RegionLevel.COUNTY else []
    )
    regions, level = [], ""
    if breakdown:
        level = region_level(breakdown[0].code)

        def ranked(window: Window) -> dict:
            rows = selectors.top_regions(
                window.first, window.last, level=level, within=region.code, category_code=code, limit=10_000
            )
            return {r["code"]: (r["trades"], r["tonnes"], r["value"]) for r in rows}

        recent_rows, prior_rows = ranked(recent), ranked(prior)
        for child in breakdown:
            row = _compare(
                recent_rows.get(child.code, ZERO_FIGURES), prior_rows.get(child.code, ZERO_FIGURES)
            )
            row.update(code=child.code, name=child.name, url=url_for(child.code, code))
            regions.append(row)
        total = sum((r["recent"][2] for r in regions), Decimal(0))
        for row in regions:
            row["share"] = _share(row["recent"][2], total)
        regions.sort(key=lambda r: (-r["recent"][2], -r["prior"][2], r["code"]))

    # Price indices: the province's own series (of the chosen category's branch) and the national
    # composites.
    # Only those series are read (the overview of every series of every province was the page's
    # slowest part); the category's branch is the category and its descendants.
    province = region.code[:2] + "0000"
    own = Q(scope="province", province_id=province)
    if code is not None:
        own &= Q(category_id__in=catalogue.branch(code))
    indices = index_selectors.indices_overview(where=own | Q(kind="composite", scope="national"))

    manifests = manifest_flows(region, first, today, code, catalogue)
    months = _months(first, today)
    manifest_months = {m["month"]: m for m in manifests["by_month"]}
    charts = {
        "monthly": volume_chart(points),
        "categories": _ranking_chart(categories, _("近12个月成交额（元）")),
        "regions": _ranking_chart(regions, _("近12个月成交额（元）")),
        "manifests": {
            "kind": "grouped",
            "labels": [f"{m:%Y-%m}" for m in months],
            "series": [
                {
                    "name": _("转出（吨）"),
                    "values": [_num(manifest_months.get(m, {}).get("out_t")) for m in months],
                },
                {
                    "name": _("转入（吨）"),
                    "values": [_num(manifest_months.get(m, {}).get("in_t")) for m in months],
                },
            ],
        },
    }
    path = [r for r in region.ancestors() if jurisdiction.contains(r.code)] + [region]
    return Dashboard(
        jurisdiction=jurisdiction,
        region=region,
        path=path,
        category=category,
        category_path=catalogue.path(code),
        window=Window(first, today),
        recent=recent,
        prior=prior,
        points=points,
        totals=_totals(points),
        recent_totals=window_totals(recent),
        prior_totals=window_totals(prior),
        categories=categories,
        categories_total=_rows_total(categories),
        regions=regions,
        regions_total=_rows_total(regions),
        breakdown_level=level,
        indices=indices,
        manifests=manifests,
        charts=charts,
    )


# --- open data -------------------------------------------------------------------------------


def open_grid(data: dict, month: str, measure: str) -> dict:
    """One month of ``selectors.open_volume`` as rows of provinces (those with anything that month,
    then the total) × columns of top-level categories (then the total). A cell is
    ``{"value", "suppressed"}`` with ``value`` None for a suppressed cell and 0 for an empty one."""
    cells = next((m["cells"] for m in data["months"] if m["month"] == month), [])
    by_position = {(c["province"], c["category"]): c for c in cells}
    present = {c["province"] for c in cells if c["province"]}
    provinces = [p for p in data["provinces"] if p["code"] in present]
    columns = [c["code"] for c in data["categories"]] + [None]

    def cell(province, category):
        found = by_position.get((province, category))
        if found is None:
            return {"value": 0, "suppressed": False, "empty": True}
        return {"value": found[measure], "suppressed": found["suppressed"], "empty": False}

    rows = [
        {"code": p["code"], "name": p["name"], "cells": [cell(p["code"], c) for c in columns]}
        for p in provinces
    ]
    total = {"code": None, "name": _("全国合计"), "cells": [cell(None, c) for c in columns]}
    return {
        "rows": rows,
        "total": total,
        "suppressed": sum(1 for c in cells if c["suppressed"]),
        "has_cells": bool(cells),
    }


def open_category_names(data: dict) -> list[str]:
    english = (get_language() or "").lower().startswith("en")
    return [(c["name_en"] if english and c.get("name_en") else c["name"]) for c in data["categories"]]


def open_volume_rows(data: dict) -> list[list]:
    """The open table of a year in long form: month, province, category, trades, tonnes, value,
    suppressed; margins named 合计."""
    provinces = {p["code"]: p["name"] for p in data["provinces"]}
    categories = dict(zip([c["code"] for c in data["categories"]], open_category_names(data), strict=True))
    total = _("合计")
    rows = []
    for month in data["months"]:
        for c in month["cells"]:
            rows.append(
                [
                    month["month"],
                    c["province"] or "",
                    provinces.get(c["province"], total) if c["province"] else total,
                    c["category"] or "",
                    categories.get(c["category"], total) if c["category"] else total,
                    c["trades"],
                    c["tonnes"],
                    c["value"],
                    _("是") if c["suppressed"] else _("否"),
                ]
            )
    return rows


def month_options(data: dict) -> list[str]:
    return [m["month"] for m in data["months"]]


def default_open_year(today: date) -> int:
    """This year once a month of it has ended, else last year."""
    return today.year if today.month > 1 else today.year - 1
