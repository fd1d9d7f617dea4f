"""Price history for the demo market: two years of settled trades up to yesterday, imported as the
market's history (``source="import"``), then the statistics rollups and the price indices rebuilt
over the span, so the index pages, the home ticker and the dashboards have something true to show.

Each market (a catalogue category) follows its own random walk in log price, pulled back towards the
middle of a realistic band (heavy scrap 2,300-2,900 yuan/t, copper scrap 50,000-60,000, OCC paper
1,300-1,800, fly ash 30-120 ...), with a common factor shared by the metals. The main markets trade
most business days among several sellers and buyers (status T); the minor ones go through quiet
and dry spells, so their series show window prices (E), carried values (C) and stale ones (S).
Now and then a mistyped price lands on a busy day and is left out by the outlier rule, so the audit
lists have an exclusion with its reason to show.

The parties are the demo enterprises of ``frontend.demo`` and, for the part of the history traded
before they joined, a handful of enterprises that are not on the platform (their USCCs only, as an
import from the previous system would have them). Trades are placed in counties of 河北, 江苏, 广东,
山东, 浙江, 四川 and the provinces of the demo enterprises.

Deterministic (one seeded generator; the same span gives the same trades) and idempotent: the
trades are keyed ``demo-hist-<n>`` and are made only when none exists; the indices only when the
history's span has none. The trades with their rollups are one transaction and the indices another
(``indices_rebuild``), so an interrupted load leaves nothing half made and the next load finishes
it. The facts are bulk-inserted with the amounts ``trade_record`` would compute (quantity × unit
price, rounded half up to the fen); ``trade_record`` one by one would take minutes on SQLite.

Cost: the indices dominate (every category node × national, province and economic-zone series ×
business day); ``DEMO_PRICE_HISTORY_DAYS`` (settings or environment) shortens the history.
"""

import logging
import math
import os
import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min
from django.utils import timezone

from frontend.demo import ORGANISATIONS
from market.accounts.uscc import uscc_make
from pricing import methodology as m
from pricing.models import TradeFact, TradeSource
from pricing.services import trade_amount

logger = logging.getLogger(__name__)

SEED = 20261201
PREFIX = "demo-hist-"
HISTORY_DAYS = 730  # two years; settings.DEMO_PRICE_HISTORY_DAYS overrides it (the demo test uses less)
SHANGHAI = ZoneInfo("Asia/Shanghai")
LAUNCH_DAYS = 45  # business days at the start when every market trades briskly (gives each series a base)

# Enterprises of the imported history that are not on the platform: key -> (county, org code).
OUTSIDE = {
    "x.tangshan_dismantle": ("130207", "MA0HT0001"),  # 唐山 scrap dismantler
    "x.rizhao_steel": ("371102", "MA0HT0002"),  # 日照 steel mill
    "x.yixing_steel": ("320282", "MA0HT0003"),  # 宜兴 special steel
    "x.wuan_steel": ("130481", "MA0HT0004"),  # 武安 steel mill
    "x.cixi_copper": ("330282", "MA0HT0005"),  # 慈溪 copper rod
    "x.panyu_copper": ("440113", "MA0HT0006"),  # 番禺 copper processing
    "x.jiaozhou_alu": ("370281", "MA0HT0007"),  # 胶州 secondary aluminium
    "x.chengdu_recycle": ("510112", "MA0HT0008"),  # 成都 recycling station
    "x.xinbei_baler": ("320411", "MA0HT0009"),  # 常州 paper baler
    "x.huangdao_paper": ("370211", "MA0HT0010"),  # 青岛 paper mill
    "x.haining_paper": ("330481", "MA0HT0011"),  # 海宁 paper mill
    "x.haining_fibre": ("330481", "MA0HT0012"),  # 海宁 polyester fibre
    "x.guanghan_plastics": ("510681", "MA0HT0013"),  # 广汉 plastics recycler
    "x.zoucheng_power": ("370883", "MA0HT0014"),  # 邹城 power plant
    "x.xinwu_power": ("320214", "MA0HT0015"),  # 无锡 power plant
    "x.linyi_cement": ("371302", "MA0HT0016"),  # 临沂 cement
    "x.fengfeng_building": ("130406", "MA0HT0017"),  # 邯郸 building materials
    "x.jieshou_lead": ("341282", "MA0HT0018"),  # 界首 secondary lead
    "x.jiyuan_lead": ("419001", "MA0HT0019"),  # 济源 secondary lead
    "x.wuzhong_recycle": ("320506", "MA0HT0020"),  # 苏州 recycling yard
}


@dataclass(frozen=True)
class Market:
    category: str
    low: int  # the band the walk stays in (yuan per tonne)
    high: int
    sigma: float  # daily volatility of the log price
    rate: float  # trades per business day, on average
    tonnes: tuple[int, int]  # the usual lot, low and high (weighed quantities vary around them)
    places: tuple[tuple[str, int], ...]  # (county, weight)
    sellers: tuple[str, ...]
    buyers: tuple[str, ...]
    tick: Decimal = Decimal(1)  # prices are quoted in steps of this
    minor: bool = False  # quiet and dry spells (E, C and S values)
    metal: bool = False  # moves with the metals' common factor
    outliers: bool = False  # a mistyped price now and then


D = Decimal
MARKETS = [
    Market(
        "ferrous.heavy", 2300, 2900, 0.009, 5.5, (60, 180),
        (("130207", 4), ("130481", 2), ("320282", 3), ("320506", 1)),
        ("machinery", "chongqing", "x.tangshan_dismantle", "x.wuzhong_recycle", "x.chengdu_recycle"),
        ("steel", "scrapyard", "x.rizhao_steel", "x.yixing_steel", "x.wuan_steel"),
        metal=True, outliers=True,
    ),
    Market(
        "ferrous.shredded", 2450, 3050, 0.009, 1.2, (80, 240),
        (("130207", 2), ("130481", 1)),
        ("scrapyard", "x.tangshan_dismantle", "x.wuzhong_recycle"),
        ("steel", "x.yixing_steel", "x.wuan_steel"),
        minor=True, metal=True,
    ),
    Market(
        "nonferrous.copper", 50000, 60000, 0.011, 4.2, (8, 25),
        (("331004", 3), ("330282", 1)),
        ("machinery", "scrapyard", "chongqing", "x.wuzhong_recycle"),
        ("copper", "x.cixi_copper", "x.panyu_copper"),
        tick=D(10), metal=True, outliers=True,
    ),
    Market(
        "nonferrous.aluminium", 13000, 16000, 0.010, 4.2, (10, 30),
        (("440606", 3), ("440113", 1)),
        ("machinery", "scrapyard", "chongqing", "paper", "x.wuzhong_recycle"),
        ("aluminium", "x.jiaozhou_alu", "x.panyu_copper"),
        tick=D(10), metal=True,
    ),
    Market(
        "paper.occ", 1300, 1800, 0.008, 4.2, (40, 120),
        (("441900", 3), ("440113", 1)),
        ("chongqing", "scrapyard", "x.chengdu_recycle", "x.xinbei_baler", "x.wuzhong_recycle"),
        ("paper", "x.huangdao_paper", "x.haining_paper"),
    ),
    Market(
        "plastics.pet", 4500, 6500, 0.010, 1.2, (12, 36),
        (("510112", 2), ("510681", 1)),
        ("chongqing", "paper", "x.chengdu_recycle", "x.xinbei_baler"),
        ("wuhan", "x.haining_fibre", "x.guanghan_plastics"),
        tick=D(10), minor=True,
    ),
    Market(
        "bulk.fly_ash", 30, 120, 0.012, 1.2, (500, 1500),
        (("140602", 3), ("370883", 1)),
        ("power", "x.zoucheng_power", "x.xinwu_power"),
        ("cement", "x.linyi_cement", "x.fengfeng_building"),
        tick=D("0.5"), minor=True,
    ),
    Market(
        "bulk.slag.steel", 20, 60, 0.012, 0.9, (800, 2400),
        (("130207", 3), ("130481", 1)),
        ("steel", "x.yixing_steel", "x.wuan_steel"),
        ("cement", "x.linyi_cement", "x.fengfeng_building"),
        tick=D("0.5"), minor=True,
    ),
    Market(
        "bulk.gypsum.fgd", 10, 40, 0.013, 0.8, (600, 1800),
        (("140602", 1),),
        ("power", "x.zoucheng_power", "x.xinwu_power"),
        ("cement", "x.linyi_cement", "x.fengfeng_building"),
        tick=D("0.5"), minor=True,
    ),
    Market(
        "batteries.lead_acid", 8000, 10000, 0.009, 1.0, (15, 45),
        (("419001", 1),),
        ("battery", "chongqing", "x.wuzhong_recycle"),
        ("lead", "x.jieshou_lead", "x.jiyuan_lead"),
        tick=D(10), minor=True, metal=True,
    ),
]  # fmt: skip

# Quiet and dry spells of the minor markets: daily moves between regimes and each one's activity.
REGIMES = {
    "active": (1.6, {"active": 0.955, "quiet": 0.035, "dry": 0.01}),
    "quiet": (0.3, {"active": 0.06, "quiet": 0.91, "dry": 0.03}),
    "dry": (0.0, {"active": 0.07, "quiet": 0.0, "dry": 0.93}),
}


def parties() -> dict[str, str]:
    """Every key the markets name -> USCC."""
    out = {spec.key: uscc_make(spec.county, spec.org_code) for spec in ORGANISATIONS}
    out.update({key: uscc_make(county, code) for key, (county, code) in OUTSIDE.items()})
    return out


def _poisson(rng: random.Random, rate: float) -> int:
    if rate <= 0:
        return 0
    limit, k, p = math.exp(-rate), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _pick(rng: random.Random, weighted: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([k for k, _ in weighted], weights=[w for _, w in weighted])[0]


def _price(value: float, tick: Decimal) -> Decimal:
    steps = max(1, round(value / float(tick)))
    return Decimal(steps) * tick


def _tonnes(rng: random.Random, low: int, high: int) -> Decimal:
    """A weighed net quantity: log-uniform over the usual lots, to the kilogram."""
    q = math.exp(rng.uniform(math.log(low), math.log(high)))
    return Decimal(round(q * 1000)) / 1000


def business_days(start: date, end: date, holidays) -> list[date]:
    days, d = [], start
    while d <= end:
        if m.is_business_day(d, holidays):
            days.append(d)
        d += timedelta(days=1)
    return days


def market_of(category_code: str) -> Market | None:
    """The market a catalogue category trades in: its own, or its nearest ancestor's."""
    best = None
    for market in MARKETS:
        covers = category_code == market.category or category_code.startswith(f"{market.category}.")
        if covers and (best is None or len(market.category) > len(best.category)):
            best = market
    return best


def walk_clamp(market: Market, x: float) -> float:
    """A log price put back inside the market's band."""
    return min(max(x, math.log(market.low)), math.log(market.high))


def walk_start(market: Market, rng: random.Random) -> float:
    """A starting log price: somewhere in the middle half of the band."""
    centre = (math.log(market.low) + math.log(market.high)) / 2
    half = (math.log(market.high) - math.log(market.low)) / 2
    return centre + rng.uniform(-0.5, 0.5) * half


def walk_step(market: Market, x: float, common: float, rng: random.Random, dt: float = 1.0) -> float:
    """One step of the market's price: an Ornstein-Uhlenbeck walk in log price, pulled towards the
    middle of the band and reflected at its edges. ``common`` is the metals' shared shock of the
    step; ``dt`` the step's length in business days (the live demo's simulator takes small steps)."""
    lo, hi = math.log(market.low), math.log(market.high)
    centre = (lo + hi) / 2
    shock = 0.6 * common + 0.8 * rng.gauss(0, 1) if market.metal else rng.gauss(0, 1)
    x = x + 0.02 * dt * (centre - x) + market.sigma * math.sqrt(dt) * shock
    if x < lo or x > hi:  # reflect at the band's edges
        x = 2 * lo - x if x < lo else 2 * hi - x
    return walk_clamp(market, x)


def history_generate(days: list[date], now: datetime) -> list[TradeFact]:
    """The trades of ``days`` (unsaved facts, numbered in order). Pure: no database."""
    rng = random.Random(SEED)
    usccs = parties()
    walk = {market.category: walk_start(market, rng) for market in MARKETS}
    regime = {market.category: "active" for market in MARKETS}
    facts: list[TradeFact] = []
    for index, day in enumerate(days):
        common = rng.gauss(0, 1)
        for market in MARKETS:
            # The price: an Ornstein-Uhlenbeck walk in log price, kept inside its band.
            x = walk[market.category] = walk_step(market, walk[market.category], common, rng)
            # How many trades today.
            rate = market.rate
            if index < LAUNCH_DAYS:
                rate = max(rate, 3.5)
            elif market.minor:
                factor, moves = REGIMES[regime[market.category]]
                regime[market.category] = rng.choices(list(moves), weights=list(moves.values()))[0]
                rate *= factor
            n = _poisson(rng, rate)
            typo = market.outliers and n >= 6 and rng.random() < 0.05
            # Different firms trade on a day: the parties take turns in an order drawn for the day.
            sellers = rng.sample(market.sellers, len(market.sellers))
            buyers = rng.sample(market.buyers, len(market.buyers))
            for i in range(n):
                seller = sellers[i % len(sellers)]
                buyer = buyers[i % len(buyers)]
                if buyer == seller:
                    buyer = buyers[(i + 1) % len(buyers)]
                price = math.exp(x + rng.gauss(0, 0.012))
                if typo and i == n - 1:
                    price *= rng.choice((0.55, 1.6))  # a digit dropped or doubled when keyed in
                quantity = _tonnes(rng, *market.tonnes)
                unit_price = _price(price, market.tick)
                # Settled (paid and weighed) on ``day`` before the cut-off; awarded 1 to 10 days before.
                settled = datetime.combine(day, time(8, 30), tzinfo=SHANGHAI) + timedelta(
                    minutes=rng.randrange(0, 470)
                )
                awarded = datetime.combine(
                    day - timedelta(days=rng.randint(1, 10)), time(8, 30), tzinfo=SHANGHAI
                ) + timedelta(minutes=rng.randrange(0, 540))
                facts.append(
                    TradeFact(
                        trade_id=f"{PREFIX}{len(facts) + 1:06d}",
                        source=TradeSource.IMPORT,
                        awarded_at=awarded,
                        settled_at=min(settled, now),
                        category_id=market.category,
                        region_id=_pick(rng, market.places),
                        seller_uscc=usccs[seller],
                        buyer_uscc=usccs[buyer],
                        quantity_t=quantity,
                        unit_price=unit_price,
                        amount=trade_amount(quantity, unit_price),
                    )
                )
    return facts


def history_days() -> int:
    """How many calendar days of history: ``DEMO_PRICE_HISTORY_DAYS`` from the settings or the
    environment, else two years."""
    value = getattr(settings, "DEMO_PRICE_HISTORY_DAYS", None) or os.environ.get("DEMO_PRICE_HISTORY_DAYS")
    return int(value or HISTORY_DAYS)


def history_span(today: date | None = None) -> tuple[date, date]:
    """The first and last day of the history: ``history_days()`` back from yesterday."""
    today = today or timezone.localdate()
    end = today - timedelta(days=1)
    return end - timedelta(days=history_days() - 1), end


def _loaded_span() -> tuple[date, date] | None:
    """The business days the loaded history covers (its first and last settlement day)."""
    bounds = TradeFact.objects.filter(trade_id__startswith=PREFIX).aggregate(
        first=Min("settled_at"), last=Max("settled_at")
    )
    if bounds["first"] is None:
        return None
    return timezone.localdate(bounds["first"]), timezone.localdate(bounds["last"])


def demo_pricing_load(progress=None) -> int:
    """Load the price history once and build its statistics and indices; returns how many trades
    were created. Idempotent and resumable: the trades (with the rollups of their months) are one
    transaction, the indices another, each done only when missing."""
    from pricing.index_models import IndexValue
    from pricing.indices import indices_rebuild, params
    from pricing.rollups import rollups_rebuild

    created = 0
    if not TradeFact.objects.filter(trade_id__startswith=PREFIX).exists():
        start, end = history_span()
        days = business_days(start, end, params().holidays)
        if not days:
            return 0
        facts = history_generate(days, timezone.now())
        with transaction.atomic():
            TradeFact.objects.bulk_create(facts, batch_size=2000)
            # The statistics rollups of the months the history covers (each month is rebuilt whole
            # from every fact in it, so trades already recorded there are counted once).
            rollups_rebuild(days[0], days[-1], restart=True)
        created = len(facts)
    span = _loaded_span()
    if span is None or IndexValue.objects.filter(day__gte=span[0], day__lte=span[1]).exists():
        return created
    try:
        indices_rebuild(span[0], span[1], progress=progress)
    except Exception:  # the trades stay; the next demo_load builds the indices again
        logger.exception("demo price history: the indices could not be built from %s to %s", *span)
    return created
