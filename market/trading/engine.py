"""The rules of the trading floor as pure functions: no database, no clock, no Django.

An English (ascending) auction with proxy bids and a soft close, a sealed tender and a fixed-price
sale. The services load a sale's row under a lock, call these functions with the server's time and
write what they return; the property tests in ``tests/trading/test_engine.py`` drive them directly.

Proxy bidding (代理出价): a bidder gives a maximum; the market bids for them just enough to lead.
The leader is the bidder with the highest maximum, the earlier one on equal maxima; the price is
the lowest that beats the runner-up's maximum by one increment, capped by the leader's maximum
(or a higher amount someone chose to bid outright).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

CENT = Decimal("0.01")

MANUAL = "manual"
PROXY = "proxy"
RAISE = "raise"  # the leader raises their own maximum: private to them, not a public bid
BUY_NOW = "buy_now"


class Refused(Exception):
    """A bid the rules refuse; ``code`` is the API's error code, ``params`` fill the message."""

    def __init__(self, code: str, **params):
        super().__init__(code)
        self.code = code
        self.params = params


def money(value) -> Decimal:
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Rules:
    start_price: Decimal
    increment_amount: Decimal | None = None
    increment_percent: Decimal | None = None
    reserve: Decimal | None = None
    buy_now: Decimal | None = None
    extend_window: timedelta = timedelta(minutes=5)
    extend_by: timedelta = timedelta(minutes=5)
    max_closes_at: datetime | None = None

    def increment(self, price: Decimal) -> Decimal:
        """The step above ``price``: a fixed amount, or a percentage of the price (at least 1 fen)."""
        if self.increment_percent:
            step = money(price * self.increment_percent / 100)
        else:
            step = money(self.increment_amount or CENT)
        return max(step, CENT)


@dataclass(frozen=True)
class Proxy:
    """A bidder's standing maximum; ``order`` is when it was set (earlier wins a tie)."""

    bidder: int
    maximum: Decimal
    order: int


@dataclass(frozen=True)
class AuctionState:
    closes_at: datetime
    price: Decimal | None = None  # None until the first bid
    leader: Proxy | None = None


@dataclass(frozen=True)
class Step:
    """One bid row to insert, in order."""

    bidder: int
    amount: Decimal
    kind: str
    maximum: Decimal | None = None


@dataclass
class Outcome:
    state: AuctionState
    steps: list[Step] = field(default_factory=list)
    extended: bool = False
    outbid: int | None = None  # the bidder who lost the lead with this bid
    sold: bool = False  # buy-now ended the auction


def minimum_next(rules: Rules, state: AuctionState) -> Decimal:
    """The lowest amount a new challenger may bid."""
    if state.price is None:
        return money(rules.start_price)
    return money(state.price + rules.increment(state.price))


def too_low(
    rules: Rules, state: AuctionState, *, bidder: int, amount: Decimal, maximum: Decimal | None = None
) -> Decimal | None:
    """The minimum, if ``bid_apply`` would refuse this bid as too low on ``state`` and on every state
    after it: the price never falls, and a bidder who does not lead now leads later only by a bid of
    its own. None when the bid is not too low, or is refused for another reason (which
    ``bid_apply`` gives)."""
    amount = money(amount)
    if amount <= 0 or (maximum is not None and money(maximum) < amount):
        return None
    if state.leader is not None and state.leader.bidder == bidder:
        return None
    floor = minimum_next(rules, state)
    return floor if amount < floor else None


def _reserve_lift(rules: Rules, price: Decimal, leader: Proxy) -> Decimal:
    """A leader whose maximum reaches a reserve the price has not yet met bids up to the reserve."""
    if rules.reserve is not None and price < rules.reserve <= leader.maximum:
        return money(rules.reserve)
    return price


def _soft_close(rules: Rules, closes_at: datetime, now: datetime) -> datetime:
    if closes_at - now > rules.extend_window:
        return closes_at
    new = now + rules.extend_by
    if rules.max_closes_at is not None:
        new = min(new, rules.max_closes_at)
    return max(new, closes_at)


def bid_apply(
    rules: Rules,
    state: AuctionState,
    *,
    bidder: int,
    amount: Decimal,
    maximum: Decimal | None = None,
    order: int,
    now: datetime,
) -> Outcome:
    """Apply one bid (with an optional proxy maximum) at the server time ``now``."""
    if now >= state.closes_at:
        raise Refused("auction_closed")
    amount = money(amount)
    maximum = money(maximum) if maximum is not None else amount
    if amount <= 0:
        raise Refused("bid_invalid")
    if maximum < amount:
        raise Refused("maximum_below_amount", amount=amount)
    leader = state.leader

    if leader is not None and leader.bidder == bidder:
        if maximum <= leader.maximum:
            raise Refused("already_leading", maximum=leader.maximum)
        new_leader = Proxy(bidder, maximum, order)
        price = _reserve_lift(rules, state.price, new_leader)
        steps = [Step(bidder, price, RAISE if price == state.price else PROXY, maximum)]
        closes_at = _soft_close(rules, state.closes_at, now) if price != state.price else state.closes_at
        return Outcome(
            AuctionState(closes_at, price, new_leader), steps, extended=closes_at != state.closes_at
        )

    floor = minimum_next(rules, state)
    if amount < floor:
        raise Refused("bid_too_low", minimum=floor)
    steps: list[Step] = []
    outbid = None
    if leader is None:
        new_leader = Proxy(bidder, maximum, order)
        price = _reserve_lift(rules, amount, new_leader)
        steps.append(Step(bidder, price, MANUAL, maximum if maximum > amount else None))
    elif maximum > leader.maximum:
        # The challenger takes the lead; the old leader's proxy is spent up to its maximum.
        if leader.maximum > state.price:
            steps.append(Step(leader.bidder, leader.maximum, PROXY))
        new_leader = Proxy(bidder, maximum, order)
        price = max(amount, min(maximum, money(leader.maximum + rules.increment(leader.maximum))))
        price = _reserve_lift(rules, price, new_leader)
        steps.append(Step(bidder, price, MANUAL, maximum if maximum > amount else None))
        outbid = leader.bidder
    else:
        # The leader's proxy answers: the challenger is beaten at its own maximum plus one step
        # (or at the leader's maximum when the challenger matches it: the earlier maximum wins).
        steps.append(Step(bidder, maximum, MANUAL, maximum if maximum > amount else None))
        new_leader = leader
        price = min(leader.maximum, money(maximum + rules.increment(maximum)))
        price = _reserve_lift(rules, price, leader)
        steps.append(Step(leader.bidder, price, PROXY))
    closes_at = _soft_close(rules, state.closes_at, now)
    return Outcome(
        AuctionState(closes_at, price, new_leader),
        steps,
        extended=closes_at != state.closes_at,
        outbid=outbid,
    )


def buy_now_apply(rules: Rules, state: AuctionState, *, bidder: int, now: datetime) -> Outcome:
    """Take the lot at the buy-now price while the bidding has not reached it."""
    if now >= state.closes_at:
        raise Refused("auction_closed")
    if rules.buy_now is None:
        raise Refused("buy_now_unavailable")
    if state.price is not None and state.price >= rules.buy_now:
        raise Refused("buy_now_unavailable")
    price = money(rules.buy_now)
    outbid = state.leader.bidder if state.leader and state.leader.bidder != bidder else None
    return Outcome(
        replace(state, price=price, leader=Proxy(bidder, price, -1), closes_at=now),
        [Step(bidder, price, BUY_NOW)],
        outbid=outbid,
        sold=True,
    )


@dataclass(frozen=True)
class Result:
    """How a sale ended: a winner at a price, or no sale and why."""

    winner: int | None
    price: Decimal | None
    reason: str  # "sold", "no_bids", "reserve_not_met", "too_few_bidders"


def auction_result(rules: Rules, state: AuctionState) -> Result:
    if state.leader is None or state.price is None:
        return Result(None, None, "no_bids")
    if rules.reserve is not None and state.price < rules.reserve:
        return Result(None, state.price, "reserve_not_met")
    return Result(state.leader.bidder, state.price, "sold")


@dataclass(frozen=True)
class TenderBid:
    bidder: int
    amount: Decimal
    order: int  # when this (latest) bid was made


def tender_result(
    bids: Iterable[TenderBid], *, reserve: Decimal | None, min_bidders: int, start_price: Decimal | None
) -> Result:
    """Each bidder's latest bid counts; the highest valid one wins (earlier on equal amounts)."""
    latest: dict[int, TenderBid] = {}
    for bid in sorted(bids, key=lambda b: b.order):
        latest[bid.bidder] = bid
    floor = start_price or Decimal(0)
    valid = [b for b in latest.values() if b.amount >= floor]
    if len(valid) < max(1, min_bidders):
        return Result(None, None, "too_few_bidders" if valid else "no_bids")
    best = max(valid, key=lambda b: (b.amount, -b.order))
    if reserve is not None and best.amount < reserve:
        return Result(None, best.amount, "reserve_not_met")
    return Result(best.bidder, money(best.amount), "sold")


def fixed_take(*, remaining: Decimal, minimum: Decimal, quantity: Decimal) -> Decimal:
    """How much of a fixed-price lot a buyer may take: at least the minimum (or all that is left
    when less remains), never more than remains."""
    if remaining <= 0:
        raise Refused("sold_out")
    if quantity <= 0:
        raise Refused("quantity_invalid")
    if quantity > remaining:
        raise Refused("quantity_exceeds_remaining", remaining=remaining)
    if quantity < min(minimum, remaining):
        raise Refused("quantity_below_minimum", minimum=min(minimum, remaining))
    return quantity
