"""Reads of the trading floor, with the rules of who may see what.

Sealed tenders: before the close nobody but the bidder itself sees a bid: not other bidders, not
the seller, not operators, not the API or the admin. Only counts are public. After the close, the
result and the bids are shown to the parties.
"""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from listings.models import TradeMode
from market.accounts.models import Organisation
from market.trading import engine
from market.trading.models import (
    Award,
    Bid,
    Bidder,
    BidKind,
    Deposit,
    LotOffer,
    Sale,
    SaleStatus,
    bidder_label,
)


def sale_active(lot_id: int) -> Sale | None:
    return Sale.objects.filter(lot_id=lot_id, status=SaleStatus.ACTIVE).first()


def sale_current(lot_id: int) -> Sale | None:
    """The sale a lot page shows: the active one, else the latest."""
    return sale_active(lot_id) or Sale.objects.filter(lot_id=lot_id).order_by("-created_at").first()


def _sealed(sale: Sale) -> bool:
    return sale.mode == TradeMode.TENDER and sale.status == SaleStatus.ACTIVE


_UNSET = object()


def sale_public_state(sale: Sale, *, leader_label=_UNSET) -> dict:
    """What every watcher may see, pushed over ``/ws/lots/{id}/`` and served by ``/state/``.
    ``leader_label``: the leader's label when the caller already knows it (saves a query)."""
    sealed = _sealed(sale)
    minimum = None
    if sale.mode == TradeMode.AUCTION and sale.status == SaleStatus.ACTIVE:
        from market.trading.services import rules_of, state_of

        minimum = engine.minimum_next(rules_of(sale), state_of(sale))
    if leader_label is not _UNSET:
        pass
    elif sale.mode == TradeMode.AUCTION and sale.leader_id is not None:
        index = (
            Bidder.objects.filter(sale=sale, organisation_id=sale.leader_id)
            .values_list("label_index", flat=True)
            .first()
        )
        leader_label = bidder_label(index) if index is not None else None
    else:
        leader_label = None
    return {
        "lot": sale.lot_id,
        "sale": sale.pk,
        "mode": sale.mode,
        "status": sale.status,
        "sequence": sale.sequence,
        "server_time": timezone.now().isoformat(),
        "starts_at": sale.starts_at.isoformat(),
        "closes_at": sale.closes_at.isoformat(),
        "ends_at": sale.ends_at.isoformat(),
        "max_closes_at": sale.max_closes_at.isoformat() if sale.max_closes_at else None,
        "extended": sale.closes_at > sale.ends_at,
        "current_price": None if sealed or sale.current_price is None else str(sale.current_price),
        "minimum_next": str(minimum) if minimum is not None else None,
        "start_price": str(sale.start_price) if sale.start_price is not None else None,
        "increment_amount": str(sale.increment_amount) if sale.increment_amount is not None else None,
        "increment_percent": str(sale.increment_percent) if sale.increment_percent is not None else None,
        "reserve_set": sale.reserve_price is not None,
        "reserve_met": (
            None if sale.reserve_price is None or sealed
            else bool(sale.current_price is not None and sale.current_price >= sale.reserve_price)
        ),
        "buy_now_price": (
            str(sale.buy_now_price)
            if sale.buy_now_price is not None and (sale.current_price is None or sale.current_price < sale.buy_now_price)
            else None
        ),
        "fixed_price": str(sale.fixed_price) if sale.fixed_price is not None else None,
        "min_quantity": str(sale.min_quantity) if sale.min_quantity is not None else None,
        "quantity_remaining": str(sale.quantity_remaining) if sale.quantity_remaining is not None else None,
        "deposit_amount": str(sale.deposit_amount),
        "bid_count": sale.bid_count,
        "bidder_count": sale.bidder_count,
        "leader": leader_label,
        "fail_reason": sale.fail_reason,
    }  # fmt: skip


def sale_state_for(
    sale: Sale, organisation: Organisation | None, *, bidder=_UNSET, deposit=_UNSET, leader_label=_UNSET
) -> dict:
    """The public state plus what only this organisation may know: its label, rank, maximum,
    deposit and (for a tender) its own sealed bid. Rows the caller already holds may be passed in."""
    state = sale_public_state(sale, leader_label=leader_label)
    state["you"] = None
    if organisation is None:
        return state
    if bidder is _UNSET:
        bidder = Bidder.objects.filter(sale=sale, organisation=organisation).first()
    if deposit is _UNSET:
        deposit = (
            Deposit.objects.filter(sale=sale, organisation=organisation).first()
            if sale.deposit_amount > 0
            else None
        )
    you = {
        "label": bidder.label if bidder else None,
        "leading": bool(sale.mode == TradeMode.AUCTION and sale.leader_id == organisation.pk),
        "rank": None,
        "maximum": str(bidder.maximum) if bidder and bidder.maximum is not None else None,
        "deposit": {"id": deposit.pk, "status": deposit.status, "amount": str(deposit.amount)}
        if deposit
        else None,
        "tender_bid": None,
        "is_seller": sale.lot.seller_id == organisation.pk,
    }
    if bidder is not None and sale.mode == TradeMode.AUCTION:
        you["rank"] = auction_rank(sale, bidder)
    if bidder is not None and sale.mode == TradeMode.TENDER:
        own = Bid.objects.filter(sale=sale, bidder=bidder).order_by("-sequence").first()
        you["tender_bid"] = str(own.amount) if own else None
    state["you"] = you
    return state


def auction_rank(sale: Sale, bidder: Bidder) -> int:
    """1 for the leader; the others by the highest amount they authorised, earlier first on ties
    (one query, whatever the number of bidders). The bidder's own row counts with the greater of its
    stored maximum and the one in memory, and counts when it is not stored yet: the bid gateway
    answers before it writes the row (new, or with its maximum raised; the write keeps the greater)."""
    if sale.leader_id == bidder.organisation_id:
        return 1
    rows = {
        pk: (pk, maximum, created)
        for pk, maximum, created in Bidder.objects.filter(sale=sale)
        .exclude(organisation_id=sale.leader_id)
        .values_list("pk", "maximum", "created_at")
    }
    stored = rows.get(bidder.pk, (bidder.pk, None, bidder.created_at))
    known = [m for m in (stored[1], bidder.maximum) if m is not None]
    rows[bidder.pk] = (bidder.pk, max(known) if known else None, stored[2])
    others = sorted(rows.values(), key=lambda row: (-(row[1] or 0), row[2], row[0]))
    ahead = next(i for i, row in enumerate(others) if row[0] == bidder.pk)
    return ahead + (2 if sale.leader_id is not None else 1)


def bids_visible(sale: Sale, *, organisation: Organisation | None) -> QuerySet[Bid]:
    """The bid history this viewer may read. Auction: every public bid, with anonymous labels.
    Tender before the close: the viewer's own bids only (none for the seller or operators)."""
    qs = Bid.objects.filter(sale=sale).select_related("bidder").order_by("-sequence")
    if _sealed(sale):
        if organisation is None:
            return qs.none()
        return qs.filter(organisation=organisation)
    if organisation is None:
        return qs.exclude(kind=BidKind.RAISE)
    return qs.exclude(Q(kind=BidKind.RAISE) & ~Q(organisation=organisation))


def awards_of(organisation_ids) -> QuerySet[Award]:
    ids = list(organisation_ids)
    return Award.objects.filter(Q(buyer_id__in=ids) | Q(seller_id__in=ids)).select_related(
        "lot", "buyer", "seller", "category"
    )


def deposits_of(organisation_ids) -> QuerySet[Deposit]:
    return Deposit.objects.filter(organisation_id__in=list(organisation_ids)).select_related(
        "sale", "sale__lot"
    )


def offers_visible(sale: Sale, *, organisation: Organisation | None) -> QuerySet[LotOffer]:
    """Quotations: the seller sees all; a buyer its own; nobody else any."""
    qs = LotOffer.objects.filter(sale=sale).select_related("buyer")
    if organisation is None:
        return qs.none()
    if sale.lot.seller_id == organisation.pk:
        return qs
    return qs.filter(buyer=organisation)
