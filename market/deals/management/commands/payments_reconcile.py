"""``manage.py payments_reconcile``: compare the market's payments with Stripe, report every gap
and (with ``--repair``) close it through the same services a webhook would use."""

from django.core.management.base import BaseCommand, CommandError

from market.deals import services, stripe_gateway
from market.deals.models import Payment, PaymentMethod, PaymentStatus, Refund, RefundStatus


class Command(BaseCommand):
    help = "Compare payments and refunds with Stripe; --repair applies what Stripe says happened."

    def add_arguments(self, parser):
        parser.add_argument("--repair", action="store_true", help="apply the fixes (default: report only)")

    def handle(self, *args, **opts):
        if not stripe_gateway.enabled():
            raise CommandError("STRIPE_SECRET_KEY is not set: there is nothing to reconcile with.")
        repair = opts["repair"]
        gaps = 0
        ours = {
            p.stripe_intent: p
            for p in Payment.objects.filter(method=PaymentMethod.STRIPE).exclude(stripe_intent=None)
        }
        # 1. Payments started whose intent was never created (the call failed after the key was stored).
        for payment in Payment.objects.filter(
            method=PaymentMethod.STRIPE, stripe_intent=None, status=PaymentStatus.PENDING
        ):
            gaps += 1
            self._gap(f"payment {payment.pk}: no PaymentIntent yet")
            if repair:
                services.payment_intent_ensure(payment.pk)
        # 2. Every intent Stripe has, against our payment.
        for intent in stripe_gateway.intents_list():
            payment = ours.pop(intent.id, None)
            if payment is None:
                meta = (intent.metadata or {}).get("payment")
                payment = Payment.objects.filter(pk=int(meta)).first() if meta and meta.isdigit() else None
                if payment is None:
                    gaps += 1
                    self._gap(
                        f"intent {intent.id}: unknown to the market ({intent.status}, {intent.amount} fen)"
                    )
                    continue
            expected = stripe_gateway.fen(payment.amount)
            if intent.amount != expected:
                gaps += 1
                self._gap(f"payment {payment.pk}: amount {expected} fen here, {intent.amount} fen at Stripe")
                continue
            stripe_paid = intent.status == "succeeded"
            if stripe_paid != (payment.status == PaymentStatus.SUCCEEDED):
                gaps += 1
                self._gap(f"payment {payment.pk}: {payment.status} here, {intent.status} at Stripe")
                if repair:
                    services.payment_sync(payment, intent)
        for intent_id, payment in ours.items():
            gaps += 1
            self._gap(f"payment {payment.pk}: intent {intent_id} not found at Stripe")
        # 3. Refunds promised but not made.
        for refund in Refund.objects.filter(
            status=RefundStatus.PENDING, payment__method=PaymentMethod.STRIPE
        ):
            gaps += 1
            self._gap(f"refund {refund.pk}: ¥{refund.amount} promised, not made")
            if repair:
                services.refund_execute(refund.pk)
        verb = "repaired" if repair else "found"
        self.stdout.write(self.style.SUCCESS(f"{gaps} gap(s) {verb}"))

    def _gap(self, text: str) -> None:
        self.stdout.write(self.style.WARNING(text))
