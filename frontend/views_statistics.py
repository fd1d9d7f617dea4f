"""Pages of the statistics: the explorer (统计), the government dashboard (监管看板) with its CSV and
Excel exports, and the open data (开放数据) with a CSV of the open volume table.

Who may read what is decided by ``pricing.selectors`` exactly as the API decides it
(``statistics_area_refusal``): operators everything; government users their jurisdiction and what
lies inside it; companies the nation only (regional figures for everyone are the open data, after
disclosure control). The figures come from the rollups through the selectors
(``frontend.statistics_data``); filters live in the URL, so every view can be bookmarked and shared.

Refusals are pages, never 500s: an area the user may not read answers 403 with the reason, a bad
filter 400 with the message beside its field.
"""

from datetime import date, timedelta
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import content_disposition_header
from django.utils.translation import get_language, gettext_lazy, pgettext, pgettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from frontend.forms import form_errors_apply
from frontend.forms_listings import category_name, region_choices
from frontend.statistics_data import (
    Catalogue,
    area_choices,
    breakdown_title,
    choice_codes,
    dashboard_build,
    default_open_year,
    explorer_build,
    grain_choices,
    index_status_label,
    level_label,
    month_options,
    open_category_names,
    open_grid,
    open_volume_rows,
    top_regions_title,
)
from frontend.statistics_export import Column, Table, csv_bytes, dashboard_tables, xlsx_bytes
from frontend.widgets import LongSelect
from market.accounts.models import GovernmentOffice
from market.accounts.selectors import government_officer_for
from market.core.models import Region, RegionLevel
from pricing import index_selectors, selectors
from pricing.api import DEFAULT_SPAN, OPEN_DATA_FIRST_YEAR, REFUSALS
from pricing.periods import GRAINS, period_start

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _english() -> bool:
    return (get_language() or "").lower().startswith("en")


def _index_url(code: str) -> str:
    """The price index page of a series (built beside these pages), or "" while there is none."""
    try:
        return reverse("frontend:index_detail", args=[code])
    except NoReverseMatch:
        return ""


def _index_rows(rows) -> list[dict]:
    """Index rows (``index_selectors.SeriesRow``) with what the pages show beside them."""
    return [
        {
            "series": row.series,
            "value": row.value,
            "change": row.change,
            "status_label": index_status_label(row.value.status) if row.value else "",
            "display_name": row.series.name_en if _english() and row.series.name_en else row.series.name,
            "url": _index_url(row.series.code),
        }
        for row in rows
    ]


def _url(name: str, params: dict) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    base = reverse(name)
    return f"{base}?{query}" if query else base


# --- the explorer ---------------------------------------------------------------------------


class StatisticsForm(forms.Form):
    """The explorer's filters, read from the URL. Only formats are checked here; what the user may
    read and whether the range is allowed are the selectors' answers, copied onto the fields."""

    grain = forms.ChoiceField(label=gettext_lazy("统计粒度"))
    category = forms.CharField(label=gettext_lazy("品类"), required=False, widget=LongSelect)
    region = forms.CharField(label=pgettext_lazy("statistics", "区域"), required=False, widget=LongSelect)

    def __init__(self, *args, catalogue: Catalogue, areas: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["from"] = forms.DateField(
            label=_("起始日期"),
            required=False,
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        )
        self.fields["to"] = forms.DateField(
            label=_("截止日期"),
            required=False,
            widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        )
        self.fields["grain"].choices = grain_choices()
        self.fields["category"].widget.choices = catalogue.tree_choices(_("全部品类"))
        self.fields["region"].widget.choices = areas


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


@login_required
@require_GET
def statistics_explorer(request):
    user = request.user
    today = timezone.localdate()
    catalogue = Catalogue()
    scope = None if user.is_operator else selectors.government_scope(user)
    default_area = selectors.area_resolve(scope.code) if scope is not None else selectors.area_national()

    get = request.GET
    grain = get.get("grain") or "month"
    date_to = _parse_day(get.get("to", "").strip()) or today
    region_code = (get.get("region") or "").strip() or default_area.code
    data = {
        "grain": grain,
        "category": (get.get("category") or "").strip(),
        "region": region_code,
        "to": get.get("to", "").strip() or date_to.isoformat(),
        "from": get.get("from", "").strip()
        or (
            period_start(date_to - timedelta(days=DEFAULT_SPAN[grain]), grain).isoformat()
            if grain in GRAINS
            else ""
        ),
    }
    area = selectors.area_resolve(region_code)
    areas = area_choices(user, area, scope)
    if region_code not in choice_codes(areas):
        areas.append((region_code, area.name if area else region_code))
    form = StatisticsForm(data, catalogue=catalogue, areas=areas)

    status, refusal, refusal_code, explorer = 200, "", "", None
    if form.is_valid():
        category_code = form.cleaned_data["category"]
        category = catalogue.get(category_code)
        if category_code and category is None:
            form.add_error("category", _("品类代码“%(code)s”不存在。") % {"code": category_code})
        if area is None:
            form.add_error("region", _("统计区域“%(code)s”不存在。") % {"code": region_code})
        else:
            refusal_code = selectors.statistics_area_refusal(user, area) or ""
            if refusal_code:
                refusal, status = REFUSALS[refusal_code](), 403
        if not form.errors and not refusal:
            try:
                explorer = explorer_build(
                    user=user,
                    grain=form.cleaned_data["grain"],
                    area=area,
                    category=category,
                    date_from=form.cleaned_data["from"],
                    date_to=form.cleaned_data["to"],
                    catalogue=catalogue,
                )
            except ValidationError as exc:
                form_errors_apply(form, exc)
    if form.errors:
        status = 400

    params = {k: data[k] for k in ("grain", "category", "region", "from", "to")}

    def link(**changes) -> str:
        return _url("frontend:statistics", {**params, **changes})

    if explorer is not None:
        for row in explorer.top_categories:
            row["url"] = link(category=row["code"])
        for row in explorer.top_regions:
            row["url"] = link(region=row["code"])
    context = {
        "form": form,
        "explorer": explorer,
        "refusal": refusal,
        "refusal_code": refusal_code,
        "category_path": [category_name(c) for c in catalogue.path(data["category"])] if explorer else [],
        "top_parent_name": category_name(explorer.top_categories_parent)
        if explorer and explorer.top_categories_parent
        else "",
        "level_label": level_label(explorer.top_regions_level) if explorer else "",
        "regions_title": top_regions_title(explorer.top_regions_level) if explorer else "",
        "reset_url": reverse("frontend:statistics"),
        "national_url": link(region="CN"),
        "category_up_url": link(category=(explorer.category.parent_id or ""))
        if explorer and explorer.category
        else "",
        "api_url": _url("api-statistics-volume", params),
        "is_government": scope is not None,
        "today": today,
    }
    return render(request, "frontend/statistics/explorer.html", context, status=status)


# --- the government dashboard ---------------------------------------------------------------------


class DashboardRefused(Exception):
    def __init__(self, status: int, template: str, context: dict):
        super().__init__(status)
        self.status, self.template, self.context = status, template, context


def _dashboard_resolve(request) -> dict:
    """Who is looking and at what: the office (None for an operator), the jurisdiction, the region
    viewed and the category. Raises ``DashboardRefused`` with the page to answer instead."""
    user = request.user
    officer = government_officer_for(user)
    operator = bool(user.is_operator)
    if officer is None and not operator:
        raise DashboardRefused(403, "frontend/statistics/dashboard_forbidden.html", {})
    code = (request.GET.get("region") or "").strip()
    category_code = (request.GET.get("category") or "").strip()
    office = None
    if officer is not None and not operator:
        office = GovernmentOffice.objects.select_related("jurisdiction").get(pk=officer.office_id)
        officer.office = office  # the header's office tag reads it again: no second query
        jurisdiction = office.jurisdiction
        code = code or jurisdiction.code
    elif not code:
        offices = GovernmentOffice.objects.select_related("jurisdiction").order_by("jurisdiction_id", "name")
        raise DashboardRefused(
            200,
            "frontend/statistics/dashboard_choose.html",
            {"offices": offices, "region_groups": [g for g in region_choices("") if isinstance(g[1], list)]},
        )
    region = Region.objects.filter(pk=code).first() if len(code) == 6 and code.isdigit() else None
    if region is None:
        raise DashboardRefused(
            400,
            "frontend/statistics/dashboard_forbidden.html",
            {"message": _("统计区域“%(code)s”不存在。") % {"code": code}, "status": 400},
        )
    if office is None:  # an operator: the province is the top of the breadcrumb
        jurisdiction = (
            region if region.level == RegionLevel.PROVINCE else Region.objects.get(pk=region.province_code)
        )
    elif not jurisdiction.contains(region.code):
        raise DashboardRefused(
            403,
            "frontend/statistics/dashboard_forbidden.html",
            {
                "message": REFUSALS["outside_jurisdiction"](),
                "office": office,
                "home_url": reverse("frontend:dashboard"),
            },
        )
    catalogue = Catalogue()
    category = catalogue.get(category_code)
    if category_code and category is None:
        raise DashboardRefused(
            400,
            "frontend/statistics/dashboard_forbidden.html",
            {"message": _("品类代码“%(code)s”不存在。") % {"code": category_code}, "status": 400},
        )
    return {
        "office": office,
        "operator": operator,
        "jurisdiction": jurisdiction,
        "region": region,
        "category": category,
        "catalogue": catalogue,
    }


def _dashboard_data(request):
    resolved = _dashboard_resolve(request)

    def url_for(region_code, category_code):
        return _url("frontend:dashboard", {"region": region_code, "category": category_code})

    board = dashboard_build(
        jurisdiction=resolved["jurisdiction"],
        region=resolved["region"],
        category=resolved["category"],
        catalogue=resolved["catalogue"],
        today=timezone.localdate(),
        url_for=url_for,
    )
    return resolved, board, url_for


def _refused(request, exc: DashboardRefused, *, export: bool = False):
    """The page answering instead; an export asked without a region (an operator's) is a 400 that
    shows the chooser."""
    status = 400 if export and exc.status == 200 else exc.status
    return render(request, exc.template, exc.context, status=status)


@login_required
@require_GET
def dashboard(request):
    try:
        resolved, board, url_for = _dashboard_data(request)
    except DashboardRefused as exc:
        return _refused(request, exc)
    region, category = board.region, board.category
    params = {"region": region.code, "category": category.code if category else ""}
    context = {
        **resolved,
        "board": board,
        "indices": _index_rows(board.indices),
        "breadcrumb": [(r, url_for(r.code, params["category"])) for r in board.path],
        "category_crumbs": [(category_name(c), url_for(region.code, c.code)) for c in board.category_path],
        "all_categories_url": url_for(region.code, ""),
        "level_label": level_label(board.breakdown_level) if board.breakdown_level else "",
        "regions_title": breakdown_title(board.breakdown_level),
        "csv_url": _url("frontend:dashboard_csv", params),
        "xlsx_url": _url("frontend:dashboard_xlsx", params),
        "explorer_url": _url("frontend:statistics", {"region": region.code, "category": params["category"]}),
        "generated_at": timezone.localtime(),
    }
    return render(request, "frontend/statistics/dashboard.html", context)


def _export_name(board, ext: str) -> str:
    suffix = f"-{board.category.code}" if board.category else ""
    return f"dashboard-{board.region.code}{suffix}-{timezone.localdate():%Y%m%d}.{ext}"


def _office_label(resolved) -> str:
    return resolved["office"].name if resolved["office"] else _("平台运营")


@login_required
@require_GET
def dashboard_csv(request):
    try:
        resolved, board, _url_for = _dashboard_data(request)
    except DashboardRefused as exc:
        return _refused(request, exc, export=True)
    body = csv_bytes(dashboard_tables(board, office=_office_label(resolved)))
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, _export_name(board, "csv"))
    return response


@login_required
@require_GET
def dashboard_xlsx(request):
    try:
        resolved, board, _url_for = _dashboard_data(request)
    except DashboardRefused as exc:
        return _refused(request, exc, export=True)
    body = xlsx_bytes(dashboard_tables(board, office=_office_label(resolved)))
    response = HttpResponse(body, content_type=XLSX)
    response["Content-Disposition"] = content_disposition_header(True, _export_name(board, "xlsx"))
    return response


# --- open data ------------------------------------------------------------------------------------

MEASURES = ("tonnes", "value", "trades")


def measure_choices() -> list[tuple[str, str]]:
    return [
        ("tonnes", pgettext("statistics", "成交量（吨）")),
        ("value", pgettext("statistics", "成交额（元）")),
        ("trades", pgettext("statistics", "成交笔数")),
    ]


def _open_year(request, today: date) -> tuple[int | None, str]:
    text = (request.GET.get("year") or "").strip()
    if not text:
        return default_open_year(today), ""
    try:
        year = int(text)
    except ValueError:
        year = None
    if year is None or not OPEN_DATA_FIRST_YEAR <= year <= today.year:
        return None, _("年份无效：应为 %(first)d 至 %(last)d 之间的整数。") % {
            "first": OPEN_DATA_FIRST_YEAR,
            "last": today.year,
        }
    return year, ""


def open_volume_cached(year: int, today: date) -> dict:
    """``selectors.open_volume`` under the key the open API uses, so the page, its CSV and the JSON
    always publish the same table (a month is published when it ends, which changes the key)."""
    key = f"pricing:open-volume:{year}:{today:%Y-%m}"
    data = cache.get(key)
    if data is None:
        data = selectors.open_volume(year, today=today)
        cache.set(key, data, settings.STATS_OPEN_DATA_CACHE_S)
    return data


@require_GET
def open_data(request):
    today = timezone.localdate()
    year, error = _open_year(request, today)
    context = {
        "year": year,
        "error": error,
        "years": list(range(today.year, max(OPEN_DATA_FIRST_YEAR, today.year - 5) - 1, -1)),
        "measures": measure_choices(),
        "indices_api": reverse("api-open-indices"),
        "volume_api": reverse("api-open-volume"),
    }
    if error:
        return render(request, "frontend/statistics/open_data.html", context, status=400)
    data = open_volume_cached(year, today)
    months = month_options(data)
    month = request.GET.get("month", "")
    if month not in months:
        month = months[-1] if months else ""
    measure = request.GET.get("measure", "")
    if measure not in MEASURES:
        measure = "tonnes"
    indices = _index_rows(index_selectors.indices_overview(scope="national"))
    context.update(
        {
            "data": data,
            "rule": data["rule"],
            "max_share_pct": int(data["rule"]["max_share"] * 100),
            "months": [
                (m, _url("frontend:open_data", {"year": year, "month": m, "measure": measure}))
                for m in months
            ],
            "month": month,
            "measure": measure,
            "measure_links": [
                (value, label, _url("frontend:open_data", {"year": year, "month": month, "measure": value}))
                for value, label in measure_choices()
            ],
            "category_names": open_category_names(data),
            "grid": open_grid(data, month, measure) if month else None,
            "indices": indices,
            "csv_url": _url("frontend:open_data_csv", {"year": year}),
            "volume_api_year": _url("api-open-volume", {"year": year}),
        }
    )
    return render(request, "frontend/statistics/open_data.html", context)


@require_GET
def open_data_csv(request):
    today = timezone.localdate()
    year, error = _open_year(request, today)
    if error:
        return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
    table = Table(
        sheet=_("开放数据"),
        title=_("%(year)s 年分省分品类月度成交（已做披露控制）") % {"year": year},
        columns=[
            Column(pgettext("statistics", "月份")),
            Column(_("省份代码")),
            Column(_("省份")),
            Column(_("品类代码")),
            Column(_("品类")),
            Column(pgettext("statistics", "成交笔数"), "int"),
            Column(pgettext("statistics", "成交量（吨）"), "tonnes"),
            Column(pgettext("statistics", "成交额（元）"), "yuan"),
            Column(_("是否隐去")),
        ],
        rows=open_volume_rows(open_volume_cached(year, today)),
    )
    response = HttpResponse(csv_bytes([table], titles=False), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, f"open-volume-{year}.csv")
    response["Cache-Control"] = f"public, max-age={settings.STATS_OPEN_DATA_CACHE_S}"
    return response
