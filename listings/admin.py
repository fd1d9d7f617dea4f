"""Operators' back office for the catalogue, lots, wanted listings and saved searches.

- Categories are edited here; a spec schema is checked (``specs.schema_check``) before it is saved,
  a category's code and parent are fixed once created, and categories are deactivated, never deleted.
- Lots are read-only: their status and market state change only through ``listings.services``
  (operators approve or return submitted lots with the actions below, audited like every move).
- Wanted listings and offers are read-mostly, saved searches read-only.
"""

import json
import re
from decimal import Decimal

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from listings import services
from listings.models import Category, Lot, LotMedia, SavedSearch, Unit, WantedListing, WantedOffer
from listings.specs import schema_check
from market.accounts.admin import AuditTrailMixin
from market.core.admin import SiteLinkMixin
from market.core.audit import client_ip
from market.core.hazardous import HW_CLASSES
from market.core.state import TransitionNotAllowed

CODE_SEGMENT_RE = re.compile(r"^[a-z0-9][a-z0-9_]*$")
TONNE_UNITS_FACTOR = {Unit.TONNE: Decimal("1"), Unit.KILOGRAM: Decimal("0.001")}


class PrettyJSONField(forms.JSONField):
    """A JSON field shown indented, with Chinese left readable (no ``\\uXXXX`` escapes)."""

    def prepare_value(self, value):
        if isinstance(value, forms.fields.InvalidJSONInput):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2, cls=self.encoder)


class CategoryForm(forms.ModelForm):
    spec_schema = PrettyJSONField(
        label=gettext_lazy("规格字段"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 24, "cols": 100, "style": "font-family: monospace"}),
        help_text=gettext_lazy(
            '字段列表，例如 [{"key": "fe_pct", "label": "铁含量", "label_en": "Fe content", "type": "number", '
            '"unit": "%", "min": 0, "max": 100, "required": false}]；type 可为 number、integer、choice、text、bool，'
            'choice 须给出 "choices": [["值", "名称"], ...]。下级品类继承上级的字段，同名字段以下级为准。'
        ),
    )

    class Meta:
        model = Category
        fields = [
            "code",
            "parent",
            "name",
            "name_en",
            "aliases",
            "sort_order",
            "unit",
            "tonnes_per_unit",
            "min_lot_tonnes",
            "hazardous",
            "hw_code",
            "is_active",
            "description",
            "spec_schema",
        ]

    def clean_spec_schema(self):
        schema = self.cleaned_data.get("spec_schema")
        if schema in (None, ""):
            return []
        try:
            schema_check(schema)
        except ValueError as exc:
            raise forms.ValidationError(
                _("规格字段格式有误：%(error)s") % {"error": exc}, code="schema_invalid"
            ) from None
        return schema

    def clean_hw_code(self):
        code = (self.cleaned_data.get("hw_code") or "").strip().upper()
        if code and code not in HW_CLASSES:
            raise forms.ValidationError(
                _("“%(code)s”不是《国家危险废物名录》中的类别。") % {"code": code}, code="hw_unknown"
            )
        return code

    def clean(self):
        data = super().clean()
        if self.instance._state.adding and "code" in data:
            code = (data.get("code") or "").strip()
            parent = data.get("parent")
            head, _dot, segment = code.rpartition(".")
            if not CODE_SEGMENT_RE.match(segment or ""):
                self.add_error(
                    "code",
                    forms.ValidationError(
                        _("代码只能由小写字母、数字和下划线组成，层级用“.”分隔。"), code="code_invalid"
                    ),
                )
            elif (parent.code if parent else "") != head:
                expected = f"{parent.code}.{segment}" if parent else segment
                self.add_error(
                    "code",
                    forms.ValidationError(
                        _("代码须与上级类别一致，例如“%(code)s”。") % {"code": expected}, code="code_parent"
                    ),
                )
            data["code"] = code
        if data.get("hw_code") and not data.get("hazardous"):
            self.add_error(
                "hazardous",
                forms.ValidationError(
                    _("填写了危险废物类别的品类须标记为危险废物。"), code="hw_not_hazardous"
                ),
            )
        unit = data.get("unit")
        if unit in TONNE_UNITS_FACTOR and data.get("tonnes_per_unit") is None:
            data["tonnes_per_unit"] = TONNE_UNITS_FACTOR[unit]
        elif unit in TONNE_UNITS_FACTOR and data.get("tonnes_per_unit") != TONNE_UNITS_FACTOR[unit]:
            self.add_error(
                "tonnes_per_unit",
                forms.ValidationError(
                    _("以“%(unit)s”计量时每单位折合 %(factor)s 吨。")
                    % {"unit": Unit(unit).label, "factor": TONNE_UNITS_FACTOR[unit]},
                    code="tonnes_per_unit",
                ),
            )
        return data


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = [
        "code",
        "name",
        "name_en",
        "unit",
        "tonnes_per_unit",
        "min_lot_tonnes",
        "hazardous",
        "hw_code",
        "is_active",
    ]
    list_filter = ["is_active", "hazardous", "unit", "depth"]
    search_fields = ["code", "name", "name_en", "aliases", "hw_code", "description"]
    ordering = ["code"]
    list_per_page = 200
    autocomplete_fields = ["parent"]
    fields = [
        "code",
        "parent",
        "name",
        "name_en",
        "aliases",
        "sort_order",
        "unit",
        "tonnes_per_unit",
        "min_lot_tonnes",
        "hazardous",
        "hw_code",
        "is_active",
        "description",
        "spec_schema",
        "depth",
    ]
    actions = ["deactivate_selected", "activate_selected"]

    def get_readonly_fields(self, request, obj=None):
        return ["depth"] if obj is None else ["code", "parent", "depth"]

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=gettext_lazy("停用所选品类（含下级品类）"), permissions=["change"])
    def deactivate_selected(self, request, queryset):
        condition = Q(pk__in=[])
        for category in queryset:
            condition |= category.descendant_filter()
        done = Category.objects.filter(condition, is_active=True).update(is_active=False)
        self.message_user(
            request,
            ngettext("已停用 %(n)d 个品类。", "已停用 %(n)d 个品类。", done) % {"n": done},
            messages.SUCCESS,
        )

    @admin.action(description=gettext_lazy("启用所选品类"), permissions=["change"])
    def activate_selected(self, request, queryset):
        done = queryset.filter(is_active=False).update(is_active=True)
        self.message_user(
            request,
            ngettext("已启用 %(n)d 个品类。", "已启用 %(n)d 个品类。", done) % {"n": done},
            messages.SUCCESS,
        )


class ReturnReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("退回原因（卖方将看到此说明）"), widget=forms.Textarea(attrs={"rows": 4})
    )


class LotMediaInline(admin.TabularInline):
    model = LotMedia
    extra = 0
    fields = ["kind", "file", "original_name", "content_type", "size", "position", "created_at"]
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


def _lot_decide(modeladmin, request, queryset, decide) -> int:
    done = 0
    for lot in queryset:
        try:
            decide(lot)
            done += 1
        except (ValidationError, PermissionDenied, TransitionNotAllowed) as exc:
            text = "; ".join(getattr(exc, "messages", None) or [str(exc)])
            modeladmin.message_user(request, f"{lot}: {text}", messages.ERROR)
    if done:
        modeladmin.message_user(
            request, ngettext("已处理 %(n)d 项。", "已处理 %(n)d 项。", done) % {"n": done}, messages.SUCCESS
        )
    return done


@admin.register(Lot)
class LotAdmin(SiteLinkMixin, AuditTrailMixin, admin.ModelAdmin):
    list_display = [
        "id",
        "title",
        "seller",
        "category",
        "status",
        "quantity",
        "unit",
        "hazardous",
        "trade_mode",
        "published_at",
        "site_link",
    ]
    list_filter = ["status", "hazardous", "trade_mode", "packaging"]
    search_fields = ["title", "seller__legal_name", "seller__short_name", "seller__uscc"]
    list_select_related = ["seller", "category"]
    date_hierarchy = "published_at"
    inlines = [LotMediaInline]
    actions = ["publish_selected", "return_selected"]
    fieldsets = (
        (None, {"fields": ("seller", "created_by", "category", "title", "description", "hazardous")}),
        (gettext_lazy("货物"), {"fields": ("quantity", "unit", "specs", "packaging")}),
        (gettext_lazy("提货"), {"fields": ("region", "address", "available_from", "pickup_by")}),
        (
            gettext_lazy("状态"),
            {
                "fields": (
                    "status",
                    "status_reason",
                    "status_changed_at",
                    "published_at",
                    "audit_trail_display",
                )
            },
        ),
        (
            gettext_lazy("交易（由交易模块写入）"),
            {"fields": ("trade_mode", "currency", "current_price", "closes_at", "bid_count", "sequence")},
        ),
        (gettext_lazy("时间"), {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        # Everything: status moves through the actions (services, audited); the goods are the seller's.
        return [name for _title, group in self.fieldsets for name in group["fields"]]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=gettext_lazy("审核通过并挂牌所选标的"), permissions=["change"])
    def publish_selected(self, request, queryset):
        ip = client_ip(request)
        _lot_decide(
            self, request, queryset, lambda lot: services.lot_publish(actor=request.user, lot=lot, ip=ip)
        )

    @admin.action(description=gettext_lazy("退回所选标的（需填写原因）"), permissions=["change"])
    def return_selected(self, request, queryset):
        form = ReturnReasonForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return render(
                request,
                "admin/accounts/decision_reason.html",
                {
                    **self.admin_site.each_context(request),
                    "title": _("填写原因"),
                    "objects": queryset,
                    "form": form,
                    "action": request.POST.get("action"),
                    "opts": self.model._meta,
                },
            )
        reason = form.cleaned_data["reason"]
        ip = client_ip(request)
        _lot_decide(
            self,
            request,
            queryset,
            lambda lot: services.lot_return(actor=request.user, lot=lot, reason=reason, ip=ip),
        )
        return None


class WantedOfferInline(admin.TabularInline):
    model = WantedOffer
    extra = 0
    fields = ["seller", "quantity", "unit_price", "status", "lot", "created_at"]
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """View only: these rows are written by their owners through the services."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(WantedListing)
class WantedListingAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "title",
        "buyer",
        "category",
        "quantity",
        "unit",
        "price_min",
        "price_max",
        "deadline",
        "status",
    ]
    list_filter = ["status"]
    search_fields = ["title", "buyer__legal_name", "buyer__short_name"]
    list_select_related = ["buyer", "category"]
    inlines = [WantedOfferInline]


@admin.register(WantedOffer)
class WantedOfferAdmin(ReadOnlyAdmin):
    list_display = ["id", "wanted", "seller", "quantity", "unit_price", "status", "created_at"]
    list_filter = ["status"]
    search_fields = ["wanted__title", "seller__legal_name", "seller__short_name"]
    list_select_related = ["wanted", "seller"]


@admin.register(SavedSearch)
class SavedSearchAdmin(ReadOnlyAdmin):
    list_display = ["id", "name", "user", "organisation", "alerts", "created_at"]
    list_filter = ["alerts"]
    search_fields = ["name", "user__email", "organisation__legal_name"]
    list_select_related = ["user", "organisation"]
