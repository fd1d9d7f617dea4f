"""Back office for pricing: trade facts, read-only (written only by ``pricing.services``)."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from market.core.admin import ReadOnlyAdmin
from pricing.models import TradeFact


class VoidFilter(admin.SimpleListFilter):
    title = _("是否作废")
    parameter_name = "void"

    def lookups(self, request, model_admin):
        return (("no", _("未作废")), ("yes", _("已作废")))

    def queryset(self, request, queryset):
        if self.value() == "no":
            return queryset.filter(voided_at__isnull=True)
        if self.value() == "yes":
            return queryset.filter(voided_at__isnull=False)
        return queryset


@admin.register(TradeFact)
class TradeFactAdmin(ReadOnlyAdmin):
    list_display = (
        "trade_id",
        "source",
        "settled_at",
        "category",
        "region",
        "quantity_t",
        "unit_price",
        "amount",
        "voided_at",
    )
    list_filter = (VoidFilter, "source", ("category", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("category", "region")
    search_fields = ("trade_id", "seller_uscc", "buyer_uscc")
    date_hierarchy = "settled_at"
    list_per_page = 100
    fields = (
        "trade_id",
        "source",
        "awarded_at",
        "settled_at",
        "category",
        "region",
        "seller_uscc",
        "buyer_uscc",
        "quantity_t",
        "unit_price",
        "amount",
        "currency",
        "voided_at",
        "void_reason",
        "created_at",
    )
    readonly_fields = fields
