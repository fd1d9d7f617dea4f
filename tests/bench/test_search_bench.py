"""Search latency on a large market, beside a primary-key lookup measured in the same run.

Run with ``make bench`` (never in ``make test``). ``BENCH_LOTS`` sets the number of lots (200,000 by
default). The figures are printed and written to ``test-results/bench-search.json``; they are
reported as ratios to the baseline, never asserted as times.

The database backend caches the facet counts and total of a filter until any lot changes
(``listings.search.facets_cache``), so each query is measured twice: *cold* (the cached counts made
void before every sample, as after a change of any lot: counts and page computed) and *warm*
(repeats of the same filter: the page computed, the counts from the cache). Both are reported; the
first search of each query (untimed) fills the cache.
"""

import json
import os
import random
import statistics
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone

from listings.models import Category, Lot, LotStatus, TradeMode
from listings.search import LotQuery, get_backend
from listings.search.facets_cache import lots_changed
from market.core.models import Region
from tests.factories import make_organisation

# Committed rows, as in a running market: the bench vacuums the table after loading it, as
# autovacuum would within a minute, so index-only scans see an up-to-date visibility map.
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

LOTS = int(os.environ.get("BENCH_LOTS", "200000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "30"))
ADJECTIVES = [
    "优质",
    "长期供应",
    "现货",
    "厂内自提",
    "过磅结算",
    "可开专票",
    "整批出售",
    "急售",
    "月度合同",
    "大量",
]

QUERIES = {
    "text 废钢": {"q": "废钢"},
    "text 重废 (trade shorthand)": {"q": "重废"},
    "text 粉煤灰 江苏": {"q": "粉煤灰 江苏"},
    "text copper": {"q": "copper"},
    "text 光亮铜 + province": {"q": "光亮铜", "region": "320000"},
    "category nonferrous (descendants)": {"category": "nonferrous"},
    "region city 唐山": {"region": "130200"},
    "zone + hazardous": {"zone": "yangtze-river-delta", "hazardous": "true"},
    "closing within 48 h, by closing": {"closing_within": "48", "sort": "closing"},
    "quantity and price range, by price": {
        "qmin": "100",
        "qmax": "2000",
        "pmin": "2000",
        "pmax": "3000",
        "sort": "price_asc",
    },
    "browse newest, page 5": {"page": "5"},
    "within 300 km of 唐山": {"lat": "39.63", "lon": "118.18", "km": "300", "category": "ferrous"},
}


def percentile(values, pct):
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def timed(fn, repeat, before=None):
    samples = []
    for _ in range(repeat):
        if before is not None:
            before()  # untimed
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def generate(n: int) -> list[int]:
    rng = random.Random(42)
    leaves = [c for c in Category.objects.filter(is_active=True) if not c.children.exists() and c.unit == "t"]
    counties = list(Region.objects.filter(level="county").values_list("code", flat=True))
    sellers = [
        make_organisation(region=rng.choice(counties), name=f"基准测试单位{i}有限公司") for i in range(50)
    ]
    now, today = timezone.now(), timezone.localdate()
    batch, ids = [], []
    for _ in range(n):
        cat = rng.choice(leaves)
        qty = Decimal(rng.randrange(5, 5000))
        mode = rng.choice(list(TradeMode.values))
        batch.append(
            Lot(
                seller=rng.choice(sellers),
                category=cat,
                title=f"{rng.choice(ADJECTIVES)}{cat.name} {qty} 吨",
                description=f"{cat.name}，{rng.choice(ADJECTIVES)}，{rng.choice(ADJECTIVES)}。",
                quantity=qty,
                unit="t",
                region_id=rng.choice(counties),
                address="厂区",
                available_from=today,
                pickup_by=today + timedelta(days=30),
                hazardous=cat.hazardous,
                status=LotStatus.PUBLISHED if rng.random() < 0.9 else LotStatus.CLOSED,
                published_at=now - timedelta(minutes=rng.randrange(0, 60 * 24 * 90)),
                trade_mode=mode,
                current_price=Decimal(rng.randrange(10, 70000)),
                closes_at=now + timedelta(hours=rng.randrange(1, 24 * 30))
                if mode != TradeMode.FIXED
                else None,
            )
        )
        if len(batch) == 5000:
            ids += [lot.pk for lot in Lot.objects.bulk_create(batch)]
            batch = []
    if batch:
        ids += [lot.pk for lot in Lot.objects.bulk_create(batch)]
    return ids


def test_search_latency_against_a_primary_key_lookup():
    backend = get_backend()
    started = time.perf_counter()
    ids = generate(LOTS)
    backend.index_lots(ids)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE listings_lot")
    setup_s = time.perf_counter() - started

    rng = random.Random(7)
    baseline = timed(lambda: Lot.objects.get(pk=rng.choice(ids)), REPEAT * 10)
    rows, every = {}, {"cold": [], "warm": []}
    for name, params in QUERIES.items():
        query = LotQuery.from_params(params)
        result = backend.search(query)
        assert result.total > 0, name  # the mix only holds queries that find something
        cold = timed(lambda q=query: backend.search(q), REPEAT, before=lots_changed)
        warm = timed(lambda q=query: backend.search(q), REPEAT)
        every["cold"] += cold
        every["warm"] += warm
        rows[name] = {
            "cold": {"p50_ms": percentile(cold, 50), "p95_ms": percentile(cold, 95)},
            "warm": {"p50_ms": percentile(warm, 50), "p95_ms": percentile(warm, 95)},
            "hits": result.total,
        }

    base50, base95 = percentile(baseline, 50), percentile(baseline, 95)

    def summary(samples):
        return {
            "p50_ms": percentile(samples, 50),
            "p95_ms": percentile(samples, 95),
            "p50_ratio_to_pk": percentile(samples, 50) / base50,
            "p95_ratio_to_pk": percentile(samples, 95) / base95,
            "mean_ms": statistics.mean(samples),
        }

    report = {
        "lots": LOTS,
        "database": connection.vendor,
        "backend": type(backend).__name__,
        "setup_seconds": round(setup_s, 1),
        "load_average": os.getloadavg(),
        "baseline_pk_lookup": {"p50_ms": base50, "p95_ms": base95},
        "search_all_cold": summary(every["cold"]),
        "search_all_warm": summary(every["warm"]),
        "queries": rows,
    }
    out = Path("test-results")
    out.mkdir(exist_ok=True)
    (out / "bench-search.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(
        f"\nsearch benchmark: {LOTS} lots ({report['backend']} on {report['database']}), setup {setup_s:.0f} s"
    )
    print(f"  load average {' '.join(f'{x:.2f}' for x in report['load_average'])}")
    print(f"  baseline pk lookup      p50 {base50:7.2f} ms  p95 {base95:7.2f} ms")
    for kind in ("cold", "warm"):
        s = report[f"search_all_{kind}"]
        print(f"  search (all, {kind})      p50 {s['p50_ms']:7.2f} ms  p95 {s['p95_ms']:7.2f} ms  "
              f"(x{s['p50_ratio_to_pk']:.1f} / x{s['p95_ratio_to_pk']:.1f} the pk lookup)")  # fmt: skip
    print(f"  {'query':<38} {'cold p50':>9} {'p95':>8}  {'warm p50':>9} {'p95':>8}  hits")
    for name, row in rows.items():
        c, w = row["cold"], row["warm"]
        print(
            f"  {name:<38} {c['p50_ms']:9.2f} {c['p95_ms']:8.2f}  {w['p50_ms']:9.2f} {w['p95_ms']:8.2f}  {row['hits']}"
        )
