"""The only module that talks to Stripe (stripe-python 16: a ``StripeClient``, typed objects with
attribute access, ``allowed_payment_method_types``). Amounts go to Stripe in fen (分)."""

from decimal import Decimal

import stripe
from django.conf import settings

METHOD_TYPES = ["card", "alipay", "wechat_pay"]


def enabled() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def client() -> stripe.StripeClient:
    base = getattr(settings, "STRIPE_API_BASE", "")
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": base} if base else None,
        max_network_retries=settings.STRIPE_MAX_NETWORK_RETRIES,
    )


def fen(amount: Decimal) -> int:
    return int((amount * 100).to_integral_value())


def yuan(value: int) -> Decimal:
    return (Decimal(value) / 100).quantize(Decimal("0.01"))


def intent_create(*, amount: Decimal, idempotency_key: str, metadata: dict, description: str):
    return client().v1.payment_intents.create(
        params={
            "amount": fen(amount),
            "currency": "cny",
            "allowed_payment_method_types": METHOD_TYPES,
            "payment_method_options": {"wechat_pay": {"client": "web"}},
            "description": description[:350],
            "metadata": {k: str(v) for k, v in metadata.items()},
        },
        options={"idempotency_key": idempotency_key},
    )


def intent_retrieve(intent_id: str):
    return client().v1.payment_intents.retrieve(intent_id)


def intents_list(limit: int = 100):
    """Every PaymentIntent, page by page."""
    params = {"limit": limit}
    while True:
        page = client().v1.payment_intents.list(params=params)
        yield from page.data
        if not page.has_more or not page.data:
            return
        params = {"limit": limit, "starting_after": page.data[-1].id}


def refund_create(*, intent_id: str, amount: Decimal, idempotency_key: str, metadata: dict):
    return client().v1.refunds.create(
        params={
            "payment_intent": intent_id,
            "amount": fen(amount),
            "metadata": {k: str(v) for k, v in metadata.items()},
        },
        options={"idempotency_key": idempotency_key},
    )


def event_verify(payload: bytes, signature: str):
    """The event if the signature over the raw body is right and recent enough; raises
    ``ValueError`` (bad JSON) or ``stripe.SignatureVerificationError`` otherwise."""
    return stripe.Webhook.construct_event(
        payload, signature, settings.STRIPE_WEBHOOK_SECRET, tolerance=settings.STRIPE_WEBHOOK_TOLERANCE_S
    )
