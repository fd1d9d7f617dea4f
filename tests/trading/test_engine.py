"""Property tests of the pure auction engine (no database)."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from market.trading import engine
from market.trading.engine import AuctionState, Proxy, Refused, Rules, TenderBid

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
END = T0 + timedelta(hours=1)
CAP = END + timedelta(minutes=30)

money = st.integers(min_value=1, max_value=500_000).map(lambda c: Decimal(c) / 100)


def rules_strategy():
    return st.builds(
        Rules,
        start_price=st.integers(100, 100_000).map(lambda c: Decimal(c) / 100),
        increment_amount=st.one_of(st.none(), st.integers(1, 10_000).map(lambda c: Decimal(c) / 100)),
        increment_percent=st.one_of(st.none(), st.sampled_from([Decimal("0.5"), Decimal("1"), Decimal("5")])),
        reserve=st.none(),
        buy_now=st.none(),
        extend_window=st.just(timedelta(minutes=5)),
        extend_by=st.just(timedelta(minutes=5)),
        max_closes_at=st.just(CAP),
    )


class AuctionMachine(RuleBasedStateMachine):
    """Bidders with random maxima bid the minimum with a proxy at random times; the engine must keep
    its promises after every step."""

    @initialize(rules=rules_strategy())
    def start(self, rules):
        self.rules = rules
        self.state = AuctionState(closes_at=END)
        self.maxima: dict[int, tuple[Decimal, int]] = {}  # bidder -> (final maximum, order set)
        self.order = 0
        self.now = T0
        self.prices = []
        self.cap = None  # the leader's maximum when the price was last set by a challenge
        self.history = [self.state]  # every state so far: what a late bidder may have seen

    @rule(bidder=st.integers(1, 6), extra=st.integers(0, 200_000), seconds=st.integers(0, 900))
    def proxy_bid(self, bidder, extra, seconds):
        now = self.now + timedelta(seconds=seconds)
        if now >= self.state.closes_at:
            with pytest.raises(Refused):
                engine.bid_apply(self.rules, self.state, bidder=bidder, amount=Decimal(1), order=0, now=now)
            return
        self.now = now
        floor = engine.minimum_next(self.rules, self.state)
        maximum = floor + Decimal(extra) / 100
        leader = self.state.leader
        self.order += 1
        before = self.state
        try:
            out = engine.bid_apply(
                self.rules,
                self.state,
                bidder=bidder,
                amount=floor,
                maximum=maximum,
                order=self.order,
                now=now,
            )
        except Refused as exc:
            assert leader is not None and leader.bidder == bidder and exc.code == "already_leading"
            assert maximum <= leader.maximum
            return
        old = self.maxima.get(bidder)
        if old is None or maximum > old[0]:
            self.maxima[bidder] = (maximum, self.order)
        if leader is None or leader.bidder != bidder:
            self.cap = out.state.leader.maximum
        self.state = out.state
        self.history.append(out.state)
        # soft close: extended only inside the window, never past the cap, never earlier
        assert out.state.closes_at >= before.closes_at
        assert out.state.closes_at <= max(CAP, before.closes_at)
        if before.closes_at - now > self.rules.extend_window:
            assert out.state.closes_at == before.closes_at
        self.prices.append(out.state.price)

    @rule(data=st.data(), bidder=st.integers(1, 6), cents=st.integers(1, 600_000))
    def a_bid_too_low_for_a_state_seen_earlier_is_refused_as_too_low_now(self, data, bidder, cents):
        """What lets the server refuse such bids from the committed state, without the sale's lock."""
        seen = data.draw(st.sampled_from(self.history))
        amount = Decimal(cents) / 100
        floor = engine.too_low(self.rules, seen, bidder=bidder, amount=amount)
        if floor is None:
            return
        assert amount < floor == engine.minimum_next(self.rules, seen)
        leader = self.state.leader
        if leader is not None and leader.bidder == bidder:
            return  # it took the lead since, by a bid of its own: then the bid raises its maximum
        with pytest.raises(Refused) as refused:
            engine.bid_apply(
                self.rules, self.state, bidder=bidder, amount=amount, order=self.order + 1, now=self.now
            )
        assert refused.value.code == "bid_too_low"
        assert refused.value.params["minimum"] >= floor

    @invariant()
    def price_never_decreases(self):
        if getattr(self, "prices", None):
            assert all(a <= b for a, b in zip(self.prices, self.prices[1:], strict=False))

    @precondition(lambda self: getattr(self, "maxima", None))
    @invariant()
    def leader_holds_the_highest_maximum_earliest_on_ties(self):
        top = max(m for m, _ in self.maxima.values())
        earliest = min(order for m, order in self.maxima.values() if m == top)
        assert self.state.leader.maximum == top
        assert self.maxima[self.state.leader.bidder] == (top, earliest)

    @precondition(lambda self: getattr(self, "maxima", None))
    @invariant()
    def price_beats_the_runner_up_by_one_increment_capped_by_the_leaders_maximum(self):
        leader = self.state.leader
        others = [m for b, (m, _) in self.maxima.items() if b != leader.bidder]
        if not others:
            # alone: the opening bid (or the leader's own later raise, which moves no price)
            assert self.state.price == self.rules.start_price
            return
        second = max(others)
        # a leader raising their own maximum later moves no price
        expected = min(self.cap, engine.money(second + self.rules.increment(second)))
        assert self.state.price == max(expected, self.rules.start_price)


AuctionMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestAuction = AuctionMachine.TestCase


@given(rules=rules_strategy(), price=money)
def test_the_minimum_next_bid_is_strictly_above_the_price(rules, price):
    state = AuctionState(closes_at=END, price=price, leader=Proxy(1, price, 1))
    assert engine.minimum_next(rules, state) > price


@given(
    reserve=st.integers(2_000, 90_000).map(lambda c: Decimal(c) / 100),
    maximum=st.integers(1_000, 100_000).map(lambda c: Decimal(c) / 100),
)
def test_a_proxy_reaching_the_reserve_lifts_the_price_to_it(reserve, maximum):
    rules = Rules(start_price=Decimal("10.00"), increment_amount=Decimal("1.00"), reserve=reserve)
    assume(maximum >= Decimal("10.00"))
    out = engine.bid_apply(
        rules,
        AuctionState(closes_at=END),
        bidder=1,
        amount=Decimal("10.00"),
        maximum=maximum,
        order=1,
        now=T0,
    )
    result = engine.auction_result(rules, out.state)
    if maximum >= reserve:
        assert out.state.price == reserve and result.winner == 1
    else:
        assert out.state.price == Decimal("10.00") and result.reason == "reserve_not_met"


def test_soft_close_extends_from_the_bid_and_stops_at_the_cap():
    rules = Rules(
        start_price=Decimal("100"), increment_amount=Decimal("10"), max_closes_at=END + timedelta(minutes=7)
    )
    state = AuctionState(closes_at=END)
    out = engine.bid_apply(
        rules, state, bidder=1, amount=Decimal("100"), order=1, now=END - timedelta(minutes=2)
    )
    assert out.extended and out.state.closes_at == END + timedelta(minutes=3)
    out = engine.bid_apply(
        rules, out.state, bidder=2, amount=Decimal("110"), order=2, now=END + timedelta(minutes=2, seconds=30)
    )
    assert out.state.closes_at == END + timedelta(minutes=7)  # capped, not 7.5
    with pytest.raises(Refused) as exc:
        engine.bid_apply(
            rules, out.state, bidder=1, amount=Decimal("200"), order=3, now=END + timedelta(minutes=7)
        )
    assert exc.value.code == "auction_closed"


def test_equal_maxima_the_earlier_leads_at_that_price():
    rules = Rules(start_price=Decimal("100"), increment_amount=Decimal("10"))
    a = engine.bid_apply(
        rules,
        AuctionState(closes_at=END),
        bidder=1,
        amount=Decimal("100"),
        maximum=Decimal("500"),
        order=1,
        now=T0,
    )
    b = engine.bid_apply(
        rules, a.state, bidder=2, amount=Decimal("110"), maximum=Decimal("500"), order=2, now=T0
    )
    assert b.state.leader.bidder == 1 and b.state.price == Decimal("500")
    assert [(s.bidder, s.amount, s.kind) for s in b.steps] == [
        (2, Decimal("500"), "manual"),
        (1, Decimal("500"), "proxy"),
    ]


def test_a_bid_below_the_minimum_is_refused_with_the_minimum():
    rules = Rules(start_price=Decimal("2000"), increment_percent=Decimal("1"))
    a = engine.bid_apply(
        rules, AuctionState(closes_at=END), bidder=1, amount=Decimal("2000"), order=1, now=T0
    )
    with pytest.raises(Refused) as exc:
        engine.bid_apply(rules, a.state, bidder=2, amount=Decimal("2019.99"), order=2, now=T0)
    assert exc.value.code == "bid_too_low" and exc.value.params["minimum"] == Decimal("2020.00")


def test_buy_now_only_while_the_bidding_is_below_it():
    rules = Rules(start_price=Decimal("100"), increment_amount=Decimal("10"), buy_now=Decimal("150"))
    out = engine.buy_now_apply(rules, AuctionState(closes_at=END), bidder=3, now=T0)
    assert out.sold and out.state.price == Decimal("150") and out.state.closes_at == T0
    high = AuctionState(closes_at=END, price=Decimal("150"), leader=Proxy(1, Decimal("200"), 1))
    with pytest.raises(Refused):
        engine.buy_now_apply(rules, high, bidder=3, now=T0)


@given(
    amounts=st.lists(st.tuples(st.integers(1, 5), st.integers(100, 10_000)), min_size=0, max_size=20),
    min_bidders=st.integers(1, 4),
)
def test_tender_highest_latest_bid_wins_or_the_tender_fails(amounts, min_bidders):
    bids = [TenderBid(b, Decimal(a), i) for i, (b, a) in enumerate(amounts)]
    result = engine.tender_result(bids, reserve=None, min_bidders=min_bidders, start_price=None)
    latest = {}
    for bid in bids:
        latest[bid.bidder] = bid
    if len(latest) < min_bidders:
        assert result.winner is None
    else:
        top = max(b.amount for b in latest.values())
        first = min((b for b in latest.values() if b.amount == top), key=lambda b: b.order)
        assert (result.winner, result.price) == (first.bidder, top)


@given(
    remaining=st.integers(1, 1000).map(Decimal),
    minimum=st.integers(1, 100).map(Decimal),
    quantity=st.integers(-5, 1200).map(Decimal),
)
def test_fixed_price_never_sells_more_than_remains(remaining, minimum, quantity):
    try:
        taken = engine.fixed_take(remaining=remaining, minimum=minimum, quantity=quantity)
    except Refused:
        assert quantity <= 0 or quantity > remaining or quantity < min(minimum, remaining)
    else:
        assert 0 < taken <= remaining and taken >= min(minimum, remaining)
