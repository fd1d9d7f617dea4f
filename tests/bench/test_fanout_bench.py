"""Websocket fan-out: 1,000 watchers of one lot on one daphne process, one update a second and a
burst of 100, through the product's fan-out hub and, as the baseline in the same run, through plain
channels-redis ``group_send`` to one channel per socket.

Run with ``make bench``. ``BENCH_WATCHERS`` (default 1,000), ``BENCH_STEADY_S`` (default 15) and
``BENCH_BURST`` (default 100) change the load. Figures go to ``test-results/bench-fanout.json``:
commit-to-receipt p50/p99 at one update a second, deliveries per second in the burst and missing
sequence numbers, and the ratios to the baseline. Nothing is asserted about time.
"""

import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import websockets
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection

from market.core.fanout import fanout_publish
from tests.processes import free_port
from tests.trading.conftest import Floor, make_party, published_lot

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

WATCHERS = int(os.environ.get("BENCH_WATCHERS", "1000"))
STEADY_S = int(os.environ.get("BENCH_STEADY_S", "15"))
BURST = int(os.environ.get("BENCH_BURST", "100"))
ROOT = Path(__file__).resolve().parents[2]


def _raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 16384)), hard))


@pytest.fixture
def server(transactional_db):
    db = connection.settings_dict
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "market.settings_test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": settings.REDIS_PREFIX,
    }
    _raise_fd_limit()
    (ROOT / "test-results").mkdir(exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "tests.bench.asgi_fanout:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=open(ROOT / "test-results" / "bench-fanout-server.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT,
        preexec_fn=_raise_fd_limit,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.2)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


class Watchers:
    """``WATCHERS`` websocket clients recording (sequence, receipt time) of every update."""

    def __init__(self, url: str):
        self.url = url
        self.sockets = []
        self.received: list[dict[int, float]] = []
        self.tasks = []
        self.refused = 0

    async def open(self, expect_snapshot: bool):
        async def one(i):
            for _attempt in range(5):
                try:
                    ws = await websockets.connect(self.url, max_queue=None, open_timeout=60)
                    break
                except (OSError, websockets.InvalidHandshake, TimeoutError):
                    self.refused += 1  # counted: the server could not take the socket
                    await asyncio.sleep(0.5)
            else:
                return
            if expect_snapshot:
                await ws.recv()
            self.sockets.append(ws)
            got: dict[int, float] = {}
            self.received.append(got)
            self.tasks.append(asyncio.create_task(self._listen(ws, got)))

        for start in range(0, WATCHERS, 25):  # connect in batches of 25
            await asyncio.gather(*(one(i) for i in range(start, min(start + 25, WATCHERS))))

    async def _listen(self, ws, got):
        try:
            async for text in ws:
                message = json.loads(text)
                got[message["state"]["sequence"]] = time.time()
        except websockets.ConnectionClosed:
            pass

    async def close(self):
        for ws in self.sockets:
            await ws.close()
        await asyncio.gather(*self.tasks, return_exceptions=True)


def _percentile(values, pct):
    ordered = sorted(values)
    if not ordered:
        return None
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _run(url: str, send, expect_snapshot: bool) -> dict:
    watchers = Watchers(url)
    await watchers.open(expect_snapshot)
    await asyncio.sleep(1)
    sent_at: dict[int, float] = {}
    seq = 1_000_000
    for _ in range(STEADY_S):  # one update a second
        seq += 1
        sent_at[seq] = time.time()
        await send(seq, sent_at[seq])
        await asyncio.sleep(1)
    steady = list(range(1_000_001, seq + 1))
    await asyncio.sleep(2)
    burst_start = time.time()
    for _ in range(BURST):  # as fast as the publisher can
        seq += 1
        sent_at[seq] = time.time()
        await send(seq, sent_at[seq])
    burst = list(range(steady[-1] + 1, seq + 1))
    deadline = time.time() + 60
    while (
        time.time() < deadline
        and sum(len([s for s in burst if s in got]) for got in watchers.received) < BURST * WATCHERS
    ):
        await asyncio.sleep(0.2)
    await asyncio.sleep(1)
    await watchers.close()

    latencies = [(got[s] - sent_at[s]) * 1000 for got in watchers.received for s in steady if s in got]
    burst_receipts = [got[s] for got in watchers.received for s in burst if s in got]
    delivered_burst = len(burst_receipts)
    burst_seconds = (max(burst_receipts) - burst_start) if burst_receipts else None
    missing_seqs = Counter(s - 1_000_000 for got in watchers.received for s in steady + burst if s not in got)
    missing = sum(missing_seqs.values())
    return {
        "watchers": len(watchers.received),
        "refused_connections": watchers.refused,
        "steady_p50_ms": _percentile(latencies, 50),
        "steady_p99_ms": _percentile(latencies, 99),
        "steady_mean_ms": statistics.mean(latencies) if latencies else None,
        "burst_deliveries": delivered_burst,
        "burst_seconds": burst_seconds,
        "deliveries_per_second": delivered_burst / burst_seconds if burst_seconds else None,
        "missing": missing,
        "missing_by_update": dict(sorted(missing_seqs.items())),
        "expected": (len(steady) + len(burst)) * len(watchers.received),
    }


def test_fanout_against_plain_group_send(server):
    seller = make_party(role="generator", region="130203", name="基准测试钢铁集团有限公司")
    floor = Floor(seller=seller, buyers=[], lot=published_lot(seller.org))
    floor.sale()
    lot = floor.lot
    base = f"ws://127.0.0.1:{server}"

    async def hub_send(seq, at):
        await asyncio.to_thread(
            fanout_publish, f"lot.{lot.pk}", {"type": "state", "state": {"sequence": seq}, "sent_at": at}
        )

    layer = get_channel_layer()

    async def group_send(seq, at):
        text = json.dumps({"type": "state", "state": {"sequence": seq}, "sent_at": at})
        await layer.group_send(f"fanoutbench.{lot.pk}", {"type": "bench.message", "text": text})

    async def scenario():
        product = await _run(f"{base}/ws/lots/{lot.pk}/", hub_send, expect_snapshot=True)
        baseline = await _run(f"{base}/ws/bench-group/{lot.pk}/", group_send, expect_snapshot=False)
        return product, baseline

    product, baseline = asyncio.run(scenario())
    ratio = (
        product["deliveries_per_second"] / baseline["deliveries_per_second"]
        if product["deliveries_per_second"] and baseline["deliveries_per_second"]
        else None
    )
    report = {
        "watchers": WATCHERS,
        "steady_updates": STEADY_S,
        "burst": BURST,
        "fanout_hub": product,
        "baseline_group_send": baseline,
        "deliveries_ratio_to_baseline": ratio,
        "p99_ratio_to_baseline": (
            product["steady_p99_ms"] / baseline["steady_p99_ms"] if baseline["steady_p99_ms"] else None
        ),
    }
    out = Path("test-results")
    out.mkdir(exist_ok=True)
    (out / "bench-fanout.json").write_text(json.dumps(report, indent=2))
    print(f"\nwebsocket fan-out: {WATCHERS} watchers of one lot on one daphne process")
    for name, row in (("fan-out hub", product), ("group_send (baseline)", baseline)):
        print(
            f"  {name:<22} 1/s: p50 {row['steady_p50_ms'] or 0:8.1f} ms  p99 {row['steady_p99_ms'] or 0:8.1f} ms"
            f" | burst of {BURST}: {row['deliveries_per_second'] or 0:9.0f} deliveries/s"
            f" | missing {row['missing']} of {row['expected']} | refused sockets {row['refused_connections']}"
        )
    if ratio:
        print(f"  deliveries per second: x{ratio:.1f} the baseline")
