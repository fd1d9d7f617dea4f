"""REST API of pricing: trade statistics for logged-in users and the open data for everyone.

``GET /api/v1/statistics/volume/`` (logged in) returns a volume series read from the rollups. Who
may ask for which area (``pricing.selectors.statistics_area_refusal``):

- operators: any area;
- government officers: their jurisdiction and what lies inside it, which is also the default when
  no ``region`` is given; anything else is ``403 outside_jurisdiction``;
- everyone else (companies): the nation only, the default; a region or zone is
  ``403 region_not_allowed``. Regional figures for all are the open data, which hides cells that
  would show a few organisations' trades.

``GET /api/v1/open/volume/?year=`` (no login) returns the open data of a year: province × top-level
category × month with totals, suppressed cells as null with ``"suppressed": true``.
"""

from datetime import date, timedelta

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from listings.models import Category
from market.core.drf import DomainError
from pricing import selectors
from pricing.periods import GRAINS, period_start

# How far back a series reaches when ``from`` is not given, per grain.
DEFAULT_SPAN = {"day": 30, "week": 12 * 7, "month": 365, "quarter": 2 * 365, "year": 5 * 365}
OPEN_DATA_FIRST_YEAR = 2000


class VolumeQuerySerializer(serializers.Serializer):
    grain = serializers.ChoiceField(choices=GRAINS, default="month")
    category = serializers.CharField(required=False, allow_blank=True, max_length=64)
    region = serializers.CharField(required=False, allow_blank=True, max_length=40)


def _query_dates(request) -> tuple[date | None, date | None]:
    """``from`` and ``to`` as dates, or a 400 naming the field."""
    out = []
    for name in ("from", "to"):
        text = (request.query_params.get(name) or "").strip()
        if not text:
            out.append(None)
            continue
        try:
            out.append(date.fromisoformat(text))
        except ValueError:
            raise DomainError(
                _("%(field)s不是有效的日期（应为 YYYY-MM-DD）：“%(value)s”。")
                % {"field": name, "value": text},
                code="invalid_date",
            ) from None
    return out[0], out[1]


def _ratios(changes: dict) -> dict:
    return {name: (None if value is None else str(value)) for name, value in changes.items()}


REFUSALS = {
    "outside_jurisdiction": lambda: _("该区域不在您所在机构的管辖范围内。"),
    "region_not_allowed": lambda: _("企业用户只能查看全国统计；分地区数据请查阅开放数据。"),
    "not_authenticated": lambda: str(exceptions.NotAuthenticated.default_detail),
}


class VolumeView(APIView):
    """``GET``: trades, tonnes and value per period of one category node in one area, with
    period-on-period and year-on-year changes (ratios as decimal strings, null when undefined)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        parameters=[
            OpenApiParameter("grain", str, enum=list(GRAINS), description="Period (default month)"),
            OpenApiParameter("category", str, description="Catalogue node code; all categories when empty"),
            OpenApiParameter("region", str, description="CN, a GB/T 2260 code or an economic zone's code"),
            OpenApiParameter("from", date, description="First day (whole periods; default per grain)"),
            OpenApiParameter("to", date, description="Last day (default today)"),
        ],
        responses=dict,
        operation_id="statistics_volume",
    )
    def get(self, request):
        params = VolumeQuerySerializer(data=request.query_params)
        params.is_valid(raise_exception=True)
        grain = params.validated_data["grain"]
        category_code = (params.validated_data.get("category") or "").strip()
        region_code = (params.validated_data.get("region") or "").strip()
        date_from, date_to = _query_dates(request)
        date_to = date_to or timezone.localdate()
        date_from = date_from or period_start(date_to - timedelta(days=DEFAULT_SPAN[grain]), grain)

        area = (
            selectors.area_resolve(region_code)
            if region_code
            else selectors.statistics_default_area(request.user)
        )
        if area is None:
            raise DomainError(_("统计区域“%(code)s”不存在。") % {"code": region_code}, code="region_unknown")
        refusal = selectors.statistics_area_refusal(request.user, area)
        if refusal is not None:
            raise DomainError(REFUSALS[refusal](), code=refusal, status_code=status.HTTP_403_FORBIDDEN)
        category = None
        if category_code:
            category = Category.objects.filter(pk=category_code).only("code", "name", "name_en").first()
            if category is None:
                raise DomainError(
                    _("品类代码“%(code)s”不存在。") % {"code": category_code}, code="category_unknown"
                )

        points = selectors.volume(grain, category_code, area.code, date_from, date_to)
        return Response(
            {
                "grain": grain,
                "category": {"code": category.code, "name": category.name, "name_en": category.name_en}
                if category
                else None,
                "region": {"code": area.code, "name": area.name, "level": area.level},
                "from": points[0].period if points else date_from,
                "to": points[-1].end if points else date_to,
                "currency": "CNY",
                "points": [
                    {
                        "period": p.label,
                        "start": p.period,
                        "end": p.end,
                        "trades": p.trades,
                        "tonnes": str(p.tonnes),
                        "value": str(p.value),
                        "change_pop": _ratios(p.pop),
                        "change_yoy": _ratios(p.yoy),
                    }
                    for p in points
                ],
            }
        )


def _figure(value):
    return None if value is None else str(value)


class OpenVolumeView(APIView):
    """``GET ?year=``: the open data of a year (no login). Trades, tonnes and value per province ×
    top-level category × month, with totals; a cell that would disclose a few organisations' trades,
    and the cells that would let it be worked out from the totals, are null with ``suppressed``."""

    permission_classes = [permissions.AllowAny]
    authentication_classes = []

    @extend_schema(
        parameters=[OpenApiParameter("year", int, description="Calendar year (default: this year)")],
        responses=dict,
        operation_id="open_volume",
    )
    def get(self, request):
        today = timezone.localdate()
        text = (request.query_params.get("year") or "").strip()
        try:
            year = int(text) if text else today.year
        except ValueError:
            year = None
        if year is None or not OPEN_DATA_FIRST_YEAR <= year <= today.year:
            raise DomainError(
                _("年份无效：应为 %(first)d 至 %(last)d 之间的整数。")
                % {"first": OPEN_DATA_FIRST_YEAR, "last": today.year},
                code="invalid_year",
            )
        # The month is in the key: when a month ends, the next reading publishes it.
        key = f"pricing:open-volume:{year}:{today:%Y-%m}"
        data = cache.get(key)
        if data is None:
            data = selectors.open_volume(year, today=today)
            cache.set(key, data, settings.STATS_OPEN_DATA_CACHE_S)
        body = {
            "year": data["year"],
            "currency": "CNY",
            "rule": {**data["rule"], "max_share": str(data["rule"]["max_share"])},
            "provinces": data["provinces"],
            "categories": data["categories"],
            "months": [
                {
                    "month": month["month"],
                    "cells": [
                        {
                            **cell,
                            "tonnes": _figure(cell["tonnes"]),
                            "value": _figure(cell["value"]),
                        }
                        for cell in month["cells"]
                    ],
                }
                for month in data["months"]
            ],
        }
        response = Response(body)
        response["Cache-Control"] = f"public, max-age={settings.STATS_OPEN_DATA_CACHE_S}"
        return response
