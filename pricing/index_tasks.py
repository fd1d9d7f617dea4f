"""Celery tasks of the price indices (imported by ``pricing.tasks`` so the worker finds them)."""

from celery import shared_task

from pricing import indices


@shared_task(acks_late=True)
def indices_close_task() -> int:
    """Beat, at the daily cut-off: the official close of today (idempotent)."""
    return indices.indices_close()


@shared_task(acks_late=True)
def index_tick_task(fact_id: int) -> int:
    """After a trade's commit: the indicative values of its series, pushed over /ws/indices/."""
    return indices.indicative_publish(fact_id)
