"""Operators' back office: users, organisations and licences with verification actions.

Every decision goes through the same services as the API (audited, members notified); a rejection,
suspension or revocation asks for the reason on an intermediate page.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from market.accounts import services
from market.accounts.models import (
    GovernmentOffice,
    GovernmentOfficer,
    Invitation,
    Licence,
    Membership,
    Organisation,
    User,
)
from market.core.admin import SiteLinkMixin
from market.core.audit import audit_trail, client_ip
from market.core.state import TransitionNotAllowed


class ReasonForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("原因（单位将看到此说明）"), widget=forms.Textarea(attrs={"rows": 4})
    )


def _decide(modeladmin, request, queryset, decision, decide, *, needs_reason):
    """Run ``decide`` for each selected object; ask for a reason first when needed."""
    reason = ""
    if needs_reason:
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if not form.is_valid():
            return render(
                request,
                "admin/accounts/decision_reason.html",
                {
                    **modeladmin.admin_site.each_context(request),
                    "title": _("填写原因"),
                    "objects": queryset,
                    "form": form,
                    "action": request.POST.get("action"),
                    "opts": modeladmin.model._meta,
                },
            )
        reason = form.cleaned_data["reason"]
    done = 0
    for obj in queryset:
        try:
            decide(actor=request.user, decision=decision, reason=reason, ip=client_ip(request), obj=obj)
            done += 1
        except (ValidationError, PermissionDenied, TransitionNotAllowed) as exc:
            text = "; ".join(getattr(exc, "messages", None) or [str(exc)])
            modeladmin.message_user(request, f"{obj}: {text}", messages.ERROR)
    if done:
        modeladmin.message_user(
            request, ngettext("已处理 %(n)d 项。", "已处理 %(n)d 项。", done) % {"n": done}, messages.SUCCESS
        )
    return None


def _org_decide(*, obj, **kwargs):
    return services.organisation_decide(organisation=obj, **kwargs)


def _licence_decide(*, obj, **kwargs):
    return services.licence_decide(licence=obj, **kwargs)


def _action(decide, decision, label, needs_reason):
    def action(modeladmin, request, queryset):
        return _decide(modeladmin, request, queryset, decision, decide, needs_reason=needs_reason)

    action.__name__ = f"{decision}_selected"
    action.short_description = label
    return action


class AuditTrailMixin:
    readonly_fields_audit = ("audit_trail_display",)

    @admin.display(description=gettext_lazy("审核记录"))
    def audit_trail_display(self, obj):
        from django.utils.html import format_html_join

        if obj is None or obj.pk is None:
            return "-"
        rows = audit_trail(obj)[:50]
        return (
            format_html_join(
                "",
                "<div>{} · {} · {} {}→{} {}</div>",
                (
                    (f"{e.at:%Y-%m-%d %H:%M}", e.actor_label, e.action, e.from_state, e.to_state, e.reason)
                    for e in rows
                ),
            )
            or "-"
        )


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ["email"]
    list_display = ["email", "full_name", "phone", "is_staff", "is_active", "date_joined"]
    search_fields = ["email", "full_name", "phone"]
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (gettext_lazy("个人信息"), {"fields": ("full_name", "phone")}),
        (
            gettext_lazy("权限"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (gettext_lazy("时间"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "full_name", "password1", "password2")}),
    )


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


class LicenceInline(admin.TabularInline):
    model = Licence
    extra = 0
    fields = ["kind", "number", "valid_from", "valid_to", "status"]
    readonly_fields = fields
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Organisation)
class OrganisationAdmin(SiteLinkMixin, AuditTrailMixin, admin.ModelAdmin):
    list_display = ["legal_name", "uscc", "region", "role", "status", "created_at", "site_link"]
    list_filter = ["status", "role"]
    search_fields = ["legal_name", "short_name", "uscc", "contact_name", "contact_phone"]
    autocomplete_fields = ["region"]
    readonly_fields = [
        "status",
        "status_reason",
        "status_changed_at",
        "created_at",
        "created_by",
        "audit_trail_display",
    ]
    inlines = [MembershipInline, LicenceInline]
    actions = [
        _action(_org_decide, "verify", gettext_lazy("认证通过所选单位"), False),
        _action(_org_decide, "reject", gettext_lazy("驳回所选单位（需填写原因）"), True),
        _action(_org_decide, "suspend", gettext_lazy("暂停所选单位交易（需填写原因）"), True),
        _action(_org_decide, "reinstate", gettext_lazy("恢复所选单位交易"), False),
    ]

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Licence)
class LicenceAdmin(AuditTrailMixin, admin.ModelAdmin):
    list_display = ["number", "kind", "organisation", "valid_from", "valid_to", "status"]
    list_filter = ["status", "kind"]
    search_fields = ["number", "issuer", "organisation__legal_name", "organisation__uscc"]
    readonly_fields = [
        "organisation",
        "document",
        "document_name",
        "document_type",
        "document_size",
        "document_sha256",
        "status",
        "status_reason",
        "status_changed_at",
        "uploaded_by",
        "created_at",
        "audit_trail_display",
    ]
    exclude = ["expiry_warned_at"]
    actions = [
        _action(_licence_decide, "verify", gettext_lazy("核验通过所选资质"), False),
        _action(_licence_decide, "reject", gettext_lazy("驳回所选资质（需填写原因）"), True),
        _action(_licence_decide, "revoke", gettext_lazy("撤销所选资质（需填写原因）"), True),
    ]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["email", "organisation", "role", "created_at", "expires_at", "accepted_at", "revoked_at"]
    search_fields = ["email", "organisation__legal_name"]
    readonly_fields = [f.name for f in Invitation._meta.fields]

    def has_add_permission(self, request):
        return False


class GovernmentOfficerInline(admin.TabularInline):
    model = GovernmentOfficer
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(GovernmentOffice)
class GovernmentOfficeAdmin(admin.ModelAdmin):
    list_display = ["name", "jurisdiction"]
    search_fields = ["name"]
    autocomplete_fields = ["jurisdiction"]
    inlines = [GovernmentOfficerInline]
