"""Celery tasks of deals: take primary keys, call services."""

from celery import shared_task

from market.deals import services


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=5, retry_backoff_max=300, max_retries=20
)
def stripe_event_process(event_pk: int) -> str:
    return services.stripe_event_process(event_pk)


@shared_task(
    acks_late=True, autoretry_for=(Exception,), retry_backoff=5, retry_backoff_max=600, max_retries=20
)
def refund_execute(refund_id: int) -> None:
    services.refund_execute(refund_id)


@shared_task(acks_late=True)
def credit_refresh_task(organisation_id: int) -> int:
    return services.credit_refresh(organisation_id=organisation_id)


@shared_task(acks_late=True)
def deals_sweep() -> dict:
    return services.deals_sweep()
