"""Operators' back office for the trading floor.

- Sales, bids and awards are read-only: they change only through ``market.trading.services``.
- Sealed tenders stay sealed here too: while a tender is active its bids are neither listed nor
  counted (the sale shows ``bid_count`` only), whoever is looking.
- Bank-transfer deposits are confirmed with the action "确认到账", which calls
  ``services.deposit_confirm`` (audited; the bidder is notified and may bid).
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from listings.models import TradeMode
from market.core.audit import client_ip
from market.core.state import TransitionNotAllowed
from market.trading import services
from market.trading.models import Award, Bid, Deposit, DepositStatus, Sale, SaleStatus


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Sale)
class SaleAdmin(ReadOnlyAdmin):
    list_display = ["id", "lot", "mode", "status", "price_display", "bid_count", "bidder_count", "closes_at"]
    list_filter = ["status", "mode"]
    search_fields = ["lot__title", "lot__seller__legal_name"]
    list_select_related = ["lot"]
    date_hierarchy = "closes_at"
    fieldsets = (
        (None, {"fields": ("lot", "mode", "status", "fail_reason", "currency", "created_by", "created_at")}),
        (
            gettext_lazy("条件"),
            {
                "fields": (
                    "start_price",
                    "increment_amount",
                    "increment_percent",
                    "reserve_price",
                    "buy_now_price",
                    "fixed_price",
                    "min_quantity",
                    "min_bidders",
                    "deposit_amount",
                    "allowed_provinces",
                    "min_credit_score",
                )
            },
        ),
        (
            gettext_lazy("时间"),
            {
                "fields": (
                    "starts_at",
                    "ends_at",
                    "closes_at",
                    "max_closes_at",
                    "extend_window_s",
                    "extend_by_s",
                    "closed_at",
                )
            },
        ),
        (
            gettext_lazy("实时状态"),
            {
                "fields": (
                    "sequence",
                    "price_display",
                    "quantity_remaining",
                    "leader",
                    "bid_count",
                    "bidder_count",
                    "bids_link",
                )
            },
        ),
    )
    readonly_fields = [name for _title, group in fieldsets for name in group["fields"]]

    @staticmethod
    def _sealed(sale: Sale) -> bool:
        return sale.mode == TradeMode.TENDER and sale.status == SaleStatus.ACTIVE

    @admin.display(description=gettext_lazy("当前价"))
    def price_display(self, sale):
        if self._sealed(sale):
            return _("密封（开标后公布）")
        return sale.current_price if sale.current_price is not None else "-"

    @admin.display(description=gettext_lazy("出价记录"))
    def bids_link(self, sale):
        if sale is None or sale.pk is None:
            return "-"
        if self._sealed(sale):
            return _("密封投标：截止开标前不显示任何投标。")
        url = reverse("admin:trading_bid_changelist") + f"?sale__id__exact={sale.pk}"
        return format_html('<a href="{}">{}</a>', url, _("查看出价记录"))


@admin.register(Bid)
class BidAdmin(ReadOnlyAdmin):
    """Immutable rows; the bids of an active tender are not in the queryset at all."""

    list_display = ["id", "sale", "bidder_label", "organisation", "amount", "kind", "sequence", "created_at"]
    list_filter = ["kind", "sale__mode"]
    search_fields = ["organisation__legal_name", "organisation__short_name"]
    list_select_related = ["sale", "bidder", "organisation"]
    fields = [
        "sale",
        "bidder_label",
        "organisation",
        "user",
        "amount",
        "maximum",
        "kind",
        "sequence",
        "ip",
        "created_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request):
        return (
            super().get_queryset(request).exclude(sale__mode=TradeMode.TENDER, sale__status=SaleStatus.ACTIVE)
        )

    @admin.display(description=gettext_lazy("竞买人"))
    def bidder_label(self, bid):
        return bid.bidder.label


@admin.register(Deposit)
class DepositAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "organisation",
        "lot_display",
        "amount",
        "status",
        "method",
        "reference",
        "created_at",
        "paid_at",
    ]
    list_filter = ["status", "method"]
    search_fields = ["reference", "organisation__legal_name", "organisation__short_name", "sale__lot__title"]
    list_select_related = ["organisation", "sale__lot"]
    fields = [
        "sale",
        "organisation",
        "amount",
        "currency",
        "status",
        "method",
        "reference",
        "created_by",
        "created_at",
        "paid_at",
        "settled_at",
    ]
    readonly_fields = fields
    actions = ["confirm_selected"]

    @admin.display(description=gettext_lazy("标的"))
    def lot_display(self, deposit):
        return deposit.sale.lot

    def has_confirm_permission(self, request):
        return bool(getattr(request.user, "is_operator", False))

    @admin.action(description=gettext_lazy("确认到账"), permissions=["confirm"])
    def confirm_selected(self, request, queryset):
        done = 0
        for deposit in queryset:
            if deposit.status != DepositStatus.PENDING:
                self.message_user(
                    request,
                    _("%(deposit)s：状态为“%(status)s”，无需确认。")
                    % {"deposit": deposit.reference or deposit.pk, "status": deposit.get_status_display()},
                    messages.WARNING,
                )
                continue
            try:
                services.deposit_confirm(actor=request.user, deposit=deposit, ip=client_ip(request))
            except (ValidationError, PermissionDenied, TransitionNotAllowed) as exc:
                text = "; ".join(getattr(exc, "messages", None) or [str(exc)])
                self.message_user(request, f"{deposit.reference or deposit.pk}: {text}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("已确认 %(n)d 笔保证金到账。", "已确认 %(n)d 笔保证金到账。", done) % {"n": done},
                messages.SUCCESS,
            )


@admin.register(Award)
class AwardAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "source",
        "lot",
        "seller",
        "buyer",
        "quantity",
        "unit",
        "unit_price",
        "amount",
        "awarded_at",
    ]
    list_filter = ["source"]
    search_fields = ["lot__title", "buyer__legal_name", "seller__legal_name"]
    list_select_related = ["lot", "seller", "buyer"]
    date_hierarchy = "awarded_at"
    readonly_fields = [f.name for f in Award._meta.fields]
