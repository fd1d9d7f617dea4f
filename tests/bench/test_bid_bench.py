"""Bids per second and latency through the real HTTP stack on PostgreSQL, beside baselines measured
in the same run (issue 4).

Run with ``make bench`` (never in ``make test``). What it does:

1. creates its own database (``<DATABASE_URL's name>_live``: a server process must see committed
   rows, so the test database's per-test transaction cannot be used), migrates it, and builds a
   floor in a subprocess (``bidbench_floor.py``): a seller, 32 verified recyclers with API tokens,
   one hot lot and 32 other lots on auction, and the baseline tables;
2. starts granian, the production WSGI server, with ``BENCH_WORKERS`` worker processes (4 by
   default) of ``BENCH_THREADS`` threads each (2 by default) on ``tests.bench.settings_bidbench``,
   persistent connections (``DB_CONN_MAX_AGE``); the clients keep their connections alive, as nginx
   does to its upstream (``deploy/nginx/market.conf``);
3. measures, ``BENCH_SECONDS`` each (12 by default), with 32 concurrent clients:

   - pgbench, lock one row / update it / insert one row: on one hot row, and on 32 rows;
   - a minimal Django view doing the same on the same server (``/bench/hot/1/``);
   - a Django view that inserts one row (``/bench/insert/<n>/``);
   - the minimal view of the first baseline on 32 rows, one per client (``/bench/hot/<n>/``): the least
     a bid on a lot of its own does, so the ceiling of the 32-lot figure;
   - bids on one hot lot, and bids on 32 lots (one bidder per lot), through ``POST /api/v1/lots/
     {id}/bids/`` with token authentication and a fresh ``Idempotency-Key``, as the web client sends
     (answered by the bid gateway, ``market.trading.gateway``; ``BID_GATEWAY=0`` for the view);
4. reads, for each row, the processor time the server's processes, PostgreSQL's, Redis and the
   clients used per answered request over the measured window (``/proc``): where a row's time goes.

Bidders bid the minimum they know, as people press "bid the minimum" on the lot page. What they know
is the lot's live state, which the page gets over the websocket: here the bidders of one lot share
it in memory (``Board``), updated from every answer (a 201 carries the new state; a 400
``bid_too_low`` names the minimum in its message). Nothing is added to the API, and no ``/state/``
reads are sent, which production serves elsewhere (ASGI) and would only compete for the sync workers.
A bidder that leads waits until it is overtaken. On the hot lot, bids sent on a price that moved
while they queued for the lock are refused (``bid_too_low``): requests/s counts every answered bid
(each one took the lot's lock), bids/s only the accepted ones (201). On 32 lots each desk takes
turns between two recyclers, so every bid outbids the last and is accepted.

Figures are printed and written to ``test-results/bench-bids.json`` as ratios to the baselines of the
same run; nothing is asserted about times. The machine has 2 cores shared by the client, the server,
PostgreSQL and whatever else is running: compare ratios, not absolute figures.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal
from http.client import HTTPConnection
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

from tests.processes import free_port, pages_server_args

BASE_DIR = Path(settings.BASE_DIR)
SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "4"))
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
CLIENTS = 32
WARMUP_S = 2.0
MINIMUM_IN_MESSAGE = re.compile(r"¥\s*([\d,]+\.\d{2})")


def percentile(values, pct):
    if not values:
        return None
    ordered = sorted(values)
    k = (len(ordered) - 1) * pct / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


# --- the benchmark's own database and server ----------------------------------------------------


def _db():
    db = settings.DATABASES["default"]
    return {
        "host": db["HOST"] or "127.0.0.1",
        "port": int(db["PORT"] or 5432),
        "user": db["USER"] or "postgres",
        "password": db["PASSWORD"] or "",
        "name": f"{db['NAME']}_live",
    }


def _url(db) -> str:
    auth = f"{db['user']}:{db['password']}" if db["password"] else db["user"]
    return f"postgres://{auth}@{db['host']}:{db['port']}/{db['name']}"


def _admin(db, sql: str) -> None:
    with psycopg.connect(
        host=db["host"], port=db["port"], user=db["user"], password=db["password"] or None,
        dbname="postgres", autocommit=True,
    ) as conn:  # fmt: skip
        conn.execute(sql)


def _env(db, **extra) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.bench.settings_bidbench",
        "DATABASE_URL": _url(db),
        "REDIS_URL": settings.REDIS_URL,
        "REDIS_PREFIX": f"market-bidbench-{os.getpid()}",
        "DB_CONN_MAX_AGE": "600",
        "LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(BASE_DIR),
        **extra,
    }


def _pgbench() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))), None
    )
    if not found:
        pytest.fail("pgbench not found (install the PostgreSQL client package)")
    return str(found)


@pytest.fixture(scope="module")
def live_db():
    db = _db()
    name = db["name"]
    _admin(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(db, f'CREATE DATABASE "{name}"')
    try:
        env = _env(db)
        subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=BASE_DIR,
            env=env,
            check=True,
        )
        built = subprocess.run(
            [sys.executable, "-m", "tests.bench.bidbench_floor"], cwd=BASE_DIR, env=env, check=True,
            capture_output=True, text=True,
        )  # fmt: skip
        floor = json.loads(built.stdout.strip().splitlines()[-1])
        yield db, floor
    finally:
        if not os.environ.get("BENCH_KEEP_DB"):
            _admin(db, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def server(live_db):
    db, floor = live_db
    port = free_port()
    (BASE_DIR / "test-results").mkdir(exist_ok=True)
    log = open(BASE_DIR / "test-results" / "bench-bids-granian.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(
        pages_server_args(
            port, workers=WORKERS, threads=THREADS,
            extra=("--runtime-threads", "1", "--backlog", "2048", "--log-level", "warning"),
        ),
        cwd=BASE_DIR, env=_env(db), stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                conn = HTTPConnection("127.0.0.1", port, timeout=5)
                conn.request("GET", f"/api/v1/lots/{floor['hot']}/state/")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("granian did not start: see test-results/bench-bids-granian.log")
            time.sleep(0.3)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# --- where the processors' time goes ----------------------------------------------------------------

_TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def cpu_ms() -> dict[str, float]:
    """Processor time (user and system, ms) used so far by the benchmark's process groups: the web
    server's processes, PostgreSQL's, Redis, and the clients (this process, and pgbench)."""
    used: dict[str, float] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(entry.name) == os.getpid() or name == "pgbench":
            group = "client"
        elif b"granian" in cmdline:
            group = "server"
        elif name.startswith("postgres"):
            group = "postgresql"
        elif name.startswith("redis"):
            group = "redis"
        else:
            continue
        # With the children that have ended: pgbench's runs (this process's), PostgreSQL's backends
        # of pgbench's connections (the postmaster's).
        ticks = sum(int(f) for f in fields[11:15])
        used[group] = used.get(group, 0.0) + ticks * _TICK_MS
    return used


def cpu_per_request(before: dict, after: dict, requests: int) -> dict[str, float]:
    """Processor ms per answered request, by group, between two ``cpu_ms`` readings."""
    groups = {g: (after.get(g, 0.0) - before.get(g, 0.0)) / max(requests, 1) for g in after}
    return {**{g: round(v, 3) for g, v in sorted(groups.items())}, "total": round(sum(groups.values()), 3)}


# --- load -----------------------------------------------------------------------------------------


class Load:
    """``CLIENTS`` threads, each with its own connection, sending requests back to back for
    ``seconds`` after ``warmup`` seconds; records (status, latency) of answers completed in the window."""

    def __init__(self, port: int, make_client, seconds=SECONDS, warmup=WARMUP_S):
        self.port, self.make_client, self.seconds, self.warmup = port, make_client, seconds, warmup
        self.results: list[list[tuple[int, float]]] = [[] for _ in range(CLIENTS)]
        self.errors: list[str] = []

    def _run(self, index: int, barrier: threading.Barrier):
        client = self.make_client(index)
        conn = HTTPConnection("127.0.0.1", self.port, timeout=60)
        out = self.results[index]
        barrier.wait()
        start = self.start
        begin, end = start + self.warmup, start + self.warmup + self.seconds
        while True:
            method, path, body, headers = client.next_request()
            sent = time.perf_counter()
            if sent >= end:
                break
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                data = response.read()
            except OSError as exc:
                self.errors.append(repr(exc))
                conn.close()
                continue
            done = time.perf_counter()
            client.answer(response.status, data)
            if response.status >= 500 and len(self.errors) < 20:
                self.errors.append(f"{response.status}: {data[:300]!r}")
            if begin <= sent and done <= end:
                out.append((response.status, done - sent))
        conn.close()

    def run(self) -> dict:
        barrier = threading.Barrier(CLIENTS + 1)
        threads = [threading.Thread(target=self._run, args=(i, barrier), daemon=True) for i in range(CLIENTS)]
        for t in threads:
            t.start()
        self.start = time.perf_counter() + 0.2
        barrier.wait()
        cpu = []  # processor time at the window's start and end
        for at in (self.start + self.warmup, self.start + self.warmup + self.seconds):
            time.sleep(max(0.0, at - time.perf_counter()))
            cpu.append(cpu_ms())
        for t in threads:
            t.join(timeout=self.warmup + self.seconds + 120)
        every = [r for rows in self.results for r in rows]
        ok = [lat * 1000 for status, lat in every if status in (200, 201)]
        statuses: dict[str, int] = {}
        for status, _ in every:
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        return {
            "requests_per_s": len(every) / self.seconds,
            "accepted_per_s": len(ok) / self.seconds,
            "p50_ms": percentile(ok, 50),
            "p99_ms": percentile(ok, 99),
            "all_p50_ms": percentile([lat * 1000 for _, lat in every], 50),
            "all_p99_ms": percentile([lat * 1000 for _, lat in every], 99),
            "statuses": statuses,
            "errors": self.errors[:5],
            "cpu_ms_per_request": cpu_per_request(*cpu, len(every)),
        }


class PostClient:
    def __init__(self, path: str):
        self.path = path

    def next_request(self):
        return "POST", self.path, b"", {"Content-Length": "0"}

    def answer(self, status, data):
        pass


class Board:
    """What the lot's websocket tells every bidder: the latest minimum and who leads (the benchmark's
    bidders share it in memory instead of listening to ``/ws/lots/{id}/``)."""

    def __init__(self, minimum: str):
        self.cond = threading.Condition()
        self.minimum, self.sequence, self.leader = Decimal(minimum), 0, None

    def accepted(self, state: dict, token: str) -> None:
        with self.cond:
            if state["sequence"] > self.sequence:
                self.minimum, self.sequence = Decimal(state["minimum_next"]), state["sequence"]
                self.leader = token if state["you"] and state["you"]["leading"] else None
                self.cond.notify_all()

    def overtaken(self, minimum: Decimal) -> None:
        with self.cond:
            if minimum > self.minimum:
                self.minimum, self.leader = minimum, None  # the 201 that moved it names the leader
                self.cond.notify_all()


class Bidder:
    """A bidding desk on one lot with one or more of the recyclers' tokens: bids the minimum the
    board shows as a recycler that is not leading; a desk whose only recycler leads waits until it
    is overtaken, as a person would."""

    def __init__(self, lot: int, tokens: list[str], board: Board):
        self.path = f"/api/v1/lots/{lot}/bids/"
        self.tokens, self.board = tokens, board
        self.token = tokens[0]
        self.refused: dict[str, int] = {}

    def next_request(self):
        board = self.board
        with board.cond:
            while True:
                free = [t for t in self.tokens if t != board.leader]
                if free:
                    break
                board.cond.wait(timeout=0.5)
            self.token = free[0]
            amount = board.minimum
        body = json.dumps({"amount": str(amount)}).encode()
        headers = {
            "Authorization": f"Token {self.token}",
            "Content-Type": "application/json",
            "Idempotency-Key": uuid.uuid4().hex,
        }
        return "POST", self.path, body, headers

    def answer(self, status, data):
        try:
            payload = json.loads(data)
        except ValueError:
            return
        if status == 201:
            self.board.accepted(payload, self.token)
            return
        code = payload.get("code", str(status))
        self.refused[code] = self.refused.get(code, 0) + 1
        found = MINIMUM_IN_MESSAGE.search(payload.get("message", ""))
        if code == "bid_too_low" and found:
            self.board.overtaken(Decimal(found.group(1).replace(",", "")))
        elif code == "already_leading":
            with self.board.cond:
                self.board.leader = self.token


def _state_minimum(port: int, lot: int) -> str:
    conn = HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", f"/api/v1/lots/{lot}/state/")
    return json.loads(conn.getresponse().read())["minimum_next"]


def _bid_load(port: int, desks: list[tuple[int, list[str]]]) -> dict:
    boards = {lot: Board(_state_minimum(port, lot)) for lot in {lot for lot, _ in desks}}
    bidders = [Bidder(lot, tokens, boards[lot]) for lot, tokens in desks]
    result = Load(port, lambda i: bidders[i]).run()
    refused: dict[str, int] = {}
    for b in bidders:
        for code, n in b.refused.items():
            refused[code] = refused.get(code, 0) + n
    result["refused_codes_incl_warmup"] = refused
    return result


# --- pgbench --------------------------------------------------------------------------------------

PGBENCH_SCRIPT = """\\set id {row}
BEGIN;
SELECT n FROM bidbench_hot WHERE id = :id FOR UPDATE;
UPDATE bidbench_hot SET n = n + 1 WHERE id = :id;
INSERT INTO bidbench_event (hot_id, n, at) VALUES (:id, 0, now());
COMMIT;
"""


def _pgbench_run(db, tmp: Path, *, row: str, tag: str) -> dict:
    script = tmp / f"{tag}.sql"
    script.write_text(PGBENCH_SCRIPT.format(row=row))
    logs = tmp / tag
    logs.mkdir()
    env = {**os.environ, "PGPASSWORD": db["password"]} if db["password"] else dict(os.environ)
    before = cpu_ms()
    done = subprocess.run(
        [
            _pgbench(), "-n", "-h", db["host"], "-p", str(db["port"]), "-U", db["user"],
            "-c", str(CLIENTS), "-j", "2", "-T", str(int(SECONDS)), "-f", str(script),
            "-l", "--log-prefix", str(logs / "log"), db["name"],
        ],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    after = cpu_ms()
    tps = float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", done.stdout).group(1))
    latencies = []
    for path in logs.iterdir():
        for line in path.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3:
                latencies.append(int(parts[2]) / 1000)
    return {
        "requests_per_s": tps,
        "accepted_per_s": tps,
        "p50_ms": percentile(latencies, 50),
        "p99_ms": percentile(latencies, 99),
        "cpu_ms_per_request": cpu_per_request(before, after, int(tps * SECONDS)),
    }


# --- the benchmark ----------------------------------------------------------------------------------


def _sanity(db, floor) -> dict:
    with psycopg.connect(_url(db)) as conn:
        bids = conn.execute(
            "SELECT count(*) FROM trading_bid b JOIN trading_sale s ON s.id = b.sale_id WHERE s.lot_id = %s",
            [floor["hot"]],
        ).fetchone()[0]
        price = conn.execute(
            "SELECT current_price, sequence FROM trading_sale WHERE lot_id = %s AND status = 'active'",
            [floor["hot"]],
        ).fetchone()
    return {"hot_lot_bid_rows": bids, "hot_lot_price": str(price[0]), "hot_lot_sequence": price[1]}


def test_bids_per_second_against_baselines(live_db, server, tmp_path):
    db, floor = live_db
    port = server
    rows: dict[str, dict] = {}

    rows["pgbench: lock+update+insert, 1 hot row (b)"] = _pgbench_run(db, tmp_path, row="1", tag="hot")
    rows["pgbench: lock+update+insert, 32 rows"] = _pgbench_run(
        db, tmp_path, row=":client_id % 32 + 1", tag="many"
    )
    rows["view: lock+update+insert, 1 hot row (a)"] = Load(port, lambda i: PostClient("/bench/hot/1/")).run()
    rows["view: plain insert (c)"] = Load(port, lambda i: PostClient(f"/bench/insert/{i % 32 + 1}/")).run()
    # The least a bid on a lot of its own does (lock its row, update it, insert one row): the ceiling
    # of the 32-lot figure, which the issue compares with (c).
    rows["view: lock+update+insert, 32 rows (a')"] = Load(
        port, lambda i: PostClient(f"/bench/hot/{i % 32 + 1}/")
    ).run()
    tokens = floor["tokens"]
    rows["bids: 1 hot lot, 32 bidders"] = _bid_load(port, [(floor["hot"], [t]) for t in tokens])
    # One desk per lot, taking turns between two recyclers, so that every bid outbids the last.
    rows["bids: 32 lots, 1 desk each"] = _bid_load(
        port, [(lot, [tokens[i], tokens[(i + 1) % CLIENTS]]) for i, lot in enumerate(floor["many"])]
    )

    hot = rows["bids: 1 hot lot, 32 bidders"]
    many = rows["bids: 32 lots, 1 desk each"]
    pg = rows["pgbench: lock+update+insert, 1 hot row (b)"]
    view = rows["view: lock+update+insert, 1 hot row (a)"]
    plain = rows["view: plain insert (c)"]
    view_many = rows["view: lock+update+insert, 32 rows (a')"]
    ratios = {
        "hot_lot_accepted_to_pgbench": hot["accepted_per_s"] / pg["requests_per_s"],
        "hot_lot_requests_to_pgbench": hot["requests_per_s"] / pg["requests_per_s"],
        "hot_lot_accepted_to_baseline_view": hot["accepted_per_s"] / view["requests_per_s"],
        "hot_lot_requests_to_baseline_view": hot["requests_per_s"] / view["requests_per_s"],
        "many_lots_to_plain_insert_view": many["accepted_per_s"] / plain["requests_per_s"],
        "many_lots_to_view_32_rows": many["accepted_per_s"] / view_many["requests_per_s"],
        "view_32_rows_to_plain_insert_view": view_many["requests_per_s"] / plain["requests_per_s"],
        "baseline_view_to_pgbench": view["requests_per_s"] / pg["requests_per_s"],
    }
    targets = {
        "hot_lot_to_pgbench (target >= 0.40)": ratios["hot_lot_requests_to_pgbench"],
        "many_lots_to_plain_insert_view (target >= 0.70)": ratios["many_lots_to_plain_insert_view"],
    }
    report = {
        "clients": CLIENTS,
        "seconds": SECONDS,
        "granian_workers": WORKERS,
        "granian_threads_per_worker": THREADS,
        "cpus": os.cpu_count(),
        "load_average_after": os.getloadavg(),
        "queries_per_bid": floor["queries"],
        "sanity": _sanity(db, floor),
        "rows": rows,
        "ratios": ratios,
        "targets": targets,
    }
    out = BASE_DIR / "test-results"
    out.mkdir(exist_ok=True)
    (out / "bench-bids.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))

    def ms(value):
        return f"{value:8.1f}" if value is not None else "       -"

    print(f"\nbid benchmark: {CLIENTS} clients, {SECONDS:.0f} s each, granian {WORKERS} workers × {THREADS} threads, "
          f"{os.cpu_count()} cores (load after: {os.getloadavg()[0]:.1f})")  # fmt: skip
    print(f"  {'':<44} {'ok/s':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
    for name, row in rows.items():
        print(f"  {name:<44} {row['accepted_per_s']:8.0f} {row['requests_per_s']:8.0f} "
              f"{ms(row['p50_ms'])} {ms(row['p99_ms'])}")  # fmt: skip
    for name in ("bids: 1 hot lot, 32 bidders", "bids: 32 lots, 1 desk each"):
        print(
            f"  {name}: statuses {rows[name]['statuses']}, refusals {rows[name]['refused_codes_incl_warmup']}"
        )
    for name, value in ratios.items():
        print(f"  {name:<44} {value:6.2f}")
    print(f"  processor ms per answered request (2 cores shared): {'server':>8} {'postgres':>8} {'redis':>8} "
          f"{'client':>8} {'total':>8}")  # fmt: skip
    for name, row in rows.items():
        cpu = row["cpu_ms_per_request"]
        print(f"  {name:<44} " + " ".join(
            f"{cpu.get(g, 0.0):8.3f}" for g in ("server", "postgresql", "redis", "client", "total")
        ))  # fmt: skip
    print(f"  queries per bid: {json.dumps(floor['queries'], ensure_ascii=False)}")
    errors = {name: row.get("errors") for name, row in rows.items() if row.get("errors")}
    assert not errors, errors  # errors, not times: a 5xx or a dropped connection spoils the figures
    assert hot["accepted_per_s"] > 0 and many["accepted_per_s"] > 0
