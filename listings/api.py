"""REST API of listings: categories, lots (search, lifecycle, media), wanted listings, saved searches."""

from django.db.models import Q
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from listings import selectors, services
from listings.models import Category, Lot, LotMedia, MediaKind, Packaging, Unit, WantedListing
from market.accounts.api import acting_organisation as _acting_organisation
from market.accounts.selectors import membership_of
from market.core.audit import client_ip
from market.core.drf import DomainError
from market.core.regions import region_code_prefix
from market.core.uploads import stored_open

# --- serializers ----------------------------------------------------------------------------


class CategorySerializer(serializers.ModelSerializer):
    parent = serializers.CharField(source="parent_id", read_only=True, allow_null=True)
    unit_label = serializers.CharField(source="get_unit_display", read_only=True)

    class Meta:
        model = Category
        fields = [
            "code",
            "parent",
            "name",
            "name_en",
            "depth",
            "unit",
            "unit_label",
            "tonnes_per_unit",
            "hazardous",
            "hw_code",
            "min_lot_tonnes",
            "is_active",
        ]


class CategoryDetailSerializer(CategorySerializer):
    spec_schema = serializers.SerializerMethodField()

    class Meta(CategorySerializer.Meta):
        fields = [*CategorySerializer.Meta.fields, "description", "spec_schema"]

    def get_spec_schema(self, category) -> list[dict]:
        return selectors.schema_effective(category)


class CategoryWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Category
        fields = [
            "code",
            "parent",
            "name",
            "name_en",
            "sort_order",
            "unit",
            "tonnes_per_unit",
            "hazardous",
            "hw_code",
            "spec_schema",
            "min_lot_tonnes",
            "description",
        ]


class MediaSerializer(serializers.ModelSerializer):
    url = serializers.SerializerMethodField()
    thumbnail_url = serializers.SerializerMethodField()

    class Meta:
        model = LotMedia
        fields = ["id", "kind", "original_name", "content_type", "size", "position", "url", "thumbnail_url"]

    def get_url(self, media) -> str:
        return f"/api/v1/lots/{media.lot_id}/media/{media.pk}/file/"

    def get_thumbnail_url(self, media) -> str | None:
        return f"/api/v1/lots/{media.lot_id}/media/{media.pk}/file/?thumbnail=1" if media.thumbnail else None


class LotSerializer(serializers.ModelSerializer):
    seller_name = serializers.CharField(source="seller.display_name", read_only=True)
    seller_verified = serializers.BooleanField(source="seller.is_verified", read_only=True)
    category_name = serializers.CharField(source="category.name", read_only=True)
    region = serializers.CharField(source="region_id", read_only=True)
    region_name = serializers.CharField(source="region.full_name", read_only=True)
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    unit_label = serializers.CharField(source="get_unit_display", read_only=True)
    category = serializers.CharField(source="category_id", read_only=True)

    class Meta:
        model = Lot
        fields = [
            "id", "seller", "seller_name", "seller_verified", "category", "category_name", "title", "quantity", "unit",
            "unit_label", "region", "region_name", "hazardous", "status", "status_label", "trade_mode", "currency",
            "current_price", "closes_at", "bid_count", "published_at",
        ]  # fmt: skip


class LotDetailSerializer(LotSerializer):
    media = MediaSerializer(many=True, read_only=True)

    class Meta(LotSerializer.Meta):
        fields = [
            *LotSerializer.Meta.fields, "description", "specs", "address", "available_from", "pickup_by", "packaging",
            "status_reason", "sequence", "media", "created_at", "updated_at",
        ]  # fmt: skip


class LotWriteSerializer(serializers.Serializer):
    organisation = serializers.IntegerField(
        required=False, help_text="Seller organisation (default: the one you act for)"
    )
    category = serializers.CharField()
    title = serializers.CharField(max_length=120)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    quantity = serializers.CharField(help_text="Decimal, in the category's unit")
    unit = serializers.ChoiceField(choices=Unit.choices)
    specs = serializers.DictField(required=False, default=dict)
    region = serializers.CharField(help_text="County-level GB/T 2260 code of the pickup place")
    address = serializers.CharField(max_length=255)
    available_from = serializers.DateField()
    pickup_by = serializers.DateField()
    packaging = serializers.ChoiceField(choices=Packaging.choices, default=Packaging.BULK)


class LotUpdateSerializer(LotWriteSerializer):
    organisation = None

    def __init__(self, *args, **kwargs):
        kwargs["partial"] = True
        super().__init__(*args, **kwargs)


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, default="")


class MediaWriteSerializer(serializers.Serializer):
    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=MediaKind.choices, default=MediaKind.PHOTO)


class WantedSerializer(serializers.ModelSerializer):
    buyer_name = serializers.CharField(source="buyer.display_name", read_only=True)
    category = serializers.CharField(source="category_id", read_only=True)
    category_name = serializers.CharField(source="category.name", read_only=True)
    region = serializers.CharField(source="region_id", read_only=True, allow_null=True)
    offer_count = serializers.IntegerField(source="offers.count", read_only=True)

    class Meta:
        model = WantedListing
        fields = [
            "id",
            "buyer",
            "buyer_name",
            "category",
            "category_name",
            "title",
            "description",
            "quantity",
            "unit",
            "region",
            "price_min",
            "price_max",
            "deadline",
            "status",
            "offer_count",
            "created_at",
        ]


class WantedWriteSerializer(serializers.Serializer):
    organisation = serializers.IntegerField(required=False)
    category = serializers.CharField()
    title = serializers.CharField(max_length=120, required=False, allow_blank=True, default="")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    quantity = serializers.CharField()
    unit = serializers.ChoiceField(choices=Unit.choices)
    region = serializers.CharField(required=False, allow_blank=True, allow_null=True, default=None)
    price_min = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, default=None
    )
    price_max = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, default=None
    )
    deadline = serializers.DateTimeField()


class OfferSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    organisation = serializers.IntegerField(required=False, write_only=True)
    seller = serializers.IntegerField(source="seller_id", read_only=True)
    seller_name = serializers.CharField(source="seller.display_name", read_only=True)
    lot = serializers.IntegerField(source="lot_id", required=False, allow_null=True)
    quantity = serializers.CharField()
    unit_price = serializers.CharField()
    message = serializers.CharField(required=False, allow_blank=True, default="")
    status = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class SavedSearchSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    organisation = serializers.IntegerField(required=False, write_only=True)
    name = serializers.CharField(max_length=64)
    query = serializers.DictField(
        help_text='The search\'s URL parameters, e.g. {"q": "废铜", "region": "320000"}'
    )
    alerts = serializers.BooleanField(default=True)
    created_at = serializers.DateTimeField(read_only=True)


# --- helpers --------------------------------------------------------------------------------


def _lot(request, pk) -> Lot:
    lot = selectors.lot_visible_get(request.user, pk)
    if lot is None:
        raise Http404
    return lot


# --- categories -----------------------------------------------------------------------------


class CategoryListView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter("parent", str, description="Children of this code ('' for the top level)")
        ],
        responses=CategorySerializer(many=True),
    )
    def get(self, request):
        qs = selectors.categories_active()
        if "parent" in request.query_params:
            parent = request.query_params["parent"] or None
            qs = qs.filter(parent_id=parent)
        return Response(CategorySerializer(qs, many=True).data)

    @extend_schema(request=CategoryWriteSerializer, responses={201: CategoryDetailSerializer})
    def post(self, request):
        if not request.user.is_operator:
            raise DomainError(
                _("只有平台运营人员可以维护品类目录。"), code="permission_denied", status_code=403
            )
        data = CategoryWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        from listings.specs import schema_check

        try:
            schema_check(data.validated_data.get("spec_schema") or [])
        except ValueError as exc:
            raise serializers.ValidationError({"spec_schema": [str(exc)]}) from exc
        category = data.save()
        return Response(CategoryDetailSerializer(category).data, status=status.HTTP_201_CREATED)


class CategoryDetailView(APIView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=CategoryDetailSerializer)
    def get(self, request, code):
        category = get_object_or_404(selectors.categories_active(), pk=code)
        return Response(CategoryDetailSerializer(category).data)


# --- lots -----------------------------------------------------------------------------------


class LotListView(APIView):
    """``GET``: search published lots (results and facets). ``POST``: draft a lot."""

    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str, description=text)
            for name, text in (
                ("q", "free text, Chinese or English"),
                ("category", "category code (with descendants)"),
                ("region", "GB/T 2260 code of a province, city or county (with descendants)"),
                ("zone", "economic zone code"),
                ("qmin", "minimum quantity"),
                ("qmax", "maximum quantity"),
                ("pmin", "minimum current price"),
                ("pmax", "maximum current price"),
                ("mode", "trade mode"),
                ("hazardous", "true / false"),
                ("closing_within", "hours"),
                ("lat", "latitude of the point"),
                ("lon", "longitude of the point"),
                ("km", "distance from the point"),
                ("sort", "relevance | closing | newest | price_asc | price_desc"),
                ("page", "page number"),
                ("page_size", "results per page"),
            )
        ],
        operation_id="lots_search",
        responses=inline_serializer(
            "LotSearch",
            {
                "count": serializers.IntegerField(),
                "page": serializers.IntegerField(),
                "page_size": serializers.IntegerField(),
                "results": LotSerializer(many=True),
                "facets": serializers.DictField(),
            },
        ),
    )
    def get(self, request):
        from listings.search import LotQuery, SearchUnavailable, get_backend

        query = LotQuery.from_params(request.query_params)
        try:
            result = get_backend().search(query)
        except SearchUnavailable as exc:
            raise DomainError(
                _("搜索服务暂时不可用，请稍后再试。"), code="search_unavailable", status_code=503
            ) from exc
        return Response(
            {
                "count": result.total,
                "page": result.page,
                "page_size": result.page_size,
                "results": LotSerializer(selectors.lots_by_ids(result.ids), many=True).data,
                "facets": {
                    name: [{"key": k, "count": n} for k, n in items] for name, items in result.facets.items()
                },
            }
        )

    @extend_schema(request=LotWriteSerializer, responses={201: LotDetailSerializer})
    def post(self, request):
        data = LotWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organisation = _acting_organisation(request, values.pop("organisation", None))
        lot = services.lot_create(
            actor=request.user, organisation=organisation, ip=client_ip(request), **values
        )
        return Response(LotDetailSerializer(lot).data, status=status.HTTP_201_CREATED)


class LotDetailView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=LotDetailSerializer)
    def get(self, request, pk):
        return Response(LotDetailSerializer(_lot(request, pk)).data)

    @extend_schema(request=LotUpdateSerializer, responses=LotDetailSerializer)
    def patch(self, request, pk):
        lot = _lot(request, pk)
        data = LotUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        lot = services.lot_update(actor=request.user, lot=lot, ip=client_ip(request), **data.validated_data)
        return Response(LotDetailSerializer(lot).data)


def _lot_action(name, call, *, with_reason=False):
    class View(APIView):
        permission_classes = [permissions.IsAuthenticated]

        @extend_schema(
            request=ReasonSerializer if with_reason else None,
            responses=LotDetailSerializer,
            operation_id=f"lots_{name}",
        )
        def post(self, request, pk):
            lot = _lot(request, pk)
            kwargs = {"actor": request.user, "lot": lot, "ip": client_ip(request)}
            if with_reason:
                data = ReasonSerializer(data=request.data)
                data.is_valid(raise_exception=True)
                kwargs["reason"] = data.validated_data["reason"]
            lot = call(**kwargs)
            return Response(LotDetailSerializer(lot).data)

    View.__name__ = f"Lot{name.title()}View"
    return View


LotSubmitView = _lot_action("submit", services.lot_submit)
LotPublishView = _lot_action("publish", services.lot_publish)
LotReturnView = _lot_action("return", services.lot_return, with_reason=True)
LotWithdrawView = _lot_action("withdraw", services.lot_withdraw, with_reason=True)
LotRelistView = _lot_action("relist", services.lot_relist)


class LotMediaListView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(responses=MediaSerializer(many=True))
    def get(self, request, pk):
        return Response(MediaSerializer(_lot(request, pk).media.all(), many=True).data)

    @extend_schema(request={"multipart/form-data": MediaWriteSerializer}, responses={201: MediaSerializer})
    def post(self, request, pk):
        lot = _lot(request, pk)
        data = MediaWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        media = services.lot_media_add(
            actor=request.user, lot=lot, ip=client_ip(request), **data.validated_data
        )
        return Response(MediaSerializer(media).data, status=status.HTTP_201_CREATED)


class LotMediaDetailView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses={204: None})
    def delete(self, request, pk, media_id):
        media = get_object_or_404(_lot(request, pk).media, pk=media_id)
        services.lot_media_remove(actor=request.user, media=media, ip=client_ip(request))
        return Response(status=status.HTTP_204_NO_CONTENT)


class LotMediaFileView(APIView):
    """The photo or document itself, to whoever may see the lot (``?thumbnail=1`` for photos)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses={(200, "application/octet-stream"): None})
    def get(self, request, pk, media_id):
        media = get_object_or_404(_lot(request, pk).media, pk=media_id)
        f = media.thumbnail if request.query_params.get("thumbnail") and media.thumbnail else media.file
        content_type = "image/jpeg" if f is media.thumbnail else media.content_type
        response = FileResponse(stored_open(f), content_type=content_type)
        response["Cache-Control"] = "private, max-age=3600"
        response["X-Content-Type-Options"] = "nosniff"
        if media.kind == MediaKind.DOCUMENT:
            response["Content-Disposition"] = (
                f'attachment; filename="lot-{pk}-{media.pk}.{f.name.rsplit(".", 1)[-1]}"'
            )
        return response


# --- wanted listings ------------------------------------------------------------------------


class WantedListView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(
        parameters=[OpenApiParameter("category", str), OpenApiParameter("region", str)],
        responses=WantedSerializer(many=True),
    )
    def get(self, request):
        qs = selectors.wanted_open()
        category = request.query_params.get("category")
        if category:
            qs = qs.filter(Category(code=category).descendant_filter("category__code"))
        region = request.query_params.get("region")
        if region:
            prefix = region_code_prefix(region)
            if prefix is None:
                raise DomainError(_("行政区划代码不存在。"), code="region_unknown")
            # A listing without a region takes goods from anywhere.
            qs = qs.filter(Q(region__code__startswith=prefix) | Q(region__isnull=True))
        return Response(WantedSerializer(qs.order_by("deadline", "id")[:200], many=True).data)

    @extend_schema(request=WantedWriteSerializer, responses={201: WantedSerializer})
    def post(self, request):
        data = WantedWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organisation = _acting_organisation(request, values.pop("organisation", None))
        wanted = services.wanted_create(
            actor=request.user, organisation=organisation, ip=client_ip(request), **values
        )
        return Response(WantedSerializer(wanted).data, status=status.HTTP_201_CREATED)


class WantedDetailView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=WantedSerializer)
    def get(self, request, pk):
        return Response(WantedSerializer(get_object_or_404(WantedListing, pk=pk)).data)


class WantedWithdrawView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=WantedSerializer)
    def post(self, request, pk):
        wanted = get_object_or_404(WantedListing, pk=pk)
        return Response(
            WantedSerializer(
                services.wanted_withdraw(actor=request.user, wanted=wanted, ip=client_ip(request))
            ).data
        )


class WantedOfferListView(APIView):
    """The buyer sees every offer; a seller sees only its own."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=OfferSerializer(many=True))
    def get(self, request, pk):
        wanted = get_object_or_404(WantedListing, pk=pk)
        offers = wanted.offers.select_related("seller")
        if membership_of(request.user, wanted.buyer) is None and not request.user.is_operator:
            offers = offers.filter(seller__memberships__user=request.user)
        return Response(OfferSerializer(offers, many=True).data)

    @extend_schema(request=OfferSerializer, responses={201: OfferSerializer})
    def post(self, request, pk):
        wanted = get_object_or_404(WantedListing, pk=pk)
        data = OfferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organisation = _acting_organisation(request, values.pop("organisation", None))
        lot_id = values.pop("lot_id", None)
        lot = Lot.objects.filter(pk=lot_id).first() if lot_id else None
        offer = services.offer_create(
            actor=request.user,
            wanted=wanted,
            organisation=organisation,
            lot=lot,
            ip=client_ip(request),
            **values,
        )
        return Response(OfferSerializer(offer).data, status=status.HTTP_201_CREATED)


# --- saved searches -------------------------------------------------------------------------


class SavedSearchListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=SavedSearchSerializer(many=True))
    def get(self, request):
        return Response(SavedSearchSerializer(selectors.saved_searches_of(request.user), many=True).data)

    @extend_schema(request=SavedSearchSerializer, responses={201: SavedSearchSerializer})
    def post(self, request):
        data = SavedSearchSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        organisation = _acting_organisation(request, values.pop("organisation", None))
        saved = services.saved_search_create(actor=request.user, organisation=organisation, **values)
        return Response(SavedSearchSerializer(saved).data, status=status.HTTP_201_CREATED)


class SavedSearchDetailView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        saved = get_object_or_404(selectors.saved_searches_of(request.user), pk=pk)
        services.saved_search_delete(actor=request.user, saved_search=saved)
        return Response(status=status.HTTP_204_NO_CONTENT)
