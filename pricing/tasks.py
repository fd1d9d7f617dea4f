"""Background jobs of pricing: keeping the statistics rollups in line with the trade facts."""

from celery import shared_task

from pricing.rollups import rollups_fact_apply, rollups_sweep


@shared_task
def stats_fact_apply(*, fact_id: int) -> int:
    """Apply one fact's change to the rollups (idempotent); +1, -1 or 0 as ``rollups_fact_apply``."""
    return rollups_fact_apply(fact_id=fact_id)


@shared_task
def stats_sweep(*, limit: int = 5000) -> int:
    """Beat: apply every fact whose after-commit hook never ran (a crashed process). Facts marked
    pending in the transaction that recorded or voided them are found through a partial index, so
    the sweep costs nearly nothing when all is well."""
    return rollups_sweep(limit=limit)
