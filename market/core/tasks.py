"""E-mail from the notices' outbox (``Notification.email_pending``, see ``market.core.notify``)."""

import logging

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail
from django.db import transaction

from market.core.models import Notification

logger = logging.getLogger(__name__)

EMAIL_BATCH = 200
"""Notices claimed per transaction."""


@shared_task(acks_late=True)
def notifications_email(*, batches: int = 50) -> int:
    """Send the outbox's e-mails, oldest first, a batch per transaction, up to ``batches`` batches
    (beat and the next wake-up take the rest); returns how many were sent.

    A batch is claimed with ``FOR UPDATE SKIP LOCKED``: two sweeps at once send different notices.
    Each notice is marked sent in the batch's transaction; if the mail server fails, the notices
    sent so far are marked and the others wait for the next sweep. A worker killed in the middle
    rolls its batch back, to be sent again: a notice may then be e-mailed twice, never lost."""
    sent = 0
    for _ in range(batches):
        count, more = _email_batch()
        sent += count
        if not more:
            break
    return sent


def _email_batch() -> tuple[int, bool]:
    with transaction.atomic():
        rows = list(
            Notification.objects.select_for_update(skip_locked=True)
            .filter(email_pending=True)
            .order_by("pk")
            .values_list("pk", "user_id", "title", "body", "url")[:EMAIL_BATCH]
        )
        if not rows:
            return 0, False
        addresses = dict(
            get_user_model()
            .objects.filter(pk__in={row[1] for row in rows}, is_active=True)
            .values_list("pk", "email")
        )
        done, sent, failed = [], 0, False
        with mail.get_connection() as connection:
            for pk, user_id, title, body, url in rows:
                address = addresses.get(user_id)
                if address:  # an inactive user is not e-mailed (the notice stays in the bell)
                    link = settings.SITE_URL + url if url.startswith("/") else url
                    message = mail.EmailMessage(
                        f"[{settings.MARKET_NAME}] {title}", f"{body}\n\n{link}".strip(), None, [address],
                        connection=connection,
                    )  # fmt: skip
                    try:
                        sent += message.send()
                    except OSError:
                        logger.warning(
                            "the mail server refused notice %s: the rest wait for the next sweep", pk
                        )
                        failed = True
                        break
                done.append(pk)
        Notification.objects.filter(pk__in=done).update(email_pending=False)
    return sent, not failed and len(rows) == EMAIL_BATCH
