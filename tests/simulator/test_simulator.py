"""The living demo's simulator: ticks with a fixed seed list lots, bid, close auctions and settle
deals through the real services on the real PostgreSQL; prices stay in each market's band; visitors'
lots are never touched; with the setting off nothing happens."""

import math
import random
import runpy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.db import transaction
from django.utils import timezone

from frontend.demo import ORGANISATIONS, demo_steps
from frontend.demo_pricing import MARKETS, market_of, walk_start
from frontend.simulator import (
    BOT_PREFIX,
    DAY_S,
    MIN_OPEN,
    Pace,
    Simulator,
    cast_load,
    increment_for,
    levels_step,
    simulate_tick,
)
from frontend.tasks import demo_simulator_tick
from listings import services as listings
from listings.models import Lot, LotStatus, TradeMode
from market.accounts.models import Organisation, User
from market.core.models import AuditEntry
from market.deals.models import Deal, DealStatus, ManifestStatus
from market.trading import services as trading
from market.trading.models import Award, Bid, Sale, SaleStatus
from pricing.models import TradeFact

pytestmark = pytest.mark.django_db
SETTINGS = Path(__file__).resolve().parent.parent.parent / "market" / "settings.py"


@pytest.fixture
def demo_enterprises():
    """The demo's operator, enterprises (members, licences) and government offices: the loader's
    first steps, without its lots, deals and price history (the simulator needs none of them)."""
    for _label, step in demo_steps()[: len(ORGANISATIONS) + 2]:
        step()


@pytest.fixture
def tick(django_capture_on_commit_callbacks):
    """``tick(n, rng)``: n ticks, each committed as in production (after-commit work runs)."""

    def run(n: int, rng: random.Random, pace: Pace | None = None) -> list[dict]:
        out = []
        for _ in range(n):
            with django_capture_on_commit_callbacks(execute=True):
                out.append(simulate_tick(rng=rng, pace=pace))
        return out

    return run


def simulated():
    bots = User.objects.filter(email__startswith=BOT_PREFIX)
    return Lot.objects.filter(created_by__in=bots)


def in_band(category_code: str, price: Decimal) -> bool:
    market = market_of(category_code)
    return market is not None and market.low <= price <= market.high


def test_ticks_list_bid_close_and_settle_within_the_bands(demo_enterprises, tick, settings):
    settings.DEMO_SIMULATOR = True
    rng = random.Random(20261201)
    # A visitor, logged in as the steel mill's admin, lists a lot of its own: never the simulator's.
    steel_admin = User.objects.get(email="steel@demo.market")
    steel = Organisation.objects.get(memberships__user=steel_admin)
    today = timezone.localdate()
    own = listings.lot_create(
        actor=steel_admin, organisation=steel, category="ferrous.heavy", title="访客自己的重废 100 吨",
        quantity="100", unit="t", region=steel.region_id, address=steel.address, available_from=today,
        pickup_by=today + timedelta(days=30),
    )  # fmt: skip
    trading.sale_configure(
        actor=steel_admin, lot=own, mode=TradeMode.AUCTION, ends_at=timezone.now() + timedelta(minutes=20),
        start_price="2000", increment_amount="10",
    )  # fmt: skip
    listings.lot_submit(actor=steel_admin, lot=own)

    # Listing and bidding: the floor fills up to a few open auctions, bids raise the prices.
    first = tick(9, rng)
    assert all(s["errors"] == 0 and not s["skipped"] for s in first), first
    lots = simulated()
    assert MIN_OPEN <= lots.count() <= settings.DEMO_SIMULATOR_MAX_LOTS
    assert not lots.exclude(status=LotStatus.PUBLISHED).exists()
    for lot in lots:
        sale = Sale.objects.get(lot=lot)
        assert sale.mode == TradeMode.AUCTION and sale.status == SaleStatus.ACTIVE
        assert timedelta(minutes=10) <= sale.ends_at - sale.starts_at <= timedelta(minutes=30, seconds=5)
        assert sale.max_closes_at > sale.ends_at and sale.extend_window_s > 0  # soft close
    assert sum(s["bids"] for s in first) >= 5
    bids = Bid.objects.filter(sale__lot__in=lots)
    assert bids.exists()
    assert not bids.exclude(user__isnull=True).exclude(user__email__startswith=BOT_PREFIX).exists()
    raised = [
        s for s in Sale.objects.filter(lot__in=lots) if s.current_price and s.current_price > s.start_price
    ]
    assert raised, "bids raised no price"
    assert len({lot.category_id.split(".")[0] for lot in lots}) >= 2

    # Time runs out: the next tick closes the ended auctions into awards, each with its deal.
    make_due(lots)
    closing = tick(1, rng)[0]
    assert closing["closed"] >= MIN_OPEN and closing["errors"] == 0
    awards = Award.objects.filter(lot__in=lots)
    assert awards.exists()
    assert Deal.objects.filter(award__in=awards).count() == awards.count()

    # Deals move a step at a time until trades settle into price facts.
    for _ in range(40):
        tick(1, rng)
        if TradeFact.objects.filter(trade_id__startswith="deal:").exists():
            break
    facts = TradeFact.objects.filter(trade_id__startswith="deal:")
    assert facts.exists()
    deals = Deal.objects.filter(lot__in=lots)
    settled = deals.filter(status__in=[DealStatus.SETTLED, DealStatus.COMPLETED])
    assert {f"deal:{d.pk}" for d in settled} == set(facts.values_list("trade_id", flat=True))
    assert not deals.filter(status__in=[DealStatus.DISPUTED, DealStatus.DEFAULTED]).exists()

    # Every price the simulator made is inside its market's band.
    for sale in Sale.objects.filter(lot__in=simulated()).select_related("lot"):
        assert in_band(sale.lot.category_id, sale.start_price), sale
        for amount in Bid.objects.filter(sale=sale).values_list("amount", flat=True):
            assert in_band(sale.lot.category_id, amount), (sale, amount)
    for award in Award.objects.filter(lot__in=simulated()):
        assert in_band(award.category_id, award.unit_price), award
    for fact in facts:
        assert in_band(fact.category_id, fact.unit_price), fact

    # The visitor's lot: no bids, still on sale.
    own.refresh_from_db()
    assert own.bid_count == 0 and own.status == LotStatus.PUBLISHED
    assert Sale.objects.get(lot=own).status == SaleStatus.ACTIVE


def make_due(lots) -> None:
    """The auctions' time is up (as in tests/trading: the clock moved, not the simulator)."""
    now = timezone.now()
    Sale.objects.filter(lot__in=lots, status=SaleStatus.ACTIVE).update(
        starts_at=now - timedelta(hours=1), closes_at=now - timedelta(seconds=1)
    )


def test_a_hazardous_lot_goes_through_review_licence_and_manifest(
    demo_enterprises, tick, settings, django_capture_on_commit_callbacks
):
    settings.DEMO_SIMULATOR = True
    rng = random.Random(3)
    pace = Pace(max_lots=1)  # this lot only: the floor stays quiet around it
    simulator = Simulator(cast_load(), rng, pace)
    with django_capture_on_commit_callbacks(execute=True):
        lot = simulator.list_lot(market_of("batteries.lead_acid"))
    lot.refresh_from_db()
    assert lot.hazardous and lot.status == LotStatus.PUBLISHED
    review = AuditEntry.objects.filter(
        action="lot.publish", target_type="listings.lot", target_id=str(lot.pk)
    ).get()
    assert review.actor.email == "operator@demo.market"  # hazardous: published by the operator

    tick(3, rng, pace)
    licensed = Organisation.objects.get(short_name="金利铅业")  # the only demo holder of HW31
    assert set(Bid.objects.filter(sale__lot=lot).values_list("organisation_id", flat=True)) == {licensed.pk}
    make_due([lot])
    for _ in range(15):
        tick(1, rng, pace)
        deal = Deal.objects.filter(lot=lot).first()
        if deal is not None and deal.status in (DealStatus.SETTLED, DealStatus.COMPLETED):
            break
    assert deal.buyer_id == licensed.pk and deal.status in (DealStatus.SETTLED, DealStatus.COMPLETED)
    assert deal.manifest.status == ManifestStatus.COMPLETED
    fact = TradeFact.objects.get(trade_id=f"deal:{deal.pk}")
    assert fact.category_id == "batteries.lead_acid" and in_band(fact.category_id, fact.unit_price)


def test_the_same_seed_makes_the_same_market(demo_enterprises, settings):
    settings.DEMO_SIMULATOR = True

    def listed(seed: int) -> list[tuple]:
        # One tick: later ticks also read the clock (which auctions are near their end), so only the
        # first is a function of the seed alone.
        cache.clear()  # the price walk starts afresh (no trades recorded: from the seed)
        rng = random.Random(seed)
        with transaction.atomic():
            simulate_tick(rng=rng)
            out = list(
                simulated().order_by("pk").values_list("category_id", "quantity", "sales__start_price")
            )
            transaction.set_rollback(True)
        return out

    first = listed(5)
    assert len(first) == 1 and all(in_band(code, price) for code, _q, price in first)
    assert listed(5) == first
    assert listed(6) != first


def test_the_walk_stays_in_its_band_and_moves():
    levels = {m.category: walk_start(m, random.Random(1)) for m in MARKETS}
    rng = random.Random(2)
    seen = {m.category: set() for m in MARKETS}
    for _ in range(2000):  # about 67 business days of moves at one tick every 20 s
        levels = levels_step(levels, rng, dt=20 / DAY_S)
        for m in MARKETS:
            price = math.exp(levels[m.category])
            assert m.low <= price <= m.high
            seen[m.category].add(round(price / m.low, 2))
    assert all(len(v) > 5 for v in seen.values())
    assert increment_for(Decimal("2650"), Decimal(1)) == 10
    assert increment_for(Decimal("55000"), Decimal(10)) == 200
    assert increment_for(Decimal("75"), Decimal("0.5")) == Decimal("0.5")


def test_with_the_setting_off_the_task_does_nothing(demo_enterprises, settings):
    settings.DEMO_SIMULATOR = False
    assert demo_simulator_tick() == {"skipped": "off"}
    assert not simulated().exists() and not User.objects.filter(email__startswith=BOT_PREFIX).exists()
    with pytest.raises(CommandError, match="DEMO_SIMULATOR is off"):
        call_command("simulate", ticks=1)

    settings.DEMO_SIMULATOR = True
    summary = demo_simulator_tick()
    assert summary["listed"] == 1 and summary["errors"] == 0
    assert simulated().count() == 1


def test_without_the_demo_a_tick_logs_and_returns(settings):
    settings.DEMO_SIMULATOR = True
    assert demo_simulator_tick()["skipped"] == "no_demo"
    assert not Lot.objects.exists()


def test_the_command_runs_ticks(demo_enterprises, settings, capsys):
    settings.DEMO_SIMULATOR = False
    call_command("simulate", ticks=2, seed=11, force=True)
    out = capsys.readouterr().out
    assert "tick 1: listed lot" in out and "listed 2" in out
    assert simulated().count() == 2


def test_the_demo_setting_is_on_only_in_the_embedded_demo(tmp_path, monkeypatch):
    """The settings module read afresh under each environment: on with `make run` (DEBUG, no
    REDIS_URL), off with Redis (a real deployment), in production and when switched off."""
    for name in ("DEBUG", "REDIS_URL", "DATABASE_URL", "DEMO_SIMULATOR", "SECRET_KEY", "ALLOWED_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARKET_VAR_DIR", str(tmp_path))

    def read(**env):
        with monkeypatch.context() as m:
            for name, value in env.items():
                m.setenv(name, value)
            values = runpy.run_path(str(SETTINGS))
        return values["DEMO_SIMULATOR"], "demo-simulator-tick" in values["CELERY_BEAT_SCHEDULE"]

    assert read(DEBUG="1") == (True, True)
    assert read(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/13") == (False, False)
    assert read(SECRET_KEY="x" * 50, ALLOWED_HOSTS="market.example.cn") == (False, False)
    assert read(DEBUG="1", DEMO_SIMULATOR="0") == (False, False)
    assert read(DEBUG="1", REDIS_URL="redis://127.0.0.1:6379/13", DEMO_SIMULATOR="1") == (True, True)
