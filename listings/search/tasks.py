"""Background jobs of search: index lots, and the periodic reconcile of the index with the database.

Celery's autodiscovery imports ``<app>.tasks`` only: ``listings/tasks.py`` imports this module so that
workers register these tasks.
"""

from celery import shared_task

from listings.search.base import SearchUnavailable


@shared_task(autoretry_for=(SearchUnavailable, TimeoutError), retry_backoff=True, max_retries=8)
def lots_index(ids: list[int]) -> int:
    """Bring the index in line with these lots (adds, updates or removes each)."""
    from listings.search import get_backend

    return get_backend().index_lots(ids)


@shared_task(autoretry_for=(SearchUnavailable,), retry_backoff=True, max_retries=3)
def lots_reconcile() -> dict[str, int]:
    """Re-index lots the index misses or holds stale, drop those it should not hold."""
    from listings.search import get_backend

    return get_backend().reconcile()
