"""REST API of the price indices: public (the indices are open data), except the named audit list
and corrections, which are for operators."""

from datetime import date

from django.http import Http404
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import permissions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from market.core.audit import client_ip
from market.core.drf import DomainError
from pricing import index_selectors as selectors
from pricing import indices
from pricing.index_models import IndexSeries, IndexValue


class SeriesSerializer(serializers.ModelSerializer):
    class Meta:
        model = IndexSeries
        fields = [
            "code", "kind", "name", "name_en", "category", "scope", "zone", "province", "base_start", "base_end",
            "base_price",
        ]  # fmt: skip


class ValueSerializer(serializers.ModelSerializer):
    price = serializers.DecimalField(max_digits=14, decimal_places=2)
    first_price = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)

    class Meta:
        model = IndexValue
        fields = [
            "day", "status", "price", "level", "n", "tonnes", "min_price", "max_price", "excluded", "first_price",
            "first_level", "first_status", "corrected_at",
        ]  # fmt: skip


def _series(code: str) -> IndexSeries:
    series = selectors.series_by_code(code)
    if series is None:
        raise Http404
    return series


def _day(value: str | None, field: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise DomainError(
            _("%(field)s 须为 YYYY-MM-DD 格式的日期。") % {"field": field}, code="date_invalid"
        ) from None


def _row(row: selectors.SeriesRow) -> dict:
    data = SeriesSerializer(row.series).data
    data["last"] = ValueSerializer(row.value).data if row.value else None
    data["change_pct"] = str(row.change) if row.change is not None else None
    return data


class IndexListView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "IndexList", {"count": serializers.IntegerField(), "results": SeriesSerializer(many=True)}
        ),
        operation_id="indices_list",
    )
    def get(self, request):
        rows = selectors.indices_overview(
            scope=request.query_params.get("scope") or None,
            kind=request.query_params.get("kind") or None,
            category=request.query_params.get("category") or None,
        )
        return Response({"count": len(rows), "results": [_row(r) for r in rows]})


class IndexDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=SeriesSerializer, operation_id="indices_retrieve")
    def get(self, request, code):
        series = _series(code)
        last = selectors.series_values(series).last()
        data = SeriesSerializer(series).data
        data["last"] = ValueSerializer(last).data if last else None
        data["contributions"] = last.contributions if last and series.kind == "composite" else {}
        data["corrections"] = [
            {"day": c.value.day, "old_level": c.old_level, "new_level": c.new_level, "reason": c.reason,
             "at": c.created_at}
            for c in selectors.series_corrections(series)[:50]
        ]  # fmt: skip
        return Response(data)


class IndexValuesView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=ValueSerializer(many=True), operation_id="indices_values")
    def get(self, request, code):
        series = _series(code)
        values = selectors.series_values(
            series,
            date_from=_day(request.query_params.get("from"), "from"),
            date_to=_day(request.query_params.get("to"), "to"),
        )
        return Response({"series": series.code, "results": ValueSerializer(values, many=True).data})


class IndexAuditView(APIView):
    """The trades behind one value: anonymised for everyone, named for operators."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=None, operation_id="indices_values_audit")
    def get(self, request, code, day):
        series = _series(code)
        value = selectors.series_values(series).filter(day=_day(day, "date")).first()
        if value is None:
            raise Http404
        return Response(selectors.value_audit(value, named=getattr(request.user, "is_operator", False)))


class CorrectionSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class IndexCorrectView(APIView):
    """An operator recomputes a published day; values that move by 0.1 % or more within five
    business days are corrected with a public notice."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=CorrectionSerializer, responses=None, operation_id="indices_correct")
    def post(self, request, day):
        if not request.user.is_operator:
            raise Http404
        data = CorrectionSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        corrections = indices.index_correct(
            day=_day(day, "date"),
            reason=data.validated_data["reason"],
            actor=request.user,
            ip=client_ip(request),
        )
        return Response(
            {
                "corrected": [
                    {"series": c.value.series_id, "old_level": c.old_level, "new_level": c.new_level}
                    for c in corrections
                ]
            }
        )


class OpenIndicesView(APIView):
    """Open data: every published index with its last value, change and status (no login)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=None, operation_id="open_indices")
    def get(self, request):
        rows = selectors.indices_overview()
        return Response(
            {
                "licence": "CC BY 4.0",
                "methodology": "/indices/methodology/",
                "results": [
                    {
                        "code": r.series.code, "name": r.series.name, "name_en": r.series.name_en,
                        "day": r.value.day if r.value else None, "level": r.value.level if r.value else None,
                        "price": r.value.price.quantize(indices.CENT) if r.value else None,
                        "status": r.value.status if r.value else None, "change_pct": r.change,
                    }
                    for r in rows
                ],
            }
        )  # fmt: skip
