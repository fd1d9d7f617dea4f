"""Background jobs of pricing: keeping the statistics rollups in line with the trade facts, and the
live ticks of the indices."""

import logging

from celery import shared_task

from pricing.models import TradeFact
from pricing.rollups import rollups_fact_apply, rollups_sweep

logger = logging.getLogger(__name__)


@shared_task(acks_late=True)
def stats_facts_changed(fact_ids: list[int]) -> int:
    """After the commits that recorded or voided ``fact_ids`` (sent by ``pricing.services``' sender,
    several at a time when trades come fast): apply each to the rollups, then push the indicative
    values of the series the recorded ones moved, once for each category, county and business day
    (``indices.indicative_publish`` of the day's last such fact reads every trade of that day, the
    earlier ones included). Returns how many facts changed the rollups.

    Redelivered after a crash (late acknowledgement), it changes nothing twice: applying is
    idempotent. A fact that fails stays pending for the sweep; the others go on."""
    from pricing.indices import FACT_FIELDS, indicative_day, indicative_publish, params

    changed = 0
    for fact_id in fact_ids:
        try:
            changed += rollups_fact_apply(fact_id=fact_id) != 0
        except Exception:
            logger.exception("trade fact %s: rollups not applied, left to the sweep", fact_id)
    latest = {}
    recorded = TradeFact.objects.filter(pk__in=fact_ids, voided_at__isnull=True).only(*FACT_FIELDS)
    p = params()
    for fact in recorded.order_by("pk"):
        latest[fact.category_id, fact.region_id, indicative_day(fact, p)] = fact.pk
    for pk in latest.values():
        try:
            indicative_publish(pk)
        except Exception:  # a lost tick costs nothing: the next trade's tick and the close follow
            logger.exception("trade fact %s: indicative tick not pushed", pk)
    return changed


@shared_task
def stats_fact_apply(*, fact_id: int) -> int:
    """Apply one fact's change to the rollups (idempotent); +1, -1 or 0 as ``rollups_fact_apply``.
    (Kept for messages queued by an earlier release, and for operators: the trades' own path is
    ``stats_facts_changed``.)"""
    return rollups_fact_apply(fact_id=fact_id)


@shared_task
def stats_sweep(*, limit: int = 5000) -> int:
    """Beat: apply every fact whose change no worker applied (a process that crashed before its
    message went out, a broker down, a message lost). Facts marked pending in the transaction that
    recorded or voided them are found through a partial index, so the sweep costs nearly nothing
    when all is well."""
    return rollups_sweep(limit=limit)
