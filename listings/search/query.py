"""What a search asks (:class:`LotQuery`) and what it answers (:class:`SearchResult`).

``LotQuery.from_params`` reads the URL parameters of ``GET /api/v1/lots/`` (and the dict a saved
search keeps); ``to_params`` writes them back, defaults left out, so
``LotQuery.from_params(q.to_params()) == q``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from listings.models import LotStatus, TradeMode

SORTS = ("relevance", "closing", "newest", "price_asc", "price_desc")
DEFAULT_STATUSES: tuple[str, ...] = (LotStatus.PUBLISHED.value,)
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_RESULT_WINDOW = 10_000  # Elasticsearch's index.max_result_window: page * page_size may not pass it
MAX_TEXT_LENGTH = 200
MAX_AMOUNT = Decimal("1e12")
MAX_HOURS = 24 * 366
MAX_KM = 5000.0

# URL parameter -> LotQuery field, in the order to_params writes them.
PARAMS = {
    "q": "text",
    "category": "category",
    "region": "region",
    "zone": "zone",
    "qmin": "quantity_min",
    "qmax": "quantity_max",
    "pmin": "price_min",
    "pmax": "price_max",
    "mode": "trade_mode",
    "hazardous": "hazardous",
    "closing_within": "closing_within_hours",
    "lat": "near",
    "lon": "near",
    "km": "within_km",
    "sort": "sort",
    "page": "page",
    "page_size": "page_size",
}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def region_prefix(code: str) -> str:
    """The code prefix shared by a division and everything inside it. GB/T 2260 codes are built so:
    a province is ``XX0000`` (prefix 2 digits), a prefecture ``XXXX00`` (4), a county has no
    trailing ``00`` (all 6); every row of the loaded data follows it (checked in the tests)."""
    if code.endswith("0000"):
        return code[:2]
    if code.endswith("00"):
        return code[:4]
    return code


@dataclass
class LotQuery:
    text: str = ""
    category: str | None = None  # a category code; its descendants are included
    region: str | None = None  # a GB/T 2260 code of a province, city or county
    zone: str | None = None  # an EconomicZone code: lots in any of its provinces
    quantity_min: Decimal | None = None
    quantity_max: Decimal | None = None
    price_min: Decimal | None = None  # on current_price (yuan per unit)
    price_max: Decimal | None = None
    trade_mode: str | None = None
    hazardous: bool | None = None
    closing_within_hours: int | None = None  # closes_at in (now, now + hours]
    near: tuple[float, float] | None = None  # (latitude, longitude), WGS-84 degrees
    within_km: float | None = None  # with near: distance from the lot's county centroid
    statuses: tuple[str, ...] = field(default=DEFAULT_STATUSES)
    sort: str = "relevance"  # without text, relevance sorts as newest
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE

    @property
    def effective_sort(self) -> str:
        from listings.search.tokens import query_tokens

        if self.sort == "relevance" and not query_tokens(self.text):
            return "newest"
        return self.sort

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    # --- URL parameters ---------------------------------------------------------------------

    @classmethod
    def from_params(cls, params) -> LotQuery:
        """Parse URL parameters (a QueryDict or a plain dict). Unknown parameters are ignored; bad
        values raise ``ValidationError`` keyed by parameter name, each error with a code."""
        values = _Reader(params)
        errors: dict[str, list[ValidationError]] = {}

        def fail(name: str, message: str, code: str) -> None:
            errors.setdefault(name, []).append(ValidationError(message, code=code))

        query = cls()
        text = " ".join(values.get("q").split())
        if len(text) > MAX_TEXT_LENGTH:
            fail("q", _("搜索词最多 %(n)d 个字。") % {"n": MAX_TEXT_LENGTH}, "too_long")
        else:
            query.text = text

        category = values.get("category")
        if category:
            from listings.models import Category

            if not Category.objects.filter(code=category).exists():
                fail("category", _("品类不存在。"), "category_unknown")
            else:
                query.category = category

        region = values.get("region")
        if region:
            from market.core.regions import region_code_prefix

            if not region.isdigit() or len(region) != 6 or region_code_prefix(region) is None:
                fail("region", _("行政区划代码不存在。"), "region_unknown")
            else:
                query.region = region

        zone = values.get("zone")
        if zone:
            from market.core.models import EconomicZone

            if not EconomicZone.objects.filter(code=zone).exists():
                fail("zone", _("经济区不存在。"), "zone_unknown")
            else:
                query.zone = zone

        for lo_name, hi_name, lo_attr, hi_attr in (
            ("qmin", "qmax", "quantity_min", "quantity_max"),
            ("pmin", "pmax", "price_min", "price_max"),
        ):
            bounds = {}
            for name, attr in ((lo_name, lo_attr), (hi_name, hi_attr)):
                raw = values.get(name)
                if not raw:
                    continue
                try:
                    number = Decimal(raw)
                except InvalidOperation:
                    number = None
                if number is None or not number.is_finite():
                    fail(name, _("请输入数字。"), "invalid")
                elif number < 0 or number > MAX_AMOUNT:
                    fail(name, _("数值超出范围。"), "out_of_range")
                else:
                    bounds[attr] = number
                    setattr(query, attr, number)
            if len(bounds) == 2 and bounds[lo_attr] > bounds[hi_attr]:
                fail(hi_name, _("上限不能小于下限。"), "range_reversed")

        mode = values.get("mode")
        if mode:
            if mode not in TradeMode.values:
                fail("mode", _("交易方式无效。"), "invalid_choice")
            else:
                query.trade_mode = mode

        hazardous = values.get("hazardous").lower()
        if hazardous in _TRUE:
            query.hazardous = True
        elif hazardous in _FALSE:
            query.hazardous = False
        elif hazardous:
            fail("hazardous", _("请填写 true 或 false。"), "invalid")

        hours = values.get("closing_within")
        if hours:
            number = _int(hours)
            if number is None:
                fail("closing_within", _("请输入整数小时数。"), "invalid")
            elif not 1 <= number <= MAX_HOURS:
                fail("closing_within", _("小时数超出范围。"), "out_of_range")
            else:
                query.closing_within_hours = number

        geo = {name: values.get(name) for name in ("lat", "lon", "km")}
        if any(geo.values()):
            point = {}
            limits = {"lat": (-90.0, 90.0), "lon": (-180.0, 180.0), "km": (0.0, MAX_KM)}
            for name, raw in geo.items():
                if not raw:
                    fail(name, _("按距离搜索需要同时提供 lat、lon 和 km。"), "required")
                    continue
                number = _float(raw)
                lo, hi = limits[name]
                if number is None:
                    fail(name, _("请输入数字。"), "invalid")
                elif not lo <= number <= hi or (name == "km" and number <= 0):
                    fail(name, _("数值超出范围。"), "out_of_range")
                else:
                    point[name] = number
            if len(point) == 3:
                query.near = (point["lat"], point["lon"])
                query.within_km = point["km"]

        sort = values.get("sort")
        if sort:
            if sort not in SORTS:
                fail("sort", _("排序方式无效。"), "invalid_choice")
            else:
                query.sort = sort

        for name, low, high in (("page", 1, MAX_RESULT_WINDOW), ("page_size", 1, MAX_PAGE_SIZE)):
            raw = values.get(name)
            if not raw:
                continue
            number = _int(raw)
            if number is None:
                fail(name, _("请输入整数。"), "invalid")
            elif not low <= number <= high:
                fail(name, _("数值超出范围。"), "out_of_range")
            else:
                setattr(query, name, number)
        if "page" not in errors and query.page * query.page_size > MAX_RESULT_WINDOW:
            fail(
                "page",
                _("最多翻到第 %(n)d 条结果，请缩小搜索范围。") % {"n": MAX_RESULT_WINDOW},
                "page_too_deep",
            )

        if errors:
            raise ValidationError(errors)
        return query

    def to_params(self) -> dict[str, str]:
        """The URL parameters of this query, defaults left out (for saved searches and links)."""
        out: dict[str, str] = {}
        if self.text:
            out["q"] = self.text
        for name, value in (("category", self.category), ("region", self.region), ("zone", self.zone)):
            if value:
                out[name] = value
        for name, value in (
            ("qmin", self.quantity_min),
            ("qmax", self.quantity_max),
            ("pmin", self.price_min),
            ("pmax", self.price_max),
        ):
            if value is not None:
                out[name] = _decimal_str(value)
        if self.trade_mode:
            out["mode"] = self.trade_mode
        if self.hazardous is not None:
            out["hazardous"] = "true" if self.hazardous else "false"
        if self.closing_within_hours is not None:
            out["closing_within"] = str(self.closing_within_hours)
        if self.near is not None and self.within_km is not None:
            out["lat"], out["lon"] = repr(float(self.near[0])), repr(float(self.near[1]))
            out["km"] = repr(float(self.within_km))
        if self.sort != "relevance":
            out["sort"] = self.sort
        if self.page != 1:
            out["page"] = str(self.page)
        if self.page_size != DEFAULT_PAGE_SIZE:
            out["page_size"] = str(self.page_size)
        return out


@dataclass
class SearchResult:
    ids: list[int]  # the page's lot ids, in order
    total: int  # lots matching, over all pages
    page: int
    page_size: int
    # "category": top-level codes, or the codes one level under the selected category;
    # "province": six-digit province codes (XX0000); "trade_mode": TradeMode values.
    # Each a list of (key, count), count descending then key ascending.
    facets: dict[str, list[tuple[str, int]]] = field(default_factory=dict)


class _Reader:
    """One string per parameter from a QueryDict (the last value) or a dict (JSON values too)."""

    def __init__(self, params):
        self.params = params if params is not None else {}

    def get(self, name: str) -> str:
        params = self.params
        if hasattr(params, "getlist"):
            items = params.getlist(name)
            value = items[-1] if items else None
        else:
            value = params.get(name)
            if isinstance(value, (list, tuple)):
                value = value[-1] if value else None
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        # A NUL byte can match nothing and PostgreSQL refuses it in any text parameter (a 500).
        return str(value).replace("\x00", "").strip()


def _int(raw: str) -> int | None:
    try:
        return int(raw)
    except ValueError:
        return None


def _float(raw: str) -> float | None:
    try:
        number = float(raw)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _decimal_str(value: Decimal) -> str:
    text = format(Decimal(value), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"
