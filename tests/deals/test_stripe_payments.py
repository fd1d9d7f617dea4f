"""Paying deals and deposits through Stripe, against the local fake Stripe server (the real API is
unreachable here), with webhooks signed by Stripe's real scheme and checked by stripe-python."""

import json
import time
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db.models import Sum

from market.deals import services
from market.deals.models import (
    Deal,
    DealStatus,
    LedgerEntry,
    LedgerKind,
    Payment,
    PaymentStatus,
    RefundStatus,
    StripeEvent,
)
from market.trading import services as trading
from market.trading.models import Deposit, DepositStatus
from tests.fake_stripe import FakeStripe, fast_retries, stripe_event, stripe_signature
from tests.trading.conftest import close_now

SECRET = "whsec_test_secret"


@pytest.fixture
def fake_stripe(settings, monkeypatch):
    fast_retries(monkeypatch)
    with FakeStripe() as fake:
        settings.STRIPE_SECRET_KEY = "sk_test_market"
        settings.STRIPE_API_BASE = fake.url
        settings.STRIPE_WEBHOOK_SECRET = SECRET
        yield fake


def awarded_deal(floor, price="2100") -> Deal:
    sale = floor.sale("auction")
    buyer = floor.buyers[0]
    trading.bid_place(actor=buyer.user, organisation=buyer.org, lot_id=floor.lot.pk, amount=Decimal(price))
    assert close_now(sale) == "closed"
    return Deal.objects.get(award__sale=sale)


def webhook(client, event: dict, *, secret=SECRET, timestamp=None, body: bytes | None = None):
    payload = body if body is not None else json.dumps(event).encode()
    header = stripe_signature(json.dumps(event).encode() if body is not None else payload, secret, timestamp)
    return client.post(
        "/payments/stripe/webhook/",
        data=payload,
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=header,
    )


def process_all():
    for pk in StripeEvent.objects.filter(processed_at__isnull=True).values_list("pk", flat=True):
        services.stripe_event_process(pk)


def payments_of(deal):
    return LedgerEntry.objects.filter(deal=deal, kind=LedgerKind.PAYMENT)


@pytest.mark.django_db
def test_a_deal_paid_online_creates_one_intent_in_cny_with_the_methods_of_china(floor, fake_stripe):
    deal = awarded_deal(floor)
    buyer = floor.buyers[0]
    payment = services.payment_start(actor=buyer.user, deal=deal, method="stripe")
    assert payment.stripe_intent.startswith("pi_") and payment.client_secret
    intent = fake_stripe.intents[payment.stripe_intent]
    assert intent["amount"] == int(deal.amount * 100) and intent["currency"] == "cny"
    assert sorted(intent["allowed_payment_method_types"]) == ["alipay", "card", "wechat_pay"]
    create = [r for r in fake_stripe.requests if r.method == "POST" and r.path == "/v1/payment_intents"]
    assert create[0].idempotency_key == str(payment.idempotency_key)
    # Asking again (a double click, a retried request) gives the same payment and the same intent.
    again = services.payment_start(actor=buyer.user, deal=deal, method="stripe")
    assert again.pk == payment.pk and fake_stripe.created["payment_intent"] == 1


@pytest.mark.django_db
def test_a_lost_answer_is_retried_with_the_stored_key_and_makes_one_intent(floor, fake_stripe):
    deal = awarded_deal(floor)
    fake_stripe.drop_next_response("/v1/payment_intents")
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    posts = [r for r in fake_stripe.requests if r.method == "POST" and r.path == "/v1/payment_intents"]
    assert len(posts) == 2 and posts[0].dropped and posts[1].replayed
    assert {r.idempotency_key for r in posts} == {str(payment.idempotency_key)}
    assert fake_stripe.created["payment_intent"] == 1 and payment.stripe_intent in fake_stripe.intents


@pytest.mark.django_db
def test_stripe_down_refuses_clearly_and_a_later_try_reuses_the_key(floor, fake_stripe, settings):
    deal = awarded_deal(floor)
    fake_stripe.drop_next_response("/v1/payment_intents", count=3)  # more than the library retries
    with pytest.raises(services.DealRefused) as refused:
        services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    assert refused.value.code == "payment_provider_error" and refused.value.status_code == 502
    payment = Payment.objects.get(deal=deal)
    assert payment.stripe_intent is None  # the key was stored before the call
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    assert payment.stripe_intent and fake_stripe.created["payment_intent"] == 1  # Stripe made it once


@pytest.mark.faults
@pytest.mark.django_db
def test_webhooks_valid_tampered_wrong_secret_too_old_and_repeated(floor, fake_stripe, client):
    deal = awarded_deal(floor)
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    intent = fake_stripe.intent_succeed(payment.stripe_intent)
    event = stripe_event("payment_intent.succeeded", intent)

    tampered = json.loads(json.dumps(event))
    tampered["data"]["object"]["amount_received"] = 1
    answer = webhook(client, event, body=json.dumps(tampered).encode())
    assert answer.status_code == 400 and answer.json()["code"] == "signature_invalid"
    assert webhook(client, event, secret="whsec_wrong").status_code == 400
    assert webhook(client, event, timestamp=int(time.time()) - 3600).status_code == 400
    assert (
        StripeEvent.objects.count() == 0
        and Deal.objects.get(pk=deal.pk).status == DealStatus.AWAITING_PAYMENT
    )

    for _ in range(3):
        answer = webhook(client, event)
        assert answer.status_code == 200
    assert StripeEvent.objects.get().deliveries == 3
    process_all()
    process_all()
    deal.refresh_from_db()
    assert deal.status == DealStatus.PAID
    assert payments_of(deal).count() == 1 and payments_of(deal).get().amount == deal.amount


@pytest.mark.faults
@pytest.mark.django_db
def test_events_in_reverse_order_leave_the_payment_paid(floor, fake_stripe, client):
    deal = awarded_deal(floor)
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    failed = stripe_event("payment_intent.payment_failed", fake_stripe.intent_fail(payment.stripe_intent))
    succeeded = stripe_event("payment_intent.succeeded", fake_stripe.intent_succeed(payment.stripe_intent))
    # The success arrives first, the older failure after it: the market re-reads the intent each time.
    assert webhook(client, succeeded).status_code == 200
    process_all()
    assert webhook(client, failed).status_code == 200
    process_all()
    payment.refresh_from_db()
    deal.refresh_from_db()
    assert payment.status == PaymentStatus.SUCCEEDED and deal.status == DealStatus.PAID
    assert payments_of(deal).count() == 1


@pytest.mark.django_db
def test_a_deposit_paid_online_is_held_and_refunded_through_stripe_when_released(floor, fake_stripe):
    sale = floor.sale("auction", deposit_amount="5000")
    winner, loser = floor.buyers[0], floor.buyers[1]
    deposits = {}
    for party in (winner, loser):
        deposit = trading.deposit_create(actor=party.user, organisation=party.org, lot_id=floor.lot.pk)
        payment = services.deposit_payment_start(actor=party.user, deposit=deposit)
        fake_stripe.intent_succeed(payment.stripe_intent)
        services.payment_sync(payment, services.stripe_gateway.intent_retrieve(payment.stripe_intent))
        deposit.refresh_from_db()
        assert deposit.status == DepositStatus.PAID
        deposits[party.org.pk] = deposit
    trading.bid_place(actor=loser.user, organisation=loser.org, lot_id=floor.lot.pk, amount=Decimal("2000"))
    trading.bid_place(actor=winner.user, organisation=winner.org, lot_id=floor.lot.pk, amount=Decimal("2100"))

    close_now(sale)
    loser_deposit = Deposit.objects.get(pk=deposits[loser.org.pk].pk)
    assert loser_deposit.status == DepositStatus.RELEASED
    refund = loser_deposit.refunds.get()
    services.refund_execute(refund.pk)  # what the task does after the commit
    refund.refresh_from_db()
    assert refund.status == RefundStatus.SUCCEEDED and refund.amount == Decimal("5000.00")
    assert fake_stripe.refunds[refund.stripe_refund]["amount"] == 500000
    kinds = set(LedgerEntry.objects.filter(deposit=loser_deposit).values_list("kind", flat=True))
    assert kinds == {LedgerKind.DEPOSIT_HOLD, LedgerKind.DEPOSIT_RELEASE, LedgerKind.REFUND}
    # The winner's deposit counts towards the price: only the rest is asked for.
    deal = Deal.objects.get(award__sale=sale)
    assert services.deal_due(deal) == deal.amount - Decimal("5000.00")
    payment = services.payment_start(actor=winner.user, deal=deal, method="stripe")
    assert payment.amount == deal.amount - Decimal("5000.00")
    fake_stripe.intent_succeed(payment.stripe_intent)
    services.payment_sync(payment, services.stripe_gateway.intent_retrieve(payment.stripe_intent))
    deal.refresh_from_db()
    assert deal.status == DealStatus.PAID
    paid = LedgerEntry.objects.filter(deal=deal, kind__in=[LedgerKind.PAYMENT, LedgerKind.DEPOSIT_APPLY])
    assert paid.aggregate(s=Sum("amount"))["s"] == deal.amount


@pytest.mark.django_db
def test_reconcile_reports_and_repairs_a_payment_whose_webhook_never_came(floor, fake_stripe, capsys):
    deal = awarded_deal(floor)
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    fake_stripe.intent_succeed(payment.stripe_intent)  # paid at Stripe; the webhook was lost
    call_command("payments_reconcile")
    out = capsys.readouterr().out
    assert f"payment {payment.pk}: pending here, succeeded at Stripe" in out and "1 gap(s) found" in out
    assert Deal.objects.get(pk=deal.pk).status == DealStatus.AWAITING_PAYMENT  # a report changes nothing
    call_command("payments_reconcile", "--repair")
    assert Deal.objects.get(pk=deal.pk).status == DealStatus.PAID
    call_command("payments_reconcile")
    assert "0 gap(s) found" in capsys.readouterr().out
    assert payments_of(deal).count() == 1


@pytest.mark.django_db
def test_without_stripe_keys_online_payment_is_refused_and_the_webhook_is_off(floor, client, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    deal = awarded_deal(floor)
    with pytest.raises(services.DealRefused) as refused:
        services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    assert refused.value.code == "payment_method_unavailable"
    assert (
        client.post("/payments/stripe/webhook/", data=b"{}", content_type="application/json").status_code
        == 404
    )


@pytest.mark.faults
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_webhook_is_applied_by_a_real_celery_worker(floor, fake_stripe, client, monkeypatch):
    from tests.conftest import worker_start, worker_stop, worker_wait

    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_market")
    monkeypatch.setenv("STRIPE_API_BASE", fake_stripe.url)
    monkeypatch.setenv("STRIPE_WEBHOOK_SECRET", SECRET)
    deal = awarded_deal(floor)
    payment = services.payment_start(actor=floor.buyers[0].user, deal=deal, method="stripe")
    event = stripe_event("payment_intent.succeeded", fake_stripe.intent_succeed(payment.stripe_intent))
    worker = worker_start("stripe")
    try:
        assert webhook(client, event).status_code == 200
        worker_wait(
            worker,
            lambda: Deal.objects.get(pk=deal.pk).status == DealStatus.PAID,
            "the worker did not apply the event",
        )
    finally:
        worker_stop(worker)
    assert StripeEvent.objects.get().processed_at is not None and payments_of(deal).count() == 1
