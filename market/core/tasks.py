from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail


@shared_task(autoretry_for=(OSError,), retry_backoff=True, max_retries=5)
def email_send(*, user_ids: list[int], subject: str, body: str) -> int:
    """Email each active user; returns how many were sent."""
    emails = list(
        get_user_model().objects.filter(pk__in=user_ids, is_active=True).values_list("email", flat=True)
    )
    sent = 0
    for address in emails:
        sent += send_mail(f"[{settings.MARKET_NAME}] {subject}", body, None, [address])
    return sent
