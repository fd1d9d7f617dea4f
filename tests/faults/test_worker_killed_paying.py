"""A Celery worker killed with SIGKILL in the middle of applying a payment (a Stripe webhook's event).

The task is acknowledged late, so the broker still holds it when its worker dies; once the visibility
timeout has passed (5 s here, an hour in production) another worker takes it again and applies it
once: the deal is paid, with one ledger entry for the payment, however often the event is delivered.
(The same for closing auctions: tests/trading/test_concurrency.py, marked ``faults`` too.)
"""

import os
import signal
import threading
import time
from datetime import timedelta

import pytest
from django.db import connections, transaction
from django.utils import timezone

from market.deals import services
from market.deals.models import Deal, DealStatus, LedgerEntry, LedgerKind, StripeEvent
from tests.conftest import worker_start, worker_stop
from tests.deals.test_stripe_payments import SECRET, awarded_deal, fake_stripe, webhook  # noqa: F401
from tests.fake_stripe import stripe_event
from tests.processes import wait_for, waiting_for_lock
from tests.trading.conftest import Floor, make_party, published_lot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)


@pytest.fixture
def paid_at_stripe(fake_stripe, monkeypatch):  # noqa: F811
    """A deal awaiting payment whose PaymentIntent has succeeded at (fake) Stripe; the workers started
    by the test talk to the same fake. Returns the deal, and the webhook event Stripe sends for it."""
    for name, value in {
        "STRIPE_SECRET_KEY": "sk_test_market",
        "STRIPE_API_BASE": fake_stripe.url,
        "STRIPE_WEBHOOK_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    seller = make_party(role="generator", region="130203", name="唐山钢铁集团有限公司")
    floor = Floor(
        seller=seller, buyers=[make_party(name="江南再生资源有限公司")], lot=published_lot(seller.org)
    )
    deal = awarded_deal(floor)
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    return deal, stripe_event("payment_intent.succeeded", fake_stripe.intent_succeed(payment.stripe_intent))


def test_a_worker_killed_while_applying_a_payment_leaves_it_applied_once(paid_at_stripe, client, monkeypatch):
    monkeypatch.setenv("CELERY_VISIBILITY_TIMEOUT_S", "5")
    deal, event = paid_at_stripe

    doomed = worker_start("doomed-payer", fresh=True)
    try:
        with transaction.atomic():
            # The deal's row held here: the worker's payment stops inside its transaction.
            Deal.objects.select_for_update().get(pk=deal.pk)
            response = _deliver_outside(client, event)
            assert response.status_code == 200
            wait_for(
                lambda: waiting_for_lock() or doomed.poll() is not None,
                "the worker never reached the payment",
                timeout=60,
                every=0.1,
            )
            assert doomed.poll() is None, doomed.stdout.read()
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(timeout=20)
        stored = StripeEvent.objects.get()
        assert stored.processed_at is None, "the killed worker's transaction left nothing behind"
        assert not LedgerEntry.objects.filter(deal=deal, kind=LedgerKind.PAYMENT).exists()
    finally:
        worker_stop(doomed)

    rescuer = worker_start("rescuer-payer")
    try:
        assert _deliver_outside(client, event).status_code == 200  # Stripe delivers it again meanwhile
        wait_for(
            lambda: Deal.objects.get(pk=deal.pk).status == DealStatus.PAID,
            "the payment was not applied after the worker's death (redelivery after the visibility timeout)",
            timeout=90,
            every=0.3,
        )
        time.sleep(1.0)
    finally:
        worker_stop(rescuer)
    assert LedgerEntry.objects.filter(deal=deal, kind=LedgerKind.PAYMENT).count() == 1
    stored = StripeEvent.objects.get()
    assert stored.processed_at is not None and stored.deliveries == 2


def _deliver_outside(client, event):
    """The webhook arrives on a connection of its own (another request), outside the test's lock."""
    answers = []

    def deliver():
        try:
            answers.append(webhook(client, event))
        finally:
            connections.close_all()  # this thread's own connections

    thread = threading.Thread(target=deliver)
    thread.start()
    thread.join(timeout=60)
    return answers[0]


def test_a_payment_event_whose_task_was_lost_is_applied_by_the_sweep(paid_at_stripe):
    """The webhook was stored but its task never reached the broker (Redis was away at the commit):
    the deals sweep sends it again after five minutes and a real worker applies it, once."""
    deal, event = paid_at_stripe
    StripeEvent.objects.create(  # stored by the webhook; its task lost
        event_id=event["id"], type=event["type"], object_id=event["data"]["object"]["id"], payload=event
    )
    assert services.deals_sweep()["requeued"] == 0  # a fresh event may still be on its way
    StripeEvent.objects.update(received_at=timezone.now() - timedelta(minutes=6))
    worker = worker_start("sweep-payer", fresh=True)
    try:
        assert services.deals_sweep()["requeued"] == 1
        wait_for(
            lambda: Deal.objects.get(pk=deal.pk).status == DealStatus.PAID,
            "the swept event was not applied",
            timeout=90,
            every=0.3,
        )
    finally:
        worker_stop(worker)
    assert LedgerEntry.objects.filter(deal=deal, kind=LedgerKind.PAYMENT).count() == 1
    assert StripeEvent.objects.get().processed_at is not None
    assert services.deals_sweep()["requeued"] == 0
