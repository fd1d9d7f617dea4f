"""E-mail from the notices' outbox (``Notification.email_pending``, see ``market.core.notify``)."""

import logging
import smtplib
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from market.core.models import Notification

logger = logging.getLogger(__name__)

EMAIL_BATCH = 200
"""Notices claimed at a time."""
LEASE = timedelta(minutes=10)
"""How long a claim lasts: a sweep killed while sending leaves its notices to a later one then."""


@shared_task(acks_late=True)
def notifications_email(*, batches: int = 50) -> int:
    """Send the outbox's e-mails, oldest first, a batch at a time, up to ``batches`` batches (the
    next sweep takes the rest); returns how many were sent.

    A batch is claimed in a short transaction (``FOR UPDATE SKIP LOCKED``, then a lease), so two
    sweeps at once send different notices and nothing waits on the rows while the mail server talks.
    Each notice sent (or refused for good: a bad address, a recipient the server rejects) leaves the
    outbox; when the server is unreachable or answers "try later", the rest of the batch is released
    for the next sweep. A sweep killed in the middle leaves its claim to lapse: a notice may then be
    e-mailed twice, never lost."""
    sent = 0
    for _ in range(batches):
        count, more = _email_batch()
        sent += count
        if not more:
            break
    return sent


@shared_task
def email_send(**_kwargs) -> int:
    """The e-mail task before the outbox: messages queued under it before an upgrade are dropped
    here, their notices having been stored (and shown) already. Kept for one release."""
    return 0


def _claim() -> list[tuple]:
    now = timezone.now()
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(Q(email_leased_until__isnull=True) | Q(email_leased_until__lt=now), email_pending=True)
            .order_by("pk")
            .values_list("pk", "user_id", "title", "body", "url")[:EMAIL_BATCH]
        )
        if rows:
            Notification.objects.filter(pk__in=[row[0] for row in rows]).update(
                email_leased_until=now + LEASE
            )
    return rows


def _transient(exc: Exception) -> bool:
    """A failure worth trying again later (the server unreachable, or a 4xx answer), as opposed to
    one that would fail again (a refused recipient, a malformed address or header)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return False
    return isinstance(exc, OSError)


def _email_batch() -> tuple[int, bool]:
    rows = _claim()
    if not rows:
        return 0, False
    addresses = dict(
        get_user_model()
        .objects.filter(pk__in={row[1] for row in rows}, is_active=True)
        .values_list("pk", "email")
    )
    done, released, sent = [], [], 0
    connection = mail.get_connection()
    try:
        for pk, user_id, title, body, url in rows:
            address = addresses.get(user_id)
            if released or not address:  # after a transient failure; or an inactive user (bell only)
                (released if released else done).append(pk)
                continue
            link = settings.SITE_URL + url if url.startswith("/") else url
            subject = " ".join(f"[{settings.MARKET_NAME}] {title}".split())  # no line breaks in a header
            message = mail.EmailMessage(
                subject, f"{body}\n\n{link}".strip(), None, [address], connection=connection
            )
            try:
                sent += message.send()
                done.append(pk)
            except Exception as exc:
                if _transient(exc):
                    logger.warning(
                        "e-mail of notice %s not sent (%s): the rest wait for the next sweep", pk, exc
                    )
                    released.append(pk)
                else:
                    logger.error("e-mail of notice %s refused for good: %s", pk, exc)
                    done.append(pk)
    finally:
        try:
            connection.close()
        except Exception:  # the messages went; a failing goodbye changes nothing
            logger.warning("closing the mail connection failed", exc_info=True)
        Notification.objects.filter(pk__in=done).update(email_pending=False, email_leased_until=None)
        if released:
            Notification.objects.filter(pk__in=released).update(email_leased_until=None)
    return sent, not released and len(rows) == EMAIL_BATCH
