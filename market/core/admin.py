"""Back office for the kernel: divisions and their data versions (read-only, changed only by
migrations), economic zones, and the append-only audit log (read-only)."""

from django.contrib import admin
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from market.core.models import AuditEntry, EconomicZone, Region, RegionDataset


class SiteLinkMixin:
    """A changelist column linking each row to its page in the market (``get_absolute_url``),
    beside the change form's "view on site" button Django adds for such models."""

    @admin.display(description=_("市场页面"))
    def site_link(self, obj) -> str:
        return format_html('<a href="{}" class="site-link">{}</a>', obj.get_absolute_url(), _("在市场中查看"))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Viewable by whoever has the view permission; nobody adds, changes or deletes here."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Region)
class RegionAdmin(ReadOnlyAdmin):
    list_display = ("code", "name", "level", "parent", "full_name_display")
    list_filter = ("level",)
    search_fields = ("code", "name")
    list_select_related = ("parent__parent",)
    list_per_page = 100
    fields = ("code", "name", "level", "parent", "full_name_display")
    readonly_fields = fields

    @admin.display(description=_("全称"))
    def full_name_display(self, obj: Region) -> str:
        return obj.full_name


@admin.register(RegionDataset)
class RegionDatasetAdmin(ReadOnlyAdmin):
    list_display = ("source", "snapshot_date", "provinces", "cities", "counties", "loaded_at")
    fields = list_display
    readonly_fields = list_display


@admin.register(EconomicZone)
class EconomicZoneAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "name_en", "province_names", "sort_order")
    list_editable = ("sort_order",)
    search_fields = ("code", "name", "name_en")
    filter_horizontal = ("provinces",)
    ordering = ("sort_order", "code")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("provinces")

    @admin.display(description=_("省份"))
    def province_names(self, obj: EconomicZone) -> str:
        return "、".join(p.name for p in sorted(obj.provinces.all(), key=lambda p: p.code))


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ("at", "actor_label", "action", "target_type", "target_id", "from_state", "to_state", "ip")
    list_filter = ("action", "target_type")
    search_fields = ("actor_label", "target_id", "reason")
    date_hierarchy = "at"
    list_per_page = 100
    fields = (
        "at",
        "actor",
        "actor_label",
        "ip",
        "action",
        "target_type",
        "target_id",
        "from_state",
        "to_state",
        "reason",
        "data",
    )
    readonly_fields = fields
