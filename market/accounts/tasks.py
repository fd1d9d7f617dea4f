"""Background jobs of accounts: invitation emails and the licence expiry sweep (Celery beat)."""

from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from market.accounts.models import Invitation, Licence, LicenceStatus
from market.core.notify import notify_users


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def invitation_email_send(*, invitation_id: int) -> bool:
    invitation = (
        Invitation.objects.select_related("organisation", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None or not invitation.is_open:
        return False
    link = settings.SITE_URL + reverse("frontend:invitation_accept", args=[invitation.token])
    body = _(
        "%(inviter)s 邀请您以“%(role)s”身份加入“%(org)s”。\n"
        "请注册或登录后打开以下链接接受邀请（%(days)d 天内有效）：\n%(link)s"
    ) % {
        "inviter": invitation.invited_by.full_name if invitation.invited_by else "",
        "role": invitation.get_role_display(),
        "org": invitation.organisation.legal_name,
        "days": settings.INVITATION_VALID_DAYS,
        "link": link,
    }
    send_mail(f"[{settings.MARKET_NAME}] " + _("加入单位邀请"), body, None, [invitation.email])
    return True


@shared_task
def licences_expiry_sweep() -> int:
    """Warn each organisation once about verified licences that expire within the warning window.

    Runs hourly from beat; safe to run twice or concurrently (rows are claimed under a lock).
    """
    today = timezone.localdate()
    horizon = today + timedelta(days=settings.LICENCE_EXPIRY_WARNING_DAYS)
    warned = 0
    ids = list(
        Licence.objects.filter(
            status=LicenceStatus.VERIFIED, expiry_warned_at__isnull=True, valid_to__lte=horizon
        ).values_list("pk", flat=True)
    )
    for licence_id in ids:
        with transaction.atomic():
            licence = (
                Licence.objects.select_for_update(skip_locked=True)
                .select_related("organisation")
                .filter(pk=licence_id, expiry_warned_at__isnull=True)
                .first()
            )
            if licence is None:
                continue
            licence.expiry_warned_at = timezone.now()
            licence.save(update_fields=["expiry_warned_at"])
            if licence.valid_to < today:
                title = _("资质“%(licence)s”已于 %(date)s 过期，已不能用于交易。")
            else:
                title = _("资质“%(licence)s”将于 %(date)s 到期，请及时更新。")
            notify_users(
                licence.organisation.memberships.values_list("user_id", flat=True),
                title=title % {"licence": str(licence), "date": licence.valid_to.isoformat()},
                url=reverse("frontend:organisation", args=[licence.organisation_id]),
            )
            warned += 1
    return warned
