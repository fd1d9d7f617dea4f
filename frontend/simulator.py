"""The living demo: a simulator that trades on the demo market while a visitor watches.

Every tick (a Celery beat task every ``DEMO_SIMULATOR_S`` seconds in the embedded demo, or
``manage.py simulate --ticks N`` by hand) does a little of what the market's people do:

- a generator lists a lot now and then (one every couple of minutes, at most
  ``DEMO_SIMULATOR_MAX_LOTS`` open at once): drafted, put up for a live auction ending in 10 to 30
  minutes with soft close, submitted, and published by the automatic rule or by the operator
  (hazardous lots);
- recyclers bid on a few open auctions, more often on those about to close; where a deposit is
  asked, the bidder asks to pay it and the operator confirms it first;
- auctions whose time is up are closed (the same idempotent close the sweeper calls), so each
  ends in an award and its deal;
- a few deals move one step: the buyer pays by bank transfer, the operator confirms it, the buyer
  books the pickup (opens the hazardous-waste manifest), the weighbridge ticket is recorded within
  the tolerance, a top-up is paid or a refund sent, the buyer confirms receipt. Settling feeds
  ``pricing.services.trade_record`` through the deals' own path, so the indices tick and the
  statistics move.

It acts only through the apps' services, as the people it plays: a simulated trader
(``sim.<key>@demo.market``, no password, so nobody can log in as one) in each demo enterprise,
and the demo's operator. Nothing is written around the services, so websocket pushes,
notifications, search indexing, the ledger, the trace chains and the price facts are the real ones.

**What is simulated**: a lot is the simulator's when one of its traders created it
(``Lot.created_by``); the simulator bids, closes and settles only those and their deals. Lots that a
visitor creates (even logged in as a demo enterprise) and the demo loader's lots and showcase deals
are never touched. A visitor may bid on a simulated lot; if a visitor's enterprise wins it, the
simulator plays only the seller and the operator of that deal and leaves the buyer's steps to them.

**Prices** follow the per-market bands and the Ornstein-Uhlenbeck walk of
:mod:`frontend.demo_pricing` (the walk that made the two years of history), one small step per
tick: one business day's move every ``DAY_S`` seconds of the demo. The walk continues from the
market's last recorded trade and is kept in the cache (a lost state restarts from the last trade).
Start prices, reserves and each bidder's private valuation stay inside the market's band, so every
award and every price fact does too.

**Safety**: each action is one service call in its own short transaction and the next action is
read from the database's state, so a tick that dies half way leaves nothing half made and the next
one carries on. A refusal (someone else moved first, a rule says no) is counted and skipped. Two
ticks never run at once (a cache lock). Without the demo loaded a tick logs and returns.
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from rest_framework.exceptions import APIException

from frontend.demo import DEMO_DOMAIN, ORGANISATIONS, _email
from frontend.demo_lots import DEMO_ORG_INDUSTRY, INDUSTRIES, PROFILES, _spec_value
from frontend.demo_pricing import MARKETS, Market, _tonnes, market_of, walk_clamp, walk_start, walk_step
from listings import services as listings
from listings.models import Category, Lot, LotStatus, Packaging, TradeMode
from listings.selectors import schema_effective
from market.accounts.models import MemberRole, Membership, Organisation, User
from market.deals import services as deals
from market.deals.models import (
    Deal,
    DealStatus,
    Manifest,
    PaymentMethod,
    PaymentStatus,
    Refund,
    RefundStatus,
    WeighingStatus,
)
from market.trading import services as trading
from market.trading.models import Bid, Deposit, DepositStatus, Sale, SaleStatus
from market.trading.selectors import sale_state_for
from pricing.models import TradeFact

logger = logging.getLogger(__name__)

BOT_PREFIX = "sim."  # the simulated traders: sim.<enterprise key>@demo.market
BOT_NAME = "模拟交易员"
WALK_KEY = "frontend:simulator:walk"
LOCK_KEY = "frontend:simulator:lock"
DAY_S = 600  # one business day of price movement per ten minutes of the demo
MIN_OPEN = 6  # below this many open simulated lots, one is listed every tick

# Recyclers of the demo that buy in a market besides the buyers demo_pricing names for it.
EXTRA_BUYERS = {
    "ferrous": ("scrapyard", "chongqing"),
    "nonferrous": ("scrapyard", "chongqing"),
    "paper": ("chongqing",),
    "plastics": ("chongqing", "paper"),
}
AUCTION_MINUTES = (10, 30)
BIDS_PER_TICK = (0, 1, 1, 2, 2, 3)
DEALS_PER_TICK = (1, 2, 2, 3)
TRANSPORTER = ("济源市安达危险品运输有限公司", "豫交运管许可济字 419001000123号")
PLATES = ("冀B", "晋F", "粤S", "皖K", "苏E", "浙J", "赣L", "豫U", "渝A", "津C")
DRIVERS = ("王师傅", "李师傅", "张师傅", "刘师傅", "陈师傅", "赵师傅")
D = Decimal
CENT = D("0.01")


@dataclass(frozen=True)
class Pace:
    """How busy the floor is: the tick's period and the bound on open simulated lots."""

    interval_s: int = 20
    max_lots: int = 30
    list_every_s: int = 150  # a new lot every two and a half minutes on average

    @classmethod
    def from_settings(cls) -> Pace:
        return cls(
            interval_s=max(1, int(getattr(settings, "DEMO_SIMULATOR_S", 20))),
            max_lots=max(1, int(getattr(settings, "DEMO_SIMULATOR_MAX_LOTS", 30))),
        )


@dataclass
class Cast:
    """Who plays: the demo's operator and a simulated trader in each verified demo enterprise."""

    operator: User
    orgs: dict[str, Organisation]  # demo key -> enterprise
    bots: dict[str, User]  # demo key -> its simulated trader
    bot_ids: set[int]  # every simulated trader, also those no longer members anywhere

    def bot_of(self, organisation_id: int) -> User | None:
        for key, org in self.orgs.items():
            if org.pk == organisation_id:
                return self.bots.get(key)
        return None


@dataclass
class Summary:
    listed: int = 0
    published: int = 0
    bids: int = 0
    deposits: int = 0
    closed: int = 0
    deal_steps: int = 0
    settled: int = 0
    refused: int = 0
    errors: int = 0
    skipped: str = ""
    log: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        out = {k: v for k, v in self.__dict__.items() if k != "log"}
        out["log"] = list(self.log)
        return out


# --- who plays ------------------------------------------------------------------------------


def _bot_create(key: str, org: Organisation) -> User:
    """The enterprise's simulated trader, made the first time: a user without a password (nobody
    logs in as it), a trader member of the enterprise."""
    with transaction.atomic():
        user = User(
            email=_email(f"{BOT_PREFIX}{key}"), full_name=f"{BOT_NAME}（{org.short_name or org.legal_name}）"
        )
        user.set_unusable_password()
        user.save()
        Membership.objects.create(user=user, organisation=org, role=MemberRole.TRADER)
    return user


def cast_load() -> Cast | None:
    """The cast, or None when the demo market is not loaded. A simulated trader a visitor removed
    from its enterprise (or deactivated) stays out: that enterprise then only watches."""
    operator = User.objects.filter(email=_email("operator"), is_staff=True, is_active=True).first()
    if operator is None:
        return None
    specs = {_email(spec.key): spec for spec in ORGANISATIONS}
    orgs = {}
    for membership in Membership.objects.filter(user__email__in=list(specs)).select_related(
        "user", "organisation"
    ):
        spec, org = specs[membership.user.email], membership.organisation
        if org.legal_name == spec.legal_name and org.is_verified and not org.is_blacklisted:
            orgs[spec.key] = org
    if not orgs:
        return None
    users = {
        u.email: u
        for u in User.objects.filter(email__startswith=BOT_PREFIX, email__endswith=f"@{DEMO_DOMAIN}")
    }
    members = set(
        Membership.objects.filter(
            user__in=list(users.values()), role__in=[MemberRole.TRADER, MemberRole.ADMIN]
        ).values_list("user_id", "organisation_id")
    )
    bots = {}
    for key, org in orgs.items():
        email = _email(f"{BOT_PREFIX}{key}")
        user = users.get(email)
        if user is None:
            bots[key] = users[email] = _bot_create(key, org)
        elif user.is_active and (user.pk, org.pk) in members:
            bots[key] = user
    return Cast(operator=operator, orgs=orgs, bots=bots, bot_ids={u.pk for u in users.values()})


def simulated_lots(cast: Cast):
    return Lot.objects.filter(created_by_id__in=cast.bot_ids)


# --- prices ---------------------------------------------------------------------------------


def _level_from_trades(market: Market) -> float | None:
    """The log price of the market's last recorded trade (the history's or a live one)."""
    fact = (
        TradeFact.objects.filter(voided_at__isnull=True, category__code__startswith=market.category)
        .order_by("-settled_at", "-pk")
        .only("unit_price", "category_id")
        .first()
    )
    if fact is None or market_of(fact.category_id) is not market or fact.unit_price <= 0:
        return None
    return walk_clamp(market, math.log(float(fact.unit_price)))


def levels_load(rng: random.Random) -> dict[str, float]:
    levels = cache.get(WALK_KEY) or {}
    for market in MARKETS:
        if market.category not in levels:
            level = _level_from_trades(market)
            levels[market.category] = level if level is not None else walk_start(market, rng)
    return levels


def levels_step(levels: dict[str, float], rng: random.Random, dt: float) -> dict[str, float]:
    """Every market's walk one step of ``dt`` business days on, with the metals' common shock."""
    common = rng.gauss(0, 1)
    for market in MARKETS:
        levels[market.category] = walk_step(market, levels[market.category], common, rng, dt=dt)
    return levels


def band(market: Market) -> tuple[Decimal, Decimal]:
    return D(market.low), D(market.high)


def increment_for(price: Decimal, tick: Decimal) -> Decimal:
    """A round bid increment of about 0.3 % of the price (1, 2 or 5 times a power of ten), never
    below the market's quoting step: 10 yuan on scrap steel, 200 on copper, 0.5 on fly ash."""
    raw = price * D("0.003")
    exponent = math.floor(math.log10(float(raw))) if raw > 0 else 0
    power = D(10) ** exponent
    step = next(m * power for m in (D(1), D(2), D(5), D(10)) if m * power >= raw)
    return max(step, tick)


def _down(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(rounding=ROUND_FLOOR) * step).quantize(CENT)


def _up(value: Decimal, step: Decimal) -> Decimal:
    return ((value / step).to_integral_value(rounding=ROUND_CEILING) * step).quantize(CENT)


# --- the simulator --------------------------------------------------------------------------


class Simulator:
    def __init__(self, cast: Cast, rng: random.Random, pace: Pace | None = None):
        self.cast = cast
        self.rng = rng
        self.pace = pace or Pace.from_settings()
        self.summary = Summary()
        self.levels: dict[str, float] = {}
        self._leaves_of: dict[str, list[Category]] = {}

    # Every action goes through here: a refusal is the market saying no (counted, skipped), anything
    # else is a bug (logged with its traceback, counted); the tick goes on either way.
    def _attempt(self, what: str, action):
        try:
            return action()
        except (APIException, ValidationError, PermissionDenied) as exc:
            self.summary.refused += 1
            logger.debug("simulator: %s refused: %s", what, exc)
        except Exception:
            self.summary.errors += 1
            logger.exception("simulator: %s failed", what)
        return None

    def _note(self, text: str) -> None:
        self.summary.log.append(text)
        logger.info("simulator: %s", text)

    def tick(self) -> Summary:
        dt = self.pace.interval_s / DAY_S
        self.levels = levels_step(levels_load(self.rng), self.rng, dt)
        cache.set(WALK_KEY, self.levels, None)
        self._finish_listings()
        self._maybe_list()
        self._close_due()
        self._bid_some()
        self._move_deals()
        return self.summary

    # --- markets and parties ------------------------------------------------------------------

    def _sellers(self, market: Market) -> list[str]:
        keys = [k for k in market.sellers if k in self.cast.orgs]
        keys += [
            k for k, industry in DEMO_ORG_INDUSTRY.items() if market.category.startswith(INDUSTRIES[industry])
        ]
        keys = list(dict.fromkeys(keys))
        return [k for k in keys if k in self.cast.bots and self.cast.orgs[k].is_generator]

    def _buyers(self, market: Market) -> list[str]:
        keys = [k for k in market.buyers if k in self.cast.orgs]
        keys += [
            k for prefix, extra in EXTRA_BUYERS.items() if market.category.startswith(prefix) for k in extra
        ]
        keys = list(dict.fromkeys(keys))
        return [k for k in keys if k in self.cast.bots and self.cast.orgs[k].is_recycler]

    def _leaves(self, market: Market) -> list[Category]:
        """The market's listable categories: active leaves sold by the tonne."""
        if not self._leaves_of:
            active = list(Category.objects.filter(is_active=True).order_by("code"))
            parents = {c.parent_id for c in active if c.parent_id}
            for m in MARKETS:
                self._leaves_of[m.category] = [
                    c
                    for c in active
                    if (c.code == m.category or c.code.startswith(f"{m.category}."))
                    and c.code not in parents
                    and c.unit == "t"
                ]
        return self._leaves_of.get(market.category, [])

    def level(self, market: Market) -> Decimal:
        return D(str(round(math.exp(self.levels[market.category]), 2)))

    # --- listing ------------------------------------------------------------------------------

    def _open_count(self) -> int:
        return simulated_lots(self.cast).filter(status__in=[LotStatus.PUBLISHED, LotStatus.SUBMITTED]).count()

    def _maybe_list(self) -> None:
        open_now = self._open_count()
        if open_now >= self.pace.max_lots:
            return
        chance = self.pace.interval_s / self.pace.list_every_s
        if open_now >= min(MIN_OPEN, self.pace.max_lots) and self.rng.random() >= chance:
            return
        choices = [
            (m, leaves)
            for m in MARKETS
            if self._sellers(m) and self._buyers(m) and (leaves := self._leaves(m))
        ]
        if not choices:
            return
        market, leaves = self.rng.choices(choices, weights=[m.rate for m, _ in choices])[0]
        self.list_lot(market, leaves)

    def list_lot(self, market: Market, leaves: list[Category] | None = None) -> Lot | None:
        """A generator of the market lists a lot of one of its categories for a live auction."""
        rng = self.rng
        leaves = leaves or self._leaves(market)
        if not leaves or not self._sellers(market):
            return None
        if not self.levels:
            self.levels = levels_load(rng)
        category = leaves[rng.randrange(len(leaves))]
        key = rng.choice(self._sellers(market))
        org, bot = self.cast.orgs[key], self.cast.bots[key]
        low, high = band(market)
        reference = min(max(self.level(market) * D(str(round(math.exp(rng.gauss(0, 0.012)), 5))), low), high)
        increment = increment_for(reference, market.tick)
        start = min(
            max(_down(reference * D(str(round(rng.uniform(0.94, 0.98), 3))), increment), _up(low, increment)),
            _down(high, increment),
        )
        reserve = None
        if rng.random() < 0.25:
            reserve = min(
                max(_down(reference * D(str(round(rng.uniform(0.97, 1.0), 3))), increment), start),
                _down(high, increment),
            )
        quantity = D(max(1, round(float(_tonnes(rng, *market.tonnes)))))
        deposit = None
        if not category.hazardous and rng.random() < 0.2:
            value = quantity * reference * D("0.05")
            deposit = min(max(_down(value, D(100)), D(1000)), D(200000))
        profile = next((p for p in PROFILES if p[0] == category.code), None)
        packaging = profile[3] if profile else Packaging.BULK
        origin = profile[4] if profile else category.name
        specs = {f["key"]: v for f in schema_effective(category) if (v := _spec_value(f, rng)) is not None}
        minutes = rng.randint(*AUCTION_MINUTES)
        pickup_days = rng.randrange(20, 46)
        today = timezone.localdate()
        title = f"{category.name} {quantity} 吨 · {org.short_name or org.legal_name}"
        lot = self._attempt(
            "list",
            lambda: listings.lot_create(
                actor=bot, organisation=org, category=category.code, title=title[:120], quantity=quantity,
                unit=category.unit, region=org.region_id, address=org.address, available_from=today,
                pickup_by=today + timedelta(days=pickup_days), specs=specs, packaging=packaging,
                description=f"{origin}。{org.legal_name}厂内自提，过磅结算，竞价 {minutes} 分钟，截止前 2 分钟内出价自动延时。",
            ),
        )  # fmt: skip
        if lot is None:
            return None
        self.summary.listed += 1
        ends_at = timezone.now() + timedelta(minutes=minutes)
        sale = self._attempt(
            "configure",
            lambda: trading.sale_configure(
                actor=bot, lot=lot, mode=TradeMode.AUCTION, ends_at=ends_at, start_price=start,
                increment_amount=increment, reserve_price=reserve, deposit_amount=deposit,
                max_closes_at=ends_at + timedelta(minutes=10), extend_window_s=120, extend_by_s=120,
            ),
        )  # fmt: skip
        if sale is None:
            return lot
        self._publish(lot)
        self._note(f"listed lot {lot.pk} {category.code} {quantity} t from ¥{start}/t, ends in {minutes} min")
        return lot

    def _publish(self, lot: Lot) -> None:
        bot = self.cast.bots.get(next((k for k, o in self.cast.orgs.items() if o.pk == lot.seller_id), ""))
        if bot is None:
            return
        if lot.status == LotStatus.DRAFT:
            lot = self._attempt("submit", lambda: listings.lot_submit(actor=bot, lot=lot)) or lot
        if lot.status == LotStatus.SUBMITTED:  # hazardous, or automatic publication off: the operator
            lot = (
                self._attempt("publish", lambda: listings.lot_publish(actor=self.cast.operator, lot=lot))
                or lot
            )
        if lot.status == LotStatus.PUBLISHED:
            self.summary.published += 1

    def _finish_listings(self) -> None:
        """Listings a crashed tick left half made (drafted, or submitted and not yet reviewed) are
        finished; drafts older than ten minutes (a visitor-operator returned them) are left alone."""
        since = timezone.now() - timedelta(minutes=10)
        for lot in (
            simulated_lots(self.cast)
            .filter(status__in=[LotStatus.DRAFT, LotStatus.SUBMITTED], created_at__gte=since)
            .select_related("category")[:5]
        ):
            if not Sale.objects.filter(lot=lot, status=SaleStatus.ACTIVE).exists():
                continue  # no terms: a draft without a sale stays a draft
            self._publish(lot)

    # --- bidding ------------------------------------------------------------------------------

    def valuation(self, sale: Sale, org: Organisation, market: Market) -> Decimal:
        """What this bidder will pay at most for this lot: its own view (fixed per lot and bidder)
        of the market's price now, inside the band, in whole increments."""
        personal = random.Random(f"{sale.pk}:{org.pk}").uniform(0.96, 1.05)
        low, high = band(market)
        increment = sale.increment_amount or D(1)
        value = min(max(self.level(market) * D(str(round(personal, 4))), low), high)
        return _down(value, increment)

    def _bid_some(self) -> None:
        now = timezone.now()
        sales = list(
            Sale.objects.filter(
                status=SaleStatus.ACTIVE, mode=TradeMode.AUCTION, lot__created_by_id__in=self.cast.bot_ids,
                lot__status=LotStatus.PUBLISHED, starts_at__lte=now, closes_at__gt=now,
            ).order_by("pk")
        )  # fmt: skip
        wanted = min(self.rng.choice(BIDS_PER_TICK), len(sales))
        chosen: list[Sale] = []
        while len(chosen) < wanted:
            pool = [s for s in sales if s not in chosen]
            weights = [4 if s.closes_at - now < timedelta(minutes=5) else 1 for s in pool]
            chosen.append(self.rng.choices(pool, weights=weights)[0])
        for sale in chosen:
            self._bid(sale)

    def _bid(self, sale: Sale) -> None:
        lot = Lot.objects.select_related("category").get(pk=sale.lot_id)
        market = market_of(lot.category_id)
        if market is None:
            return
        keys = [k for k in self._buyers(market) if self.cast.orgs[k].pk != lot.seller_id]
        self.rng.shuffle(keys)
        for key in keys:
            org, bot = self.cast.orgs[key], self.cast.bots[key]
            current = Sale.objects.select_related("lot").get(pk=sale.pk)
            state = sale_state_for(current, org)
            if (
                current.status != SaleStatus.ACTIVE
                or state["you"]["leading"]
                or state["minimum_next"] is None
            ):
                continue
            value = self.valuation(current, org, market)
            amount = D(state["minimum_next"])
            if amount > value:
                continue
            if current.deposit_amount > 0 and not self._deposit(current, org, bot):
                continue
            jump = self.rng.choice((0, 0, 0, 1, 2))
            amount = min(amount + jump * (current.increment_amount or 0), value)
            # A proxy now and then; always while the reserve is not met (the market lifts a proxy
            # that reaches it straight to the reserve).
            maximum = value if state["reserve_met"] is False or self.rng.random() < 0.35 else None
            state = self._attempt(
                "bid",
                lambda org=org, bot=bot, amount=amount, maximum=maximum: trading.bid_place(
                    actor=bot, organisation=org, lot_id=lot.pk, amount=amount, maximum=maximum
                ),
            )
            if state is not None:
                self.summary.bids += 1
                self._note(
                    f"bid ¥{amount}/t on lot {lot.pk} for {org.short_name}"
                    + (f" (proxy up to ¥{maximum})" if maximum else "")
                    + f": price now ¥{state['current_price']}"
                )
                return

    def _deposit(self, sale: Sale, org: Organisation, bot: User) -> bool:
        """The bidder's deposit, paid by bank transfer and confirmed by the operator."""
        deposit = Deposit.objects.filter(sale=sale, organisation=org).first()
        if deposit is None:
            deposit = self._attempt(
                "deposit", lambda: trading.deposit_create(actor=bot, organisation=org, lot_id=sale.lot_id)
            )
            if deposit is None:
                return False
        if deposit.status == DepositStatus.PENDING:
            reference = f"SIM{deposit.pk:08d}"
            deposit = self._attempt(
                "deposit confirm",
                lambda: trading.deposit_confirm(
                    actor=self.cast.operator, deposit=deposit, reference=reference
                ),
            )
            if deposit is None:
                return False
            self.summary.deposits += 1
            self._note(f"deposit ¥{deposit.amount} of {org.short_name} confirmed on lot {sale.lot_id}")
        return deposit.status == DepositStatus.PAID

    # --- closing ------------------------------------------------------------------------------

    def _close_due(self) -> None:
        """Auctions whose time is up, closed by the same idempotent close the sweeper calls."""
        due = Sale.objects.filter(
            status=SaleStatus.ACTIVE, lot__created_by_id__in=self.cast.bot_ids, closes_at__lte=timezone.now()
        ).values_list("pk", "lot_id")[:20]
        for sale_id, lot_id in due:
            outcome = self._attempt("close", lambda sale_id=sale_id: trading.sale_close(sale_id=sale_id))
            if outcome in ("closed", "failed"):
                self.summary.closed += 1
                self._note(f"auction of lot {lot_id} {outcome}")

    # --- deals --------------------------------------------------------------------------------

    def _move_deals(self) -> None:
        open_deals = list(
            Deal.objects.filter(
                lot__created_by_id__in=self.cast.bot_ids,
                status__in=[
                    DealStatus.AWAITING_PAYMENT, DealStatus.PAID, DealStatus.PICKUP_SCHEDULED, DealStatus.WEIGHED,
                    DealStatus.SETTLED,
                ],
            ).order_by("pk").values_list("pk", flat=True)
        )  # fmt: skip
        # Mostly the oldest deals move: they settle one after another, as people work through them,
        # and the floor keeps deals in every state.
        chosen: list[int] = []
        for _ in range(min(self.rng.choice(DEALS_PER_TICK), len(open_deals))):
            pool = [d for d in open_deals if d not in chosen]
            chosen.append(self.rng.choices(pool, weights=[1 / (1 + i) for i in range(len(pool))])[0])
        for deal_id in chosen:
            deal = Deal.objects.select_related("award", "lot", "category").get(pk=deal_id)
            self._deal_step(deal)

    def _human_buyer(self, deal: Deal) -> bool:
        """A visitor's enterprise won: the simulator does not act for the buyer."""
        if self.cast.bot_of(deal.buyer_id) is None or deal.award.sale_id is None:
            return True
        return (
            Bid.objects.filter(sale_id=deal.award.sale_id, organisation_id=deal.buyer_id, user__isnull=False)
            .exclude(user_id__in=self.cast.bot_ids)
            .exists()
        )

    def _step(self, deal: Deal, what: str, action) -> None:
        if self._attempt(f"deal {deal.number} {what}", action) is not None:
            self.summary.deal_steps += 1
            status = Deal.objects.filter(pk=deal.pk).values_list("status", flat=True).get()
            if status == DealStatus.SETTLED and deal.status != DealStatus.SETTLED:
                self.summary.settled += 1
            self._note(f"deal {deal.number}: {what} -> {status}")

    def _deal_step(self, deal: Deal) -> None:
        rng = self.rng
        operator = self.cast.operator
        seller = self.cast.bot_of(deal.seller_id)
        buyer = None if self._human_buyer(deal) else self.cast.bot_of(deal.buyer_id)
        submitted = deal.payments.filter(
            method=PaymentMethod.BANK_TRANSFER, status=PaymentStatus.SUBMITTED
        ).first()
        manifest = Manifest.objects.filter(deal=deal).first() if deal.hazardous else None
        if deal.status in (DealStatus.AWAITING_PAYMENT, DealStatus.WEIGHED) and submitted is not None:
            self._step(deal, "transfer confirmed by the operator",
                       lambda: deals.payment_confirm(actor=operator, payment=submitted))  # fmt: skip
        elif deal.status == DealStatus.AWAITING_PAYMENT:
            if buyer is not None:
                self._step(deal, "paid by bank transfer", lambda: self._pay(deal, buyer))
        elif deal.status == DealStatus.PAID:
            if buyer is not None:
                day = max(deal.pickup_from, timezone.localdate())
                plate = f"{rng.choice(PLATES)}{rng.randrange(10000, 99999)}"
                driver = rng.choice(DRIVERS)
                self._step(deal, "pickup booked", lambda: deals.pickup_book(
                    actor=buyer, deal=deal, date=day, vehicle_plate=plate, driver_name=driver,
                    driver_phone=f"139{rng.randrange(10000000, 99999999)}",
                ))  # fmt: skip
        elif deal.status == DealStatus.PICKUP_SCHEDULED:
            if deal.hazardous and manifest is None:
                if buyer is not None and seller is not None:
                    self._step(deal, "manifest opened", lambda: self._manifest(deal, buyer, seller))
            elif manifest is not None and manifest.generator_confirmed_at is None and seller is not None:
                self._step(deal, "manifest confirmed by the generator",
                           lambda: deals.manifest_confirm(actor=seller, deal=deal, role="generator"))  # fmt: skip
            else:
                weigher = seller if buyer is None or rng.random() < 0.6 else buyer
                if weigher is not None:
                    self._step(deal, "weighed", lambda: self._weigh(deal, weigher))
        elif deal.status == DealStatus.WEIGHED:
            awaiting = deal.weighings.filter(status=WeighingStatus.AWAITING).first()
            if manifest is not None and manifest.receiver_confirmed_at is None:
                if buyer is not None:
                    self._step(deal, "manifest confirmed by the receiver",
                               lambda: deals.manifest_confirm(actor=buyer, deal=deal, role="receiver"))  # fmt: skip
            elif awaiting is not None:
                other = seller if awaiting.recorded_by_party == "buyer" else buyer
                if other is not None:
                    self._step(deal, "weight confirmed", lambda: deals.deal_confirm(actor=other, deal=deal))
            elif buyer is not None and deals.deal_due(deal) > 0:
                self._step(deal, "top-up paid by bank transfer", lambda: self._pay(deal, buyer))
        elif deal.status == DealStatus.SETTLED:
            refund = Refund.objects.filter(deal=deal, status=RefundStatus.PENDING).first()
            if refund is not None:
                self._step(deal, f"refund ¥{refund.amount} sent by the operator",
                           lambda: deals.refund_succeeded(refund_id=refund.pk, actor=operator))  # fmt: skip
            elif buyer is not None:
                self._step(deal, "receipt confirmed", lambda: deals.deal_confirm(actor=buyer, deal=deal))

    def _pay(self, deal: Deal, buyer: User):
        payment = deals.payment_start(actor=buyer, deal=deal, method=PaymentMethod.BANK_TRANSFER)
        serial = f"{timezone.localdate():%Y%m%d}{self.rng.randrange(10**9, 10**10)}"
        return deals.payment_slip_submit(actor=buyer, payment=payment, reference=serial)

    def _manifest(self, deal: Deal, buyer: User, seller: User):
        deals.manifest_create(
            actor=buyer, deal=deal, transporter_name=TRANSPORTER[0], transporter_licence=TRANSPORTER[1],
            vehicle_plate=f"豫U{self.rng.randrange(10000, 99999)}", shipped_on=timezone.localdate(),
            packaging=deal.lot.get_packaging_display() if deal.lot else "",
        )  # fmt: skip
        deals.manifest_confirm(actor=seller, deal=deal, role="generator")
        return deals.manifest_confirm(actor=buyer, deal=deal, role="transporter")

    def _weigh(self, deal: Deal, weigher: User):
        """A weighbridge ticket within the tolerance: a little short (a refund) or over (a top-up)."""
        tolerance = float(settings.DEALS_WEIGHT_TOLERANCE)
        factor = 1 + self.rng.uniform(-0.6, 0.75) * tolerance
        net = (deal.quantity * D(str(round(factor, 5)))).quantize(D("0.001"))
        tare = (
            D(str(round(self.rng.uniform(14.5, 19.5), 3)))
            if net > 40
            else D(str(round(self.rng.uniform(6, 9), 3)))
        )
        return deals.weighing_record(
            actor=weigher, deal=deal, ticket_no=f"BD{deal.pk:05d}{self.rng.randrange(10, 99)}",
            gross_t=net + tare, tare_t=tare,
        )  # fmt: skip


# --- entry points ---------------------------------------------------------------------------


def simulate_tick(rng: random.Random | None = None, pace: Pace | None = None) -> dict:
    """One tick, unless another one is running or the demo is not loaded. Returns its summary."""
    pace = pace or Pace.from_settings()
    if not cache.add(LOCK_KEY, 1, timeout=max(60, pace.interval_s * 3)):
        logger.info("simulator: the previous tick is still running, skipped")
        return Summary(skipped="busy").as_dict()
    try:
        cast = cast_load()
        if cast is None:
            logger.info("simulator: the demo market is not loaded (manage.py demo_load); nothing to do")
            return Summary(skipped="no_demo").as_dict()
        summary = Simulator(cast, rng or random.Random(), pace).tick()
        logger.info(
            "simulator tick: %s listed, %s bids, %s closed, %s deal steps (%s settled), %s refused, %s errors",
            summary.listed, summary.bids, summary.closed, summary.deal_steps, summary.settled,
            summary.refused, summary.errors,
        )  # fmt: skip
        return summary.as_dict()
    finally:
        cache.delete(LOCK_KEY)
