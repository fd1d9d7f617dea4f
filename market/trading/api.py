"""REST API of the trading floor. Every POST that creates something honours ``Idempotency-Key``."""

from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from listings.models import Lot, LotStatus, TradeMode, WantedOffer
from listings.selectors import lot_visible_get
from market.accounts.api import acting_organisation
from market.accounts.selectors import membership_acting, memberships_of
from market.core.audit import client_ip
from market.core.drf import Pagination, paginated
from market.core.idempotency import idempotent, in_transaction
from market.trading import selectors, services
from market.trading.models import Award, Deposit, LotOffer

IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any unique string; a retry with the same key returns the first answer and creates nothing",
)


def _lot(request, pk) -> Lot:
    lot = lot_visible_get(request.user, pk)
    if lot is None:
        raise Http404
    return lot


def _lot_trading(request, pk) -> int:
    """The lot a bid or purchase is for: a published lot is public, so one cheap check does; any
    other goes through the full visibility rules (a draft does not exist for strangers)."""
    if Lot.objects.filter(pk=pk, status=LotStatus.PUBLISHED).exists():
        return pk
    return _lot(request, pk).pk


def _viewer_org(request):
    if not request.user.is_authenticated:
        return None
    from market.accounts.middleware import SESSION_KEY

    membership = membership_acting(user=request.user, organisation_id=request.session.get(SESSION_KEY))
    return membership.organisation if membership else None


def _paginated(view, request, qs, serializer_class, **context):
    paginator = Pagination()
    page = paginator.paginate_queryset(qs, request, view=view)
    return paginator.get_paginated_response(serializer_class(page, many=True, context=context).data)


# --- serializers ----------------------------------------------------------------------------


class SaleConfigureSerializer(serializers.Serializer):
    mode = serializers.ChoiceField(choices=TradeMode.choices)
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField()
    start_price = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    increment_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True
    )
    increment_percent = serializers.DecimalField(
        max_digits=5, decimal_places=2, required=False, allow_null=True
    )
    reserve_price = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    buy_now_price = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    fixed_price = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    min_quantity = serializers.DecimalField(max_digits=14, decimal_places=3, required=False, allow_null=True)
    min_bidders = serializers.IntegerField(required=False, min_value=1, max_value=50, default=2)
    deposit_amount = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True
    )
    allowed_provinces = serializers.ListField(child=serializers.CharField(max_length=6), required=False)
    min_credit_score = serializers.IntegerField(required=False, allow_null=True, min_value=0, max_value=100)
    max_closes_at = serializers.DateTimeField(required=False, allow_null=True)
    extend_window_s = serializers.IntegerField(required=False, min_value=1, max_value=3600, default=300)
    extend_by_s = serializers.IntegerField(required=False, min_value=1, max_value=3600, default=300)


class BidCreateSerializer(serializers.Serializer):
    amount = serializers.DecimalField(max_digits=14, decimal_places=2, help_text="Yuan per unit")
    maximum = serializers.DecimalField(
        max_digits=14, decimal_places=2, required=False, allow_null=True, help_text="Proxy maximum (hidden)"
    )
    organisation = serializers.IntegerField(required=False, write_only=True)


class BidSerializer(serializers.Serializer):
    sequence = serializers.IntegerField()
    bidder = serializers.CharField(source="bidder.label")
    amount = serializers.DecimalField(max_digits=14, decimal_places=2)
    kind = serializers.CharField()
    kind_label = serializers.CharField(source="get_kind_display")
    created_at = serializers.DateTimeField()
    mine = serializers.SerializerMethodField()
    maximum = serializers.SerializerMethodField()

    def _mine(self, bid) -> bool:
        org = self.context.get("organisation")
        return org is not None and bid.organisation_id == org.pk

    def get_mine(self, bid) -> bool:
        return self._mine(bid)

    def get_maximum(self, bid) -> str | None:
        return str(bid.maximum) if self._mine(bid) and bid.maximum is not None else None


class BuySerializer(serializers.Serializer):
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3, required=False, allow_null=True)
    organisation = serializers.IntegerField(required=False, write_only=True)


class AwardSerializer(serializers.ModelSerializer):
    source_label = serializers.CharField(source="get_source_display", read_only=True)
    buyer_name = serializers.CharField(source="buyer.display_name", read_only=True)
    seller_name = serializers.CharField(source="seller.display_name", read_only=True)
    lot_title = serializers.SerializerMethodField()

    class Meta:
        model = Award
        fields = [
            "id", "source", "source_label", "sale", "lot", "lot_title", "wanted_offer", "lot_offer",
            "seller", "seller_name", "buyer", "buyer_name", "category", "quantity", "unit", "unit_price",
            "amount", "currency", "awarded_at",
        ]  # fmt: skip

    def get_lot_title(self, award) -> str | None:
        return award.lot.title if award.lot_id else None


class DepositSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    lot = serializers.IntegerField(source="sale.lot_id", read_only=True)

    class Meta:
        model = Deposit
        fields = [
            "id", "lot", "sale", "organisation", "amount", "currency", "status", "status_label", "method",
            "reference", "created_at", "paid_at", "settled_at",
        ]  # fmt: skip
        read_only_fields = fields


class DepositCreateSerializer(serializers.Serializer):
    lot = serializers.IntegerField()
    organisation = serializers.IntegerField(required=False, write_only=True)


class DepositConfirmSerializer(serializers.Serializer):
    reference = serializers.CharField(required=False, allow_blank=True, max_length=64)


class LotOfferSerializer(serializers.ModelSerializer):
    status_label = serializers.CharField(source="get_status_display", read_only=True)
    lot = serializers.IntegerField(source="sale.lot_id", read_only=True)
    buyer_name = serializers.CharField(source="buyer.display_name", read_only=True)

    class Meta:
        model = LotOffer
        fields = [
            "id", "lot", "sale", "buyer", "buyer_name", "quantity", "unit_price", "message", "status",
            "status_label", "created_at",
        ]  # fmt: skip
        read_only_fields = fields


class LotOfferCreateSerializer(serializers.Serializer):
    lot = serializers.IntegerField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=3)
    unit_price = serializers.DecimalField(max_digits=14, decimal_places=2)
    message = serializers.CharField(required=False, allow_blank=True, max_length=2000)
    organisation = serializers.IntegerField(required=False, write_only=True)


# --- views ----------------------------------------------------------------------------------


class SaleView(APIView):
    """``POST``: the seller sets how the lot is sold (terms can change until the first bid)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=SaleConfigureSerializer, responses=dict, operation_id="lots_sale_configure")
    def post(self, request, pk):
        lot = _lot(request, pk)
        data = SaleConfigureSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        sale = services.sale_configure(
            actor=request.user, lot=lot, ip=client_ip(request), **data.validated_data
        )
        return Response(selectors.sale_state_for(sale, lot.seller), status=status.HTTP_201_CREATED)


class StateView(APIView):
    """The lot's trading state now (what ``/ws/lots/{id}/`` sends on connect), with your part of it."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(responses=dict, operation_id="lots_state")
    def get(self, request, pk):
        lot = _lot(request, pk)
        sale = selectors.sale_current(lot.pk)
        if sale is None:
            raise Http404
        return Response(selectors.sale_state_for(sale, _viewer_org(request)))


class BidListView(APIView):
    permission_classes = [permissions.IsAuthenticatedOrReadOnly]

    @extend_schema(responses=paginated(BidSerializer, "PaginatedBidList"), operation_id="lots_bids_list")
    def get(self, request, pk):
        lot = _lot(request, pk)
        sale = selectors.sale_current(lot.pk)
        if sale is None:
            return Response({"count": 0, "next": None, "previous": None, "results": []})
        org = _viewer_org(request)
        qs = selectors.bids_visible(sale, organisation=org)
        return _paginated(self, request, qs, BidSerializer, organisation=org)

    @extend_schema(
        request=BidCreateSerializer, responses=dict, parameters=[IDEMPOTENCY], operation_id="lots_bids_create"
    )
    def post(self, request, pk):
        checked = {}

        def before():  # reads only: most refusals on a busy lot are decided here
            data = BidCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
            org = acting_organisation(request, values.pop("organisation", None))
            checked["bid"] = services.bid_check(actor=request.user, organisation=org, lot_id=pk, **values)
            if not checked["bid"].on_sale:
                # Refused under the lock (not_on_sale): only a lot on sale takes bids, and one this
                # caller may not see does not exist for them; settled here, outside the transaction.
                _lot(request, pk)

        def work():
            bid = checked["bid"]
            # A refusal is raised as it is: the lot was on sale (public) or found visible before, and
            # nothing may be read here after a refusal (the transaction is to be rolled back).
            state = services.bid_place(
                actor=request.user, organisation=bid.organisation, lot_id=pk, ip=client_ip(request),
                checked=bid, savepoint=not in_transaction(request),  # idempotent's rolls back what raises
            )  # fmt: skip
            return Response(state, status=status.HTTP_201_CREATED)

        # No lookup of the key first: a bid's effects are all in its transaction or after its commit,
        # so a retry is answered from the unique constraint (one round trip less for every bid);
        # but a bidder who leads is looked up once the checks pass: their retry (of an accepted bid,
        # its answer lost) would otherwise queue for the sale's lock only to be rolled back.
        return idempotent(
            request, work, context={"request": request, "view": self}, before=before,
            lookup=lambda: checked["bid"].leading, refusals_async=True,
        )  # fmt: skip


class BuyView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=BuySerializer, responses=AwardSerializer, parameters=[IDEMPOTENCY], operation_id="lots_buy"
    )
    def post(self, request, pk):
        def work():
            lot_id = _lot_trading(request, pk)
            data = BuySerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
            org = acting_organisation(request, values.pop("organisation", None))
            award = services.buy(
                actor=request.user, organisation=org, lot_id=lot_id, ip=client_ip(request), **values
            )
            return Response(AwardSerializer(award).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class OfferListView(APIView):
    """Quotations on lots offered by request for quotation: yours (as buyer or seller), or quote."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=paginated(LotOfferSerializer, "PaginatedLotOfferList"), operation_id="offers_list"
    )
    def get(self, request):
        org_ids = list(memberships_of(request.user).values_list("organisation_id", flat=True))
        from django.db.models import Q

        qs = LotOffer.objects.filter(
            Q(buyer_id__in=org_ids) | Q(sale__lot__seller_id__in=org_ids)
        ).select_related("buyer", "sale")
        return _paginated(self, request, qs, LotOfferSerializer)

    @extend_schema(
        request=LotOfferCreateSerializer,
        responses=LotOfferSerializer,
        parameters=[IDEMPOTENCY],
        operation_id="offers_create",
    )
    def post(self, request):
        def work():
            data = LotOfferCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            values = dict(data.validated_data)
            lot = _lot(request, values.pop("lot"))
            org = acting_organisation(request, values.pop("organisation", None))
            offer = services.lot_offer_create(
                actor=request.user, organisation=org, lot_id=lot.pk, ip=client_ip(request), **values
            )
            return Response(LotOfferSerializer(offer).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class OfferAcceptView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None, responses=AwardSerializer, parameters=[IDEMPOTENCY], operation_id="offers_accept"
    )
    def post(self, request, pk):
        def work():
            offer = get_object_or_404(LotOffer.objects.select_related("sale__lot__seller", "buyer"), pk=pk)
            if lot_visible_get(request.user, offer.sale.lot_id) is None:
                raise Http404
            award = services.lot_offer_accept(actor=request.user, offer=offer, ip=client_ip(request))
            return Response(AwardSerializer(award).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class WantedOfferAcceptView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=None, responses=AwardSerializer, parameters=[IDEMPOTENCY], operation_id="wanted_offers_accept"
    )
    def post(self, request, pk, offer_id):
        def work():
            offer = get_object_or_404(
                WantedOffer.objects.select_related("wanted__buyer", "wanted__category", "seller"),
                pk=offer_id, wanted_id=pk,
            )  # fmt: skip
            award = services.wanted_offer_award(actor=request.user, offer=offer, ip=client_ip(request))
            return Response(AwardSerializer(award).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class DepositListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        responses=paginated(DepositSerializer, "PaginatedDepositList"), operation_id="deposits_list"
    )
    def get(self, request):
        if request.user.is_operator:
            qs = Deposit.objects.select_related("sale")
            if request.query_params.get("status"):
                qs = qs.filter(status=request.query_params["status"])
        else:
            qs = selectors.deposits_of(memberships_of(request.user).values_list("organisation_id", flat=True))
        return _paginated(self, request, qs.order_by("-created_at"), DepositSerializer)

    @extend_schema(
        request=DepositCreateSerializer,
        responses=DepositSerializer,
        parameters=[IDEMPOTENCY],
        operation_id="deposits_create",
    )
    def post(self, request):
        def work():
            data = DepositCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            lot = _lot(request, data.validated_data["lot"])
            org = acting_organisation(request, data.validated_data.get("organisation"))
            deposit = services.deposit_create(
                actor=request.user, organisation=org, lot_id=lot.pk, ip=client_ip(request)
            )
            return Response(DepositSerializer(deposit).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class DepositConfirmView(APIView):
    """An operator confirms that a bank-transfer deposit has arrived."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=DepositConfirmSerializer, responses=DepositSerializer, operation_id="deposits_confirm"
    )
    def post(self, request, pk):
        deposit = get_object_or_404(Deposit, pk=pk)
        if (
            not request.user.is_operator
            and not memberships_of(request.user).filter(organisation_id=deposit.organisation_id).exists()
        ):
            raise Http404
        data = DepositConfirmSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deposit = services.deposit_confirm(
            actor=request.user,
            deposit=deposit,
            reference=data.validated_data.get("reference", ""),
            ip=client_ip(request),
        )
        return Response(DepositSerializer(deposit).data)


class AwardListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=paginated(AwardSerializer, "PaginatedAwardList"), operation_id="awards_list")
    def get(self, request):
        if request.user.is_operator:
            qs = Award.objects.select_related("lot", "buyer", "seller", "category")
        else:
            qs = selectors.awards_of(memberships_of(request.user).values_list("organisation_id", flat=True))
        return _paginated(self, request, qs, AwardSerializer)
