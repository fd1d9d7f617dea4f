"""Operators' back office for deals. Everything is read-only: deals, payments, the ledger and the
trace change only through ``market.deals.services``. Two actions move money records, both audited:
"确认到账" confirms a bank transfer, "确认已退款" records a bank-transfer refund as made."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from market.core.admin import SiteLinkMixin
from market.core.drf import DomainError
from market.core.state import TransitionNotAllowed
from market.deals import services
from market.deals.models import (
    Deal,
    LedgerEntry,
    Manifest,
    Payment,
    PaymentMethod,
    PaymentStatus,
    Rating,
    Refund,
    RefundStatus,
    StripeEvent,
    TraceChain,
    TraceEntry,
    Weighing,
)
from market.trading.admin import ReadOnlyAdmin

REFUSED = (DomainError, PermissionDenied, ValidationError, TransitionNotAllowed)


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class PaymentInline(ReadOnlyInline):
    model = Payment
    fk_name = "deal"
    fields = ["purpose", "method", "amount", "status", "reference", "stripe_intent", "succeeded_at"]
    readonly_fields = fields


class LedgerInline(ReadOnlyInline):
    model = LedgerEntry
    fk_name = "deal"
    fields = ["created_at", "kind", "amount", "organisation", "memo"]
    readonly_fields = fields


class WeighingInline(ReadOnlyInline):
    model = Weighing
    fields = [
        "ticket_no",
        "gross_t",
        "tare_t",
        "net_t",
        "difference",
        "status",
        "weighed_at",
        "decision_note",
    ]
    readonly_fields = fields


@admin.register(Deal)
class DealAdmin(SiteLinkMixin, ReadOnlyAdmin):
    list_display = [
        "number",
        "title",
        "seller",
        "buyer",
        "status",
        "amount",
        "final_amount",
        "pay_by",
        "created_at",
        "site_link",
    ]
    list_filter = ["status", "hazardous"]
    search_fields = ["number", "title", "seller__legal_name", "buyer__legal_name"]
    list_select_related = ["seller", "buyer"]
    date_hierarchy = "created_at"
    inlines = [PaymentInline, WeighingInline, LedgerInline]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "deal",
        "deposit",
        "payer",
        "purpose",
        "method",
        "amount",
        "status",
        "reference",
        "created_at",
    ]
    list_filter = ["status", "method", "purpose"]
    search_fields = ["reference", "stripe_intent", "deal__number", "payer__legal_name"]
    list_select_related = ["deal", "payer"]
    actions = ["confirm_transfer"]

    @admin.action(description=gettext_lazy("确认到账（对公转账）"))
    def confirm_transfer(self, request, queryset):
        done = 0
        for payment in queryset.filter(
            method=PaymentMethod.BANK_TRANSFER, status__in=[PaymentStatus.PENDING, PaymentStatus.SUBMITTED]
        ):
            try:
                services.payment_confirm(actor=request.user, payment=payment)
                done += 1
            except REFUSED as exc:
                self.message_user(request, f"{payment}: {exc}", messages.ERROR)
        self.message_user(request, _("已确认 %(n)s 笔付款到账。") % {"n": done}, messages.SUCCESS)


@admin.register(Refund)
class RefundAdmin(ReadOnlyAdmin):
    list_display = ["id", "deal", "deposit", "amount", "reason", "status", "stripe_refund", "created_at"]
    list_filter = ["status"]
    actions = ["mark_transferred"]

    @admin.action(description=gettext_lazy("确认已退款（对公转账）"))
    def mark_transferred(self, request, queryset):
        if not request.user.is_operator:
            raise PermissionDenied
        done = 0
        for refund in queryset.filter(
            status=RefundStatus.PENDING, payment__method=PaymentMethod.BANK_TRANSFER
        ):
            services.refund_succeeded(refund_id=refund.pk, actor=request.user)
            done += 1
        self.message_user(request, _("已记录 %(n)s 笔退款。") % {"n": done}, messages.SUCCESS)


@admin.register(LedgerEntry)
class LedgerAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "kind", "amount", "organisation", "deal", "deposit", "memo"]
    list_filter = ["kind"]
    search_fields = ["deal__number", "organisation__legal_name", "memo"]
    list_select_related = ["organisation", "deal"]
    date_hierarchy = "created_at"


@admin.register(Manifest)
class ManifestAdmin(ReadOnlyAdmin):
    list_display = ["number", "deal", "hw_code", "quantity_t", "status", "shipped_on", "received_on"]
    list_filter = ["status", "hw_code"]
    search_fields = ["number", "deal__number"]


class TraceEntryInline(ReadOnlyInline):
    model = TraceEntry
    fields = ["index", "event", "occurred_at", "data", "hash"]
    readonly_fields = fields


@admin.register(TraceChain)
class TraceChainAdmin(ReadOnlyAdmin):
    list_display = ["code", "title", "lot", "created_at"]
    search_fields = ["code", "title"]
    inlines = [TraceEntryInline]


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ["event_id", "type", "object_id", "deliveries", "received_at", "processed_at"]
    list_filter = ["type"]
    search_fields = ["event_id", "object_id"]


@admin.register(Rating)
class RatingAdmin(ReadOnlyAdmin):
    list_display = ["deal", "rater", "ratee", "score", "created_at"]
