"""Celery tasks of the core: the notices' e-mail outbox (``market.core.notify``)."""

from celery import shared_task

from market.core.notify import notifications_email_send


@shared_task(acks_late=True)
def notifications_email(*, batches: int = 50) -> int:
    """Send the outbox's e-mails (``notify.notifications_email_send``); beat runs it every
    ``NOTIFY_EMAIL_DELAY_S``."""
    return notifications_email_send(batches=batches)


@shared_task
def email_send(**_kwargs) -> int:
    """The e-mail task before the outbox: messages queued under it before an upgrade are dropped
    here, their notices having been stored (and shown) already. Kept for one release."""
    return 0
