"""Sales for the demo market: every demo lot with a trade mode gets its sale (auction, tender or
fixed price) with realistic terms, and demo recyclers place opening bids through the same services a
user goes through, so the floor has prices, bidders, proxies and a few auctions ending soon."""

import random
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.utils import timezone

from listings.models import Lot, LotStatus, TradeMode
from listings.services import lot_market_update
from market.accounts.models import TRADING_ROLES, Membership, Organisation, VerificationStatus
from market.core.audit import audit_record
from market.trading import services
from market.trading.models import Sale
from market.trading.selectors import sale_state_for

SEED = 20261122


def _yuan(value) -> Decimal:
    return Decimal(value).quantize(Decimal("1"), rounding=ROUND_HALF_UP)


def _traders() -> list[tuple[Organisation, object]]:
    """Verified recyclers with a trading member: the demo's bidders."""
    out = []
    for org in Organisation.objects.filter(status=VerificationStatus.VERIFIED, role__in=["recycler", "both"]):
        member = (
            Membership.objects.filter(organisation=org, role__in=list(TRADING_ROLES))
            .select_related("user")
            .first()
        )
        if member is not None:
            out.append((org, member.user))
    return out


def _sale_for(lot: Lot, rng: random.Random, now, soon: bool) -> Sale:
    price = lot.current_price or Decimal("1000")
    ends_at = lot.closes_at or now + timedelta(days=rng.randrange(7, 30))
    if soon:
        ends_at = now + timedelta(minutes=rng.randrange(8, 45))
    starts_at = min(lot.published_at or now, now)
    sale = Sale(lot=lot, mode=lot.trade_mode, starts_at=starts_at, ends_at=ends_at, closes_at=ends_at)
    if lot.trade_mode == TradeMode.AUCTION:
        sale.start_price = _yuan(price * Decimal("0.95"))
        if price >= 10000:
            sale.increment_amount = Decimal("100") if price < 50000 else Decimal("200")
        elif price >= 500:
            sale.increment_amount = Decimal("10")
        else:
            sale.increment_amount = Decimal("1")
        sale.max_closes_at = ends_at + timedelta(minutes=30)
        if rng.random() < 0.25:
            sale.reserve_price = _yuan(price * Decimal("1.02"))
        if rng.random() < 0.15:
            sale.deposit_amount = _yuan(min(lot.quantity * price * Decimal("0.05"), Decimal("200000")))
    elif lot.trade_mode == TradeMode.TENDER:
        sale.start_price = _yuan(price * Decimal("0.9"))
        sale.min_bidders = 2
    elif lot.trade_mode == TradeMode.FIXED:
        sale.fixed_price = _yuan(price)
        sale.min_quantity = max(Decimal("1"), (lot.quantity / 5).quantize(Decimal("1")))
        sale.quantity_remaining = lot.quantity
    sale.save()
    audit_record(actor=None, action="sale.configure", target=sale, to_state=sale.status, reason="演示数据")
    shown = sale.fixed_price if sale.mode == TradeMode.FIXED else sale.start_price
    lot_market_update(lot_id=lot.pk, current_price=shown, closes_at=sale.closes_at, bid_count=0)
    return sale


def demo_sales_load(progress=None) -> int:
    """Create the sales of demo lots that have none (idempotent); returns how many were new."""
    rng = random.Random(SEED)
    now = timezone.now()
    traders = _traders()
    lots = list(
        Lot.objects.filter(status=LotStatus.PUBLISHED, sales__isnull=True)
        .exclude(trade_mode="")
        .select_related("category")
        .order_by("pk")
    )
    created = 0
    soon_left = 6
    for n, lot in enumerate(lots, 1):
        if progress:
            progress(n)
        soon = lot.trade_mode == TradeMode.AUCTION and not lot.hazardous and soon_left > 0
        soon_left -= soon
        with transaction.atomic():
            sale = _sale_for(lot, rng, now, soon)
        created += 1
        if lot.hazardous or sale.deposit_amount > 0 or not traders:
            continue
        _opening_bids(sale, lot, traders, rng, busy=soon)
    return created


def _opening_bids(sale: Sale, lot: Lot, traders, rng: random.Random, busy: bool) -> None:
    """A few bids from demo recyclers: proxies on some auctions, sealed bids on some tenders."""
    if sale.mode == TradeMode.AUCTION and (busy or rng.random() < 0.45):
        rounds = rng.randrange(3, 9) if busy else rng.randrange(1, 5)
        bidders = rng.sample(traders, k=min(len(traders), rng.randrange(2, 5)))
        for i in range(rounds):
            org, user = bidders[i % len(bidders)]
            state = sale_state_for(Sale.objects.get(pk=sale.pk), org)
            if state["you"]["leading"]:
                continue
            amount = Decimal(state["minimum_next"])
            maximum = amount + sale.increment_amount * rng.randrange(0, 6) if rng.random() < 0.4 else None
            try:
                services.bid_place(
                    actor=user, organisation=org, lot_id=lot.pk, amount=amount, maximum=maximum
                )
            except services.TradeRefused:
                continue
    elif sale.mode == TradeMode.TENDER and rng.random() < 0.5:
        for org, user in rng.sample(traders, k=min(len(traders), rng.randrange(1, 4))):
            amount = _yuan(sale.start_price * Decimal(str(1 + rng.random() * 0.15)))
            try:
                services.bid_place(actor=user, organisation=org, lot_id=lot.pk, amount=amount)
            except services.TradeRefused:
                continue
