"""What the browser journeys need to know about the freshly loaded demo market, read once in the
server's own environment (``python -m tests.e2e.probe``, the e2e database) and printed as one JSON
line: the auction two recyclers can bid on, one that asks for a deposit, the disputed deal, the organisation awaiting
verification, the index day an operator will correct. The journeys then find and use these through
the UI.

One change is made here, because no page makes it: a trade behind a published index value is found
wrong after publication and voided (``pricing.services.trade_void``, as a reversal does), so that
the operator's recomputation of that day moves the value and publishes a correction.
"""

import json
import os
import sys
from datetime import timedelta

import django


def facts() -> dict:
    from django.utils import timezone

    from market.accounts.models import Membership, Organisation, VerificationStatus
    from market.deals.models import Deal, DealStatus
    from market.trading.models import Sale, SaleStatus
    from market.trading.services import TradeRefused, eligibility_check
    from pricing.index_models import IndexValue

    now = timezone.now()
    bidders = ["scrapyard@demo.market", "copper@demo.market"]
    orgs = [
        Membership.objects.select_related("organisation").get(user__email=email).organisation
        for email in bidders
    ]

    def eligible(sale: Sale) -> bool:
        for org in orgs:
            try:
                eligibility_check(sale, org)
            except TradeRefused:
                return False
        return True

    # Quiet auctions (no bids yet: no one else's proxy answers for anyone; no reserve, no buy-now)
    # that stay open well past the journeys.
    quiet = (
        Sale.objects.filter(
            mode="auction",
            status=SaleStatus.ACTIVE,
            bid_count=0,
            buy_now_price__isnull=True,
            reserve_price__isnull=True,  # a hidden reserve would lift the price
            starts_at__lte=now,
            closes_at__gte=now + timedelta(minutes=40),
            lot__hazardous=False,
        )
        .select_related("lot", "lot__category")
        .order_by("closes_at", "pk")
    )
    # One that needs no deposit and both recyclers may bid on.
    auction = None
    for sale in quiet.filter(deposit_amount=0):
        if eligible(sale):
            auction = {"lot": sale.lot_id, "title": sale.lot.title}
            break

    # An auction that asks for a deposit, for a third recycler (the deposit is not paid yet).
    depositor = Membership.objects.select_related("organisation").get(user__email="aluminium@demo.market")
    deposit_auction = None
    for sale in quiet.filter(deposit_amount__gt=0):
        try:
            eligibility_check(sale, depositor.organisation, need_deposit=False)
        except TradeRefused:
            continue
        deposit_auction = {"lot": sale.lot_id, "title": sale.lot.title, "bidder": "aluminium@demo.market"}
        break

    correction = _correction_prepare()
    dispute = Deal.objects.filter(status=DealStatus.DISPUTED).order_by("pk").first()
    pending = Organisation.objects.filter(status=VerificationStatus.PENDING).order_by("pk").first()
    last_value = IndexValue.objects.filter(published_at__isnull=False).order_by("-day").first()
    return {
        "auction": auction,
        "deposit_auction": deposit_auction,
        "bidders": bidders,
        "dispute": {"id": dispute.pk, "number": dispute.number} if dispute else None,
        "pending_org": {"id": pending.pk, "name": pending.legal_name} if pending else None,
        "index_day": last_value.day.isoformat() if last_value else None,
        "correction": correction,
    }


class _DryRun(Exception):  # not an error: rolls a trial back
    pass


def _correction_prepare() -> dict | None:
    """Void the trade furthest from its value's price, in a liquid national series of the last
    published day, until a recomputation of that day would correct that series (tried in a
    transaction rolled back); its code, name and day, or None."""
    from django.db import transaction

    from pricing.index_models import IndexValue
    from pricing.indices import index_correct, value_audit_lists
    from pricing.models import TradeFact
    from pricing.services import trade_void

    last = IndexValue.objects.filter(published_at__isnull=False).order_by("-day").first()
    if last is None:
        return None
    candidates = (
        IndexValue.objects.filter(day=last.day, status="T", published_at__isnull=False)
        .filter(series__code__endswith="@CN")
        .exclude(series__kind="composite")
        .select_related("series")
        .order_by("n", "series__code")
    )
    for value in candidates[:8]:
        used = value_audit_lists(value)[0]
        facts = list(TradeFact.objects.filter(trade_id__in=used, voided_at__isnull=True))
        if len(facts) < 4:  # still liquid without one of them
            continue
        wrong = max(facts, key=lambda f: (abs(f.unit_price - value.price), f.trade_id))
        trade_void(trade_id=wrong.trade_id, reason="成交单价录入有误（端到端测试的前提）")
        try:
            with transaction.atomic():
                moved = index_correct(day=last.day, reason="trial")
                raise _DryRun(moved)
        except _DryRun as trial:
            moved = trial.args[0]
        if any(c.value.series_id == value.series_id for c in moved):
            return {"day": last.day.isoformat(), "series": value.series.code, "name": value.series.name}
    return None


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "market.settings_test")
    django.setup()
    sys.stdout.write(json.dumps(facts(), ensure_ascii=False) + "\n")
