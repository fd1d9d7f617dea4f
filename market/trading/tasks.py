"""Closing sales on time, whatever happens to workers.

Two paths call the one idempotent ``services.sale_close``: a task scheduled for the exact end time
(once the end is near, so no task waits for hours in the broker) and a sweeper run by beat every
30 seconds that closes anything overdue. Tasks are acknowledged late, so a worker killed in the
middle of a close leaves the message to be delivered again; the close's transaction rolled back
with the worker, and the sale's row lock and the award's unique constraint make a second close a
no-op.
"""

from datetime import datetime, timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db.models import Q
from django.utils import timezone

from listings.models import LotStatus
from market.trading.models import Sale, SaleStatus


def sale_close_schedule(sale_id: int, closes_at: datetime) -> None:
    """Queue the exact close of a sale ending soon (once per end time)."""
    delay = (closes_at - timezone.now()).total_seconds()
    if delay > settings.TRADING_CLOSE_LOOKAHEAD_S:
        return  # the sweeper schedules it when it comes near
    if not cache.add(
        f"trading:close:{sale_id}:{closes_at.timestamp()}", 1, timeout=max(60, int(delay) + 120)
    ):
        return
    sale_close_task.apply_async(kwargs={"sale_id": sale_id}, eta=closes_at + timedelta(milliseconds=50))


@shared_task(acks_late=True, reject_on_worker_lost=True, autoretry_for=(ConnectionError,), max_retries=5)
def sale_close_task(*, sale_id: int) -> str:
    from market.trading.services import sale_close

    outcome = sale_close(sale_id=sale_id)
    if outcome == "not_due":  # extended by a late bid: come back at the new end
        sale = Sale.objects.filter(pk=sale_id).only("closes_at").first()
        if sale is not None:
            sale_close_schedule(sale_id, sale.closes_at)
    return outcome


@shared_task(acks_late=True)
def sales_close_sweep() -> dict:
    """Close what is overdue, schedule exact closes for what ends soon, warn of closes in 15 min."""
    from market.trading.services import sale_close, sale_closing_warn

    now = timezone.now()
    active = Sale.objects.filter(status=SaleStatus.ACTIVE)
    closed = 0
    due = active.filter(Q(closes_at__lte=now) | Q(lot__status=LotStatus.WITHDRAWN))  # withdrawn: cancel now
    for sale_id in due.order_by("closes_at").values_list("pk", flat=True)[:500]:
        closed += sale_close(sale_id=sale_id) in ("closed", "failed")
    soon = now + timedelta(seconds=settings.TRADING_CLOSE_LOOKAHEAD_S)
    for sale_id, closes_at in active.filter(closes_at__gt=now, closes_at__lte=soon).values_list(
        "pk", "closes_at"
    ):
        sale_close_schedule(sale_id, closes_at)
    warn_by = now + timedelta(seconds=settings.TRADING_CLOSING_WARNING_S)
    warned = 0
    for sale_id in active.filter(
        closes_at__gt=now, closes_at__lte=warn_by, closing_warned_at__isnull=True, bid_count__gt=0
    ).values_list("pk", flat=True)[:500]:
        warned += sale_closing_warn(sale_id=sale_id)
    return {"closed": closed, "warned": warned}
