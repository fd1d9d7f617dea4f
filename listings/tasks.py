"""Background jobs of listings: search indexing, saved-search alerts, expiry of stale lots."""

from celery import shared_task
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from listings.models import Lot, LotStatus, SavedSearch, SavedSearchHit
from listings.search.tasks import lots_index, lots_reconcile  # noqa: F401 - registered with Celery here
from market.core.notify import notify_users


@shared_task(autoretry_for=(ConnectionError, TimeoutError), retry_backoff=True, max_retries=8)
def lot_index(*, lot_id: int) -> None:
    """Bring the search index in line with the lot (adds, updates or removes it)."""
    from listings.search import get_backend

    get_backend().index_lots([lot_id])


@shared_task
def saved_searches_alert(*, lot_id: int) -> int:
    """Tell every saved search that matches a newly published lot, once per lot and search."""
    from listings.search import LotQuery, get_backend

    lot = Lot.objects.filter(pk=lot_id, status=LotStatus.PUBLISHED).select_related("seller").first()
    if lot is None:
        return 0
    backend = get_backend()
    sent = 0
    for saved in (
        SavedSearch.objects.filter(alerts=True).exclude(organisation=lot.seller).select_related("user")
    ):
        if not backend.lot_matches(LotQuery.from_params(saved.query), lot.pk):
            continue
        try:
            with transaction.atomic():
                SavedSearchHit.objects.create(saved_search=saved, lot=lot)
        except IntegrityError:
            continue  # already announced: a retried or duplicated task sends nothing more
        notify_users(
            [saved.user_id],
            title=_("“%(name)s”有新货源：%(title)s") % {"name": saved.name, "title": lot.title},
            url=reverse("frontend:lot", args=[lot.pk]),
        )
        sent += 1
    return sent


@shared_task
def lots_expire_sweep() -> int:
    from listings.services import lot_expire

    ids = Lot.objects.filter(
        status=LotStatus.PUBLISHED, pickup_by__lt=timezone.localdate(), bid_count=0
    ).values_list("pk", flat=True)
    return sum(lot_expire(lot_id=pk) for pk in ids)
