"""``POST /payments/stripe/webhook/``: the signature is checked over the raw body (with the
tolerance), the event stored once by its id, 2xx answered at once; the work runs after the commit
in a Celery task that re-reads the object from Stripe."""

import json
import logging

import stripe
from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from market.deals import services, stripe_gateway

logger = logging.getLogger(__name__)


def _refuse(code: str, message: str, status: int = 400) -> JsonResponse:
    return JsonResponse({"code": code, "detail": message}, status=status)


@csrf_exempt
@require_POST
def stripe_webhook(request):
    if not settings.STRIPE_WEBHOOK_SECRET:
        return _refuse("webhook_disabled", "Stripe webhooks are not configured on this market.", 404)
    signature = request.headers.get("Stripe-Signature", "")
    try:
        event = stripe_gateway.event_verify(request.body, signature)
    except stripe.SignatureVerificationError:
        logger.warning("stripe webhook: bad or stale signature from %s", request.META.get("REMOTE_ADDR"))
        return _refuse(
            "signature_invalid", "The Stripe-Signature header does not match the body, or is too old."
        )
    except (ValueError, json.JSONDecodeError):
        return _refuse("payload_invalid", "The body is not a Stripe event.")
    stored, created = services.stripe_event_receive(event)
    return JsonResponse({"received": True, "duplicate": not created, "event": stored.event_id})
