"""Template helpers for the page header: the signed-in user's memberships and government office."""

from django import template
from django.utils.translation import gettext_lazy as _

from market.accounts import selectors
from market.accounts.models import MemberRole, VerificationStatus

register = template.Library()


@register.simple_tag(takes_context=True)
def user_memberships(context):
    """The signed-in user's memberships (one query per request), for the acting-organisation switcher."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return []
    cached = getattr(request, "_frontend_memberships", None)
    if cached is None:
        cached = list(selectors.memberships_of(user).order_by("created_at"))
        request._frontend_memberships = cached
    return cached


@register.simple_tag(takes_context=True)
def unread_notifications(context) -> int:
    """How many of the signed-in user's notifications are unread (the bell in the header)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return 0
    from market.core.notify import notifications_unread_counts

    return notifications_unread_counts([user.pk])[user.pk]


@register.simple_tag(takes_context=True)
def user_government_office(context):
    request = context.get("request")
    officer = selectors.government_officer_for(getattr(request, "user", None))
    return officer.office if officer is not None else None


AUDIT_ACTIONS = {
    "organisation.register": _("登记单位"),
    "organisation.update": _("修改单位信息"),
    "organisation.status": _("认证状态变更"),
    "organisation.verify": _("审核通过"),
    "organisation.reject": _("审核未通过"),
    "organisation.suspend": _("暂停交易"),
    "organisation.reinstate": _("恢复交易"),
    "member.invite": _("邀请成员"),
    "member.invite_revoke": _("撤销邀请"),
    "member.join": _("成员加入"),
    "member.role": _("调整成员角色"),
    "member.remove": _("移除成员"),
    "licence.add": _("上传资质"),
    "licence.verify": _("资质核验通过"),
    "licence.reject": _("资质未通过核验"),
    "licence.revoke": _("撤销资质"),
}

STATE_LABELS = {
    **dict(VerificationStatus.choices),
    **dict(MemberRole.choices),
}


@register.filter
def audit_action(code: str) -> str:
    """A readable name of an audit action code (the code itself when unknown)."""
    return AUDIT_ACTIONS.get(code, code)


@register.filter
def state_label(code: str) -> str:
    return STATE_LABELS.get(code, code)
