"""REST API of deals. Only the two parties, operators and (read only, hazardous deals in its
jurisdiction) a government office see a deal; anyone else gets 404. Every POST that creates
something honours ``Idempotency-Key``."""

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import permissions, serializers, status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from market.core.audit import audit_trail, client_ip
from market.core.drf import Pagination, paginated
from market.core.idempotency import idempotent
from market.deals import selectors, services
from market.deals.models import (
    Deal,
    DealStatus,
    DefaultParty,
    LedgerEntry,
    Manifest,
    Payment,
    PaymentMethod,
    Pickup,
    Rating,
    TraceEntry,
    Weighing,
)

IDEMPOTENCY = OpenApiParameter(
    "Idempotency-Key",
    str,
    OpenApiParameter.HEADER,
    description="Any unique string; a retry with the same key returns the first answer and creates nothing",
)


def _deal(request, pk) -> Deal:
    return get_object_or_404(selectors.deals_visible(request.user), pk=pk)


def _party_deal(request, pk) -> Deal:
    """A deal the user may act on: a government office reads but never writes."""
    deal = _deal(request, pk)
    if not request.user.is_operator and not selectors.party_of(request.user, deal):
        raise Http404
    return deal


# --- serializers ----------------------------------------------------------------------------


class PaymentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Payment
        fields = [
            "id", "purpose", "method", "amount", "currency", "status", "reference", "bank_serial", "client_secret",
            "stripe_intent", "failure_message", "created_at", "succeeded_at",
        ]  # fmt: skip

    def to_representation(self, instance):
        data = super().to_representation(instance)
        request = self.context.get("request")
        deal = instance.deal
        if (
            deal is not None
            and request is not None
            and selectors.party_of(request.user, deal) != DefaultParty.BUYER
        ):
            data["client_secret"] = ""  # only the payer needs it
        if instance.method == PaymentMethod.BANK_TRANSFER:
            data["bank"] = {
                "bank": settings.PLATFORM_BANK_NAME,
                "account": settings.PLATFORM_BANK_ACCOUNT,
                "name": settings.PLATFORM_ACCOUNT_NAME,
                "reference": instance.reference,
            }
        return data


class PickupSerializer(serializers.ModelSerializer):
    class Meta:
        model = Pickup
        fields = ["id", "date", "vehicle_plate", "driver_name", "driver_phone", "note", "created_at"]


class WeighingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Weighing
        fields = [
            "id", "ticket_no", "gross_t", "tare_t", "net_t", "final_quantity", "difference", "status",
            "recorded_by_party", "weighed_at", "decided_at", "decision_note",
        ]  # fmt: skip


class ManifestSerializer(serializers.ModelSerializer):
    class Meta:
        model = Manifest
        fields = [
            "id", "number", "hw_code", "waste_name", "quantity_t", "packaging", "transporter_name",
            "transporter_licence", "vehicle_plate", "receiver_licence", "shipped_on", "received_on", "status",
            "generator_confirmed_at", "transporter_confirmed_at", "receiver_confirmed_at", "created_at",
        ]  # fmt: skip


class LedgerSerializer(serializers.ModelSerializer):
    class Meta:
        model = LedgerEntry
        fields = ["id", "kind", "amount", "currency", "memo", "created_at"]


class RatingSerializer(serializers.ModelSerializer):
    rater = serializers.CharField(source="rater.display_name")

    class Meta:
        model = Rating
        fields = ["id", "rater", "score", "comment", "created_at"]


class DealListSerializer(serializers.ModelSerializer):
    seller = serializers.CharField(source="seller.display_name")
    buyer = serializers.CharField(source="buyer.display_name")
    category_name = serializers.CharField(source="category.name")

    class Meta:
        model = Deal
        fields = [
            "id", "number", "title", "status", "seller", "buyer", "category", "category_name", "quantity",
            "unit", "unit_price", "amount", "final_quantity", "final_amount", "currency", "hazardous",
            "pay_by", "pickup_from", "pickup_by", "created_at", "settled_at",
        ]  # fmt: skip


class DealSerializer(DealListSerializer):
    class Meta(DealListSerializer.Meta):
        fields = [*DealListSerializer.Meta.fields, "lot", "region", "pickup_address", "hw_code", "fee_rate",
                  "net_tonnes", "defaulted_by", "status_reason", "paid_at", "completed_at"]  # fmt: skip

    def to_representation(self, deal):
        data = super().to_representation(deal)
        request = self.context["request"]
        party = selectors.party_of(request.user, deal)
        balance = selectors.deal_balance(deal)
        data["your_party"] = party
        data["balance"] = {
            "total": str(balance.total), "paid": str(balance.paid), "due": str(balance.due),
            **({"fee": str(balance.fee), "payout": str(balance.payout)} if party != DefaultParty.BUYER else {}),
        }  # fmt: skip
        data["next_steps"] = [{"code": c, "text": t} for c, t in selectors.next_steps(deal, party)]
        context = {"request": request}
        data["payments"] = PaymentSerializer(selectors.deal_payments(deal), many=True, context=context).data
        data["pickups"] = PickupSerializer(deal.pickups.all(), many=True).data
        data["weighings"] = WeighingSerializer(deal.weighings.all(), many=True).data
        manifest = selectors.deal_manifest(deal)
        data["manifest"] = ManifestSerializer(manifest).data if manifest else None
        data["ledger"] = LedgerSerializer(selectors.deal_ledger(deal), many=True).data
        data["ratings"] = RatingSerializer(deal.ratings.select_related("rater"), many=True).data
        data["trace_code"] = deal.trace_chain.code if deal.trace_chain_id else ""
        data["timeline"] = [
            {
                "action": e.action,
                "from": e.from_state,
                "to": e.to_state,
                "at": e.at,
                "reason": e.reason,
            }
            for e in audit_trail(deal).order_by("at", "id")
        ]
        return data


class PaymentCreateSerializer(serializers.Serializer):
    method = serializers.ChoiceField(choices=PaymentMethod.choices)


class PaymentSlipSerializer(serializers.Serializer):
    slip = serializers.FileField(required=False)
    reference = serializers.CharField(max_length=64, required=False, allow_blank=True)


class PickupCreateSerializer(serializers.Serializer):
    date = serializers.DateField()
    vehicle_plate = serializers.CharField(max_length=16)
    driver_name = serializers.CharField(max_length=32)
    driver_phone = serializers.CharField(max_length=32)
    note = serializers.CharField(max_length=255, required=False, allow_blank=True)


class WeighingCreateSerializer(serializers.Serializer):
    ticket_no = serializers.CharField(max_length=32)
    gross_t = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=0)
    tare_t = serializers.DecimalField(max_digits=14, decimal_places=3, min_value=0)
    weighed_at = serializers.DateTimeField(required=False)
    ticket = serializers.FileField(required=False)


class DisputeSerializer(serializers.Serializer):
    reason = serializers.CharField(max_length=2000)


class ResolveSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[("weight", "weight"), ("cancel", "cancel")])
    reason = serializers.CharField(max_length=2000)
    net_t = serializers.DecimalField(max_digits=14, decimal_places=3, required=False, allow_null=True)
    against = serializers.ChoiceField(choices=DefaultParty.choices, required=False, allow_blank=True)


class ManifestCreateSerializer(serializers.Serializer):
    transporter_name = serializers.CharField(max_length=128)
    transporter_licence = serializers.CharField(max_length=64)
    vehicle_plate = serializers.CharField(max_length=16)
    shipped_on = serializers.DateField()
    packaging = serializers.CharField(max_length=32, required=False, allow_blank=True)


class ManifestConfirmSerializer(serializers.Serializer):
    confirm = serializers.ChoiceField(choices=[(r, r) for r in services.MANIFEST_ROLES])


class RatingCreateSerializer(serializers.Serializer):
    score = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(max_length=2000, required=False, allow_blank=True)


class TraceEntrySerializer(serializers.ModelSerializer):
    class Meta:
        model = TraceEntry
        fields = ["index", "event", "data", "occurred_at", "prev_hash", "hash"]


# --- views ----------------------------------------------------------------------------------


class DealListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=paginated(DealListSerializer, "PaginatedDealList"), operation_id="deals_list")
    def get(self, request):
        qs = selectors.deals_visible(request.user)
        if request.query_params.get("status") in DealStatus.values:
            qs = qs.filter(status=request.query_params["status"])
        paginator = Pagination()
        page = paginator.paginate_queryset(qs, request, view=self)
        return paginator.get_paginated_response(DealListSerializer(page, many=True).data)


class DealView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=DealSerializer, operation_id="deals_retrieve")
    def get(self, request, pk):
        return Response(DealSerializer(_deal(request, pk), context={"request": request}).data)


def _deal_answer(request, deal, code=status.HTTP_200_OK):
    deal = Deal.objects.select_related("seller", "buyer", "category", "trace_chain").get(pk=deal.pk)
    return Response(DealSerializer(deal, context={"request": request}).data, status=code)


class PaymentListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PaymentCreateSerializer, responses=PaymentSerializer, parameters=[IDEMPOTENCY],
        operation_id="deals_payments_create",
    )  # fmt: skip
    def post(self, request, pk):
        def work():
            deal = _party_deal(request, pk)
            data = PaymentCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            payment = services.payment_start(
                actor=request.user, deal=deal, method=data.validated_data["method"], ip=client_ip(request)
            )
            return Response(
                PaymentSerializer(payment, context={"request": request}).data, status=status.HTTP_201_CREATED
            )

        return idempotent(request, work, context={"request": request, "view": self})


class PaymentSlipView(APIView):
    """The buyer uploads the bank-transfer slip (multipart)."""

    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request=PaymentSlipSerializer, responses=PaymentSerializer, operation_id="deals_payments_slip"
    )
    def post(self, request, pk, payment_id):
        deal = _party_deal(request, pk)
        payment = get_object_or_404(Payment, pk=payment_id, deal=deal)
        data = PaymentSlipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        payment = services.payment_slip_submit(
            actor=request.user, payment=payment, slip=data.validated_data.get("slip"),
            reference=data.validated_data.get("reference", ""), ip=client_ip(request),
        )  # fmt: skip
        return Response(PaymentSerializer(payment, context={"request": request}).data)


class PaymentConfirmView(APIView):
    """The seller or an operator confirms that a bank transfer arrived."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=PaymentSerializer, operation_id="deals_payments_confirm")
    def post(self, request, pk, payment_id):
        deal = _party_deal(request, pk)
        payment = get_object_or_404(Payment, pk=payment_id, deal=deal)
        payment = services.payment_confirm(actor=request.user, payment=payment, ip=client_ip(request))
        return Response(PaymentSerializer(payment, context={"request": request}).data)


class PickupListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=PickupCreateSerializer, responses=PickupSerializer, parameters=[IDEMPOTENCY],
        operation_id="deals_pickups_create",
    )  # fmt: skip
    def post(self, request, pk):
        def work():
            deal = _party_deal(request, pk)
            data = PickupCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            pickup = services.pickup_book(
                actor=request.user, deal=deal, ip=client_ip(request), **data.validated_data
            )
            return Response(PickupSerializer(pickup).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class WeighingListView(APIView):
    permission_classes = [permissions.IsAuthenticated]
    parser_classes = [MultiPartParser, FormParser, JSONParser]

    @extend_schema(
        request=WeighingCreateSerializer, responses=WeighingSerializer, parameters=[IDEMPOTENCY],
        operation_id="deals_weighings_create",
    )  # fmt: skip
    def post(self, request, pk):
        def work():
            deal = _party_deal(request, pk)
            data = WeighingCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            weighing = services.weighing_record(
                actor=request.user, deal=deal, ip=client_ip(request), **data.validated_data
            )
            return Response(WeighingSerializer(weighing).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class ConfirmView(APIView):
    """The other party confirms a weighing beyond the tolerance; after settlement the buyer confirms
    receipt (the deal completes)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=None, responses=DealSerializer, operation_id="deals_confirm")
    def post(self, request, pk):
        deal = services.deal_confirm(actor=request.user, deal=_party_deal(request, pk), ip=client_ip(request))
        return _deal_answer(request, deal)


class DisputeView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=DisputeSerializer, responses=DealSerializer, operation_id="deals_dispute")
    def post(self, request, pk):
        data = DisputeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deal = services.deal_dispute(
            actor=request.user, deal=_party_deal(request, pk), reason=data.validated_data["reason"],
            ip=client_ip(request),
        )  # fmt: skip
        return _deal_answer(request, deal)


class ResolveView(APIView):
    """An operator decides a dispute."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=ResolveSerializer, responses=DealSerializer, operation_id="deals_dispute_resolve")
    def post(self, request, pk):
        data = ResolveSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deal = services.dispute_resolve(
            actor=request.user, deal=_deal(request, pk), ip=client_ip(request), **data.validated_data
        )
        return _deal_answer(request, deal)


class ReverseView(APIView):
    """An operator reverses a settled trade found wrong: its price fact is voided (kept as such)."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(request=DisputeSerializer, responses=DealSerializer, operation_id="deals_reverse")
    def post(self, request, pk):
        data = DisputeSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        deal = _deal(request, pk)
        services.deal_reverse(
            actor=request.user, deal=deal, reason=data.validated_data["reason"], ip=client_ip(request)
        )
        return _deal_answer(request, deal)


class ManifestView(APIView):
    """GET the manifest; POST creates it (transport details) or, with ``confirm``, confirms it in a role."""

    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(responses=ManifestSerializer, operation_id="deals_manifest_retrieve")
    def get(self, request, pk):
        manifest = selectors.deal_manifest(_deal(request, pk))
        if manifest is None:
            raise Http404
        return Response(ManifestSerializer(manifest).data)

    @extend_schema(
        request=ManifestCreateSerializer, responses=ManifestSerializer, parameters=[IDEMPOTENCY],
        operation_id="deals_manifest_create",
    )  # fmt: skip
    def post(self, request, pk):
        def work():
            deal = _party_deal(request, pk)
            if "confirm" in request.data:
                data = ManifestConfirmSerializer(data=request.data)
                data.is_valid(raise_exception=True)
                manifest = services.manifest_confirm(
                    actor=request.user, deal=deal, role=data.validated_data["confirm"], ip=client_ip(request)
                )
                return Response(ManifestSerializer(manifest).data)
            data = ManifestCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            manifest = services.manifest_create(
                actor=request.user, deal=deal, ip=client_ip(request), **data.validated_data
            )
            return Response(ManifestSerializer(manifest).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class RatingListView(APIView):
    permission_classes = [permissions.IsAuthenticated]

    @extend_schema(
        request=RatingCreateSerializer, responses=RatingSerializer, parameters=[IDEMPOTENCY],
        operation_id="deals_ratings_create",
    )  # fmt: skip
    def post(self, request, pk):
        def work():
            data = RatingCreateSerializer(data=request.data)
            data.is_valid(raise_exception=True)
            rating = services.rating_create(
                actor=request.user,
                deal=_party_deal(request, pk),
                ip=client_ip(request),
                **data.validated_data,
            )
            return Response(RatingSerializer(rating).data, status=status.HTTP_201_CREATED)

        return idempotent(request, work, context={"request": request, "view": self})


class TraceView(APIView):
    """A lot's public trace chain and whether it verifies (no login)."""

    permission_classes = [permissions.AllowAny]

    @extend_schema(
        responses=inline_serializer(
            "TraceChain",
            {
                "code": serializers.CharField(),
                "title": serializers.CharField(),
                "verified": serializers.BooleanField(),
                "first_broken": serializers.IntegerField(allow_null=True),
                "entries": TraceEntrySerializer(many=True),
            },
        ),
        operation_id="trace_retrieve",
    )
    def get(self, request, code):
        chain = selectors.trace_chain_by_code(code)
        if chain is None:
            raise Http404
        check = selectors.trace_verify(chain)
        return Response(
            {
                "code": chain.code,
                "title": chain.title,
                "verified": check.ok,
                "first_broken": check.first_broken,
                "entries": TraceEntrySerializer(selectors.trace_entries(chain), many=True).data,
            }
        )
