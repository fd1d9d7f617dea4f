"""Public reference API of the kernel: regions (GB/T 2260) and economic zones.

Shared DRF conventions (error format, pagination) live in ``market.core.drf``.
"""

from django.db.models import Exists, OuterRef
from django.utils.cache import patch_cache_control
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import exceptions, permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from market.core import selectors as core_selectors
from market.core.drf import DomainError, Pagination, exception_handler, paginated  # noqa: F401  (re-exported)
from market.core.models import Notification, Region, RegionLevel
from market.core.notify import notifications_mark_read, notifications_of, notifications_unread_counts

REFERENCE_MAX_AGE = 3600  # seconds; the data changes only with a migration


class ErrorSerializer(serializers.Serializer):
    """The body of every error answer (see ``exception_handler``)."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.DictField(child=serializers.ListField(child=serializers.DictField()))


class RegionSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True, help_text="GB/T 2260 six-digit code")
    name = serializers.CharField(read_only=True)
    level = serializers.ChoiceField(choices=RegionLevel.choices, read_only=True)
    parent = serializers.CharField(source="parent_id", read_only=True, allow_null=True)
    has_children = serializers.BooleanField(read_only=True)


class RegionRefSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    level = serializers.ChoiceField(choices=RegionLevel.choices, read_only=True)


class ProvinceRefSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class EconomicZoneRefSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    name_en = serializers.CharField(read_only=True)


class EconomicZoneSerializer(EconomicZoneRefSerializer):
    provinces = ProvinceRefSerializer(many=True, read_only=True)


class RegionDetailSerializer(serializers.Serializer):
    code = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)
    level = serializers.ChoiceField(choices=RegionLevel.choices, read_only=True)
    level_display = serializers.CharField(source="get_level_display", read_only=True)
    parent = serializers.CharField(source="parent_id", read_only=True, allow_null=True)
    full_name = serializers.CharField(read_only=True)
    province = serializers.CharField(source="province_code", read_only=True)
    ancestors = serializers.SerializerMethodField()
    children_count = serializers.SerializerMethodField()
    economic_zones = serializers.SerializerMethodField()

    @extend_schema_field(RegionRefSerializer(many=True))
    def get_ancestors(self, region: Region):
        return RegionRefSerializer(region.ancestors(), many=True).data

    @extend_schema_field(serializers.IntegerField())
    def get_children_count(self, region: Region) -> int:
        return region.children.count()

    @extend_schema_field(EconomicZoneRefSerializer(many=True))
    def get_economic_zones(self, region: Region):
        return EconomicZoneRefSerializer(core_selectors.economic_zones_of(region.code), many=True).data


class RegionQuerySerializer(serializers.Serializer):
    parent = serializers.CharField(required=False, allow_blank=True)  # blank: the provinces
    level = serializers.ChoiceField(choices=RegionLevel.choices, required=False)


def _cacheable(response):
    if response.status_code == status.HTTP_200_OK:
        patch_cache_control(response, public=True, max_age=REFERENCE_MAX_AGE)
    return response


class _ReferenceView(APIView):
    """Public reference data: no authentication (a stale token must not turn a lookup into a 401),
    no pagination (a plain list: a province has fewer than 200 cities), cacheable for an hour.
    """

    authentication_classes: list = []
    permission_classes = [permissions.AllowAny]

    def finalize_response(self, request, response, *args, **kwargs):
        return _cacheable(super().finalize_response(request, response, *args, **kwargs))


class RegionListView(_ReferenceView):
    serializer_class = RegionSerializer

    @extend_schema(
        operation_id="regions_list",
        summary="行政区划列表 / Administrative divisions",
        description=(
            "Without `parent`: the provinces. With `parent`: that region's direct children (a "
            "province's cities, a city's counties). With `level`: the regions of that level, across "
            "the country or inside `parent`, e.g. `?parent=130000&level=county` for every county of "
            "Hebei. A plain list, never paginated."
        ),
        parameters=[
            OpenApiParameter(
                "parent",
                str,
                description="GB/T 2260 code of the parent region, e.g. 130000 (河北省) or 130200 (唐山市)",
            ),
            OpenApiParameter("level", str, enum=RegionLevel.values, description="only regions of this level"),
        ],
        responses={
            200: RegionSerializer(many=True),
            400: OpenApiResponse(
                ErrorSerializer, description="`region_unknown`: no region has the `parent` code"
            ),
        },
    )
    def get(self, request):
        query = RegionQuerySerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        parent_code = query.validated_data.get("parent") or None
        level = query.validated_data.get("level")
        parent = None
        if parent_code is not None:
            parent = core_selectors.region_get(parent_code)
            if parent is None:
                raise DomainError(
                    _("没有代码为 %(code)s 的行政区划。") % {"code": parent_code[:12]}, code="region_unknown"
                )
        if level:
            regions = core_selectors.region_list(level=level, within=parent)
        else:
            regions = core_selectors.region_children(parent.code if parent else None)
        regions = regions.annotate(has_children=Exists(Region.objects.filter(parent_id=OuterRef("code"))))
        return Response(RegionSerializer(regions, many=True).data)


class RegionDetailView(_ReferenceView):
    serializer_class = RegionDetailSerializer

    @extend_schema(
        operation_id="regions_retrieve",
        summary="行政区划详情 / One administrative division",
        responses={
            200: RegionDetailSerializer,
            404: OpenApiResponse(ErrorSerializer, description="unknown code"),
        },
    )
    def get(self, request, code: str):
        region = core_selectors.region_get(code)
        if region is None:
            raise exceptions.NotFound(
                _("没有代码为 %(code)s 的行政区划。") % {"code": code[:12]}, code="not_found"
            )
        return Response(RegionDetailSerializer(region).data)


class EconomicZoneListView(_ReferenceView):
    serializer_class = EconomicZoneSerializer

    @extend_schema(
        operation_id="economic_zones_list",
        summary="经济区 / Economic zones",
        description="Named groups of provinces (京津冀, 长三角 …), in display order.",
        responses={200: EconomicZoneSerializer(many=True)},
    )
    def get(self, request):
        return Response(EconomicZoneSerializer(core_selectors.economic_zones(), many=True).data)


# --- notifications --------------------------------------------------------------------------


class NotificationSerializer(serializers.ModelSerializer):
    class Meta:
        model = Notification
        fields = ["id", "title", "body", "url", "kind", "created_at", "read_at"]
        read_only_fields = fields


class NotificationReadSerializer(serializers.Serializer):
    ids = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        help_text="Notifications to mark read (all if omitted)",
    )


class NotificationListView(APIView):
    """Your notifications, newest first, with the unread count (``?unread=1`` for unread only)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=paginated(
            NotificationSerializer, "PaginatedNotificationList", unread=serializers.IntegerField()
        ),
        operation_id="notifications_list",
    )
    def get(self, request):
        qs = notifications_of(request.user)
        if request.query_params.get("unread") in ("1", "true"):
            qs = qs.filter(read_at__isnull=True)
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        response = paginator.get_paginated_response(NotificationSerializer(page, many=True).data)
        response.data["unread"] = notifications_unread_counts([request.user.pk])[request.user.pk]
        return response


class NotificationReadView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=NotificationReadSerializer, responses=dict, operation_id="notifications_read")
    def post(self, request):
        data = NotificationReadSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        changed = notifications_mark_read(request.user, data.validated_data.get("ids"))
        unread = notifications_unread_counts([request.user.pk])[request.user.pk]
        return Response({"marked": changed, "unread": unread})
