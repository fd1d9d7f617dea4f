"""Pages of the price indices (价格指数): the list with composites first, one index with its chart,
values, contributions and correction notices, the audit list behind one value, the published
methodology, and the ticker of the home page.

Public pages (the indices are open data), thin like the other page modules: every read goes through
``pricing.index_selectors``. The audit list names the parties and trade ids for operators only;
everyone else sees 卖方 A / 买方 B. The live values (``/ws/indices/``, "indicative") are drawn by
``src/indices.ts`` into space the server already reserved, so nothing moves when they arrive.
"""

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, gettext_lazy, ngettext
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from frontend.forms_indices import IndexCorrectionForm
from listings.models import Category
from market.core.audit import client_ip
from pricing import index_selectors as selectors
from pricing import indices as pricing_indices
from pricing import methodology
from pricing.index_models import IndexSeries, IndexValue, SeriesKind, SeriesScope

VALUES_PER_PAGE = 60
TICKER_LIMIT = 16
SOCKET = "/ws/indices/"

STATUS_LABELS = {
    "T": gettext_lazy("成交价"),
    "E": gettext_lazy("窗口价"),
    "C": gettext_lazy("沿用前值"),
    "S": gettext_lazy("停滞"),
}
STATUS_HELP = {
    "T": gettext_lazy("当日成交满足流动性规则：至少 3 笔、2 个以上买方和卖方、单一单位成交量不超过一半。"),
    "E": gettext_lazy("当日成交不足，按最近 5 个交易日的成交加权平均。"),
    "C": gettext_lazy("最近 5 个交易日成交不足，沿用上一交易日的价格。"),
    "S": gettext_lazy("连续 10 个交易日以上沿用前值；综合指数不使用该值，按同类活跃地区的变动推算。"),
}

SCOPES = [
    (SeriesScope.NATIONAL.value, gettext_lazy("全国")),
    (SeriesScope.ZONE.value, gettext_lazy("经济区")),
    (SeriesScope.PROVINCE.value, gettext_lazy("省份")),
]

# Why a trade examined for a value was not used in it (pricing.methodology.Reason), in plain words.
REASONS = {
    "voided": gettext_lazy("成交已作废"),
    "not_settled": gettext_lazy("尚未完成结算（未付款或未过磅）"),
    "non_positive": gettext_lazy("数量或单价不是正数"),
    "unit_not_convertible": gettext_lazy("计量单位无法换算为吨"),
    "vat_basis_differs": gettext_lazy("价格的含税口径与指数不同"),
    "same_organisation": gettext_lazy("买卖双方是同一单位"),
    "linked_parties": gettext_lazy("买卖双方存在关联关系"),
    "below_min_lot": gettext_lazy("数量低于该品类计入指数的最小批量"),
    "outlier": gettext_lazy("价格偏离当日中位数过大，按异常值规则剔除"),
    "operator": gettext_lazy("运营人员复核后剔除"),
    "not_liquid": gettext_lazy("当日成交不满足流动性规则，未形成成交价"),
}
ILLIQUID = {
    "too_few_trades": gettext_lazy("成交不足 3 笔"),
    "too_few_buyers": gettext_lazy("买方不足 2 个"),
    "too_few_sellers": gettext_lazy("卖方不足 2 个"),
    "too_few_tonnes": gettext_lazy("成交量低于最低吨数"),
    "dominant_organisation": gettext_lazy("单一单位成交量超过一半"),
}

# The parameters stored with every value (pricing.methodology.Params.as_audit), in reading order.
PARAM_LABELS = [
    ("cutoff", gettext_lazy("每日截止时间")),
    ("timezone", gettext_lazy("时区")),
    ("holidays", gettext_lazy("非交易日（法定节假日）")),
    ("vat_included", gettext_lazy("价格含增值税")),
    ("window_days", gettext_lazy("窗口价的交易日数")),
    ("stale_after", gettext_lazy("沿用前值超过多少个交易日记为停滞")),
    ("outlier_min_n", gettext_lazy("异常值规则适用的最少笔数")),
    ("mad_factor", gettext_lazy("异常值阈值（MAD 倍数）")),
    ("floor_pct", gettext_lazy("异常值最小偏离")),
    ("liquidity_min_n", gettext_lazy("成交价的最少笔数")),
    ("min_buyers", gettext_lazy("最少买方数")),
    ("min_sellers", gettext_lazy("最少卖方数")),
    ("max_share", gettext_lazy("单一单位成交量上限")),
    ("default_min_cell_tonnes", gettext_lazy("成交价的最低吨数")),
    ("correction_threshold", gettext_lazy("更正阈值")),
    ("correction_days", gettext_lazy("可更正的交易日数")),
]
PERCENT_PARAMS = {"floor_pct", "max_share", "correction_threshold"}


# --- small helpers ----------------------------------------------------------------------------


def _english() -> bool:
    return (get_language() or "").startswith("en")


def _joined(items) -> str:
    return (", " if _english() else "、").join(str(i) for i in items)


def series_name(series: IndexSeries) -> str:
    return series.name_en if _english() and series.name_en else series.name


def _category_name(category: Category | None) -> str:
    if category is None:
        return ""
    return category.name_en if _english() and category.name_en else category.name


def _region_name(series: IndexSeries) -> str:
    if series.scope == SeriesScope.ZONE and series.zone is not None:
        return series.zone.name_en if _english() and series.zone.name_en else series.zone.name
    if series.scope == SeriesScope.PROVINCE and series.province is not None:
        return series.province.name
    return _("全国")


def _change(value: IndexValue | None, previous: IndexValue | None) -> Decimal | None:
    if not value or not previous or value.level is None or not previous.level:
        return None
    return ((value.level / previous.level - 1) * 100).quantize(Decimal("0.01"))


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise Http404 from None


def _series_or_404(code: str) -> IndexSeries:
    series = selectors.series_by_code(code)
    if series is None:
        raise Http404
    return series


def _tonnes(text) -> str:
    number = Decimal(str(text))
    number = number.quantize(1) if number == number.to_integral_value() else number.normalize()
    return _("%(t)s 吨") % {"t": f"{number:f}"}


def _percent(text) -> str:
    number = Decimal(str(text)) * 100
    return f"{number.normalize():f}%"


@dataclass
class Row:
    """One line of the list or the ticker."""

    series: IndexSeries
    value: IndexValue | None
    change: Decimal | None
    name: str
    region: str
    depth: int

    @property
    def url(self) -> str:
        return reverse("frontend:index_detail", args=[self.series.code])


def _rows(rows: list[selectors.SeriesRow]) -> list[Row]:
    return [
        Row(
            series=r.series,
            value=r.value,
            change=r.change,
            name=series_name(r.series),
            region=_region_name(r.series),
            depth=r.series.category_id.count(".") if r.series.category_id else 0,
        )
        for r in rows
    ]


def _top_order() -> dict[str, int]:
    """The catalogue's order of the top-level categories (ferrous first): one query."""
    return {
        c: i
        for i, c in enumerate(
            Category.objects.filter(parent__isnull=True)
            .order_by("sort_order", "code")
            .values_list("code", flat=True)
        )
    }


def _composites_first(rows: list[Row], order: dict[str, int]) -> list[Row]:
    """The market's composite first, then the others in the catalogue's order of their categories."""

    def key(r: Row):
        category = r.series.code.removeprefix("composite.")
        return (r.series.code != "composite.market", order.get(category, len(order)), r.series.code)

    return sorted(rows, key=key)


def status_legend() -> list[tuple[str, str, str]]:
    return [(code, str(STATUS_LABELS[code]), str(STATUS_HELP[code])) for code in STATUS_LABELS]


# --- the list -----------------------------------------------------------------------------------


@require_GET
def index_list(request):
    scope = request.GET.get("scope") or SeriesScope.NATIONAL.value
    if scope not in dict(SCOPES):
        scope = SeriesScope.NATIONAL.value
    categories = list(
        Category.objects.filter(
            parent__isnull=True,
            code__in=IndexSeries.objects.filter(kind=SeriesKind.ELEMENTARY).values("category_id"),
        ).order_by("sort_order", "code")
    )
    category = request.GET.get("category") or ""
    if category not in {c.code for c in categories}:
        category = ""

    order = {c.code: i for i, c in enumerate(categories)}
    composites = _composites_first(_rows(selectors.indices_overview(kind=SeriesKind.COMPOSITE)), order)
    if category:
        composites = [r for r in composites if r.series.code == f"composite.{category}"]
    # Filtered here, not by indices_overview(category=...): its category_id__startswith lookup is
    # refused by Django on a foreign key (reported); the rows are a short list anyway.
    elementary = [
        r
        for r in _rows(selectors.indices_overview(kind=SeriesKind.ELEMENTARY, scope=scope))
        if not category or r.series.category_id == category or r.series.category_id.startswith(category + ".")
    ]

    def in_catalogue_order(r: Row):
        code = r.series.category_id or ""
        return (order.get(code.split(".")[0], len(order)), code)

    groups: list[tuple[str, list[Row]]] = []
    if scope == SeriesScope.NATIONAL:
        elementary.sort(key=in_catalogue_order)
        groups = [("", elementary)] if elementary else []
    else:
        by_region: dict[tuple, list[Row]] = {}
        for row in elementary:
            s = row.series
            key = (s.zone.sort_order if s.zone else 0, s.zone_id or s.province_id or "", row.region)
            by_region.setdefault(key, []).append(row)
        for key in sorted(by_region):
            rows = sorted(by_region[key], key=in_catalogue_order)
            groups.append((key[2], rows))

    context = {
        "scope": scope,
        "scopes": SCOPES,
        "category": category,
        "categories": [(c.code, _category_name(c)) for c in categories],
        "composites": composites,
        "groups": groups,
        "filtered": bool(category) or scope != SeriesScope.NATIONAL,
        "legend": status_legend(),
        "socket": SOCKET,
    }
    return render(request, "frontend/indices/list.html", context)


# --- one index ----------------------------------------------------------------------------------

LIST_FIELDS = (
    "id", "series_id", "day", "status", "price", "level", "n", "tonnes", "min_price", "max_price", "excluded",
    "first_level", "first_price", "first_status", "corrected_at", "carried_from",
)  # fmt: skip


def _chart_data(series: IndexSeries, values: list[IndexValue]) -> dict:
    composite = series.kind == SeriesKind.COMPOSITE
    return {
        "code": series.code,
        "composite": composite,
        "days": [v.day.isoformat() for v in values],
        "level": [str(v.level) if v.level is not None else None for v in values],
        "price": [] if composite else [str(v.price.quantize(Decimal("0.01"))) for v in values],
        "status": [v.status for v in values],
        "labels": {
            "level": _("指数"),
            "price": _("价格（元/吨）"),
            "status": {code: f"{code} {label}" for code, label in STATUS_LABELS.items()},
            "title": series_name(series),
        },
    }


def _contributions(value: IndexValue | None) -> list[dict]:
    """A composite's components on a day: weight, relative and contribution, largest weight first."""
    if value is None or not value.contributions:
        return []
    names = {
        s.code: s
        for s in IndexSeries.objects.filter(code__in=list(value.contributions)).only(
            "code", "name", "name_en"
        )
    }
    rows = []
    for code, c in value.contributions.items():
        s = names.get(code)
        rows.append(
            {
                "code": code,
                "name": series_name(s) if s else code,
                "url": reverse("frontend:index_detail", args=[code]) if s else "",
                "weight": Decimal(c["weight"]) * 100,
                "relative": Decimal(c["relative"]),
                "contribution": Decimal(c["contribution"]),
                "imputed": c.get("imputed", False),
            }
        )
    rows.sort(key=lambda r: -r["weight"])
    return rows


@require_GET
def index_detail(request, code):
    series = _series_or_404(code)
    composite = series.kind == SeriesKind.COMPOSITE
    fields = LIST_FIELDS + (("contributions",) if composite else ())
    values = list(selectors.series_values(series).only(*fields))
    last = values[-1] if values else None
    previous = values[-2] if len(values) > 1 else None
    newest_first = values[::-1]
    paginator = Paginator(newest_first, VALUES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    context = {
        "series": series,
        "name": series_name(series),
        "region": _region_name(series),
        "category_name": _category_name(series.category),
        "composite": composite,
        "last": last,
        "change": _change(last, previous),
        "page": page,
        "chart": _chart_data(series, values),
        "contributions": _contributions(last) if composite else [],
        "corrections": list(selectors.series_corrections(series)[:50]),
        "legend": status_legend(),
        "socket": f"{SOCKET}?series={series.code}",
    }
    return render(request, "frontend/indices/detail.html", context)


# --- the audit list of one value -------------------------------------------------------------


def _reason_text(code: str, detail: str, *, named: bool) -> tuple[str, str]:
    """The reason in plain words, and what may be shown of the stored detail: the liquidity
    shortfalls for everyone, the raw detail (it may name a USCC) for operators only."""
    text = str(REASONS.get(code, code))
    if code == "not_liquid":
        parts = [str(ILLIQUID.get(p.strip(), p.strip())) for p in detail.split(",") if p.strip()]
        return text, _joined(parts)
    return text, detail if named else ""


def _params(params: dict, category: str | None) -> list[tuple[str, str]]:
    rows = []
    for key, label in PARAM_LABELS:
        if key not in params:
            continue
        value = params[key]
        if key == "cutoff" and len(str(value)) == 8 and str(value).endswith(":00"):
            value = str(value)[:5]  # 16:30:00 -> 16:30
        elif key == "holidays":
            value = _joined(value) if value else _("无")
        elif key == "vat_included":
            value = _("是") if value else _("否")
        elif key in PERCENT_PARAMS:
            value = _percent(value)
        elif key == "default_min_cell_tonnes":
            value = _tonnes(value)
        rows.append((str(label), str(value)))
    if category:
        lots = params.get("min_lot_tonnes") or {}
        parts = category.split(".")
        for i in range(len(parts), 0, -1):  # the category's own entry, or its nearest ancestor's
            node = ".".join(parts[:i])
            if node in lots:
                rows.append((_("该品类计入指数的最小批量"), _tonnes(lots[node])))
                break
        cells = params.get("min_cell_tonnes") or {}
        for i in range(len(parts), 0, -1):
            node = ".".join(parts[:i])
            if node in cells:
                rows.append((_("该品类成交价的最低吨数"), _tonnes(cells[node])))
                break
    return rows


@require_GET
def index_value(request, code, day):
    series = _series_or_404(code)
    value = selectors.series_values(series).filter(day=_day(day)).first()
    if value is None:
        raise Http404
    value.series = series
    named = bool(getattr(request.user, "is_operator", False))
    composite = series.kind == SeriesKind.COMPOSITE
    trades, review_count = [], 0
    if not composite:
        audit = selectors.value_audit(value, named=named)
        review_count = audit["review_count"]
        for t in audit["trades"]:
            reason, detail = (
                _reason_text(t["reason"], t.get("reason_detail", ""), named=named)
                if not t["used"]
                else ("", "")
            )
            trades.append({**t, "reason_text": reason, "detail": detail})
        trades.sort(key=lambda t: (not t["used"], t["awarded_at"]))
    around = selectors.series_values(series)
    earlier = around.filter(day__lt=value.day).order_by("-day").values_list("day", flat=True).first()
    later = around.filter(day__gt=value.day).order_by("day").values_list("day", flat=True).first()
    context = {
        "series": series,
        "name": series_name(series),
        "value": value,
        "composite": composite,
        "named": named,
        "used": [t for t in trades if t["used"]],
        "unused": [t for t in trades if not t["used"]],
        "review_count": review_count,
        "contributions": _contributions(value) if composite else [],
        "params": _params(pricing_indices.value_params(value) or {}, series.category_id),
        "status_label": STATUS_LABELS.get(value.status, value.status),
        "status_help": STATUS_HELP.get(value.status, ""),
        "earlier": earlier,
        "later": later,
        "first_differs": value.first_level is not None and value.first_level != value.level,
        "can_correct": named and value.published_at is not None,
    }
    return render(request, "frontend/indices/value.html", context)


# --- an operator's correction of a published day ------------------------------------------------


@login_required
@require_http_methods(["GET", "POST"])
def index_correct(request, code, day):
    """Operators only (others: 404, as the API answers): recompute the published day through
    ``pricing.indices.index_correct``; every value of that day that moves by the threshold within
    the window is corrected with a public notice, shown on the index's page afterwards."""
    if not getattr(request.user, "is_operator", False):
        raise Http404
    series = _series_or_404(code)
    value = selectors.series_values(series).filter(day=_day(day)).first()
    if value is None:
        raise Http404
    p = pricing_indices.params()
    published_on = timezone.localdate(value.published_at) if value.published_at else None
    deadline = methodology.correction_deadline(published_on, p) if published_on else None
    today = timezone.localdate()
    form = IndexCorrectionForm(
        request.POST or None, published=published_on is not None, deadline=deadline, today=today
    )
    if request.method == "POST" and form.is_valid():
        corrections = pricing_indices.index_correct(
            day=value.day,
            reason=form.cleaned_data["reason"],
            actor=request.user,
            today=today,
            ip=client_ip(request),
        )
        day_text = value.day.isoformat()
        if corrections:
            ours = any(c.value.series_id == series.pk for c in corrections)
            n = len(corrections)  # every notice published, composites included
            text = ngettext(
                "已发布 %(day)s 的 %(n)d 条更正公告。",
                "已发布 %(day)s 的 %(n)d 条更正公告。",
                n,
            ) % {"day": day_text, "n": n}
            if not ours:
                text += " " + _("本指数的变动未达到更正阈值，保持原值。")
            messages.success(request, text)
        else:
            messages.info(
                request,
                _("已按现有成交重新计算 %(day)s：没有指数变动达到更正阈值，未发布更正。") % {"day": day_text},
            )
        return redirect("frontend:index_detail", series.code)
    context = {
        "series": series,
        "name": series_name(series),
        "value": value,
        "composite": series.kind == SeriesKind.COMPOSITE,
        "form": form,
        "published_on": published_on,
        "deadline": deadline,
        "too_late": deadline is not None and today > deadline,
        "threshold": _percent(p.correction_threshold),
        "correction_days": p.correction_days,
        "first_differs": value.first_level is not None and value.first_level != value.level,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "frontend/indices/correct.html", context, status=status)


# --- the methodology ----------------------------------------------------------------------------


@require_GET
def index_methodology(request):
    from pricing.indices import params
    from pricing.methodology import METHODOLOGY_VERSION

    p = params()
    lots = dict(p.min_lot_tonnes)
    top = list(
        Category.objects.filter(parent__isnull=True, code__in=list(lots)).order_by("sort_order", "code")
    )
    context = {
        "version": METHODOLOGY_VERSION,
        "cutoff": settings.INDEX_CUTOFF,
        "holidays": [d.strip() for d in settings.INDEX_HOLIDAYS if d.strip()],
        "min_cell_tonnes": settings.INDEX_MIN_CELL_TONNES,
        "p": p,
        "floor_pct": _percent(p.floor_pct),
        "max_share": _percent(p.max_share),
        "correction_threshold": _percent(p.correction_threshold),
        "min_lots": [(_category_name(c), lots[c.code]) for c in top],
        "legend": status_legend(),
    }
    return render(request, "frontend/indices/methodology.html", context)


# --- the home page's ticker ---------------------------------------------------------------------


def ticker_rows() -> list[Row]:
    """The composites (the market's first) and the main national series (one level below the
    top categories), with their last level and change: three queries."""
    rows = _rows(selectors.indices_overview(scope=SeriesScope.NATIONAL))
    order = _top_order()
    composites = _composites_first([r for r in rows if r.series.kind == SeriesKind.COMPOSITE], order)
    main = [r for r in rows if r.series.kind == SeriesKind.ELEMENTARY and r.depth == 1 and r.value]
    main.sort(key=lambda r: (order.get(r.series.category_id.split(".")[0], len(order)), r.series.category_id))
    return (composites + main)[:TICKER_LIMIT]


__all__ = ["index_correct", "index_detail", "index_list", "index_methodology", "index_value", "ticker_rows"]
